import json
import os
import socket
import subprocess
import sys

import pytest

from tests.conftest import REPO

# End-to-end: left out of the fast tier (pytest -m "not slow").
pytestmark = pytest.mark.slow

HELPER = os.path.join(os.path.dirname(__file__), "distributed_step.py")


@pytest.mark.parametrize("model", ["asasrec", "apr"])
def test_mirrored_step_equals_single_device_step(model):
  """Two logical CPUs: same loss and updated weights to 1e-5."""
  out = subprocess.run([sys.executable, HELPER, model], capture_output=True,
                       text=True, cwd=REPO, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  diffs = json.loads(out.stdout.strip().splitlines()[-1])
  assert diffs["replicas"] == 2
  assert diffs["loss"] <= 1e-5 and diffs["weights"] <= 1e-5
  assert diffs["moved"] > 1e-4  # the step changed the weights


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_workers_on_loopback_complete_a_short_training(tmp_path):
  ports = [_free_port(), _free_port()]
  procs = []
  for index in range(2):
    env = dict(os.environ, TF_CONFIG=json.dumps({
        "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
        "task": {"type": "worker", "index": index}}))
    procs.append(subprocess.Popen(
        [sys.executable, "-m", "asasrec_tf.main", "--distribution=multi_worker",
         "--model=asasrec", "--epochs=2", "--eval_every=1",
         "--synthetic_users=100", "--synthetic_items=150", "--maxlen=8",
         "--hidden_units=16", "--batch_size=32", f"--results_dir={tmp_path}",
         "--run_name=r"], cwd=REPO, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True))
  outputs = []
  try:
    for proc in procs:
      outputs.append(proc.communicate(timeout=400)[0])
  finally:
    for proc in procs:
      proc.kill()
  for proc, output in zip(procs, outputs):
    assert proc.returncode == 0, output[-3000:]
  # only the chief wrote the run directory; both saw the same metrics
  results = json.load(open(tmp_path / "r" / "results.json"))
  assert results["epochs_run"] == 2 and results["flags"]["distribution"] == (
      "multi_worker")
  # Each worker's metrics line (gRPC may log its teardown after it, when the
  # other worker has already gone).
  metrics = [[line for line in o.splitlines() if line.startswith("test hr@")]
             for o in outputs]
  assert len(metrics[0]) == len(metrics[1]) == 1
  assert metrics[0] == metrics[1]


def _lonely_worker(tmp_path, *extra):
  """A worker whose one peer never starts."""
  ports = [_free_port(), _free_port()]
  env = dict(os.environ, TF_CONFIG=json.dumps({
      "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
      "task": {"type": "worker", "index": 0}}))
  proc = subprocess.Popen(
      [sys.executable, "-m", "asasrec_tf.main", "--distribution=multi_worker",
       "--epochs=1", "--synthetic_users=100", "--hidden_units=8",
       f"--results_dir={tmp_path}", "--run_name=r", *extra], cwd=REPO, env=env,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  return proc, ports


def test_an_unreachable_worker_is_named_after_the_timeout(tmp_path):
  proc, ports = _lonely_worker(tmp_path, "--worker_timeout=3")
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 2, err[-2000:]
  assert f"waiting for worker 1 at 127.0.0.1:{ports[1]}" in err
  assert (f"gave up after 3 s waiting for worker 1 at 127.0.0.1:{ports[1]} "
          "(not reachable)") in err
  assert "Traceback" not in err
  assert os.listdir(tmp_path) == []   # no run directory, no lock held


def test_a_worker_waiting_for_its_peers_stops_on_sigterm(tmp_path):
  import signal
  import time
  proc, _ = _lonely_worker(tmp_path)
  deadline = time.time() + 120
  line = ""
  while "waiting for worker 1" not in line:
    assert time.time() < deadline and proc.poll() is None
    line = proc.stderr.readline()
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=30)
  assert proc.returncode == 143, err[-2000:]
  assert "terminated" in err and "Traceback" not in err
  assert os.listdir(tmp_path) == []
