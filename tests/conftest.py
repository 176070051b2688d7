"""Shared fixtures: the offline data beside the repository, small datasets."""

import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("PYTEST_XDIST_WORKER"):
  # pytest -n N: N workers share the cores; one TensorFlow thread pool each
  # (and in the programs they start) instead of N pools of every core.
  os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
  os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# Before any test makes a tensor: the package chooses TensorFlow's allocator.
importlib.import_module("asasrec_tf")

try:
  import fcntl  # noqa: E402
except ImportError:   # Windows: each pytest worker trains its own set
  fcntl = None

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO), "shared", "data")


def without_tensorflow(tmp_path):
  """An environment in which importing TensorFlow or Keras fails: a
  program run in it shows that it got where it did without them."""
  for name in ("tensorflow", "keras"):
    (tmp_path / "blocked" / name).mkdir(parents=True)
    (tmp_path / "blocked" / name / "__init__.py").write_text(
        f"raise ImportError('{name} was imported')\n")
  return {**os.environ,
          "PYTHONPATH": os.pathsep.join([str(tmp_path / "blocked"), REPO])}


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


FINISHED_MODELS = ("sasrec", "asasrec", "bpr", "apr", "mostpop")


def _train_finished_runs(root):
  import subprocess
  import sys
  # Started together: most of each run is TensorFlow's start-up and
  # tracing, which the cores share better than they take turns at.
  procs = {model: subprocess.Popen(
      [sys.executable, "-m", "asasrec_tf.main", f"--model={model}",
       "--epochs=2", "--eval_every=2", "--synthetic_users=120",
       "--synthetic_items=150", "--maxlen=8", "--hidden_units=16",
       "--batch_size=64", f"--results_dir={root}", f"--run_name={model}"],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
      for model in FINISHED_MODELS}
  for model, proc in procs.items():
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, (model, err[-2000:])


def built_once(tmp_path_factory, name, build):
  """A directory ``name`` filled by ``build(path)`` once for the whole test
  session, and returned read-only to every test that asks.

  Under pytest -n the workers share it: the first to need it builds it
  while holding a lock, the others wait and reuse it (each worker building
  its own cost each of them most of a minute of trained runs)."""
  base = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER") and fcntl is not None:
    base = base.parent        # the directory every worker's basetemp is in
  root = base / name
  with open(base / f"{name}.lock", "w") as lock:
    if fcntl is not None:
      fcntl.flock(lock, fcntl.LOCK_EX)
    if not (base / f"{name}.complete").exists():
      root.mkdir(exist_ok=True)
      build(root)
      (base / f"{name}.complete").write_text("")
  return root


@pytest.fixture(scope="session")
def finished_runs(tmp_path_factory):
  """Short finished runs on synthetic data, one per kind of model; shared,
  read-only (a test that writes into one copies it first)."""
  root = built_once(tmp_path_factory, "finished_runs", _train_finished_runs)
  return {model: str(root / model) for model in FINISHED_MODELS}


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
