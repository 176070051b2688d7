"""Shared fixtures: the offline data beside the repository, small datasets."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("PYTEST_XDIST_WORKER"):
  # pytest -n N: N workers share the cores; one TensorFlow thread pool each
  # (and in the programs they start) instead of N pools of every core.
  os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
  os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO), "shared", "data")


@pytest.fixture
def shared_data():
  """../shared/data; CI sets ASASREC_REQUIRE_SHARED_DATA=1 so that its
  absence fails rather than skips."""
  if not os.path.isdir(SHARED_DATA):
    if os.environ.get("ASASREC_REQUIRE_SHARED_DATA") == "1":
      pytest.fail(f"{SHARED_DATA} is missing")
    pytest.skip(f"{SHARED_DATA} not present")
  return SHARED_DATA


@pytest.fixture
def tiny_dataset():
  """4 users, 6 items, loo_valid; sequences written out in the test below."""
  from asasrec_tf.data import preprocess, readers
  # user 10: 1 2 3 4 5   user 20: 2 3 4   user 30: 6 1   user 40: 3 3 5 6
  users = np.array([10] * 5 + [20] * 3 + [30] * 2 + [40] * 4)
  items = np.array([1, 2, 3, 4, 5, 2, 3, 4, 6, 1, 3, 3, 5, 6])
  return preprocess.preprocess(readers.Interactions(users, items, None),
                               "tiny", "loo_valid")


@pytest.fixture(scope="session")
def finished_runs(tmp_path_factory):
  """Short finished runs on synthetic data, one per kind of model."""
  import subprocess
  import sys
  root = tmp_path_factory.mktemp("runs")
  # Started together: most of each run is TensorFlow's start-up and
  # tracing, which the cores share better than they take turns at.
  procs = {model: subprocess.Popen(
      [sys.executable, "-m", "asasrec_tf.main", f"--model={model}",
       "--epochs=2", "--eval_every=2", "--synthetic_users=120",
       "--synthetic_items=150", "--maxlen=8", "--hidden_units=16",
       "--batch_size=64", f"--results_dir={root}", f"--run_name={model}"],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
      for model in ("sasrec", "asasrec", "bpr", "apr", "mostpop")}
  runs = {}
  for model, proc in procs.items():
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, (model, err[-2000:])
    runs[model] = str(root / model)
  return runs


def pytest_collection_modifyitems(config, items):
  """Tests that need trained runs (the finished_runs fixture trains five)
  are end-to-end: left out of the fast tier, pytest -m "not slow".

  The slow tests run first (in their collected order): with the workers of
  pytest -n sharing the queue, what is left for the end is short tests, so
  no worker waits idle for another's last two-minute run.
  """
  for item in items:
    if "finished_runs" in getattr(item, "fixturenames", ()):
      item.add_marker(pytest.mark.slow)
  items.sort(key=lambda item: item.get_closest_marker("slow") is None)
