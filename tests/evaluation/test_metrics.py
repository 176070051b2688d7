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
