"""SASRec (Kang & McAuley, ICDM'18) and ASASRec (SASRec trained with SAO).

Batches are dicts of int32 [B, L] tensors: ``inputs`` (item ids, left-padded
with 0), ``positives`` (the next item at every position) and ``negatives``
(one sampled item per position); positions whose positive is 0 are padding
and excluded from the loss.
"""

from __future__ import annotations

from typing import Dict, Optional

import keras
import tensorflow as tf

from asasrec_tf.models import adversarial
from asasrec_tf.training.distribution import replica_sum
from asasrec_tf.models.layers import (ItemPositionEmbedding, PointWiseFeedForward,
                                      SelfAttentionBlock)

ADV_TARGETS = ("both", "output", "input")
ADV_GAMMAS = ("separate", "shared")


@keras.saving.register_keras_serializable("asasrec_tf")
class SASRec(keras.Model):
  """Self-attentive sequential recommender.

  Call args:
    item_ids: [B, L] int item ids, 0 = padding.
    item_delta: optional [I + 1, d] perturbation added to the item table at
      the input (Eq. 9).
    training: dropout switch.

  Returns:
    [B, L, d] hidden state F_t of every position (0 at padding positions,
    after the final layer norm: beta).
  """

  input_kind = "histories"

  def __init__(self, num_items: int, maxlen: int, hidden_units: int = 64,
               num_blocks: int = 2, num_heads: int = 1,
               dropout_rate: float = 0.5, **kwargs):
    kwargs.setdefault("name", type(self).__name__.lower())
    super().__init__(**kwargs)
    self.num_items = num_items
    self.maxlen = maxlen
    self.hidden_units = hidden_units
    self.num_blocks = num_blocks
    self.num_heads = num_heads
    self.dropout_rate = dropout_rate
    self.embedding = ItemPositionEmbedding(num_items, maxlen, hidden_units,
                                           dropout_rate, name="embedding")
    self.attention_blocks = [
        SelfAttentionBlock(hidden_units, num_heads, dropout_rate,
                           name=f"attention_{i}") for i in range(num_blocks)]
    self.feed_forward_blocks = [
        PointWiseFeedForward(hidden_units, dropout_rate, name=f"feed_forward_{i}")
        for i in range(num_blocks)]
    self.final_norm = keras.layers.LayerNormalization(epsilon=1e-8,
                                                      name="final_norm")

  def call(self, item_ids, item_delta=None, training=False):
    key_mask = tf.not_equal(item_ids, 0)
    mask = tf.cast(key_mask, self.compute_dtype)[..., None]
    x = self.embedding(item_ids, item_delta=item_delta, training=training)
    for attention, feed_forward in zip(self.attention_blocks,
                                       self.feed_forward_blocks):
      x = attention(x, key_mask, training=training)
      x = feed_forward(x, training=training) * mask
    return self.final_norm(x)

  def build_for_inputs(self) -> None:
    """Creates the weights by calling the model on one padded sequence."""
    self(tf.zeros([1, self.maxlen], tf.int32))

  @property
  def item_table(self) -> tf.Variable:
    """[I + 1, d] item embedding table, shared by input and output (Eq. 4)."""
    return self.embedding.item_embedding

  def sequence_loss(self, batch: Dict[str, tf.Tensor], training: bool,
                    input_delta: Optional[tf.Tensor] = None,
                    output_delta: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Eq. 5 for ``batch``, the item table perturbed by ``input_delta`` at the
    input and ``output_delta`` at the output; see ``output_loss``."""
    hidden = self(batch["inputs"], item_delta=input_delta, training=training)
    return self.output_loss(hidden, batch, output_delta)

  def output_loss(self, hidden: tf.Tensor, batch: Dict[str, tf.Tensor],
                  output_delta: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Eq. 5: binary cross-entropy of positives vs negatives given the
    [B, L, d] ``hidden`` states, mean over the non-padding positions of the
    global batch (so that replicas' gradients add up to the single-device
    gradient); float32 whatever the compute dtype."""
    pos = self.embedding.lookup(batch["positives"], output_delta)
    neg = self.embedding.lookup(batch["negatives"], output_delta)
    pos_logits = tf.cast(tf.reduce_sum(hidden * pos, -1), tf.float32)
    neg_logits = tf.cast(tf.reduce_sum(hidden * neg, -1), tf.float32)
    mask = tf.cast(tf.not_equal(batch["positives"], 0), tf.float32)
    losses = tf.nn.softplus(-pos_logits) + tf.nn.softplus(neg_logits)
    count = replica_sum(tf.reduce_sum(mask))
    return tf.reduce_sum(losses * mask) / tf.maximum(count, 1.0)

  def plain_train_step(self, batch):
    """One Adam step on the SASRec loss; returns {'loss': ...}."""
    with tf.GradientTape() as tape:
      loss = self.sequence_loss(batch, training=True)
      scaled = self.optimizer.scale_loss(loss)
    grads = tape.gradient(scaled, self.trainable_variables)
    self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
    return {"loss": loss, "clean_loss": loss, "adv_loss": tf.zeros_like(loss)}

  def train_step(self, data):
    return self.plain_train_step(data)

  def score(self, histories) -> tf.Tensor:
    """[B, I + 1] scores of every item after each [B, L] history."""
    hidden = self(histories, training=False)[:, -1, :]
    table = tf.cast(self.item_table, hidden.dtype)
    return tf.cast(tf.matmul(hidden, table, transpose_b=True), tf.float32)

  def get_config(self):
    return {**super().get_config(), "num_items": self.num_items,
            "maxlen": self.maxlen, "hidden_units": self.hidden_units,
            "num_blocks": self.num_blocks, "num_heads": self.num_heads,
            "dropout_rate": self.dropout_rate}


@keras.saving.register_keras_serializable("asasrec_tf")
class ASASRec(SASRec):
  """SASRec trained with sequential adversarial perturbations (Eqs. 6-10).

  Each ``train_step``: (1) the clean loss with dropout off, with a zero
  perturbation Delta added to the item table wherever it is used; (2) its
  gradient Gamma with respect to Delta (= dL/dE, as in the authors' code);
  (3) Delta_adv = eps * Gamma / ||Gamma|| (per row or global), constant;
  (4) Delta_adv injected at ``adv_target`` ('both': input and output item
  embeddings, Eq. 9; 'output': positive/negative item embeddings only, the
  authors' code; 'input'); (5) one Adam step on L(Theta) + adv_reg *
  L(Theta + Delta_adv) (Eq. 10), both with dropout on.

  That is ``adv_gamma='separate'``: three passes through the network per
  step. ``adv_gamma='shared'`` takes Gamma from the backward pass of the
  clean training loss itself (dropout on), which also gives that loss's
  weight gradients, and Gamma is the gradient w.r.t. the embeddings the
  perturbation goes to; with ``adv_target='output'`` the perturbed loss then
  reuses the clean pass's hidden states, so the transformer runs once. With
  dropout 0 and target 'both' the two give the same step.
  """

  def __init__(self, num_items: int, maxlen: int, adv_eps: float = 0.5,
               adv_reg: float = 1.0, adv_target: str = "both",
               adv_norm: str = "row", adv_gamma: str = "separate", **kwargs):
    super().__init__(num_items, maxlen, **kwargs)
    if adv_target not in ADV_TARGETS:
      raise ValueError(f"adv_target must be one of {ADV_TARGETS}")
    if adv_norm not in adversarial.NORMS:
      raise ValueError(f"adv_norm must be one of {adversarial.NORMS}")
    if adv_gamma not in ADV_GAMMAS:
      raise ValueError(f"adv_gamma must be one of {ADV_GAMMAS}")
    self.adv_eps = adv_eps
    self.adv_reg = adv_reg
    self.adv_target = adv_target
    self.adv_norm = adv_norm
    self.adv_gamma = adv_gamma

  def adversarial_delta(self, batch) -> tf.Tensor:
    """[I + 1, d] Delta_adv for this batch (steps 1-3)."""
    zero = tf.zeros_like(self.item_table)
    with tf.GradientTape() as tape:
      tape.watch(zero)
      clean = self.sequence_loss(batch, training=False, input_delta=zero,
                                 output_delta=zero)
      # Loss scaling (float16) keeps small gradients from underflowing; the
      # scale does not change the normalised direction.
      clean = self.optimizer.scale_loss(clean)
    gamma = replica_sum(tf.convert_to_tensor(tape.gradient(clean, zero)))
    return adversarial.perturbation(gamma, self.adv_eps, self.adv_norm)

  def _deltas(self, delta):
    """(input_delta, output_delta): ``delta`` where adv_target puts it."""
    return (delta if self.adv_target in ("both", "input") else None,
            delta if self.adv_target in ("both", "output") else None)

  def train_step(self, data):
    if self.adv_gamma == "shared":
      if self.adv_target == "output":
        return self._one_pass_output_step(data)
      return self._shared_gamma_step(data)
    input_delta, output_delta = self._deltas(self.adversarial_delta(data))
    with tf.GradientTape() as tape:
      clean = self.sequence_loss(data, training=True)
      adv = self.sequence_loss(data, training=True, input_delta=input_delta,
                               output_delta=output_delta)
      loss = clean + self.adv_reg * adv
      scaled = self.optimizer.scale_loss(loss)
    grads = tape.gradient(scaled, self.trainable_variables)
    self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
    return {"loss": loss, "clean_loss": clean, "adv_loss": adv}

  def _shared_gamma_step(self, data):
    """Gamma and the clean weight gradients from one backward pass; then the
    perturbed loss's forward and backward pass."""
    variables = self.trainable_variables
    zero = tf.zeros_like(self.item_table)
    input_zero, output_zero = self._deltas(zero)
    with tf.GradientTape() as tape:
      tape.watch(zero)
      clean = self.sequence_loss(data, training=True, input_delta=input_zero,
                                 output_delta=output_zero)
      scaled = self.optimizer.scale_loss(clean)
    *clean_grads, gamma = tape.gradient(scaled, variables + [zero])
    delta = adversarial.perturbation(replica_sum(tf.convert_to_tensor(gamma)),
                                     self.adv_eps, self.adv_norm)
    input_delta, output_delta = self._deltas(delta)
    with tf.GradientTape() as tape:
      adv = self.sequence_loss(data, training=True, input_delta=input_delta,
                               output_delta=output_delta)
      scaled = self.optimizer.scale_loss(self.adv_reg * adv)
    adv_grads = tape.gradient(scaled, variables)
    grads = [_add_gradients(a, b) for a, b in zip(clean_grads, adv_grads)]
    self.optimizer.apply_gradients(zip(grads, variables))
    return {"loss": clean + self.adv_reg * adv, "clean_loss": clean,
            "adv_loss": adv}

  def _one_pass_output_step(self, data):
    """adv_target='output': both losses from one pass's hidden states, Gamma
    the gradient w.r.t. the output embeddings only."""
    variables = self.trainable_variables
    zero = tf.zeros_like(self.item_table)
    with tf.GradientTape() as tape:
      hidden = self(data["inputs"], training=True)
      with tf.GradientTape() as inner:
        inner.watch(zero)
        clean = self.output_loss(hidden, data, zero)
        # Scaled like the other paths' Gamma (float16 underflow); the scale
        # does not change the normalised direction.
        scaled_clean = self.optimizer.scale_loss(clean)
      gamma = replica_sum(tf.convert_to_tensor(
          inner.gradient(scaled_clean, zero)))
      delta = adversarial.perturbation(gamma, self.adv_eps, self.adv_norm)
      adv = self.output_loss(hidden, data, delta)
      loss = clean + self.adv_reg * adv
      scaled = self.optimizer.scale_loss(loss)
    grads = tape.gradient(scaled, variables)
    self.optimizer.apply_gradients(zip(grads, variables))
    return {"loss": loss, "clean_loss": clean, "adv_loss": adv}

  def get_config(self):
    return {**super().get_config(), "adv_eps": self.adv_eps,
            "adv_reg": self.adv_reg, "adv_target": self.adv_target,
            "adv_norm": self.adv_norm, "adv_gamma": self.adv_gamma}


def _add_gradients(a, b):
  """a + b for gradients that may be tf.IndexedSlices (embedding lookups)."""
  if a is None:
    return b
  if b is None:
    return a
  if isinstance(a, tf.IndexedSlices) and isinstance(b, tf.IndexedSlices):
    return tf.IndexedSlices(tf.concat([a.values, b.values], 0),
                            tf.concat([a.indices, b.indices], 0),
                            a.dense_shape)
  return tf.convert_to_tensor(a) + tf.convert_to_tensor(b)
