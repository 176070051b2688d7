"""Trains and evaluates one model on one dataset.

  python -m asasrec_tf.main                                   # synthetic data
  python -m asasrec_tf.main --dataset=video --data_dir=../shared/data --model=asasrec
  python -m asasrec_tf.main --flagfile=flags/video/asasrec.cfg

Writes <results_dir>/<run_name>/ (results.json, test_per_user.npz, weights,
TensorBoard events) and prints the run directory.
"""

import os
import shutil
import tempfile

# Quieten TensorFlow's C++ start-up banner; must precede the import.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

from asasrec_tf.data import loader  # noqa: E402
from asasrec_tf import artifacts, errors  # noqa: E402
from asasrec_tf.evaluation import protocol  # noqa: E402
from asasrec_tf.models import factory  # noqa: E402
from asasrec_tf.training import distribution, rundir, runner  # noqa: E402

FLAGS = flags.FLAGS


def project_flags():
  """Every flag defined by this package, with its value."""
  out = {}
  for module, module_flags in FLAGS.flags_by_module_dict().items():
    if module.startswith("asasrec_tf") or module == "__main__":
      out.update({f.name: f.value for f in module_flags})
  return dict(sorted(out.items()))


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
  proto = protocol.protocol_from_flags()
  config = runner.config_from_flags()
  factory.check_maxlen_flag(FLAGS.maxlen)
  data = loader.load_from_flags()
  maxlen = factory.resolve_maxlen(FLAGS.maxlen, data)
  keras.utils.set_random_seed(FLAGS.seed)
  if FLAGS.deterministic:
    tf.config.experimental.enable_op_determinism()
  strategy = distribution.make_strategy(FLAGS.distribution)
  with strategy.scope():
    model = factory.build_from_flags(data, maxlen)
  evaluators = protocol.build_evaluators(data, maxlen, proto,
                                         FLAGS.eval_batch_size, FLAGS.eval_seed)
  sampler = factory.build_sampler(FLAGS.model, data, maxlen, FLAGS.batch_size,
                                  FLAGS.seed, FLAGS.length_buckets,
                                  FLAGS.target_first_item)
  name = FLAGS.run_name or rundir.default_name(data.name, FLAGS.model,
                                               data.split, FLAGS.seed)
  # Only the chief of a multi-worker cluster writes the real run directory.
  results_dir = (FLAGS.results_dir if distribution.is_chief()
                 else tempfile.mkdtemp(prefix="asasrec-worker-"))
  resume = rundir.prepare(results_dir, name, project_flags(), FLAGS.resume)
  run_dir = os.path.join(results_dir, name)
  init = None
  if FLAGS.init_checkpoint and isinstance(model, keras.Model) and not resume:
    with strategy.scope():
      init = runner.load_init_checkpoint(model, FLAGS.init_checkpoint,
                                         FLAGS.init_optimizer)
  artifacts.save(run_dir, data, FLAGS.model, maxlen,
                 {k: FLAGS[k].value for k in ("hidden_units", "num_blocks",
                                              "num_heads")})
  print(f"run directory: {run_dir}", flush=True)
  summary = runner.Runner(model, data, sampler, evaluators, run_dir, config,
                          checkpoint_every=FLAGS.checkpoint_every,
                          resume=resume, strategy=strategy, init=init).fit()
  results = {"dataset": data.name, "model": FLAGS.model,
             "flags": project_flags(), "maxlen": maxlen,
             "learning_rate": factory.resolved_lr(FLAGS.model, FLAGS.lr),
             "protocol": proto.as_dict(), "dataset_stats": data.stats(),
             **summary, "versions": runner.versions()}
  print(f"results: {runner.write_results(run_dir, results)}")
  if results_dir != FLAGS.results_dir:
    shutil.rmtree(results_dir, ignore_errors=True)
  print(" ".join(f"test {k} {v:.4f}" for k, v in
                 results["metrics"].get("test", {}).items()))


if __name__ == "__main__":
  errors.run(main)
