"""Synthetic interactions with a known sequential signal.

Items fall into clusters, and each item has a few fixed successors in its own
cluster. A user's sequence starts at a random item; each next item is, with
probability ``1 - noise``, one of the current item's successors, and otherwise
an item drawn from a Zipf-like popularity distribution. A sequential model can
predict the next item far better than popularity can, and a factorisation
model learns which clusters a user stays in; the tests rely on both.
"""

from __future__ import annotations

import numpy as np

from asasrec_tf.data.readers import Interactions


def generate(num_users: int = 1000, num_items: int = 300, min_len: int = 8,
             max_len: int = 30, num_successors: int = 3, noise: float = 0.2,
             num_clusters: int = 10, seed: int = 0) -> Interactions:
  """Generates interactions in time order (no timestamps).

  Args:
    num_users: users, with ids 1..num_users.
    num_items: items, with ids 1..num_items.
    min_len: shortest sequence.
    max_len: longest sequence.
    num_successors: successors per item in the Markov chain.
    noise: probability of a popularity-drawn next item.
    num_clusters: item i belongs to cluster (i - 1) % num_clusters.
    seed: the generator is fully determined by it.

  Returns:
    Interactions grouped by user, each user's items in time order.
  """
  if not (num_users > 0 and num_items > num_successors and
          0 < min_len <= max_len and 0.0 <= noise <= 1.0 and
          0 < num_clusters <= num_items):
    raise ValueError("invalid synthetic dataset parameters")
  rng = np.random.default_rng(seed)
  ids = np.arange(num_items + 1)
  cluster = (ids - 1) % num_clusters
  cluster_size = np.bincount(cluster[1:], minlength=num_clusters)
  # successor = 1 + cluster + num_clusters * k, a member of the same cluster
  k = rng.integers(0, cluster_size[cluster][:, None],
                   size=(num_items + 1, num_successors))
  successors = 1 + cluster[:, None] + num_clusters * k
  popularity = 1.0 / np.arange(1, num_items + 1)
  popularity /= popularity.sum()
  lengths = rng.integers(min_len, max_len + 1, size=num_users)
  seqs = np.zeros((num_users, max_len), dtype=np.int64)
  seqs[:, 0] = rng.integers(1, num_items + 1, size=num_users)
  for t in range(1, max_len):
    follow = successors[seqs[:, t - 1], rng.integers(0, num_successors,
                                                     size=num_users)]
    popular = rng.choice(num_items, size=num_users, p=popularity) + 1
    seqs[:, t] = np.where(rng.random(num_users) < noise, popular, follow)
  mask = np.arange(max_len)[None, :] < lengths[:, None]
  users = np.repeat(np.arange(1, num_users + 1), lengths)
  return Interactions(users=users, items=seqs[mask], times=None)
