import json
import os

from asasrec_tf import robustness
from asasrec_tf.report import robustness_table, runs

from tests.report.fake_runs import make_run


def test_rows_show_each_value_and_its_change_from_clean(tmp_path):
  for model, worst in (("sasrec", 0.1), ("asasrec", 0.15)):
    path = make_run(tmp_path, f"video-paper-{model}", {"ndcg@100": [0.2]})
    with open(os.path.join(path, robustness_table.RESULT), "w") as f:
      json.dump({"clean": {"ndcg@100": 0.2},
                 **({"mean_item_norm": 1.234} if model == "asasrec" else {}),
                 "worst_case": {"0.5": {"ndcg@100": worst}},
                 "random": {"0.5": {"ndcg@100": 0.19}}}, f)
  md = robustness_table.markdown(runs.load_runs(str(tmp_path)))
  # 0.1 / 0.2 - 1 = -50 %; 0.15 / 0.2 - 1 = -25 %; 0.19 / 0.2 - 1 = -5 %.
  assert ("| Video | paper | SASRec | — | 0.2000 | 0.1000 (-50 %) | "
          "0.1900 (-5 %) |") in md
  assert ("| Video | paper | ASASRec (Eq. 9) | 1.23 | 0.2000 | 0.1500 (-25 %) |"
          in md)
  assert "worst case ε=0.5 | random ε=0.5" in md


def test_nothing_measured_gives_no_table(tmp_path):
  make_run(tmp_path, "video-paper-sasrec", {"ndcg@100": [0.2]})
  assert robustness_table.markdown(runs.load_runs(str(tmp_path))) == ""


def test_the_file_name_is_the_one_the_measurement_writes():
  assert robustness_table.RESULT == robustness.RESULT
