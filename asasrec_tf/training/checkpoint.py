"""Crash-safe training checkpoints.

A checkpoint is two files: ``ckpt-<epoch>.weights.h5`` (model and optimiser
variables) and ``checkpoint.json`` (the epoch, the runner's bookkeeping and
the random-generator states of the dropout layers). The weights are written
first under a new name; replacing ``checkpoint.json`` atomically is the
commit point; older weight files are removed only after it. A crash at any
moment therefore leaves either the previous checkpoint or the new one, never
a torn one.

The negative sampler needs no saved state: epoch ``e`` draws from
``default_rng([seed, e])``.
"""

from __future__ import annotations

import glob
import json
import os
import re
from typing import Dict, Optional

import numpy as np

from asasrec_tf.fileio import atomic_write_text

STATE = "checkpoint.json"
_WEIGHTS = re.compile(r"ckpt-[0-9]+\.weights\.h5")


def _is_keras_model(model) -> bool:
  # Keras is imported here, not at the top, so that run directories can be
  # checked (rundir imports this module) before TensorFlow is imported.
  import keras
  return isinstance(model, keras.Model)


def rng_variables(model) -> list:
  """State variables (keras.Variable) of the model's dropout seed
  generators: what Keras counts among a model's ``variables`` but not its
  ``weights``."""
  if not _is_keras_model(model):
    return []
  weights = {id(w) for w in model.weights}
  return [v for v in model.variables if id(v) not in weights]


def save(run_dir: str, model, epoch: int, state: Dict[str, object],
         write_weights=None) -> None:
  """Writes the checkpoint of ``epoch`` atomically.

  Args:
    run_dir: the run directory.
    model: the Keras model (weights and optimiser state are saved).
    epoch: the last completed epoch.
    state: JSON-serialisable runner state.
    write_weights: ``fn(model, path)`` writing weights atomically.
  """
  name = f"ckpt-{epoch:06d}.weights.h5"
  if _is_keras_model(model):
    write_weights(model, os.path.join(run_dir, name))
  payload = {"epoch": epoch, "weights": name, "state": state,
             "rng": [np.asarray(v.numpy()).tolist()
                     for v in rng_variables(model)]}
  atomic_write_text(os.path.join(run_dir, STATE), json.dumps(payload) + "\n")
  for old in glob.glob(os.path.join(run_dir, "ckpt-*.weights.h5")):
    if os.path.basename(old) != name:
      os.remove(old)


def exists(run_dir: str) -> bool:
  return os.path.isfile(os.path.join(run_dir, STATE))


class UnreadableCheckpoint(Exception):
  """A checkpoint file exists but cannot be read (the message names it)."""


def read(run_dir: str) -> Optional[Dict[str, object]]:
  """The payload of ``run_dir``'s checkpoint (None if it has none).

  Raises:
    UnreadableCheckpoint: checkpoint.json is not what save() writes.
  """
  path = os.path.join(run_dir, STATE)
  if not os.path.isfile(path):
    return None
  try:
    with open(path, encoding="utf-8") as f:
      payload = json.load(f)
    _check_payload(payload)
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise UnreadableCheckpoint(f"{path}: unreadable checkpoint ({e})"
                               ) from None
  return payload


def _check_payload(payload) -> None:
  """Raises ValueError unless ``payload`` has the fields and types save()
  writes (the weights a bare file name of this directory)."""
  if not isinstance(payload, dict):
    raise ValueError("not a JSON object")
  missing = [k for k in ("epoch", "weights", "state", "rng")
             if k not in payload]
  if missing:
    raise ValueError(f"no {', '.join(missing)}")
  epoch = payload["epoch"]
  if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
    raise ValueError(f"epoch {epoch!r} is not a non-negative integer")
  if not (isinstance(payload["weights"], str) and
          _WEIGHTS.fullmatch(payload["weights"])):
    raise ValueError(f"weights {payload['weights']!r} is not a "
                     "ckpt-<epoch>.weights.h5 file name")
  if not isinstance(payload["state"], dict):
    raise ValueError("state is not a JSON object")
  if not isinstance(payload["rng"], list):
    raise ValueError("rng is not a list")


def weights_path(run_dir: str, payload: Dict[str, object]) -> str:
  """The weights file (model and optimiser variables) of a payload."""
  return os.path.join(run_dir, payload["weights"])


def restore_rng(model, payload: Dict[str, object]) -> None:
  """Sets the dropout seed generators to the payload's states."""
  for var, value in zip(rng_variables(model), payload["rng"]):
    var.assign(np.asarray(value, dtype=var.dtype))


def load(run_dir: str, model) -> Optional[Dict[str, object]]:
  """Restores model, optimiser and RNG state; returns the saved payload."""
  payload = read(run_dir)
  if payload is None:
    return None
  if _is_keras_model(model):
    path = weights_path(run_dir, payload)
    try:
      model.load_weights(path)
    except (OSError, ValueError, KeyError) as e:
      raise UnreadableCheckpoint(f"{path}: unreadable checkpoint weights "
                                 f"({e})") from None
    restore_rng(model, payload)
  return payload
