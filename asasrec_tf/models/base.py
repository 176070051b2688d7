"""What every trainable recommender here is: a loss on a batch, one training
step around it, and scores of every item for a batch of users.

As in TensorFlow Recommenders' ``tfrs.Model``, a model defines
``batch_loss`` and inherits ``train_step``; an adversarial model (ASASRec,
APR) overrides ``train_step`` only, and the runner calls ``plain_step`` for
the epochs before the adversary is switched on. Regularisation losses a
layer adds (``self.losses``) join every step's loss.
"""

from __future__ import annotations

from typing import Dict

import keras
import tensorflow as tf


class Recommender(keras.Model):
  """A Keras model trained by ``train_step`` on sampler batches.

  Subclasses implement ``batch_loss`` and ``score``.
  """

  def batch_loss(self, batch: Dict[str, tf.Tensor],
                 training: bool) -> tf.Tensor:
    """Scalar float32 training loss of ``batch`` (a dict of int32 tensors),
    without regularisation."""
    raise NotImplementedError

  def score(self, users: tf.Tensor, histories: tf.Tensor) -> tf.Tensor:
    """[B, I + 1] float32 scores of every item id for [B] internal user ids
    and their [B, L] left-padded recent items; a model reads what it needs
    (sequence models the histories, factorisation models the users)."""
    raise NotImplementedError

  def regularised(self, loss: tf.Tensor) -> tf.Tensor:
    """``loss`` plus the layers' regularisation losses, if any."""
    if not self.losses:
      return loss
    return loss + tf.add_n([tf.cast(x, loss.dtype) for x in self.losses])

  def step_on(self, tape: tf.GradientTape, scaled: tf.Tensor) -> None:
    """One optimizer step on ``scaled``, the loss ``tape`` recorded after
    ``self.optimizer.scale_loss`` (which loss-scales under float16 and is
    the identity otherwise)."""
    variables = self.trainable_variables
    grads = tape.gradient(scaled, variables)
    self.optimizer.apply_gradients(zip(grads, variables))

  def plain_step(self, batch: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """One step on the model's own loss; returns the logged losses."""
    with tf.GradientTape() as tape:
      loss = self.regularised(self.batch_loss(batch, training=True))
      scaled = self.optimizer.scale_loss(loss)
    self.step_on(tape, scaled)
    return {"loss": loss, "clean_loss": loss, "adv_loss": tf.zeros_like(loss)}

  def train_step(self, data):
    return self.plain_step(data)
