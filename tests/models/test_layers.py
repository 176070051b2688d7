import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from asasrec_tf.models import layers


def roundtrip(layer):
  clone = type(layer).from_config(layer.get_config())
  assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize("layer", [
    layers.ItemPositionEmbedding(10, 5, 8, 0.1, name="e"),
    layers.CausalSelfAttention(8, 2, 0.1, name="a"),
    layers.SelfAttentionBlock(8, 2, 0.1, name="b"),
    layers.PointWiseFeedForward(8, 0.1, name="f"),
    layers.SelfAttentionBlock(8, 2, 0.1, normed_keys=True, name="b2"),
    layers.PointWiseFeedForward(8, 0.1, output_norm=True, name="f2"),
])
def test_get_config_roundtrip(layer):
  roundtrip(layer)


def test_embedding_scales_items_and_zeroes_padding():
  emb = layers.ItemPositionEmbedding(num_items=5, maxlen=3, hidden_units=4)
  ids = tf.constant([[0, 2, 5]])
  out = emb(ids).numpy()
  table, pos = emb.item_embedding.numpy(), emb.position_embedding.numpy()
  assert (out[0, 0] == 0).all()  # padding contributes nothing
  np.testing.assert_allclose(out[0, 1], table[2] * math.sqrt(4) + pos[1],
                             rtol=1e-6)
  # a perturbation of the table enters like a change of the parameter
  delta = np.zeros_like(table)
  delta[5] = 1.0
  out2 = emb(ids, input_delta=tf.constant(delta)).numpy()
  np.testing.assert_allclose(out2[0, 2] - out[0, 2], 2.0 * np.ones(4),
                             rtol=1e-5)
  np.testing.assert_allclose(out2[0, 1], out[0, 1])


def _block_inputs(seed=0):
  rng = np.random.default_rng(seed)
  ids = np.array([[0, 0, 3, 1, 2], [0, 4, 4, 2, 1]])
  x = rng.normal(size=(2, 5, 8)).astype(np.float32)
  return ids, x


def test_padded_positions_change_no_real_output():
  block = layers.SelfAttentionBlock(8, num_heads=2)
  ids, x = _block_inputs()
  key_mask = tf.constant(ids != 0)
  before = block(tf.constant(x), key_mask).numpy()
  garbage = x.copy()
  garbage[ids == 0] = 1e3 * np.random.default_rng(1).normal(
      size=garbage[ids == 0].shape)
  after = block(tf.constant(garbage), key_mask).numpy()
  real = ids != 0
  np.testing.assert_allclose(after[real], before[real], rtol=1e-5, atol=1e-5)


def test_attention_is_causal():
  block = layers.SelfAttentionBlock(8)
  ids, x = _block_inputs()
  key_mask = tf.constant(ids != 0)
  before = block(tf.constant(x), key_mask).numpy()
  changed = x.copy()
  changed[:, 3:] += 5.0  # change the future of position 2
  after = block(tf.constant(changed), key_mask).numpy()
  # real positions 0..2 (padded query rows are zeroed by the model anyway)
  past = (ids != 0) & (np.arange(5) < 3)
  np.testing.assert_allclose(after[past], before[past], rtol=1e-5, atol=1e-6)
  assert not np.allclose(after[:, 3:], before[:, 3:])


def test_single_head_attention_by_hand():
  att = layers.CausalSelfAttention(4, num_heads=1)
  rng = np.random.default_rng(2)
  q_in = rng.normal(size=(1, 3, 4)).astype(np.float32)
  k_in = rng.normal(size=(1, 3, 4)).astype(np.float32)
  key_mask = np.array([[False, True, True]])
  out = att(tf.constant(q_in), tf.constant(k_in), tf.constant(key_mask)).numpy()
  wq, bq = att.query.kernel.numpy(), att.query.bias.numpy()
  wk, bk = att.key.kernel.numpy(), att.key.bias.numpy()
  wv, bv = att.value.kernel.numpy(), att.value.bias.numpy()
  q, k, v = q_in[0] @ wq + bq, k_in[0] @ wk + bk, k_in[0] @ wv + bv
  # position 2 attends to positions 1 and 2 (0 is padding)
  logits = np.array([q[2] @ k[1], q[2] @ k[2]]) / 2.0  # sqrt(4)
  w = np.exp(logits - logits.max())
  w /= w.sum()
  np.testing.assert_allclose(out[0, 2], w[0] * v[1] + w[1] * v[2], rtol=1e-5,
                             atol=1e-6)
  # position 1 attends to itself only
  np.testing.assert_allclose(out[0, 1], v[1], rtol=1e-5, atol=1e-6)


def test_feed_forward_by_hand():
  ff = layers.PointWiseFeedForward(4)
  x = np.random.default_rng(3).normal(size=(1, 2, 4)).astype(np.float32)
  out = ff(tf.constant(x)).numpy()
  mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
  h = (x - mu) / np.sqrt(var + 1e-8)  # gamma 1, beta 0 at init
  inner = np.maximum(h @ ff.inner.kernel.numpy() + ff.inner.bias.numpy(), 0)
  expect = h + inner @ ff.outer.kernel.numpy() + ff.outer.bias.numpy()
  np.testing.assert_allclose(out, expect, rtol=1e-4, atol=1e-5)


def test_mask_value_is_finite_in_half_precision():
  assert np.isfinite(np.float16(layers.mask_value(tf.float16)))
  assert layers.mask_value(tf.float32) < -1e8


def test_trimmed_window_gives_the_same_real_outputs():
  """A window cut to its last L columns (all cut columns padding) yields
  the same hidden states at the kept positions: SASRec on length buckets
  computes the same losses."""
  from asasrec_tf.models.sasrec import SASRec
  keras.utils.set_random_seed(0)
  model = SASRec(num_items=9, maxlen=6, hidden_units=8, dropout_rate=0.0)
  model.build_for_inputs()
  full = tf.constant([[0, 0, 0, 1, 2, 3], [0, 0, 0, 0, 4, 5]], tf.int32)
  trimmed = full[:, 3:]
  np.testing.assert_allclose(model(full).numpy()[:, 3:],
                             model(trimmed).numpy(), rtol=1e-5, atol=1e-6)
