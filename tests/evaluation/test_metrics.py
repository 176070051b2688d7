import numpy as np
from hypothesis import given, strategies as st

from asasrec_tf.evaluation import metrics


def test_by_hand():
  ranks = np.array([0, 1, 9, 10, 150])
  # HR@10: ranks 0, 1, 9 are < 10 -> 3/5
  assert metrics.hit_rate(ranks, 10).mean() == 0.6
  # NDCG@10: 1/log2(2) + 1/log2(3) + 1/log2(11) = 1 + 0.6309298 + 0.2890648
  np.testing.assert_allclose(metrics.ndcg(ranks, 10),
                             [1.0, 0.6309298, 0.2890648, 0.0, 0.0], atol=1e-7)
  s = metrics.summarise(ranks, [10, 100])
  np.testing.assert_allclose(s["ndcg@10"], (1 + 0.6309298 + 0.2890648) / 5,
                             atol=1e-7)
  # @100 adds rank 10: 1/log2(12) = 0.2789429
  np.testing.assert_allclose(s["ndcg@100"],
                             (1 + 0.6309298 + 0.2890648 + 0.2789429) / 5,
                             atol=1e-7)
  assert s["hr@100"] == 0.8


@given(st.lists(st.integers(0, 500), min_size=1), st.integers(1, 200))
def test_bounds_and_monotonicity(ranks, k):
  ranks = np.array(ranks)
  hr, nd = metrics.hit_rate(ranks, k), metrics.ndcg(ranks, k)
  assert ((0 <= nd) & (nd <= hr) & (hr <= 1)).all()
  assert (metrics.hit_rate(ranks, k + 1) >= hr).all()


def test_a_maintained_library_agrees_on_the_whole_evaluation():
  """keras-rs's NDCG and RecallAtK (one relevant item per list, ties not
  shuffled) as a second opinion on the evaluator + metrics, on random
  scores over exactly the candidates our protocol ranks against."""
  import pytest
  keras_rs = pytest.importorskip("keras_rs")    # test extra, Python >= 3.11
  from asasrec_tf.data import loader
  from asasrec_tf.evaluation.ranking import RankingEvaluator
  data = loader.load("synthetic", synthetic_users=200, synthetic_items=40)
  rng = np.random.default_rng(3)
  table = rng.normal(size=(data.num_users,
                           data.num_items + 1)).astype(np.float32)
  scorer = lambda users, histories: table[users]
  evaluator = RankingEvaluator(data, "test", maxlen=4, ks=(1, 5, 10))
  ours = evaluator.evaluate(scorer).metrics()
  assert 0 < ours["hr@1"] < ours["hr@10"] < 1   # not a degenerate case

  offsets, items = data.history("test")
  labels, mask = [], []
  for u, target in zip(evaluator.users, evaluator.targets):
    seen = set(items[offsets[u]:offsets[u + 1]].tolist()) - {int(target)}
    mask.append([i > 0 and i not in seen
                 for i in range(data.num_items + 1)])
    labels.append(np.eye(data.num_items + 1)[target])
  y_true = {"labels": np.array(labels, np.float32),
            "mask": np.array(mask)}
  y_pred = table[evaluator.users]
  for k in (1, 5, 10):
    ndcg = keras_rs.metrics.NDCG(k=k, shuffle_ties=False)
    recall = keras_rs.metrics.RecallAtK(k=k, shuffle_ties=False)
    ndcg.update_state(y_true, y_pred)
    recall.update_state(y_true, y_pred)
    np.testing.assert_allclose(ours[f"ndcg@{k}"], float(ndcg.result()),
                               rtol=1e-6)
    np.testing.assert_allclose(ours[f"hr@{k}"], float(recall.result()),
                               rtol=1e-6)
