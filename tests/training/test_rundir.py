import json
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

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
  (tmp_path / "r" / "results.json").write_text('{"metrics": {}}')
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


@pytest.mark.slow  # a second process (which imports TensorFlow)
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


# --- nothing a user has is ever deleted (issue 19) ---------------------------

@pytest.mark.parametrize("name,problem", [
    ("..", "starts with '.'"), (".", "starts with '.'"),
    (".hidden", "starts with '.'"), ("../../x", "path separator"),
    ("/tmp/x", "path separator"), ("a/b", "path separator"), ("", "is empty"),
    ("x" * 300, "is 300 bytes long"), ("a\nb", "control character"),
    ("a\0b", "control character")])
def test_a_run_name_is_one_directory_name(tmp_path, name, problem):
  with pytest.raises(UserError, match=f"--run_name .*{problem}"):
    rundir.prepare(str(tmp_path / "runs"), name, FLAGS)
  assert not (tmp_path / "runs").exists()


def _snapshot(root, inside=None):
  """Every path under ``root`` with its content (directories as None),
  but for those under ``inside``."""
  out = {}
  for base, dirs, files in os.walk(root):
    if inside and (base + "/").startswith(inside.rstrip("/") + "/"):
      continue
    for d in dirs:
      if os.path.join(base, d) != inside:
        out[os.path.join(base, d)] = None
    for f in files:
      with open(os.path.join(base, f), "rb") as fh:
        out[os.path.join(base, f)] = fh.read()
  return out


def _users_files(root):
  (root / "runs" / "other").mkdir(parents=True)
  (root / "runs" / "other" / "run.json").write_text("{}")
  (root / "runs" / "other" / "results.json").write_text('{"metrics": {}}')
  (root / "runs" / "notes").mkdir()
  (root / "runs" / "notes" / "notes.txt").write_text("mine")
  (root / "table2.md").write_text("| tracked |")


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.one_of(
    st.sampled_from(["..", ".", "../..", "notes", "other", "../table2.md",
                     "runs", "x/../..", "/", "./other", "other/", "a" * 200]),
    st.text(alphabet="./\\\0\nab-_é", max_size=12)),
    restart=st.booleans())
def test_hostile_names_change_nothing_outside_their_run_directory(
    tmp_path_factory, name, restart):
  root = tmp_path_factory.mktemp("results")
  _users_files(root)
  before = _snapshot(root)
  results_dir = str(root / "runs")
  try:
    rundir.prepare(results_dir, name, FLAGS, restart=restart)
  except UserError:
    assert _snapshot(root) == before   # refused: nothing touched
    return
  run_dir = os.path.join(results_dir, name)
  # a run started: the failure before its first checkpoint cleans up
  rundir.abandon(run_dir)
  assert (_snapshot(root, inside=run_dir) ==
          {k: v for k, v in before.items() if k != run_dir and
           not k.startswith(run_dir + "/")})
  if name not in ("other", "notes"):
    assert _snapshot(root) == before   # a new run directory: all gone again


def test_an_existing_directory_that_is_not_a_run_is_refused(tmp_path):
  (tmp_path / "mine").mkdir()
  (tmp_path / "mine" / "notes.txt").write_text("keep me")
  with pytest.raises(UserError, match="is not a run directory"):
    rundir.prepare(str(tmp_path), "mine", FLAGS)
  assert os.listdir(tmp_path / "mine") == ["notes.txt"]


def test_abandon_keeps_what_it_did_not_write_and_a_directory_it_did_not_make(
    tmp_path):
  # an earlier attempt left run.json; the user has since added notes.txt
  _with_checkpoint(tmp_path)
  os.remove(tmp_path / "r" / checkpoint.STATE)
  (tmp_path / "r" / "notes.txt").write_text("keep me")
  assert rundir.prepare(str(tmp_path), "r", FLAGS) == rundir.NEW
  (tmp_path / "r" / "serving.npz").write_bytes(b"ours")
  (tmp_path / "r" / "tensorboard").mkdir()
  (tmp_path / "r" / "tensorboard" / "events.out.tfevents.1").write_bytes(b"")
  rundir.abandon(str(tmp_path / "r"))
  assert sorted(os.listdir(tmp_path / "r")) == ["notes.txt"]


def test_restart_removes_only_the_runs_own_files(tmp_path):
  _with_checkpoint(tmp_path)
  r = tmp_path / "r"
  for name in ("results.json", "ckpt-000010.weights.h5", "best.weights.h5",
               "notes.txt"):
    (r / name).write_text("{}")
  (r / "tensorboard").mkdir()
  (r / "tensorboard" / "events.out.tfevents.1").write_bytes(b"")
  (r / "tensorboard" / "plot.png").write_bytes(b"mine")
  rundir.prepare(str(tmp_path), "r", FLAGS, restart=True)
  rundir.unlock(str(r))
  assert sorted(os.listdir(r)) == [".lock", "notes.txt", "run.json",
                                   "tensorboard"]
  assert os.listdir(r / "tensorboard") == ["plot.png"]


def test_changed_data_is_refused_naming_the_file_and_restart(tmp_path):
  rundir.prepare(str(tmp_path), "r", FLAGS, data_sha256="a" * 64)
  rundir.unlock(str(tmp_path / "r"))
  (tmp_path / "r" / checkpoint.STATE).write_text("{}")
  assert rundir.prepare(str(tmp_path), "r", FLAGS,
                        data_sha256="a" * 64) == rundir.RESUME
  rundir.unlock(str(tmp_path / "r"))
  with pytest.raises(UserError, match=r"sha256 aaaaaaaaaaaa\.\.\., but "
                     r"/data/Video.txt now has sha256 bbbbbbbbbbbb.*--restart"):
    rundir.prepare(str(tmp_path), "r", FLAGS, data_sha256="b" * 64,
                   data_file="/data/Video.txt")


def test_a_flag_added_since_counts_as_its_default(tmp_path):
  _with_checkpoint(tmp_path)
  with_new = {**FLAGS, "block": "kang205"}
  assert rundir.prepare(str(tmp_path), "r", with_new,
                        defaults={"block": "kang205"}) == rundir.RESUME
  rundir.unlock(str(tmp_path / "r"))
  with pytest.raises(UserError, match=r"--block \(checkpoint: 'kang205', "
                     r"now: 'authors'\)"):
    rundir.prepare(str(tmp_path), "r", {**FLAGS, "block": "authors"},
                   defaults={"block": "kang205"})


@pytest.mark.parametrize("content", ["", "not json", "[1, 2]"])
def test_unreadable_run_json_is_named(tmp_path, content):
  _with_checkpoint(tmp_path)
  (tmp_path / "r" / "run.json").write_text(content)
  with pytest.raises(UserError, match=r"r/run.json is (unreadable|not a JSON "
                     r"object).*--restart"):
    rundir.prepare(str(tmp_path), "r", FLAGS)


@pytest.mark.parametrize("content", ["", "{}", "{trunc"])
def test_an_empty_or_torn_results_json_is_not_a_finished_run(tmp_path,
                                                               content):
  rundir.prepare(str(tmp_path), "r", FLAGS)
  rundir.unlock(str(tmp_path / "r"))
  (tmp_path / "r" / "results.json").write_text(content)
  with pytest.raises(UserError, match=r"r/results.json.*--restart"):
    rundir.prepare(str(tmp_path), "r", FLAGS)


def test_bad_results_directories_are_one_line_errors(tmp_path):
  (tmp_path / "file").write_text("x")
  with pytest.raises(UserError, match="--results_dir: cannot create"):
    rundir.prepare(str(tmp_path / "file"), "r", FLAGS)
  os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
  with pytest.raises(UserError, match="--results_dir: cannot create"):
    rundir.prepare(str(tmp_path / "dangling"), "r", FLAGS)
  (tmp_path / "ro").mkdir()
  os.chmod(tmp_path / "ro", 0o500)
  try:
    if os.access(tmp_path / "ro", os.W_OK):
      return  # root ignores permissions: nothing more to check here
    with pytest.raises(UserError, match="cannot create the run directory"):
      rundir.prepare(str(tmp_path / "ro"), "r", FLAGS)
  finally:
    os.chmod(tmp_path / "ro", 0o700)
