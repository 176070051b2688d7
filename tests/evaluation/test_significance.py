import numpy as np
import pytest

from asasrec_tf.evaluation.significance import align, paired_ttest


def test_paired_ttest_by_hand():
  a = np.array([1.0, 0.0, 1.0, 1.0])
  b = np.array([0.0, 0.0, 0.0, 1.0])
  # differences 1 0 1 0: mean 0.5, sample sd sqrt(1/3), t = 0.5 / (sd / 2)
  res = paired_ttest(a, b)
  assert res.t == pytest.approx(0.5 / (np.sqrt(1 / 3) / 2))
  assert res.p == pytest.approx(0.1817, abs=1e-4)  # two-sided, 3 dof
  assert (res.mean_a, res.mean_b, res.n) == (0.75, 0.25, 4)


def test_identical_runs_are_not_different():
  a = np.array([0.1, 0.2, 0.3])
  assert paired_ttest(a, a.copy()).p == 1.0


def test_align_by_user():
  va, vb = align(np.array([3, 1, 2]), np.array([30., 10., 20.]),
                 np.array([2, 3, 9]), np.array([2., 3., 9.]))
  np.testing.assert_array_equal(va, [20., 30.])
  np.testing.assert_array_equal(vb, [2., 3.])
