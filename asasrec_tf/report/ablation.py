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
from asasrec_tf.report import paper, seeds, selection
from asasrec_tf.report.runs import Run, p_text

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
        "all-padding input", "ablation-sasrec-first-item"),
    Row("ablation-asasrec-authors-adam-reset", "Adam reset at the switch",
        "both arms start with a fresh Adam (moments and step count 0)",
        "ablation-sasrec-adam-reset"),
    Row("ablation-asasrec-authors-keras-eps", "Adam epsilon 1e-7",
        "both arms use Keras's epsilon instead of TF1's 1e-8",
        "ablation-sasrec-keras-eps"),
    Row("ablation-asasrec-authors-loss-authors", "loss: the authors' form",
        "both arms use -log(sigmoid(x) + 1e-24) - log(1 - sigmoid(x) + "
        "1e-24), flat once a negative's logit passes about 17, instead of "
        "softplus", "ablation-sasrec-loss-authors"),
    Row("ablation-asasrec-authors-lazy-adam", "Adam: row-sparse (lazy)",
        "both arms update the moments and weights of the rows a batch "
        "touches only (`--optimizer=lazy_adam`, for large catalogs), not "
        "every row at every step as TF1's Adam", "ablation-sasrec-lazy-adam"),
    Row("ablation-block-authors-asasrec-authors", "block: the authors'",
        "both arms use the authors' block (keys and values layer-normed, a "
        "layer norm closing each feed-forward) and continue a pre-run of "
        "their own with it (`ablation-block-authors-sasrec-pre`)",
        "ablation-block-authors-sasrec"),
)
# The factor of the seed-to-seed SD of the authors' step's gain within
# which a row's change is not told apart from training randomness.
SEED_FACTOR = 2


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
  whole_gain: Optional[float] = None     # gain, selected over the whole run
  seed_sd: Optional[float] = None        # seed SD of the authors' gain


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


def group(runs: Dict[str, Run], prefix: str,
          seed_sd: Optional[float] = None,
          row_sd: Optional[Dict[str, float]] = None) -> List[Result]:
  """The rows of the group whose run names start with ``prefix`` (e.g.
  ``video-paper`` or ``video-paper-seed1``) whose runs exist; ``seed_sd``
  is the seed-to-seed SD of the authors' step's gain (absolute NDCG@100)
  that each row's change is judged against, or, for a row in ``row_sd``
  (run suffix -> the seed SD of its own change), the larger of the two."""
  name = lambda suffix: f"{prefix}-{suffix}"
  sasrec = runs.get(name("sasrec"))
  authors = runs.get(name(AUTHORS))
  out = []
  for row in ROWS:
    run = runs.get(name(row.run))
    if run is None:
      continue
    sd = seed_sd
    if sd is not None and (row_sd or {}).get(row.run) is not None:
      sd = max(sd, row_sd[row.run])
    res = Result(row, run.test_metric("hr@100"), run.test_metric(METRIC),
                 _last(run), seed_sd=sd)
    plain = runs.get(name(row.plain))
    if row.run != "sasrec" and plain is not None:
      a, s = _aligned(run, plain)
      res.plain_ndcg = float(s.mean())
      res.gain = float(a.mean() / s.mean() - 1)
      res.gain_p = significance.paired_ttest(a, s).p
      short = (best_by(run, SHORT), best_by(plain, SHORT))
      if None not in short:
        res.short_gain = short[0] / short[1] - 1
      res.whole_gain = (selection.whole_run(run, runs).value /
                        selection.whole_run(plain, runs).value - 1)
      if row.run != AUTHORS and authors is not None and sasrec is not None:
        a, s, a0, s0 = _aligned(run, plain, authors, sasrec)
        res.shift = float((a - s).mean() - (a0 - s0).mean())
        res.shift_p = significance.paired_ttest(a - s, a0 - s0).p
        if row.plain != "sasrec":
          res.plain_shift = float(s.mean() - s0.mean())
          res.plain_shift_p = significance.paired_ttest(s, s0).p
    out.append(res)
  return out


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
          f"p = {p_text(res.gain_p)})")
  if row.run == AUTHORS or res.shift is None:
    return gain + "."
  moved = ("raises" if res.shift > 0 else "lowers")
  effect = (f"{moved} the gain by {abs(res.shift):.4f} NDCG@100 against the "
            f"authors' step (p = {p_text(res.shift_p)})"
            if res.shift_p < ALPHA else
            f"leaves the gain where the authors' step has it (change "
            f"{res.shift:+.4f}, p = {p_text(res.shift_p)})")
  text = f"{gain}; this {effect}"
  if res.seed_sd is not None:
    if abs(res.shift) < SEED_FACTOR * res.seed_sd:
      text += (f"; no effect distinguishable from seed variation (|change| "
               f"< {SEED_FACTOR} x the seed SD, "
               f"{res.seed_sd:.4f})")
    else:
      text += (f"; beyond seed variation (|change| >= {SEED_FACTOR} x the "
               f"seed SD, {res.seed_sd:.4f})")
  if res.plain_shift is not None:
    text += (f"; SASRec itself moves by {res.plain_shift:+.4f} "
             f"(p = {p_text(res.plain_shift_p)})")
  return text + "."


def markdown(runs: Dict[str, Run], source: str = "results/runs/*") -> str:
  """results/ablation.md ('' when no group has an ablation run)."""
  sections = []
  for d in paper.DATASETS:
    for protocol in paper.PROTOCOLS:
      spread = seeds.gain_spread(runs, d, protocol)
      # An arm that ran under several seeds itself is judged by its own
      # change's spread too (Eq. 9's gain varied far more than the
      # authors' step's).
      own = {arm: seeds.change_spread(runs, d, protocol, arm)
             for arm in seeds.ADVERSARIAL if arm != AUTHORS}
      for seed in seeds.seeds_of(runs, d, protocol):
        prefix = seeds.prefix(d, protocol, seed)
        results = group(runs, prefix, spread, own)
        if not any(r.row.run.startswith("ablation-") for r in results):
          continue
        sections.append(_section(runs, d, protocol, seed, prefix, results,
                                 spread))
  if not sections:
    return ""
  return ("# Ablation: what ASASRec's gain over SASRec depends on\n\n"
          "Each row switches one difference between our default set-up and "
          "the authors' code (feay1234/ASASRec) on its own, from the same "
          "checkpoint. *gain*: relative NDCG@100 of the row's ASASRec arm "
          "over its SASRec arm, paired t-test over per-user values. *gain "
          "change*: the row's gain minus the authors' step's, in absolute "
          "NDCG@100 (per user, a difference of differences), with its "
          "paired t-test; where several training seeds ran, a change smaller "
          f"than {SEED_FACTOR} x the seed-to-seed SD of the authors' step's "
          "gain (or of the row's own change, when its arm ran under every "
          "seed and that is larger) is called indistinguishable from seed "
          "variation, whatever its p (the t-test sees users, not training "
          "randomness). "
          "*NDCG@100 last*: at the last epoch (paper "
          "protocol only), to show what selection on test hides. *gain by "
          f"+{SHORT}*: the same gain between the best evaluations of the "
          f"first {SHORT} epochs after the switch (paper protocol only): what "
          "a shorter continuation would have reported. *gain, whole run*: "
          "each arm's epoch selected over its pre-run and continuation "
          "together. Written by "
          f"`python -m asasrec_tf.report` from the runs of `./run_all.sh "
          f"--ablation` in `{source}`.\n\n" + "\n".join(sections))


def _section(runs: Dict[str, Run], dataset: str, protocol: str, seed: int,
             prefix: str, results: List[Result],
             spread: Optional[float]) -> str:
  pre = runs.get(f"{prefix}-sasrec-pre")
  start = pre.results.get("epochs_run") if pre else None
  epochs = runs[f"{prefix}-{results[0].row.run}"].results.get("epochs_run")
  n_seeds = len(seeds.seeds_of(runs, dataset, protocol))
  out = io.StringIO()
  out.write(f"## {paper.DATASET_NAMES[dataset]}, {protocol} protocol"
            f"{f', seed {seed}' if seed else ''}\n\n"
            f"Every row continues `{prefix}-sasrec-pre` from its "
            f"checkpoint of epoch {start} for {epochs} epochs (unless it says "
            "otherwise); test metrics of the epoch selected on "
            f"{'test' if protocol == 'paper' else 'validation'}."
            + (f" Seed-to-seed SD of the authors' step's gain over "
               f"{n_seeds} seeds: {spread:.4f} NDCG@100." if spread is not None
               else "") + "\n\n"
            "| continuation | what differs from the authors' step | "
            "HR@100 | NDCG@100 | NDCG@100 last | its SASRec arm | gain | "
            f"p | gain by +{SHORT} | gain, whole run | gain change | p | "
            "what it did |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
  pct = lambda g: "—" if g is None else f"{100 * g:+.1f} %"
  for res in results:
    out.write(
        f"| {res.row.label} | {res.row.change or '—'} | "
        f"{_num(res.hr)} | {_num(res.ndcg)} | {_num(res.last_ndcg)} | "
        f"{_num(res.plain_ndcg)} | {pct(res.gain)} | {p_text(res.gain_p)} | "
        f"{pct(res.short_gain)} | {pct(res.whole_gain)} | "
        f"{_num(res.shift, '+.4f')} | {p_text(res.shift_p)} | "
        f"{sentence(res)} |\n")
  return out.getvalue()
