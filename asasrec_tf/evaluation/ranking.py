"""Leave-one-out ranking of held-out items against candidate items.

A scorer is any callable ``scorer(users, histories) -> scores`` mapping a
batch of internal user ids [B] and their left-padded recent items [B, L] to
scores over every item id [B, I+1] (column 0, padding, is ignored), so that
sequence models (which read the histories) and factorisation models (which
read the users) are evaluated by the same code.

Candidates:
  full     every real item except the user's history (training items, and
           the validation item when scoring test); the held-out item stays a
           candidate even if it also occurs in the history.
  sampled  the held-out item and N negatives per user, distinct, drawn once
           (seeded) uniformly or by training popularity, never the held-out
           item nor an item of the history.
Ties count against the held-out item: its rank is the number of candidates
whose score is not below its own (NaN scores count as higher).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Dict, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from asasrec_tf.data.dataset import SequenceDataset, tail_matrix
from asasrec_tf.fileio import atomic_write_bytes
from asasrec_tf.data.history import history_keys, sample_excluding
from asasrec_tf.errors import UserError
from asasrec_tf.evaluation import metrics

from asasrec_tf.choices import CANDIDATES, NEGATIVE_SAMPLING  # noqa: F401

Scorer = Callable[[np.ndarray, np.ndarray], object]


def make_scorer(model) -> Scorer:
  """The evaluator's (users, histories) -> scores callable for ``model``
  (histories [B, L], L <= maxlen: the evaluator cuts all-padding columns)."""
  if not isinstance(model, keras.Model):
    return model.score
  fn = tf.function(model.score,
                   input_signature=[tf.TensorSpec([None], tf.int32),
                                    tf.TensorSpec([None, None], tf.int32)],
                   autograph=False)
  return lambda users, histories: fn(tf.constant(users, tf.int32),
                                     tf.constant(histories, tf.int32))


@dataclasses.dataclass
class EvalResult:
  """Ranks of the held-out items of one evaluation.

  Attributes:
    target: 'valid' or 'test'.
    users: [n] internal user ids.
    ranks: [n] 0-based rank of each user's held-out item.
    ks: cut-offs of the metrics.
    seconds: wall time of the evaluation.
  """

  target: str
  users: np.ndarray
  ranks: np.ndarray
  ks: Sequence[int]
  seconds: float = 0.0

  def metrics(self) -> Dict[str, float]:
    return metrics.summarise(self.ranks, self.ks)

  def per_user(self) -> Dict[str, np.ndarray]:
    return metrics.per_user(self.ranks, self.ks)

  def save(self, path: str, user_ids: Optional[np.ndarray] = None) -> None:
    """Writes users, ranks and per-user metrics to ``path`` (.npz), atomically.

    ``user_ids`` (the dataset's original ids) are stored beside the internal
    ones so that two runs can be paired by user.
    """
    import io
    buf = io.BytesIO()
    extra = {} if user_ids is None else {"user_ids": user_ids[self.users]}
    np.savez(buf, users=self.users, ranks=self.ranks,
             ks=np.asarray(self.ks), **extra, **self.per_user())
    atomic_write_bytes(path, buf.getvalue())


@tf.function(input_signature=[
    tf.TensorSpec([None, None], tf.float32),
    tf.TensorSpec([None], tf.int32),
    tf.TensorSpec([None, 2], tf.int64)], autograph=False)
def _full_ranks(scores, targets, excluded):
  """Ranks among all items but ``excluded`` ([m, 2] unique (row, item) pairs,
  which include padding and the held-out item itself).

  Counts over the whole row, then subtracts what the few excluded items
  contributed, so no [B, I + 1] mask is ever built. A NaN held-out score
  ranks below every candidate.
  """
  target_scores = tf.gather(scores, targets, batch_dims=1)
  rows = excluded[:, 0]
  ex_scores = tf.gather_nd(scores, excluded)
  ex_counted = _not_below(ex_scores, tf.gather(target_scores, rows))
  return (_count_not_below(scores, target_scores) -
          tf.math.unsorted_segment_sum(ex_counted, rows, tf.shape(scores)[0]))


def _not_below(scores, target_scores):
  """1 where ``scores`` is not below the target's (NaN on either side: 1).

  Written as 1 - [a < b] rather than [a >= b] | isnan(a): NaN is never
  below anything, so one comparison covers it (and graph rewriting, which
  turns logical_not(a < b) into a >= b, has nothing to rewrite).
  """
  return 1 - tf.cast(scores < target_scores, tf.int32)


def _count_not_below(scores, target_scores):
  """[B] entries of [B, N] ``scores`` not below the [B] targets' (NaN on
  either side counts against the target), in one pass over ``scores``."""
  below = tf.reduce_sum(tf.cast(scores < target_scores[:, None], tf.int32),
                        axis=1)
  return tf.shape(scores)[1] - below


@tf.function(input_signature=[
    tf.TensorSpec([None, None], tf.float32),
    tf.TensorSpec([None], tf.int32),
    tf.TensorSpec([None, None], tf.int32)], autograph=False)
def _sampled_ranks(scores, targets, negatives):
  """Ranks among the [B, N] ``negatives``."""
  target_scores = tf.gather(scores, targets, batch_dims=1)
  negative_scores = tf.gather(scores, negatives, batch_dims=1)
  return _count_not_below(negative_scores, target_scores)


def _distinct_negatives(rng, keys, users, num, num_items, probs):
  """[n, num] items per user, distinct within a row, never in ``keys``."""
  rows = np.repeat(users[:, None], num, axis=1)
  out = sample_excluding(rng, keys, rows, num_items, probs)
  while True:
    order = np.argsort(out, axis=1, kind="stable")
    ordered = np.take_along_axis(out, order, axis=1)
    dup = np.zeros_like(out, dtype=bool)
    np.put_along_axis(dup, order[:, 1:], ordered[:, 1:] == ordered[:, :-1],
                      axis=1)
    if not dup.any():
      return out
    out[dup] = sample_excluding(rng, keys, rows[dup], num_items, probs)


# Scores one evaluation batch may hold under full ranking (with their
# comparisons, about 4 bytes each twice over): 64M, 0.5 GB. 256 users of the
# paper's datasets stay under it; at 3M items a batch is 21 users.
MAX_SCORES = 64 * 2**20


class RankingEvaluator:
  """Ranks every evaluated user's held-out item under a given scorer."""

  def __init__(self, data: SequenceDataset, target: str, maxlen: int,
               candidates: str = "full", num_negatives: int = 100,
               negative_sampling: str = "uniform",
               ks: Sequence[int] = (10, 100), batch_size: int = 256,
               seed: int = 0):
    """Prepares histories, exclusions and (if sampled) the negatives.

    Args:
      data: the dataset.
      target: 'valid' or 'test'.
      maxlen: L, columns of the histories handed to the scorer.
      candidates: 'full' or 'sampled'.
      num_negatives: N, negatives per user when sampled.
      negative_sampling: 'uniform' or 'popularity' (training counts).
      ks: metric cut-offs.
      batch_size: users scored at once, at most: under full ranking a batch
        holds at most MAX_SCORES scores, so that memory does not grow with
        the catalog (a user's rank does not depend on its batch).
      seed: seed of the sampled negatives.
    """
    if candidates not in CANDIDATES:
      raise UserError(f"--candidates must be one of {CANDIDATES}")
    if negative_sampling not in NEGATIVE_SAMPLING:
      raise UserError(f"--negative_sampling must be one of {NEGATIVE_SAMPLING}")
    ks = tuple(int(k) for k in ks)
    if not ks or min(ks) < 1:
      raise UserError(f"--ks must be positive integers, got {ks}")
    pool = num_negatives + 1 if candidates == "sampled" else data.num_items
    if max(ks) > pool:
      raise UserError(f"--ks: K={max(ks)} is larger than the {pool} "
                      "candidates each user's item is ranked among")
    self.target = target
    self.ks = ks
    self.batch_size = batch_size
    if candidates == "full":
      self.batch_size = max(1, min(batch_size,
                                   MAX_SCORES // (data.num_items + 1)))
    self.candidates = candidates
    self.num_items = data.num_items
    self.users = data.eval_users(target)
    self.targets = data.targets(target)[self.users].astype(np.int32)
    offsets, items = data.history(target)
    self.histories = tail_matrix(offsets, items, self.users, maxlen)
    self._lengths = np.count_nonzero(self.histories, axis=1)
    self._order = np.argsort(self._lengths, kind="stable")
    self._offsets, self._items = offsets, items
    self.negatives = None
    if candidates == "sampled":
      self.negatives = self._sample_negatives(data, num_negatives,
                                              negative_sampling, seed)

  def _sample_negatives(self, data, num, how, seed):
    if num < 1:
      raise UserError(f"--num_negatives must be >= 1, got {num}")
    keys = self.exclusion_keys()
    probs = None
    allowed = np.ones(data.num_items + 1, dtype=bool)
    allowed[0] = False
    if how == "popularity":
      pop = data.item_popularity()[1:].astype(np.float64)
      probs = pop / pop.sum()
      allowed[1:] = pop > 0
    excluded_users = keys // (data.num_items + 1)
    excluded_allowed = np.bincount(
        excluded_users, weights=allowed[keys % (data.num_items + 1)],
        minlength=data.num_users)
    available = allowed.sum() - excluded_allowed[self.users]
    if len(self.users) and available.min() < num:
      u = self.users[np.argmin(available)]
      raise UserError(f"--num_negatives={num}: user {data.user_ids[u]} has "
                      f"only {int(available.min())} items to sample from")
    rng = np.random.default_rng(seed)
    return _distinct_negatives(rng, keys, self.users, num, data.num_items,
                               probs)

  def _excluded(self, rows: np.ndarray) -> np.ndarray:
    """[m, 2] unique (batch row, item) pairs that are not candidates for the
    evaluated users at positions ``rows``: the history, padding and the
    held-out item."""
    users = self.users[rows]
    n = len(users)
    begins, ends = self._offsets[users], self._offsets[users + 1]
    lengths = ends - begins
    batch_rows = np.repeat(np.arange(n), lengths)
    within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths,
                                                  lengths)
    hist = self._items[np.repeat(begins, lengths) + within]
    ar = np.arange(n)
    keys = np.unique(np.concatenate([
        batch_rows * (self.num_items + 1) + hist, ar * (self.num_items + 1),
        ar * (self.num_items + 1) + self.targets[rows]]).astype(np.int64))
    return np.stack([keys // (self.num_items + 1), keys % (self.num_items + 1)],
                    axis=1)

  def exclusion_keys(self) -> np.ndarray:
    """Sorted ``user * (I + 1) + item`` keys of the items that are never a
    candidate for an evaluated user: the history and the held-out item."""
    return np.union1d(history_keys(self._offsets, self._items, self.num_items),
                      self.users.astype(np.int64) * (self.num_items + 1)
                      + self.targets)

  def batches(self):
    """Yields (rows, histories): the positions in ``users`` of up to
    batch_size users of similar history length, and their [n, L] histories
    cut to the longest one (the columns cut are padding in every row), so a
    sequence model does not run over padding."""
    for start in range(0, len(self.users), self.batch_size):
      rows = self._order[start:start + self.batch_size]
      width = max(int(self._lengths[rows].max(initial=0)), 1)
      yield rows, self.histories[rows, self.histories.shape[1] - width:]

  def evaluate(self, scorer: Scorer) -> EvalResult:
    """Scores all evaluated users in batches (see ``batches``; a user's
    scores do not depend on the batch, so the order changes no rank) and
    ranks their held-out items."""
    began = time.perf_counter()
    ranks = np.zeros(len(self.users), dtype=np.int64)
    for rows, histories in self.batches():
      scores = tf.convert_to_tensor(scorer(self.users[rows], histories),
                                    dtype=tf.float32)
      targets = tf.constant(self.targets[rows])
      if self.negatives is None:
        r = _full_ranks(scores, targets, tf.constant(self._excluded(rows)))
      else:
        r = _sampled_ranks(scores, targets, tf.constant(self.negatives[rows]))
      ranks[rows] = r.numpy()
    return EvalResult(self.target, self.users, ranks, self.ks,
                      time.perf_counter() - began)
