import os

from asasrec_tf.report import figure2, runs

from tests.report.fake_runs import history, make_run


def _pair_runs(tmp_path):
  one = {"ndcg@100": [0.1, 0.2]}
  make_run(tmp_path, "video-paper-sasrec-pre", one,
           history([0.05, 0.08]), epochs_run=20)
  for model, values in (("sasrec", [0.081, 0.082]),
                        ("asasrec", [0.09, 0.10]),
                        ("asasrec-authors", [0.095, 0.11])):
    make_run(tmp_path, f"video-paper-{model}", one,
             history(values, start=20), start_epoch=20, model="asasrec",
             flags={"init_checkpoint": "x"})
  return runs.load_runs(str(tmp_path))


def test_continuations_are_joined_to_their_pretraining_curve(tmp_path):
  found = _pair_runs(tmp_path)
  curves = figure2.curves(found, "video", "paper", "ndcg@100")
  assert set(curves) == {"sasrec", "asasrec", "asasrec-authors"}
  # Pre-training evaluated at 10 and 20; the continuations number their
  # epochs on from 20, the adversarial ones starting from the last point
  # of the pre-training.
  assert curves["sasrec"] == ([10, 20, 30, 40], [0.05, 0.08, 0.081, 0.082])
  assert curves["asasrec"] == ([20, 30, 40], [0.08, 0.09, 0.10])
  assert curves["asasrec-authors"] == ([20, 30, 40], [0.08, 0.095, 0.11])
  hr = figure2.curves(found, "video", "paper", "hr@100")
  assert hr["asasrec"][1] == [0.16, 0.18, 0.2]


def test_plot_writes_a_png_and_nothing_else(tmp_path):
  found = _pair_runs(tmp_path / "runs")
  out = tmp_path / "out"
  path = figure2.plot(found, "video", str(out))
  assert path == str(out / "figure2_video.png")
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  assert os.listdir(out) == ["figure2_video.png"]
  assert figure2.plot(found, "ml-1m", str(out)) is None
