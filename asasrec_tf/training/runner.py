"""The fit loop shared by every model.

Each epoch draws fresh negatives, runs the model's ``train_step`` compiled
once as a ``tf.function`` with a fixed input signature, and logs the losses.
The steps' Python branches depend on configuration only, never on a tensor,
so they are traced without AutoGraph: about a sixth less tracing time, and a
trace never rereads source files that may have changed since the run began.
Every ``--eval_every`` epochs the selection target (validation, or test under
the paper's protocol) is evaluated; when it improves, the test item is
evaluated too, the best weights are written and the per-user test metrics
kept. The run directory ends up with ``results.json``,
``test_per_user.npz``, ``best.weights.h5``, ``last.weights.h5``, TensorBoard
events and a resumable checkpoint (see checkpoint.py) written every
``--checkpoint_every`` epochs; every file is written atomically.

The TensorBoard events sit in the run directory itself, so that
``tensorboard --logdir results/runs`` names each run by its directory; they
hold the losses, the learning rate, epoch times, every evaluation, the
metrics of the epoch selected so far (``selected/<target>/<metric>``) and,
when the caller gives them, the run's hyperparameters for the HParams
dashboard, which then lists every run with its flags and selected metrics.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import platform
import statistics
import sys
import time
from typing import Dict, Optional

import keras
import numpy as np
import tensorflow as tf

from asasrec_tf.data.dataset import SequenceDataset
from asasrec_tf.fileio import atomic_write_bytes, atomic_write_text
from asasrec_tf.errors import TrainingError, UserError
from asasrec_tf.evaluation.ranking import EvalResult, RankingEvaluator, make_scorer
from asasrec_tf.training import checkpoint

@dataclasses.dataclass
class TrainConfig:
  epochs: int = 200
  eval_every: int = 10
  pretrain_epochs: int = 0
  patience: int = 0
  select_on: str = "valid"
  select_metric: str = "ndcg@10"


def compile_steps(model, sampler, strategy=None):
  """(plain step, model's step) as tf.functions of one signature: the
  model's own ``train_step``, and its ``plain_step`` for the epochs before
  an adversary is switched on (the same step for models without one).

  Under a tf.distribute strategy each step runs on every replica and the
  logged losses are summed over replicas (each replica's loss is already a
  share of the global batch's).
  """
  if strategy is None or not distributed(strategy):
    spec = [sampler.element_spec()]
    return (tf.function(model.plain_step, input_signature=spec,
                        autograph=False),
            tf.function(model.train_step, input_signature=spec,
                        autograph=False))
  spec = [strategy.experimental_distribute_dataset(
      sampler.dataset(0)).element_spec]

  def replicated(fn):
    def step(batch):
      per_replica = strategy.run(fn, args=(batch,))
      return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
              for k, v in per_replica.items()}
    return tf.function(step, input_signature=spec, autograph=False)

  return replicated(model.plain_step), replicated(model.train_step)


_DEFAULT_STRATEGY = type(tf.distribute.get_strategy())


def distributed(strategy) -> bool:
  """Whether ``strategy`` is a real tf.distribute strategy (not the default)."""
  return strategy is not None and not isinstance(strategy, _DEFAULT_STRATEGY)


def save_weights(model: keras.Model, path: str) -> None:
  """Writes the model's weights and optimizer state to ``path``
  (.weights.h5) atomically.

  The HDF5 image is built in memory and written as one block of bytes, so
  that a failing write (a full disk, a file-size limit) is an ordinary
  OSError, reported as WriteError, and never reaches h5py, which crashes the
  process on one.
  """
  atomic_write_bytes(path, weights_image(model))


def weights_image(model: keras.Model) -> bytes:
  """The bytes ``model.save_weights`` would write to a .weights.h5 file."""
  from keras.src.saving import saving_lib
  buffer = io.BytesIO()
  store = saving_lib.H5IOStore(buffer, mode="w")
  try:
    saving_lib._save_state(model, weights_store=store, assets_store=None,  # pylint: disable=protected-access
                           inner_path="", visited_saveables=set())
  finally:
    store.close()
  return buffer.getvalue()


def load_init_checkpoint(model: keras.Model, where: str,
                         optimizer: bool = True) -> Dict[str, object]:
  """Initialises ``model`` from a previous run (see --init_checkpoint).

  Args:
    model: a compiled model whose optimizer is built.
    where: a run directory (its last checkpoint: weights, optimizer and
      dropout RNG state, and its epoch) or a .weights.h5 file.
    optimizer: keep the loaded optimizer state; False resets it to that of
      a fresh optimizer. Either way the learning rate stays this model's
      (Keras saves it with the optimizer's variables).

  Returns:
    {'path': weights file, 'epoch': the epoch the new run numbers on from
    (0 for a bare file), 'optimizer': ``optimizer``}.
  """
  fresh = [np.array(v.numpy()) for v in model.optimizer.variables]
  learning_rate = np.array(model.optimizer.learning_rate.numpy())
  payload = None
  if os.path.isdir(where):
    try:
      payload = checkpoint.read(where)
    except checkpoint.UnreadableCheckpoint as e:
      raise UserError(f"--init_checkpoint: {e}") from None
    if payload is None:
      raise UserError(f"--init_checkpoint: {where} holds no checkpoint "
                      f"({checkpoint.STATE}); pass a .weights.h5 file such "
                      f"as {os.path.join(where, 'best.weights.h5')} instead")
    path = checkpoint.weights_path(where, payload)
  else:
    path = where
  if not os.path.isfile(path):
    raise UserError(f"--init_checkpoint: no weights at {path}")
  try:
    model.load_weights(path)
  except OSError as e:
    raise UserError(f"--init_checkpoint: {path} is not a readable weights "
                    f"file (truncated or corrupt?): {e}") from None
  except (ValueError, KeyError) as e:
    raise UserError(f"--init_checkpoint: {path} does not fit this model "
                    f"(same --hidden_units, --num_blocks, --maxlen and dataset "
                    f"are needed): {e}") from None
  if payload is not None:
    checkpoint.restore_rng(model, payload)
  if not optimizer:
    for var, value in zip(model.optimizer.variables, fresh):
      var.assign(value)
  model.optimizer.learning_rate.assign(learning_rate)
  return {"path": path, "epoch": int(payload["epoch"]) if payload else 0,
          "optimizer": optimizer}


class Runner:
  """Trains ``model`` and evaluates it, writing everything into ``run_dir``.

  ``sampler`` is a TrainingSampler or PairSampler (None for MostPop): it
  provides ``dataset(epoch)``, ``steps_per_epoch`` and ``element_spec()``.
  With ``resume``, training continues from the run directory's checkpoint.
  ``init`` (from load_init_checkpoint) says where the model's starting
  state came from; its epoch numbers this run's epochs on from there
  (evaluation, TensorBoard steps, negative samples), so a continuation's
  curve joins the run it continues. ``hparams`` (name -> bool, number or
  string) is written for TensorBoard's HParams dashboard.
  """

  def __init__(self, model, data: SequenceDataset, sampler,
               evaluators: Dict[str, RankingEvaluator], run_dir: str,
               config: TrainConfig, verbose: bool = True,
               checkpoint_every: int = 1, resume: bool = False,
               strategy: Optional[tf.distribute.Strategy] = None,
               init: Optional[Dict[str, object]] = None,
               hparams: Optional[Dict[str, object]] = None):
    self.model = model
    self.data = data
    self.sampler = sampler
    self.evaluators = evaluators
    self.run_dir = run_dir
    self.config = config
    self.verbose = verbose
    self.checkpoint_every = checkpoint_every
    self.resume = resume
    self.strategy = strategy
    self.hparams = hparams
    self.scorer = make_scorer(model)
    # A flat zero adversarial loss says nothing: logged only for models
    # that have an adversary.
    self.adversarial = getattr(model, "adv_eps", None) is not None
    # Whether there is anything to train (MostPop has no weights).
    self.learns = isinstance(model, keras.Model) and sampler is not None
    # Everything below is saved in checkpoints.
    self.init = init
    self.start_epoch = int(init["epoch"]) if init else 0
    self.epoch = self.start_epoch
    self.best = {"epoch": 0, "value": -math.inf, "metrics": {}}
    self.bad_evals = 0
    self.stopped = False
    self.history = []
    self.epoch_seconds = []
    self.eval_seconds = []
    self.scalars = []  # (tag, step, value), replayed into TensorBoard on resume
    self.writer = None

  _STATE = ("init", "start_epoch", "epoch", "best", "bad_evals", "stopped",
            "history", "epoch_seconds", "eval_seconds", "scalars")
  # Defaults of state that checkpoints of earlier versions lack.
  _STATE_DEFAULTS = {"init": None, "start_epoch": 0}

  def _log(self, message: str) -> None:
    if self.verbose:
      print(message, flush=True)

  def _scalars(self, prefix: str, values: Dict[str, float], step: int) -> None:
    with self.writer.as_default():
      for name, value in values.items():
        self.scalars.append((f"{prefix}/{name}", step, float(value)))
        tf.summary.scalar(f"{prefix}/{name}", value, step=step)

  def _open_writer(self) -> None:
    """A fresh event file; on resume it gets exactly the checkpointed scalars,
    so no step is duplicated or missing whatever was logged after it."""
    for logdir in (self.run_dir, os.path.join(self.run_dir, "tensorboard")):
      if os.path.isdir(logdir):
        for name in os.listdir(logdir):
          if name.startswith("events.out.tfevents"):
            os.remove(os.path.join(logdir, name))
    self.writer = tf.summary.create_file_writer(self.run_dir)
    with self.writer.as_default():
      if self.hparams:
        from tensorboard.plugins.hparams import api as hp
        hp.hparams(self.hparams,
                   trial_id=os.path.basename(os.path.normpath(self.run_dir)))
      for tag, step, value in self.scalars:
        tf.summary.scalar(tag, value, step=step)
    self.writer.flush()

  def _save_checkpoint(self) -> None:
    state = {k: getattr(self, k) for k in self._STATE}
    state["best"] = {**self.best, "value": (None if self.best["value"] ==
                                            -math.inf else self.best["value"])}
    self.writer.flush()
    checkpoint.save(self.run_dir, self.model, self.epoch, state, save_weights)

  def _restore(self) -> None:
    try:
      payload = checkpoint.load(self.run_dir, self.model)
      self._set_state(payload["state"])
    except (checkpoint.UnreadableCheckpoint, KeyError, TypeError,
            ValueError) as e:
      where = (str(e) if isinstance(e, checkpoint.UnreadableCheckpoint) else
               f"{os.path.join(self.run_dir, checkpoint.STATE)}: unreadable "
               f"checkpoint state ({type(e).__name__}: {e})")
      raise UserError(f"{where}; pass --restart to discard the run "
                      "directory's contents and start the run afresh"
                      ) from None
    self._log(f"resuming {self.run_dir} after epoch {self.epoch}")

  def _set_state(self, state: Dict[str, object]) -> None:
    """Sets the checkpointed bookkeeping; KeyError/TypeError/ValueError
    when ``state`` is not what _save_checkpoint writes."""
    for key in self._STATE:
      setattr(self, key, state[key] if key in state
              else self._STATE_DEFAULTS[key])
    self.start_epoch, self.epoch = int(self.start_epoch), int(self.epoch)
    self.bad_evals = int(self.bad_evals)
    self.best = dict(self.best)
    self.best["epoch"] = int(self.best["epoch"])
    self.best["metrics"] = dict(self.best["metrics"])
    if self.best["value"] is None:
      self.best["value"] = -math.inf
    self.best["value"] = float(self.best["value"])
    self.history = list(self.history)
    self.epoch_seconds = [float(x) for x in self.epoch_seconds]
    self.eval_seconds = [float(x) for x in self.eval_seconds]
    self.scalars = [(str(t), int(step), float(v))
                    for t, step, v in self.scalars]

  def _evaluate(self, target: str, epoch: int) -> EvalResult:
    result = self.evaluators[target].evaluate(self.scorer)
    self.eval_seconds.append(result.seconds)
    self._scalars(target, result.metrics(), epoch)
    return result

  def _diverged(self, what: str) -> TrainingError:
    """The error for a non-finite loss or weights, saying what is kept and
    which flags set the step size."""
    kept = (f"the checkpoint of epoch {self.epoch} is kept in "
            f"{self.run_dir}" if checkpoint.exists(self.run_dir)
            else "no checkpoint was written yet")
    knobs = "--lr"
    if getattr(self.model, "adv_eps", None) is not None:
      knobs = "--lr, --adv_eps or --adv_reg"
    return TrainingError(f"{what}; {kept}. Training diverged: lower {knobs} "
                         "or check the data.")

  def _check_weights(self, epoch: int) -> None:
    """Raises before non-finite weights can be evaluated or saved (a last
    step can turn them NaN with a finite loss)."""
    bad = [v.path for v in self.model.weights
           if not np.isfinite(np.asarray(v.numpy())).all()]
    if bad:
      raise self._diverged(f"non-finite weights after epoch {epoch} "
                           f"({', '.join(bad[:3])})")

  def _train_epoch(self, epoch: int, step_fn) -> Dict[str, float]:
    began = time.perf_counter()
    interactive = self.verbose and sys.stdout.isatty()
    if interactive:
      self._log(f"epoch {epoch}/{self.last_epoch}")
    bar = keras.utils.Progbar(self.sampler.steps_per_epoch,
                              verbose=1 if interactive else 0)
    sums = {}
    steps = 0
    dataset = self.sampler.dataset(epoch)
    if distributed(self.strategy):
      dataset = self.strategy.experimental_distribute_dataset(dataset)
    for step, batch in enumerate(dataset):
      logs = {k: float(v) for k, v in step_fn(batch).items()}
      if not all(math.isfinite(v) for v in logs.values()):
        raise self._diverged(
            f"non-finite loss at epoch {epoch}, step {step + 1} "
            f"({', '.join(f'{k} {v}' for k, v in logs.items())})")
      for k, v in logs.items():
        sums[k] = sums.get(k, 0.0) + v
      steps += 1
      bar.update(step + 1, values=[("loss", logs["loss"])])
    seconds = time.perf_counter() - began
    self._check_weights(epoch)
    self.epoch_seconds.append(seconds)
    means = {k: v / max(steps, 1) for k, v in sums.items()}
    if self.verbose and not interactive:
      self._log(f"epoch {epoch:4d}/{self.last_epoch}: loss "
                f"{means.get('loss', math.nan):.4f} ({seconds:.2f} s)")
    lr = float(np.asarray(self.model.optimizer.learning_rate.numpy()))
    logged = {k: v for k, v in means.items()
              if self.adversarial or k not in ("clean_loss", "adv_loss")}
    self._scalars("train", {**logged, "learning_rate": lr,
                            "epoch_seconds": seconds}, epoch)
    return means

  def _evaluate_epoch(self, epoch: int, means: Dict[str, float]) -> None:
    cfg = self.config
    chosen = self._evaluate(cfg.select_on, epoch)
    value = chosen.metrics()[cfg.select_metric]
    record = {"epoch": epoch, cfg.select_on: chosen.metrics(), "train": means}
    if value > self.best["value"]:
      test = chosen if cfg.select_on == "test" else self._evaluate("test",
                                                                   epoch)
      record["test"] = test.metrics()
      self.best = {"epoch": epoch, "value": value,
                   "metrics": {k: record[k] for k in ("valid", "test")
                               if k in record}}
      for target, values in self.best["metrics"].items():
        self._scalars(f"selected/{target}", values, epoch)
      test.save(os.path.join(self.run_dir, "test_per_user.npz"),
                self.data.user_ids)
      if self.learns:
        save_weights(self.model, os.path.join(self.run_dir, "best.weights.h5"))
      self.bad_evals = 0
    else:
      self.bad_evals += 1
    self.history.append(record)
    self._log(self._summary_line(epoch, means, record, self.best))
    if cfg.patience and self.bad_evals >= cfg.patience:
      self._log(f"early stop: no {cfg.select_metric} improvement in "
                f"{self.bad_evals} evaluations")
      self.stopped = True

  def fit(self) -> Dict[str, object]:
    """Runs (or resumes) training and evaluation; returns the summary for
    results.json."""
    cfg = self.config
    if self.resume:
      self._restore()
    self._open_writer()
    last = self.last_epoch
    if last == self.start_epoch and not self.history:
      self._evaluate_epoch(self.start_epoch, {})
    plain_step = model_step = None
    if self.learns:
      plain_step, model_step = compile_steps(self.model, self.sampler,
                                             self.strategy)
    while self.epoch < last and not self.stopped:
      epoch = self.epoch + 1
      own = epoch - self.start_epoch
      step_fn = model_step if own > cfg.pretrain_epochs else plain_step
      means = self._train_epoch(epoch, step_fn)
      if epoch == last or epoch % cfg.eval_every == 0:
        self._evaluate_epoch(epoch, means)
      self.epoch = epoch
      if (epoch % self.checkpoint_every == 0 or epoch == last or
          self.stopped):
        self._save_checkpoint()
    if self.learns:
      save_weights(self.model, os.path.join(self.run_dir, "last.weights.h5"))
    self.writer.close()
    return {
        "selected_on": cfg.select_on,
        "select_metric": cfg.select_metric,
        "init": self.init,
        "start_epoch": self.start_epoch,
        "best_epoch": self.best["epoch"],
        "epochs_run": self.epoch - self.start_epoch,
        "metrics": self.best["metrics"],
        "timing": {
            "train_seconds_per_epoch": _median(self.epoch_seconds),
            "eval_seconds": _median(self.eval_seconds),
        },
        "history": self.history,
    }

  @property
  def last_epoch(self) -> int:
    """The epoch this run ends after (its own epochs counted on from
    start_epoch; none for models without training)."""
    return self.start_epoch + (self.config.epochs if self.learns else 0)

  def _summary_line(self, epoch, means, record, best) -> str:
    parts = [f"epoch {epoch:4d}"]
    if means:
      parts.append(f"loss {means['loss']:.4f}")
      if self.epoch_seconds:
        parts.append(f"{self.epoch_seconds[-1]:.2f} s/epoch")
    for target in ("valid", "test"):
      if target in record:
        shown = " ".join(f"{k} {v:.4f}" for k, v in record[target].items())
        parts.append(f"{target}: {shown}")
      elif target == "test":
        parts.append("test: evaluated at a new best only")
    parts.append(f"best epoch {best['epoch']}")
    return " | ".join(parts)


def _median(values) -> Optional[float]:
  return float(statistics.median(values)) if values else None


def versions() -> Dict[str, str]:
  import pandas
  import asasrec_tf
  return {"python": sys.version.split()[0], "tensorflow": tf.__version__,
          "keras": keras.__version__, "numpy": np.__version__,
          "pandas": pandas.__version__, "asasrec_tf": asasrec_tf.__version__}


def platform_info(cpuinfo: str = "/proc/cpuinfo") -> Dict[str, object]:
  """What ran the numbers beyond the versions: the CPU (and whether it has
  AVX-512; None where /proc/cpuinfo does not say), its cores, and whether
  TensorFlow ran its oneDNN kernels (which may round differently from its
  own; None when this TensorFlow cannot tell)."""
  cpu, avx512 = platform.processor() or "unknown", None
  try:
    with open(cpuinfo) as f:
      info = dict(line.split(":", 1) for line in f if ":" in line)
    info = {k.strip(): v.strip() for k, v in info.items()}
    cpu = info.get("model name", cpu)
    if "flags" in info:
      avx512 = "avx512f" in info["flags"].split()
  except OSError:
    pass
  try:
    from tensorflow.python.util import _pywrap_util_port
    onednn = bool(_pywrap_util_port.IsMklEnabled())
  except (ImportError, AttributeError):
    onednn = None
  return {"cpu": cpu, "avx512": avx512, "cores": os.cpu_count(),
          "onednn": onednn,
          "cpu_allocator_bfc": os.environ.get("TF_CPU_ALLOCATOR_USE_BFC")}


def write_results(run_dir: str, results: Dict[str, object]) -> str:
  path = os.path.join(run_dir, "results.json")
  atomic_write_text(path, json.dumps(results, indent=2, sort_keys=False) + "\n")
  return path
