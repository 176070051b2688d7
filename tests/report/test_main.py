import os
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.report.fake_runs import history, make_run

# End-to-end: left out of the fast tier (pytest -m "not slow").
pytestmark = pytest.mark.slow


def _report(*args):
  return subprocess.run([sys.executable, "-m", "asasrec_tf.report", *args],
                        capture_output=True, text=True, cwd=REPO, timeout=120)


def test_report_writes_tables_and_figure(tmp_path):
  runs_dir = tmp_path / "runs"
  make_run(runs_dir, "video-paper-sasrec-pre", {"ndcg@100": [0.1, 0.3]},
           history([0.1, 0.2]))
  make_run(runs_dir, "video-paper-sasrec", {"ndcg@100": [0.1, 0.3]},
           history([0.2, 0.2]))
  out = _report(f"--runs_dir={runs_dir}", f"--out_dir={tmp_path / 'out'}",
                "--unavailable=yelp")
  assert out.returncode == 0, out.stderr
  assert sorted(os.listdir(tmp_path / "out")) == [
      "figure2_video.png", "table2.csv", "table2.md"]
  md = (tmp_path / "out" / "table2.md").read_text()
  assert "| Yelp | data not available offline |" in md
  assert "**0.2000** (0.0853)" in md


def test_report_errors_name_the_problem(tmp_path):
  out = _report(f"--runs_dir={tmp_path / 'nope'}")
  assert out.returncode == 2 and "is not a directory" in out.stderr
  (tmp_path / "r").mkdir()
  (tmp_path / "r" / "results.json").write_text("[]")
  out = _report(f"--runs_dir={tmp_path}", f"--out_dir={tmp_path / 'out'}")
  assert out.returncode == 2 and "r/results.json: expected a JSON object" in \
      out.stderr
  assert not os.path.exists(tmp_path / "out")


def test_an_empty_per_user_file_is_named(tmp_path):
  runs_dir = tmp_path / "runs"
  for model in ("sasrec", "asasrec"):
    make_run(runs_dir, f"video-paper-{model}", {"ndcg@100": [0.1, 0.3]},
             history([0.1, 0.2]))
  empty = runs_dir / "video-paper-asasrec" / "test_per_user.npz"
  empty.write_bytes(b"")
  out = _report(f"--runs_dir={runs_dir}", f"--out_dir={tmp_path / 'out'}")
  assert out.returncode == 2, out.stderr[-2000:]
  assert f"{empty}: cannot read per-user" in out.stderr
  assert "Traceback" not in out.stderr
