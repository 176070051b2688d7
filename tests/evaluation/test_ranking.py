import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from asasrec_tf.data import preprocess, readers
from asasrec_tf.errors import UserError
from asasrec_tf.evaluation.ranking import RankingEvaluator


def fixed_scores(table):
  """A scorer returning per-user rows of ``table`` ([U, I+1])."""
  table = np.asarray(table, dtype=np.float32)
  return lambda users, histories: table[users]


def test_full_ranking_by_hand(tiny_dataset):
  # tiny: user 10 (internal 0) train 1 2 3, valid 4, test 5;
  #       user 20 (1) train 2, valid 3, test 4; user 40 (3) train 3 3, valid 5, test 6
  scores = np.zeros((4, 7), np.float32)
  # user 0 (test 5): history {1,2,3,4} excluded; candidates 5, 6 -> item 6
  #   scores 0.9 > 0.5 -> rank 1
  scores[0] = [9, 9, 9, 9, 9, 0.5, 0.9]
  # user 1 (test 4): history {2,3}; candidates 1, 4, 5, 6 with a tie on 1
  #   (0.7 == 0.7 counts against) -> rank 1
  scores[1] = [9, 0.7, 9, 9, 0.7, 0.1, 0.2]
  # user 3 (test 6): history {3,5}; candidates 1, 2, 4, 6 -> nothing above
  scores[3] = [9, 0.1, 0.2, 9, 0.3, 9, 0.4]
  ev = RankingEvaluator(tiny_dataset, "test", maxlen=3, ks=(1, 2))
  result = ev.evaluate(fixed_scores(scores))
  np.testing.assert_array_equal(result.users, [0, 1, 3])
  np.testing.assert_array_equal(result.ranks, [1, 1, 0])
  m = result.metrics()
  assert m["hr@1"] == pytest.approx(1 / 3)
  assert m["hr@2"] == 1.0
  # ndcg@2: (1/log2(3) + 1/log2(3) + 1) / 3
  assert m["ndcg@2"] == pytest.approx((2 * 0.6309298 + 1) / 3, abs=1e-6)


def test_histories_given_to_the_scorer(tiny_dataset):
  seen = {}

  def scorer(users, histories):
    seen.update(zip(users.tolist(), histories.tolist()))
    return np.zeros((len(users), 7), np.float32)

  RankingEvaluator(tiny_dataset, "test", maxlen=3, ks=(1,)).evaluate(scorer)
  # test histories include the validation item; left padding with 0
  assert seen == {0: [2, 3, 4], 1: [0, 2, 3], 3: [3, 3, 5]}
  seen.clear()
  RankingEvaluator(tiny_dataset, "valid", maxlen=3, ks=(1,)).evaluate(scorer)
  assert seen == {0: [1, 2, 3], 1: [0, 0, 2], 3: [0, 3, 3]}


def test_held_out_item_also_in_history_stays_a_candidate():
  # user 1: 1 2 1 -> loo: train 1 2, test 1 (a repeat)
  inter = readers.Interactions(np.array([1, 1, 1]), np.array([1, 2, 1]), None)
  data = preprocess.preprocess(inter, "t", "loo")
  ev = RankingEvaluator(data, "test", maxlen=2, ks=(1,))
  # item 2 (in history) scores higher but is excluded -> rank 0
  result = ev.evaluate(fixed_scores([[0, 0.1, 5.0]]))
  assert result.ranks.tolist() == [0]


def test_nan_scores_never_help():
  # user 1: train 1, test 2 -> candidates 2 and 3; user 2: train 3, test 1
  inter = readers.Interactions(np.array([1, 1, 2, 2]), np.array([1, 2, 3, 1]),
                               None)
  data = preprocess.preprocess(inter, "t", "loo")
  ev = RankingEvaluator(data, "test", maxlen=2, ks=(1,))
  # user 1's test item scored NaN: candidate 3 counts against it -> rank 1;
  # user 2's competing candidate 2 is NaN: it counts against too -> rank 1
  scores = [[0, 0.0, np.nan, 0.0], [0, 1.0, np.nan, 0.0]]
  assert ev.evaluate(fixed_scores(scores)).ranks.tolist() == [1, 1]


def test_k_larger_than_candidates_is_refused(tiny_dataset):
  with pytest.raises(UserError, match="K=7 is larger than the 6"):
    RankingEvaluator(tiny_dataset, "test", maxlen=3, ks=(1, 7))


def test_batching_does_not_change_ranks(tiny_dataset):
  rng = np.random.default_rng(0)
  table = rng.random((4, 7)).astype(np.float32)
  one = RankingEvaluator(tiny_dataset, "test", 3, ks=(1,), batch_size=1)
  many = RankingEvaluator(tiny_dataset, "test", 3, ks=(1,), batch_size=64)
  np.testing.assert_array_equal(one.evaluate(fixed_scores(table)).ranks,
                                many.evaluate(fixed_scores(table)).ranks)


@st.composite
def sampled_case(draw):
  num_items = draw(st.integers(8, 40))
  users, items = [], []
  for u in range(draw(st.integers(1, 6))):
    seq = draw(st.lists(st.integers(1, num_items), min_size=1, max_size=6))
    users += [u] * len(seq)
    items += seq
  # one extra user covering every item so ids stay 1..num_items
  users += [99] * num_items
  items += list(range(1, num_items + 1))
  return preprocess.preprocess(readers.Interactions(
      np.array(users), np.array(items), None), "h", "loo")


@settings(max_examples=40, deadline=None)
@given(data=sampled_case(), how=st.sampled_from(["uniform", "popularity"]),
       seed=st.integers(0, 1000))
def test_sampled_negatives_properties(data, how, seed):
  users = data.eval_users("test")
  sizes = []
  for u in users:
    if u == data.num_users - 1:
      continue
    hist = set(data.train_sequence(u).tolist()) | {int(data.test_items[u])}
    sizes.append(data.num_items - len(hist))
  num = max(1, min(sizes)) if sizes else 1
  pop = data.item_popularity()
  try:
    ev = RankingEvaluator(data, "test", 2, candidates="sampled",
                          num_negatives=num, negative_sampling=how, ks=(1,),
                          seed=seed)
  except UserError as e:
    # only when some user lacks enough allowed items (e.g. the all-item user)
    assert "num_negatives" in str(e)
    return
  for row, u in zip(ev.negatives, ev.users):
    hist = set(data.train_sequence(u).tolist())
    assert data.test_items[u] not in row
    assert not (set(row.tolist()) & hist)
    assert len(set(row.tolist())) == len(row)  # distinct
    assert (row >= 1).all() and (row <= data.num_items).all()
    if how == "popularity":
      assert (pop[row] > 0).all()
  again = RankingEvaluator(data, "test", 2, candidates="sampled",
                           num_negatives=num, negative_sampling=how, ks=(1,),
                           seed=seed)
  np.testing.assert_array_equal(ev.negatives, again.negatives)




def test_too_many_negatives_is_refused(tiny_dataset):
  # user 10 (internal 0): history {1,2,3,4} + test 5 leave only item 6
  with pytest.raises(UserError, match="--num_negatives=2: user 10 has only 1"):
    RankingEvaluator(tiny_dataset, "test", 3, candidates="sampled",
                     num_negatives=2, ks=(1,))


def test_sampled_ranks_by_hand(tiny_dataset):
  ev = RankingEvaluator(tiny_dataset, "test", 3, candidates="sampled",
                        num_negatives=1, ks=(1,), seed=0)
  scores = np.zeros((4, 7), np.float32)
  neg = dict(zip(ev.users.tolist(), ev.negatives[:, 0].tolist()))
  assert neg[0] == 6  # the only item left for user 0
  scores[0, 5], scores[0, 6] = 1.0, 1.0  # tie counts against -> rank 1
  scores[1, 4] = 2.0                     # test item 4 above its negative
  scores[3, 6], scores[3, neg[3]] = 0.5, 0.7  # negative above -> rank 1
  result = ev.evaluate(fixed_scores(scores))
  assert result.ranks.tolist() == [1, 0, 1]


def test_result_save(tmp_path, tiny_dataset):
  ev = RankingEvaluator(tiny_dataset, "test", 3, ks=(1, 2))
  result = ev.evaluate(fixed_scores(np.zeros((4, 7))))
  path = tmp_path / "r.npz"
  result.save(str(path), tiny_dataset.user_ids)
  z = np.load(path)
  np.testing.assert_array_equal(z["user_ids"], [10, 20, 40])
  np.testing.assert_array_equal(z["hr@2"], result.per_user()["hr@2"])


def test_full_ranking_batches_shrink_with_the_catalog_not_the_ranks(
    tiny_dataset, monkeypatch):
  from asasrec_tf.evaluation import ranking
  scores = np.random.default_rng(3).normal(size=(4, 7)).astype(np.float32)
  wide = RankingEvaluator(tiny_dataset, "test", maxlen=3, ks=(1, 2))
  assert wide.batch_size == 256
  # a budget of 7 scores: one user (7 = I + 1 scores) per batch
  monkeypatch.setattr(ranking, "MAX_SCORES", 7)
  narrow = RankingEvaluator(tiny_dataset, "test", maxlen=3, ks=(1, 2))
  assert narrow.batch_size == 1
  a, b = (ev.evaluate(fixed_scores(scores)) for ev in (wide, narrow))
  np.testing.assert_array_equal(a.users, b.users)
  np.testing.assert_array_equal(a.ranks, b.ranks)
