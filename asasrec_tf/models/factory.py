"""Builds the model the model flags describe. Owns the model flags."""

from __future__ import annotations

from typing import Union

import keras
from absl import flags

from asasrec_tf.data.dataset import SequenceDataset
from asasrec_tf.errors import UserError
from asasrec_tf.models import adversarial
from asasrec_tf.models.mostpop import MostPop
from asasrec_tf.models.sasrec import ADV_TARGETS, ASASRec, SASRec

MODELS = ("sasrec", "asasrec", "mostpop")

flags.DEFINE_enum("model", "sasrec", list(MODELS), "Model to train.")
flags.DEFINE_integer("hidden_units", 64, "Latent dimension d.", lower_bound=1)
flags.DEFINE_integer("num_blocks", 2, "Self-attention blocks.", lower_bound=1)
flags.DEFINE_integer("num_heads", 1, "Attention heads.", lower_bound=1)
flags.DEFINE_float("dropout_rate", 0.5, "Dropout rate.", lower_bound=0.0,
                   upper_bound=0.99)
flags.DEFINE_string("maxlen", "50", "Maximum sequence length n, or 'auto' for "
                    "min(mean training length, 50) (the authors' rule).")
flags.DEFINE_float("lr", 0.001, "Adam learning rate (beta_2 = 0.98).",
                   lower_bound=0.0)
flags.DEFINE_float("adv_eps", 0.5, "Perturbation size epsilon.",
                   lower_bound=0.0)
flags.DEFINE_float("adv_reg", 1.0, "Weight lambda of the adversarial loss.",
                   lower_bound=0.0)
flags.DEFINE_enum("adv_target", "both", list(ADV_TARGETS),
                  "Where the perturbation goes: both (Eq. 9: input and output "
                  "item embeddings), output (the authors' code), input.")
flags.DEFINE_enum("adv_norm", "row", list(adversarial.NORMS),
                  "Normalise the gradient per item row or over the table.")

FLAGS = flags.FLAGS


def resolve_maxlen(value: str, data: SequenceDataset) -> int:
  """An integer --maxlen, or the authors' 'auto' rule for ``data``."""
  if value == "auto":
    return data.auto_maxlen()
  try:
    maxlen = int(value)
  except ValueError:
    raise UserError(f"--maxlen must be a positive integer or 'auto', got "
                    f"{value!r}") from None
  if maxlen < 1:
    raise UserError(f"--maxlen must be a positive integer or 'auto', got {maxlen}")
  return maxlen


def build(name: str, data: SequenceDataset, maxlen: int, hidden_units: int = 64,
          num_blocks: int = 2, num_heads: int = 1, dropout_rate: float = 0.5,
          lr: float = 0.001, adv_eps: float = 0.5, adv_reg: float = 1.0,
          adv_target: str = "both", adv_norm: str = "row"
          ) -> Union[SASRec, MostPop]:
  """A compiled, built model (or MostPop, which needs no training)."""
  if name == "mostpop":
    return MostPop(data.item_popularity())
  if hidden_units % num_heads:
    raise UserError(f"--hidden_units={hidden_units} must be divisible by "
                    f"--num_heads={num_heads}")
  common = dict(hidden_units=hidden_units, num_blocks=num_blocks,
                num_heads=num_heads, dropout_rate=dropout_rate)
  if name == "sasrec":
    model = SASRec(data.num_items, maxlen, **common)
  elif name == "asasrec":
    model = ASASRec(data.num_items, maxlen, adv_eps=adv_eps, adv_reg=adv_reg,
                    adv_target=adv_target, adv_norm=adv_norm, **common)
  else:
    raise UserError(f"--model must be one of {', '.join(MODELS)}, got {name!r}")
  model.build_for_inputs()
  model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr, beta_2=0.98))
  # Create the optimizer's slots now, not inside the first traced step
  # (which would make tf.function trace twice).
  model.optimizer.build(model.trainable_variables)
  return model


def build_from_flags(data: SequenceDataset, maxlen: int):
  return build(FLAGS.model, data, maxlen, hidden_units=FLAGS.hidden_units,
               num_blocks=FLAGS.num_blocks, num_heads=FLAGS.num_heads,
               dropout_rate=FLAGS.dropout_rate, lr=FLAGS.lr,
               adv_eps=FLAGS.adv_eps, adv_reg=FLAGS.adv_reg,
               adv_target=FLAGS.adv_target, adv_norm=FLAGS.adv_norm)
