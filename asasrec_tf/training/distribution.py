"""tf.distribute strategies for training on several devices or machines.

``--distribution=mirrored`` replicates the model on every local GPU (or on
the logical devices configured); ``multi_worker`` runs one process per
machine, configured by the ``TF_CONFIG`` environment variable. The model and
its optimiser must be built inside ``strategy.scope()``. Losses are scaled by
the global batch (see SASRec.sequence_loss) and gradients are summed across
replicas by the optimiser, so a distributed step equals the single-device
step on the same global batch; ASASRec's gradient for the perturbation is
summed across replicas before it is normalised, so every replica uses the
same perturbation.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from asasrec_tf.errors import UserError

STRATEGIES = ("none", "mirrored", "multi_worker")

def make_strategy(name: str) -> tf.distribute.Strategy:
  if name == "none":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    return tf.distribute.MirroredStrategy()
  if name == "multi_worker":
    if "TF_CONFIG" not in os.environ:
      raise UserError("--distribution=multi_worker needs the TF_CONFIG "
                      "environment variable (cluster and task of this worker)")
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise UserError(f"--distribution must be one of {', '.join(STRATEGIES)}")


def is_chief() -> bool:
  """True unless this is a non-chief worker of a multi-worker cluster."""
  config = json.loads(os.environ.get("TF_CONFIG", "{}"))
  task = config.get("task", {})
  if not task:
    return True
  if task.get("type") == "chief":
    return True
  has_chief = "chief" in config.get("cluster", {})
  return task.get("type") == "worker" and task.get("index", 0) == 0 and (
      not has_chief)
