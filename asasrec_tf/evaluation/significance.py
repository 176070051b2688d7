"""Paired significance tests between two runs' per-user metrics.

scipy.stats.ttest_rel is used rather than a hand-written t statistic.
"""

from __future__ import annotations

import dataclasses
from typing import Tuple

import numpy as np
from scipy import stats


@dataclasses.dataclass(frozen=True)
class PairedTest:
  mean_a: float
  mean_b: float
  t: float
  p: float
  n: int


def align(users_a: np.ndarray, values_a: np.ndarray, users_b: np.ndarray,
          values_b: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """Values of the users both runs evaluated, in the same order."""
  common, ia, ib = np.intersect1d(users_a, users_b, return_indices=True)
  return values_a[ia], values_b[ib]


def paired_ttest(a: np.ndarray, b: np.ndarray) -> PairedTest:
  """Two-sided paired t-test of per-user values ``a`` vs ``b``.

  Identical samples give p = 1 (no evidence of a difference) rather than NaN.
  """
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.shape != b.shape or a.ndim != 1:
    raise ValueError("paired samples must be 1-D arrays of the same length")
  if np.allclose(a, b):
    return PairedTest(float(a.mean()), float(b.mean()), 0.0, 1.0, len(a))
  res = stats.ttest_rel(a, b)
  return PairedTest(float(a.mean()), float(b.mean()), float(res.statistic),
                    float(res.pvalue), len(a))
