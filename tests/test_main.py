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


SMALL = ["--epochs=2", "--eval_every=1", "--synthetic_users=150", "--ks=10",
         "--synthetic_items=80", "--maxlen=10", "--hidden_units=8",
         "--batch_size=64"]


def test_start_says_what_runs_and_a_rerun_is_complete(tmp_path):
  first = run_main(*SMALL, f"--results_dir={tmp_path}")
  assert first.returncode == 0, first.stderr[-2000:]
  for fragment in ("sasrec on synthetic: 150 users, 80 items",
                   "maxlen 10; 2 epochs of 3 steps (batch 64)",  # 150 / 64
                   "devices: CPU (1 replica)", "run directory:"):
    assert fragment in first.stdout, fragment
  # the default name is a function of what defines the run, not the time
  names = os.listdir(tmp_path)
  assert len(names) == 1 and names[0].startswith(
      "synthetic-sasrec-loo_valid-seed0-")
  again = run_main(*SMALL, f"--results_dir={tmp_path}")
  assert again.returncode == 0, again.stderr[-2000:]
  assert "is already complete" in again.stdout
  assert os.path.join(tmp_path, names[0], "results.json") in again.stdout
  assert os.listdir(tmp_path) == names
  other = run_main(*SMALL, "--seed=1", f"--results_dir={tmp_path}")
  assert other.returncode == 0 and len(os.listdir(tmp_path)) == 2


def test_restart_discards_an_unreadable_checkpoint(tmp_path):
  args = [*SMALL, f"--results_dir={tmp_path}", "--run_name=r"]
  out = run_main(*args)
  assert out.returncode == 0, out.stderr[-2000:]
  os.remove(tmp_path / "r" / "results.json")
  (tmp_path / "r" / "checkpoint.json").write_text("{trunc")
  broken = run_main(*args)
  assert broken.returncode == 2
  assert "r/checkpoint.json" in broken.stderr and "--restart" in broken.stderr
  assert "Traceback" not in broken.stderr
  fresh = run_main(*args, "--restart")
  assert fresh.returncode == 0, fresh.stderr[-2000:]
  assert json.load(open(tmp_path / "r" / "results.json"))["epochs_run"] == 2


def test_a_truncated_checkpoint_weights_file_names_the_file(tmp_path):
  args = [*SMALL, "--epochs=3", f"--results_dir={tmp_path}", "--run_name=r"]
  assert run_main(*args).returncode == 0
  os.remove(tmp_path / "r" / "results.json")
  ckpt = json.load(open(tmp_path / "r" / "checkpoint.json"))["weights"]
  with open(tmp_path / "r" / ckpt, "r+b") as f:
    f.truncate(100)
  out = run_main(*args)
  assert out.returncode == 2 and ckpt in out.stderr
  assert "--restart" in out.stderr and "Traceback" not in out.stderr


def test_nothing_to_evaluate_is_refused(tmp_path):
  data = tmp_path / "pairs.txt"
  data.write_text("".join(f"{u} {u % 7 + 1}\n{u} {u % 5 + 9}\n"
                          for u in range(40)))   # two items a user
  out = run_main("--data_path", str(data), "--data_format=sasrec",
                 f"--results_dir={tmp_path / 'runs'}", "--epochs=1")
  assert out.returncode == 2
  assert "no user has a valid item to evaluate" in out.stderr
  assert not os.path.exists(tmp_path / "runs")


def test_a_maxlen_that_cannot_fit_is_refused(tmp_path):
  out = run_main("--maxlen=100000", f"--results_dir={tmp_path}")
  assert out.returncode == 2 and "--maxlen=100000" in out.stderr
  assert "GiB for attention alone" in out.stderr
  assert os.listdir(tmp_path) == []


def test_missing_data_names_both_ways_to_point_at_it(tmp_path):
  env = {**os.environ, "ASASREC_DATA_DIR": str(tmp_path / "nowhere")}
  out = subprocess.run([sys.executable, "-m", "asasrec_tf.main",
                        "--dataset=video", "--download=false",
                        f"--results_dir={tmp_path}"], capture_output=True,
                       text=True, cwd=REPO, timeout=300, env=env)
  assert out.returncode == 2
  assert str(tmp_path / "nowhere" / "video") in out.stderr
  assert "--data_dir or $ASASREC_DATA_DIR" in out.stderr


def test_data_dir_from_the_environment(shared_data):
  env = {**os.environ, "ASASREC_DATA_DIR": shared_data}
  out = subprocess.run([sys.executable, "-m", "asasrec_tf.data",
                        "--dataset=video", "--split=loo", "--download=false"],
                       capture_output=True, text=True, cwd=REPO, timeout=300,
                       env=env)
  assert out.returncode == 0, out.stderr[-2000:]
  assert json.loads(out.stdout)["users"] == 31013
