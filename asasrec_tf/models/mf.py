"""Matrix factorisation with BPR (Rendle et al.) and APR (He et al., SIGIR'18).

Batches are dicts of int32 [B] tensors: ``users``, ``positives`` (an item the
user interacted with) and ``negatives`` (a sampled item they did not). As in
He et al.'s code, the loss is summed over the batch and the embeddings start
from a truncated N(0, 0.01).
"""

from __future__ import annotations

from typing import Dict, Optional

import keras
import tensorflow as tf

from asasrec_tf.models import adversarial
from asasrec_tf.models.base import Recommender
from asasrec_tf.models.replicas import replica_sum


@keras.saving.register_keras_serializable("asasrec_tf")
class BPRMF(Recommender):
  """x_ui = p_u . q_i, trained with softplus(-(x_ui - x_uj)).

  Scores: ``score(users, histories)`` -> [B, I + 1] from the users alone.
  """

  def __init__(self, num_users: int, num_items: int, hidden_units: int = 64,
               **kwargs):
    kwargs.setdefault("name", type(self).__name__.lower())
    super().__init__(**kwargs)
    self.num_users = num_users
    self.num_items = num_items
    self.hidden_units = hidden_units
    init = keras.initializers.TruncatedNormal(mean=0.0, stddev=0.01)
    self.user_embedding = self.add_weight(
        name="user_embedding", shape=(num_users, hidden_units),
        initializer=init)
    self.item_embedding = self.add_weight(
        name="item_embedding", shape=(num_items + 1, hidden_units),
        initializer=init)

  def build_for_inputs(self) -> None:
    """Marks the model built (weights exist already) by one call."""
    self(tf.zeros([1], tf.int32), tf.zeros([1], tf.int32))

  def call(self, users, items, user_delta=None, item_delta=None):
    """[B] predictions x_ui for [B] users and items (optionally perturbed)."""
    p = tf.gather(self.user_embedding, users)
    q = tf.gather(self.item_embedding, items)
    if user_delta is not None:
      p += adversarial.gather(user_delta, users)
    if item_delta is not None:
      q += adversarial.gather(item_delta, items)
    return tf.reduce_sum(p * q, axis=-1)

  def pair_loss(self, batch: Dict[str, tf.Tensor],
                user_delta: Optional[tf.Tensor] = None,
                item_delta: Optional[tf.Tensor] = None) -> tf.Tensor:
    """sum_b softplus(-(x_ui - x_uj)) over the batch."""
    pos = self(batch["users"], batch["positives"], user_delta=user_delta,
               item_delta=item_delta)
    neg = self(batch["users"], batch["negatives"], user_delta=user_delta,
               item_delta=item_delta)
    return tf.reduce_sum(tf.nn.softplus(-(pos - neg)))

  def batch_loss(self, batch, training):
    del training
    return self.pair_loss(batch)

  def score(self, users, histories) -> tf.Tensor:
    """[B, I + 1] scores p_u . q_i for [B] users (histories unused)."""
    del histories
    p = tf.gather(self.user_embedding, users)
    return tf.cast(tf.matmul(p, tf.cast(self.item_embedding, p.dtype),
                             transpose_b=True), tf.float32)

  def get_config(self):
    return {**super().get_config(), "num_users": self.num_users,
            "num_items": self.num_items, "hidden_units": self.hidden_units}


@keras.saving.register_keras_serializable("asasrec_tf")
class APR(BPRMF):
  """BPR-MF with adversarial perturbations of user and item embeddings.

  Each step: Gamma_P, Gamma_Q = dL/dP, dL/dQ of the clean batch loss;
  Delta = eps * Gamma / ||Gamma|| per row (the helper shared with ASASRec);
  one step on L(Theta) + adv_reg * L(Theta + Delta).
  """

  def __init__(self, num_users: int, num_items: int, adv_eps: float = 0.5,
               adv_reg: float = 1.0, adv_norm: str = "row", **kwargs):
    super().__init__(num_users, num_items, **kwargs)
    self.adv_eps = adv_eps
    self.adv_reg = adv_reg
    self.adv_norm = adv_norm

  def adversarial_deltas(self, batch):
    """(user, item) perturbations for this batch: RowDeltas of the rows it
    touches on one replica, dense [U, d] and [I + 1, d] tables (summed over
    replicas) on several."""
    zero_p = adversarial.zero_delta(self.user_embedding, [batch["users"]])
    zero_q = adversarial.zero_delta(self.item_embedding,
                                    [batch["positives"], batch["negatives"]])
    watched = [adversarial.watched(zero_p), adversarial.watched(zero_q)]
    with tf.GradientTape() as tape:
      tape.watch(watched)
      clean = self.pair_loss(batch, zero_p, zero_q)
    out = []
    for zero, grad in zip((zero_p, zero_q), tape.gradient(clean, watched)):
      grad = adversarial.like(zero, replica_sum(tf.convert_to_tensor(grad)))
      out.append(adversarial.perturbation(grad, self.adv_eps, self.adv_norm))
    return tuple(out)

  def train_step(self, data):
    delta_p, delta_q = self.adversarial_deltas(data)
    with tf.GradientTape() as tape:
      clean = self.pair_loss(data)
      adv = self.pair_loss(data, delta_p, delta_q)
      loss = self.regularised(clean + self.adv_reg * adv)
      scaled = self.optimizer.scale_loss(loss)
    self.step_on(tape, scaled)
    return {"loss": loss, "clean_loss": clean, "adv_loss": adv}

  def get_config(self):
    return {**super().get_config(), "adv_eps": self.adv_eps,
            "adv_reg": self.adv_reg, "adv_norm": self.adv_norm}
