"""Optimizers that handle embedding gradients (``tf.IndexedSlices``) right.

Keras 3 (3.15) squares the rows of an IndexedSlices gradient one by one: an
item that occurs twice in a batch gets g1^2 + g2^2 added to its second moment
instead of (g1 + g2)^2, in both Adam and Adagrad (tests/training/
test_optimizers.py shows it). Every batch of a recommender repeats items, so
this matters:

* ``DenseAdam`` densifies the gradient first. Adam decays every row's moments
  at every step anyway, so nothing is lost (TF1's AdamOptimizer, which the
  authors ran, does the same). It applies the update with TensorFlow's
  fused Adam kernel: one pass over each variable instead of Keras's five
  element-wise ops (Sub, Mul, AssignAdd, Square, Sqrt), which dominate a
  step once the item table has a million rows; the same update to float
  rounding.
* ``LazyAdam`` (``--optimizer=lazy_adam``) sums repeated rows, then updates
  moments and weights of the touched rows only, as LazyAdam does in
  TensorFlow Addons: a step costs what the batch touches, not the catalog,
  but an untouched row's moments do not decay, so it is not the authors'
  Adam.
* ``SparseAdagrad`` sums repeated rows, then updates only the touched rows.
  Adagrad is exact on sparse gradients (untouched rows keep accumulator and
  value), and it is much cheaper: for BPR on Video about 65k instead of 3.5M
  parameters per step.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable("asasrec_tf")
class SparseAdagrad(keras.optimizers.Adagrad):
  """Adagrad that applies ``tf.IndexedSlices`` gradients row by row."""

  def update_step(self, gradient, variable, learning_rate):
    if not isinstance(gradient, tf.IndexedSlices):
      return super().update_step(gradient, variable, learning_rate)
    lr = tf.cast(learning_rate, variable.dtype)
    rows, position = tf.unique(gradient.indices)
    values = tf.math.unsorted_segment_sum(
        tf.cast(gradient.values, variable.dtype), position, tf.shape(rows)[0])
    accumulator = self._accumulators[self._get_variable_index(variable)]
    self.assign_add(accumulator, tf.IndexedSlices(tf.square(values), rows))
    acc_rows = tf.gather(accumulator.value, rows)   # rows only (see LazyAdam)
    self.assign_sub(variable, tf.IndexedSlices(
        lr * values / tf.sqrt(acc_rows + self.epsilon), rows))


@keras.saving.register_keras_serializable("asasrec_tf")
class DenseAdam(keras.optimizers.Adam):
  """Adam that densifies IndexedSlices gradients first (converting them to a
  dense tensor adds up the rows of repeated items) and updates through the
  fused kernel (``ResourceApplyAdam``: Keras's formula, epsilon added to
  sqrt(v)); under a tf.distribute strategy, and with amsgrad, Keras's own
  update."""

  def update_step(self, gradient, variable, learning_rate):
    if isinstance(gradient, tf.IndexedSlices):
      gradient = tf.convert_to_tensor(gradient)
    if self.amsgrad or tf.distribute.has_strategy():
      return super().update_step(gradient, variable, learning_rate)
    dtype = variable.dtype
    step = tf.cast(self.iterations + 1, dtype)
    index = self._get_variable_index(variable)
    tf.raw_ops.ResourceApplyAdam(
        var=variable.handle, m=self._momentums[index].handle,
        v=self._velocities[index].handle,
        beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
        beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
        lr=tf.cast(learning_rate, dtype), beta1=tf.cast(self.beta_1, dtype),
        beta2=tf.cast(self.beta_2, dtype),
        epsilon=tf.cast(self.epsilon, dtype),
        grad=tf.cast(gradient, dtype))


@keras.saving.register_keras_serializable("asasrec_tf")
class LazyAdam(DenseAdam):
  """Adam that updates only the rows an IndexedSlices gradient touches
  (moments and weights); other gradients as DenseAdam."""

  def update_step(self, gradient, variable, learning_rate):
    if not isinstance(gradient, tf.IndexedSlices):
      return super().update_step(gradient, variable, learning_rate)
    dtype = variable.dtype
    rows, position = tf.unique(gradient.indices)
    g = tf.math.unsorted_segment_sum(tf.cast(gradient.values, dtype),
                                     position, tf.shape(rows)[0])
    step = tf.cast(self.iterations + 1, dtype)
    beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
    lr = tf.cast(learning_rate, dtype)
    alpha = lr * tf.sqrt(1 - tf.pow(beta_2, step)) / (1 - tf.pow(beta_1, step))
    index = self._get_variable_index(variable)
    m, v = self._momentums[index], self._velocities[index]
    # Gather from the tf.Variables, not the Keras ones: tf.gather on a
    # keras.Variable reads the whole table first, and that read's alias
    # then makes every scatter below copy the whole table (3 x 1.8 s a step
    # at 3M items instead of milliseconds).
    m_rows = beta_1 * tf.gather(m.value, rows) + (1 - beta_1) * g
    v_rows = beta_2 * tf.gather(v.value, rows) + (1 - beta_2) * tf.square(g)
    self.assign(m, tf.IndexedSlices(m_rows, rows))
    self.assign(v, tf.IndexedSlices(v_rows, rows))
    self.assign_sub(variable, tf.IndexedSlices(
        alpha * m_rows / (tf.sqrt(v_rows) + tf.cast(self.epsilon, dtype)),
        rows))
