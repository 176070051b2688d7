"""Top-K metrics from 0-based ranks of the held-out item.

A rank is the number of candidates scored at least as high as the held-out
item (ties count against it), so rank 0 is a perfect prediction.
"""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np


def hit_rate(ranks: np.ndarray, k: int) -> np.ndarray:
  """[n] 1.0 where the held-out item is in the top ``k``, else 0.0."""
  return (np.asarray(ranks) < k).astype(np.float64)


def ndcg(ranks: np.ndarray, k: int) -> np.ndarray:
  """[n] 1 / log2(rank + 2) where rank < ``k``, else 0 (one relevant item)."""
  ranks = np.asarray(ranks, dtype=np.float64)
  return np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)


def per_user(ranks: np.ndarray, ks: Sequence[int]) -> Dict[str, np.ndarray]:
  """{'hr@K': [n], 'ndcg@K': [n]} for every K."""
  out = {}
  for k in ks:
    out[f"hr@{k}"] = hit_rate(ranks, k)
    out[f"ndcg@{k}"] = ndcg(ranks, k)
  return out


def summarise(ranks: np.ndarray, ks: Sequence[int]) -> Dict[str, float]:
  """Means of :func:`per_user` over users."""
  return {name: float(v.mean()) if v.size else 0.0
          for name, v in per_user(ranks, ks).items()}
