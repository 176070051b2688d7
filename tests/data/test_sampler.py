import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from asasrec_tf.data import preprocess, readers
from asasrec_tf.data.sampler import TrainingSampler
from asasrec_tf.errors import UserError


@st.composite
def datasets(draw):
  num_items = draw(st.integers(3, 12))
  num_users = draw(st.integers(1, 8))
  users, items = [], []
  for u in range(num_users):
    pool = draw(st.lists(st.integers(1, num_items), min_size=1, max_size=15))
    users += [u] * len(pool)
    items += pool
  inter = readers.Interactions(np.array(users), np.array(items), None)
  # item ids are remapped to 1..I over the items that occur
  return preprocess.preprocess(inter, "h", "loo_valid")


@settings(max_examples=60, deadline=None)
@given(data=datasets(), maxlen=st.integers(1, 6), seed=st.integers(0, 2**16),
       epoch=st.integers(0, 5))
def test_negatives_are_valid_and_windows_are_shifted(data, maxlen, seed, epoch):
  distinct = [len(set(data.train_sequence(u).tolist()))
              for u in range(data.num_users)]
  assume(max(distinct) < data.num_items)  # else no negative exists (tested below)
  sampler = TrainingSampler(data, maxlen, batch_size=3, seed=seed)
  batch = sampler.epoch_arrays(epoch)
  inputs, pos, neg = batch["inputs"], batch["positives"], batch["negatives"]
  assert inputs.shape == pos.shape == neg.shape == (sampler.num_users, maxlen)
  # negatives exactly where positives are real, never padding
  np.testing.assert_array_equal(neg > 0, pos > 0)
  assert neg.max(initial=0) <= data.num_items
  # every user with training items exactly once per epoch
  assert sorted(batch["users"].tolist()) == [
      u for u in range(data.num_users) if data.train_lengths[u] > 0]
  for r, u in enumerate(batch["users"]):
    history = set(data.train_sequence(u).tolist())
    assert not (set(neg[r][neg[r] > 0].tolist()) & history)
    # left padding, and inputs are the positives shifted right by one
    seq = data.train_sequence(u)
    window = np.r_[np.zeros(maxlen + 1, int), seq][-(maxlen + 1):]
    np.testing.assert_array_equal(inputs[r], window[:-1])
    np.testing.assert_array_equal(pos[r], window[1:])


def test_epochs_are_seeded_and_differ(tiny_dataset):
  a = TrainingSampler(tiny_dataset, 3, 2, seed=1)
  b = TrainingSampler(tiny_dataset, 3, 2, seed=1)
  for key in ("inputs", "negatives"):
    np.testing.assert_array_equal(a.epoch_arrays(4)[key], b.epoch_arrays(4)[key])
  draws = {a.epoch_arrays(e)["negatives"].tobytes() for e in range(6)}
  assert len(draws) > 1


def test_users_without_training_items_are_skipped():
  inter = readers.Interactions(np.array([1, 2, 2]), np.array([1, 2, 3]), None)
  data = preprocess.preprocess(inter, "t", "loo")
  sampler = TrainingSampler(data, 4, 8)
  np.testing.assert_array_equal(sampler.users, [1])


def test_tf_dataset_batches(tiny_dataset):
  sampler = TrainingSampler(tiny_dataset, 3, batch_size=3, seed=0)
  batches = list(sampler.dataset(0))
  assert [int(b["inputs"].shape[0]) for b in batches] == [3, 1]
  assert sampler.steps_per_epoch == 2


def test_user_with_every_item_is_refused():
  inter = readers.Interactions(np.array([1, 1, 1, 1, 2, 2]),
                               np.array([1, 2, 9, 1, 1, 2]), None)
  # loo: user 1 trains on 1 2 9 (all three items) and is tested on 1
  data = preprocess.preprocess(inter, "t", "loo")
  with pytest.raises(UserError, match="user 1 has interacted with every item"):
    TrainingSampler(data, 4, 8)


@settings(max_examples=40, deadline=None)
@given(data=datasets(), seed=st.integers(0, 2**16))
def test_pair_sampler_covers_every_interaction(data, seed):
  from asasrec_tf.data.sampler import PairSampler
  distinct = [len(set(data.train_sequence(u).tolist()))
              for u in range(data.num_users)]
  assume(max(distinct) < data.num_items)
  sampler = PairSampler(data, batch_size=4, seed=seed)
  batch = sampler.epoch_arrays(1)
  pairs = sorted(zip(batch["users"].tolist(), batch["positives"].tolist()))
  expect = sorted((u, int(i)) for u in range(data.num_users)
                  for i in data.train_sequence(u))
  assert pairs == expect
  for u, j in zip(batch["users"], batch["negatives"]):
    assert 1 <= j <= data.num_items
    assert j not in set(data.train_sequence(u).tolist())


def _left_pad(rows, maxlen):
  return np.concatenate([np.zeros((rows.shape[0], maxlen - rows.shape[1]),
                                  rows.dtype), rows], axis=1)


@settings(max_examples=40, deadline=None)
@given(data=datasets(), maxlen=st.integers(1, 6), batch=st.integers(1, 4),
       seed=st.integers(0, 2**16))
def test_length_buckets_keep_every_example_and_cut_only_padding(
    data, maxlen, batch, seed):
  distinct = [len(set(data.train_sequence(u).tolist()))
              for u in range(data.num_users)]
  assume(max(distinct) < data.num_items)
  plain = TrainingSampler(data, maxlen, batch, seed=seed).epoch_arrays(1)
  bucketed = TrainingSampler(data, maxlen, batch, seed=seed,
                             length_buckets=True)
  rows = {}
  widths = []
  for b in bucketed.dataset(1):
    b = {k: v.numpy() for k, v in b.items()}
    width = b["positives"].shape[1]
    lengths = np.count_nonzero(b["positives"], axis=1)
    # the kept width is the longest window of the batch; cut columns were
    # padding in every row
    assert width == max(lengths.max(), 1)
    widths.append((lengths.min(), lengths.max(), len(lengths)))
    for i, u in enumerate(b["users"]):
      rows[u] = tuple(_left_pad(b[k][i:i + 1], maxlen).tobytes()
                      for k in ("inputs", "positives"))
  expected = {u: tuple(plain[k][i:i + 1].tobytes()
                       for k in ("inputs", "positives"))
              for i, u in enumerate(plain["users"])}
  assert rows == expected     # every user once, same windows
  # full batches cover disjoint, sorted ranges of lengths
  spans = sorted(w[:2] for w in widths if w[2] == batch)
  assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
  # only the last batch may be partial
  assert all(w[2] == batch for w in widths[:-1])


def test_length_buckets_signature_has_a_free_width(tiny_dataset):
  spec = TrainingSampler(tiny_dataset, 3, 2, length_buckets=True).element_spec()
  assert spec["inputs"].shape.as_list() == [None, None]
