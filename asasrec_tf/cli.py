"""The programs' command-line flags, in groups, and how a program runs.

Only programs define absl flags (``main``, ``recommend``, ``export``,
``robustness``, ``bench``, ``report`` and ``python -m asasrec_tf.data``):
each calls the ``define_*_flags()`` functions of the groups it needs, as
tensorflow/models does, and the ``*_from_flags()`` helpers turn parsed
flags into the plain arguments and config dataclasses the library takes.
Library modules define no flags.

``run`` gives every program the same behaviour: ``--help`` prints the
program's usage and its own flags by group, with defaults, and exits 0; a
bad flag or input exits 2 with one line; a failed training exits 3; Ctrl-C
exits 130 and SIGTERM 143 with a line saying what was kept. Ctrl-C is never lost: Python
drops an exception raised in a finalizer (``__del__``, ``weakref.finalize``),
and TensorFlow runs finalizers every epoch, so an interrupt that lands in
one is raised again a moment later, outside it.
"""

from __future__ import annotations

import _thread
import collections
import hashlib
import json
import math
import os
import signal
import sys
import textwrap
import threading
from typing import Callable, Dict, List, Optional

from absl import flags

from asasrec_tf import choices, errors

FLAGS = flags.FLAGS

# group title -> names of the flags this process defined in it, in order.
_GROUPS: Dict[str, List[str]] = collections.OrderedDict()

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
# Seeds are what numpy and Keras accept: 0 .. 2**32 - 1.
MAX_SEED = 2**32 - 1
DATA_DIR_ENV = "ASASREC_DATA_DIR"


def _cache_root() -> str:
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
      os.path.expanduser("~"), ".cache")
  return os.path.join(base, "asasrec_tf")


def default_data_dir() -> str:
  """$ASASREC_DATA_DIR (made absolute as it is read, so that a relative one
  does not change meaning with the working directory of a later command),
  else the per-user cache: what --data_dir defaults to, and where
  run_all.sh looks too."""
  value = os.environ.get(DATA_DIR_ENV)
  return os.path.abspath(value) if value else os.path.join(_cache_root(),
                                                           "raw")


def _flag(group: str, kind: str, name: str, default, help_text: str,
          *args, **kwargs) -> None:
  """Defines ``--name`` (once per process) and files it under ``group``.

  Float flags also refuse NaN and infinities, which pass absl's bounds.
  """
  if name not in FLAGS:
    getattr(flags, f"DEFINE_{kind}")(name, default, help_text, *args,
                                     **kwargs)
    if kind == "float":
      flags.register_validator(
          name, lambda v: v is None or math.isfinite(v),
          message=f"--{name} must be a finite number")
  names = _GROUPS.setdefault(group, [])
  if name not in names:
    names.append(name)


def define_flag(group: str, kind: str, name: str, default, help_text: str,
                *args, **kwargs) -> None:
  """A program's own flag, shown under ``group`` in --help."""
  _flag(group, kind, name, default, help_text, *args, **kwargs)


# --- the groups --------------------------------------------------------------

def define_data_flags() -> None:
  from asasrec_tf.data import registry
  from asasrec_tf.data.dataset import SPLITS
  g = "Data"
  _flag(g, "enum", "dataset", registry.SYNTHETIC, list(registry.names()),
        "Dataset to use. 'custom' (implied by --data_path) reads your own "
        "file.")
  _flag(g, "string", "data_dir", default_data_dir(),
        f"Directory holding <dataset>/<raw file> (default: ${DATA_DIR_ENV} "
        "if set, else the per-user cache).")
  _flag(g, "string", "data_path", None,
        "A custom interaction file (needs --data_format).")
  _flag(g, "enum", "data_format", None, list(choices.FORMATS),
        "Format of --data_path.")
  _flag(g, "enum", "split", "loo_valid", list(SPLITS),
        "loo_valid: last item test, second to last validation; loo: last "
        "item test, no validation (the paper).")
  _flag(g, "integer", "min_item_interactions", 0,
        "Drop items with fewer interactions (0: keep all, as the paper's "
        "data did).", lower_bound=0)
  _flag(g, "bool", "drop_repeats", False,
        "Drop an interaction that repeats the user's previous item (a "
        "duplicated line); the statistics count them either way.")
  _flag(g, "string", "cache_dir", os.path.join(_cache_root(), "processed"),
        "Where preprocessed datasets are cached ('' disables).")
  _flag(g, "bool", "download", True,
        "Download a missing raw file when it has a public URL.")
  _flag(g, "integer", "synthetic_users", 1000,
        "Users of --dataset=synthetic.", lower_bound=1)
  _flag(g, "integer", "synthetic_items", 300,
        "Items of --dataset=synthetic.", lower_bound=4)
  _flag(g, "integer", "synthetic_seed", 0, "Seed of --dataset=synthetic.",
        lower_bound=0, upper_bound=MAX_SEED)


def define_model_flags() -> None:
  g = "Model"
  _flag(g, "enum", "model", "sasrec", list(choices.MODELS),
        "Model to train: sasrec, asasrec (SASRec + SAO), mostpop, bpr "
        "(BPR-MF), apr (BPR-MF + adversarial training).")
  _flag(g, "integer", "hidden_units", 64, "Latent dimension d.",
        lower_bound=1)
  _flag(g, "integer", "num_blocks", 2, "Self-attention blocks.",
        lower_bound=1)
  _flag(g, "integer", "num_heads", 1, "Attention heads.", lower_bound=1)
  _flag(g, "float", "dropout_rate", 0.5, "Dropout rate.", lower_bound=0.0,
        upper_bound=0.99)
  _flag(g, "enum", "block", "kang205", list(choices.BLOCKS),
        "SASRec/ASASRec: where each block's layer norms go: kang205 "
        "(kang205/SASRec: attention over the raw keys and values) or authors "
        "(feay1234/ASASRec: keys and values normalised too, and a layer norm "
        "closing each feed-forward).")
  _flag(g, "enum", "loss", "bce", list(choices.LOSSES),
        "SASRec/ASASRec: bce (the paper's, one negative a target), "
        "bce_authors (as their code writes it: no gradient past logit 17), "
        "gbce (gSASRec) or ce (softmax over every item).")
  _flag(g, "integer", "train_negatives", None, "--loss=gbce: negatives a "
        f"target (gSASRec's k; default {choices.GBCE_NEGATIVES}).",
        lower_bound=1)
  _flag(g, "float", "gbce_t", choices.GBCE_T, "--loss=gbce: gSASRec's "
        "calibration t.",
        lower_bound=0.0, upper_bound=1.0)
  flags.register_multi_flags_validator(
      ["loss", "train_negatives", "gbce_t"], _valid_loss_options,
      message="--train_negatives and --gbce_t apply to --loss=gbce only")
  _flag(g, "string", "maxlen", "50", "Maximum sequence length n, or 'auto' "
        "for min(mean training length, 50) (the authors' rule).")
  _flag(g, "float", "lr", None, "Learning rate (default: 0.001 with Adam, "
        "beta_2 = 0.98, for SASRec/ASASRec; 0.05 with Adagrad for "
        "BPR/APR).", lower_bound=0.0)
  _flag(g, "enum", "optimizer", "adam", list(choices.OPTIMIZERS),
        "SASRec/ASASRec: adam (TF1's dense Adam, as the authors ran: every "
        "row's moments decay every step) or lazy_adam (moments and weights of "
        "the rows a batch touches only: a step's cost does not grow with "
        "the catalog; not the authors' optimizer).")
  _flag(g, "float", "adam_epsilon", 1e-8, "Adam's epsilon (SASRec/ASASRec): "
        "1e-8 as TF1's AdamOptimizer in kang205/SASRec and the authors' "
        "code; Keras's default is 1e-7.", lower_bound=0.0)
  _flag(g, "enum", "mixed_precision", "none",
        ["none", "mixed_float16", "mixed_bfloat16"],
        "Compute in float16/bfloat16 with float32 variables and losses "
        "(for accelerators; float16 adds loss scaling).")
  g = "Adversary (ASASRec, APR)"
  _flag(g, "float", "adv_eps", 0.5, "Perturbation size epsilon.",
        lower_bound=0.0)
  _flag(g, "float", "adv_reg", 1.0, "Weight lambda of the adversarial loss.",
        lower_bound=0.0)
  _flag(g, "enum", "adv_norm", "row", list(choices.NORMS),
        "Normalise the gradient per item row or over the table.")
  _flag(g, "enum", "adv_target", "both", list(choices.ADV_TARGETS),
        "ASASRec: where the perturbation goes: both (Eq. 9: input and output "
        "item embeddings), output (the authors' code), input.")
  _flag(g, "enum", "adv_gamma", "clean", list(choices.ADV_GAMMAS),
        "ASASRec: Gamma from a pass of its own with dropout off (clean: "
        "Algorithm 1, the authors) or on (dropout), or from the training "
        "pass's own backward (shared: same mask, one pass fewer).")
  _flag(g, "enum", "adv_gamma_uses", "all", list(choices.ADV_GAMMA_USES),
        "ASASRec: Gamma over every use of the item table, input and output "
        "(all: the authors' code), or only where the perturbation goes "
        "(target).")
  _flag(g, "enum", "adv_passes", "two", list(choices.ADV_PASSES),
        "ASASRec: two: the clean and perturbed losses from forward passes "
        "of their own; one: both from one dropout-on pass (the authors' "
        "step, with --adv_target=output).")


def define_training_flags() -> None:
  g = "Training"
  _flag(g, "integer", "epochs", 200, "Training epochs (the authors ran "
        "2,000).", lower_bound=0)
  _flag(g, "integer", "eval_every", 10, "Evaluate every this many epochs.",
        lower_bound=1)
  _flag(g, "integer", "batch_size", 512, "Users per training batch.",
        lower_bound=1)
  _flag(g, "bool", "length_buckets", False, "SASRec/ASASRec: batch users of "
        "similar length and cut the all-padding columns (the same losses, "
        "much less work when most sequences are shorter than --maxlen; "
        "batches are then not uniform samples).")
  _flag(g, "bool", "target_first_item", False, "SASRec/ASASRec: also train "
        "on each user's first item as the target of an all-padding input "
        "(kang205/SASRec and the authors' code never do, "
        "and skip users with one training item).")
  _flag(g, "integer", "seed", 0, "Seed of weights, dropout and sampling.",
        lower_bound=0, upper_bound=MAX_SEED)
  _flag(g, "integer", "pretrain_epochs", 0, "Epochs of plain training "
        "before the adversarial term is switched on (ASASRec, APR).",
        lower_bound=0)
  _flag(g, "string", "init_checkpoint", None, "Start from a previous run: "
        "a run directory (its last checkpoint: weights, optimizer state and "
        "dropout RNG at the epoch it was written, and epochs are numbered on "
        "from there, as the authors switch to ASASRec at a fixed epoch) or "
        "a .weights.h5 file (e.g. RUN/best.weights.h5; epochs from 0).")
  _flag(g, "bool", "init_optimizer", True, "With --init_checkpoint, also "
        "restore Adam's moments and step count, as the authors' "
        "tf.train.Saver does (the learning rate is always this run's).")
  _flag(g, "integer", "patience", 0, "Stop after this many evaluations "
        "without improvement of --select_metric (0: never stop early).",
        lower_bound=0)
  _flag(g, "bool", "deterministic", False, "Deterministic kernels "
        "(tf.config.experimental.enable_op_determinism): two runs with the "
        "same flags give identical results.")
  g = "Run directory"
  _flag(g, "string", "results_dir", "results/runs",
        "Where run directories go.")
  _flag(g, "string", "run_name", None, "Run directory name, one directory "
        "inside --results_dir (default: dataset, model, split, seed and a "
        "hash of the flags that change results, so that rerunning a command "
        "resumes its run).")
  flags.register_validator("run_name", _valid_run_name)
  _flag(g, "integer", "checkpoint_every", 1, "Write a resumable checkpoint "
        "every this many epochs.", lower_bound=1)
  _flag(g, "bool", "resume", True, "Continue from the run directory's "
        "checkpoint (only if made with the same flags).")
  _flag(g, "bool", "restart", False, "Discard what the run directory holds "
        "(a checkpoint, perhaps unreadable, weights, results) and start the "
        "run afresh.")


def define_evaluation_flags() -> None:
  g = "Evaluation"
  _flag(g, "enum", "candidates", "full", list(choices.CANDIDATES),
        "Rank against every item not in the history, or against sampled "
        "negatives.")
  _flag(g, "integer", "num_negatives", 100,
        "Negatives per user when sampled.", lower_bound=1)
  _flag(g, "enum", "negative_sampling", "uniform",
        list(choices.NEGATIVE_SAMPLING),
        "How sampled negatives are drawn.")
  _flag(g, "list", "ks", ["10", "100"], "Cut-offs K of HR@K and NDCG@K.")
  _flag(g, "enum", "select_on", "valid", ["valid", "test"],
        "Which held-out item picks the best epoch; 'test' (what the paper "
        "did) needs --split=loo and is labelled as such.")
  _flag(g, "string", "select_metric", "ndcg@10",
        "Metric that picks the best epoch, e.g. ndcg@10, hr@100.")
  _flag(g, "integer", "eval_batch_size", 256, "Users scored at once.",
        lower_bound=1)
  _flag(g, "integer", "eval_seed", 0, "Seed of the sampled negatives (fixed "
        "across epochs and models so runs are comparable).", lower_bound=0,
        upper_bound=MAX_SEED)


def define_distribution_flags() -> None:
  _flag("Devices", "enum", "distribution", "none", list(choices.STRATEGIES),
        "none: one device; mirrored: all local GPUs (MirroredStrategy); "
        "multi_worker: several machines (MultiWorkerMirroredStrategy, "
        "configured by TF_CONFIG).")
  _flag("Devices", "float", "worker_timeout", 600.0, "multi_worker: give up "
        "(exit 2, naming the missing workers) when another worker is not "
        "reachable after this many seconds.", lower_bound=0.0)


def define_serving_flags() -> None:
  g = "Serving"
  _flag(g, "string", "run_dir", None, "A run directory of asasrec_tf.main.")
  _flag(g, "integer", "top_n", 10, "How many items to return per user or "
        "history.", lower_bound=1)


def _valid_loss_options(values) -> bool:
  """Flag validator: gBCE's options only with --loss=gbce."""
  return values["loss"] == "gbce" or (values["train_negatives"] is None and
                                      values["gbce_t"] == choices.GBCE_T)


def _valid_run_name(name) -> bool:
  """Flag validator: None or one directory name (see rundir.check_name)."""
  if name is None:
    return True
  from asasrec_tf.training import rundir
  try:
    rundir.check_name(name)
  except errors.UserError as e:
    raise flags.ValidationError(str(e)) from None
  return True


# --- parsed flags -> library arguments ----------------------------------------

def data_from_flags():
  """The dataset the data flags describe."""
  from asasrec_tf.data import loader
  return loader.load(dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
                     data_path=FLAGS.data_path, data_format=FLAGS.data_format,
                     split=FLAGS.split,
                     min_item_interactions=FLAGS.min_item_interactions,
                     drop_repeats=FLAGS.drop_repeats,
                     cache_dir=FLAGS.cache_dir or None,
                     allow_download=FLAGS.download,
                     synthetic_users=FLAGS.synthetic_users,
                     synthetic_items=FLAGS.synthetic_items,
                     synthetic_seed=FLAGS.synthetic_seed,
                     data_dir_hint=f"--data_dir or ${DATA_DIR_ENV}")


def model_args_from_flags() -> Dict[str, object]:
  """The model flags as keyword arguments of factory.build."""
  return dict(
      name=FLAGS.model, hidden_units=FLAGS.hidden_units,
      num_blocks=FLAGS.num_blocks, num_heads=FLAGS.num_heads,
      dropout_rate=FLAGS.dropout_rate, lr=FLAGS.lr,
      adam_epsilon=FLAGS.adam_epsilon, adv_eps=FLAGS.adv_eps,
      adv_reg=FLAGS.adv_reg, adv_target=FLAGS.adv_target,
      adv_norm=FLAGS.adv_norm, adv_gamma=FLAGS.adv_gamma,
      adv_gamma_uses=FLAGS.adv_gamma_uses, adv_passes=FLAGS.adv_passes,
      block=FLAGS.block, loss=FLAGS.loss, gbce_t=FLAGS.gbce_t,
      optimizer=FLAGS.optimizer, mixed_precision=FLAGS.mixed_precision)


def protocol_from_flags():
  """The evaluation flags as a validated protocol.Protocol."""
  from asasrec_tf.evaluation import protocol
  try:
    ks = tuple(int(k) for k in FLAGS.ks)
  except ValueError:
    raise errors.UserError(f"--ks must be a comma-separated list of "
                           f"integers, got {','.join(FLAGS.ks)}") from None
  if not ks or min(ks) < 1:
    raise errors.UserError(f"--ks must be positive, got {','.join(FLAGS.ks)}")
  p = protocol.Protocol(FLAGS.split, FLAGS.candidates, FLAGS.num_negatives,
                        FLAGS.negative_sampling, ks, FLAGS.select_on,
                        FLAGS.select_metric)
  protocol.validate(p)
  return p


def train_config_from_flags():
  """The training flags as a runner.TrainConfig."""
  from asasrec_tf.training import runner
  return runner.TrainConfig(epochs=FLAGS.epochs, eval_every=FLAGS.eval_every,
                            pretrain_epochs=FLAGS.pretrain_epochs,
                            patience=FLAGS.patience,
                            select_on=FLAGS.select_on,
                            select_metric=FLAGS.select_metric)


def defined_flags() -> Dict[str, object]:
  """Every flag this program defined through this module, with its value
  (what results.json and run.json record)."""
  names = sorted({n for group in _GROUPS.values() for n in group})
  return {n: FLAGS[n].value for n in names}


def run_id(values: Dict[str, object]) -> str:
  """8 hex digits of a hash of ``values`` (JSON, sorted keys)."""
  text = json.dumps(values, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:8]


# --- running a program -------------------------------------------------------

HELP_ARGS = ("--help", "-help", "-h", "--helpshort", "-?")


def help_text(usage: str) -> str:
  """``usage`` (a program's docstring), then its flags by group."""
  lines = [textwrap.dedent(usage).strip(), ""]
  for group, names in _GROUPS.items():
    lines.append(f"{group}:")
    for name in names:
      flag = FLAGS[name]
      lines.append(f"  --{name} (default: {_shown(flag.default)})")
      lines += textwrap.wrap(flag.help, width=76, initial_indent="      ",
                             subsequent_indent="      ")
    lines.append("")
  lines.append("Flags may also come from a file: --flagfile=FILE (one "
               "--flag=value a line); later flags override earlier ones.")
  return "\n".join(lines) + "\n"


def _shown(default) -> str:
  if default is None:
    return "none"
  if isinstance(default, bool):
    return "true" if default else "false"
  if isinstance(default, (list, tuple)):
    return ",".join(map(str, default)) or "''"
  if isinstance(default, str):
    return default or "''"
  return str(default)


def _undecodable_flagfile(args: List[str]) -> str:
  """The first --flagfile among ``args`` that is not UTF-8 (flagfiles may
  name others; those are not searched)."""
  for i, arg in enumerate(args):
    path = None
    if arg.startswith(("--flagfile=", "-flagfile=")):
      path = arg.split("=", 1)[1]
    elif arg in ("--flagfile", "-flagfile") and i + 1 < len(args):
      path = args[i + 1]
    if path:
      try:
        with open(path, "rb") as f:
          f.read().decode("utf-8")
      except UnicodeDecodeError:
        return path
      except OSError:
        continue
  return "a flagfile"


# How long a Ctrl-C that landed in a finalizer waits before it is raised again.
_REDELIVER_SECONDS = 0.05


def _in_finalizer(frame) -> bool:
  """Whether ``frame`` runs inside a ``__del__`` or under the ``weakref``
  module (``weakref.finalize``, weak dictionaries' callbacks), where Python
  would print a raised KeyboardInterrupt and go on."""
  while frame is not None:
    if (frame.f_code.co_name == "__del__" or
        frame.f_globals.get("__name__") == "weakref"):
      return True
    frame = frame.f_back
  return False


class Terminated(KeyboardInterrupt):
  """SIGTERM, handled as Ctrl-C is (the same clean-up), exit status 143."""


# The signals received so far. An error raised after one is taken as its
# consequence: a KeyboardInterrupt raised inside a C extension's import
# (numpy's, while TensorFlow loads) comes back as an ImportError.
_received: List[int] = []


def _on_signal(signum, frame) -> None:
  """SIGINT/SIGTERM handler: KeyboardInterrupt (Terminated), deferred while
  a finalizer runs."""
  _received.append(signum)
  if _in_finalizer(frame):
    timer = threading.Timer(_REDELIVER_SECONDS, _thread.interrupt_main,
                            args=(signum,))
    timer.daemon = True
    timer.start()
    return
  raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


def run(main: Callable[[List[str]], object], usage: str,
        define_flags: Optional[Callable[[], None]] = None,
        argv: Optional[List[str]] = None) -> None:
  """Defines the program's flags (``define_flags``), parses them and runs
  ``main(argv)`` with the behaviour described in the module doc.

  The flags are defined here, after the signal handlers are in place, so
  that a Ctrl-C however early (a loaded machine can spend seconds there)
  is the same one line and exit status as one during training.
  """
  from absl import app
  argv = list(sys.argv if argv is None else argv)

  def parse(args):
    try:
      return FLAGS(args)
    except flags.Error as e:
      errors.fail(f"{e} (see --help)")
    except UnicodeDecodeError as e:
      errors.fail(f"{_undecodable_flagfile(args)}: a --flagfile must be "
                  f"UTF-8 text ({e.reason} at byte {e.start})")

  def stopped(signum):
    if signum == signal.SIGTERM:
      errors.fail("terminated; a run resumes from its last checkpoint when "
                  "its command is rerun", EXIT_TERMINATED)
    errors.fail("interrupted; a run resumes from its last checkpoint when "
                "its command is rerun", EXIT_INTERRUPTED)

  def interruptible(call, *args):
    """``call(*args)``, with a signal (or an error it caused) turned into
    its one-line exit."""
    try:
      return call(*args)
    except Terminated:
      stopped(signal.SIGTERM)
    except KeyboardInterrupt:
      stopped(signal.SIGINT)
    except Exception:
      if not _received:
        raise
      stopped(_received[-1])

  previous = {s: signal.signal(s, _on_signal)
              for s in (signal.SIGINT, signal.SIGTERM)}
  try:
    if define_flags is not None:
      interruptible(define_flags)
    if any(a in HELP_ARGS for a in argv[1:]):
      sys.stdout.write(help_text(usage))
      sys.exit(0)
    app.run(lambda args: interruptible(errors.exit_on_user_error(main), args),
            argv=argv, flags_parser=parse)
  except SystemExit as e:
    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    if code:
      _exit_now(code)
    raise
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)


def _exit_now(code: int) -> None:
  """Ends the process with ``code`` without Python's finalization.

  After an error that left TensorFlow objects alive, finalization can hang:
  twice in a few hundred error exits on a loaded machine the process sat
  in it for tens of minutes, its main thread holding the GIL in C++
  teardown with no Python frame left. An error exit has nothing left to
  do there: every file was written atomically (or not at all), and run
  directory locks are released by the kernel.
  """
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(code)
