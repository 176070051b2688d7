"""Figure 2 of the paper: training curves with and without the adversary.

BPR and SASRec train for some epochs (the ``-pre`` runs), then each goes on
from the same checkpoint without (BPR, SASRec) and with (APR, both ASASRec
steps) the adversary; continuations number their epochs on from their
start. Plotted: HR@100 and NDCG@100 of every evaluation against the epoch,
on the metric the runs select on (test under the paper's protocol,
validation under the clean one). Needs matplotlib (the ``plot`` extra).
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

from asasrec_tf.fileio import atomic_write
from asasrec_tf.report import paper
from asasrec_tf.report.runs import Run

METRICS = ("hr@100", "ndcg@100")
# Colour of each pair's curves.
COLOURS = {"bpr": "tab:blue", "apr": "tab:blue", "sasrec": "tab:red",
           "asasrec": "tab:red", "asasrec-authors": "tab:purple"}

Curve = Tuple[List[int], List[float]]


def curves(runs: Dict[str, Run], dataset: str, protocol: str,
           metric: str) -> Dict[str, Curve]:
  """{model: curve} of every model of a group with a ``-pre`` run, each
  continuation joined to the ``-pre`` run's curve."""
  out = {}
  for base, advs in paper.GROUPS:
    pre = runs.get(paper.run_name(dataset, protocol, base, "pre"))
    if pre is None:
      continue
    pre_x, pre_y = pre.curve(metric)
    for model in (base, *advs):
      run = runs.get(paper.run_name(dataset, protocol, model))
      if run is None:
        continue
      x, y = run.curve(metric)
      joined_x = pre_x + x if model == base else pre_x[-1:] + x
      joined_y = pre_y + y if model == base else pre_y[-1:] + y
      out[model] = (joined_x, joined_y)
  return out


def plot(runs: Dict[str, Run], dataset: str, out_dir: str,
         protocol: str = "paper", title: str = "") -> Optional[str]:
  """Writes ``figure2_<dataset>.png`` (atomically); None if no runs."""
  data = {m: curves(runs, dataset, protocol, m) for m in METRICS}
  if not any(data.values()):
    return None
  import matplotlib
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt

  fig, axes = plt.subplots(1, len(METRICS), figsize=(10, 3.8))
  for ax, metric in zip(axes, METRICS):
    for model, (x, y) in data[metric].items():
      ax.plot(x, y, color=COLOURS[model],
              linestyle="--" if model in paper.ADVERSARIAL else "-",
              marker="." if len(x) < 40 else None,
              label=paper.MODEL_NAMES[model])
    for base, _ in paper.GROUPS:
      pre = runs.get(paper.run_name(dataset, protocol, base, "pre"))
      if pre is not None:
        ax.axvline(pre.results.get("epochs_run", 0), color=COLOURS[base],
                   alpha=0.25, linewidth=1)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.upper())
    ax.grid(alpha=0.3)
  target = "test" if protocol == "paper" else "validation"
  axes[0].legend()
  fig.suptitle(f"{title + ': ' if title else ''}"
               f"{paper.DATASET_NAMES[dataset]}: {target} metrics per epoch "
               f"({protocol} protocol); vertical lines: adversary switched "
               "on", fontsize=10)
  fig.tight_layout()
  return save(fig, out_dir, f"figure2_{dataset}.png")


def save(fig, out_dir: str, name: str) -> str:
  """Writes matplotlib ``fig`` to ``out_dir/name`` atomically and closes it."""
  from matplotlib import pyplot as plt
  try:
    return atomic_write(os.path.join(out_dir, name),
                        lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
  finally:
    plt.close(fig)
