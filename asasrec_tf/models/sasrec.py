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

from asasrec_tf.choices import (ADV_GAMMA_USES, ADV_GAMMAS, ADV_PASSES,
                                ADV_TARGETS, BLOCKS, GBCE_T, LOSSES)
from asasrec_tf.models import adversarial
from asasrec_tf.models.base import Recommender
from asasrec_tf.models.layers import (ItemPositionEmbedding,
                                      PointWiseFeedForward, SelfAttentionBlock)
from asasrec_tf.models.replicas import replica_sum

# LOSSES, the training loss per target (the paper's Eq. 5 is the first two):
# 'bce', softplus(-x+) + softplus(x-) (exact); 'bce_authors',
# -log(sigmoid(x+) + 1e-24) - log(1 - sigmoid(x-) + 1e-24) as the authors'
# code (and kang205's) writes it, whose float32 gradient is 0 once a
# negative's logit passes about 17 or a positive's falls below about -55;
# 'gbce', gSASRec's generalised BCE (Petrov & Macdonald, RecSys 2023) over k
# sampled negatives, beta * softplus(-x+) + sum_k softplus(x-_k) with
# alpha = k / (I - 1) and beta = alpha * (t * (1 - 1/alpha) + 1/alpha), so
# that sigmoid(x+)^beta is the positive's probability (t = 0: BCE, t = 1:
# fully calibrated); 'ce', softmax cross-entropy over every item (SASRec+,
# Klenitskiy & Vasilev, RecSys 2023), the padding id 0 excluded.
_LOG_EPS = 1e-24
# gBCE scores the whole catalog and picks the k negatives' logits when the
# catalog has at most this many items per negative (see
# SASRec._gbce_scores_catalog; measured in results/bench_losses.md).
GBCE_CATALOG_RATIO = 16


@keras.saving.register_keras_serializable("asasrec_tf")
class SASRec(Recommender):
  """Self-attentive sequential recommender.

  Call args:
    item_ids: [B, L] int item ids, 0 = padding.
    input_delta: optional [I + 1, d] perturbation added to the item table at
      the input (Eq. 9).
    training: dropout switch.

  Returns:
    [B, L, d] hidden state F_t of every position. Padding positions hold the
    final layer norm's bias (its input there is 0); neither the loss (masked
    by the positives) nor the scores (last position) read them.

  ``block`` places the layer norms as kang205/SASRec ('kang205') or as the
  authors' code ('authors': normalised keys and values, and a layer norm
  closing each feed-forward); ``loss`` is the training loss (see LOSSES),
  ``gbce_t`` gSASRec's calibration t for ``loss='gbce'``; ``row_reads``
  reads the item table row by row, for a row-sparse optimizer (see
  ItemPositionEmbedding).
  """

  def __init__(self, num_items: int, maxlen: int, hidden_units: int = 64,
               num_blocks: int = 2, num_heads: int = 1,
               dropout_rate: float = 0.5, block: str = "kang205",
               loss: str = "bce", gbce_t: float = GBCE_T,
               row_reads: bool = False, **kwargs):
    kwargs.setdefault("name", type(self).__name__.lower())
    super().__init__(**kwargs)
    if block not in BLOCKS:
      raise ValueError(f"block must be one of {BLOCKS}, got {block!r}")
    if loss not in LOSSES:
      raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    self.num_items = num_items
    self.maxlen = maxlen
    self.hidden_units = hidden_units
    self.num_blocks = num_blocks
    self.num_heads = num_heads
    self.dropout_rate = dropout_rate
    self.block = block
    self.loss_form = loss
    self.gbce_t = gbce_t
    self.row_reads = row_reads
    policy = self.dtype_policy
    authors = block == "authors"
    self.embedding = ItemPositionEmbedding(num_items, maxlen, hidden_units,
                                           dropout_rate, row_reads=row_reads,
                                           name="embedding", dtype=policy)
    self.attention_blocks = [
        SelfAttentionBlock(hidden_units, num_heads, dropout_rate,
                           normed_keys=authors, name=f"attention_{i}",
                           dtype=policy)
        for i in range(num_blocks)]
    self.feed_forward_blocks = [
        PointWiseFeedForward(hidden_units, dropout_rate, output_norm=authors,
                             name=f"feed_forward_{i}", dtype=policy)
        for i in range(num_blocks)]
    self.final_norm = keras.layers.LayerNormalization(
        epsilon=1e-8, name="final_norm", dtype=policy)

  def call(self, item_ids, input_delta=None, training=False):
    key_mask = tf.not_equal(item_ids, 0)
    mask = tf.cast(key_mask, self.compute_dtype)[..., None]
    x = self.embedding(item_ids, input_delta=input_delta, training=training)
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
    hidden = self(batch["inputs"], input_delta=input_delta, training=training)
    return self.output_loss(hidden, batch, output_delta)

  def output_loss(self, hidden: tf.Tensor, batch: Dict[str, tf.Tensor],
                  output_delta: Optional[tf.Tensor] = None) -> tf.Tensor:
    """The training loss (Eq. 5 for the BCE forms) given the [B, L, d]
    ``hidden`` states: mean over the non-padding positions of the global
    batch (so that replicas' gradients add up to the single-device
    gradient); float32 whatever the compute dtype."""
    if self.loss_form in ("gbce", "ce"):
      return self._target_loss(hidden, batch, output_delta)
    pos = self.embedding.lookup(batch["positives"], output_delta)
    neg = self.embedding.lookup(batch["negatives"], output_delta)
    pos_logits = tf.cast(tf.reduce_sum(hidden * pos, -1), tf.float32)
    neg_logits = tf.cast(tf.reduce_sum(hidden * neg, -1), tf.float32)
    mask = tf.cast(tf.not_equal(batch["positives"], 0), tf.float32)
    losses = binary_cross_entropy(pos_logits, neg_logits, self.loss_form)
    return tf.reduce_sum(losses * mask) / tf.maximum(self.target_count(batch),
                                                     1.0)

  def _target_loss(self, hidden, batch, output_delta):
    """'gbce' or 'ce' over the real targets only: [N, d] hidden states of
    the N non-padding positions, so that k negatives or the whole catalog
    cost N, not B * L, rows."""
    real = tf.not_equal(batch["positives"], 0)
    h = tf.boolean_mask(hidden, real)
    positives = tf.boolean_mask(batch["positives"], real)
    if self.loss_form == "ce":
      losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
          labels=positives - 1, logits=self._catalog_logits(h, output_delta))
    else:
      negatives = batch["negatives"]
      if negatives.shape.rank == 2:
        negatives = negatives[..., None]
      negatives = tf.boolean_mask(negatives, real)
      if self._gbce_scores_catalog(negatives.shape[-1]):
        logits = self._catalog_logits(h, output_delta)
        pos_logits = tf.gather(logits, positives - 1, batch_dims=1)
        neg_logits = tf.gather(logits, negatives - 1, batch_dims=1)
      else:
        pos = self.embedding.lookup(positives, output_delta)
        neg = self.embedding.lookup(negatives, output_delta)
        pos_logits = tf.cast(tf.reduce_sum(h * pos, -1), tf.float32)
        neg_logits = tf.cast(tf.einsum("nd,nkd->nk", h, neg), tf.float32)
      losses = generalised_bce(pos_logits, neg_logits, self.num_items,
                               self.gbce_t)
    return tf.reduce_sum(losses) / tf.maximum(self.target_count(batch), 1.0)

  def _catalog_logits(self, h: tf.Tensor, output_delta) -> tf.Tensor:
    """[N, I] float32 logits of every item (ids 1..I) for the [N, d] hidden
    states, the output table perturbed by ``output_delta``."""
    table = tf.cast(self.item_table, h.dtype)
    if output_delta is not None:
      delta = (output_delta.dense(self.num_items + 1)
               if isinstance(output_delta, adversarial.RowDelta)
               else output_delta)
      table += tf.cast(delta, h.dtype)
    return tf.cast(tf.matmul(h, table[1:], transpose_b=True), tf.float32)

  def _gbce_scores_catalog(self, num_negatives: Optional[int]) -> bool:
    """Whether gBCE reads its k negative logits out of the [N, I] catalog
    logits (one matrix product) instead of gathering [N, k, d] embeddings:
    the same loss, and cheaper once k is a sizeable fraction of the catalog
    (GBCE_CATALOG_RATIO), except for a row-sparse optimizer, which needs
    the gathered rows' sparse gradient."""
    return (not self.row_reads and num_negatives is not None and
            self.num_items <= GBCE_CATALOG_RATIO * num_negatives)

  def target_count(self, batch: Dict[str, tf.Tensor]) -> tf.Tensor:
    """Number of targets (non-padding positives) in the global batch."""
    mask = tf.cast(tf.not_equal(batch["positives"], 0), tf.float32)
    return replica_sum(tf.reduce_sum(mask))

  def batch_loss(self, batch, training):
    return self.sequence_loss(batch, training=training)

  def score(self, users, histories) -> tf.Tensor:
    """[B, I + 1] scores of every item after each [B, L] history (the users
    are not needed)."""
    del users
    hidden = self(histories, training=False)[:, -1, :]
    table = tf.cast(self.item_table, hidden.dtype)
    return tf.cast(tf.matmul(hidden, table, transpose_b=True), tf.float32)

  def get_config(self):
    return {**super().get_config(), "num_items": self.num_items,
            "maxlen": self.maxlen, "hidden_units": self.hidden_units,
            "num_blocks": self.num_blocks, "num_heads": self.num_heads,
            "dropout_rate": self.dropout_rate, "block": self.block,
            "loss": self.loss_form, "gbce_t": self.gbce_t,
            "row_reads": self.row_reads}


def binary_cross_entropy(pos_logits: tf.Tensor, neg_logits: tf.Tensor,
                         form: str = "bce") -> tf.Tensor:
  """Eq. 5's per-target loss of a positive and a negative logit (any shape,
  float32), in one of the LOSSES forms."""
  if form == "bce":
    return tf.nn.softplus(-pos_logits) + tf.nn.softplus(neg_logits)
  # The maximum is a no-op on values (sigmoid <= 1) that keeps Grappler's
  # constant push-down from turning (1 - s) + 1e-24 into (1 + 1e-24) - s,
  # which is 1 - s in float32: log(0) = -inf where the authors get 55.26.
  one_minus = tf.maximum(1.0 - tf.sigmoid(neg_logits), 0.0)
  return (-tf.math.log(tf.sigmoid(pos_logits) + _LOG_EPS)
          - tf.math.log(one_minus + _LOG_EPS))


def gbce_beta(num_negatives, num_items: int, t: float):
  """gSASRec's beta: alpha * (t * (1 - 1/alpha) + 1/alpha), alpha = k/(I-1)
  the negative sampling rate (1 at t = 0, alpha at t = 1)."""
  alpha = num_negatives / (num_items - 1)
  return alpha * (t * (1.0 - 1.0 / alpha) + 1.0 / alpha)


def generalised_bce(pos_logits: tf.Tensor, neg_logits: tf.Tensor,
                    num_items: int, t: float) -> tf.Tensor:
  """gSASRec's loss per target: [N] positive and [N, k] negative logits
  (float32) to [N] beta * softplus(-x+) + sum_k softplus(x-_k), i.e.
  -log(sigmoid(x+)^beta) - sum_k log(1 - sigmoid(x-_k)). gSASRec's code
  averages over the k + 1 logits instead of summing: a constant factor."""
  k = tf.cast(tf.shape(neg_logits)[-1], tf.float32)
  beta = gbce_beta(k, num_items, t)
  return (beta * tf.nn.softplus(-pos_logits)
          + tf.reduce_sum(tf.nn.softplus(neg_logits), -1))


@keras.saving.register_keras_serializable("asasrec_tf")
class ASASRec(SASRec):
  """SASRec trained with sequential adversarial perturbations (Eqs. 6-10).

  Each ``train_step`` takes Gamma = dL/dE, the gradient of the clean loss
  with respect to the item table, turns it into Delta_adv = eps * Gamma /
  ||Gamma|| (per row or global; constant), and makes one Adam step on
  L(Theta) + adv_reg * L(Theta + Delta_adv) (Eq. 10), both with dropout on.
  Four choices shape the step; the paper settles only the first, and the
  authors' code (feay1234/ASASRec) makes a particular one of each:

  * ``adv_target``: where Delta_adv is added: 'both' input and output item
    embeddings (Eq. 9), 'output' the positive/negative embeddings only (the
    authors' code), or 'input'.
  * ``adv_gamma``: where Gamma comes from: 'clean', a pass of its own with
    dropout off (Algorithm 1; the authors); 'dropout', a pass of its own with
    dropout on (its own mask); 'shared', the backward pass of the clean
    training loss itself (same mask), which also gives that loss's weight
    gradients and saves a pass.
  * ``adv_gamma_uses``: 'all', Gamma over every use of the table, input and
    output (the authors differentiate with respect to the table); 'target',
    over the uses Delta_adv is added to.
  * ``adv_passes``: 'two', the clean and the perturbed loss from forward
    passes of their own (different dropout masks); 'one', both from the
    hidden states of one dropout-on pass (the same mask; the authors), which
    needs ``adv_target='output'`` since a perturbed input changes the
    hidden states.

  The authors' step is therefore adv_target='output', adv_gamma='clean',
  adv_gamma_uses='all', adv_passes='one'; the defaults ('both', 'clean',
  'all', 'two') are Eq. 9 and Algorithm 1 as written. With dropout 0 the
  gamma and passes choices give the same step.
  """

  def __init__(self, num_items: int, maxlen: int, adv_eps: float = 0.5,
               adv_reg: float = 1.0, adv_target: str = "both",
               adv_norm: str = "row", adv_gamma: str = "clean",
               adv_gamma_uses: str = "all", adv_passes: str = "two",
               **kwargs):
    super().__init__(num_items, maxlen, **kwargs)
    for name, value, allowed in (
        ("adv_target", adv_target, ADV_TARGETS),
        ("adv_norm", adv_norm, adversarial.NORMS),
        ("adv_gamma", adv_gamma, ADV_GAMMAS),
        ("adv_gamma_uses", adv_gamma_uses, ADV_GAMMA_USES),
        ("adv_passes", adv_passes, ADV_PASSES)):
      if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    if adv_passes == "one" and adv_target != "output":
      raise ValueError("adv_passes='one' needs adv_target='output': a "
                       "perturbed input needs a forward pass of its own")
    if adv_passes == "one" and adv_gamma == "shared" and adv_gamma_uses == "all":
      raise ValueError("adv_gamma='shared' with adv_passes='one' takes Gamma "
                       "from the output use only: set adv_gamma_uses='target'")
    self.adv_eps = adv_eps
    self.adv_reg = adv_reg
    self.adv_target = adv_target
    self.adv_norm = adv_norm
    self.adv_gamma = adv_gamma
    self.adv_gamma_uses = adv_gamma_uses
    self.adv_passes = adv_passes

  def _deltas(self, delta):
    """(input_delta, output_delta): ``delta`` where adv_target puts it."""
    return (delta if self.adv_target in ("both", "input") else None,
            delta if self.adv_target in ("both", "output") else None)

  def _gamma_uses(self, zero):
    """(input_delta, output_delta): ``zero`` at the uses Gamma is taken over."""
    if self.adv_gamma_uses == "all":
      return zero, zero
    return self._deltas(zero)

  def _zero_delta(self, batch) -> adversarial.Delta:
    """A zero perturbation of the item table to take Gamma with respect to:
    of the rows the batch touches (an adversarial.RowDelta) on one replica,
    of the whole table where replicas must sum their Gammas or where the
    loss ('ce') touches every row."""
    return adversarial.zero_delta(
        self.item_table,
        [batch["inputs"], batch["positives"], batch["negatives"]],
        dense=self.loss_form == "ce")

  def _perturbation(self, zero: adversarial.Delta, gamma) -> adversarial.Delta:
    """Delta_adv from the Gamma of ``zero``; rows whose gradient overflowed
    (float16) are left unperturbed rather than made NaN."""
    gamma = replica_sum(tf.convert_to_tensor(gamma))
    gamma = tf.where(tf.math.is_finite(gamma), gamma, tf.zeros_like(gamma))
    return adversarial.perturbation(adversarial.like(zero, gamma),
                                    self.adv_eps, self.adv_norm)

  def _gamma_loss(self, clean: tf.Tensor, batch) -> tf.Tensor:
    """The loss Gamma is the gradient of. Under float16 the clean loss is
    summed over the targets rather than averaged: per-row gradients are then
    of order 1, neither underflowing nor, as with the optimizer's loss
    scale (2^15 at first), overflowing; normalising removes the factor."""
    if self.compute_dtype == "float16":
      return clean * self.target_count(batch)
    return clean

  def adversarial_delta(self, batch, training: bool = False
                        ) -> adversarial.Delta:
    """Delta_adv for ``batch`` from a pass of its own (dropout on when
    ``training``): a RowDelta of the rows the batch touches, or a dense
    [I + 1, d] table on several replicas."""
    zero = self._zero_delta(batch)
    input_zero, output_zero = self._gamma_uses(zero)
    with tf.GradientTape() as tape:
      tape.watch(adversarial.watched(zero))
      clean = self._gamma_loss(
          self.sequence_loss(batch, training=training, input_delta=input_zero,
                             output_delta=output_zero), batch)
    return self._perturbation(zero,
                              tape.gradient(clean, adversarial.watched(zero)))

  def train_step(self, data):
    if self.adv_gamma == "shared":
      if self.adv_passes == "one":
        return self._one_pass_shared_step(data)
      return self._shared_gamma_step(data)
    delta = self.adversarial_delta(data, training=self.adv_gamma == "dropout")
    input_delta, output_delta = self._deltas(delta)
    with tf.GradientTape() as tape:
      if self.adv_passes == "one":
        hidden = self(data["inputs"], training=True)
        clean = self.output_loss(hidden, data)
        adv = self.output_loss(hidden, data, output_delta)
      else:
        clean = self.sequence_loss(data, training=True)
        adv = self.sequence_loss(data, training=True, input_delta=input_delta,
                                 output_delta=output_delta)
      loss = self.regularised(clean + self.adv_reg * adv)
      scaled = self.optimizer.scale_loss(loss)
    self.step_on(tape, scaled)
    return {"loss": loss, "clean_loss": clean, "adv_loss": adv}

  def _shared_gamma_step(self, data):
    """Gamma and the clean weight gradients from one backward pass; then the
    perturbed loss's forward and backward pass."""
    variables = self.trainable_variables
    zero = self._zero_delta(data)
    input_zero, output_zero = self._gamma_uses(zero)
    with tf.GradientTape() as tape:
      tape.watch(adversarial.watched(zero))
      clean = self.sequence_loss(data, training=True, input_delta=input_zero,
                                 output_delta=output_zero)
      scaled = self.optimizer.scale_loss(self.regularised(clean))
    *clean_grads, gamma = tape.gradient(scaled,
                                        variables + [adversarial.watched(zero)])
    input_delta, output_delta = self._deltas(self._perturbation(zero, gamma))
    with tf.GradientTape() as tape:
      adv = self.sequence_loss(data, training=True, input_delta=input_delta,
                               output_delta=output_delta)
      scaled = self.optimizer.scale_loss(self.adv_reg * adv)
    adv_grads = tape.gradient(scaled, variables)
    grads = [_add_gradients(a, b) for a, b in zip(clean_grads, adv_grads)]
    self.optimizer.apply_gradients(zip(grads, variables))
    return {"loss": clean + self.adv_reg * adv, "clean_loss": clean,
            "adv_loss": adv}

  def _one_pass_shared_step(self, data):
    """Both losses from one pass's hidden states, Gamma the gradient of the
    clean loss w.r.t. the output embeddings of that same pass."""
    zero = self._zero_delta(data)
    with tf.GradientTape() as tape:
      hidden = self(data["inputs"], training=True)
      with tf.GradientTape() as inner:
        inner.watch(adversarial.watched(zero))
        clean = self.output_loss(hidden, data, zero)
        gamma_loss = self._gamma_loss(clean, data)
      delta = self._perturbation(
          zero, inner.gradient(gamma_loss, adversarial.watched(zero)))
      adv = self.output_loss(hidden, data, delta)
      loss = self.regularised(clean + self.adv_reg * adv)
      scaled = self.optimizer.scale_loss(loss)
    self.step_on(tape, scaled)
    return {"loss": loss, "clean_loss": clean, "adv_loss": adv}

  def get_config(self):
    return {**super().get_config(), "adv_eps": self.adv_eps,
            "adv_reg": self.adv_reg, "adv_target": self.adv_target,
            "adv_norm": self.adv_norm, "adv_gamma": self.adv_gamma,
            "adv_gamma_uses": self.adv_gamma_uses,
            "adv_passes": self.adv_passes}


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
