"""Robustness of a trained sequential model to perturbed item embeddings.

The paper motivates SAO by robustness but never measures it. This module
evaluates a run's best weights on the test items with the item embedding
table E (shared by input and output) replaced by E + Delta, for

  worst case  Delta = eps * Gamma / ||Gamma|| per row, Gamma = dL/dE, where L
              is the training loss (Eq. 5) of every test user's held-out item
              against one sampled negative, dropout off: the fast-gradient
              direction ASASRec's adversary uses, aimed at the test items
              (rows with no gradient stay unperturbed);
  random      every item row moved by a uniformly random direction of
              norm eps.

  python -m asasrec_tf.evaluation.robustness --run_dir=results/runs/video-paper-asasrec

writes ``robustness.json`` into the run directory (atomically).
"""

from __future__ import annotations

import json
import os
from typing import Dict, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

from asasrec_tf import artifacts, errors  # noqa: E402
from asasrec_tf.data import loader  # noqa: E402
from asasrec_tf.data.dataset import SequenceDataset, atomic_write_text  # noqa: E402
from asasrec_tf.data.sampler import sample_excluding  # noqa: E402
from asasrec_tf.evaluation.ranking import RankingEvaluator, Scorer, make_scorer  # noqa: E402
from asasrec_tf.models.sasrec import SASRec  # noqa: E402

flags.DEFINE_list("robust_eps", ["0.1", "0.5", "1.0"],
                  "Perturbation sizes epsilon of the robustness evaluation.")
flags.DEFINE_integer("robust_seed", 0, "Seed of the sampled negatives and of "
                     "the random perturbation.")

FLAGS = flags.FLAGS
RESULT = "robustness.json"


def worst_case_gradient(model: SASRec, evaluator: RankingEvaluator,
                        negatives: np.ndarray) -> np.ndarray:
  """[I + 1, d] Gamma: gradient of the summed test loss w.r.t. the table.

  Args:
    model: a SASRec (or ASASRec) with its weights.
    evaluator: the test evaluator (its users' histories and targets).
    negatives: [n] one negative item per evaluated user.
  """

  @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32),
                                tf.TensorSpec([None], tf.int32),
                                tf.TensorSpec([None], tf.int32)])
  def batch_gradient(histories, targets, negs):
    pad = tf.zeros_like(histories[:, :-1])
    batch = {"inputs": histories,
             "positives": tf.concat([pad, targets[:, None]], axis=1),
             "negatives": tf.concat([pad, negs[:, None]], axis=1)}
    zero = tf.zeros_like(model.item_table)
    with tf.GradientTape() as tape:
      tape.watch(zero)
      # Mean over the batch's users; times their number below = a sum.
      loss = model.sequence_loss(batch, training=False, input_delta=zero,
                                 output_delta=zero)
    return tf.convert_to_tensor(tape.gradient(loss, zero))

  gamma = np.zeros(model.item_table.shape, np.float64)
  for rows, histories in evaluator.batches():
    g = batch_gradient(histories, evaluator.targets[rows], negatives[rows])
    gamma += g.numpy().astype(np.float64) * len(rows)
  return gamma


def row_normalised(directions: np.ndarray, eps: float) -> np.ndarray:
  """Each row scaled to norm ``eps``; zero rows (and padding row 0) stay 0."""
  norms = np.linalg.norm(directions, axis=1, keepdims=True)
  out = np.where(norms > 0, directions / np.maximum(norms, 1e-30), 0.0) * eps
  out[0] = 0.0
  return out.astype(np.float32)


def evaluate_perturbed(model: SASRec, evaluator: RankingEvaluator,
                       scorer: Scorer, delta: np.ndarray) -> Dict[str, float]:
  """Test metrics of ``scorer`` (``model``'s) with ``delta`` added to the item
  table (then restored)."""
  table = model.item_table
  original = table.numpy()
  try:
    table.assign(original + delta)
    result = evaluator.evaluate(scorer)
  finally:
    table.assign(original)
  return result.metrics()


def measure(model: SASRec, evaluator: RankingEvaluator,
            epsilons: Sequence[float], seed: int = 0) -> Dict[str, object]:
  """Clean, worst-case and random metrics of ``evaluator``'s (test) users
  for each epsilon."""
  rng = np.random.default_rng(seed)
  negatives = sample_excluding(rng, evaluator.exclusion_keys(),
                               evaluator.users,
                               evaluator.num_items).astype(np.int32)
  gamma = worst_case_gradient(model, evaluator, negatives)
  random_dirs = rng.standard_normal(gamma.shape)
  zero = np.zeros(gamma.shape, np.float32)
  scorer = make_scorer(model)  # traced once, reused for every perturbation
  out = {"clean": evaluate_perturbed(model, evaluator, scorer, zero),
         "worst_case": {}, "random": {},
         "perturbed_rows_worst_case": int((np.abs(gamma[1:]).sum(1) > 0).sum()),
         "item_rows": int(evaluator.num_items),
         # eps is absolute: read it against the size of the rows it moves.
         "mean_item_norm": float(np.linalg.norm(
             model.item_table.numpy()[1:], axis=1).mean())}
  for eps in epsilons:
    out["worst_case"][str(eps)] = evaluate_perturbed(
        model, evaluator, scorer, row_normalised(gamma, eps))
    out["random"][str(eps)] = evaluate_perturbed(
        model, evaluator, scorer, row_normalised(random_dirs, eps))
  return out


def load_run_data(results: Dict[str, object]) -> SequenceDataset:
  """The dataset a run was trained on, from its recorded flags."""
  f = results["flags"]
  return loader.load(
      dataset=f["dataset"], data_dir=f["data_dir"], data_path=f["data_path"],
      data_format=f["data_format"], split=f["split"],
      min_item_interactions=f["min_item_interactions"],
      cache_dir=f["cache_dir"] or None, allow_download=False,
      synthetic_users=f["synthetic_users"],
      synthetic_items=f["synthetic_items"], synthetic_seed=f["synthetic_seed"])


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS.run_dir:
    raise errors.UserError("--run_dir is required")
  try:
    epsilons = [float(e) for e in FLAGS.robust_eps]
  except ValueError:
    raise errors.UserError("--robust_eps must be a comma-separated list of "
                           f"numbers, got {','.join(FLAGS.robust_eps)}") from None
  path = os.path.join(FLAGS.run_dir, "results.json")
  if not os.path.isfile(path):
    raise errors.UserError(f"--run_dir: {path} does not exist (is the run "
                           "finished?)")
  with open(path) as f:
    results = json.load(f)
  if results["model"] not in ("sasrec", "asasrec"):
    raise errors.UserError(f"--run_dir: robustness is measured for SASRec and "
                           f"ASASRec runs, this is a {results['model']} run")
  served = artifacts.Served(FLAGS.run_dir)
  f = results["flags"]
  # The run's own test evaluation, from the flags it recorded.
  evaluator = RankingEvaluator(
      load_run_data(results), "test", served.maxlen, f["candidates"],
      f["num_negatives"], f["negative_sampling"], [int(k) for k in f["ks"]],
      f["eval_batch_size"], f["eval_seed"])
  out = {"run": os.path.basename(os.path.normpath(FLAGS.run_dir)),
         "dataset": results["dataset"], "model": results["model"],
         "protocol": results["protocol"], "seed": FLAGS.robust_seed,
         **measure(served.model, evaluator, epsilons, FLAGS.robust_seed)}
  target = os.path.join(FLAGS.run_dir, RESULT)
  atomic_write_text(target, json.dumps(out, indent=1) + "\n")
  print(f"robustness: {target}")
  print(f"clean {_headline(out['clean'])}; worst case "
        + ", ".join(f"eps {e}: {_headline(m)}"
                    for e, m in out["worst_case"].items()))


def _headline(m: Dict[str, float]) -> str:
  key = "ndcg@100" if "ndcg@100" in m else sorted(m)[-1]
  return f"{key} {m[key]:.4f}"


if __name__ == "__main__":
  errors.run(main)
