import os

from asasrec_tf.report import figure2, runs

from tests.report.fake_runs import history, make_run


def _pair_runs(tmp_path):
  one = {"ndcg@100": [0.1, 0.2]}
  make_run(tmp_path, "video-paper-sasrec-pre", one,
           history([0.05, 0.08]), epochs_run=20)
  make_run(tmp_path, "video-paper-sasrec", one, history([0.081, 0.082]),
           flags={"init_checkpoint": "x"})
  make_run(tmp_path, "video-paper-asasrec", one, history([0.09, 0.10]),
           flags={"init_checkpoint": "x"})
  return runs.load_runs(str(tmp_path))


def test_continuations_are_joined_to_their_pretraining_curve(tmp_path):
  found = _pair_runs(tmp_path)
  curves = figure2.curves(found, "video", "paper", "ndcg@100")
  assert set(curves) == {"SASRec", "ASASRec"}
  # Pre-training evaluated at 10 and 20; the continuations' own epochs 10
  # and 20 are epochs 30 and 40 of the whole, the adversarial one starting
  # from the last point of the pre-training.
  assert curves["SASRec"] == ([10, 20, 30, 40], [0.05, 0.08, 0.081, 0.082])
  assert curves["ASASRec"] == ([20, 30, 40], [0.08, 0.09, 0.10])
  hr = figure2.curves(found, "video", "paper", "hr@100")
  assert hr["ASASRec"][1] == [0.16, 0.18, 0.2]


def test_plot_writes_a_png_and_nothing_else(tmp_path):
  found = _pair_runs(tmp_path / "runs")
  out = tmp_path / "out"
  path = figure2.plot(found, "video", str(out))
  assert path == str(out / "figure2_video.png")
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  assert os.listdir(out) == ["figure2_video.png"]
  assert figure2.plot(found, "ml-1m", str(out)) is None
