"""Trains and evaluates one model on one dataset.

  python -m asasrec_tf.main                                   # synthetic data
  python -m asasrec_tf.main --dataset=video --data_dir=../shared/data --model=asasrec
  python -m asasrec_tf.main --flagfile=flags/video/asasrec.cfg

Writes <results_dir>/<run_name>/ (results.json, test_per_user.npz, weights,
TensorBoard events) and prints the run directory. Rerunning the same command
resumes the run from its last checkpoint, or says it is complete.

TensorFlow is imported only once the flags are parsed, so that --help and a
bad flag answer at once.
"""

import os
import shutil
import tempfile

from absl import flags

from asasrec_tf import cli, errors
from asasrec_tf.choices import SEQUENTIAL

# Quieten TensorFlow's C++ start-up banner; must precede its import.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FLAGS = flags.FLAGS


def define_flags() -> None:
  cli.define_data_flags()
  cli.define_model_flags()
  cli.define_training_flags()
  cli.define_evaluation_flags()
  cli.define_distribution_flags()


def describe(data, maxlen: int, sampler, strategy, run_dir: str) -> str:
  """What is about to run, in a few lines."""
  import tensorflow as tf
  s = data.stats()
  repeats = (f"; {s['repeats']} interactions repeat the previous one"
             f"{' (dropped)' if s['repeats_dropped'] else ' (kept; --drop_repeats drops them)'}"
             if s["repeats"] else "")
  steps = (f"{FLAGS.epochs} epochs of {sampler.steps_per_epoch} steps "
           f"(batch {FLAGS.batch_size})" if sampler else "no training")
  devices = ", ".join(sorted({d.device_type for d in
                              tf.config.list_logical_devices()}))
  return (f"{FLAGS.model} on {data.name}: {s['users']:,} users, "
          f"{s['items']:,} items, {s['interactions']:,} interactions, split "
          f"{data.split}{repeats}\n"
          f"maxlen {maxlen}{_maxlen_note(maxlen)}; "
          f"{steps}; evaluated every {FLAGS.eval_every} epoch"
          f"{'s' if FLAGS.eval_every > 1 else ''} on "
          f"{FLAGS.select_on}, selecting by {FLAGS.select_metric}\n"
          f"devices: {devices} ({strategy.num_replicas_in_sync} replica"
          f"{'s' if strategy.num_replicas_in_sync > 1 else ''})\n"
          f"run directory: {run_dir}")


def _maxlen_note(maxlen: int) -> str:
  if FLAGS.maxlen == "auto":
    return " (auto)"
  if int(FLAGS.maxlen) > maxlen:
    return (f" (--maxlen={FLAGS.maxlen} cut to the longest sequence of the "
            "data)")
  return ""


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
  from asasrec_tf.evaluation import protocol
  from asasrec_tf.training import sizing
  # Everything that can be wrong with the flags and the data is checked
  # before TensorFlow loads (the evaluators import it once they are sure).
  proto = cli.protocol_from_flags()
  sizing.check_maxlen(FLAGS.maxlen)
  data = cli.data_from_flags()
  maxlen = sizing.resolve_maxlen(FLAGS.maxlen, data)
  if FLAGS.model in SEQUENTIAL:
    sizing.check_step_memory(maxlen, FLAGS.batch_size, FLAGS.num_heads,
                             FLAGS.num_blocks)
  evaluators = protocol.build_evaluators(data, maxlen, proto,
                                         FLAGS.eval_batch_size, FLAGS.eval_seed)
  from asasrec_tf.training import distribution, factory, rundir
  config = cli.train_config_from_flags()
  sampler = factory.build_sampler(
      FLAGS.model, data, maxlen, FLAGS.batch_size, FLAGS.seed,
      FLAGS.length_buckets, FLAGS.target_first_item,
      factory.train_negatives(FLAGS.loss, FLAGS.train_negatives))
  flag_values = cli.defined_flags()
  name = FLAGS.run_name or rundir.default_name(
      data.name, FLAGS.model, data.split, FLAGS.seed,
      cli.run_id(rundir.result_flags(flag_values)))
  # Only the chief of a multi-worker cluster writes the real run directory.
  results_dir = (FLAGS.results_dir if distribution.is_chief()
                 else tempfile.mkdtemp(prefix="asasrec-worker-"))
  run_dir = os.path.join(results_dir, name)
  # Before the run directory is locked: joining a cluster can wait long.
  strategy = distribution.make_strategy(FLAGS.distribution,
                                        FLAGS.worker_timeout)
  state = rundir.prepare(results_dir, name, flag_values, FLAGS.resume,
                         FLAGS.restart, data_sha256=data.source_sha256,
                         data_file=data.source_path,
                         defaults={k: FLAGS[k].default for k in flag_values})
  if state == rundir.FINISHED:
    rundir.unlock(run_dir)
    print(f"{run_dir} is already complete: its results are in "
          f"{os.path.join(run_dir, rundir.RESULTS)} (--restart runs it again)")
    return
  try:
    results = train(data, maxlen, proto, config, evaluators, sampler,
                    flag_values, run_dir, state == rundir.RESUME, strategy)
  except BaseException:
    rundir.abandon(run_dir)
    raise
  rundir.unlock(run_dir)
  if results_dir != FLAGS.results_dir:
    shutil.rmtree(results_dir, ignore_errors=True)
  print(" ".join(f"test {k} {v:.4f}" for k, v in
                 results["metrics"].get("test", {}).items()))


def train(data, maxlen, proto, config, evaluators, sampler, flag_values,
          run_dir, resume, strategy):
  """Builds the model, runs it in ``run_dir`` and writes results.json."""
  import keras
  import tensorflow as tf
  from asasrec_tf import artifacts
  from asasrec_tf.training import factory, runner
  keras.utils.set_random_seed(FLAGS.seed)
  if FLAGS.deterministic:
    tf.config.experimental.enable_op_determinism()
  with strategy.scope():
    model = factory.build(data=data, maxlen=maxlen,
                          **cli.model_args_from_flags())
  init = None
  if FLAGS.init_checkpoint and isinstance(model, keras.Model) and not resume:
    with strategy.scope():
      init = runner.load_init_checkpoint(model, FLAGS.init_checkpoint,
                                         FLAGS.init_optimizer)
  artifacts.save(run_dir, data, FLAGS.model, maxlen,
                 {k: FLAGS[k].value for k in ("hidden_units", "num_blocks",
                                              "num_heads", "block")})
  print(describe(data, maxlen, sampler, strategy, run_dir), flush=True)
  summary = runner.Runner(model, data, sampler, evaluators, run_dir, config,
                          checkpoint_every=FLAGS.checkpoint_every,
                          resume=resume, strategy=strategy, init=init,
                          hparams=hparams(flag_values)).fit()
  results = {"dataset": data.name, "model": FLAGS.model,
             "flags": flag_values, "maxlen": maxlen,
             "learning_rate": factory.resolved_lr(FLAGS.model, FLAGS.lr),
             "protocol": proto.as_dict(), "dataset_stats": data.stats(),
             "data_file": data.source_path, "data_sha256": data.source_sha256,
             **summary, "versions": runner.versions(),
             "platform": runner.platform_info()}
  print(f"results: {runner.write_results(run_dir, results)}")
  return results


def hparams(flag_values):
  """The flags that shape a run's results, as TensorBoard HParams values
  (lists joined with commas, None as 'none')."""
  from asasrec_tf.training import rundir
  out = {}
  for name, value in rundir.result_flags(flag_values).items():
    if isinstance(value, (list, tuple)):
      value = ",".join(map(str, value))
    out[name] = "none" if value is None else value
  return out


if __name__ == "__main__":
  cli.run(main, __doc__, define_flags)
