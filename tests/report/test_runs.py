"""asasrec_tf/report/runs.py: archiving a run's small files."""

import json
import os

import numpy as np

from asasrec_tf.report import runs as runs_module
from tests.report.fake_runs import make_run


def _ranked_run(runs_dir, name, ndcg):
  """make_run's run with the ranks and cut-offs an evaluator stores."""
  path = make_run(runs_dir, name, {"ndcg@100": ndcg})
  np.savez(os.path.join(path, "test_per_user.npz"), user_ids=np.arange(len(ndcg)),
           ranks=np.zeros(len(ndcg), np.int64), ks=np.array([10, 100]))
  return path


def test_rearchiving_a_name_drops_the_files_the_new_run_lacks(tmp_path):
  # The first run under the name was attacked (robustness.json); the rerun
  # under the same name was not yet: its archive must not keep the first
  # run's robustness as if it were its own.
  old = _ranked_run(tmp_path / "old", "video-paper-sasrec", [0.1, 0.3])
  with open(os.path.join(old, "robustness.json"), "w") as f:
    json.dump({"weights": "old"}, f)
  archive = tmp_path / "archive"
  runs_module.archive(runs_module.load_runs(str(tmp_path / "old"))
                      ["video-paper-sasrec"], str(archive))
  assert (archive / "video-paper-sasrec" / "robustness.json").is_file()

  new = _ranked_run(tmp_path / "new", "video-paper-sasrec", [0.5, 0.7])
  os.remove(os.path.join(new, "test_per_user.npz"))
  runs_module.archive(runs_module.load_runs(str(tmp_path / "new"))
                      ["video-paper-sasrec"], str(archive))
  assert sorted(os.listdir(archive / "video-paper-sasrec")) == ["results.json"]
  with open(archive / "video-paper-sasrec" / "results.json") as f:
    # the rerun's mean, (0.5 + 0.7) / 2
    assert json.load(f)["metrics"]["test"]["ndcg@100"] == 0.6


def test_archiving_leaves_no_temporary_files(tmp_path):
  run_dir = _ranked_run(tmp_path / "runs", "ml-1m-paper-sasrec", [0.2, 0.4])
  with open(os.path.join(run_dir, "robustness.json"), "w") as f:
    json.dump({}, f)
  target = runs_module.archive(
      runs_module.load_runs(str(tmp_path / "runs"))["ml-1m-paper-sasrec"],
      str(tmp_path / "archive"))
  assert sorted(os.listdir(target)) == ["results.json", "robustness.json",
                                        "test_per_user.npz"]
