"""ASASRec's gain over SASRec across training seeds and selection rules.

A paired t-test over users says whether two runs differ on these users; it
does not see training randomness. run_all.sh --seed=N repeats a group's
whole schedule (pre-run, then the plain, Eq. 9 and authors'-step
continuations) under seed N as ``<dataset>-<protocol>-seedN-*``; seed 0 is
the unsuffixed group of Table 2. This module reports, per dataset and
protocol, each arm and each gain over the seeds (mean and sample standard
deviation), and each gain under the three selection rules of selection.py.
"""

from __future__ import annotations

import dataclasses
import re
import statistics
from typing import Dict, List, Optional, Tuple

from asasrec_tf.report import paper, selection
from asasrec_tf.report.runs import Run, compare, p_text

METRIC = selection.METRIC
ARMS = ("sasrec", "asasrec", "asasrec-authors")
ADVERSARIAL = ("asasrec", "asasrec-authors")
RULES = ("within", "whole", "every20")
RULE_TITLES = {
    "within": "within the continuation (Table 2's rule)",
    "whole": "over pre-run and continuation",
    "every20": "every 20 epochs, within the continuation",
}


def prefix(dataset: str, protocol: str, seed: int) -> str:
  """The run-name prefix of a seed's group (run_all.sh's names)."""
  return f"{dataset}-{protocol}" + (f"-seed{seed}" if seed else "")


def seeds_of(runs: Dict[str, Run], dataset: str, protocol: str) -> List[int]:
  """Seeds with a finished SASRec continuation for (dataset, protocol)."""
  found = set()
  pattern = re.compile(re.escape(f"{dataset}-{protocol}-") +
                       r"(?:seed(\d+)-)?sasrec$")
  for name in runs:
    m = pattern.fullmatch(name)
    if m:
      found.add(int(m.group(1) or 0))
  return sorted(found)


@dataclasses.dataclass
class Gain:
  """The relative gain of an arm (an ASASRec, or APR) over its base (SASRec,
  or BPR) under one rule."""

  base: float
  arm: float
  p: Optional[float]   # paired t over users; None without per-user values

  @property
  def relative(self) -> float:
    return self.arm / self.base - 1

  @property
  def absolute(self) -> float:
    return self.arm - self.base


def _select(run: Run, runs: Dict[str, Run], rule: str
            ) -> Optional[selection.Selected]:
  if rule == "within":
    return selection.within(run)
  if rule == "whole":
    return selection.whole_run(run, runs)
  return selection.every(run)


def gain(runs: Dict[str, Run], group: str, arm: str,
         rule: str = "within", base: str = "sasrec") -> Optional[Gain]:
  """``arm``'s gain over ``group``-``base`` under ``rule`` (None if a run is
  missing or the rule does not apply)."""
  a, s = runs.get(f"{group}-{arm}"), runs.get(f"{group}-{base}")
  if a is None or s is None:
    return None
  sa, ss = _select(a, runs, rule), _select(s, runs, rule)
  if sa is None or ss is None:
    return None
  p = None
  if sa.per_user is not None and ss.per_user is not None:
    p = compare(sa.per_user, ss.per_user, METRIC).p
  return Gain(ss.value, sa.value, p)


def _mean_sd(values: List[float]) -> Tuple[float, Optional[float]]:
  mean = statistics.fmean(values)
  return mean, (statistics.stdev(values) if len(values) > 1 else None)


def gain_spread(runs: Dict[str, Run], dataset: str, protocol: str,
                arm: str = "asasrec-authors") -> Optional[float]:
  """Sample SD over seeds of ``arm``'s absolute gain in NDCG@100 (None
  with fewer than two seeds)."""
  gains = [gain(runs, prefix(dataset, protocol, s), arm)
           for s in seeds_of(runs, dataset, protocol)]
  gains = [g.absolute for g in gains if g is not None]
  return _mean_sd(gains)[1] if len(gains) > 1 else None


def change_spread(runs: Dict[str, Run], dataset: str, protocol: str,
                  arm: str) -> Optional[float]:
  """Sample SD over seeds of ``arm``'s absolute NDCG@100 gain minus the
  authors' step's (None with fewer than two seeds that ran both): how much
  an arm's change against the authors' step moves with the seed."""
  changes = []
  for s in seeds_of(runs, dataset, protocol):
    g = prefix(dataset, protocol, s)
    a, r = gain(runs, g, arm), gain(runs, g, "asasrec-authors")
    if a is not None and r is not None:
      changes.append(a.absolute - r.absolute)
  return _mean_sd(changes)[1] if len(changes) > 1 else None


def mean_sd_text(values: List[float], fmt: str) -> str:
  mean, sd = _mean_sd(values)
  return format(mean, fmt) + ("" if sd is None else
                              " ± " + format(sd, fmt.lstrip("+")))


def _per_seed_text(values: List[Optional[float]], fmt: str, scale: float,
                   unit: str = "") -> str:
  """Mean ± SD over the seeds that ran, then every seed's value in the order
  of the table's seeds column, "—" where a seed did not run that arm."""
  present = [scale * v for v in values if v is not None]
  if not present:
    return "—"
  each = ", ".join("—" if v is None else format(scale * v, fmt)
                   for v in values)
  return mean_sd_text(present, fmt) + f"{unit} ({each})"


def seeds_markdown(runs: Dict[str, Run]) -> str:
  """Each arm and gain over the seeds, per dataset and protocol ('' when
  no dataset has a group)."""
  rows = []
  for protocol in paper.PROTOCOLS:
    for d in paper.DATASETS:
      seeds = seeds_of(runs, d, protocol)
      if not seeds:
        continue
      groups = [prefix(d, protocol, s) for s in seeds]
      cells = [paper.DATASET_NAMES[d], protocol, ", ".join(map(str, seeds))]
      for arm in ARMS:
        values = [runs[f"{g}-{arm}"].test_metric(METRIC)
                  if f"{g}-{arm}" in runs else None for g in groups]
        cells.append(_per_seed_text(values, ".4f", 1))
      for arm in ADVERSARIAL:
        for rule in ("within", "whole"):
          gains = [gain(runs, g, arm, rule) for g in groups]
          cells.append(_per_seed_text(
              [None if g is None else g.relative for g in gains], "+.1f", 100,
              " %"))
      rows.append("| " + " | ".join(cells) + " |")
  if not rows:
    return ""
  return (
      "## Over training seeds\n\n"
      "Each seed repeats the whole schedule (`run_all.sh --seed=N`: its own "
      "1,000-epoch pre-run, then its continuations from its epoch-1,000 "
      "checkpoint); seed 0 is the table above. Test NDCG@100, mean ± sample "
      "SD over the seeds that ran the arm (each seed's value in parentheses, "
      "— where a seed did not run it), and the relative "
      "gain of each ASASRec over the SASRec of its own seed, with the epoch "
      "selected within the continuation (Table 2's rule) or over pre-run and "
      "continuation. A paired t-test over users within one seed does not see "
      "this spread.\n\n"
      "| Dataset | protocol | seeds | SASRec | ASASRec (Eq. 9) | ASASRec "
      "(authors' step) | gain Eq. 9 | gain Eq. 9, whole run | gain authors' "
      "step | gain authors' step, whole run |\n"
      "|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n")


def selection_markdown(runs: Dict[str, Run]) -> str:
  """Each seed's gains under the three selection rules ('' when none)."""
  rows = []
  for protocol in paper.PROTOCOLS:
    for d in paper.DATASETS:
      for s in seeds_of(runs, d, protocol):
        g = prefix(d, protocol, s)
        for arm in ADVERSARIAL:
          cells = [paper.DATASET_NAMES[d], protocol, str(s),
                   paper.MODEL_NAMES[arm]]
          any_rule = False
          for rule in RULES:
            res = gain(runs, g, arm, rule)
            if res is None:
              cells.append("—")
              continue
            any_rule = True
            cells.append(f"{res.base:.4f} → {res.arm:.4f}, "
                         f"{100 * res.relative:+.1f} % (p {p_text(res.p)})")
          if any_rule:
            rows.append("| " + " | ".join(cells) + " |")
  if not rows:
    return ""
  return (
      "## The gain under three rules for selecting the epoch\n\n"
      "Test NDCG@100 of SASRec → ASASRec and the relative gain, with the "
      "epoch of each arm selected (on the protocol's selection target) "
      f"{'; '.join(RULE_TITLES[r] for r in RULES)}. The paper does not say "
      "which rule its numbers use; the authors' logs evaluate every 20 "
      "epochs over one run that spans the switch. p: paired t-test over "
      "users, where both selected epochs have per-user values (— otherwise; "
      "the every-20 rule applies to runs selected on test only).\n\n"
      "| Dataset | protocol | seed | variant | "
      + " | ".join(RULE_TITLES[r] for r in RULES) + " |\n"
      "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n")
