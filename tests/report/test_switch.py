import os

import pytest

from asasrec_tf.errors import UserError
from asasrec_tf.report import runs, switch

from tests.report.fake_runs import history, make_run


def _runs(tmp_path):
  one = {"ndcg@100": [0.1, 0.2]}
  # pre-training evaluated every 100 epochs to 1000
  make_run(tmp_path, "video-paper-sasrec-pre", one,
           history([0.01 * i for i in range(1, 11)], every=100))
  for model in ("sasrec", "asasrec-authors"):
    make_run(tmp_path, f"video-paper-{model}", one,
             history([0.2, 0.3, 0.4, 0.5], every=100, start=1000),
             start_epoch=1000, model="asasrec")
  return runs.load_runs(str(tmp_path))


def test_the_window_runs_from_100_before_to_300_after_the_switch(tmp_path):
  epoch, curves = switch.curves(_runs(tmp_path), "video")
  assert epoch == 1000
  # pre points 900 and 1000, then the continuation's 1100..1300 (1400 cut)
  assert curves["sasrec"] == ([900, 1000, 1100, 1200, 1300],
                              [0.09, 0.1, 0.2, 0.3, 0.4])
  assert curves["asasrec-authors"] == ([1000, 1100, 1200, 1300],
                                       [0.1, 0.2, 0.3, 0.4])


def test_authors_logs_are_read_and_bad_lines_named(tmp_path):
  path = tmp_path / "logs.csv"
  path.write_text("# comment\ndataset,phase,epoch,hr@100,ndcg@100,train_loss\n"
                  "video,sasrec,980,0.3,0.0832,0.16\n"
                  "video,asasrec,1000,0.29,0.0760,23.9\n")
  assert switch.load_authors_logs(str(path)) == {
      "video": ([980, 1000], [0.0832, 0.0760])}
  assert switch.load_authors_logs(str(tmp_path / "none.csv")) == {}
  path.write_text("dataset,phase,epoch,hr@100,ndcg@100\nvideo,x,ten,1,1\n")
  with pytest.raises(UserError, match="logs.csv, line 2: expected columns"):
    switch.load_authors_logs(str(path))


def test_the_repositorys_log_file_holds_the_logged_jump():
  from tests.conftest import REPO
  logs = switch.load_authors_logs(os.path.join(REPO, "results",
                                               "authors_logs.csv"))
  video = dict(zip(*logs["video"]))
  # SPEC fact 7: Video 0.0832 at epoch 980 -> 0.0951 at 1040
  assert (video[980], video[1040]) == (0.0832, 0.0951)
  ml = dict(zip(*logs["ml-1m"]))
  assert (ml[980], ml[1020], ml[1060], ml[2000]) == (0.1848, 0.1967, 0.1975,
                                                     0.1441)


def test_plot_writes_a_png(tmp_path):
  found = _runs(tmp_path / "runs")
  path = switch.plot(found, "video", str(tmp_path / "out"),
                     {"video": ([900, 1000, 1100], [0.08, 0.07, 0.09])})
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  assert switch.plot(found, "ml-1m", str(tmp_path / "out"), {}) is None
