"""What a run reports under another rule for selecting its epoch.

A continuation's results.json holds the test metrics of the epoch it
selected among its own evaluations. Two other rules are as defensible, and
the paper does not say which it used:

* **whole run**: select over the pre-run and the continuation together, as
  picking the best line of a training log that spans the switch does. The
  winner is the pre-run's selected epoch or the continuation's, whichever
  scored higher on the selection target, so its per-user values (and so a
  paired t-test) are at hand.
* **every 20 epochs**: only evaluations at epochs divisible by 20 are
  eligible, as in the authors' logs (we evaluate every 10). Per-user values
  exist only when the winner is the selected epoch, so this rule gives the
  metric without a p-value otherwise.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, Optional

from asasrec_tf.report.runs import Run

METRIC = "ndcg@100"
LOG_EVERY = 20


def pre_run(run: Run, runs: Dict[str, Run]) -> Optional[Run]:
  """The run ``run`` continued (--init_checkpoint of a run directory)."""
  init = run.results.get("init") or {}
  path = init.get("path")
  if not path:
    return None
  return runs.get(os.path.basename(os.path.dirname(path)))


def _selection_value(run: Run) -> Optional[float]:
  res = run.results
  target, metric = res.get("selected_on", "test"), res.get("select_metric")
  return res.get("metrics", {}).get(target, {}).get(metric)


@dataclasses.dataclass
class Selected:
  """The test ``metric`` a rule selects, and the run whose per-user values
  belong to it (None when the rule's epoch has none)."""

  value: float
  per_user: Optional[Run]
  epoch: int


def within(run: Run, metric: str = METRIC) -> Selected:
  """The run's own selection (what results.json reports)."""
  return Selected(run.test_metric(metric), run, run.results.get("best_epoch"))


def whole_run(run: Run, runs: Dict[str, Run],
              metric: str = METRIC) -> Selected:
  """Selection over the pre-run and ``run`` together (``run`` alone when its
  pre-run is not among ``runs``)."""
  pre = pre_run(run, runs)
  if pre is None or _selection_value(pre) is None or (
      _selection_value(run) is not None and
      _selection_value(run) >= _selection_value(pre)):
    return within(run, metric)
  return within(pre, metric)


def every(run: Run, metric: str = METRIC,
          period: int = LOG_EVERY) -> Optional[Selected]:
  """The best test ``metric`` among the run's evaluations at epochs
  divisible by ``period`` (runs that select on test only: for one that
  selects on validation this would be a selection on test)."""
  if run.results.get("selected_on") != "test":
    return None
  points = [(value, epoch) for epoch, value in zip(*run.curve(metric, "test"))
            if epoch % period == 0]
  if not points:
    return None
  value, epoch = max(points, key=lambda p: (p[0], -p[1]))  # first best
  own = epoch == run.results.get("best_epoch")
  return Selected(value, run if own else None, epoch)
