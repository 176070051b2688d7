"""Crash-safety of checkpoints and results, by failing writes on purpose."""

import os
import resource

import keras
import numpy as np
import pytest

from asasrec_tf import fileio
from asasrec_tf.data import loader
from asasrec_tf.training import factory
from asasrec_tf.training import checkpoint, runner


class Killed(BaseException):
  """Stands for the process dying at this point."""


@pytest.fixture
def model():
  data = loader.load("synthetic", synthetic_users=50, synthetic_items=30)
  keras.utils.set_random_seed(0)
  return factory.build("sasrec", data, 5, hidden_units=8)


def weights_of(model):
  return [w.numpy().copy() for w in model.weights]


def test_roundtrip_restores_weights_optimizer_and_rng(model, tmp_path):
  model.optimizer.iterations.assign(7)
  rng = checkpoint.rng_variables(model)
  # the embedding's dropout and two per block, never an optimizer variable
  assert [v.path.split("/")[-1] for v in rng] == ["seed_generator_state"] * 5
  rng[0].assign(rng[0].numpy() + 5)
  saved_w, saved_rng = weights_of(model), rng[0].numpy().copy()
  checkpoint.save(str(tmp_path), model, 3, {"x": 1}, runner.save_weights)
  for w in model.weights:
    w.assign(np.zeros(w.shape, w.dtype))
  model.optimizer.iterations.assign(0)
  rng[0].assign(np.zeros_like(saved_rng))
  payload = checkpoint.load(str(tmp_path), model)
  assert payload["epoch"] == 3 and payload["state"] == {"x": 1}
  for a, b in zip(weights_of(model), saved_w):
    np.testing.assert_array_equal(a, b)
  assert int(model.optimizer.iterations.numpy()) == 7
  np.testing.assert_array_equal(rng[0].numpy(), saved_rng)


def test_death_before_the_commit_keeps_the_previous_checkpoint(
    model, tmp_path, monkeypatch):
  checkpoint.save(str(tmp_path), model, 1, {"n": 1}, runner.save_weights)
  first = weights_of(model)
  for w in model.trainable_weights:
    w.assign(w.numpy() + 1.0)

  def die(*args, **kwargs):
    raise Killed()

  # dies after writing ckpt-2's weights, before checkpoint.json names them
  monkeypatch.setattr(checkpoint, "atomic_write_text", die)
  with pytest.raises(Killed):
    checkpoint.save(str(tmp_path), model, 2, {"n": 2}, runner.save_weights)
  monkeypatch.undo()
  payload = checkpoint.load(str(tmp_path), model)
  assert payload["epoch"] == 1
  for a, b in zip(weights_of(model), first):
    np.testing.assert_array_equal(a, b)


def test_death_while_writing_weights_leaves_no_torn_file(model, tmp_path,
                                                         monkeypatch):
  checkpoint.save(str(tmp_path), model, 1, {}, runner.save_weights)
  real_write = fileio.atomic_write

  def half_write(path, write, suffix=""):
    def torn(tmp):
      with open(tmp, "wb") as f:
        f.write(b"\x89HDF\r\n")  # a truncated h5 file
      raise Killed()
    return real_write(path, torn, suffix)

  monkeypatch.setattr(fileio, "atomic_write", half_write)
  with pytest.raises(Killed):
    checkpoint.save(str(tmp_path), model, 2, {}, runner.save_weights)
  monkeypatch.undo()
  assert sorted(os.listdir(tmp_path)) == ["checkpoint.json",
                                          "ckpt-000001.weights.h5"]
  assert checkpoint.load(str(tmp_path), model)["epoch"] == 1


def test_weights_image_is_what_save_weights_writes(model, tmp_path):
  model.save_weights(str(tmp_path / "keras.weights.h5"))
  saved = weights_of(model)
  runner.save_weights(model, str(tmp_path / "ours.weights.h5"))
  for v in model.weights + model.optimizer.variables:
    v.assign(np.zeros(v.shape, v.dtype))
  model.load_weights(str(tmp_path / "ours.weights.h5"))
  for a, b in zip(weights_of(model), saved):
    np.testing.assert_array_equal(a, b)


def test_a_write_over_the_file_size_limit_is_a_write_error(model, tmp_path):
  # `ulimit -f` or a full disk: h5py writing the file itself crashed the
  # process (exit 139); the image written as bytes fails as a plain OSError.
  soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
  resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
  try:
    with pytest.raises(fileio.WriteError, match="File too large"):
      runner.save_weights(model, str(tmp_path / "w.weights.h5"))
  finally:
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
  assert os.listdir(tmp_path) == []


def test_death_while_writing_results_leaves_no_results_file(tmp_path,
                                                            monkeypatch):
  def die(*args):
    raise Killed()

  monkeypatch.setattr(fileio.os, "replace", die)
  with pytest.raises(Killed):
    runner.write_results(str(tmp_path), {"metrics": {}})
  assert os.listdir(tmp_path) == []  # neither results.json nor a temp file


def test_a_full_disk_is_a_clear_error_and_keeps_the_previous_files(
    model, tmp_path, monkeypatch):
  import errno
  from asasrec_tf.errors import UserError
  checkpoint.save(str(tmp_path), model, 1, {}, runner.save_weights)
  before = sorted(os.listdir(tmp_path))

  def full(fd):
    raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(fileio.os, "fsync", full)
  with pytest.raises(UserError, match=r"ckpt-000002.weights.h5: no space "
                     "left on the device; nothing was written"):
    checkpoint.save(str(tmp_path), model, 2, {}, runner.save_weights)
  monkeypatch.undo()
  assert sorted(os.listdir(tmp_path)) == before   # no temporary left
  assert checkpoint.load(str(tmp_path), model)["epoch"] == 1


def test_files_get_the_umask_permissions_and_stale_temporaries_go(tmp_path):
  old = os.umask(0o022)
  try:
    path = fileio.atomic_write_text(str(tmp_path / "a.json"), "{}")
  finally:
    os.umask(old)
  # mkstemp makes 0600 files; a plainly created one is 0644 under umask 022
  assert os.stat(path).st_mode & 0o777 == 0o644
  (tmp_path / ".tmp-abc.weights.h5").write_bytes(b"torn")
  (tmp_path / ".tmp-dir").mkdir()
  assert fileio.remove_stale_temporaries(str(tmp_path)) == 2
  assert os.listdir(tmp_path) == ["a.json"]


@pytest.mark.parametrize("payload,reason", [
    ([], "not a JSON object"),
    ({"epoch": 1, "weights": "ckpt-000001.weights.h5", "state": {}}, "no rng"),
    ({"epoch": "one", "weights": "ckpt-000001.weights.h5", "state": {},
      "rng": []}, "epoch 'one' is not a non-negative integer"),
    ({"epoch": 1, "weights": "../../elsewhere/ckpt-1.weights.h5", "state": {},
      "rng": []}, "is not a ckpt-<epoch>.weights.h5 file name"),
    ({"epoch": 1, "weights": "ckpt-000001.weights.h5", "state": [],
      "rng": []}, "state is not a JSON object"),
])
def test_a_checkpoint_json_of_the_wrong_shape_is_unreadable(tmp_path, payload,
                                                             reason):
  import json
  (tmp_path / checkpoint.STATE).write_text(json.dumps(payload))
  with pytest.raises(checkpoint.UnreadableCheckpoint,
                     match=f"checkpoint.json: unreadable checkpoint .*{reason}"):
    checkpoint.read(str(tmp_path))
