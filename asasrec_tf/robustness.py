"""Measures how robust a finished SASRec or ASASRec run is to perturbed item
embeddings (see asasrec_tf/evaluation/robustness.py for what is measured).

  python -m asasrec_tf.robustness --run_dir=results/runs/video-paper-asasrec

writes ``robustness.json`` into the run directory (atomically).
"""

from __future__ import annotations

import json
import os
from typing import Dict

from absl import flags

from asasrec_tf import cli, errors
from asasrec_tf.fileio import atomic_write_text
from asasrec_tf.report.robustness_table import RESULT

# Quieten TensorFlow's C++ start-up banner; must precede its import (in main).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FLAGS = flags.FLAGS


def define_flags() -> None:
  cli.define_flag("Serving", "string", "run_dir", None,
                  "A finished SASRec or ASASRec run directory.")
  g = "Robustness"
  cli.define_flag(g, "list", "robust_eps", ["0.1", "0.5", "1.0"],
                  "Perturbation sizes epsilon of the robustness evaluation.")
  cli.define_flag(g, "integer", "robust_seed", 0, "Seed of the sampled "
                  "negatives and of the random perturbation.")


def load_run_data(results: Dict[str, object]):
  """The SequenceDataset a run was trained on, from its recorded flags."""
  from asasrec_tf.data import loader
  f = results["flags"]
  return loader.load(
      dataset=f["dataset"], data_dir=f["data_dir"], data_path=f["data_path"],
      data_format=f["data_format"], split=f["split"],
      min_item_interactions=f["min_item_interactions"],
      cache_dir=f["cache_dir"] or None, allow_download=False,
      synthetic_users=f["synthetic_users"],
      synthetic_items=f["synthetic_items"], synthetic_seed=f["synthetic_seed"],
      drop_repeats=f.get("drop_repeats", False))


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
  from asasrec_tf import artifacts
  from asasrec_tf.evaluation.ranking import RankingEvaluator
  from asasrec_tf.evaluation.robustness import measure
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
  cli.run(main, __doc__, define_flags)
