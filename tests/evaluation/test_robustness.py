import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from asasrec_tf.data import preprocess, synthetic
from asasrec_tf.evaluation import robustness
from asasrec_tf.evaluation.ranking import RankingEvaluator
from asasrec_tf.models.sasrec import SASRec

from tests.conftest import REPO


def test_row_normalised_scales_rows_and_keeps_padding_and_zero_rows():
  gamma = np.array([[1.0, 1.0], [3.0, 4.0], [0.0, 0.0], [0.0, -2.0]])
  # Row 1: (3, 4) / 5 * 0.5 = (0.3, 0.4); row 3: (0, -1) * 0.5.
  np.testing.assert_allclose(robustness.row_normalised(gamma, 0.5),
                             [[0, 0], [0.3, 0.4], [0, 0], [0, -0.5]],
                             rtol=1e-6)


def _test_loss(model, evaluator, negatives, delta):
  pad = np.zeros_like(evaluator.histories[:, :-1])
  batch = {"inputs": tf.constant(evaluator.histories),
           "positives": tf.constant(np.concatenate(
               [pad, evaluator.targets[:, None]], 1)),
           "negatives": tf.constant(np.concatenate([pad, negatives[:, None]],
                                                   1))}
  d = tf.constant(delta)
  return float(model.sequence_loss(batch, training=False, input_delta=d,
                                   output_delta=d))


@pytest.mark.slow  # trains a model first
def test_worst_case_direction_raises_the_test_loss_more_than_random():
  data = preprocess.preprocess(synthetic.generate(num_users=80, num_items=40,
                                                  seed=3), "s", "loo_valid")
  tf.keras.utils.set_random_seed(0)
  model = SASRec(data.num_items, 6, hidden_units=8, dropout_rate=0.0)
  model.build_for_inputs()
  evaluator = RankingEvaluator(data, "test", 6, ks=(10,), batch_size=16)
  negatives = np.random.default_rng(0).integers(
      1, data.num_items + 1, len(evaluator.users)).astype(np.int32)
  gamma = robustness.worst_case_gradient(model, evaluator, negatives)
  clean = _test_loss(model, evaluator, negatives, np.zeros_like(gamma,
                                                                np.float32))
  eps = 0.05
  worst = _test_loss(model, evaluator, negatives,
                     robustness.row_normalised(gamma, eps))
  rand = _test_loss(model, evaluator, negatives, robustness.row_normalised(
      np.random.default_rng(1).standard_normal(gamma.shape), eps))
  # Gamma is the gradient of the loss summed over the evaluated users (in
  # batches of 16), so a step along it raises the (mean) loss, to first
  # order by eps * sum_i ||Gamma_i|| / n; a random step changes it far less.
  assert worst > clean
  assert worst - clean > 5 * abs(rand - clean)
  first_order = eps * np.linalg.norm(gamma, axis=1).sum() / len(
      evaluator.users)
  assert worst - clean == pytest.approx(first_order, rel=0.2)


def _robustness(run_dir, *args):
  return subprocess.run(
      [sys.executable, "-m", "asasrec_tf.robustness",
       f"--run_dir={run_dir}", *args], capture_output=True, text=True,
      cwd=REPO, timeout=300)


def test_robustness_of_a_finished_run(finished_runs, tmp_path):
  run = str(tmp_path / "asasrec")    # a copy: the shared runs stay as trained
  shutil.copytree(finished_runs["asasrec"], run)
  out = _robustness(run, "--robust_eps=0.5,2")
  assert out.returncode == 0, out.stderr[-2000:]
  with open(os.path.join(run, "robustness.json")) as f:
    rob = json.load(f)
  with open(os.path.join(run, "results.json")) as f:
    res = json.load(f)
  # Unperturbed, the best weights give exactly the recorded test metrics.
  for k, v in res["metrics"]["test"].items():
    assert rob["clean"][k] == pytest.approx(v, abs=1e-9)
  assert set(rob["worst_case"]) == set(rob["random"]) == {"0.5", "2.0"}
  assert rob["worst_case"]["2.0"]["ndcg@100"] < rob["clean"]["ndcg@100"]
  assert 0 < rob["perturbed_rows_worst_case"] <= rob["item_rows"]
  assert rob["mean_item_norm"] > 0


def test_robustness_refuses_other_models_and_bad_input(finished_runs, tmp_path):
  out = _robustness(finished_runs["bpr"])
  assert out.returncode == 2 and "SASRec and ASASRec" in out.stderr
  out = _robustness(tmp_path)
  assert out.returncode == 2 and "results.json does not exist" in out.stderr
  out = _robustness(finished_runs["sasrec"], "--robust_eps=0.1,x")
  assert out.returncode == 2 and "--robust_eps" in out.stderr
  assert not os.path.exists(os.path.join(finished_runs["sasrec"],
                                         "robustness.json"))
