"""results/robustness.md from the robustness.json of SASRec/ASASRec runs."""

from __future__ import annotations

import json
import os
from typing import Dict

from asasrec_tf.errors import UserError
from asasrec_tf.report import paper
from asasrec_tf.report.runs import Run

METRIC = "ndcg@100"
# Written into run directories by python -m asasrec_tf.robustness.
RESULT = "robustness.json"


def load(run: Run) -> Dict[str, object]:
  path = os.path.join(run.path, RESULT)
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise UserError(f"{path}: not a readable robustness file ({e})") from None


def _cell(value: float, clean: float) -> str:
  """The value and its relative change from ``clean``."""
  change = 100 * (value / clean - 1) if clean else 0.0
  return f"{value:.4f} ({change:+.0f} %)"


def markdown(runs: Dict[str, Run], source: str = "results/runs/*") -> str:
  """One table row per (dataset, protocol, model); '' if nothing measured."""
  rows = []
  epsilons = None
  for d in paper.DATASETS:
    for protocol in paper.PROTOCOLS:
      for model in ("sasrec", "asasrec", "asasrec-authors"):
        run = runs.get(paper.run_name(d, protocol, model))
        if run is None or not os.path.isfile(os.path.join(run.path, RESULT)):
          continue
        rob = load(run)
        eps = list(rob["worst_case"])
        epsilons = epsilons or eps
        if eps != epsilons:
          raise UserError(f"{run.path}/{RESULT}: epsilons {eps} differ from "
                          f"the other runs' {epsilons}")
        clean = rob["clean"][METRIC]
        norm = rob.get("mean_item_norm")
        rows.append(
            f"| {paper.DATASET_NAMES[d]} | {protocol} | "
            f"{paper.MODEL_NAMES[model]} | "
            f"{'—' if norm is None else f'{norm:.2f}'} | {clean:.4f} | "
            + " | ".join(_cell(rob[kind][e][METRIC], clean)
                         for kind in ("worst_case", "random") for e in eps)
            + " |")
  if not rows:
    return ""
  header = (["Dataset", "protocol", "Model", "mean ‖item row‖", "clean"]
            + [f"worst case ε={e}" for e in epsilons]
            + [f"random ε={e}" for e in epsilons])
  return (
      "# Robustness to perturbed item embeddings\n\n"
      f"Test {METRIC.upper()} of each run's selected weights when the item "
      "embedding table (shared by input and output) is perturbed at test "
      "time, and the change from the clean value. *Worst case*: every item "
      "row moved by ε along the normalised gradient of the training loss "
      "(Eq. 5) of the test items against one sampled negative, dropout off "
      "(the fast-gradient direction ASASRec's adversary uses). *Random*: "
      "every item row moved by ε in a uniformly random direction. ε is "
      "absolute, so the mean norm of the item rows is shown beside it. The paper "
      "motivates SAO by robustness but never measures it. Written by "
      f"`python -m asasrec_tf.report` from `{source}/robustness.json` "
      "(`python -m asasrec_tf.robustness --run_dir=...`).\n\n"
      "| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n"
      + "\n".join(rows) + "\n")
