"""results/ablation.md: which difference from the authors' code moves
ASASRec's gain over SASRec.

Every run of a (dataset, protocol) group starts from the same checkpoint of
its ``-pre`` run (run_all.sh --ablation). A step-form row changes only the
ASASRec arm, so it is compared with the authors' step directly. A row that
changes what both arms share (sampler, optimizer state, Adam's epsilon) has
a plain SASRec arm of its own, and its effect on the gain is a difference
of differences: per user, (ASASRec_d - SASRec_d) - (ASASRec - SASRec),
tested against 0 with a paired t-test.
"""

from __future__ import annotations

import dataclasses
import io
from typing import Dict, List, Optional

import numpy as np

from asasrec_tf.evaluation import significance
from asasrec_tf.report import paper
from asasrec_tf.report.runs import Run

ALPHA = 0.05
METRIC = "ndcg@100"
# The old budget of run_all.sh: 100 epochs after the switch.
SHORT = 100


@dataclasses.dataclass(frozen=True)
class Row:
  """One continuation of the ablation.

  Attributes:
    run: run name suffix after ``<dataset>-<protocol>-``.
    label: what the row is, for the table.
    change: what it changes relative to the authors' step ('' for the
      reference rows).
    plain: suffix of the SASRec arm its gain is measured against.
  """

  run: str
  label: str
  change: str
  plain: str = "sasrec"


AUTHORS = "asasrec-authors"
ROWS = (
    Row("sasrec", "SASRec, plain continuation", ""),
    Row(AUTHORS, "ASASRec, the authors' step",
        "reference: Delta on the output embeddings; Gamma from the "
        "dropout-off loss over the whole item table; one dropout-on pass "
        "gives both losses"),
    Row("asasrec", "ASASRec, Eq. 9",
        "Delta also on the input embeddings, so two passes"),
    Row("ablation-asasrec-authors-two-passes", "(a) two passes",
        "clean and perturbed losses from separate dropout-on passes "
        "(different masks)"),
    Row("ablation-asasrec-authors-gamma-target",
        "(b) Gamma over the output use",
        "Gamma from the output embeddings' use only, not the input's"),
    Row("ablation-asasrec-authors-gamma-dropout", "(c) Gamma with dropout on",
        "Gamma from a dropout-on pass of its own"),
    Row("ablation-asasrec-authors-first-item", "sampler: first item a target",
        "both arms also train on each user's first item after an "
        "all-padding input (asasrec_tf 0.1)", "ablation-sasrec-first-item"),
    Row("ablation-asasrec-authors-adam-reset", "Adam reset at the switch",
        "both arms start with a fresh Adam (moments and step count 0)",
        "ablation-sasrec-adam-reset"),
    Row("ablation-asasrec-authors-keras-eps", "Adam epsilon 1e-7",
        "both arms use Keras's epsilon instead of TF1's 1e-8",
        "ablation-sasrec-keras-eps"),
)


def _aligned(*runs: Run) -> List[np.ndarray]:
  """Per-user METRIC of ``runs`` over the users all of them evaluated."""
  pairs = [r.per_user(METRIC) for r in runs]
  common = pairs[0][0]
  for users, _ in pairs[1:]:
    common = np.intersect1d(common, users)
  out = []
  for users, values in pairs:
    _, idx, _ = np.intersect1d(users, common, return_indices=True)
    out.append(np.asarray(values, np.float64)[idx])
  return out


@dataclasses.dataclass
class Result:
  """The numbers of one row."""

  row: Row
  hr: float
  ndcg: float
  last_ndcg: Optional[float]
  plain_ndcg: Optional[float] = None
  gain: Optional[float] = None           # relative, ASASRec arm vs its plain
  gain_p: Optional[float] = None
  shift: Optional[float] = None          # gain change vs the authors' step,
  shift_p: Optional[float] = None        # in NDCG@100 points (absolute)
  plain_shift: Optional[float] = None    # the plain arm vs plain SASRec
  plain_shift_p: Optional[float] = None
  short_gain: Optional[float] = None     # gain of the best by +SHORT epochs


def best_by(run: Run, epochs: int) -> Optional[float]:
  """Best test METRIC of the evaluations up to ``epochs`` after the run's
  start: what a continuation that short would have reported. Only for runs
  that select on test (the paper's protocol); for one that selects on
  validation this would be a selection on test, so None."""
  if run.results.get("selected_on") != "test":
    return None
  start = run.results.get("start_epoch", 0)
  epochs_seen, values = run.curve(METRIC, "test")
  kept = [v for e, v in zip(epochs_seen, values) if e <= start + epochs]
  return max(kept) if kept else None


def _last(run: Run) -> Optional[float]:
  """Test METRIC at the run's last evaluation, if that evaluation has it."""
  history = run.results.get("history") or []
  if history and METRIC in history[-1].get("test", {}):
    return history[-1]["test"][METRIC]
  return None


def group(runs: Dict[str, Run], dataset: str,
          protocol: str) -> List[Result]:
  """The rows of one (dataset, protocol) whose runs exist."""
  name = lambda suffix: f"{dataset}-{protocol}-{suffix}"
  sasrec = runs.get(name("sasrec"))
  authors = runs.get(name(AUTHORS))
  out = []
  for row in ROWS:
    run = runs.get(name(row.run))
    if run is None:
      continue
    res = Result(row, run.test_metric("hr@100"), run.test_metric(METRIC),
                 _last(run))
    plain = runs.get(name(row.plain))
    if row.run != "sasrec" and plain is not None:
      a, s = _aligned(run, plain)
      res.plain_ndcg = float(s.mean())
      res.gain = float(a.mean() / s.mean() - 1)
      res.gain_p = significance.paired_ttest(a, s).p
      short = (best_by(run, SHORT), best_by(plain, SHORT))
      if None not in short:
        res.short_gain = short[0] / short[1] - 1
      if row.run != AUTHORS and authors is not None and sasrec is not None:
        a, s, a0, s0 = _aligned(run, plain, authors, sasrec)
        res.shift = float((a - s).mean() - (a0 - s0).mean())
        res.shift_p = significance.paired_ttest(a - s, a0 - s0).p
        if row.plain != "sasrec":
          res.plain_shift = float(s.mean() - s0.mean())
          res.plain_shift_p = significance.paired_ttest(s, s0).p
    out.append(res)
  return out


def _p(p: Optional[float]) -> str:
  if p is None:
    return "—"
  if p == 0.0:
    return "< 1e-300"
  return f"{p:.1e}" if p < 0.001 else f"{p:.3f}"


def _num(x: Optional[float], fmt: str = ".4f") -> str:
  return "—" if x is None else format(x, fmt)


def sentence(res: Result) -> str:
  """What the row's difference did, in words, from its numbers."""
  row = res.row
  if row.run == "sasrec":
    return "The baseline every gain is measured against."
  if res.gain is None:
    return "Its SASRec arm has not run yet."
  gain = (f"ASASRec {'beats' if res.gain > 0 else 'trails'} its SASRec arm "
          f"by {100 * abs(res.gain):.1f} % NDCG@100 "
          f"({'significant' if res.gain_p < ALPHA else 'not significant'}, "
          f"p = {_p(res.gain_p)})")
  if row.run == AUTHORS or res.shift is None:
    return gain + "."
  moved = ("raises" if res.shift > 0 else "lowers")
  effect = (f"{moved} the gain by {abs(res.shift):.4f} NDCG@100 against the "
            f"authors' step (p = {_p(res.shift_p)})"
            if res.shift_p < ALPHA else
            f"leaves the gain where the authors' step has it (change "
            f"{res.shift:+.4f}, p = {_p(res.shift_p)})")
  text = f"{gain}; this {effect}"
  if res.plain_shift is not None:
    text += (f"; SASRec itself moves by {res.plain_shift:+.4f} "
             f"(p = {_p(res.plain_shift_p)})")
  return text + "."


def markdown(runs: Dict[str, Run], source: str = "results/runs/*") -> str:
  """results/ablation.md ('' when no group has an ablation run)."""
  sections = []
  for d in paper.DATASETS:
    for protocol in paper.PROTOCOLS:
      results = group(runs, d, protocol)
      if not any(r.row.run.startswith("ablation-") for r in results):
        continue
      pre = runs.get(paper.run_name(d, protocol, "sasrec", "pre"))
      start = pre.results.get("epochs_run") if pre else None
      first = next(iter(results))
      epochs = runs[f"{d}-{protocol}-{first.row.run}"].results.get(
          "epochs_run")
      out = io.StringIO()
      out.write(f"## {paper.DATASET_NAMES[d]}, {protocol} protocol\n\n"
                f"Every row continues `{d}-{protocol}-sasrec-pre` from its "
                f"checkpoint of epoch {start} for {epochs} epochs; test "
                f"metrics of the epoch selected on "
                f"{'test' if protocol == 'paper' else 'validation'}.\n\n"
                "| continuation | what differs from the authors' step | "
                "HR@100 | NDCG@100 | NDCG@100 last | its SASRec arm | gain | "
                f"p | gain by +{SHORT} | gain change | p | what it did |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
      for res in results:
        out.write(
            f"| {res.row.label} | {res.row.change or '—'} | "
            f"{_num(res.hr)} | {_num(res.ndcg)} | {_num(res.last_ndcg)} | "
            f"{_num(res.plain_ndcg)} | "
            f"{'—' if res.gain is None else f'{100 * res.gain:+.1f} %'} | "
            f"{_p(res.gain_p)} | "
            f"{'—' if res.short_gain is None else f'{100 * res.short_gain:+.1f} %'}"
            f" | {_num(res.shift, '+.4f')} | "
            f"{_p(res.shift_p)} | {sentence(res)} |\n")
      sections.append(out.getvalue())
  if not sections:
    return ""
  return ("# Ablation: what ASASRec's gain over SASRec depends on\n\n"
          "Each row switches one difference between our default set-up and "
          "the authors' code (feay1234/ASASRec) on its own, from the same "
          "checkpoint. *gain*: relative NDCG@100 of the row's ASASRec arm "
          "over its SASRec arm, paired t-test over per-user values. *gain "
          "change*: the row's gain minus the authors' step's, in absolute "
          "NDCG@100 (per user, a difference of differences), with its "
          "paired t-test. *NDCG@100 last*: at the last epoch (paper "
          "protocol only), to show what selection on test hides. *gain by "
          f"+{SHORT}*: the same gain between the best evaluations of the "
          f"first {SHORT} epochs after the switch (paper protocol only): what "
          "a shorter continuation would have reported. Written by "
          f"`python -m asasrec_tf.report` from the runs of `./run_all.sh "
          f"--ablation` in `{source}`.\n\n" + "\n".join(sections))
