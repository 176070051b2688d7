import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asasrec_tf.data import preprocess, readers
from asasrec_tf.errors import UserError


def inter(users, items, times=None):
  return readers.Interactions(np.array(users), np.array(items),
                              None if times is None else np.array(times, float))


def test_orders_by_time_with_file_order_breaking_ties():
  # user 7: (item 30, t=2), (item 10, t=1), (item 20, t=2) -> 10, 30, 20
  data = preprocess.preprocess(inter([7, 7, 7], [30, 10, 20], [2, 1, 2]), "t",
                               "loo")
  raw = data.item_ids[np.r_[data.train_sequence(0), data.test_items[0]]]
  np.testing.assert_array_equal(raw, [10, 30, 20])


def test_remaps_items_to_one_based_and_users_in_id_order():
  data = preprocess.preprocess(inter([9, 9, 3, 3], [500, 7, 7, 42]), "t", "loo")
  np.testing.assert_array_equal(data.user_ids, [3, 9])
  np.testing.assert_array_equal(data.item_ids[1:], [7, 42, 500])
  assert data.num_items == 3
  # user 3 (internal 0): 7 42 -> 1 2; user 9: 500 7 -> 3 1
  np.testing.assert_array_equal(data.train_items, [1, 3])
  np.testing.assert_array_equal(data.test_items, [2, 1])


def test_loo_valid_split_and_short_users(tiny_dataset):
  d = tiny_dataset
  # user 10: 1 2 3 4 5 -> train 1 2 3, valid 4, test 5
  np.testing.assert_array_equal(d.train_sequence(0), [1, 2, 3])
  assert (d.valid_items[0], d.test_items[0]) == (4, 5)
  # user 30 has 2 items (< 3): all in training, not evaluated
  np.testing.assert_array_equal(d.train_sequence(2), [6, 1])
  assert (d.valid_items[2], d.test_items[2]) == (0, 0)
  # user 40: 3 3 5 6 -> a repeated item stays
  np.testing.assert_array_equal(d.train_sequence(3), [3, 3])
  np.testing.assert_array_equal(d.eval_users("test"), [0, 1, 3])


def test_loo_holds_out_every_users_last_item():
  data = preprocess.preprocess(inter([1, 2, 2], [5, 6, 7]), "t", "loo")
  # a user with one interaction is tested with an empty history (Table 1)
  assert data.train_lengths.tolist() == [0, 1]
  assert data.test_items.tolist() == [1, 3]
  assert not data.valid_items.any()


def test_item_filter_is_one_pass():
  # items: a x3, b x1, c x2 -> with min 2: b dropped; user 2 (only b) vanishes
  data = preprocess.preprocess(
      inter([1, 1, 1, 2, 3, 3, 3], ["a", "c", "a", "b", "a", "c", "a"]), "t",
      "loo", min_item_interactions=2)
  np.testing.assert_array_equal(data.user_ids, [1, 3])
  np.testing.assert_array_equal(data.item_ids[1:], ["a", "c"])
  assert data.stats()["interactions"] == 6


def test_filter_that_removes_everything_is_an_error():
  with pytest.raises(UserError, match="min_item_interactions"):
    preprocess.preprocess(inter([1, 2], [1, 2]), "t", "loo",
                          min_item_interactions=5)


def test_unknown_split():
  with pytest.raises(UserError, match="--split"):
    preprocess.preprocess(inter([1], [1]), "t", "random")


def reference(users, items, times, split, min_item):
  """The rules of preprocess() written out user by user (module docstring)."""
  rows = list(zip(users.tolist(), items.tolist(),
                  times.tolist() if times is not None else [0] * len(users),
                  range(len(users))))
  if min_item:
    count = {}
    for _, i, _, _ in rows:
      count[i] = count.get(i, 0) + 1
    rows = [r for r in rows if count[r[1]] >= min_item]
  item_ids = sorted({r[1] for r in rows})
  index = {v: k + 1 for k, v in enumerate(item_ids)}
  out = {}
  for u in sorted({r[0] for r in rows}):
    seq = [index[r[1]] for r in sorted((r for r in rows if r[0] == u),
                                       key=lambda r: (r[2], r[3]))]
    held = (2 if len(seq) >= 3 else 0) if split == "loo_valid" else 1
    out[u] = (seq[:len(seq) - held], seq[len(seq) - held:])
  return item_ids, out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 9),
                          st.integers(0, 3)), min_size=1, max_size=40),
       st.sampled_from(["loo", "loo_valid"]), st.booleans(),
       st.sampled_from([0, 2]))
def test_matches_a_user_by_user_reference(rows, split, timed, min_item):
  users, items, times = (np.array(c) for c in zip(*rows))
  times = times.astype(float) if timed else None
  item_ids, want = reference(users, items, times, split, min_item)
  if not want:
    return  # every item filtered out: the error case has its own test
  data = preprocess.preprocess(readers.Interactions(users, items, times), "t",
                               split, min_item_interactions=min_item)
  np.testing.assert_array_equal(data.item_ids[1:], item_ids)
  np.testing.assert_array_equal(data.user_ids, sorted(want))
  for k, u in enumerate(sorted(want)):
    train, held = want[u]
    np.testing.assert_array_equal(data.train_sequence(k), train)
    got_held = [x for x in (data.valid_items[k], data.test_items[k]) if x]
    assert got_held == held
