"""The evaluation protocol: which items, which candidates, which metric picks
the epoch, validated against the split."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Dict, Tuple

from asasrec_tf.data.dataset import SequenceDataset
from asasrec_tf.errors import UserError

if TYPE_CHECKING:   # loads TensorFlow: imported where evaluators are built
  from asasrec_tf.evaluation.ranking import RankingEvaluator

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
  """{'valid': ..., 'test': ...} (only 'test' for --split=loo).

  Raises:
    UserError: no user has a held-out item to evaluate (with loo_valid,
      every user has fewer than 3 interactions).
  """
  targets = ("test",) if data.split == "loo" else ("valid", "test")
  for t in targets:
    if not len(data.eval_users(t)):
      rule = ("users need 3 interactions or more under --split=loo_valid"
              if data.split == "loo_valid" else "users need an interaction")
      raise UserError(f"{data.name}: no user has a {t} item to evaluate "
                      f"({rule}); there would be no result to report")
  from asasrec_tf.evaluation.ranking import RankingEvaluator
  return {t: RankingEvaluator(data, t, maxlen, p.candidates, p.num_negatives,
                              p.negative_sampling, p.ks, batch_size, seed)
          for t in targets}
