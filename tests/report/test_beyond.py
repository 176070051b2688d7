"""results/beyond.md on hand-made runs whose numbers are worked out in the
comments: the loss x model table and the sensitivity grid."""

import os
import re

import numpy as np
import pytest

from asasrec_tf.report import beyond, runs as runs_module
from tests.conftest import REPO
from tests.report.fake_runs import make_run


def _pair(runs_dir, group, sasrec, asasrec, flags=None, start_epoch=1000,
          epochs_run=300):
  make_run(runs_dir, f"{group}-sasrec",
           {"ndcg@100": sasrec, "ndcg@10": [v / 2 for v in sasrec]},
           model="sasrec", selected_on="valid", start_epoch=start_epoch,
           epochs_run=epochs_run)
  if asasrec is not None:
    make_run(runs_dir, f"{group}-asasrec-authors",
             {"ndcg@100": asasrec, "ndcg@10": [v / 2 for v in asasrec]},
             model="asasrec", selected_on="valid", flags=flags)


def test_the_loss_table_by_hand(tmp_path):
  # bce, seed 0: 0.2 -> 0.25 (+25 %); seed 1: 0.25 -> 0.3 (+20 %).
  # Per-user differences [0.1, 0, 0.05] in both: mean 0.05, sd 0.05,
  # t = sqrt(3) with 2 df, p = 1 - t / sqrt(2 + t^2) = 1 - sqrt(3/5) = 0.2254
  _pair(tmp_path, "video-clean", [0.2, 0.2, 0.2], [0.3, 0.2, 0.25])
  _pair(tmp_path, "video-clean-seed1", [0.2, 0.3, 0.25], [0.3, 0.3, 0.3])
  # ce, seed 0 only: 0.4 -> 0.4; its seed 1 has no ASASRec arm yet
  _pair(tmp_path, "video-clean-loss-ce", [0.4, 0.4, 0.4], [0.5, 0.3, 0.4],
        start_epoch=300, epochs_run=100)
  # pre-runs: bce seed 0 peaked at epoch 970, seed 1's is not archived; ce's
  # peaked at its last epoch, 300 (still rising at the switch)
  make_run(tmp_path, "video-clean-sasrec-pre", {"ndcg@100": [0.2] * 3},
           model="sasrec", selected_on="valid", best_epoch=970)
  make_run(tmp_path, "video-clean-loss-ce-sasrec-pre", {"ndcg@100": [0.4] * 3},
           model="sasrec", selected_on="valid", best_epoch=300)
  _pair(tmp_path, "video-clean-seed1-loss-ce", [0.1, 0.1, 0.1], None)
  # the paper protocol is not this table's
  _pair(tmp_path, "video-paper", [0.1, 0.1, 0.1], [0.9, 0.9, 0.9])
  found = runs_module.load_runs(str(tmp_path))
  assert beyond.loss_seeds(found, "video", "bce") == [0, 1]
  assert beyond.loss_seeds(found, "video", "ce") == [0, 1]
  assert beyond.loss_seeds(found, "video", "gbce") == []
  md = beyond.loss_markdown(found)
  rows = [line for line in md.splitlines() if line.startswith("| Video")]
  assert len(rows) == 2
  bce, ce = (line.split(" | ") for line in rows)
  assert bce[2] == "0, 1" and ce[2] == "0"
  # each loss's schedule: pre-run epochs + continuation epochs
  assert bce[3] == "1,000 + 300" and ce[3] == "300 + 100"
  # each seed's pre-run best epoch, "—" where the pre-run is not there
  assert bce[4] == "970, —" and ce[4] == "300"
  # SASRec NDCG@10: 0.1 and 0.125 -> 0.1125 ± 0.0177
  assert bce[5] == "0.1125 ± 0.0177"
  # gains +25 and +20: mean 22.5, sd 3.54
  assert bce[9] == "+22.5 ± 3.5 %" and bce[10] == "0.225, 0.225 |"
  assert ce[9] == "+0.0 %"
  assert "| 0.9" not in md
  # the published numbers are named with their setting, below the table
  assert md.index("0.1259 for SASRec") > md.index(rows[-1])
  assert "3,416 items; ours, the ASASRec authors' file, has 3,706" in md


def test_sensitivity_cells_come_from_the_runs_flags(tmp_path):
  # seed 0: plain 0.2; the centre (0.5, 1) 0.25 -> +25 %; (0.1, 1) 0.22 ->
  # +10 %; a run named oddly with eps 2, lambda 0.1: 0.1 -> -50 %
  _pair(tmp_path, "video-paper", [0.2, 0.2], [0.25, 0.25],
        flags={"adv_eps": 0.5, "adv_reg": 1.0})
  make_run(tmp_path, "video-paper-sens-eps0.1-reg1-asasrec-authors",
           {"ndcg@100": [0.22, 0.22]}, flags={"adv_eps": 0.1, "adv_reg": 1.0})
  make_run(tmp_path, "video-paper-sens-x-asasrec-authors",
           {"ndcg@100": [0.1, 0.1]}, flags={"adv_eps": 2.0, "adv_reg": 0.1})
  # seed 1: plain 0.25, (0.1, 1) 0.3 -> +20 %; no centre run
  _pair(tmp_path, "video-paper-seed1", [0.25, 0.25], None)
  make_run(tmp_path, "video-paper-seed1-sens-eps0.1-reg1-asasrec-authors",
           {"ndcg@100": [0.3, 0.3]}, flags={"adv_eps": 0.1, "adv_reg": 1.0})
  # seed 2 ran no grid: it adds nothing, not even its centre
  _pair(tmp_path, "video-paper-seed2", [0.2, 0.2], [0.4, 0.4],
        flags={"adv_eps": 0.5, "adv_reg": 1.0})
  found = runs_module.load_runs(str(tmp_path))
  cells = beyond.sensitivity(found, "video")
  assert cells[(0.5, 1.0)] == [pytest.approx(25.0)]
  assert cells[(0.1, 1.0)] == [pytest.approx(10.0), pytest.approx(20.0)]
  assert cells[(2.0, 0.1)] == [pytest.approx(-50.0)]
  md = beyond.sensitivity_markdown(found)
  # (10 + 20) / 2 = 15, sd of (10, 20) = 7.07
  assert "| 0.1 | — | +15.0 ± 7.1 % (n=2) |" in md
  assert "| 2 | -50.0 % (n=1) | — |" in md
  # the rest of run_all.sh's grid shows as not run, not as missing rows
  assert "| 0.05 | — | — |" in md and "| 1 | — | — |" in md
  path = beyond.plot_sensitivity(found, "video", str(tmp_path))
  assert path and os.path.getsize(path) > 1000
  assert beyond.plot_sensitivity(found, "ml-1m", str(tmp_path)) is None


def test_nothing_to_report_writes_nothing(tmp_path):
  _pair(tmp_path, "video-paper", [0.2], [0.25])
  assert beyond.markdown(runs_module.load_runs(str(tmp_path)), "x") == ""


def test_heat_map_labels_a_cell_not_run_apart_from_a_zero_gain():
  # a missing cell must not read as 0 %: its label says so
  grid = np.array([[0.0, np.nan], [-2.25, 6.75]])
  assert beyond.cell_labels(grid) == [
      (0, 0, "+0.0"), (0, 1, "not run"), (1, 0, "-2.2"), (1, 1, "+6.8")]


def test_the_grid_shown_is_run_all_shs_grid():
  # beyond.GRID_* mirror run_all.sh's SENS_EPS and SENS_REG; both must move together
  text = open(os.path.join(REPO, "run_all.sh"), encoding="utf-8").read()
  eps = re.search(r'^SENS_EPS="([^"]*)"', text, re.M).group(1).split()
  reg = re.search(r'^SENS_REG="([^"]*)"', text, re.M).group(1).split()
  assert tuple(map(float, eps)) == beyond.GRID_EPS
  assert tuple(map(float, reg)) == beyond.GRID_REG
