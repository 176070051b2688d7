"""Table 2 of the paper, ours beside the paper's, with significance marks.

For each protocol (see paper.PROTOCOL_TITLES) and dataset, the Table 2 row
of a model is the run ``<dataset>-<protocol>-<model>`` (run_all.sh's names;
BPR and SASRec there are the continuations, so every pair had the same
number of epochs). Per column the best model is bold, and ``*`` marks it when
a paired t-test over the per-user test metric against the second best gives
p < 0.05, as the paper does.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from typing import Dict, List, Optional, Sequence

from asasrec_tf.report import paper, seeds
from asasrec_tf.report.runs import Run, compare, p_text

ALPHA = 0.05
METRICS = {"paper": ("hr@100", "ndcg@100"),
           "clean": ("hr@10", "ndcg@10", "hr@100", "ndcg@100")}
# Claims of the paper checked on every dataset: (better, worse).
CLAIMS = (("asasrec", "sasrec"), ("asasrec-authors", "sasrec"),
          ("sasrec", "apr"), ("apr", "bpr"), ("bpr", "mostpop"))


@dataclasses.dataclass
class Column:
  """One (protocol, dataset, metric) column of Table 2."""

  protocol: str
  dataset: str
  metric: str
  values: Dict[str, float]          # model -> our test metric
  best: Optional[str] = None
  second: Optional[str] = None
  p_value: Optional[float] = None   # best vs second best

  @property
  def significant(self) -> bool:
    return self.p_value is not None and self.p_value < ALPHA


def column(protocol: str, dataset: str, metric: str,
           runs: Dict[str, Run]) -> Column:
  """Our values of one column, its best model and the t-test vs the second."""
  found = {m: runs[paper.run_name(dataset, protocol, m)]
           for m in paper.MODELS
           if paper.run_name(dataset, protocol, m) in runs}
  values = {m: r.test_metric(metric) for m, r in found.items()
            if r.test_metric(metric) is not None}
  col = Column(protocol, dataset, metric, values)
  ranked = sorted(values, key=lambda m: -values[m])
  if ranked:
    col.best = ranked[0]
  if len(ranked) > 1:
    col.second = ranked[1]
    col.p_value = compare(found[col.best], found[col.second], metric).p
  return col


def status(dataset: str, runs: Dict[str, Run], unavailable: Sequence[str],
           protocol: str) -> str:
  """'ok', 'data not available offline' or 'not run'."""
  if any(paper.run_name(dataset, protocol, m) in runs for m in paper.MODELS):
    return "ok"
  if dataset in unavailable:
    return "data not available offline"
  return "not run"


def _ours(col: Column, model: str) -> str:
  value = col.values.get(model)
  if value is None:
    return "—"
  text = f"{value:.4f}"
  if model == col.best:
    text = f"**{text}**" + ("\\*" if col.significant else "")
  return text


def protocol_table(protocol: str, runs: Dict[str, Run]) -> List[Column]:
  """The columns of one protocol's table: datasets with runs, in Table 2's
  order."""
  return [column(protocol, d, m, runs) for d in paper.DATASETS
          if status(d, runs, (), protocol) == "ok" for m in METRICS[protocol]]


def markdown(runs: Dict[str, Run], unavailable: Sequence[str],
             source: str = "results/runs/*") -> str:
  """results/table2.md, from the runs found in ``source``."""
  out = io.StringIO()
  w = out.write
  w("# Table 2, reproduced\n\n"
    "Test metrics of each model's selected epoch. Under the paper's protocol "
    "the paper's Table 2 value follows ours in parentheses. **Bold**: best "
    "of the column; \\*: the best differs from the second best by a paired "
    f"t-test over per-user values, p < {ALPHA}. Written by "
    f"`python -m asasrec_tf.report` from `{source}/results.json`.\n\n")
  for label, protocol in (("a", "paper"), ("b", "clean")):
    cols = protocol_table(protocol, runs)
    w(f"## ({label}) {paper.PROTOCOL_TITLES[protocol]}\n\n")
    if not cols:
      w("No runs of this protocol.\n\n")
    else:
      header = ["Model"] + [f"{paper.DATASET_NAMES[c.dataset]} "
                            f"{c.metric.upper()}" for c in cols]
      w("| " + " | ".join(header) + " |\n")
      w("|" + "---|" * len(header) + "\n")
      for model in paper.MODELS:
        cells = [paper.MODEL_NAMES[model]]
        for c in cols:
          cell = _ours(c, model)
          if protocol == "paper":
            ref = paper.paper_value(c.dataset, model, c.metric)
            cell += f" ({ref:.4f})" if ref is not None else " (—)"
          cells.append(cell)
        w("| " + " | ".join(cells) + " |\n")
      sig = [c for c in cols if c.p_value is not None]
      if sig:
        w("\nBest vs second best, paired t-test p: " + "; ".join(
            f"{paper.DATASET_NAMES[c.dataset]} {c.metric.upper()} "
            f"{paper.MODEL_NAMES[c.best]} vs {paper.MODEL_NAMES[c.second]} "
            f"{p_text(c.p_value)}" for c in sig) + ".\n")
      w("\n")
    if protocol == "paper":
      w(missing_markdown(runs, unavailable))
  w(gains_markdown(runs))
  w(bpr_schedule_markdown(runs))
  w(seeds.seeds_markdown(runs))
  w(seeds.selection_markdown(runs))
  w(claims_markdown(runs))
  w(runs_markdown(runs))
  if status("beauty-bert4rec", runs, (), "paper") == "ok" or status(
      "beauty-bert4rec", runs, (), "clean") == "ok":
    w("\n*Beauty (BERT4Rec substitute)* is BERT4Rec's Amazon Beauty (40,226 "
      "users, 5-core), not the paper's data (SASRec's Beauty, 52,204 users, "
      "is not available offline); no paper number applies to it.\n")
  return out.getvalue()


def missing_markdown(runs: Dict[str, Run], unavailable: Sequence[str]) -> str:
  """The paper's datasets without runs under its protocol, with why."""
  rows = []
  for d in paper.TABLE2:
    st = status(d, runs, unavailable, "paper")
    if st == "ok":
      continue
    ref = paper.TABLE2[d]
    rows.append(f"| {paper.DATASET_NAMES[d]} | {st} | " + " | ".join(
        f"{ref[m][0]:.4f} / {ref[m][1]:.4f}" for m in paper.PAPER_MODELS)
        + " |")
  if not rows:
    return ""
  return ("Datasets of Table 2 without our numbers (the paper's HR@100 / "
          "NDCG@100 for reference):\n\n| Dataset | ours | "
          + " | ".join(paper.MODEL_NAMES[m].split(" (")[0]
                       for m in paper.PAPER_MODELS)
          + " |\n|" + "---|" * (2 + len(paper.PAPER_MODELS)) + "\n"
          + "\n".join(rows) + "\n\n")


def gains_markdown(runs: Dict[str, Run]) -> str:
  """Relative NDCG@100 gain of each ASASRec over SASRec, ours vs the
  paper's."""
  rows = []
  for protocol in paper.PROTOCOLS:
    for d in paper.DATASETS:
      s = runs.get(paper.run_name(d, protocol, "sasrec"))
      for model in ("asasrec", "asasrec-authors"):
        a = runs.get(paper.run_name(d, protocol, model))
        if not (a and s):
          continue
        na, ns = a.test_metric("ndcg@100"), s.test_metric("ndcg@100")
        test = compare(a, s, "ndcg@100")
        ref = paper.TABLE2.get(d)
        theirs = (f"{100 * (ref['asasrec'][1] / ref['sasrec'][1] - 1):+.1f} %"
                  if ref else "—")
        rows.append(f"| {paper.DATASET_NAMES[d]} | {protocol} | "
                    f"{paper.MODEL_NAMES[model]} | {ns:.4f} | {na:.4f} | "
                    f"{100 * (na / ns - 1):+.1f} % | {p_text(test.p)} | "
                    f"{theirs} |")
  if not rows:
    return ""
  return ("## Relative NDCG@100 gain of ASASRec over SASRec\n\n"
          "| Dataset | protocol | variant | SASRec | ASASRec | our gain | "
          "p (paired t) | paper's gain |\n|---|---|---|---|---|---|---|---|\n"
          + "\n".join(rows) + "\n\n")


def bpr_schedule_markdown(runs: Dict[str, Run]) -> str:
  """BPR and APR after BPR trained for Table 2's epochs and for any other
  length run_all.sh --bpr_pre_epochs ran (``<dataset>-<protocol>-bprN-*``),
  e.g. the paper's 1,000 ('' when no other length ran)."""
  rows = []
  for protocol in paper.PROTOCOLS:
    for d in paper.DATASETS:
      lengths = sorted(
          int(m.group(1))
          for m in (re.fullmatch(rf"{re.escape(d)}-{protocol}-bpr(\d+)-apr",
                                 name) for name in runs) if m)
      if not lengths:
        continue
      for prefix in [f"{d}-{protocol}"] + [f"{d}-{protocol}-bpr{n}"
                                           for n in lengths]:
        bpr, apr = runs.get(f"{prefix}-bpr"), runs.get(f"{prefix}-apr")
        if not (bpr and apr):
          continue
        within, whole = (seeds.gain(runs, prefix, "apr", rule, base="bpr")
                         for rule in ("within", "whole"))
        ref = paper.TABLE2.get(d)
        theirs = (f"{ref['bpr'][1]:.4f} / {ref['apr'][1]:.4f}" if ref
                  else "—")
        best = " / ".join(
            f"{r.results.get('best_epoch')} of "
            f"{r.results.get('start_epoch', 0) + r.results['epochs_run']}"
            for r in (bpr, apr))
        rows.append(f"| {paper.DATASET_NAMES[d]} | {protocol} | "
                    f"{bpr.results.get('start_epoch', 0)} | "
                    f"{within.base:.4f} | {within.arm:.4f} | "
                    f"{100 * within.relative:+.1f} % | {p_text(within.p)} | "
                    f"{whole.base:.4f} / {whole.arm:.4f} | "
                    f"{100 * whole.relative:+.1f} % | "
                    f"{p_text(whole.p)} | {best} | {theirs} |")
  if not rows:
    return ""
  return ("## BPR before APR: Table 2's epochs and the paper's\n\n"
          "Test NDCG@100 of BPR and APR continued from the same BPR "
          "checkpoint after the given number of BPR epochs (the paper's "
          "text says 1,000); best epoch of each arm out of the epochs it "
          "reached (one at its last may not have converged); p: paired "
          "t-test over users, APR vs BPR. *Whole run*: each arm's epoch "
          "selected over the BPR pre-run and its continuation together, as "
          "for SASRec in the gain over seeds (the pre-run's best can beat "
          "both continuations, which restart Adagrad).\n\n"
          "| Dataset | protocol | BPR epochs before the switch | BPR | APR | "
          "APR vs BPR | p | whole run: BPR / APR | APR vs BPR, whole run | "
          "p, whole run | best epoch (BPR / APR) | paper BPR / APR |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
          + "\n".join(rows)
          + "\n\n")


def claims_markdown(runs: Dict[str, Run]) -> str:
  """Whether each ordering the paper claims holds here, on NDCG@100."""
  rows = []
  for protocol in paper.PROTOCOLS:
    for d in paper.DATASETS:
      for better, worse in CLAIMS:
        a = runs.get(paper.run_name(d, protocol, better))
        b = runs.get(paper.run_name(d, protocol, worse))
        if not (a and b):
          continue
        test = compare(a, b, "ndcg@100")
        holds = test.mean_a > test.mean_b
        verdict = ("yes" if holds and test.p < ALPHA else
                   "yes, not significant" if holds else
                   "no, significantly worse" if test.p < ALPHA else
                   "no, not significant")
        rows.append(f"| {paper.DATASET_NAMES[d]} | {protocol} | "
                    f"{paper.MODEL_NAMES[better]} > {paper.MODEL_NAMES[worse]}"
                    f" | {test.mean_a:.4f} vs {test.mean_b:.4f} | "
                    f"{p_text(test.p)} | {verdict} |")
  if not rows:
    return ""
  return ("## The paper's claims, checked on NDCG@100\n\n"
          "| Dataset | protocol | claim | ours | p (paired t) | holds? |\n"
          "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n")


def runs_markdown(runs: Dict[str, Run]) -> str:
  """How long each Table 2 run trained, and whether it stopped early."""
  rows = []
  for protocol in paper.PROTOCOLS:
    for d in paper.DATASETS:
      for m in paper.MODELS:
        r = runs.get(paper.run_name(d, protocol, m))
        if r is None:
          continue
        res = r.results
        f = res.get("flags", {})
        epochs = res.get("epochs_run", 0)
        stopped = (f.get("patience") and epochs < f.get("epochs", epochs))
        secs = (res.get("timing") or {}).get("train_seconds_per_epoch")
        rows.append(
            f"| {r.name} | {res.get('start_epoch', 0)} + {epochs} | "
            f"{res.get('best_epoch')} | {'yes' if stopped else 'no'} | "
            f"{res.get('selected_on')} | "
            f"{'—' if secs is None else f'{secs:.1f}'} |")
  if not rows:
    return ""
  return ("## The runs\n\nEpochs: those of the `-pre` run it continued from "
          "(the epoch of the checkpoint it started from) + its own; the best "
          "epoch is counted the same way. A run stopped early when --patience "
          "evaluations in a row did not improve the selection metric; one "
          "whose best epoch is its last may not have converged.\n\n"
          "| run | epochs | best epoch | stopped early | selected on | "
          "s/epoch (median) |\n|---|---|---|---|---|---|\n"
          + "\n".join(rows) + "\n")


def csv_text(runs: Dict[str, Run], unavailable: Sequence[str]) -> str:
  """results/table2.csv: one row per protocol, dataset, model and metric of
  every dataset with runs, then the paper's numbers of those without."""
  buf = io.StringIO()
  writer = csv.writer(buf, lineterminator="\n")
  writer.writerow(["protocol", "dataset", "model", "metric", "ours", "paper",
                   "best", "significant_vs_second", "p_best_vs_second",
                   "run"])
  for protocol in paper.PROTOCOLS:
    for c in protocol_table(protocol, runs):
      for m in paper.MODELS:
        ours = c.values.get(m)
        ref = paper.paper_value(c.dataset, m, c.metric) if protocol == "paper" \
            else None
        is_best = m == c.best
        writer.writerow([
            protocol, c.dataset, m, c.metric,
            "" if ours is None else f"{ours:.6f}",
            "" if ref is None else f"{ref:.4f}", int(is_best),
            int(is_best and c.significant),
            "" if not is_best or c.p_value is None else f"{c.p_value:.3g}",
            paper.run_name(c.dataset, protocol, m) if ours is not None
            else ""])
  for d in paper.TABLE2:
    st = status(d, runs, unavailable, "paper")
    if st == "ok":
      continue
    for m in paper.MODELS:
      for i, metric in enumerate(METRICS["paper"]):
        writer.writerow(["paper", d, m, metric, st,
                         f"{paper.TABLE2[d][paper.PAPER_ROW[m]][i]:.4f}", "",
                         "", "", ""])
  return buf.getvalue()
