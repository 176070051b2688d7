"""Test NDCG@100 across the switch to the adversary, beside the authors' logs.

For each dataset under the paper's protocol: the ``-pre`` SASRec run from
``BEFORE`` epochs before the switch, then its continuations (plain SASRec,
ASASRec with Eq. 9, ASASRec with the authors' step) up to ``AFTER`` epochs
after it, and the authors' own logged ASASRec curve where they logged the
dataset (results/authors_logs.csv: SASRec to epoch 999, ASASRec from 1000).
Needs matplotlib (the ``plot`` extra).
"""

from __future__ import annotations

import csv
import os
from typing import Dict, List, Optional, Tuple

from asasrec_tf.errors import UserError
from asasrec_tf.report import figure2, paper
from asasrec_tf.report.runs import Run

METRIC = "ndcg@100"
BEFORE, AFTER = 100, 300
MODELS = ("sasrec", "asasrec", "asasrec-authors")

Curve = Tuple[List[int], List[float]]


def load_authors_logs(path: str) -> Dict[str, Curve]:
  """{dataset: (epochs, NDCG@100)} from the logged curves CSV ({} if the
  file does not exist)."""
  if not os.path.isfile(path):
    return {}
  out: Dict[str, Curve] = {}
  with open(path) as f:
    rows = csv.DictReader(line for line in f if not line.startswith("#"))
    try:
      for row in rows:
        x, y = out.setdefault(row["dataset"], ([], []))
        x.append(int(row["epoch"]))
        y.append(float(row[METRIC]))
    except (KeyError, ValueError, TypeError) as e:
      raise UserError(f"{path}, line {rows.line_num}: expected columns "
                      f"dataset, epoch and {METRIC} ({e})") from None
  return out


def curves(runs: Dict[str, Run], dataset: str) -> Tuple[Optional[int],
                                                        Dict[str, Curve]]:
  """(switch epoch, {model: curve in the window}) under the paper's
  protocol; (None, {}) without a ``-pre`` run."""
  pre = runs.get(paper.run_name(dataset, "paper", "sasrec", "pre"))
  if pre is None:
    return None, {}
  switch = int(pre.results.get("epochs_run", 0))
  joined = figure2.curves(runs, dataset, "paper", METRIC)
  out = {}
  for model in MODELS:
    if model in joined:
      x, y = joined[model]
      kept = [(e, v) for e, v in zip(x, y)
              if switch - BEFORE <= e <= switch + AFTER]
      out[model] = ([e for e, _ in kept], [v for _, v in kept])
  return switch, out


def plot(runs: Dict[str, Run], dataset: str, out_dir: str,
         logs: Dict[str, Curve], title: str = "") -> Optional[str]:
  """Writes ``switch_<dataset>.png`` (atomically); None without runs that
  cross the switch."""
  switch, data = curves(runs, dataset)
  if switch is None or len(data) < 2:
    return None
  import matplotlib
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt

  fig, ax = plt.subplots(figsize=(7.5, 4))
  for model, (x, y) in data.items():
    ax.plot(x, y, color=figure2.COLOURS[model],
            linestyle="--" if model in paper.ADVERSARIAL else "-",
            marker=".", label=f"ours: {paper.MODEL_NAMES[model]}")
  if dataset in logs:
    kept = [(e, v) for e, v in zip(*logs[dataset])
            if switch - BEFORE <= e <= switch + AFTER]
    ax.plot([e for e, _ in kept], [v for _, v in kept], color="black",
            marker="x", linewidth=1,
            label="authors' log: SASRec, then ASASRec")
  ax.axvline(switch, color="grey", alpha=0.4, linewidth=1)
  ax.set_xlabel("epoch (adversary switched on after the grey line)")
  ax.set_ylabel(f"test {METRIC.upper()}")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  note = "" if dataset in logs else "\n(the authors logged no run across it)"
  ax.set_title(f"{title + ': ' if title else ''}"
               f"{paper.DATASET_NAMES[dataset]}, paper protocol: the "
               f"switch to the adversary{note}", fontsize=10)
  fig.tight_layout()
  return figure2.save(fig, out_dir, f"switch_{dataset}.png")
