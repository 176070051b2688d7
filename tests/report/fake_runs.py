"""Hand-made run directories (results.json + test_per_user.npz) for the
report tests: no training, known per-user values."""

import json
import os

import numpy as np


def make_run(runs_dir, name, per_user, history=(), epochs_run=None,
             selected_on="test", model=None, flags=None, start_epoch=0,
             init_from=None, best_epoch=None):
  """Writes runs_dir/name with per-user metrics ``per_user`` ({metric: [n]})
  for users 100, 101, ...; results.json holds their means. ``init_from``
  names the run it continued (its checkpoint of ``start_epoch``)."""
  path = os.path.join(runs_dir, name)
  os.makedirs(path, exist_ok=True)
  n = len(next(iter(per_user.values())))
  arrays = {k: np.asarray(v, np.float64) for k, v in per_user.items()}
  np.savez(os.path.join(path, "test_per_user.npz"),
           users=np.arange(n), user_ids=np.arange(100, 100 + n),
           ranks=np.zeros(n, np.int64), **arrays)
  epochs = epochs_run if epochs_run is not None else (
      history[-1]["epoch"] - start_epoch if history else 0)
  results = {"dataset": name.split("-")[0], "model": model or name.split("-")[2],
             "selected_on": selected_on, "select_metric": "ndcg@100",
             "best_epoch": (start_epoch + epochs if best_epoch is None
                            else best_epoch),
             "init": ({"path": f"/elsewhere/runs/{init_from}/ckpt-"
                               f"{start_epoch:06d}.weights.h5",
                       "epoch": start_epoch, "optimizer": True}
                      if init_from else None),
             "start_epoch": start_epoch, "epochs_run": epochs,
             "metrics": {"test": {k: float(v.mean()) for k, v in arrays.items()}},
             "history": list(history), "flags": flags or {},
             "timing": {"train_seconds_per_epoch": 1.5}}
  with open(os.path.join(path, "results.json"), "w") as f:
    json.dump(results, f)
  return path


def history(values, every=10, target="test", metric="ndcg@100", start=0):
  """[{'epoch': start + 10, target: {metric: v}}, ...] for ``values``."""
  return [{"epoch": start + every * (i + 1),
           target: {metric: v, "hr@100": 2 * v}}
          for i, v in enumerate(values)]
