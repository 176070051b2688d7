"""Reading finished run directories (results.json, test_per_user.npz)."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import zipfile
from typing import Dict, List, Optional, Tuple

import numpy as np

from asasrec_tf.fileio import atomic_write_bytes
from asasrec_tf.errors import UserError
from asasrec_tf.evaluation import metrics, significance

RESULTS = "results.json"
PER_USER = "test_per_user.npz"
# Small files of a run kept when it is archived (besides PER_USER).
ARCHIVED = (RESULTS, "robustness.json")


@dataclasses.dataclass
class Run:
  """One finished run: its name, directory and results.json."""

  name: str
  path: str
  results: Dict[str, object]

  def test_metric(self, metric: str) -> Optional[float]:
    return self.results.get("metrics", {}).get("test", {}).get(metric)

  def curve(self, metric: str,
            target: Optional[str] = None) -> Tuple[List[int], List[float]]:
    """(epochs, values) of ``metric`` on ``target`` over the run's
    evaluations (default target: the one the run selects on)."""
    target = target or self.results.get("selected_on", "test")
    points = [(rec["epoch"], rec[target][metric])
              for rec in self.results.get("history", [])
              if target in rec and metric in rec[target]]
    return [p[0] for p in points], [p[1] for p in points]

  def per_user(self, metric: str) -> Tuple[np.ndarray, np.ndarray]:
    """(original user ids, [n] per-user ``metric``) of the selected epoch,
    read or, in an archive that keeps only the ranks, computed from them."""
    path = os.path.join(self.path, PER_USER)
    try:
      with np.load(path, allow_pickle=False) as z:
        users = z["user_ids"] if "user_ids" in z else z["users"]
        if metric in z:
          return users, z[metric]
        return users, metrics.per_user(z["ranks"], z["ks"].tolist())[metric]
    except (OSError, KeyError, ValueError, EOFError,
            zipfile.BadZipFile) as e:
      raise UserError(f"{path}: cannot read per-user {metric} "
                      f"({type(e).__name__}: {e}); rerun the run's command "
                      "with --restart, or leave the run out") from None


def load_runs(runs_dir: str) -> Dict[str, Run]:
  """Every finished run (a directory with results.json) under ``runs_dir``."""
  if not os.path.isdir(runs_dir):
    raise UserError(f"--runs_dir: {runs_dir} is not a directory")
  out = {}
  for name in sorted(os.listdir(runs_dir)):
    path = os.path.join(runs_dir, name, RESULTS)
    if not os.path.isfile(path):
      continue
    try:
      with open(path) as f:
        results = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
      raise UserError(f"{path}: not a readable results file ({e})") from None
    if not isinstance(results, dict) or "metrics" not in results:
      raise UserError(f"{path}: expected a JSON object with 'metrics' (a "
                      "results.json of asasrec_tf.main)")
    out[name] = Run(name, os.path.dirname(path), results)
  return out


def compare(a: Run, b: Run, metric: str) -> significance.PairedTest:
  """Paired t-test of a vs b on per-user test ``metric`` (common users)."""
  users_a, va = a.per_user(metric)
  users_b, vb = b.per_user(metric)
  return significance.paired_ttest(*significance.align(users_a, va, users_b,
                                                       vb))


def p_text(p: Optional[float]) -> str:
  """A p-value as every table prints it: three significant digits (so that
  a star beside p < 0.05 is visibly right), scientific below 0.001."""
  if p is None:
    return "—"
  if p == 0.0:
    return "< 1e-300"      # below the smallest double the t-test returns
  return f"{p:.1e}" if p < 0.001 else f"{p:.3g}"


def _archived_bytes(source: str, name: str) -> bytes:
  """What archive() keeps of the run's file ``source``: the per-user file
  cut to the ranks (compressed), any other file as it is."""
  if name != PER_USER:
    with open(source, "rb") as f:
      return f.read()
  with np.load(source, allow_pickle=False) as z:
    kept = {"user_ids": z["user_ids"], "ks": z["ks"],
            "ranks": z["ranks"].astype(np.int32)}
  buf = io.BytesIO()
  np.savez_compressed(buf, **kept)
  return buf.getvalue()


def archive(run: Run, dest_dir: str) -> str:
  """Copies what the report needs of ``run`` into ``dest_dir/<name>/``:
  results.json, robustness.json if measured, and the per-user test ranks
  (compressed; every per-user metric follows from them), so that tables
  and significance marks can be rebuilt from the archive alone
  (``--runs_dir=<dest_dir>``).

  Each file is written atomically. A kept file the run does not have is
  removed from an earlier archive of the same name: it was copied from the
  run archived there before (a robustness.json of other weights), and left
  in place it would be reported as this run's.
  """
  target = os.path.join(dest_dir, run.name)
  os.makedirs(target, exist_ok=True)
  for name in ARCHIVED + (PER_USER,):
    source, kept = os.path.join(run.path, name), os.path.join(target, name)
    if os.path.isfile(source):
      atomic_write_bytes(kept, _archived_bytes(source, name))
    elif os.path.isfile(kept):
      os.remove(kept)
  return target
