import numpy as np

from asasrec_tf.data import synthetic


def test_deterministic_and_in_range():
  a = synthetic.generate(num_users=50, num_items=20, seed=3)
  b = synthetic.generate(num_users=50, num_items=20, seed=3)
  np.testing.assert_array_equal(a.items, b.items)
  assert a.items.min() >= 1 and a.items.max() <= 20
  lengths = np.bincount(a.users)[1:]
  assert lengths.min() >= 8 and lengths.max() <= 30 and len(lengths) == 50


def test_successors_dominate_transitions():
  inter = synthetic.generate(num_users=400, num_items=30, noise=0.1, seed=0)
  same_user = inter.users[1:] == inter.users[:-1]
  prev, nxt = inter.items[:-1][same_user], inter.items[1:][same_user]
  # For each item, the 3 most frequent successors cover most transitions
  covered = 0
  for i in np.unique(prev):
    counts = np.bincount(nxt[prev == i])
    covered += np.sort(counts)[-3:].sum()
  assert covered / len(prev) > 0.85
