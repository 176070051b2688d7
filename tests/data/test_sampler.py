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
       epoch=st.integers(0, 5), first=st.booleans())
def test_negatives_are_valid_and_windows_are_shifted(data, maxlen, seed, epoch,
                                                     first):
  distinct = [len(set(data.train_sequence(u).tolist()))
              for u in range(data.num_users)]
  assume(max(distinct) < data.num_items)  # else no negative exists (tested below)
  least = 1 if first else 2
  assume(data.train_lengths.max() >= least)  # else nothing to train (below)
  sampler = TrainingSampler(data, maxlen, batch_size=3, seed=seed,
                            target_first_item=first)
  batch = sampler.epoch_arrays(epoch)
  inputs, pos, neg = batch["inputs"], batch["positives"], batch["negatives"]
  assert inputs.shape == pos.shape == neg.shape == (sampler.num_users, maxlen)
  # negatives exactly where positives are real, never padding
  np.testing.assert_array_equal(neg > 0, pos > 0)
  assert neg.max(initial=0) <= data.num_items
  # every user with enough training items exactly once per epoch
  assert sorted(batch["users"].tolist()) == [
      u for u in range(data.num_users) if data.train_lengths[u] >= least]
  for r, u in enumerate(batch["users"]):
    history = set(data.train_sequence(u).tolist())
    assert not (set(neg[r][neg[r] > 0].tolist()) & history)
    # left padding, and inputs are the positives shifted right by one
    seq = data.train_sequence(u)
    window = np.r_[np.zeros(maxlen + 1, int), seq][-(maxlen + 1):]
    np.testing.assert_array_equal(inputs[r], window[:-1])
    if first:
      np.testing.assert_array_equal(pos[r], window[1:])
    else:  # the first item is never a target: no target after padding
      np.testing.assert_array_equal(
          pos[r], np.where(window[:-1] > 0, window[1:], 0))
      assert np.count_nonzero(pos[r]) == min(len(seq) - 1, maxlen)


def test_epochs_are_seeded_and_differ(tiny_dataset):
  a = TrainingSampler(tiny_dataset, 3, 2, seed=1)
  b = TrainingSampler(tiny_dataset, 3, 2, seed=1)
  for key in ("inputs", "negatives"):
    np.testing.assert_array_equal(a.epoch_arrays(4)[key], b.epoch_arrays(4)[key])
  draws = {a.epoch_arrays(e)["negatives"].tobytes() for e in range(6)}
  assert len(draws) > 1


def test_first_item_is_a_target_only_when_asked():
  # One user, items 5 6 7 8 (ids remapped to 1 2 3 4); loo: trains on 1 2 3.
  inter = readers.Interactions(np.zeros(4, int), np.array([5, 6, 7, 8]), None)
  data = preprocess.preprocess(inter, "t", "loo")
  # maxlen 4: the window of 5 is [0 0 1 2 3]; inputs [0 0 1 2]
  reference = TrainingSampler(data, 4, 8).epoch_arrays(0)
  np.testing.assert_array_equal(reference["inputs"], [[0, 0, 1, 2]])
  # kang205 / the authors: targets 2 and 3 only (pairs 1->2, 2->3)
  np.testing.assert_array_equal(reference["positives"], [[0, 0, 2, 3]])
  np.testing.assert_array_equal(reference["negatives"] > 0,
                                [[False, False, True, True]])
  legacy = TrainingSampler(data, 4, 8, target_first_item=True).epoch_arrays(0)
  # also item 1 as the target of an all-padding input
  np.testing.assert_array_equal(legacy["positives"], [[0, 1, 2, 3]])


def test_users_with_fewer_than_two_training_items_are_skipped():
  # loo: user 1 trains on 1 2, user 2 on 4, user 3 on nothing
  inter = readers.Interactions(np.array([1, 1, 1, 2, 2, 3]),
                               np.array([1, 2, 3, 4, 5, 6]), None)
  data = preprocess.preprocess(inter, "t", "loo")
  np.testing.assert_array_equal(TrainingSampler(data, 4, 8).users, [0])
  np.testing.assert_array_equal(
      TrainingSampler(data, 4, 8, target_first_item=True).users, [0, 1])


def test_no_user_to_train_on_is_refused():
  inter = readers.Interactions(np.array([1, 1, 2, 2]), np.array([1, 2, 3, 4]),
                               None)
  data = preprocess.preprocess(inter, "t", "loo")  # one training item each
  with pytest.raises(UserError, match="no user has two training items"):
    TrainingSampler(data, 4, 8)


def test_tf_dataset_batches(tiny_dataset):
  # training lengths 3 1 2 2: three users have two items or more
  sampler = TrainingSampler(tiny_dataset, 3, batch_size=2, seed=0)
  batches = list(sampler.dataset(0))
  assert [int(b["inputs"].shape[0]) for b in batches] == [2, 1]
  assert sampler.steps_per_epoch == 2


def test_pipelines_run_without_the_autotuner(tiny_dataset):
  # Releasing an autotuned pipeline waits up to 2.56 s (sampler._pipeline).
  from asasrec_tf.data.sampler import PairSampler
  for sampler in (TrainingSampler(tiny_dataset, 3, batch_size=2),
                  TrainingSampler(tiny_dataset, 3, 2, length_buckets=True),
                  PairSampler(tiny_dataset, batch_size=2)):
    assert sampler.dataset(1).options().autotune.enabled is False


def test_user_with_every_item_is_refused():
  from asasrec_tf.data.sampler import PairSampler
  inter = readers.Interactions(np.array([1, 1, 1, 1, 2, 2]),
                               np.array([1, 2, 9, 1, 1, 2]), None)
  # loo: user 1 trains on 1 2 9 (all three items) and is tested on 1
  data = preprocess.preprocess(inter, "t", "loo")
  with pytest.raises(UserError, match="user 1 has interacted with every item"):
    TrainingSampler(data, 4, 8)
  # BPR/APR's sampler used to loop forever here
  with pytest.raises(UserError, match="user 1 has interacted with every item"):
    PairSampler(data, 8)


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
  assume(data.train_lengths.max() >= 2)  # else nothing to train on
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


@pytest.mark.parametrize("buckets", [False, True])
def test_the_dataset_is_the_epochs_arrays_batch_by_batch(tiny_dataset,
                                                         buckets):
  from asasrec_tf.data.sampler import PairSampler
  for sampler in (TrainingSampler(tiny_dataset, 3, batch_size=2, seed=4,
                                  length_buckets=buckets),
                  TrainingSampler(tiny_dataset, 3, batch_size=2, seed=4,
                                  length_buckets=buckets, num_negatives=3),
                  PairSampler(tiny_dataset, batch_size=3, seed=4)):
    arrays = sampler.epoch_arrays(5)
    batches = list(sampler.dataset(5))
    for key, value in arrays.items():
      got = [b[key].numpy() for b in batches]
      if buckets and value.ndim >= 2:   # trimmed columns are all padding
        got = [np.pad(g, [(0, 0), (value.shape[1] - g.shape[1], 0)] +
                      [(0, 0)] * (value.ndim - 2)) for g in got]
      np.testing.assert_array_equal(np.concatenate(got), value)


@settings(max_examples=40, deadline=None)
@given(data=datasets(), maxlen=st.integers(1, 6), k=st.integers(2, 5),
       seed=st.integers(0, 2**16))
def test_k_negatives_per_target_avoid_the_history(data, maxlen, k, seed):
  distinct = [len(set(data.train_sequence(u).tolist()))
              for u in range(data.num_users)]
  assume(max(distinct) < data.num_items and k < data.num_items)
  assume(data.train_lengths.max() >= 2)
  sampler = TrainingSampler(data, maxlen, batch_size=2, seed=seed,
                            num_negatives=k)
  batch = sampler.epoch_arrays(3)
  neg, pos = batch["negatives"], batch["positives"]
  assert neg.shape == pos.shape + (k,) and neg.dtype == np.int32
  # k negatives at every real target, none at padding
  np.testing.assert_array_equal(neg > 0, np.repeat((pos > 0)[..., None], k, -1))
  assert neg.max(initial=0) <= data.num_items
  for r, u in enumerate(batch["users"]):
    history = set(data.train_sequence(u).tolist())
    assert not (set(neg[r][neg[r] > 0].tolist()) & history)
  # seeded: the same epoch twice gives the same draws
  again = TrainingSampler(data, maxlen, batch_size=2, seed=seed,
                          num_negatives=k).epoch_arrays(3)
  np.testing.assert_array_equal(again["negatives"], neg)


def test_one_negative_per_target_is_the_whole_epochs_draw(tiny_dataset):
  """With k = 1 the negatives are drawn for the whole epoch at once, right
  after the permutation (what every committed run trained on): a
  transcription of that draw gives the same arrays, whatever the batch."""
  from asasrec_tf.data.history import sample_excluding
  for batch_size in (1, 2, 5):
    sampler = TrainingSampler(tiny_dataset, 3, batch_size, seed=7)
    rng = np.random.default_rng([7, 2])
    perm = rng.permutation(sampler.num_users)
    got = sampler.epoch_arrays(2)
    np.testing.assert_array_equal(got["users"], sampler.users[perm])
    real = got["positives"] > 0
    users = np.broadcast_to(got["users"][:, None], real.shape)
    expected = np.zeros(real.shape, np.int32)
    expected[real] = sample_excluding(rng, sampler.keys, users[real],
                                      tiny_dataset.num_items)
    np.testing.assert_array_equal(got["negatives"], expected)


def test_more_negatives_than_items_are_refused(tiny_dataset):
  with pytest.raises(UserError, match="negatives per target"):
    TrainingSampler(tiny_dataset, 3, 2, num_negatives=tiny_dataset.num_items)
