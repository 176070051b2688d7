"""Run directories: one writer at a time, and resuming only like with like.

``prepare`` takes an exclusive lock on ``<run_dir>/.lock`` (held until the
process exits, so a killed run never leaves a stale lock), removes the
temporaries a killed writer left, and says what the directory holds: nothing
yet (a new run), a checkpoint to resume, or a finished run. Both of the
latter only count when the flags that shape the results equal those
recorded in ``run.json``; ``restart`` discards whatever is there instead.
``abandon`` removes a run directory that a failed start left without
results or a checkpoint.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from typing import Dict

from asasrec_tf.errors import UserError
from asasrec_tf.fileio import atomic_write_text, remove_stale_temporaries
from asasrec_tf.training import checkpoint

NEW, RESUME, FINISHED = "new", "resume", "finished"
RESULTS = "results.json"
RECORD = "run.json"

# Flags that do not change what a run computes.
NOT_RESULT_FLAGS = frozenset({"resume", "restart", "run_name", "results_dir",
                              "checkpoint_every", "cache_dir", "data_dir",
                              "download", "init_checkpoint"})

_locks = {}


def default_name(dataset: str, model: str, split: str, seed: int,
                 run_id: str) -> str:
  """``<dataset>-<model>-<split>-seed<seed>-<run_id>``: the same command
  gives the same name, so rerunning it resumes (``run_id`` hashes the flags
  that change results)."""
  return f"{dataset}-{model}-{split}-seed{seed}-{run_id}"


def lock(run_dir: str) -> None:
  """Takes the run directory's lock or raises UserError."""
  path = os.path.join(run_dir, ".lock")
  try:
    handle = open(path, "a+")
  except OSError as e:
    raise UserError(f"cannot create {path}: {e.strerror or e}") from None
  try:
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError:
    handle.close()
    raise UserError(f"{run_dir} is in use by another process (lock "
                    f"{path}); wait for it or choose another --run_name"
                    ) from None
  try:
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
  except OSError as e:
    handle.close()
    raise UserError(f"cannot write {path}: {e.strerror or e}") from None
  _locks[os.path.abspath(run_dir)] = handle


def unlock(run_dir: str) -> None:
  handle = _locks.pop(os.path.abspath(run_dir), None)
  if handle:
    handle.close()


def result_flags(flag_values: Dict[str, object]) -> Dict[str, object]:
  return {k: v for k, v in flag_values.items() if k not in NOT_RESULT_FLAGS}


def prepare(results_dir: str, name: str, flag_values: Dict[str, object],
            resume: bool = True, restart: bool = False) -> str:
  """Creates and locks ``results_dir/name``; returns NEW, RESUME or FINISHED.

  Raises:
    UserError: a checkpoint with --noresume; a checkpoint or finished run
      made with other flags; the directory locked by another process.
  """
  run_dir = os.path.join(results_dir, name)
  os.makedirs(run_dir, exist_ok=True)
  lock(run_dir)
  remove_stale_temporaries(run_dir)
  if restart:
    _clear(run_dir)
  wanted = json.loads(json.dumps(result_flags(flag_values)))
  recorded_path = os.path.join(run_dir, RECORD)
  finished = os.path.exists(os.path.join(run_dir, RESULTS))
  if finished or checkpoint.exists(run_dir):
    what = "finished run" if finished else "checkpoint"
    if not finished and not resume:
      unlock(run_dir)
      raise UserError(f"{run_dir} holds a checkpoint; pass --resume to "
                      "continue it, --restart to discard it, or choose "
                      "another --run_name")
    recorded = _read(recorded_path)
    differ = sorted(k for k in set(wanted) | set(recorded)
                    if wanted.get(k) != recorded.get(k))
    if differ:
      unlock(run_dir)
      shown = ", ".join(f"--{k} ({what}: {recorded.get(k)!r}, now: "
                        f"{wanted.get(k)!r})" for k in differ)
      raise UserError(f"{run_dir} holds a {what} made with other flags: "
                      f"{shown}; use the same flags, --restart to discard "
                      "it, or another --run_name")
    return FINISHED if finished else RESUME
  atomic_write_text(recorded_path, json.dumps(wanted, indent=1,
                                              sort_keys=True) + "\n")
  return NEW


def abandon(run_dir: str) -> None:
  """Removes ``run_dir`` if it holds neither results nor a checkpoint (a
  run that failed before its first checkpoint), lock file included."""
  if (os.path.exists(os.path.join(run_dir, RESULTS)) or
      checkpoint.exists(run_dir)):
    unlock(run_dir)
    return
  unlock(run_dir)
  shutil.rmtree(run_dir, ignore_errors=True)


def _clear(run_dir: str) -> None:
  """Empties a locked run directory, keeping its lock file."""
  for name in os.listdir(run_dir):
    if name == ".lock":
      continue
    path = os.path.join(run_dir, name)
    if os.path.isdir(path):
      shutil.rmtree(path)
    else:
      os.remove(path)


def _read(path: str) -> Dict[str, object]:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return {}
