"""Whole runs as processes: determinism, SIGKILL and resume, divergence."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, built_once

# End-to-end: left out of the fast tier (pytest -m "not slow").
pytestmark = pytest.mark.slow

ARGS = ["--model=asasrec", "--epochs=10", "--eval_every=2",
        "--pretrain_epochs=3", "--synthetic_users=400", "--synthetic_items=80",
        "--maxlen=12", "--batch_size=16", "--hidden_units=16", "--ks=10,50",
        "--deterministic"]


def command(results_dir, *extra):
  return [sys.executable, "-m", "asasrec_tf.main", *ARGS,
          f"--results_dir={results_dir}", "--run_name=r", *extra]


def run(results_dir, *extra):
  out = subprocess.run(command(results_dir, *extra), capture_output=True,
                       text=True, cwd=REPO, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  with open(os.path.join(results_dir, "r", "results.json")) as f:
    return json.load(f), out.stdout


def kill_after_first_checkpoint(results_dir, max_delay=0.0):
  """Starts a run, SIGKILLs it up to ``max_delay`` s after its first
  checkpoint; returns the epoch of the checkpoint it left."""
  state = results_dir / "r" / "checkpoint.json"
  proc = subprocess.Popen(command(results_dir), cwd=REPO,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while not state.exists() and time.time() < deadline:
    time.sleep(0.05)
  assert state.exists(), "no checkpoint was written"
  time.sleep(random.Random(os.getpid()).uniform(0.0, max_delay))
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert not (results_dir / "r" / "results.json").exists(), "killed too late"
  return json.loads(state.read_text())["epoch"]


def tensorboard_steps(run_dir, tag):
  from tensorboard.backend.event_processing import event_accumulator
  acc = event_accumulator.EventAccumulator(str(run_dir))
  acc.Reload()
  return [e.step for e in acc.Tensors(tag)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  results_dir = built_once(tmp_path_factory, "reliability_reference", run)
  with open(results_dir / "r" / "results.json") as f:
    return json.load(f)


def test_deterministic_runs_are_identical(reference, tmp_path):
  again, _ = run(tmp_path)
  assert again["metrics"] == reference["metrics"]
  assert [h["train"] for h in again["history"]] == [
      h["train"] for h in reference["history"]]


def test_sigkill_then_resume_matches_the_uninterrupted_run(reference, tmp_path):
  killed_after = kill_after_first_checkpoint(tmp_path, max_delay=1.0)

  resumed, stdout = run(tmp_path)
  assert f"resuming {tmp_path}/r after epoch {killed_after}" in stdout
  for target in ("valid", "test"):
    for name, value in reference["metrics"][target].items():
      assert abs(resumed["metrics"][target][name] - value) <= 1e-6, name
  assert resumed["best_epoch"] == reference["best_epoch"]
  assert resumed["epochs_run"] == 10
  # every epoch logged exactly once, whatever was written after the checkpoint
  assert tensorboard_steps(tmp_path / "r", "train/loss") == list(range(1, 11))


def test_changed_flags_are_refused_on_resume(tmp_path):
  kill_after_first_checkpoint(tmp_path)
  out = subprocess.run(command(tmp_path, "--adv_eps=0.1"), capture_output=True,
                       text=True, cwd=REPO, timeout=300)
  assert out.returncode == 2
  assert "--adv_eps (checkpoint: 0.5, now: 0.1)" in out.stderr


def test_divergence_exits_3_naming_epoch_and_step(tmp_path):
  out = subprocess.run(command(tmp_path, "--lr=1e30"), capture_output=True,
                       text=True, cwd=REPO, timeout=300)
  assert out.returncode == 3
  assert "non-finite loss at epoch 1, step" in out.stderr
  assert "Traceback" not in out.stderr
  # it failed before its first checkpoint: no directory, no empty .lock
  assert not (tmp_path / "r").exists()
