"""Run directories: one writer at a time, resuming only like with like, and
never a file deleted that the program did not write.

``prepare`` checks that the run name is one directory name (no separator,
not hidden, at most MAX_NAME bytes), creates or reuses ``<results_dir>/<name>``
(an existing directory only if it looks like a run: it holds ``run.json``,
``checkpoint.json`` or ``results.json``, or nothing but a lock), takes an
exclusive lock on ``<run_dir>/.lock`` (held until the process exits, so a
killed run never leaves a stale lock), removes the temporaries a killed
writer left, and says what the directory holds: nothing yet (a new run), a
checkpoint to resume, or a finished run. Both of the latter only count when
the flags that shape the results, and the data file's content, equal those
recorded in ``run.json``; ``restart`` discards the run's own files instead.

Deletion is confined to the files a run writes (RUN_FILES, checkpoint
weights, TensorBoard event files (in the run directory, or its
``tensorboard/`` of earlier versions) and ``.tmp-*`` temporaries): ``--restart``
and ``abandon`` (the clean-up after a run that failed before its first
checkpoint) leave every other file alone, and ``abandon`` removes the
directory itself only when this process created it and it is then empty.
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
from typing import Dict, Optional

from asasrec_tf.errors import UserError
from asasrec_tf.fileio import (PREFIX, atomic_write_text,
                               remove_stale_temporaries)
from asasrec_tf.training import checkpoint

NEW, RESUME, FINISHED = "new", "resume", "finished"
RESULTS = "results.json"
RECORD = "run.json"
LOCK = ".lock"
MAX_NAME = 128  # bytes; file systems allow 255, and names get suffixes
# The files a run writes into its directory (besides checkpoint weights,
# temporaries and TensorBoard events): all that --restart and abandon delete.
RUN_FILES = (RECORD, RESULTS, checkpoint.STATE, "best.weights.h5",
             "last.weights.h5", "test_per_user.npz", "serving.npz",
             "model.json", "robustness.json")
TENSORBOARD = "tensorboard"
# The key of the data file's content hash in run.json.
DATA_HASH = "data_sha256"

# Flags that do not change what a run computes.
NOT_RESULT_FLAGS = frozenset({"resume", "restart", "run_name", "results_dir",
                              "checkpoint_every", "cache_dir", "data_dir",
                              "download", "init_checkpoint",
                              "worker_timeout"})

_locks = {}
_created = set()  # run directories this process created


def default_name(dataset: str, model: str, split: str, seed: int,
                 run_id: str) -> str:
  """``<dataset>-<model>-<split>-seed<seed>-<run_id>``: the same command
  gives the same name, so rerunning it resumes (``run_id`` hashes the flags
  that change results)."""
  return f"{dataset}-{model}-{split}-seed{seed}-{run_id}"


def lock(run_dir: str) -> None:
  """Takes the run directory's lock or raises UserError."""
  path = os.path.join(run_dir, LOCK)
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


def check_name(name: str) -> str:
  """Returns ``name`` if it is a valid run name: one directory name inside
  the results directory.

  Raises:
    UserError: empty, with a path separator, NUL or control character,
      starting with '.' ('.', '..', hidden), or longer than MAX_NAME bytes.
  """
  shown = repr(name if len(name) <= 60 else name[:60] + "...")
  problem = None
  if not name:
    problem = "is empty"
  elif "/" in name or (os.altsep and os.altsep in name):
    problem = "contains a path separator"
  elif any(ord(c) < 32 or c == "\x7f" for c in name):
    problem = "contains a control character"
  elif name.startswith("."):
    problem = "starts with '.'"
  elif len(name.encode("utf-8", "surrogateescape")) > MAX_NAME:
    problem = (f"is {len(name.encode('utf-8', 'surrogateescape'))} bytes "
               f"long (at most {MAX_NAME})")
  if problem:
    raise UserError(f"--run_name {shown} {problem}: a run name is one "
                    "directory name inside --results_dir")
  return name


def looks_like_run(run_dir: str) -> bool:
  """Whether ``run_dir`` is a run directory (it records flags, a checkpoint
  or results) or an empty start of one (nothing but a lock, temporaries)."""
  names = os.listdir(run_dir)
  if any(n in names for n in (RECORD, checkpoint.STATE, RESULTS)):
    return True
  return all(n == LOCK or n.startswith(PREFIX) for n in names)


def _make_run_dir(results_dir: str, run_dir: str) -> bool:
  """Creates ``run_dir`` (and ``results_dir``); returns whether it was new.

  Raises:
    UserError: either cannot be created, or ``run_dir`` exists and is not a
      run directory.
  """
  try:
    os.makedirs(results_dir, exist_ok=True)
  except OSError as e:
    raise UserError(f"--results_dir: cannot create {results_dir}: "
                    f"{e.strerror or e}") from None
  if not os.path.isdir(results_dir):
    raise UserError(f"--results_dir: {results_dir} is not a directory")
  try:
    os.mkdir(run_dir)
    return True
  except FileExistsError:
    pass
  except OSError as e:
    raise UserError(f"cannot create the run directory {run_dir}: "
                    f"{e.strerror or e}") from None
  if not os.path.isdir(run_dir):
    raise UserError(f"{run_dir} exists and is not a directory; choose "
                    "another --run_name")
  try:
    ours = looks_like_run(run_dir)
  except OSError as e:
    raise UserError(f"cannot read {run_dir}: {e.strerror or e}") from None
  if not ours:
    raise UserError(f"{run_dir} exists and is not a run directory (no "
                    f"{RECORD}, {checkpoint.STATE} or {RESULTS}); its files "
                    "are left alone: choose another --run_name or "
                    "--results_dir")
  return False


def prepare(results_dir: str, name: str, flag_values: Dict[str, object],
            resume: bool = True, restart: bool = False,
            data_sha256: Optional[str] = None,
            data_file: Optional[str] = None,
            defaults: Optional[Dict[str, object]] = None) -> str:
  """Creates (or reuses) and locks ``results_dir/name``; returns NEW, RESUME
  or FINISHED.

  Args:
    results_dir: where run directories go.
    name: the run name (see check_name).
    flag_values: every flag; those that shape results are recorded.
    resume: continue from a checkpoint (False refuses one).
    restart: delete the run's own files first.
    data_sha256: the content hash of the raw data file (None for generated
      data), recorded so that a run never resumes or reports on data that
      has changed since.
    data_file: that file, named in the error when its content changed.
    defaults: flag defaults; a flag that a run's run.json lacks (one added
      to the program since) counts as its default.

  Raises:
    UserError: a bad name; a directory that cannot be made or is not a run;
      a checkpoint with --noresume; a checkpoint or finished run made with
      other flags or other data; unreadable run.json or results.json; the
      directory locked by another process.
  """
  check_name(name)
  run_dir = os.path.join(results_dir, name)
  created = _make_run_dir(results_dir, run_dir)
  lock_existed = os.path.exists(os.path.join(run_dir, LOCK))
  lock(run_dir)
  if created:
    _created.add(os.path.abspath(run_dir))
  remove_stale_temporaries(run_dir)
  if restart:
    _clear(run_dir)
  wanted = json.loads(json.dumps(result_flags(flag_values)))
  if data_sha256:
    wanted[DATA_HASH] = data_sha256
  recorded_path = os.path.join(run_dir, RECORD)
  finished = os.path.exists(os.path.join(run_dir, RESULTS))
  try:
    if finished or checkpoint.exists(run_dir):
      what = "finished run" if finished else "checkpoint"
      if not finished and not resume:
        raise UserError(f"{run_dir} holds a checkpoint; pass --resume to "
                        "continue it, --restart to discard it, or choose "
                        "another --run_name")
      recorded = _read(recorded_path, "the flags it was run with")
      _check_data(run_dir, recorded, data_sha256, data_file)
      for k, v in json.loads(json.dumps(result_flags(defaults or {}))).items():
        recorded.setdefault(k, v)
      differ = sorted(k for k in set(wanted) | set(recorded)
                      if k != DATA_HASH and wanted.get(k) != recorded.get(k))
      if differ:
        shown = ", ".join(f"--{k} ({what}: {recorded.get(k)!r}, now: "
                          f"{wanted.get(k)!r})" for k in differ)
        raise UserError(f"{run_dir} holds a {what} made with other flags: "
                        f"{shown}; use the same flags, --restart to discard "
                        "it, or another --run_name")
      if finished:
        results = _read(os.path.join(run_dir, RESULTS), "the run's results")
        if "metrics" not in results:
          raise UserError(f"{os.path.join(run_dir, RESULTS)}: not the "
                          "results of a run (no 'metrics'); pass --restart "
                          "to run it again")
      return FINISHED if finished else RESUME
  except UserError:
    unlock(run_dir)
    if not lock_existed:
      _remove(os.path.join(run_dir, LOCK))
    raise
  atomic_write_text(recorded_path, json.dumps(wanted, indent=1,
                                              sort_keys=True) + "\n")
  return NEW


def _check_data(run_dir: str, recorded: Dict[str, object],
                data_sha256: Optional[str], data_file: Optional[str]) -> None:
  """Refuses a run recorded on other data (runs recorded before the data
  hash was kept have none, and are not checked)."""
  before = recorded.get(DATA_HASH)
  if before is None or before == data_sha256:
    return
  now = f"sha256 {data_sha256[:12]}..." if data_sha256 else "no data file"
  raise UserError(f"{run_dir} was made from data with sha256 "
                  f"{str(before)[:12]}..., but {data_file or 'the data'} now "
                  f"has {now} (the file changed since): restore it, pass "
                  "--restart to train afresh on it, or choose another "
                  "--run_name")


def abandon(run_dir: str) -> None:
  """Cleans up after a run that failed before its first checkpoint: removes
  the run's own files (RUN_FILES, weights, events, temporaries, the lock)
  and, when this process created the directory and nothing else is in it,
  the directory. A directory with results or a checkpoint is left as it is.
  """
  key = os.path.abspath(run_dir)
  if (os.path.exists(os.path.join(run_dir, RESULTS)) or
      checkpoint.exists(run_dir)):
    unlock(run_dir)
    return
  _clear(run_dir)
  unlock(run_dir)
  _remove(os.path.join(run_dir, LOCK))
  if key in _created:
    _created.discard(key)
    try:
      os.rmdir(run_dir)
    except OSError:
      pass  # something else is in it: leave it


def _clear(run_dir: str) -> None:
  """Removes the run's own files from ``run_dir`` (not its lock)."""
  for name in RUN_FILES:
    _remove(os.path.join(run_dir, name))
  for path in glob.glob(os.path.join(glob.escape(run_dir),
                                     "ckpt-*.weights.h5")):
    _remove(path)
  remove_stale_temporaries(run_dir)
  for path in glob.glob(os.path.join(glob.escape(run_dir),
                                     "events.out.tfevents.*")):
    _remove(path)
  events = os.path.join(run_dir, TENSORBOARD)
  if os.path.isdir(events) and not os.path.islink(events):
    for path in glob.glob(os.path.join(glob.escape(events),
                                       "events.out.tfevents.*")):
      _remove(path)
    try:
      os.rmdir(events)
    except OSError:
      pass


def _remove(path: str) -> None:
  try:
    if os.path.isfile(path) or os.path.islink(path):
      os.remove(path)
  except OSError:
    pass


def _read(path: str, what: str) -> Dict[str, object]:
  """The JSON object in ``path``, or UserError naming the file."""
  try:
    with open(path, encoding="utf-8") as f:
      value = json.load(f)
  except FileNotFoundError:
    raise UserError(f"{path} is missing (it records {what}); pass --restart "
                    "to discard the run directory's contents and start the "
                    "run afresh") from None
  except (OSError, ValueError) as e:
    raise UserError(f"{path} is unreadable ({e}; it records {what}); pass "
                    "--restart to discard the run directory's contents and "
                    "start the run afresh") from None
  if not isinstance(value, dict):
    raise UserError(f"{path} is not a JSON object (it records {what}); pass "
                    "--restart to start the run afresh")
  return value
