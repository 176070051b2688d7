"""Builds the model the model flags describe. Owns the model flags."""

from __future__ import annotations

from typing import Optional, Union

import keras
from absl import flags

from asasrec_tf.data.dataset import SequenceDataset
from asasrec_tf.data.sampler import PairSampler, TrainingSampler
from asasrec_tf.errors import UserError
from asasrec_tf.models import adversarial
from asasrec_tf.models.mf import APR, BPRMF
from asasrec_tf.models.mostpop import MostPop
from asasrec_tf.models.sasrec import (ADV_GAMMA_USES, ADV_GAMMAS, ADV_PASSES,
                                     ADV_TARGETS, ASASRec, SASRec)
from asasrec_tf.training.optimizers import DenseAdam, SparseAdagrad

MODELS = ("sasrec", "asasrec", "mostpop", "bpr", "apr")
SEQUENTIAL = ("sasrec", "asasrec")
PAIRWISE = ("bpr", "apr")
# The learning rates of the paper's baselines and of the authors' SASRec code.
DEFAULT_LR = {"sasrec": 0.001, "asasrec": 0.001, "bpr": 0.05, "apr": 0.05}

flags.DEFINE_enum("model", "sasrec", list(MODELS), "Model to train: "
                  "sasrec, asasrec (SASRec + SAO), mostpop, bpr (BPR-MF), apr "
                  "(BPR-MF + adversarial training).")
flags.DEFINE_integer("hidden_units", 64, "Latent dimension d.", lower_bound=1)
flags.DEFINE_integer("num_blocks", 2, "Self-attention blocks.", lower_bound=1)
flags.DEFINE_integer("num_heads", 1, "Attention heads.", lower_bound=1)
flags.DEFINE_float("dropout_rate", 0.5, "Dropout rate.", lower_bound=0.0,
                   upper_bound=0.99)
flags.DEFINE_string("maxlen", "50", "Maximum sequence length n, or 'auto' for "
                    "min(mean training length, 50) (the authors' rule).")
flags.DEFINE_float("lr", None, "Learning rate (default: 0.001 with Adam, "
                   "beta_2 = 0.98, for SASRec/ASASRec; 0.05 with Adagrad for "
                   "BPR/APR).", lower_bound=0.0)
flags.DEFINE_float("adam_epsilon", 1e-8, "Adam's epsilon (SASRec/ASASRec): "
                   "1e-8 as TF1's AdamOptimizer in kang205/SASRec and the "
                   "authors' code; Keras's default is 1e-7.", lower_bound=0.0)
flags.DEFINE_float("adv_eps", 0.5, "Perturbation size epsilon.",
                   lower_bound=0.0)
flags.DEFINE_float("adv_reg", 1.0, "Weight lambda of the adversarial loss.",
                   lower_bound=0.0)
flags.DEFINE_enum("adv_target", "both", list(ADV_TARGETS),
                  "Where the perturbation goes: both (Eq. 9: input and output "
                  "item embeddings), output (the authors' code), input.")
flags.DEFINE_enum("mixed_precision", "none",
                  ["none", "mixed_float16", "mixed_bfloat16"],
                  "Compute in float16/bfloat16 with float32 variables and "
                  "losses (for accelerators; float16 adds loss scaling).")
flags.DEFINE_enum("adv_norm", "row", list(adversarial.NORMS),
                  "Normalise the gradient per item row or over the table.")
flags.DEFINE_enum("adv_gamma", "clean", list(ADV_GAMMAS),
                  "Where ASASRec's gradient Gamma comes from: clean (a pass of "
                  "its own with dropout off: Algorithm 1 and the authors' "
                  "code), dropout (a pass of its own with dropout on), shared "
                  "(the clean training pass's own backward, same dropout "
                  "mask; saves a pass).")
flags.DEFINE_enum("adv_gamma_uses", "all", list(ADV_GAMMA_USES),
                  "Gamma over every use of the item table, input and output "
                  "(all: the authors' code), or only where the perturbation "
                  "goes (target).")
flags.DEFINE_enum("adv_passes", "two", list(ADV_PASSES),
                  "two: the clean and perturbed losses from forward passes of "
                  "their own; one: both from one dropout-on pass's hidden "
                  "states (the authors' code; needs --adv_target=output). "
                  "The authors' step is --adv_target=output --adv_passes=one.")

FLAGS = flags.FLAGS


def check_maxlen_flag(value: str) -> None:
  """Validates --maxlen before any data is read."""
  if value == "auto":
    return
  try:
    maxlen = int(value)
  except ValueError:
    maxlen = 0
  if maxlen < 1:
    raise UserError(f"--maxlen must be a positive integer or 'auto', got "
                    f"{value!r}")


def resolve_maxlen(value: str, data: SequenceDataset) -> int:
  """An integer --maxlen, or the authors' 'auto' rule for ``data``."""
  check_maxlen_flag(value)
  return data.auto_maxlen() if value == "auto" else int(value)


def build(name: str, data: SequenceDataset, maxlen: int, hidden_units: int = 64,
          num_blocks: int = 2, num_heads: int = 1, dropout_rate: float = 0.5,
          lr: Optional[float] = None, adv_eps: float = 0.5,
          adv_reg: float = 1.0, adv_target: str = "both",
          adv_norm: str = "row", mixed_precision: str = "none",
          adv_gamma: str = "clean", adv_gamma_uses: str = "all",
          adv_passes: str = "two", adam_epsilon: float = 1e-8) -> Union[SASRec, BPRMF, MostPop]:
  """A compiled, built model (or MostPop, which needs no training).

  ``lr`` None means the model's default (DEFAULT_LR). ``mixed_precision``
  sets Keras' global dtype policy before the model is built.
  """
  keras.mixed_precision.set_global_policy(
      "float32" if mixed_precision == "none" else mixed_precision)
  if name == "mostpop":
    return MostPop(data.item_popularity())
  lr = resolved_lr(name, lr)
  if name in PAIRWISE:
    cls = APR if name == "apr" else BPRMF
    extra = (dict(adv_eps=adv_eps, adv_reg=adv_reg, adv_norm=adv_norm)
             if name == "apr" else {})
    model = cls(data.num_users, data.num_items, hidden_units=hidden_units,
                **extra)
    model.build_for_inputs()
    model.compile(optimizer=SparseAdagrad(learning_rate=lr))
    model.optimizer.build(model.trainable_variables)
    return model
  if hidden_units % num_heads:
    raise UserError(f"--hidden_units={hidden_units} must be divisible by "
                    f"--num_heads={num_heads}")
  common = dict(hidden_units=hidden_units, num_blocks=num_blocks,
                num_heads=num_heads, dropout_rate=dropout_rate)
  if name == "sasrec":
    model = SASRec(data.num_items, maxlen, **common)
  elif name == "asasrec":
    try:
      model = ASASRec(data.num_items, maxlen, adv_eps=adv_eps, adv_reg=adv_reg,
                      adv_target=adv_target, adv_norm=adv_norm,
                      adv_gamma=adv_gamma, adv_gamma_uses=adv_gamma_uses,
                      adv_passes=adv_passes, **common)
    except ValueError as e:
      raise UserError(f"ASASRec flags: {e}") from None
  else:
    raise UserError(f"--model must be one of {', '.join(MODELS)}, got {name!r}")
  model.build_for_inputs()
  optimizer = DenseAdam(learning_rate=lr, beta_2=0.98, epsilon=adam_epsilon)
  if mixed_precision == "mixed_float16":
    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
  model.compile(optimizer=optimizer)
  # Create the optimizer's slots now, not inside the first traced step
  # (which would make tf.function trace twice).
  model.optimizer.build(model.trainable_variables)
  return model


def build_from_flags(data: SequenceDataset, maxlen: int):
  return build(FLAGS.model, data, maxlen, hidden_units=FLAGS.hidden_units,
               num_blocks=FLAGS.num_blocks, num_heads=FLAGS.num_heads,
               dropout_rate=FLAGS.dropout_rate, lr=FLAGS.lr,
               adv_eps=FLAGS.adv_eps, adv_reg=FLAGS.adv_reg,
               adv_target=FLAGS.adv_target, adv_norm=FLAGS.adv_norm,
               mixed_precision=FLAGS.mixed_precision,
               adv_gamma=FLAGS.adv_gamma, adv_gamma_uses=FLAGS.adv_gamma_uses,
               adv_passes=FLAGS.adv_passes, adam_epsilon=FLAGS.adam_epsilon)


def resolved_lr(name: str, lr: Optional[float]) -> Optional[float]:
  """The learning rate ``build`` uses for ``name`` (None for MostPop)."""
  if name == "mostpop":
    return None
  return DEFAULT_LR[name] if lr is None else lr


def build_sampler(name: str, data: SequenceDataset, maxlen: int,
                  batch_size: int, seed: int, length_buckets: bool = False,
                  target_first_item: bool = False):
  """The training-batch sampler ``name`` learns from (None for MostPop);
  ``length_buckets`` and ``target_first_item`` apply to the sequential
  models (see TrainingSampler)."""
  if name in SEQUENTIAL:
    return TrainingSampler(data, maxlen, batch_size, seed, length_buckets,
                           target_first_item)
  if name in PAIRWISE:
    return PairSampler(data, batch_size, seed)
  return None
