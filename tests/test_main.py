"""The command line end to end, in a subprocess as a user runs it."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


def run_main(*args, cwd=REPO):
  return subprocess.run([sys.executable, "-m", "asasrec_tf.main", *args],
                        capture_output=True, text=True, cwd=cwd, timeout=300)


def test_synthetic_run_writes_results_json(tmp_path):
  out = run_main("--model=asasrec", "--epochs=2", "--eval_every=1",
                 "--synthetic_users=200", "--synthetic_items=150", "--maxlen=10",
                 "--batch_size=64", "--hidden_units=16", "--pretrain_epochs=1",
                 f"--results_dir={tmp_path}", "--run_name=r")
  assert out.returncode == 0, out.stderr[-2000:]
  assert "epoch    2 |" in out.stdout and "best epoch" in out.stdout
  res = json.load(open(tmp_path / "r" / "results.json"))
  for key in ("dataset", "model", "flags", "protocol", "selected_on",
              "best_epoch", "epochs_run", "metrics", "timing", "versions"):
    assert key in res, key
  assert res["dataset"] == "synthetic" and res["model"] == "asasrec"
  assert res["flags"]["adv_eps"] == 0.5 and res["flags"]["maxlen"] == "10"
  assert res["flags"]["split"] == "loo_valid"  # data flags are recorded too
  assert res["protocol"]["ks"] == [10, 100]
  assert set(res["metrics"]["test"]) == {"hr@10", "ndcg@10", "hr@100",
                                         "ndcg@100"}
  assert res["epochs_run"] == 2 and res["selected_on"] == "valid"
  assert res["timing"]["train_seconds_per_epoch"] > 0
  assert res["timing"]["eval_seconds"] > 0
  assert "tensorflow" in res["versions"]


@pytest.mark.parametrize("args,fragment", [
    (["--model=gru4rec"], "flag --model=gru4rec"),
    (["--epochs=-1"], "flag --epochs=-1"),
    (["--maxlen=0"], "--maxlen must be a positive integer"),
    (["--adv_eps=-0.5"], "flag --adv_eps=-0.5"),
    (["--select_on=test"], "--select_on=test is only allowed with --split=loo"),
    (["--ks=10,abc"], "--ks must be a comma-separated list"),
    (["--ks=500", "--select_metric=ndcg@500", "--synthetic_items=50"],
     "K=500 is larger than the 50"),
])
def test_bad_flags_exit_2_naming_the_flag(tmp_path, args, fragment):
  out = run_main(*args, f"--results_dir={tmp_path}", "--epochs=1"
                 if "--epochs=-1" not in args else "--eval_every=1")
  assert out.returncode == 2, out.stderr[-2000:]
  assert fragment in out.stderr
  assert "Traceback" not in out.stderr
  assert not os.listdir(tmp_path)  # nothing half-written
