import csv
import io

import numpy as np
import pytest
from scipy import stats

from asasrec_tf.report import runs, table2

from tests.report.fake_runs import make_run

N = 60


def _video_runs(tmp_path, asasrec_boost=0.1):
  """Video, paper protocol: per-user NDCG@100 / HR@100 with known means."""
  rng = np.random.default_rng(0)
  base = rng.uniform(0, 0.5, N)
  means = {"mostpop": 0.0, "bpr": 0.05, "apr": 0.06, "sasrec": 0.1}
  for model, shift in means.items():
    v = np.clip(base + shift + rng.normal(0, 0.01, N), 0, 1)
    make_run(tmp_path, f"video-paper-{model}",
             {"ndcg@100": v, "hr@100": (v > 0.3).astype(float)})
  v = np.clip(base + 0.1 + asasrec_boost + rng.normal(0, 0.01, N), 0, 1)
  make_run(tmp_path, "video-paper-asasrec",
           {"ndcg@100": v, "hr@100": (v > 0.3).astype(float)})
  return runs.load_runs(str(tmp_path))


def test_column_marks_the_best_and_tests_it_against_the_second(tmp_path):
  found = _video_runs(tmp_path)
  col = table2.column("paper", "video", "ndcg@100", found)
  assert (col.best, col.second) == ("asasrec", "sasrec")
  a = found["video-paper-asasrec"].per_user("ndcg@100")[1]
  s = found["video-paper-sasrec"].per_user("ndcg@100")[1]
  assert col.p_value == pytest.approx(stats.ttest_rel(a, s).pvalue)
  assert col.significant
  assert col.values["asasrec"] == pytest.approx(a.mean())


def test_no_star_when_the_best_is_not_significantly_better(tmp_path):
  make_run(tmp_path, "video-paper-sasrec", {"ndcg@100": [0.2, 0.4, 0.3, 0.1]})
  make_run(tmp_path, "video-paper-asasrec",
           {"ndcg@100": [0.3, 0.3, 0.3, 0.15]})
  col = table2.column("paper", "video", "ndcg@100", runs.load_runs(
      str(tmp_path)))
  # Means 0.2625 vs 0.25; differences 0.1, -0.1, 0, 0.05: mean 0.0125,
  # sd 0.0854, t = 0.0125 / (0.0854 / 2) = 0.293, 3 df: p = 0.79.
  assert col.best == "asasrec" and not col.significant
  assert col.p_value == pytest.approx(0.7888, abs=1e-4)
  assert "**0.2625**" in table2.markdown(runs.load_runs(str(tmp_path)), [])
  assert "**0.2625**\\*" not in table2.markdown(runs.load_runs(str(tmp_path)),
                                                [])


def test_markdown_has_ours_beside_the_papers_and_says_what_is_missing(tmp_path):
  found = _video_runs(tmp_path)
  md = table2.markdown(found, unavailable=["yelp", "beauty"])
  assert "epoch selected on the test set" in md
  best = found["video-paper-asasrec"].test_metric("ndcg@100")
  assert f"**{best:.4f}**\\* (0.0974)" in md
  sasrec = found["video-paper-sasrec"].test_metric("ndcg@100")
  assert f"| {sasrec:.4f} (0.0853)" in md
  assert "| Yelp | data not available offline |" in md
  assert "| Beauty | data not available offline |" in md
  assert "| MovieLens | not run |" in md
  assert "No runs of this protocol." in md      # the clean one
  # The relative gain: ours from the means, the paper's 0.0974/0.0853 - 1.
  assert f"{100 * (best / sasrec - 1):+.1f} %" in md
  assert "+14.2 %" in md
  # Every claimed ordering holds in these made-up runs, significantly.
  assert md.count("| yes |") == 4


def test_a_claim_that_fails_is_reported(tmp_path):
  _video_runs(tmp_path, asasrec_boost=-0.05)
  md = table2.markdown(runs.load_runs(str(tmp_path)), [])
  assert "ASASRec (Eq. 9) > SASRec" in md and "no, significantly worse" in md


def test_csv_rows(tmp_path):
  found = _video_runs(tmp_path)
  rows = list(csv.DictReader(io.StringIO(table2.csv_text(found, ["yelp"]))))
  video = [r for r in rows if r["dataset"] == "video"]
  assert len(video) == 6 * 2      # 6 rows x (HR@100, NDCG@100)
  best = [r for r in video if r["best"] == "1"]
  assert {r["model"] for r in best} == {"asasrec"}
  assert all(r["significant_vs_second"] == "1" for r in best)
  apr = next(r for r in video if r["model"] == "apr" and
             r["metric"] == "hr@100")
  assert apr["paper"] == "0.2481" and apr["run"] == "video-paper-apr"
  yelp = [r for r in rows if r["dataset"] == "yelp"]
  assert len(yelp) == 12
  # the authors' step is compared with the paper's one ASASRec row
  authors = next(r for r in yelp if r["model"] == "asasrec-authors" and
                 r["metric"] == "ndcg@100")
  assert authors["paper"] == "0.0841"
  assert all(r["ours"] == "data not available offline" for r in yelp)


def test_unreadable_results_name_the_file(tmp_path):
  (tmp_path / "bad").mkdir()
  (tmp_path / "bad" / "results.json").write_text("{oops")
  with pytest.raises(Exception, match="bad/results.json: not a readable"):
    runs.load_runs(str(tmp_path))


def test_p_values_print_readably():
  assert runs.p_text(None) == "—"
  assert runs.p_text(0.0) == "< 1e-300"
  assert runs.p_text(2.2e-6) == "2.2e-06"
  assert runs.p_text(0.0412) == "0.0412"
  # three significant digits, so that a star beside p < 0.05 is visibly right
  assert runs.p_text(0.0498) == "0.0498" and runs.p_text(0.345) == "0.345"


def test_the_archive_keeps_ranks_and_rebuilds_the_same_tables(tmp_path):
  from asasrec_tf.report import runs as runs_module
  from asasrec_tf.evaluation import metrics
  runs_dir = tmp_path / "runs"
  ranks = {"sasrec": [0, 3, 12, 150, 7], "asasrec": [0, 1, 9, 20, 2]}
  for model, r in ranks.items():
    per_user = metrics.per_user(np.array(r), (10, 100))
    make_run(runs_dir, f"video-paper-{model}", per_user)
    # make_run's ranks are zeros: store the real ones, as the evaluator does
    path = runs_dir / f"video-paper-{model}" / "test_per_user.npz"
    np.savez(path, users=np.arange(5), user_ids=np.arange(100, 105),
             ranks=np.array(r), ks=np.array([10, 100]), **per_user)
  found = runs_module.load_runs(str(runs_dir))
  for run in found.values():
    runs_module.archive(run, str(tmp_path / "archive"))
  archived = runs_module.load_runs(str(tmp_path / "archive"))
  with np.load(tmp_path / "archive" / "video-paper-sasrec" /
               "test_per_user.npz") as z:
    assert sorted(z.files) == ["ks", "ranks", "user_ids"]
  # NDCG@10 of ranks 0 3 12 150 7: (1 + 1/log2(5) + 0 + 0 + 1/log2(9)) / 5
  users, ndcg = archived["video-paper-sasrec"].per_user("ndcg@10")
  np.testing.assert_allclose(ndcg.mean(), (1 + 1 / np.log2(5) +
                                           1 / np.log2(9)) / 5)
  assert table2.markdown(archived, []) == table2.markdown(found, [])


def test_clean_protocol_has_its_own_table_without_the_papers_numbers(tmp_path):
  # Selected on validation: the paper's numbers (selected on test) are not
  # comparable, so none is printed beside ours; the @10 columns are added.
  per_user = {"hr@10": [1.0, 0.0, 1.0, 1.0], "ndcg@10": [0.5, 0.0, 0.25, 1.0],
              "hr@100": [1.0, 1.0, 1.0, 1.0],
              "ndcg@100": [0.5, 0.2, 0.25, 1.0]}
  make_run(tmp_path, "video-clean-sasrec", per_user, selected_on="valid")
  better = dict(per_user, **{"ndcg@100": [0.6, 0.3, 0.35, 1.0]})
  make_run(tmp_path, "video-clean-asasrec", better, selected_on="valid")
  md = table2.markdown(runs.load_runs(str(tmp_path)), [])
  clean = md.split("## (b)")[1].split("##")[0]
  assert "| Model | Video HR@10 | Video NDCG@10 | Video HR@100 | " \
         "Video NDCG@100 |" in clean
  # Means: HR@10 3/4 = 0.75; NDCG@10 (0.5 + 0 + 0.25 + 1) / 4 = 0.4375;
  # NDCG@100 SASRec (0.5 + 0.2 + 0.25 + 1) / 4 = 0.4875, ASASRec 0.5625.
  assert "| SASRec | **0.7500** | **0.4375** | **1.0000** | 0.4875 |" in clean
  assert "| ASASRec (Eq. 9) | 0.7500 | 0.4375 | 1.0000 | **0.5625** |" in clean
  assert "(0.0853)" not in clean
  # Differences 0.1, 0.1, 0.1, 0: mean 0.075, sd 0.05, t = 0.075 / (0.05 / 2)
  # = 3.0 with 3 df: p = 0.0577, not significant, so no star.
  assert "Video NDCG@100 ASASRec (Eq. 9) vs SASRec 0.0577" in clean
  assert "**0.5625**\\*" not in clean
  # The gain row names the protocol: 0.5625 / 0.4875 - 1 = +15.4 %.
  assert ("| Video | clean | ASASRec (Eq. 9) | 0.4875 | 0.5625 | +15.4 % | "
          "0.0577 |") in md
  assert "| video-clean-asasrec | 0 + 0 | 0 | no | valid |" in md


def test_bpr_trained_longer_has_its_own_rows_beside_table2s(tmp_path):
  # Table 2's group (200 BPR epochs) and a 1,000-epoch one on ML-1M.
  make_run(tmp_path, "ml-1m-paper-bpr", {"ndcg@100": [0.2, 0.4, 0.3, 0.1]},
           start_epoch=200, epochs_run=100, best_epoch=300)
  make_run(tmp_path, "ml-1m-paper-apr", {"ndcg@100": [0.3, 0.3, 0.3, 0.15]},
           start_epoch=200, epochs_run=100, best_epoch=220)
  make_run(tmp_path, "ml-1m-paper-bpr1000-bpr-pre",
           {"ndcg@100": [0.3, 0.3, 0.3, 0.3]}, epochs_run=1000,
           best_epoch=700)
  make_run(tmp_path, "ml-1m-paper-bpr1000-bpr",
           {"ndcg@100": [0.4, 0.5, 0.4, 0.3]}, init_from=
           "ml-1m-paper-bpr1000-bpr-pre",
           start_epoch=1000, epochs_run=100, best_epoch=1040)
  make_run(tmp_path, "ml-1m-paper-bpr1000-apr",
           {"ndcg@100": [0.2, 0.2, 0.3, 0.1]}, init_from=
           "ml-1m-paper-bpr1000-bpr-pre",
           start_epoch=1000, epochs_run=100, best_epoch=1100)
  md = table2.bpr_schedule_markdown(runs.load_runs(str(tmp_path)))
  # 200: BPR mean 0.25, APR 0.2625, +5.0 %; p 0.789 as in the test above
  # (the same per-user values). Paper: BPR 0.1069, APR 0.1093.
  # Without a pre-run among the runs, the whole run is the continuation.
  assert ("| MovieLens | paper | 200 | 0.2500 | 0.2625 | +5.0 % | 0.789 | "
          "0.2500 / 0.2625 | +5.0 % | 0.789 | "
          "300 of 300 / 220 of 300 | 0.1069 / 0.1093 |") in md
  # 1,000: 0.4 vs 0.2, -50.0 %; differences -0.2, -0.3, -0.1, -0.2: SD
  # sqrt(0.02 / 3) = 0.0816, t = -0.2 / (0.0816 / 2) = -4.90, 3 df: p 0.0163.
  # Whole run: BPR keeps its continuation (0.4 >= the pre-run's 0.3), APR
  # takes the pre-run (0.2 < 0.3): 0.3 / 0.4 - 1 = -25.0 %; differences
  # -0.1, -0.2, -0.1, 0: mean -0.1, SD sqrt(0.02 / 3) = 0.0816,
  # t = -0.1 / (0.0816 / 2) = -2.45, 3 df: p 0.0917.
  assert ("| MovieLens | paper | 1000 | 0.4000 | 0.2000 | -50.0 % | "
          "0.0163 | 0.4000 / 0.3000 | -25.0 % | 0.0917 | "
          "1040 of 1100 / 1100 of 1100 | 0.1069 / 0.1093 |") in md
  assert "## BPR before APR" in table2.markdown(
      runs.load_runs(str(tmp_path)), [])


def test_no_bpr_schedule_section_without_a_longer_group(tmp_path):
  _video_runs(tmp_path)
  assert table2.bpr_schedule_markdown(runs.load_runs(str(tmp_path))) == ""
