import numpy as np
import pytest
import tensorflow as tf

from asasrec_tf.models import adversarial


def test_row_norm_is_eps_and_untouched_rows_stay_zero():
  g = np.zeros((4, 3), np.float32)
  g[1] = [3, 4, 0]      # norm 5 -> eps * (0.6, 0.8, 0)
  g[3] = [0, 0, -2]
  delta = adversarial.perturbation(tf.constant(g), eps=0.5).numpy()
  np.testing.assert_allclose(delta[1], [0.3, 0.4, 0.0], rtol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(delta, axis=1), [0, 0.5, 0, 0.5],
                             rtol=1e-6)


def test_global_norm():
  g = np.array([[3.0, 0.0], [0.0, 4.0]], np.float32)
  delta = adversarial.perturbation(tf.constant(g), eps=1.0, norm="global")
  np.testing.assert_allclose(delta.numpy(), [[0.6, 0.0], [0.0, 0.8]], rtol=1e-6)


def test_indexed_slices_and_no_gradient():
  table = tf.Variable(tf.ones([5, 2]))
  with tf.GradientTape(persistent=True) as tape:
    loss = tf.reduce_sum(tf.gather(table, [1, 1, 3]) * [[1.0, 2.0]])
    grad = tape.gradient(loss, table)
    assert isinstance(grad, tf.IndexedSlices)
    delta = adversarial.perturbation(grad, eps=2.0)
    # row 1 got the gradient twice: (2, 4); row 3 once: (1, 2)
    np.testing.assert_allclose(delta.numpy()[1], 2.0 * np.array([1, 2]) / np.sqrt(5),
                               rtol=1e-6)
    assert tape.gradient(tf.reduce_sum(delta), table) is None


def test_unknown_norm():
  with pytest.raises(ValueError):
    adversarial.perturbation(tf.ones([1, 1]), 1.0, norm="l1")
