"""What every program shares: grouped --help, flag checks, Ctrl-C, and that
only programs define flags."""

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, without_tensorflow


def program(name, *args, **kw):
  return subprocess.run([sys.executable, "-m", name, *args],
                        capture_output=True, text=True, cwd=REPO, timeout=300,
                        **kw)


def test_main_help_lists_its_own_flags_by_group_and_exits_0():
  out = program("asasrec_tf.main", "--help")
  assert out.returncode == 0, out.stderr[-2000:]
  text = out.stdout
  for group in ("Data:", "Model:", "Adversary (ASASRec, APR):", "Training:",
                "Run directory:", "Evaluation:", "Devices:"):
    assert group in text, group
  assert "--adv_passes (default: two)" in text
  assert "--epochs (default: 200)" in text
  # not another program's flags, nor absl's
  for other in ("--top_n", "--run_dir", "--robust_eps", "--helpxml",
                "--only_check_args"):
    assert other not in text, other
  assert len(text.splitlines()) < 200


@pytest.mark.parametrize("name,wanted", [
    ("asasrec_tf.recommend", ("--run_dir", "--top_n", "--user", "--history")),
    ("asasrec_tf.export", ("--run_dir", "--top_n", "--export_dir")),
    ("asasrec_tf.robustness", ("--run_dir", "--robust_eps")),
    ("asasrec_tf.report", ("--runs_dir", "--smoke")),
    ("asasrec_tf.data", ("--dataset", "--data_dir")),
])
def test_every_program_has_a_help(name, wanted):
  out = program(name, "--help")
  assert out.returncode == 0, out.stderr[-2000:]
  for flag in wanted:
    assert flag in out.stdout, (name, flag)
  assert "--epochs" not in out.stdout or name == "asasrec_tf.main"


@pytest.mark.parametrize("flag", ["--lr=nan", "--dropout_rate=nan",
                                  "--adv_eps=inf", "--adv_reg=inf",
                                  "--adam_epsilon=nan"])
def test_non_finite_floats_are_refused_naming_the_flag(flag, tmp_path):
  out = program("asasrec_tf.main", flag, f"--results_dir={tmp_path}")
  assert out.returncode == 2, out.stderr[-2000:]
  name = flag.split("=")[0]
  assert f"{name} must be a finite number" in out.stderr
  assert "Traceback" not in out.stderr
  assert os.listdir(tmp_path) == []


@pytest.mark.slow
@pytest.mark.parametrize("sig,code,line", [
    (signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_a_stop_signal_exits_with_its_code_a_line_and_the_checkpoint(
    tmp_path, sig, code, line):
  # 130 = 128 + SIGINT (2), 143 = 128 + SIGTERM (15): the shell's convention.
  proc = subprocess.Popen(
      [sys.executable, "-m", "asasrec_tf.main", "--epochs=500",
       "--synthetic_users=300", f"--results_dir={tmp_path}", "--run_name=r"],
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 240
  while not (tmp_path / "r" / "checkpoint.json").exists():
    assert time.time() < deadline and proc.poll() is None
    time.sleep(0.1)
  proc.send_signal(sig)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == code, err[-2000:]
  assert f"{line}; a run resumes from its last checkpoint" in err
  assert "Traceback" not in err
  assert (tmp_path / "r" / "checkpoint.json").exists()


# A program whose first finalizer receives Ctrl-C (TensorFlow frees an
# iterator's or a tensor's resources in __del__ every epoch; Python prints
# an exception raised there and goes on, so a KeyboardInterrupt raised in
# one is lost and training ran to its last epoch).
CTRL_C_IN_A_FINALIZER = """
import os, signal, sys, time
from asasrec_tf import cli

class Finalized:
  sent = False
  def __del__(self):
    if not Finalized.sent:
      Finalized.sent = True
      os.kill(os.getpid(), signal.SIGINT)
      time.sleep(0.2)          # the handler runs here, inside __del__

def main(argv):
  for _ in range(40):
    Finalized()                # freed at once: its __del__ runs now
    time.sleep(0.05)
  print("ran to the end")

cli.run(main, "usage")
"""


def test_ctrl_c_during_a_finalizer_still_stops_the_program():
  out = subprocess.run([sys.executable, "-c", CTRL_C_IN_A_FINALIZER],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
  assert out.returncode == 130, (out.stdout, out.stderr[-2000:])
  assert "ran to the end" not in out.stdout
  assert "interrupted; a run resumes from its last checkpoint" in out.stderr
  assert "Exception ignored" not in out.stderr
  assert "Traceback" not in out.stderr


CTRL_C_TURNED_INTO_AN_IMPORT_ERROR = """
import signal
from asasrec_tf import cli

def main(argv):
  # What numpy does when Ctrl-C lands in its C extension's import while
  # TensorFlow loads: the KeyboardInterrupt comes back as an ImportError.
  try:
    signal.raise_signal(signal.{sig})
  except KeyboardInterrupt as e:
    raise ImportError("Importing the numpy C-extensions failed.") from e
  print("ran to the end")

cli.run(main, "usage")
"""


@pytest.mark.parametrize("sig,code,word", [("SIGINT", 130, "interrupted"),
                                           ("SIGTERM", 143, "terminated")])
def test_an_error_caused_by_a_signal_exits_as_the_signal(sig, code, word):
  code_text = CTRL_C_TURNED_INTO_AN_IMPORT_ERROR.format(sig=sig)
  out = subprocess.run([sys.executable, "-c", code_text], capture_output=True,
                       text=True, cwd=REPO, timeout=120)
  assert out.returncode == code, (out.stdout, out.stderr[-2000:])
  assert f"{word}; a run resumes" in out.stderr
  assert "Traceback" not in out.stderr and "ran to the end" not in out.stdout


@pytest.mark.slow
def test_library_packages_define_no_flags():
  code = ("import importlib, pkgutil\n"
          "from absl import flags\n"
          "import asasrec_tf\n"
          "for pkg in ('data', 'models', 'evaluation', 'training', 'report'):\n"
          "  mod = importlib.import_module('asasrec_tf.' + pkg)\n"
          "  for info in pkgutil.iter_modules(mod.__path__):\n"
          "    if info.name != '__main__':\n"
          "      importlib.import_module(f'asasrec_tf.{pkg}.{info.name}')\n"
          "for name in ('cli', 'fileio', 'artifacts', 'errors', 'main',\n"
          "             'recommend', 'export', 'robustness', 'bench'):\n"
          "  importlib.import_module('asasrec_tf.' + name)\n"
          "ours = [m for m in flags.FLAGS.flags_by_module_dict()\n"
          "        if m.startswith('asasrec_tf')]\n"
          "print(ours)\n")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, cwd=REPO, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  # programs define theirs only when run, in define_flags()
  assert out.stdout.strip().splitlines()[-1] == "[]"


CTRL_C_WHILE_FLAGS_ARE_DEFINED = """
import signal
from asasrec_tf import cli

def define_flags():
  # A Ctrl-C before any flag exists: a loaded machine spent 1.5 s here.
  signal.raise_signal(signal.{sig})

def main(argv):
  print("ran to the end")

cli.run(main, "usage", define_flags)
"""


@pytest.mark.parametrize("sig,code,word", [("SIGINT", 130, "interrupted"),
                                           ("SIGTERM", 143, "terminated")])
def test_a_signal_while_flags_are_defined_is_one_line(sig, code, word):
  out = subprocess.run(
      [sys.executable, "-c", CTRL_C_WHILE_FLAGS_ARE_DEFINED.format(sig=sig)],
      capture_output=True, text=True, cwd=REPO, timeout=120)
  assert out.returncode == code, out.stderr[-2000:]
  assert out.stderr.startswith(f"error: {word}; a run resumes")
  assert "Traceback" not in out.stderr and "ran to the end" not in out.stdout


@pytest.mark.slow
@pytest.mark.parametrize("name,args", [
    ("asasrec_tf.main", ["--epochs=1"]),
    ("asasrec_tf.export", ["--run_dir=/nonexistent", "--export_dir=x"])])
def test_ctrl_c_while_tensorflow_is_imported_is_one_line(name, args,
                                                         tmp_path):
  proc = subprocess.Popen([sys.executable, "-m", name, *args,
                           *([f"--results_dir={tmp_path}"]
                             if name.endswith("main") else [])],
                          cwd=str(tmp_path), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONPATH": REPO})
  time.sleep(1.5)   # importing TensorFlow and Keras takes several seconds
  assert proc.poll() is None, "the program ended before it was interrupted"
  proc.send_signal(signal.SIGINT)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 130, err[-2000:]
  assert "error: interrupted" in err and "Traceback" not in err
  assert sorted(os.listdir(tmp_path)) == []


@pytest.mark.parametrize("name", ["asasrec_tf.main", "asasrec_tf.export",
                                  "asasrec_tf.recommend",
                                  "asasrec_tf.robustness", "asasrec_tf.report",
                                  "asasrec_tf.data", "asasrec_tf.bench"])
def test_help_and_flag_errors_do_not_import_tensorflow(name, tmp_path):
  env = without_tensorflow(tmp_path)
  out = program(name, "--help", env=env)
  assert out.returncode == 0, out.stderr[-2000:]
  out = program(name, "--no_such_flag", env=env)
  assert out.returncode == 2, out.stderr[-2000:]
  assert "no_such_flag" in out.stderr and "was imported" not in out.stderr


@pytest.mark.parametrize("bad,said", [
    ("--seed=-1", "flag --seed"), ("--model=gru4rec", "flag --model"),
    ("--run_name=..", "flag --run_name"), ("--run_name=a/b", "flag --run_name"),
    ("--train_negatives=8", "apply to --loss=gbce only"),
    ("--gbce_t=0.5", "apply to --loss=gbce only")])
def test_a_bad_value_is_refused_before_tensorflow_is_imported(bad, said,
                                                              tmp_path):
  out = program("asasrec_tf.main", bad, env=without_tensorflow(tmp_path))
  assert out.returncode == 2 and said in out.stderr, out.stderr[-2000:]
  assert "was imported" not in out.stderr


@pytest.mark.parametrize("flag", ["--seed=-1", "--seed=4294967296",
                                  "--synthetic_seed=-1", "--eval_seed=-1"])
def test_seeds_out_of_range_are_refused_naming_the_flag(flag, tmp_path):
  out = program("asasrec_tf.main", flag, f"--results_dir={tmp_path}")
  assert out.returncode == 2, out.stderr[-2000:]
  assert f"flag {flag}" in out.stderr and "Traceback" not in out.stderr
  assert os.listdir(tmp_path) == []


def test_a_flagfile_that_is_not_utf8_is_named(tmp_path):
  bad = tmp_path / "latin1.cfg"
  bad.write_bytes("--model=sasrec\n# d\xe9j\xe0\n".encode("latin-1"))
  out = program("asasrec_tf.main", f"--flagfile={bad}",
                f"--results_dir={tmp_path / 'runs'}")
  assert out.returncode == 2, out.stderr[-2000:]
  assert f"{bad}: a --flagfile must be UTF-8 text" in out.stderr
  assert "Traceback" not in out.stderr
