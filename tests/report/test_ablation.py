import pytest
from scipy import stats

from asasrec_tf.report import ablation, runs

from tests.report.fake_runs import history, make_run

# Per-user test NDCG@100 of users 100..103 under the paper's protocol.
NDCG = {
    "sasrec": [0.1, 0.2, 0.3, 0.4],                       # mean 0.25
    "asasrec-authors": [0.2, 0.2, 0.4, 0.4],              # mean 0.30
    "ablation-asasrec-authors-two-passes": [0.1, 0.2, 0.3, 0.5],  # 0.275
    "ablation-sasrec-keras-eps": [0.2, 0.2, 0.3, 0.5],    # mean 0.30
    "ablation-asasrec-authors-keras-eps": [0.3, 0.35, 0.4, 0.55],  # 0.40
}


@pytest.fixture
def found(tmp_path):
  make_run(tmp_path, "video-paper-sasrec-pre", {"ndcg@100": [0.1] * 4},
           epochs_run=1000)
  for suffix, values in NDCG.items():
    make_run(tmp_path, f"video-paper-{suffix}",
             {"ndcg@100": values, "hr@100": [1.0, 0.0, 1.0, 1.0]},
             model="asasrec", start_epoch=1000, epochs_run=300)
  return runs.load_runs(str(tmp_path))


def test_gains_and_their_changes_by_hand(found):
  rows = {r.row.run: r for r in ablation.group(found, "video-paper")}
  assert list(rows) == ["sasrec", "asasrec-authors",
                        "ablation-asasrec-authors-two-passes",
                        "ablation-asasrec-authors-keras-eps"]
  authors = rows["asasrec-authors"]
  assert authors.gain == pytest.approx(0.30 / 0.25 - 1)       # +20 %
  assert authors.shift is None
  # (a) changes only the ASASRec arm: gain 0.275 / 0.25 - 1 = +10 %, and
  # its change is 0.275 - 0.30 = -0.025, tested pairwise against the
  # authors' step (differences -0.1, 0, -0.1, 0.1).
  two = rows["ablation-asasrec-authors-two-passes"]
  assert two.gain == pytest.approx(0.10)
  assert two.shift == pytest.approx(-0.025)
  assert two.shift_p == pytest.approx(stats.ttest_rel(
      NDCG["ablation-asasrec-authors-two-passes"],
      NDCG["asasrec-authors"]).pvalue)
  assert two.plain_shift is None
  # epsilon changes both arms: gain 0.40 / 0.30 - 1 = +33.3 %; per user
  # (A_d - S_d) = 0.1 0.15 0.1 0.05 against (A - S) = 0.1 0 0.1 0: the
  # differences 0 0.15 0 0.05 have mean +0.05.
  eps = rows["ablation-asasrec-authors-keras-eps"]
  assert eps.plain_ndcg == pytest.approx(0.30)
  assert eps.gain == pytest.approx(1 / 3)
  assert eps.shift == pytest.approx(0.05)
  assert eps.plain_shift == pytest.approx(0.05)                # 0.30 - 0.25


def test_markdown_says_what_each_difference_did(found):
  md = ablation.markdown(found)
  assert "## Video, paper protocol" in md
  assert "checkpoint of epoch 1000 for 300 epochs" in md
  assert "| (a) two passes |" in md and "+10.0 %" in md and "-0.0250" in md
  assert "+33.3 %" in md and "+0.0500" in md
  assert "SASRec itself moves by +0.0500" in md
  assert "leaves the gain where the authors' step has it" in md


def test_gain_by_a_shorter_budget_comes_from_the_history(tmp_path):
  # SASRec: 0.10 0.10 0.10; ASASRec dips then passes it: 0.05 0.11 0.20
  make_run(tmp_path, "video-paper-sasrec", {"ndcg@100": [0.1, 0.12]},
           history([0.10, 0.10, 0.10], every=50, start=1000),
           start_epoch=1000)
  make_run(tmp_path, "video-paper-asasrec-authors", {"ndcg@100": [0.2, 0.18]},
           history([0.05, 0.11, 0.20], every=50, start=1000),
           start_epoch=1000, model="asasrec")
  found = runs.load_runs(str(tmp_path))
  assert ablation.best_by(found["video-paper-asasrec-authors"], 100) == 0.11
  (authors,) = [r for r in ablation.group(found, "video-paper")
                if r.row.run == "asasrec-authors"]
  # by epoch 1100 the best are 0.11 and 0.10: +10 %; the selected epochs'
  # per-user means are 0.19 and 0.11: +72.7 %
  assert authors.short_gain == pytest.approx(0.10)
  assert authors.gain == pytest.approx(0.19 / 0.11 - 1)


def test_no_gain_by_a_shorter_budget_for_a_run_selected_on_validation(
    tmp_path):
  # Its history records test metrics too (as the runner's does under the
  # clean protocol), but taking their best would select on test.
  make_run(tmp_path, "video-clean-asasrec-authors", {"ndcg@100": [0.2]},
           history([0.05, 0.11], every=50, start=1000), start_epoch=1000,
           selected_on="valid", model="asasrec")
  found = runs.load_runs(str(tmp_path))
  assert ablation.best_by(found["video-clean-asasrec-authors"], 100) is None


def test_no_ablation_runs_no_file(tmp_path):
  make_run(tmp_path, "video-paper-sasrec", {"ndcg@100": [0.1, 0.2]})
  make_run(tmp_path, "video-paper-asasrec-authors", {"ndcg@100": [0.2, 0.18]},
           model="asasrec")
  assert ablation.markdown(runs.load_runs(str(tmp_path))) == ""


def test_every_ablation_run_of_run_all_has_a_row_and_back():
  """The names run_all.sh gives its ablation runs are those the report
  reads: a run without a row would be made and never reported."""
  import pathlib
  import re
  script = (pathlib.Path(__file__).parents[2] / "run_all.sh").read_text()
  def entries(array):
    body = re.search(array + r"=\(\n(.*?)\n\)", script, re.S).group(1)
    return [line.strip().strip('"').split("|")[0] for line in body.splitlines()]
  made = {"ablation-" + name for name in entries("ABLATION_RUNS")}
  for group in entries("ABLATION_GROUPS"):
    made |= {f"ablation-{group}-sasrec", f"ablation-{group}-asasrec-authors"}
  reported = {r.run for r in ablation.ROWS} | {r.plain for r in ablation.ROWS}
  assert made == {r for r in reported if r.startswith("ablation-")}
  assert "ablation-sasrec-lazy-adam" in made
