import json

import pytest

from asasrec_tf.errors import UserError
from asasrec_tf.training import checkpoint, rundir

FLAGS = {"model": "sasrec", "lr": 0.001, "ks": ["10", "100"], "resume": True,
         "run_name": "r"}


def test_fresh_directory_records_result_flags(tmp_path):
  assert rundir.prepare(str(tmp_path), "r", FLAGS) is False
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
  assert rundir.prepare(str(tmp_path), "r", {**FLAGS, "run_name": "x"}) is True
  rundir.unlock(str(tmp_path / "r"))


def test_other_flags_are_refused_naming_them(tmp_path):
  _with_checkpoint(tmp_path)
  with pytest.raises(UserError, match=r"--lr \(checkpoint: 0.001, now: 0.01\)"):
    rundir.prepare(str(tmp_path), "r", {**FLAGS, "lr": 0.01})


def test_noresume_with_checkpoint_is_refused(tmp_path):
  _with_checkpoint(tmp_path)
  with pytest.raises(UserError, match="pass --resume"):
    rundir.prepare(str(tmp_path), "r", FLAGS, resume=False)


def test_finished_run_is_refused(tmp_path):
  rundir.prepare(str(tmp_path), "r", FLAGS)
  rundir.unlock(str(tmp_path / "r"))
  (tmp_path / "r" / "results.json").write_text("{}")
  with pytest.raises(UserError, match="already holds a finished run"):
    rundir.prepare(str(tmp_path), "r", FLAGS)


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
