"""Sums across the replicas of a tf.distribute strategy, for the models.

Losses are normalised by the global batch (see SASRec.output_loss) and
ASASRec/APR sum the perturbation gradient over replicas before normalising
it, so a distributed step equals the single-device step on the same global
batch. With one replica these are identities.
"""

from __future__ import annotations

import tensorflow as tf


def num_replicas() -> int:
  """Replicas in sync where the step is traced (1 outside tf.distribute)."""
  ctx = tf.distribute.get_replica_context()
  return 1 if ctx is None else ctx.num_replicas_in_sync


def replica_sum(value: tf.Tensor) -> tf.Tensor:
  """Sum of ``value`` over the replicas in sync (itself with one replica)."""
  ctx = tf.distribute.get_replica_context()
  if ctx is None or ctx.num_replicas_in_sync == 1:
    return value
  return ctx.all_reduce(tf.distribute.ReduceOp.SUM, value)
