import numpy as np

from asasrec_tf.models.mostpop import MostPop


def test_popularity_order_with_id_tie_break():
  # counts: item1 2, item2 5, item3 2, item4 0 -> order 2, 1, 3, 4
  model = MostPop(np.array([0, 2, 5, 2, 0]))
  scores = model.score(np.array([7, 8]), np.zeros((2, 3), int))
  assert scores.shape == (2, 5)
  order = np.argsort(-scores[0, 1:], kind="stable") + 1
  np.testing.assert_array_equal(order, [2, 1, 3, 4])
  # no ties: every item has its own score
  assert len(set(scores[0, 1:].tolist())) == 4
