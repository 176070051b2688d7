import os
import json
import subprocess
import sys

import numpy as np
import pytest

from asasrec_tf.artifacts import Served
from asasrec_tf.export import export
from asasrec_tf.recommend import recommend


# Runs in a fresh interpreter where importing asasrec_tf is impossible.
LOADER = """
import json, sys
sys.modules["asasrec_tf"] = None
import numpy as np, tensorflow as tf
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = serve(histories=tf.constant(json.loads(sys.argv[2]), tf.int64))
print(json.dumps({k: v.numpy().tolist() for k, v in out.items()}))
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
