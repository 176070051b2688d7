import json
import os

import pytest

from asasrec_tf.errors import UserError
from asasrec_tf.training import checkpoint, rundir

FLAGS = {"model": "sasrec", "lr": 0.001, "ks": ["10", "100"], "resume": True,
         "run_name": "r"}


def test_fresh_directory_records_result_flags(tmp_path):
  assert rundir.prepare(str(tmp_path), "r", FLAGS) == rundir.NEW
  recorded = json.load(open(tmp_path / "r" / "run.json"))
  assert recorded == {"model": "sasrec", "lr": 0.001, "ks": ["10", "100"]}
  rundir.unlock(str(tmp_path / "r"))


def _with_checkpoint(tmp_path):
  rundir.prepare(str(tmp_path), "r", FLAGS)
  rundir.unlock(str(tmp_path / "r"))
  (tmp_path / "r" / checkpoint.STATE).write_text("{}")


def test_same_flags_resume(tmp_path):
  _with_checkpoint(tmp_path)
  # flags that do not shape results may change
  assert rundir.prepare(str(tmp_path), "r",
                        {**FLAGS, "run_name": "x"}) == rundir.RESUME
  rundir.unlock(str(tmp_path / "r"))


def test_other_flags_are_refused_naming_them(tmp_path):
  _with_checkpoint(tmp_path)
  with pytest.raises(UserError, match=r"--lr \(checkpoint: 0.001, now: 0.01\)"):
    rundir.prepare(str(tmp_path), "r", {**FLAGS, "lr": 0.01})


def test_noresume_with_checkpoint_is_refused(tmp_path):
  _with_checkpoint(tmp_path)
  with pytest.raises(UserError, match="pass --resume"):
    rundir.prepare(str(tmp_path), "r", FLAGS, resume=False)


def test_finished_run_is_reported_or_refused_with_other_flags(tmp_path):
  rundir.prepare(str(tmp_path), "r", FLAGS)
  rundir.unlock(str(tmp_path / "r"))
  (tmp_path / "r" / "results.json").write_text("{}")
  assert rundir.prepare(str(tmp_path), "r", FLAGS) == rundir.FINISHED
  rundir.unlock(str(tmp_path / "r"))
  with pytest.raises(UserError, match=r"finished run made with other flags: "
                     r"--lr \(finished run: 0.001, now: 0.01\)"):
    rundir.prepare(str(tmp_path), "r", {**FLAGS, "lr": 0.01})


def test_restart_empties_the_directory(tmp_path):
  _with_checkpoint(tmp_path)
  (tmp_path / "r" / "tensorboard").mkdir()
  (tmp_path / "r" / ".tmp-torn.weights.h5").write_bytes(b"x")
  assert rundir.prepare(str(tmp_path), "r", {**FLAGS, "lr": 0.5},
                        restart=True) == rundir.NEW
  assert sorted(os.listdir(tmp_path / "r")) == [".lock", "run.json"]
  rundir.unlock(str(tmp_path / "r"))


def test_stale_temporaries_are_removed_when_a_run_starts(tmp_path):
  _with_checkpoint(tmp_path)
  (tmp_path / "r" / ".tmp-abc.weights.h5").write_bytes(b"torn")
  rundir.prepare(str(tmp_path), "r", FLAGS)
  assert ".tmp-abc.weights.h5" not in os.listdir(tmp_path / "r")
  rundir.unlock(str(tmp_path / "r"))


def test_abandon_removes_only_a_run_without_results(tmp_path):
  rundir.prepare(str(tmp_path), "a", FLAGS)
  rundir.abandon(str(tmp_path / "a"))
  assert not (tmp_path / "a").exists()     # no empty .lock left behind
  _with_checkpoint(tmp_path)
  rundir.lock(str(tmp_path / "r"))
  rundir.abandon(str(tmp_path / "r"))
  assert (tmp_path / "r" / checkpoint.STATE).exists()


def test_default_name_is_stable():
  assert rundir.default_name("video", "sasrec", "loo", 0, "1a2b3c4d") == \
      "video-sasrec-loo-seed0-1a2b3c4d"


def test_second_writer_is_refused(tmp_path):
  rundir.prepare(str(tmp_path), "r", FLAGS)
  try:
    import subprocess, sys
    code = ("import sys; from asasrec_tf.training import rundir\n"
            "try:\n rundir.lock(sys.argv[1])\nexcept Exception as e:\n"
            " print(e); sys.exit(7)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "r")],
                         capture_output=True, text=True)
    assert out.returncode == 7 and "in use by another process" in out.stdout
  finally:
    rundir.unlock(str(tmp_path / "r"))
