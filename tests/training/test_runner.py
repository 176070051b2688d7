import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from asasrec_tf.data import loader
from asasrec_tf.data.sampler import TrainingSampler
from asasrec_tf.evaluation import protocol
from asasrec_tf.training import factory
from asasrec_tf.training import runner

# Every test here trains models end to end: left out of the fast tier
# (pytest -m "not slow").
pytestmark = pytest.mark.slow

PROTO = protocol.Protocol("loo_valid", "full", 100, "uniform", (10,), "valid",
                          "ndcg@10")


@pytest.fixture(scope="module")
def synthetic():
  return loader.load("synthetic", synthetic_users=600, synthetic_items=120,
                     synthetic_seed=1)


def model_and_sampler(data, model_name="sasrec", maxlen=20, lr=0.005,
                      batch_size=128, length_buckets=False, num_negatives=1,
                      **model_kw):
  """The tests' small model (seeded) and its sampler (None for MostPop)."""
  keras.utils.set_random_seed(0)
  model = factory.build(model_name, data, maxlen, hidden_units=32,
                        dropout_rate=0.2, lr=lr, **model_kw)
  sampler = (TrainingSampler(data, maxlen, batch_size, seed=0,
                             length_buckets=length_buckets,
                             num_negatives=num_negatives)
             if isinstance(model, keras.Model) else None)
  return model, sampler


def fit(data, run_dir, model_name="sasrec", epochs=8, maxlen=20, lr=0.005,
        batch_size=128, pretrain_epochs=0, init=None, init_optimizer=True,
        length_buckets=False, num_negatives=1, **model_kw):
  model, sampler = model_and_sampler(data, model_name, maxlen, lr, batch_size,
                                     length_buckets, num_negatives, **model_kw)
  if init:
    init = runner.load_init_checkpoint(model, init, init_optimizer)
  evaluators = protocol.build_evaluators(data, maxlen, PROTO)
  cfg = runner.TrainConfig(epochs=epochs, eval_every=4,
                           pretrain_epochs=pretrain_epochs)
  r = runner.Runner(model, data, sampler, evaluators, str(run_dir), cfg,
                    verbose=False, init=init)
  return r, r.fit()


def test_sasrec_learns_the_sequential_signal(synthetic, tmp_path):
  _, pop = fit(synthetic, tmp_path / "pop", "mostpop")
  _, sas = fit(synthetic, tmp_path / "sas", "sasrec", epochs=8)
  pop_hr = pop["metrics"]["test"]["hr@10"]
  sas_hr = sas["metrics"]["test"]["hr@10"]
  assert sas_hr >= 2 * pop_hr, (sas_hr, pop_hr)
  assert pop["best_epoch"] == 0 and pop["epochs_run"] == 0


def test_sasrec_on_length_buckets_learns(synthetic, tmp_path):
  _, pop = fit(synthetic, tmp_path / "pop", "mostpop")
  _, sas = fit(synthetic, tmp_path / "sas", "sasrec", epochs=8,
               length_buckets=True)
  assert sas["metrics"]["test"]["hr@10"] >= 2 * pop["metrics"]["test"]["hr@10"]


@pytest.mark.parametrize("step", [
    dict(adv_gamma="shared", adv_target="both"),
    dict(adv_gamma="shared", adv_gamma_uses="target", adv_target="output",
         adv_passes="one"),
    dict(adv_target="output", adv_passes="one"),  # the authors' step
])
def test_asasrec_step_forms_learn(synthetic, tmp_path, step):
  _, pop = fit(synthetic, tmp_path / "pop", "mostpop")
  _, adv = fit(synthetic, tmp_path / "adv", "asasrec", epochs=8,
               pretrain_epochs=4, **step)
  assert adv["metrics"]["test"]["hr@10"] >= 2 * pop["metrics"]["test"]["hr@10"]
  assert all(np.isfinite(h["train"]["loss"]) for h in adv["history"])


@pytest.mark.parametrize("loss,kw", [
    ("gbce", dict(num_negatives=4, gbce_t=0.0, epochs=12)),
    ("ce", dict(epochs=8))])
def test_the_losses_beyond_the_paper_learn(synthetic, tmp_path, loss, kw):
  """gSASRec's gBCE (4 negatives per target; t is checked by hand in
  tests/models) and full cross-entropy learn the synthetic signal: SASRec,
  then the authors' adversarial step from half-way."""
  _, pop = fit(synthetic, tmp_path / "pop", "mostpop")
  _, run = fit(synthetic, tmp_path / "adv", "asasrec", loss=loss,
               pretrain_epochs=kw["epochs"] // 2, adv_target="output",
               adv_passes="one", **kw)
  assert run["metrics"]["test"]["hr@10"] >= 2 * pop["metrics"]["test"][
      "hr@10"]
  assert all(np.isfinite(h["train"]["loss"]) for h in run["history"])
  assert run["history"][-1]["train"]["adv_loss"] > 0


def test_run_directory_contents(synthetic, tmp_path):
  r, summary = fit(synthetic, tmp_path, "asasrec", epochs=4)
  files = set(os.listdir(tmp_path))
  assert {"best.weights.h5", "last.weights.h5", "test_per_user.npz"} <= files
  assert [f for f in files if f.startswith("events.out.tfevents")]
  assert summary["selected_on"] == "valid" and summary["best_epoch"] == 4
  assert set(summary["metrics"]) == {"valid", "test"}
  per_user = np.load(tmp_path / "test_per_user.npz")
  np.testing.assert_allclose(per_user["ndcg@10"].mean(),
                             summary["metrics"]["test"]["ndcg@10"])
  assert summary["timing"]["train_seconds_per_epoch"] > 0
  # TensorBoard: losses (clean and adversarial apart) and metrics per epoch
  from tensorboard.backend.event_processing import event_accumulator
  acc = event_accumulator.EventAccumulator(str(tmp_path))
  acc.Reload()
  tags = set(acc.Tags()["tensors"])
  assert {"train/loss", "train/clean_loss", "train/adv_loss",
          "train/learning_rate", "valid/ndcg@10", "test/hr@10",
          "selected/valid/ndcg@10", "selected/test/hr@10"} <= tags
  assert [e.step for e in acc.Tensors("train/adv_loss")] == [1, 2, 3, 4]


def test_steps_are_traced_once(synthetic, tmp_path):
  model = factory.build("asasrec", synthetic, 10, hidden_units=16)
  sampler = TrainingSampler(synthetic, 10, batch_size=256, seed=0)
  plain, adv = runner.compile_steps(model, sampler)
  for epoch in (1, 2):
    for batch in sampler.dataset(epoch):  # 600 users: batches of 256, 256, 88
      adv(batch)
      plain(batch)
  assert adv.experimental_get_tracing_count() == 1
  assert plain.experimental_get_tracing_count() == 1


def test_pretraining_switches_the_adversary_on(synthetic, tmp_path):
  r, _ = fit(synthetic, tmp_path, "asasrec", epochs=4, pretrain_epochs=2)
  from tensorboard.backend.event_processing import event_accumulator
  acc = event_accumulator.EventAccumulator(str(tmp_path))
  acc.Reload()
  adv = [float(tf.make_ndarray(e.tensor_proto))
         for e in acc.Tensors("train/adv_loss")]
  assert adv[:2] == [0.0, 0.0] and min(adv[2:]) > 0


def test_init_checkpoint_continues_from_saved_weights(synthetic, tmp_path):
  first, _ = fit(synthetic, tmp_path / "a", "sasrec", epochs=4)
  _, cont = fit(synthetic, tmp_path / "b", "asasrec", epochs=0,
                init=str(tmp_path / "a"))
  # epochs=0 evaluates the loaded weights as they are: those of epoch 4
  assert cont["start_epoch"] == 4 and cont["epochs_run"] == 0
  assert cont["history"][-1]["valid"] == first.history[-1]["valid"]


def test_continuation_restores_the_switch_epochs_state(synthetic, tmp_path):
  """A run directory gives its last checkpoint: weights, Adam's moments and
  step count, dropout RNG, and the epoch numbering, as the authors'
  tf.train.Saver restore at the switch to ASASRec."""
  from asasrec_tf.training import checkpoint
  pre, _ = fit(synthetic, tmp_path / "pre", "sasrec", epochs=3)
  steps = pre.model.optimizer.iterations.numpy()
  assert steps == 3 * 5  # 600 users (all with >= 2 items) / 128: 5 a epoch
  moments = [v.numpy().copy() for v in pre.model.optimizer.variables[2:]]
  saved_rng = checkpoint.read(str(tmp_path / "pre"))["rng"]

  keras.utils.set_random_seed(0)
  model = factory.build("asasrec", synthetic, 20, hidden_units=32,
                        dropout_rate=0.2, lr=0.002)
  init = runner.load_init_checkpoint(model, str(tmp_path / "pre"))
  assert init["epoch"] == 3 and init["optimizer"]
  assert model.optimizer.iterations.numpy() == steps
  for got, want in zip(model.optimizer.variables[2:], moments):
    np.testing.assert_array_equal(got.numpy(), want)
  assert [v.numpy().tolist() for v in checkpoint.rng_variables(model)] == \
      saved_rng
  # the learning rate is this run's, not the one saved with the optimizer
  np.testing.assert_allclose(model.optimizer.learning_rate.numpy(), 0.002)

  _, cont = fit(synthetic, tmp_path / "cont", "asasrec", epochs=4,
                init=str(tmp_path / "pre"))
  assert cont["start_epoch"] == 3 and cont["epochs_run"] == 4
  assert [h["epoch"] for h in cont["history"]] == [4, 7]  # eval_every 4, last


def test_continuation_can_reset_the_optimizer(synthetic, tmp_path):
  fit(synthetic, tmp_path / "pre", "sasrec", epochs=2)
  model = factory.build("sasrec", synthetic, 20, hidden_units=32, lr=0.005)
  fresh = [v.numpy().copy() for v in model.optimizer.variables]
  init = runner.load_init_checkpoint(model, str(tmp_path / "pre"),
                                     optimizer=False)
  assert init == {"path": str(tmp_path / "pre" / "ckpt-000002.weights.h5"),
                  "epoch": 2, "optimizer": False}
  for got, want in zip(model.optimizer.variables, fresh):
    np.testing.assert_array_equal(got.numpy(), want)
  # ...but the weights are the checkpoint's
  trained = factory.build("sasrec", synthetic, 20, hidden_units=32)
  trained.load_weights(init["path"])
  np.testing.assert_array_equal(model.item_table.numpy(),
                                trained.item_table.numpy())


def test_weights_file_starts_epochs_from_zero(synthetic, tmp_path):
  fit(synthetic, tmp_path / "pre", "sasrec", epochs=2)
  model = factory.build("sasrec", synthetic, 20, hidden_units=32)
  init = runner.load_init_checkpoint(
      model, str(tmp_path / "pre" / "best.weights.h5"))
  assert init["epoch"] == 0


def test_continuation_resumes_without_its_init_run(synthetic, tmp_path):
  """A killed continuation resumes from its own checkpoint, keeping its
  epoch numbering, even when the run it started from is gone."""
  import shutil
  fit(synthetic, tmp_path / "pre", "sasrec", epochs=2)
  fit(synthetic, tmp_path / "cont", "asasrec", epochs=1,
      init=str(tmp_path / "pre"))
  shutil.rmtree(tmp_path / "pre")
  keras.utils.set_random_seed(0)
  model = factory.build("asasrec", synthetic, 20, hidden_units=32,
                        dropout_rate=0.2, lr=0.005)
  r = runner.Runner(model, synthetic, TrainingSampler(synthetic, 20, 128),
                    protocol.build_evaluators(synthetic, 20, PROTO),
                    str(tmp_path / "cont"),
                    runner.TrainConfig(epochs=3, eval_every=4), verbose=False,
                    resume=True)
  res = r.fit()
  assert res["start_epoch"] == 2 and res["epochs_run"] == 3
  assert res["init"]["epoch"] == 2
  assert [h["epoch"] for h in res["history"]] == [3, 4, 5]


def test_init_checkpoint_must_fit(synthetic, tmp_path):
  from asasrec_tf.errors import UserError
  fit(synthetic, tmp_path / "a", "sasrec", epochs=1)
  model = factory.build("sasrec", synthetic, 20, hidden_units=16)
  with pytest.raises(UserError, match="does not fit this model"):
    runner.load_init_checkpoint(model, str(tmp_path / "a"))
  with pytest.raises(UserError, match="no weights"):
    runner.load_init_checkpoint(model, str(tmp_path / "missing"))
  os.makedirs(tmp_path / "empty")
  with pytest.raises(UserError, match="holds no checkpoint"):
    runner.load_init_checkpoint(model, str(tmp_path / "empty"))


def test_non_finite_loss_stops_with_epoch_and_step(synthetic, tmp_path):
  from asasrec_tf.errors import TrainingError
  from asasrec_tf.training import checkpoint
  with pytest.raises(TrainingError, match=r"epoch 1, step \d+.*no checkpoint"):
    fit(synthetic, tmp_path, "sasrec", epochs=2, lr=1e30)
  assert not checkpoint.exists(str(tmp_path))


def test_write_results_is_json(tmp_path):
  runner.write_results(str(tmp_path), {"x": 1})
  assert json.load(open(tmp_path / "results.json")) == {"x": 1}


def test_bpr_beats_mostpop(synthetic, tmp_path):
  from asasrec_tf.data.sampler import PairSampler
  _, pop = fit(synthetic, tmp_path / "pop", "mostpop")
  keras.utils.set_random_seed(0)
  model = factory.build("bpr", synthetic, 20, hidden_units=32)
  evaluators = protocol.build_evaluators(synthetic, 20, PROTO)
  r = runner.Runner(model, synthetic, PairSampler(synthetic, 128, seed=0),
                    evaluators, str(tmp_path / "bpr"),
                    runner.TrainConfig(epochs=40, eval_every=10),
                    verbose=False)
  bpr = r.fit()
  assert (bpr["metrics"]["test"]["hr@10"] > pop["metrics"]["test"]["hr@10"]
          + 0.03), (bpr["metrics"], pop["metrics"])


def test_apr_starts_from_a_bpr_checkpoint(synthetic, tmp_path):
  bpr = factory.build("bpr", synthetic, 20, hidden_units=8)
  bpr.user_embedding.assign(bpr.user_embedding.numpy() + 1.0)
  runner.save_weights(bpr, str(tmp_path / "b.weights.h5"))
  apr = factory.build("apr", synthetic, 20, hidden_units=8)
  runner.load_init_checkpoint(apr, str(tmp_path / "b.weights.h5"))
  np.testing.assert_array_equal(apr.user_embedding.numpy(),
                                bpr.user_embedding.numpy())


def test_divergence_later_keeps_the_last_good_checkpoint(synthetic, tmp_path,
                                                         monkeypatch):
  from asasrec_tf.errors import TrainingError
  from asasrec_tf.training import checkpoint
  fit(synthetic, tmp_path, "sasrec", epochs=1)  # checkpoint of epoch 1
  real = runner.compile_steps

  def poisoned(model, sampler, strategy=None):
    plain, _ = real(model, sampler, strategy)

    def step(batch):
      logs = dict(plain(batch))
      logs["loss"] = tf.constant(float("inf"))
      return logs
    return step, step

  monkeypatch.setattr(runner, "compile_steps", poisoned)
  keras.utils.set_random_seed(0)
  model = factory.build("sasrec", synthetic, 20, hidden_units=32,
                        dropout_rate=0.2, lr=0.005)
  r = runner.Runner(model, synthetic, TrainingSampler(synthetic, 20, 128),
                    protocol.build_evaluators(synthetic, 20, PROTO),
                    str(tmp_path), runner.TrainConfig(epochs=3, eval_every=4),
                    verbose=False, resume=True)
  with pytest.raises(TrainingError,
                     match=r"epoch 2, step 1 .*checkpoint of epoch 1 is kept"):
    r.fit()
  assert json.load(open(tmp_path / "checkpoint.json"))["epoch"] == 1
  assert checkpoint.exists(str(tmp_path))


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_still_learns(synthetic, tmp_path, policy):
  _, pop = fit(synthetic, tmp_path / "pop", "mostpop")
  r, res = fit(synthetic, tmp_path / policy, "sasrec", epochs=8,
               mixed_precision=policy)
  assert r.model.embedding.compute_dtype != "float32"
  assert r.model.final_norm.compute_dtype == r.model.embedding.compute_dtype
  # the policy is the model's own: Keras's global one is untouched
  assert keras.mixed_precision.dtype_policy().name == "float32"
  losses = [h["train"]["loss"] for h in res["history"]]
  assert all(np.isfinite(losses))
  assert res["metrics"]["test"]["hr@10"] >= 2 * pop["metrics"]["test"]["hr@10"]
  # the adversarial step forms too, a few steps each (the fit loop under
  # the policy is the SASRec run's)
  for form in ({}, {"adv_target": "output", "adv_passes": "one"},
               {"adv_gamma": "shared", "adv_target": "output",
                "adv_gamma_uses": "target", "adv_passes": "one"}):
    model, sampler = model_and_sampler(synthetic, "asasrec",
                                       mixed_precision=policy, **form)
    _, step = runner.compile_steps(model, sampler)
    logs = [step(batch) for batch in sampler.dataset(1).take(3)]
    assert np.isfinite([[float(v) for v in log.values()] for log in logs]).all()
    assert all(np.isfinite(w.numpy()).all() for w in model.trainable_weights)


def test_weights_a_last_step_turns_nan_are_never_saved(synthetic, tmp_path,
                                                      monkeypatch):
  """The loss is checked before each update, so the last step of an epoch
  can leave NaN weights behind a finite loss: they must not reach the
  checkpoint or best.weights.h5."""
  from asasrec_tf.errors import TrainingError
  from asasrec_tf.training import checkpoint
  real = runner.compile_steps
  calls = {"n": 0}

  def poisoned(model, sampler, strategy=None):
    plain, _ = real(model, sampler, strategy)

    def step(batch):
      logs = plain(batch)
      calls["n"] += 1
      if calls["n"] == 3 * sampler.steps_per_epoch:   # last step of epoch 3
        model.item_table.assign(tf.fill(model.item_table.shape, np.nan))
      return logs
    return step, step

  monkeypatch.setattr(runner, "compile_steps", poisoned)
  with pytest.raises(TrainingError, match=r"non-finite weights after epoch 3 "
                     r".*checkpoint of epoch 2 is kept.*lower --lr or"):
    fit(synthetic, tmp_path, "sasrec", epochs=4)
  assert json.load(open(tmp_path / "checkpoint.json"))["epoch"] == 2
  model = factory.build("sasrec", synthetic, 20, hidden_units=32)
  checkpoint.load(str(tmp_path), model)
  assert all(np.isfinite(w.numpy()).all() for w in model.weights)


def test_divergence_of_asasrec_names_its_step_size_flags(synthetic, tmp_path):
  from asasrec_tf.errors import TrainingError
  with pytest.raises(TrainingError, match=r"lower --lr, --adv_eps or "
                     "--adv_reg"):
    fit(synthetic, tmp_path, "asasrec", epochs=2, lr=1e30)


def test_platform_info_reads_the_cpu_and_its_avx512(tmp_path):
  path = tmp_path / "cpuinfo"
  path.write_text("processor\t: 0\nmodel name\t: AMD EPYC\n"
                  "flags\t\t: fpu avx2 avx512_bf16\n")
  info = runner.platform_info(str(path))
  # avx512_bf16 alone is not the foundation flag avx512f
  assert (info["cpu"], info["avx512"]) == ("AMD EPYC", False)
  path.write_text("model name\t: Xeon\nflags\t\t: fpu avx2 avx512f\n")
  assert runner.platform_info(str(path))["avx512"] is True
  missing = runner.platform_info(str(tmp_path / "none"))
  assert missing["avx512"] is None and missing["cpu"]
  assert missing["cores"] == os.cpu_count()
