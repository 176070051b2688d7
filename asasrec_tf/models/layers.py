"""The Keras layers of SASRec: embedding, causal self-attention, feed-forward.

Shapes use B = batch, L = maxlen, d = hidden units, I = number of items.
Padding is item id 0. The padding mask is always derived from the item ids,
never from the embeddings, so padded positions cannot leak into real ones
(the authors' code loses the mask after layer normalisation). Each layer
passes its dtype policy to the layers it creates, so a model built with
``dtype="mixed_float16"`` computes in half precision without touching
Keras's global policy.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from asasrec_tf.models import adversarial


def mask_value(dtype: tf.DType) -> float:
  """A large negative logit that is finite in ``dtype`` (fp16 tops at 65504)."""
  return -3.0e4 if dtype == tf.float16 else -1.0e9


@keras.saving.register_keras_serializable("asasrec_tf")
class ItemPositionEmbedding(keras.layers.Layer):
  """Item embedding scaled by sqrt(d) plus a learned position embedding.

  The item table ``[I + 1, d]`` is shared with the output layer (Eq. 4).
  Padding positions are zeroed after the sum, so row 0 of the table and the
  position embedding of padded slots contribute nothing.

  Call args:
    item_ids: [B, L] int item ids, 0 = padding, L <= maxlen: a window
      shorter than maxlen is the last L slots of a maxlen window (left
      padding), so it gets the last L position embeddings.
    input_delta: optional perturbation of the item table (Eq. 9): dense
      [I + 1, d] or an adversarial.RowDelta.
    training: applies dropout when true.

  Returns:
    [B, L, d] embeddings, 0 at padding positions.

  ``row_reads`` gathers rows from the table variable itself (a sparse read)
  instead of reading the whole table first. TensorFlow copies a variable on
  every whole read once a sparse op has written to it, so a row-sparse
  optimizer (lazy_adam) needs row reads; a dense update (Adam) after a
  sparse read copies it too, so the dense optimizer needs whole reads.
  """

  def __init__(self, num_items: int, maxlen: int, hidden_units: int,
               dropout_rate: float = 0.0, row_reads: bool = False, **kwargs):
    super().__init__(**kwargs)
    self.num_items = num_items
    self.maxlen = maxlen
    self.hidden_units = hidden_units
    self.dropout_rate = dropout_rate
    self.row_reads = row_reads
    self.dropout = keras.layers.Dropout(dropout_rate,
                                        dtype=self.dtype_policy)

  def build(self, input_shape=None):
    init = keras.initializers.GlorotUniform()
    self.item_embedding = self.add_weight(
        name="item_embedding", shape=(self.num_items + 1, self.hidden_units),
        initializer=init)
    self.position_embedding = self.add_weight(
        name="position_embedding", shape=(self.maxlen, self.hidden_units),
        initializer=init)
    super().build(input_shape)

  def lookup(self, item_ids, delta=None):
    """[..., d] rows of the item table, plus those of ``delta`` when given
    (a perturbation of the table: dense [I + 1, d] or a RowDelta)."""
    if self.row_reads:
      out = tf.cast(tf.gather(self.item_embedding.value, item_ids),
                    self.compute_dtype)
    else:
      out = tf.gather(tf.cast(self.item_embedding, self.compute_dtype),
                      item_ids)
    if delta is not None:
      out += tf.cast(adversarial.gather(delta, item_ids), self.compute_dtype)
    return out

  def call(self, item_ids, input_delta=None, training=False):
    mask = tf.cast(tf.not_equal(item_ids, 0), self.compute_dtype)[..., None]
    x = self.lookup(item_ids, input_delta) * math.sqrt(self.hidden_units)
    length = tf.shape(item_ids)[1]
    positions = self.position_embedding[self.maxlen - length:]
    x += tf.cast(positions, self.compute_dtype)[None, :, :]
    return self.dropout(x, training=training) * mask

  def get_config(self):
    return {**super().get_config(), "num_items": self.num_items,
            "maxlen": self.maxlen, "hidden_units": self.hidden_units,
            "dropout_rate": self.dropout_rate, "row_reads": self.row_reads}


@keras.saving.register_keras_serializable("asasrec_tf")
class CausalSelfAttention(keras.layers.Layer):
  """Multi-head scaled dot-product attention over earlier, non-padded items.

  Call args:
    queries: [B, L, d].
    keys: [B, L, d] (also the values).
    key_mask: [B, L] bool, true for real (non-padded) positions.
    training: applies dropout to the attention weights when true.

  Returns:
    [B, L, d]; position t attends to positions <= t whose key_mask is true.
  """

  def __init__(self, hidden_units: int, num_heads: int = 1,
               dropout_rate: float = 0.0, **kwargs):
    super().__init__(**kwargs)
    if hidden_units % num_heads:
      raise ValueError(f"hidden_units={hidden_units} is not divisible by "
                       f"num_heads={num_heads}")
    self.hidden_units = hidden_units
    self.num_heads = num_heads
    self.dropout_rate = dropout_rate
    policy = self.dtype_policy
    self.query = keras.layers.Dense(hidden_units, name="query", dtype=policy)
    self.key = keras.layers.Dense(hidden_units, name="key", dtype=policy)
    self.value = keras.layers.Dense(hidden_units, name="value", dtype=policy)
    self.dropout = keras.layers.Dropout(dropout_rate, dtype=policy)

  def _split_heads(self, x):
    b, l = tf.shape(x)[0], tf.shape(x)[1]
    x = tf.reshape(x, [b, l, self.num_heads, self.hidden_units // self.num_heads])
    return tf.transpose(x, [0, 2, 1, 3])  # [B, h, L, d/h]

  def call(self, queries, keys, key_mask, training=False):
    q = self._split_heads(self.query(queries))
    k = self._split_heads(self.key(keys))
    v = self._split_heads(self.value(keys))
    depth = self.hidden_units // self.num_heads
    logits = tf.matmul(q, k, transpose_b=True) / math.sqrt(depth)  # [B,h,L,L]
    length = tf.shape(queries)[1]
    causal = tf.linalg.band_part(tf.ones([length, length], tf.bool), -1, 0)
    allowed = causal[None, None] & key_mask[:, None, None, :]
    logits = tf.where(allowed, logits,
                      tf.cast(mask_value(logits.dtype), logits.dtype))
    weights = self.dropout(tf.nn.softmax(logits, axis=-1), training=training)
    out = tf.matmul(weights, v)  # [B, h, L, d/h]
    out = tf.transpose(out, [0, 2, 1, 3])
    return tf.reshape(out, tf.shape(queries))

  def get_config(self):
    return {**super().get_config(), "hidden_units": self.hidden_units,
            "num_heads": self.num_heads, "dropout_rate": self.dropout_rate}




@keras.saving.register_keras_serializable("asasrec_tf")
class SelfAttentionBlock(keras.layers.Layer):
  """Layer norm, causal self-attention, residual (SASRec's attention half).

  The queries are the normalised input and the residual adds them. The keys
  and values are the raw input in kang205/SASRec (``normed_keys=False``) and
  the normalised input in the authors' code (``normed_keys=True``). Padding
  keys are masked by ``key_mask`` either way (the authors derive their mask
  from the normalised keys, which are almost never all zero, so their
  padding keys are attended; that is not copied).

  Call args:
    x: [B, L, d], 0 at padding positions.
    key_mask: [B, L] bool, true for real positions.
    training: dropout switch.

  Returns:
    [B, L, d].
  """

  def __init__(self, hidden_units: int, num_heads: int = 1,
               dropout_rate: float = 0.0, normed_keys: bool = False,
               **kwargs):
    super().__init__(**kwargs)
    self.hidden_units = hidden_units
    self.num_heads = num_heads
    self.dropout_rate = dropout_rate
    self.normed_keys = normed_keys
    self.norm = keras.layers.LayerNormalization(epsilon=1e-8, name="norm",
                                                dtype=self.dtype_policy)
    self.attention = CausalSelfAttention(hidden_units, num_heads, dropout_rate,
                                         name="attention",
                                         dtype=self.dtype_policy)

  def call(self, x, key_mask, training=False):
    queries = self.norm(x)
    keys = queries if self.normed_keys else x
    return queries + self.attention(queries, keys, key_mask, training=training)

  def get_config(self):
    return {**super().get_config(), "hidden_units": self.hidden_units,
            "num_heads": self.num_heads, "dropout_rate": self.dropout_rate,
            "normed_keys": self.normed_keys}


@keras.saving.register_keras_serializable("asasrec_tf")
class PointWiseFeedForward(keras.layers.Layer):
  """Layer norm, Dense-ReLU-Dense applied per position, residual, dropout (Eq. 3).

  With ``output_norm`` (the authors' code) the sum is layer-normalised
  again; kang205/SASRec has that norm commented out.

  Call args:
    x: [B, L, d].
    training: dropout switch.

  Returns:
    [B, L, d].
  """

  def __init__(self, hidden_units: int, dropout_rate: float = 0.0,
               output_norm: bool = False, **kwargs):
    super().__init__(**kwargs)
    self.hidden_units = hidden_units
    self.dropout_rate = dropout_rate
    self.output_norm = output_norm
    policy = self.dtype_policy
    self.norm = keras.layers.LayerNormalization(epsilon=1e-8, name="norm",
                                                dtype=policy)
    self.inner = keras.layers.Dense(hidden_units, activation="relu",
                                    name="inner", dtype=policy)
    self.outer = keras.layers.Dense(hidden_units, name="outer", dtype=policy)
    self.dropout = keras.layers.Dropout(dropout_rate, dtype=policy)
    self.out_norm = (keras.layers.LayerNormalization(
        epsilon=1e-8, name="output_norm", dtype=policy) if output_norm
                     else None)

  def call(self, x, training=False):
    x = self.norm(x)
    h = self.dropout(self.inner(x), training=training)
    out = x + self.dropout(self.outer(h), training=training)
    return self.out_norm(out) if self.out_norm is not None else out

  def get_config(self):
    return {**super().get_config(), "hidden_units": self.hidden_units,
            "dropout_rate": self.dropout_rate,
            "output_norm": self.output_norm}
