"""Run directories: one writer at a time, and resuming only like with like.

``prepare`` takes an exclusive lock on ``<run_dir>/.lock`` (held until the
process exits, so a killed run never leaves a stale lock), refuses a finished
run, and decides whether an existing checkpoint is resumed: only when the
flags that shape the results equal those recorded in ``run.json``.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from typing import Dict

from asasrec_tf.data.dataset import atomic_write_text
from asasrec_tf.errors import UserError
from asasrec_tf.training import checkpoint

# Flags that do not change what a run computes.
NOT_RESULT_FLAGS = frozenset({"resume", "run_name", "results_dir",
                              "checkpoint_every", "cache_dir", "data_dir",
                              "download", "init_checkpoint"})

_locks = {}


def default_name(dataset: str, model: str, split: str, seed: int) -> str:
  return f"{dataset}-{model}-{split}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def lock(run_dir: str) -> None:
  """Takes the run directory's lock or raises UserError."""
  path = os.path.join(run_dir, ".lock")
  handle = open(path, "a+")
  try:
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError:
    handle.close()
    raise UserError(f"{run_dir} is in use by another process (lock "
                    f"{path}); wait for it or choose another --run_name"
                    ) from None
  handle.seek(0)
  handle.truncate()
  handle.write(f"{os.getpid()}\n")
  handle.flush()
  _locks[os.path.abspath(run_dir)] = handle


def unlock(run_dir: str) -> None:
  handle = _locks.pop(os.path.abspath(run_dir), None)
  if handle:
    handle.close()


def result_flags(flag_values: Dict[str, object]) -> Dict[str, object]:
  return {k: v for k, v in flag_values.items() if k not in NOT_RESULT_FLAGS}


def prepare(results_dir: str, name: str, flag_values: Dict[str, object],
            resume: bool = True) -> bool:
  """Creates/locks ``results_dir/name``; returns True when it must resume.

  Raises:
    UserError: finished run; checkpoint present with --noresume; checkpoint
      of different flags; directory locked by another process.
  """
  run_dir = os.path.join(results_dir, name)
  os.makedirs(run_dir, exist_ok=True)
  lock(run_dir)
  if os.path.exists(os.path.join(run_dir, "results.json")):
    unlock(run_dir)
    raise UserError(f"{run_dir} already holds a finished run (results.json); "
                    "choose another --run_name or remove it")
  wanted = json.loads(json.dumps(result_flags(flag_values)))
  recorded_path = os.path.join(run_dir, "run.json")
  if checkpoint.exists(run_dir):
    if not resume:
      unlock(run_dir)
      raise UserError(f"{run_dir} holds a checkpoint; pass --resume to "
                      "continue it, or choose another --run_name")
    recorded = _read(recorded_path)
    differ = sorted(k for k in set(wanted) | set(recorded)
                    if wanted.get(k) != recorded.get(k))
    if differ:
      unlock(run_dir)
      shown = ", ".join(f"--{k} (checkpoint: {recorded.get(k)!r}, now: "
                        f"{wanted.get(k)!r})" for k in differ)
      raise UserError(f"{run_dir} holds a checkpoint made with other flags: "
                      f"{shown}; use the same flags or another --run_name")
    return True
  atomic_write_text(recorded_path, json.dumps(wanted, indent=1,
                                              sort_keys=True) + "\n")
  return False


def _read(path: str) -> Dict[str, object]:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return {}
