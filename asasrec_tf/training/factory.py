"""Builds and compiles a model, and the sampler it learns from."""

from __future__ import annotations

from typing import Optional, Union

import keras

from asasrec_tf.choices import (GBCE_NEGATIVES, GBCE_T,  # noqa: F401
                                MODELS, OPTIMIZERS, PAIRWISE, SEQUENTIAL)
from asasrec_tf.data.dataset import SequenceDataset
from asasrec_tf.data.sampler import PairSampler, TrainingSampler
from asasrec_tf.errors import UserError
from asasrec_tf.models.mf import APR, BPRMF
from asasrec_tf.models.mostpop import MostPop
from asasrec_tf.models.sasrec import ASASRec, SASRec
from asasrec_tf.training.optimizers import DenseAdam, LazyAdam, SparseAdagrad

# The learning rates of the paper's baselines and of the authors' SASRec code.
DEFAULT_LR = {"sasrec": 0.001, "asasrec": 0.001, "bpr": 0.05, "apr": 0.05}


def build(name: str, data: SequenceDataset, maxlen: int, hidden_units: int = 64,
          num_blocks: int = 2, num_heads: int = 1, dropout_rate: float = 0.5,
          lr: Optional[float] = None, adv_eps: float = 0.5,
          adv_reg: float = 1.0, adv_target: str = "both",
          adv_norm: str = "row", mixed_precision: str = "none",
          adv_gamma: str = "clean", adv_gamma_uses: str = "all",
          adv_passes: str = "two", adam_epsilon: float = 1e-8,
          block: str = "kang205", loss: str = "bce", gbce_t: float = GBCE_T,
          optimizer: str = "adam") -> Union[SASRec, BPRMF, MostPop]:
  """A compiled, built model (or MostPop, which needs no training).

  ``lr`` None means the model's default (DEFAULT_LR). ``mixed_precision``
  is the model's dtype policy ('none' = float32); Keras's global policy is
  left alone. ``block``, ``loss`` (with ``gbce_t``) and ``optimizer`` shape
  SASRec/ASASRec only: 'adam' is TF1's dense Adam (every row's moments
  decay every step, as the authors ran), 'lazy_adam' updates the touched
  rows only (see training/optimizers.py) and the model then reads the item
  table row by row (see models/layers.py).
  """
  dtype = "float32" if mixed_precision == "none" else mixed_precision
  if name not in SEQUENTIAL and (block, loss, optimizer) != (
      "kang205", "bce", "adam"):
    raise UserError(f"--block, --loss and --optimizer apply to sasrec and "
                    f"asasrec, not --model={name}")
  if gbce_t != GBCE_T and loss != "gbce":
    raise UserError("--gbce_t applies to --loss=gbce only")
  if optimizer not in OPTIMIZERS:
    raise UserError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}")
  if name == "mostpop":
    return MostPop(data.item_popularity())
  lr = resolved_lr(name, lr)
  if name in PAIRWISE:
    cls = APR if name == "apr" else BPRMF
    extra = (dict(adv_eps=adv_eps, adv_reg=adv_reg, adv_norm=adv_norm)
             if name == "apr" else {})
    model = cls(data.num_users, data.num_items, hidden_units=hidden_units,
                dtype=dtype, **extra)
    model.build_for_inputs()
    model.compile(optimizer=SparseAdagrad(learning_rate=lr))
    model.optimizer.build(model.trainable_variables)
    return model
  if hidden_units % num_heads:
    raise UserError(f"--hidden_units={hidden_units} must be divisible by "
                    f"--num_heads={num_heads}")
  common = dict(hidden_units=hidden_units, num_blocks=num_blocks,
                num_heads=num_heads, dropout_rate=dropout_rate, block=block,
                loss=loss, gbce_t=gbce_t, row_reads=optimizer == "lazy_adam",
                dtype=dtype)
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
  adam = LazyAdam if optimizer == "lazy_adam" else DenseAdam
  opt = adam(learning_rate=lr, beta_2=0.98, epsilon=adam_epsilon)
  if mixed_precision == "mixed_float16":
    opt = keras.optimizers.LossScaleOptimizer(opt)
  model.compile(optimizer=opt)
  # Create the optimizer's slots now, not inside the first traced step
  # (which would make tf.function trace twice).
  model.optimizer.build(model.trainable_variables)
  return model


def resolved_lr(name: str, lr: Optional[float]) -> Optional[float]:
  """The learning rate ``build`` uses for ``name`` (None for MostPop)."""
  if name == "mostpop":
    return None
  return DEFAULT_LR[name] if lr is None else lr


def train_negatives(loss: str, value: Optional[int]) -> int:
  """Negatives per target the sampler draws for ``loss``: --train_negatives
  (default GBCE_NEGATIVES) for 'gbce', one for the others."""
  if loss == "gbce":
    return GBCE_NEGATIVES if value is None else value
  if value is not None:
    raise UserError(f"--train_negatives applies to --loss=gbce, not "
                    f"--loss={loss} (bce draws one negative per target, ce "
                    "scores every item)")
  return 1


def build_sampler(name: str, data: SequenceDataset, maxlen: int,
                  batch_size: int, seed: int, length_buckets: bool = False,
                  target_first_item: bool = False, num_negatives: int = 1):
  """The training-batch sampler ``name`` learns from (None for MostPop);
  ``length_buckets``, ``target_first_item`` and ``num_negatives`` apply to
  the sequential models (see TrainingSampler)."""
  if name in SEQUENTIAL:
    return TrainingSampler(data, maxlen, batch_size, seed, length_buckets,
                           target_first_item, num_negatives)
  if name in PAIRWISE:
    return PairSampler(data, batch_size, seed)
  return None
