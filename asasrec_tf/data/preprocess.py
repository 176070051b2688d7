"""Raw interactions -> ordered, filtered, re-indexed and split sequences.

The steps, in order: order each user's interactions by time (a stable sort,
so file order breaks ties; formats without timestamps are taken to be in time
order already), count the interactions that repeat the user's previous item
(a duplicated line, usually) and drop them if asked, drop items with fewer
than ``min_item_interactions``
interactions (one pass; the paper's data had no such filter), re-index items
to 1..I (0 is padding) and users to 0..U-1 in ascending order of their
original ids, and hold out the last item(s) of each user.

Split rules:
  loo        every user's last item is the test item (as in the authors'
             code, so Table 1's counts come out: a user with one interaction
             is tested with an empty history).
  loo_valid  users with at least 3 interactions hold out the last (test) and
             the second to last (validation) item; shorter users keep all
             their items for training and are not evaluated (SASRec's rule).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from asasrec_tf.data.dataset import SPLITS, SequenceDataset
from asasrec_tf.data.readers import Interactions
from asasrec_tf.errors import UserError

MIN_LEN_LOO_VALID = 3


def preprocess(inter: Interactions, name: str, split: str = "loo_valid",
               min_item_interactions: int = 0,
               drop_repeats: bool = False) -> SequenceDataset:
  """Builds a :class:`SequenceDataset` from raw interactions.

  With repeats kept (the default, as the paper's files were used), a user's
  test item can be a copy of the validation item; the dataset's ``repeats``
  says how many there were either way.
  """
  if split not in SPLITS:
    raise UserError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
  if min_item_interactions < 0:
    raise UserError("--min_item_interactions must be >= 0, got "
                    f"{min_item_interactions}")
  users, items, times = inter.users, inter.items, inter.times
  user_ids, user_idx = _index(users)
  if times is not None:
    order = np.lexsort((np.arange(len(users)), times, user_idx))
  elif (user_idx[1:] < user_idx[:-1]).any():
    order = np.argsort(user_idx, kind="stable")
  else:  # grouped by user in ascending id order already (the usual file)
    order = None
  if order is not None:
    user_idx, items = user_idx[order], items[order]
  repeat = np.concatenate([[False], (user_idx[1:] == user_idx[:-1]) &
                           (items[1:] == items[:-1])])
  repeats = int(repeat.sum())
  if drop_repeats:
    user_idx, items = user_idx[~repeat], items[~repeat]

  if min_item_interactions > 0:
    _, item_idx = _index(items)
    keep = np.bincount(item_idx)[item_idx] >= min_item_interactions
    user_idx, items = user_idx[keep], items[keep]
    if not len(items):
      raise UserError(f"{name}: no item has at least {min_item_interactions} "
                      "interactions (--min_item_interactions)")
    present, user_idx = _index(user_idx)
    user_ids = user_ids[present]

  item_ids, seq_items = _index(items)
  seq_items += 1
  num_users = len(user_ids)
  lengths = np.bincount(user_idx, minlength=num_users)
  ends = np.cumsum(lengths)

  has_test = lengths >= 1
  has_valid = np.zeros(num_users, dtype=bool)
  if split == "loo_valid":
    has_test = lengths >= MIN_LEN_LOO_VALID
    has_valid = has_test
  test_items = np.where(has_test, seq_items[ends - 1], 0).astype(np.int32)
  valid_items = np.where(has_valid, seq_items[np.maximum(ends - 2, 0)],
                         0).astype(np.int32)
  train_len = lengths - has_test - has_valid
  train_mask = np.ones(len(seq_items), dtype=bool)
  train_mask[(ends - 1)[has_test]] = False
  train_mask[(ends - 2)[has_valid]] = False
  train_offsets = np.concatenate([[0], np.cumsum(train_len)]).astype(np.int64)

  placeholder = np.array([-1 if item_ids.dtype.kind in "iu" else ""],
                         dtype=item_ids.dtype)
  return SequenceDataset(
      name=name, split=split, num_items=len(item_ids),
      train_offsets=train_offsets, train_items=seq_items[train_mask],
      valid_items=valid_items, test_items=test_items, user_ids=user_ids,
      item_ids=np.concatenate([placeholder, item_ids]), repeats=repeats,
      repeats_dropped=drop_repeats)


def _index(values: np.ndarray) -> tuple:
  """Returns (the sorted distinct values, each value's int32 index into them).

  Integer ids go through pandas' hash-based factorize: ``np.unique`` sorts a
  copy of its input and builds its inverse in int64, which on a 20M-line
  file held about a gigabyte more at its peak.
  """
  if values.dtype.kind in "iu":
    codes, uniques = pd.factorize(values, sort=True)
    return np.asarray(uniques, dtype=values.dtype), codes.astype(np.int32)
  uniques, inverse = np.unique(values, return_inverse=True)
  return uniques, inverse.astype(np.int32).reshape(-1)
