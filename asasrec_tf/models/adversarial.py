"""The fast-gradient perturbation shared by ASASRec and APR (Eq. 8).

Delta = eps * Gamma / ||Gamma||, held constant (no gradient flows through it).
"""

from __future__ import annotations

import tensorflow as tf

from asasrec_tf.choices import NORMS


def perturbation(gradient, eps: float, norm: str = "row") -> tf.Tensor:
  """Turns a loss gradient into an adversarial perturbation.

  Args:
    gradient: Gamma, the gradient of the loss with respect to an embedding
      table [N, d] (dense or tf.IndexedSlices).
    eps: the perturbation size epsilon.
    norm: 'row' normalises every row (each row touched by the batch gets
      L2 norm eps; untouched rows stay 0), as the authors' code and He et
      al.'s APR do; 'global' normalises the whole table to norm eps.

  Returns:
    [N, d] perturbation, with stop_gradient applied.
  """
  if norm not in NORMS:
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
  gradient = tf.convert_to_tensor(gradient)
  axis = -1 if norm == "row" else None
  return tf.stop_gradient(eps * tf.math.l2_normalize(gradient, axis=axis))
