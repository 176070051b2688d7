"""results/beyond.md: does the adversarial gain survive a stronger SASRec,
and how does it depend on epsilon and lambda? (Beyond the paper.)

Two experiments, both run by run_all.sh:

* Losses (``--loss=gbce|ce --protocols=clean``): SASRec trained with each
  loss, then its plain and authors'-step continuations with the same loss,
  as groups ``<dataset>-clean[-seedN][-loss-NAME]-*`` (bce, the paper's
  loss, has no ``-loss-`` part). The table gives each arm and the gain over
  the seeds found, with the paired t-test over users of each seed.
* Sensitivity (``--sensitivity``): the authors' step from the same
  checkpoint for every (epsilon, lambda) of a grid, as
  ``<group>-sens-epsE-regL-asasrec-authors`` beside the group's own
  ``-asasrec-authors`` (the flagfiles' values). Each cell is the relative
  NDCG@100 gain over the group's plain continuation, averaged over seeds;
  the values are read from each run's recorded flags, not from its name.
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

from asasrec_tf.report import figure2, paper, seeds
from asasrec_tf.report.runs import Run, p_text

LOSSES = ("bce", "gbce", "ce")
LOSS_TITLES = {
    "bce": "BCE, one negative (the paper's)",
    "gbce": "gBCE (gSASRec: k negatives, calibrated)",
    "ce": "CE over every item (SASRec+)",
}
LOSS_PROTOCOL = "clean"
METRICS = ("ndcg@10", "ndcg@100")
AUTHORS = "asasrec-authors"


def loss_prefix(dataset: str, protocol: str, seed: int, loss: str) -> str:
  """run_all.sh's group prefix for a loss ('bce' has no suffix)."""
  return seeds.prefix(dataset, protocol, seed) + (
      "" if loss == "bce" else f"-loss-{loss}")


def loss_seeds(runs: Dict[str, Run], dataset: str, loss: str,
               protocol: str = LOSS_PROTOCOL) -> List[int]:
  """Seeds with a finished plain continuation trained with ``loss``."""
  suffix = "" if loss == "bce" else re.escape(f"loss-{loss}-")
  pattern = re.compile(re.escape(f"{dataset}-{protocol}-") +
                       r"(?:seed(\d+)-)?" + suffix + "sasrec$")
  return sorted(int(m.group(1) or 0) for m in map(pattern.fullmatch, runs)
                if m)


def _cell(values: List[float], fmt: str) -> str:
  return seeds.mean_sd_text(values, fmt) if values else "—"


def _schedule(continuations: List[Run]) -> str:
  """'pre-run + continuation' epochs of the plain continuations (each
  schedule once, should seeds differ)."""
  return ", ".join(dict.fromkeys(
      f"{run.results.get('start_epoch', 0):,} + "
      f"{run.results.get('epochs_run', 0):,}" for run in continuations))


def _best_epoch(pre_run: Optional[Run]) -> str:
  """The pre-run's selected (best validation) epoch: near its last epoch,
  the pre-run had not converged when the continuations started."""
  if pre_run is None or "best_epoch" not in pre_run.results:
    return "—"
  return f"{pre_run.results['best_epoch']:,}"


def loss_markdown(runs: Dict[str, Run]) -> str:
  """The loss x model table ('' when no loss group has finished)."""
  rows = []
  for d in paper.DATASETS:
    for loss in LOSSES:
      found = {s: loss_prefix(d, LOSS_PROTOCOL, s, loss)
               for s in loss_seeds(runs, d, loss)}
      done = {s: g for s, g in found.items() if f"{g}-{AUTHORS}" in runs}
      if not done:
        continue
      groups = list(done.values())
      cells = [paper.DATASET_NAMES[d], LOSS_TITLES[loss],
               ", ".join(map(str, done)),
               _schedule([runs[f"{g}-sasrec"] for g in groups]),
               ", ".join(_best_epoch(runs.get(f"{g}-sasrec-pre"))
                         for g in groups)]
      for metric in METRICS:
        for arm in ("sasrec", AUTHORS):
          cells.append(_cell([runs[f"{g}-{arm}"].test_metric(metric)
                              for g in groups], ".4f"))
      gains = [seeds.gain(runs, g, AUTHORS) for g in groups]
      cells.append(_cell([100 * g.relative for g in gains], "+.1f") + " %")
      cells.append(", ".join(p_text(g.p) for g in gains))
      rows.append("| " + " | ".join(cells) + " |")
  if not rows:
    return ""
  return (
      "## The gain under stronger SASRec losses\n\n"
      "Clean protocol (validation selects the epoch; test reported), full "
      "ranking. Each loss has its own SASRec pre-run; the plain and the "
      "authors'-step continuations start from its last checkpoint with the "
      "same loss (`run_all.sh --protocols=clean --loss=NAME`); epochs gives "
      "the pre-run's epochs + the continuations', and pre-run best the "
      "epoch its validation NDCG@10 peaked (near its last epoch: the pre-run "
      "was still improving at the switch). Mean ± sample "
      "SD over the seeds; the gain is ASASRec's relative NDCG@100 gain over "
      "the SASRec of its own seed, p the paired t-test over users of each "
      "seed.\n\n"
      "| Dataset | loss | seeds | epochs | pre-run best | SASRec NDCG@10 | "
      "ASASRec NDCG@10 | SASRec NDCG@100 | ASASRec NDCG@100 | gain NDCG@100 | "
      "p per seed |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
      + PUBLISHED)


# Published numbers for these losses, and why none stands beside ours.
PUBLISHED = (
    "Published numbers: none for this protocol on these files, so none "
    "stands beside ours. gSASRec's authors (Petrov & Macdonald, RecSys 2023; "
    "the README of their PyTorch port, asash/gSASRec-pytorch) give on "
    "MovieLens-1M NDCG@10 0.1259 for SASRec (BCE, one negative) and 0.1726 "
    "for gSASRec (gBCE, t = 0.75; 128 negatives per positive in that table): "
    "on the SASRec repository's ML-1M (items with fewer than 5 interactions "
    "removed: 3,416 items; ours, the ASASRec authors' file, has 3,706), "
    "sequence length 200, embeddings of 128, validation on 512 users. "
    "SASRec+ (Klenitskiy & Vasilev, RecSys 2023) also trains ML-1M with "
    "sequences of 200. Neither reports Video. Their relative gains, not "
    "their levels, are what compares with ours.\n")


def _eps_reg(run: Run) -> Tuple[float, float]:
  flags = run.results.get("flags", {})
  return float(flags.get("adv_eps", 0.5)), float(flags.get("adv_reg", 1.0))


def sensitivity(runs: Dict[str, Run], dataset: str, protocol: str = "paper"
                ) -> Dict[Tuple[float, float], List[float]]:
  """(epsilon, lambda) -> the relative NDCG@100 gains (%) over the plain
  continuation, one per seed group that ran that point of the grid ({}
  when no group has a sensitivity run)."""
  out: Dict[Tuple[float, float], List[float]] = {}
  for s in seeds.seeds_of(runs, dataset, protocol):
    group = seeds.prefix(dataset, protocol, s)
    plain = runs[f"{group}-sasrec"].test_metric(seeds.METRIC)
    grid = [r for name, r in runs.items()
            if name.startswith(f"{group}-sens-") and name.endswith(AUTHORS)]
    if not grid:
      continue
    centre = runs.get(f"{group}-{AUTHORS}")
    for run in grid + ([centre] if centre else []):
      value = run.test_metric(seeds.METRIC)
      out.setdefault(_eps_reg(run), []).append(100 * (value / plain - 1))
  return out


# The grid of `run_all.sh --sensitivity` (its SENS_EPS and SENS_REG): its
# points are shown while unrun, so that a partial grid reads as partial.
GRID_EPS = (0.05, 0.1, 0.5, 1.0, 2.0)
GRID_REG = (0.1, 1.0)


def _axes(cells) -> Tuple[List[float], List[float]]:
  return (sorted({e for e, _ in cells} | set(GRID_EPS)),
          sorted({r for _, r in cells} | set(GRID_REG)))


def sensitivity_markdown(runs: Dict[str, Run]) -> str:
  """A table per dataset with a sensitivity grid ('' when none has)."""
  parts = []
  for d in paper.DATASETS:
    cells = sensitivity(runs, d)
    if not cells:
      continue
    eps, regs = _axes(cells)
    lines = [f"### {paper.DATASET_NAMES[d]}\n",
             "| ε \\ λ | " + " | ".join(f"{r:g}" for r in regs) + " |",
             "|---|" + "---|" * len(regs)]
    for e in eps:
      row = [f"{seeds.mean_sd_text(cells[(e, r)], '+.1f')} % "
             f"(n={len(cells[(e, r)])})" if (e, r) in cells else "—"
             for r in regs]
      lines.append(f"| {e:g} | " + " | ".join(row) + " |")
    parts.append("\n".join(lines) + f"\n\n![](sensitivity_{d}.png)\n")
  if not parts:
    return ""
  return (
      "## Sensitivity to ε and λ\n\n"
      "The authors' step continued from each seed's epoch-1,000 checkpoint "
      "(paper protocol, `run_all.sh --sensitivity`) for every ε × λ; each "
      "cell is the relative test NDCG@100 gain over the plain continuation "
      "of the same seed, mean ± sample SD over the n seeds that ran it "
      "(ε 0.5, λ 1 is the flagfiles' value, the Table 2 run); — and grey: "
      "not run yet.\n\n"
      + "\n".join(parts))


def cell_labels(grid) -> List[Tuple[int, int, str]]:
  """(row, column, text) of each heat-map cell: the gain in % with its sign,
  or 'not run' where the grid holds NaN."""
  import numpy as np
  return [(i, j, "not run" if np.isnan(v) else f"{v:+.1f}")
          for (i, j), v in np.ndenumerate(grid)]


def plot_sensitivity(runs: Dict[str, Run], dataset: str, out_dir: str,
                     title: str = "") -> Optional[str]:
  """Writes sensitivity_<dataset>.png (atomically), a heat map of the mean
  gains; None when the dataset has no grid. Needs matplotlib."""
  cells = sensitivity(runs, dataset)
  if not cells:
    return None
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import numpy as np
  eps, regs = _axes(cells)
  grid = np.full((len(eps), len(regs)), np.nan)
  for i, e in enumerate(eps):
    for j, r in enumerate(regs):
      if (e, r) in cells:
        grid[i, j] = float(np.mean(cells[(e, r)]))
  bound = max(float(np.nanmax(np.abs(grid))), 1e-9)
  fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(regs), 1.2 + 0.6 * len(eps)))
  # A cell not run is grey, not the white of a zero gain.
  cmap = matplotlib.colormaps["RdBu"].with_extremes(bad="lightgrey")
  image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=-bound,
                    vmax=bound, aspect="auto")
  for i, j, text in cell_labels(grid):
    value = grid[i, j]
    color = ("dimgrey" if np.isnan(value) else
             "white" if abs(value) > 0.6 * bound else "black")
    ax.text(j, i, text, ha="center", va="center", color=color)
  ax.set_xticks(range(len(regs)), [f"{r:g}" for r in regs])
  ax.set_yticks(range(len(eps)), [f"{e:g}" for e in eps])
  ax.set_xlabel("λ (adv_reg)")
  ax.set_ylabel("ε (adv_eps)")
  ax.set_title(title or f"{paper.DATASET_NAMES[dataset]}: NDCG@100 gain, %")
  fig.colorbar(image, ax=ax)
  fig.tight_layout()
  return figure2.save(fig, out_dir, f"sensitivity_{dataset}.png")


def markdown(runs: Dict[str, Run], source: str) -> str:
  """results/beyond.md ('' when neither experiment has a finished run)."""
  body = "\n".join(t for t in (loss_markdown(runs),
                               sensitivity_markdown(runs)) if t)
  if not body:
    return ""
  return ("# Beyond the paper\n\n"
          "Does ASASRec's gain come from adversarial training, or from a "
          "SASRec under-trained by its one-negative BCE loss, which a "
          "stronger loss fixes anyway? And how much does it depend on ε and "
          "λ? Generated by `python -m asasrec_tf.report` from the runs in "
          f"`{source}`.\n\n" + body)
