"""The gain over training seeds and under three selection rules, on
hand-made runs whose numbers are worked out in the comments."""

import pytest

from asasrec_tf.report import ablation, runs as runs_module, seeds, selection
from tests.report.fake_runs import history, make_run


def _switch_group(runs_dir):
  """A pre-run and two continuations of it (3 users)."""
  make_run(runs_dir, "video-paper-sasrec-pre", {"ndcg@100": [0.2, 0.4, 0.3]},
           history([0.3], every=790))                     # best 0.3, epoch 790
  make_run(runs_dir, "video-paper-sasrec", {"ndcg@100": [0.1, 0.3, 0.2]},
           history([0.2, 0.19, 0.18], start=1000), start_epoch=1000,
           init_from="video-paper-sasrec-pre", best_epoch=1010)
  make_run(runs_dir, "video-paper-asasrec-authors",
           {"ndcg@100": [0.3, 0.5, 0.46]}, history([0.41, 0.40, 0.42],
                                                   start=1000),
           start_epoch=1000, init_from="video-paper-sasrec-pre",
           best_epoch=1030)


def test_three_rules_by_hand(tmp_path):
  _switch_group(tmp_path)
  found = runs_module.load_runs(str(tmp_path))
  # within: 0.42 / 0.2 - 1 = +110 %
  within = seeds.gain(found, "video-paper", "asasrec-authors", "within")
  assert within.relative == pytest.approx(1.1)
  # whole run: SASRec's pre-run scored 0.3 > its continuation's 0.2, so
  # 0.42 / 0.3 - 1 = +40 %; per user [0.3, 0.5, 0.46] vs [0.2, 0.4, 0.3]:
  # differences 0.1, 0.1, 0.16, mean 0.12, sd 0.034641, t = 6.0 with 2 df,
  # p = 1 - 6 / sqrt(2 + 36) = 0.026671
  whole = seeds.gain(found, "video-paper", "asasrec-authors", "whole")
  assert (whole.base, whole.arm) == (pytest.approx(0.3),
                                   pytest.approx(0.42))
  assert whole.p == pytest.approx(0.026671, rel=1e-4)
  # every 20 epochs: only 1020 is eligible: 0.40 / 0.19 - 1 = +110.5 %, and
  # neither arm has per-user values there
  every = seeds.gain(found, "video-paper", "asasrec-authors", "every20")
  assert every.relative == pytest.approx(0.40 / 0.19 - 1)
  assert every.p is None
  md = seeds.selection_markdown(found)
  assert "0.3000 → 0.4200, +40.0 % (p 0.0267)" in md
  assert "0.1900 → 0.4000, +110.5 % (p —)" in md


def test_the_pre_run_is_found_from_init(tmp_path):
  _switch_group(tmp_path)
  found = runs_module.load_runs(str(tmp_path))
  assert selection.pre_run(found["video-paper-sasrec"], found).name == (
      "video-paper-sasrec-pre")
  assert selection.pre_run(found["video-paper-sasrec-pre"], found) is None


def _seed(runs_dir, group, sasrec, authors):
  make_run(runs_dir, f"{group}-sasrec", {"ndcg@100": sasrec})
  make_run(runs_dir, f"{group}-asasrec-authors", {"ndcg@100": authors})


def _three_seeds(runs_dir):
  # gains +20 %, +10 %, +15 %: absolute 0.04, 0.025, 0.03
  _seed(runs_dir, "video-paper", [0.1, 0.3, 0.2, 0.2], [0.15, 0.33, 0.24, 0.24])
  _seed(runs_dir, "video-paper-seed1", [0.25, 0.25, 0.2, 0.3],
        [0.27, 0.28, 0.22, 0.33])
  _seed(runs_dir, "video-paper-seed2", [0.2, 0.2, 0.1, 0.3],
        [0.24, 0.22, 0.13, 0.33])


def test_means_and_spreads_over_seeds(tmp_path):
  _three_seeds(tmp_path)
  found = runs_module.load_runs(str(tmp_path))
  assert seeds.seeds_of(found, "video", "paper") == [0, 1, 2]
  # absolute gains 0.04, 0.025, 0.03: mean 0.031667, sample SD
  # sqrt((0.008333^2 + 0.006667^2 + 0.001667^2) / 2) = 0.0076376
  assert seeds.gain_spread(found, "video", "paper") == pytest.approx(
      0.0076376, rel=1e-4)
  md = seeds.seeds_markdown(found)
  # SASRec 0.2, 0.25, 0.2: mean 0.2167, SD 0.0289; gains +15.0 ± 5.0 %
  assert "| Video | paper | 0, 1, 2 | 0.2167 ± 0.0289" in md
  assert "+15.0 ± 5.0 % (+20.0, +10.0, +15.0)" in md


def test_ablation_rows_are_judged_against_the_seed_spread(tmp_path):
  _three_seeds(tmp_path)
  # seed 1's loss row: its own SASRec arm 0.25 -> authors 0.285 (gain
  # 0.035 vs the group's 0.025: change +0.01 < 2 x 0.0076376 = 0.0153)
  make_run(tmp_path, "video-paper-seed1-ablation-sasrec-loss-authors",
           {"ndcg@100": [0.25, 0.25, 0.2, 0.3]})
  make_run(tmp_path, "video-paper-seed1-ablation-asasrec-authors-loss-authors",
           {"ndcg@100": [0.28, 0.30, 0.23, 0.33]})
  found = runs_module.load_runs(str(tmp_path))
  md = ablation.markdown(found)
  assert "## Video, paper protocol, seed 1" in md
  assert "Seed-to-seed SD of the authors' step's gain over 3 seeds: 0.0076" \
      in md
  row = next(line for line in md.splitlines()
             if line.startswith("| loss: the authors' form"))
  assert "| +0.0100 |" in row
  assert "no effect distinguishable from seed variation" in row


def test_an_arm_that_ran_under_every_seed_is_judged_by_its_own_spread(
    tmp_path):
  _three_seeds(tmp_path)
  # Eq. 9's absolute gains 0.06, 0.045, -0.01 against the authors' step's
  # 0.04, 0.025, 0.03: changes +0.02, +0.02, -0.04, sample SD
  # sqrt((0.02^2 + 0.02^2 + 0.04^2) / 2) = 0.034641
  make_run(tmp_path, "video-paper-asasrec", {"ndcg@100": [0.18, 0.34, 0.26,
                                                           0.26]})
  make_run(tmp_path, "video-paper-seed1-asasrec",
           {"ndcg@100": [0.27, 0.30, 0.25, 0.36]})
  make_run(tmp_path, "video-paper-seed2-asasrec",
           {"ndcg@100": [0.19, 0.2, 0.1, 0.27]})
  make_run(tmp_path, "video-paper-seed1-ablation-sasrec-loss-authors",
           {"ndcg@100": [0.25, 0.25, 0.2, 0.3]})
  make_run(tmp_path, "video-paper-seed1-ablation-asasrec-authors-loss-authors",
           {"ndcg@100": [0.28, 0.30, 0.23, 0.33]})
  found = runs_module.load_runs(str(tmp_path))
  assert seeds.change_spread(found, "video", "paper", "asasrec") == \
      pytest.approx(0.034641, rel=1e-4)
  md = ablation.markdown(found)
  section = md.split("## Video, paper protocol, seed 1")[1]
  row = next(line for line in section.splitlines()
             if line.startswith("| ASASRec, Eq. 9"))
  # seed 1's change +0.02 is under 2 x 0.0346 (it would pass 2 x 0.0076,
  # the authors' step's own spread)
  assert "| +0.0200 |" in row
  assert "no effect distinguishable from seed variation" in row
  assert "0.0346" in row


def test_a_seed_that_did_not_run_an_arm_keeps_its_slot(tmp_path):
  _three_seeds(tmp_path)
  # Eq. 9 under seeds 0 and 2 only: NDCG@100 means 0.26 and 0.19 (users
  # [0.18, 0.34, 0.26, 0.26] and [0.19, 0.2, 0.1, 0.27]), mean 0.225, SD
  # 0.0495; gains 0.26 / 0.2 - 1 = +30.0 % and 0.19 / 0.2 - 1 = -5.0 %
  make_run(tmp_path, "video-paper-asasrec", {"ndcg@100": [0.18, 0.34, 0.26,
                                                           0.26]})
  make_run(tmp_path, "video-paper-seed2-asasrec",
           {"ndcg@100": [0.19, 0.2, 0.1, 0.27]})
  found = runs_module.load_runs(str(tmp_path))
  row = next(line for line in seeds.seeds_markdown(found).splitlines()
             if line.startswith("| Video | paper | 0, 1, 2 |"))
  assert "| 0.2250 ± 0.0495 (0.2600, —, 0.1900) |" in row
  assert "| +12.5 ± 24.7 % (+30.0, —, -5.0) |" in row
  # the authors' step ran under every seed: +15.0 ± 5.0 % as before
  assert "| +15.0 ± 5.0 % (+20.0, +10.0, +15.0) |" in row
