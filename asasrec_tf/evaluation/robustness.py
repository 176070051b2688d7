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

The command ``python -m asasrec_tf.robustness`` (asasrec_tf/robustness.py)
measures a finished run with it.
"""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np
import tensorflow as tf

from asasrec_tf.data.history import sample_excluding
from asasrec_tf.evaluation.ranking import RankingEvaluator, Scorer, make_scorer
from asasrec_tf.models.sasrec import SASRec


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
                                tf.TensorSpec([None], tf.int32)],
               autograph=False)
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
