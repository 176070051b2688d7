import os
import json
import subprocess
import sys

import numpy as np
import pytest

from asasrec_tf.artifacts import Served
from asasrec_tf.export import export
from asasrec_tf.recommend import recommend

# End-to-end: left out of the fast tier (pytest -m "not slow").
pytestmark = pytest.mark.slow

# Runs in a fresh interpreter where importing asasrec_tf is impossible.
LOADER = """
import json, sys
sys.modules["asasrec_tf"] = None
import numpy as np, tensorflow as tf
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = serve(histories=tf.constant(json.loads(sys.argv[2]), tf.int64))
result = {k: v.numpy().tolist() for k, v in out.items()}
empty = serve(histories=tf.zeros([0, 5], tf.int64))
result["empty_batch"] = {k: list(v.shape) for k, v in empty.items()}
print(json.dumps(result))
"""


@pytest.mark.parametrize("model", ["sasrec", "bpr", "mostpop"])
def test_saved_model_serves_without_the_package(finished_runs, model, tmp_path):
  export(finished_runs[model], str(tmp_path / "export"), top_n=5)
  # -1 pads on either side; 424242 is unknown and ignored
  histories = [[-1, -1, 3, 7, 424242], [5, 9, 11, -1, -1], [-1, -1, -1, -1, -1]]
  out = subprocess.run([sys.executable, "-c", LOADER, str(tmp_path / "export"),
                        json.dumps(histories)], capture_output=True, text=True,
                       cwd=str(tmp_path), timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  served_out = json.loads(out.stdout)
  # the all-padding row fell back to popularity, and says so
  assert served_out["fallback"] == [False, False, True]
  assert served_out["empty_batch"] == {"count": [0], "items": [0, 0],
                                       "scores": [0, 0], "fallback": [0]}
  served = Served(finished_runs[model])
  for row, history in enumerate(histories):
    ids = [str(i) for i in history if i not in (-1, 424242)]
    expect = recommend(served, history=ids, top_n=5)
    assert served_out["items"][row] == [e["item"] for e in expect["items"]]
    np.testing.assert_allclose(served_out["scores"][row],
                               [e["score"] for e in expect["items"]],
                               rtol=1e-4, atol=1e-5)


def test_too_few_items_left_gives_fewer_never_history_or_padding(
    finished_runs, tmp_path):
  served = Served(finished_runs["sasrec"])
  known = [str(i) for i in served.item_ids[1:].tolist()]
  history = known[:-3]                 # every item but three
  expect = recommend(served, history=history, top_n=10)
  assert len(expect["items"]) == 3
  assert "only 3 items are left outside the history" in expect["notes"][-1]
  export(finished_runs["sasrec"], str(tmp_path / "export"), top_n=10)
  rows = [[int(i) for i in history], [int(known[0])] + [-1] * (len(history) - 1)]
  out = subprocess.run([sys.executable, "-c", LOADER, str(tmp_path / "export"),
                        json.dumps(rows)], capture_output=True, text=True,
                       cwd=str(tmp_path), timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  got = json.loads(out.stdout)
  assert got["count"] == [3, 10]
  # the first row: exactly the three items left, no history item, no pad
  assert got["items"][0][:3] == [e["item"] for e in expect["items"]]
  assert not set(got["items"][0][:3]) & {int(i) for i in history}
  assert -1 not in got["items"][0][:3] and -1 not in got["items"][1]


def test_export_to_a_file_and_corrupt_runs_exit_2(finished_runs, tmp_path):
  import shutil
  target = tmp_path / "a_file"
  target.write_text("x")
  cmd = [sys.executable, "-m", "asasrec_tf.export",
         f"--run_dir={finished_runs['bpr']}", f"--export_dir={target}"]
  from tests.conftest import REPO
  out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO,
                       timeout=300)
  assert out.returncode == 2 and "is a file" in out.stderr
  broken = tmp_path / "run"
  shutil.copytree(finished_runs["bpr"], broken)
  for name, content in (("serving.npz", b"PK\x03\x04trunc"),
                        ("model.json", b'{"model": ')):
    shutil.copy(os.path.join(finished_runs["bpr"], name), broken / name)
    (broken / name).write_bytes(content)
    out = subprocess.run([sys.executable, "-m", "asasrec_tf.recommend",
                          f"--run_dir={broken}", "--history=3"],
                         capture_output=True, text=True, cwd=REPO,
                         timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    assert f"{broken / name}: unreadable" in out.stderr
    assert "Traceback" not in out.stderr
    shutil.copy(os.path.join(finished_runs["bpr"], name), broken / name)


def test_non_finite_weights_are_refused(finished_runs, tmp_path):
  import shutil
  from asasrec_tf.errors import UserError
  from asasrec_tf.training import runner
  broken = tmp_path / "run"
  shutil.copytree(finished_runs["sasrec"], broken)
  served = Served(str(broken))
  served.model.weights[0].assign(np.full(served.model.weights[0].shape,
                                         np.nan, np.float32))
  runner.save_weights(served.model, str(broken / "best.weights.h5"))
  with pytest.raises(UserError, match="weights are not finite"):
    export(str(broken), str(tmp_path / "export"))
  assert not (tmp_path / "export").exists()


def test_a_failed_export_leaves_nothing_and_can_be_retried(
    finished_runs, tmp_path, monkeypatch):
  import errno
  import tensorflow as tf
  from asasrec_tf.errors import UserError
  (tmp_path / "a_file").write_text("x")
  with pytest.raises(UserError, match="cannot write into"):
    export(finished_runs["bpr"], str(tmp_path / "a_file" / "export"))
  real = tf.saved_model.save

  def full_disk(module, path, signatures=None):
    os.makedirs(os.path.join(path, "variables"))
    with open(os.path.join(path, "variables", "part"), "wb") as f:
      f.write(b"half")
    raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(tf.saved_model, "save", full_disk)
  with pytest.raises(UserError, match="No space left on device; nothing was "
                     "written"):
    export(finished_runs["bpr"], str(tmp_path / "export"))
  assert sorted(os.listdir(tmp_path)) == ["a_file"]   # no half-written dir
  monkeypatch.setattr(tf.saved_model, "save", real)
  export(finished_runs["bpr"], str(tmp_path / "export"))
  assert os.path.isfile(tmp_path / "export" / "saved_model.pb")
