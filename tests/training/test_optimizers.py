import keras
import numpy as np
import pytest
import tensorflow as tf

from asasrec_tf.training.optimizers import DenseAdam, LazyAdam, SparseAdagrad


def run(optimizer, steps=3, densify=False):
  keras.utils.set_random_seed(0)
  table = keras.Variable(np.random.default_rng(0).normal(size=(6, 3)),
                         dtype="float32")
  optimizer.build([table])
  for step in range(steps):
    with tf.GradientTape() as tape:
      # repeated row 2 within a batch, rows 0 and 5 never touched
      rows = tf.gather(table.value, [1, 2, 2, 3 + step % 2])
      loss = tf.reduce_sum(tf.sin(rows) * [1.0, -2.0, 0.5])
    grad = tape.gradient(loss, table.value)
    assert isinstance(grad, tf.IndexedSlices)
    if densify:
      grad = tf.convert_to_tensor(grad)
    optimizer.apply_gradients([(grad, table)])
  return table.numpy()


def test_sparse_adagrad_equals_dense_adagrad():
  # Reference: Keras Adagrad on the densified gradient. (Given IndexedSlices
  # with a repeated row, Keras squares the repeats one by one, g1^2 + g2^2
  # instead of (g1 + g2)^2; SparseAdagrad sums them first, as TF1 did.)
  dense = run(keras.optimizers.Adagrad(learning_rate=0.1), densify=True)
  sparse = run(SparseAdagrad(learning_rate=0.1))
  np.testing.assert_allclose(sparse, dense, rtol=1e-6, atol=1e-7)
  before = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
  np.testing.assert_array_equal(sparse[[0, 5]], before[[0, 5]])


def test_dense_adam_equals_adam_on_dense_gradients():
  reference = run(keras.optimizers.Adam(learning_rate=0.1, beta_2=0.98),
                  densify=True)
  fixed = run(DenseAdam(learning_rate=0.1, beta_2=0.98))
  # the fused kernel orders m's update differently: float32 rounding, 2e-7
  np.testing.assert_allclose(fixed, reference, rtol=1e-6, atol=1e-6)


def test_the_fused_update_is_kerass_adam_over_20_steps():
  # the same densified gradients through Keras's Adam and the fused kernel
  reference = run(keras.optimizers.Adam(learning_rate=0.01, beta_2=0.98,
                                        epsilon=1e-8), steps=20, densify=True)
  fused = run(DenseAdam(learning_rate=0.01, beta_2=0.98, epsilon=1e-8),
              steps=20)
  np.testing.assert_allclose(fused, reference, rtol=1e-6, atol=1e-6)
  # and it moved the touched rows, not the others
  before = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
  assert np.abs(fused[1:5] - before[1:5]).min() > 1e-3


def test_keras_mishandles_repeated_rows():
  """Documents why the two optimizers above exist; if Keras fixes it, this
  fails and the workaround can go."""
  reference = run(keras.optimizers.Adam(learning_rate=0.1, beta_2=0.98),
                  densify=True)
  keras_sparse = run(keras.optimizers.Adam(learning_rate=0.1, beta_2=0.98))
  assert np.abs(keras_sparse - reference).max() > 1e-3


def test_lazy_adam_moves_only_touched_rows_and_is_adam_on_them():
  lazy = run(LazyAdam(learning_rate=0.1, beta_2=0.98), steps=1)
  dense = run(DenseAdam(learning_rate=0.1, beta_2=0.98), steps=1)
  before = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
  # rows 0, 4 and 5 are untouched by the first step: they keep their values
  np.testing.assert_array_equal(lazy[[0, 4, 5]], before[[0, 4, 5]])
  # after one step Adam moves an untouched row by 0 too (m = v = 0), so the
  # touched rows agree with dense Adam; repeated row 2 summed first
  np.testing.assert_allclose(lazy, dense, rtol=1e-6, atol=1e-6)
  # later, dense Adam keeps moving a row with momentum where lazy Adam
  # does not: rows 3 and 4 are touched alternately
  lazy3 = run(LazyAdam(learning_rate=0.1, beta_2=0.98), steps=3)
  dense3 = run(DenseAdam(learning_rate=0.1, beta_2=0.98), steps=3)
  np.testing.assert_allclose(lazy3[[1, 2]], dense3[[1, 2]], rtol=1e-6,
                             atol=1e-6)
  assert np.abs(lazy3[4] - dense3[4]).max() > 1e-3


@pytest.mark.parametrize("cls", [LazyAdam, SparseAdagrad])
def test_row_sparse_updates_never_read_a_whole_table(cls):
  """The step touches rows only: no read of a [rows, d] variable in the
  traced update (a whole-table read, e.g. tf.gather on a keras.Variable,
  also makes every scatter after it copy the table: LazyAdam took 5.7 s a
  step at 3M items instead of 30-50 ms)."""
  table = keras.Variable(np.zeros((1000, 4)), dtype="float32")
  optimizer = cls(learning_rate=0.1)
  optimizer.build([table])
  grad = tf.IndexedSlices(tf.ones([3, 4]), tf.constant([1, 2, 2]),
                          tf.constant([1000, 4]))
  graph = tf.function(lambda: optimizer.update_step(
      grad, table, tf.constant(0.1))).get_concrete_function().graph
  reads = [op.outputs[0].shape.as_list() for op in graph.get_operations()
           if op.type == "ReadVariableOp"]
  assert [1000, 4] not in reads, reads
  assert any(op.type.startswith("ResourceScatter")
             for op in graph.get_operations())
