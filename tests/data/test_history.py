import numpy as np
from hypothesis import given, settings, strategies as st

from asasrec_tf.data.history import (contains, history_keys, items_per_user,
                                     sample_excluding)


@st.composite
def histories(draw):
  num_items = draw(st.integers(2, 9))
  rows = draw(st.lists(st.lists(st.integers(1, num_items), max_size=6),
                       min_size=1, max_size=6))
  offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
  items = np.array([i for r in rows for i in r], np.int32)
  return num_items, rows, offsets.astype(np.int64), items


@settings(max_examples=80, deadline=None)
@given(h=histories(), seed=st.integers(0, 2**16))
def test_membership_counts_and_sampling_agree_with_sets(h, seed):
  num_items, rows, offsets, items = h
  keys = history_keys(offsets, items, num_items)
  # sorted and distinct: the keys np.unique gives
  users_of = np.repeat(np.arange(len(rows)), [len(r) for r in rows])
  np.testing.assert_array_equal(
      keys, np.unique(users_of.astype(np.int64) * (num_items + 1) + items))
  sets = [set(r) for r in rows]
  users = np.repeat(np.arange(len(rows)), num_items)
  probe = np.tile(np.arange(1, num_items + 1), len(rows))
  expected = [int(i) in sets[u] for u, i in zip(users, probe)]
  np.testing.assert_array_equal(contains(keys, users, probe, num_items),
                                expected)
  np.testing.assert_array_equal(items_per_user(keys, len(rows), num_items),
                                [len(s) for s in sets])
  open_users = np.array([u for u, s in enumerate(sets) if len(s) < num_items])
  if len(open_users):
    draws = sample_excluding(np.random.default_rng(seed), keys,
                             np.repeat(open_users, 5), num_items)
    for u, i in zip(np.repeat(open_users, 5), draws):
      assert 1 <= i <= num_items and int(i) not in sets[u]


def test_empty_history_contains_nothing():
  keys = history_keys(np.array([0, 0]), np.array([], np.int32), 3)
  assert not contains(keys, np.array([0]), np.array([1]), 3).any()
