"""The evaluation protocol: which items, which candidates, which metric picks
the epoch. Owns the evaluation flags and validates them against the split."""

from __future__ import annotations

import dataclasses
from typing import Dict, Tuple

from absl import flags

from asasrec_tf.data.dataset import SequenceDataset
from asasrec_tf.errors import UserError
from asasrec_tf.evaluation.ranking import (CANDIDATES, NEGATIVE_SAMPLING,
                                           RankingEvaluator)

flags.DEFINE_enum("candidates", "full", list(CANDIDATES),
                  "Rank against every item not in the history, or against "
                  "sampled negatives.")
flags.DEFINE_integer("num_negatives", 100, "Negatives per user when sampled.",
                     lower_bound=1)
flags.DEFINE_enum("negative_sampling", "uniform", list(NEGATIVE_SAMPLING),
                  "How sampled negatives are drawn.")
flags.DEFINE_list("ks", ["10", "100"], "Cut-offs K of HR@K and NDCG@K.")
flags.DEFINE_enum("select_on", "valid", ["valid", "test"],
                  "Which held-out item picks the best epoch; 'test' (what the "
                  "paper did) needs --split=loo and is labelled as such.")
flags.DEFINE_string("select_metric", "ndcg@10",
                    "Metric that picks the best epoch, e.g. ndcg@10, hr@100.")
flags.DEFINE_integer("eval_batch_size", 256, "Users scored at once.",
                     lower_bound=1)
flags.DEFINE_integer("eval_seed", 0, "Seed of the sampled negatives (fixed "
                     "across epochs and models so runs are comparable).")

FLAGS = flags.FLAGS


@dataclasses.dataclass(frozen=True)
class Protocol:
  split: str
  candidates: str
  num_negatives: int
  negative_sampling: str
  ks: Tuple[int, ...]
  select_on: str
  select_metric: str

  def as_dict(self) -> Dict[str, object]:
    out = dataclasses.asdict(self)
    if self.candidates == "full":
      out.pop("num_negatives")
      out.pop("negative_sampling")
    return out


def protocol_from_flags() -> Protocol:
  """Reads and validates the evaluation flags."""
  try:
    ks = tuple(int(k) for k in FLAGS.ks)
  except ValueError:
    raise UserError(f"--ks must be a comma-separated list of integers, got "
                    f"{','.join(FLAGS.ks)}") from None
  if not ks or min(ks) < 1:
    raise UserError(f"--ks must be positive, got {','.join(FLAGS.ks)}")
  p = Protocol(FLAGS.split, FLAGS.candidates, FLAGS.num_negatives,
               FLAGS.negative_sampling, ks, FLAGS.select_on,
               FLAGS.select_metric)
  validate(p)
  return p


def validate(p: Protocol) -> None:
  if p.select_on == "test" and p.split != "loo":
    raise UserError("--select_on=test is only allowed with --split=loo (the "
                    "paper's protocol); with --split=loo_valid the epoch is "
                    "selected on validation")
  if p.select_on == "valid" and p.split == "loo":
    raise UserError("--split=loo has no validation item: pass "
                    "--select_on=test (the paper's protocol, reported as "
                    "selected on test) or use --split=loo_valid")
  names = [f"{m}@{k}" for k in p.ks for m in ("hr", "ndcg")]
  if p.select_metric not in names:
    raise UserError(f"--select_metric must be one of {', '.join(names)} "
                    f"(from --ks), got {p.select_metric!r}")


def build_evaluators(data: SequenceDataset, maxlen: int, p: Protocol,
                     batch_size: int = 256,
                     seed: int = 0) -> Dict[str, RankingEvaluator]:
  """{'valid': ..., 'test': ...} (only 'test' for --split=loo)."""
  targets = ("test",) if data.split == "loo" else ("valid", "test")
  return {t: RankingEvaluator(data, t, maxlen, p.candidates, p.num_negatives,
                              p.negative_sampling, p.ks, batch_size, seed)
          for t in targets}
