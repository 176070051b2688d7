import pytest

from asasrec_tf.errors import UserError
from asasrec_tf.evaluation import protocol


def make(**kw):
  base = dict(split="loo_valid", candidates="full", num_negatives=100,
              negative_sampling="uniform", ks=(10, 100), select_on="valid",
              select_metric="ndcg@10")
  return protocol.Protocol(**{**base, **kw})


def test_selection_on_test_only_with_loo():
  protocol.validate(make(split="loo", select_on="test"))
  with pytest.raises(UserError, match="--select_on=test is only allowed"):
    protocol.validate(make(select_on="test"))
  with pytest.raises(UserError, match="--split=loo has no validation"):
    protocol.validate(make(split="loo"))


def test_select_metric_must_be_computed():
  with pytest.raises(UserError, match="--select_metric must be one of"):
    protocol.validate(make(select_metric="ndcg@20"))


def test_full_protocol_omits_sampling_fields():
  assert "num_negatives" not in make().as_dict()
  assert make(candidates="sampled").as_dict()["num_negatives"] == 100


def test_evaluators_follow_the_split(tiny_dataset):
  evs = protocol.build_evaluators(tiny_dataset, 3, make(ks=(1,),
                                                        select_metric="hr@1"))
  assert sorted(evs) == ["test", "valid"]
