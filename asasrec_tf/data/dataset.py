"""The processed dataset: per-user item sequences split for evaluation.

Internal ids: users are 0..U-1; items are 1..I and 0 is padding, which is
never a real item. Each user's training items are stored in time order in a
CSR layout (``train_offsets``/``train_items``); the held-out validation and
test items are stored apart (0 where a user has none).
"""

from __future__ import annotations

import dataclasses
import io
import json
from typing import Dict, Optional, Tuple

import numpy as np

from asasrec_tf.fileio import atomic_write_bytes

SPLITS = ("loo_valid", "loo")
TARGETS = ("valid", "test")


@dataclasses.dataclass
class SequenceDataset:
  """Time-ordered user sequences with leave-one-out held-out items.

  Attributes:
    name: dataset label (``video``, ``custom``, ...).
    split: ``loo_valid`` (last item = test, second to last = validation) or
      ``loo`` (last item = test, no validation).
    num_items: I, the number of real items (ids 1..I).
    train_offsets: [U+1] int64; user u's training items are
      ``train_items[train_offsets[u]:train_offsets[u+1]]``.
    train_items: [N_train] int32 item ids in time order.
    valid_items: [U] int32 held-out validation item, 0 when none.
    test_items: [U] int32 held-out test item, 0 when none.
    user_ids: [U] original user ids.
    item_ids: [I+1] original item ids; entry 0 (padding) is a placeholder.
    repeats: interactions of the raw data that repeat the user's previous
      item (after ordering by time).
    repeats_dropped: whether those were dropped.
    source_path: the raw file it was read from (None for generated data).
    source_sha256: SHA-256 of that file's bytes. Both are set by the loader,
      not cached.
  """

  name: str
  split: str
  num_items: int
  train_offsets: np.ndarray
  train_items: np.ndarray
  valid_items: np.ndarray
  test_items: np.ndarray
  user_ids: np.ndarray
  item_ids: np.ndarray
  repeats: int = 0
  repeats_dropped: bool = False
  source_path: Optional[str] = None
  source_sha256: Optional[str] = None

  @property
  def num_users(self) -> int:
    return len(self.train_offsets) - 1

  @property
  def train_lengths(self) -> np.ndarray:
    """[U] number of training items per user."""
    return np.diff(self.train_offsets)

  def train_sequence(self, user: int) -> np.ndarray:
    return self.train_items[self.train_offsets[user]:self.train_offsets[user + 1]]

  def item_popularity(self) -> np.ndarray:
    """[I+1] training interaction count per item (0 for padding)."""
    return np.bincount(self.train_items, minlength=self.num_items + 1)

  def eval_users(self, target: str) -> np.ndarray:
    """Users with a held-out ``target`` ('valid' or 'test') item."""
    return np.flatnonzero(self.targets(target) > 0)

  def targets(self, target: str) -> np.ndarray:
    if target not in TARGETS:
      raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    return self.valid_items if target == "valid" else self.test_items

  def history(self, target: str) -> Tuple[np.ndarray, np.ndarray]:
    """What a model may see when predicting ``target``, as CSR arrays.

    For 'valid' that is the training items; for 'test' the training items
    followed by the validation item (when there is one).

    Returns:
      (offsets [U+1] int64, items [N] int32).
    """
    if target == "valid" or not self.valid_items.any():
      return self.train_offsets, self.train_items
    has = (self.valid_items > 0).astype(np.int64)
    items = np.insert(self.train_items, self.train_offsets[1:][has > 0],
                      self.valid_items[has > 0])
    offsets = self.train_offsets + np.concatenate([[0], np.cumsum(has)])
    return offsets, items.astype(np.int32)

  def auto_maxlen(self, cap: int = 50) -> int:
    """The authors' rule: min(mean training length, cap), at least 1."""
    mean = self.train_lengths.mean() if self.num_users else 0.0
    return int(max(1, min(int(mean), cap)))

  def stats(self) -> Dict[str, object]:
    """Counts in the terms of the paper's Table 1 (see README)."""
    held = (self.valid_items > 0).astype(np.int64) + (self.test_items > 0)
    lengths = self.train_lengths + held
    return {
        "dataset": self.name,
        "split": self.split,
        "users": int(self.num_users),
        "items": int(self.num_items),
        "interactions": int(lengths.sum()),
        "train_interactions": int(len(self.train_items)),
        "valid_users": int((self.valid_items > 0).sum()),
        "test_users": int((self.test_items > 0).sum()),
        "min_len": int(lengths.min()) if len(lengths) else 0,
        "max_len": int(lengths.max()) if len(lengths) else 0,
        "mean_len": round(float(lengths.mean()), 4) if len(lengths) else 0.0,
        "mean_train_len": round(float(self.train_lengths.mean()), 4)
                          if len(lengths) else 0.0,
        "auto_maxlen": self.auto_maxlen(),
        "repeats": int(self.repeats),
        "repeats_dropped": bool(self.repeats_dropped),
    }

  # --- persistence (the preprocessing cache) --------------------------------

  def save(self, path: str) -> None:
    """Writes the dataset to ``path`` (.npz) atomically."""
    meta = json.dumps({"name": self.name, "split": self.split,
                       "num_items": self.num_items, "repeats": self.repeats,
                       "repeats_dropped": self.repeats_dropped})
    buf = io.BytesIO()
    np.savez(buf, meta=np.frombuffer(meta.encode(), np.uint8),
             train_offsets=self.train_offsets, train_items=self.train_items,
             valid_items=self.valid_items, test_items=self.test_items,
             user_ids=self.user_ids, item_ids=self.item_ids)
    atomic_write_bytes(path, buf.getvalue())

  @classmethod
  def load(cls, path: str) -> "SequenceDataset":
    with np.load(path, allow_pickle=False) as z:
      meta = json.loads(z["meta"].tobytes().decode())
      return cls(name=meta["name"], split=meta["split"],
                 num_items=int(meta["num_items"]),
                 train_offsets=z["train_offsets"], train_items=z["train_items"],
                 valid_items=z["valid_items"], test_items=z["test_items"],
                 user_ids=z["user_ids"], item_ids=z["item_ids"],
                 repeats=int(meta["repeats"]),
                 repeats_dropped=bool(meta["repeats_dropped"]))


def tail_matrix(offsets: np.ndarray, items: np.ndarray, users: np.ndarray,
                length: int) -> np.ndarray:
  """The last ``length`` items of each user's sequence, left-padded with 0.

  Args:
    offsets: [U+1] CSR offsets.
    items: [N] CSR items.
    users: [B] users to take.
    length: L, columns of the result.

  Returns:
    [B, L] int32: row b ends with user b's most recent item.
  """
  users = np.asarray(users, dtype=np.int64)
  ends = offsets[users + 1]
  take = np.minimum(ends - offsets[users], length)
  out = np.zeros((len(users), length), dtype=np.int32)
  total = int(take.sum())
  if total == 0:
    return out
  rows = np.repeat(np.arange(len(users)), take)
  # Position of each taken element within its row's taken run: 0..take-1.
  starts = np.repeat(np.cumsum(take) - take, take)
  within = np.arange(total) - starts
  cols = length - take[rows] + within
  out[rows, cols] = items[ends[rows] - take[rows] + within]
  return out
