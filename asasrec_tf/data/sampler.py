"""Training batches, re-sampled every epoch.

``TrainingSampler`` feeds sequential models, ``PairSampler`` pairwise (BPR)
models.

For each user with at least two training items, the input is the last
``maxlen`` training items but one and the positives are the same window
shifted by one (the next item at every position), left-padded with 0. As in
kang205/SASRec and the authors' code, a user's first item is never a target:
its input would be all padding, the hidden state there is the same for every
user (the final layer norm's bias), and the term would only train a global
popularity bias (``target_first_item=True`` keeps it,
and then users with one training item take part too). One negative per
target (``num_negatives`` for gSASRec's loss) is drawn uniformly from the
items outside the user's training history (the only history a model may
know; held-out items are not excluded, which would leak them). Everything is
vectorised numpy; ``tf.data`` receives the
epoch one batch at a time, sliced from the sampler's arrays, so that memory
does not hold another copy of the epoch.

Epoch ``e`` draws from ``np.random.default_rng([seed, e])``, so any epoch can
be reproduced (or resumed) on its own. With several negatives per target
they are drawn batch by batch (from ``[seed, e, first row]``), so that the
epoch's [users, maxlen, k] block never exists at once.
"""

from __future__ import annotations

from typing import Dict

import numpy as np
import tensorflow as tf

from asasrec_tf.data.dataset import SequenceDataset, tail_matrix
from asasrec_tf.data.history import (history_keys, items_per_user,
                                     sample_excluding)
from asasrec_tf.errors import UserError


class TrainingSampler:
  """Shuffled epochs of (inputs, positives, negatives), each [batch, maxlen]
  (negatives [batch, maxlen, k] when ``num_negatives`` k > 1; 0 at padding).

  With ``length_buckets``, each batch holds users of similar training length
  (users sorted by length, random among equal lengths, cut into batches whose
  order is shuffled; the one partial batch comes last) and is trimmed to
  [batch, longest window in the batch]: the columns cut are padding in every
  row, so the model computes exactly the same losses with far less work when
  most sequences are shorter than maxlen (Video: mean 7 of 50).
  """

  def __init__(self, data: SequenceDataset, maxlen: int, batch_size: int,
               seed: int = 0, length_buckets: bool = False,
               target_first_item: bool = False, num_negatives: int = 1):
    if maxlen < 1 or batch_size < 1 or num_negatives < 1:
      raise ValueError("maxlen, batch_size and num_negatives must be "
                       "positive")
    if num_negatives >= data.num_items:
      raise UserError(f"{data.name}: {num_negatives} negatives per target "
                      f"need more than {data.num_items} items")
    self.num_negatives = num_negatives
    self.num_items = data.num_items
    self.maxlen = maxlen
    self.batch_size = batch_size
    self.seed = seed
    self.length_buckets = length_buckets
    self.target_first_item = target_first_item
    self.users = np.flatnonzero(
        data.train_lengths >= (1 if target_first_item else 2))
    if not len(self.users):
      raise UserError(f"{data.name}: no user has "
                      f"{'a training item' if target_first_item else 'two training items'}"
                      ", so there is nothing to train on")
    # One [users, maxlen + 1] window per user: a batch's inputs and
    # positives are its two shifted views, cut per batch (two stored copies
    # held 0.8 GB at 2M users, maxlen 50).
    self.windows = tail_matrix(data.train_offsets, data.train_items,
                               self.users, maxlen + 1)
    self.keys = _negative_keys(data)
    # Real targets per user: the positives' nonzero entries (without the
    # first item, those whose input is an item: left padding puts one after
    # every item).
    self._targets = np.count_nonzero(
        self.windows[:, 1:] if target_first_item else self.windows[:, :-1],
        axis=1)

  @property
  def num_users(self) -> int:
    return len(self.users)

  @property
  def steps_per_epoch(self) -> int:
    return -(-self.num_users // self.batch_size)

  def epoch_arrays(self, epoch: int) -> Dict[str, np.ndarray]:
    """The epoch's examples, shuffled: int32 ``users`` [n] and ``inputs``,
    ``positives``, ``negatives`` [n, maxlen] (or [n, maxlen, k]): what
    dataset() batches."""
    batches = list(self._batches(epoch))
    return {key: np.concatenate([b[key] for b in batches])
            for key in batches[0]}

  def _batches(self, epoch: int):
    """Yields the epoch's batches as dicts of int32 numpy arrays."""
    perm, negatives_at = self._epoch(epoch)
    for start in range(0, len(perm), self.batch_size):
      rows = perm[start:start + self.batch_size]
      inputs, positives = self._examples(rows)
      yield {"users": self.users[rows].astype(np.int32), "inputs": inputs,
             "positives": positives,
             "negatives": negatives_at(start, rows, positives > 0)}

  def _examples(self, rows: np.ndarray):
    """([len(rows), maxlen] inputs, positives) of the windows ``rows``."""
    window = self.windows[rows]
    inputs, positives = window[:, :-1], window[:, 1:]
    if not self.target_first_item:
      positives = np.where(inputs > 0, positives, 0).astype(np.int32)
    return np.ascontiguousarray(inputs), np.ascontiguousarray(positives)

  def _epoch(self, epoch: int):
    """(perm [n], negatives_at): the epoch's order of users, and a function
    of a batch's first position, rows and real targets (positives > 0)
    giving that batch's negatives.

    One negative per target is drawn for the whole epoch at once, right
    after the permutation (so that the draws do not depend on the batching),
    and kept flat, at real targets only; several are drawn batch by batch.
    """
    rng = np.random.default_rng([self.seed, epoch])
    perm = rng.permutation(self.num_users)
    if self.length_buckets:
      perm = self._bucketed(rng, perm)
    if self.num_negatives > 1:
      def negatives_at(start, rows, real):
        return self._negatives(np.random.default_rng([self.seed, epoch, start]),
                               rows, real)
      return perm, negatives_at
    counts = self._targets[perm]
    draws = sample_excluding(rng, self.keys, np.repeat(self.users[perm], counts),
                             self.num_items)
    ends = np.cumsum(counts)

    def negatives_at(start, rows, real):
      first = ends[start - 1] if start else 0
      return self._place(real, draws[first:ends[start + len(rows) - 1]])
    return perm, negatives_at

  def _place(self, real: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """``draws`` (k per real target, in row-major order) laid out as
    negatives [n, maxlen] (or [..., k]) of a batch whose real targets are
    ``real`` [n, maxlen], 0 at padding."""
    shape = real.shape + ((self.num_negatives,) if self.num_negatives > 1
                          else ())
    negatives = np.zeros(shape, np.int32)
    negatives[real] = draws.reshape((-1,) + shape[2:])
    return negatives

  def _negatives(self, rng: np.random.Generator, rows: np.ndarray,
                 real: np.ndarray):
    """Negatives of the windows ``rows`` (see _place): items outside each
    user's training history, k per real target."""
    users = np.repeat(self.users[rows], self._targets[rows])
    return self._place(real, sample_excluding(
        rng, self.keys, np.repeat(users, self.num_negatives), self.num_items))

  def _bucketed(self, rng: np.random.Generator, perm: np.ndarray):
    """``perm`` reordered into batches of similar window lengths."""
    ordered = perm[np.argsort(self._targets[perm], kind="stable")]
    full = len(ordered) // self.batch_size * self.batch_size
    batches = ordered[:full].reshape(-1, self.batch_size)
    return np.concatenate([batches[rng.permutation(len(batches))].ravel(),
                           ordered[full:]])

  def dataset(self, epoch: int) -> tf.data.Dataset:
    """The epoch as batches of dicts of int32 tensors (see epoch_arrays),
    sliced from the sampler's arrays one batch at a time: no copy of the
    whole epoch is made for TensorFlow."""
    window = tf.TensorSpec([None, self.maxlen], tf.int32)
    spec = {"users": tf.TensorSpec([None], tf.int32), "inputs": window,
            "positives": window,
            "negatives": self._negatives_spec(self.maxlen)}
    ds = tf.data.Dataset.from_generator(lambda: self._batches(epoch),
                                        output_signature=spec)
    if self.length_buckets:
      ds = ds.map(_trim_padding_columns)
    return _pipeline(ds)

  def element_spec(self) -> Dict[str, tf.TensorSpec]:
    width = None if self.length_buckets else self.maxlen
    spec = tf.TensorSpec([None, width], tf.int32)
    return {"users": tf.TensorSpec([None], tf.int32), "inputs": spec,
            "positives": spec, "negatives": self._negatives_spec(width)}

  def _negatives_spec(self, width) -> tf.TensorSpec:
    k = () if self.num_negatives == 1 else (self.num_negatives,)
    return tf.TensorSpec((None, width) + k, tf.int32)


def _negative_keys(data: SequenceDataset) -> np.ndarray:
  """History keys of the training items, which negatives must avoid.

  Raises:
    UserError: a user's training items cover every item, so no negative
      exists for them (drawing one would never end).
  """
  keys = history_keys(data.train_offsets, data.train_items, data.num_items)
  distinct = items_per_user(keys, data.num_users, data.num_items)
  full = np.flatnonzero(distinct >= data.num_items)
  if full.size:
    raise UserError(f"{data.name}: user {data.user_ids[full[0]]} has "
                    "interacted with every item, so no negative can be "
                    "sampled for them")
  return keys


def _pipeline(ds: tf.data.Dataset) -> tf.data.Dataset:
  """``ds`` with two batches prefetched and tf.data's autotuner off.

  Every epoch builds a new pipeline, and with the autotuner on (tf.data's
  default) releasing the previous one waits for its tuning thread's next
  wake-up, whose period grows to 2.56 s: on 2 cores a Video epoch of about
  5 s of steps took 5.15 or 10.27 s; without it, 5.0-5.5 s (side by side,
  same losses). The batches are ready-made slices of in-memory arrays, so
  there is nothing for it to tune.
  """
  options = tf.data.Options()
  options.autotune.enabled = False
  return ds.prefetch(2).with_options(options)


def _trim_padding_columns(batch):
  """Drops the leading columns that are padding in every row (left-padded
  windows, so the positives' longest non-zero run is the width kept)."""
  width = tf.reduce_max(tf.reduce_sum(
      tf.cast(batch["positives"] > 0, tf.int32), axis=1))
  start = tf.shape(batch["positives"])[1] - tf.maximum(width, 1)
  return {k: (v[:, start:] if k != "users" else v) for k, v in batch.items()}


class PairSampler:
  """Shuffled epochs of (user, positive, negative) triples for BPR/APR.

  Every training interaction is one example per epoch; its negative is drawn
  uniformly from the items outside the user's training history.
  """

  def __init__(self, data: SequenceDataset, batch_size: int, seed: int = 0):
    if batch_size < 1:
      raise ValueError("batch_size must be positive")
    self.num_items = data.num_items
    self.batch_size = batch_size
    self.seed = seed
    self.users = np.repeat(np.arange(data.num_users, dtype=np.int32),
                           data.train_lengths)
    self.items = data.train_items.astype(np.int32)
    self.keys = _negative_keys(data)

  @property
  def steps_per_epoch(self) -> int:
    return -(-len(self.users) // self.batch_size)

  def epoch_arrays(self, epoch: int) -> Dict[str, np.ndarray]:
    """The epoch's triples, shuffled: int32 arrays [num_interactions]."""
    rng = np.random.default_rng([self.seed, epoch])
    perm = rng.permutation(len(self.users))
    users = self.users[perm]
    return {"users": users, "positives": self.items[perm],
            "negatives": sample_excluding(rng, self.keys, users,
                                          self.num_items)}

  def dataset(self, epoch: int) -> tf.data.Dataset:
    """The epoch's triples in batches, sliced one batch at a time."""
    arrays = self.epoch_arrays(epoch)
    n = len(arrays["users"])

    def batches():
      for start in range(0, n, self.batch_size):
        yield {k: v[start:start + self.batch_size] for k, v in arrays.items()}

    return _pipeline(tf.data.Dataset.from_generator(
        batches, output_signature=self.element_spec()))

  def element_spec(self) -> Dict[str, tf.TensorSpec]:
    spec = tf.TensorSpec([None], tf.int32)
    return {"users": spec, "positives": spec, "negatives": spec}
