"""The command line end to end, in a subprocess as a user runs it."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO, without_tensorflow

# End-to-end: left out of the fast tier (pytest -m "not slow").
pytestmark = pytest.mark.slow


def run_main(*args, cwd=REPO, env=None):
  return subprocess.run([sys.executable, "-m", "asasrec_tf.main", *args],
                        capture_output=True, text=True, cwd=cwd, timeout=300,
                        env=env)


def test_synthetic_run_writes_results_json(tmp_path):
  out = run_main("--model=asasrec", "--epochs=2", "--eval_every=1",
                 "--synthetic_users=200", "--synthetic_items=150", "--maxlen=10",
                 "--batch_size=64", "--hidden_units=16", "--pretrain_epochs=1",
                 f"--results_dir={tmp_path}", "--run_name=r")
  assert out.returncode == 0, out.stderr[-2000:]
  assert "epoch    2 |" in out.stdout and "best epoch" in out.stdout
  res = json.load(open(tmp_path / "r" / "results.json"))
  for key in ("dataset", "model", "flags", "protocol", "selected_on",
              "best_epoch", "epochs_run", "metrics", "timing", "versions"):
    assert key in res, key
  assert res["dataset"] == "synthetic" and res["model"] == "asasrec"
  assert res["flags"]["adv_eps"] == 0.5 and res["flags"]["maxlen"] == "10"
  assert res["flags"]["split"] == "loo_valid"  # data flags are recorded too
  assert res["protocol"]["ks"] == [10, 100]
  assert set(res["metrics"]["test"]) == {"hr@10", "ndcg@10", "hr@100",
                                         "ndcg@100"}
  assert res["epochs_run"] == 2 and res["selected_on"] == "valid"
  assert res["timing"]["train_seconds_per_epoch"] > 0
  assert res["timing"]["eval_seconds"] > 0
  assert "tensorflow" in res["versions"]
  # what may change rounding between machines (tests/test_init.py checks
  # that the oneDNN entry follows TF_ENABLE_ONEDNN_OPTS)
  assert res["platform"]["cores"] == os.cpu_count()
  assert isinstance(res["platform"]["onednn"], bool)
  assert res["platform"]["avx512"] in (True, False, None)
  assert res["platform"]["cpu"]


@pytest.mark.parametrize("args,fragment", [
    (["--model=gru4rec"], "flag --model=gru4rec"),
    (["--epochs=-1"], "flag --epochs=-1"),
    (["--maxlen=0"], "--maxlen must be a positive integer"),
    (["--adv_eps=-0.5"], "flag --adv_eps=-0.5"),
    (["--select_on=test"], "--select_on=test is only allowed with --split=loo"),
    (["--ks=10,abc"], "--ks must be a comma-separated list"),
    (["--ks=500", "--select_metric=ndcg@500", "--synthetic_items=50"],
     "K=500 is larger than the 50"),
])
def test_bad_flags_exit_2_naming_the_flag(tmp_path, args, fragment):
  # refused before TensorFlow loads, but K against the catalog (the
  # evaluator's own check)
  env = (None if fragment.startswith("K=") else
         without_tensorflow(tmp_path / "env"))
  out = run_main(*args, f"--results_dir={tmp_path / 'runs'}", "--epochs=1"
                 if "--epochs=-1" not in args else "--eval_every=1", env=env)
  assert out.returncode == 2, out.stderr[-2000:]
  assert fragment in out.stderr
  assert "Traceback" not in out.stderr
  assert not os.path.exists(tmp_path / "runs")  # nothing half-written


SMALL = ["--epochs=2", "--eval_every=1", "--synthetic_users=150", "--ks=10",
         "--synthetic_items=80", "--maxlen=10", "--hidden_units=8",
         "--batch_size=64"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
  """A finished SMALL run named r, trained once for the tests below that
  break a copy of it."""
  root = tmp_path_factory.mktemp("small")
  out = run_main(*SMALL, f"--results_dir={root}", "--run_name=r")
  assert out.returncode == 0, out.stderr[-2000:]
  return root / "r"


def _copy_of(small_run, results_dir):
  shutil.copytree(small_run, results_dir / "r")


def test_start_says_what_runs_and_a_rerun_is_complete(tmp_path):
  first = run_main(*SMALL, f"--results_dir={tmp_path}")
  assert first.returncode == 0, first.stderr[-2000:]
  for fragment in ("sasrec on synthetic: 150 users, 80 items",
                   "maxlen 10; 2 epochs of 3 steps (batch 64)",  # 150 / 64
                   "devices: CPU (1 replica)", "run directory:"):
    assert fragment in first.stdout, fragment
  # the default name is a function of what defines the run, not the time
  names = os.listdir(tmp_path)
  assert len(names) == 1 and names[0].startswith(
      "synthetic-sasrec-loo_valid-seed0-")
  again = run_main(*SMALL, f"--results_dir={tmp_path}")
  assert again.returncode == 0, again.stderr[-2000:]
  assert "is already complete" in again.stdout
  assert os.path.join(tmp_path, names[0], "results.json") in again.stdout
  assert os.listdir(tmp_path) == names
  other = run_main(*SMALL, "--seed=1", f"--results_dir={tmp_path}")
  assert other.returncode == 0 and len(os.listdir(tmp_path)) == 2


def test_restart_discards_an_unreadable_checkpoint(small_run, tmp_path):
  args = [*SMALL, f"--results_dir={tmp_path}", "--run_name=r"]
  _copy_of(small_run, tmp_path)
  os.remove(tmp_path / "r" / "results.json")
  (tmp_path / "r" / "checkpoint.json").write_text("{trunc")
  broken = run_main(*args)
  assert broken.returncode == 2
  assert "r/checkpoint.json" in broken.stderr and "--restart" in broken.stderr
  assert "Traceback" not in broken.stderr
  fresh = run_main(*args, "--restart")
  assert fresh.returncode == 0, fresh.stderr[-2000:]
  assert json.load(open(tmp_path / "r" / "results.json"))["epochs_run"] == 2


def test_a_truncated_checkpoint_weights_file_names_the_file(small_run,
                                                          tmp_path):
  args = [*SMALL, f"--results_dir={tmp_path}", "--run_name=r"]
  _copy_of(small_run, tmp_path)
  os.remove(tmp_path / "r" / "results.json")
  ckpt = json.load(open(tmp_path / "r" / "checkpoint.json"))["weights"]
  with open(tmp_path / "r" / ckpt, "r+b") as f:
    f.truncate(100)
  out = run_main(*args)
  assert out.returncode == 2 and ckpt in out.stderr
  assert "--restart" in out.stderr and "Traceback" not in out.stderr


def test_nothing_to_evaluate_is_refused(tmp_path):
  data = tmp_path / "pairs.txt"
  data.write_text("".join(f"{u} {u % 7 + 1}\n{u} {u % 5 + 9}\n"
                          for u in range(40)))   # two items a user
  # refused before TensorFlow loads (it cannot, here), as the two below
  out = run_main("--data_path", str(data), "--data_format=sasrec",
                 f"--results_dir={tmp_path / 'runs'}", "--epochs=1",
                 env=without_tensorflow(tmp_path))
  assert out.returncode == 2, out.stderr[-2000:]
  assert "no user has a valid item to evaluate" in out.stderr
  assert not os.path.exists(tmp_path / "runs")


def test_a_maxlen_that_cannot_fit_is_refused(tmp_path):
  # one user of 60,002 items: maxlen 60,000 is used, and its attention,
  # 10 tensors of 60000^2 float32 (134 GiB), cannot fit
  lines = [f"1 {1 + i % 50}" for i in range(60002)]
  lines += [f"{u} {1 + (u + i) % 50}" for u in range(2, 20) for i in range(5)]
  data = tmp_path / "long.txt"
  data.write_text("\n".join(lines) + "\n")
  out = run_main(f"--data_path={data}", "--data_format=sasrec",
                 "--maxlen=60000", "--batch_size=1", "--epochs=1",
                 f"--results_dir={tmp_path / 'runs'}",
                 env=without_tensorflow(tmp_path))
  assert out.returncode == 2, out.stderr[-2000:]
  assert "--maxlen=60000: a training step would need about 134 GiB" in \
      out.stderr and "Traceback" not in out.stderr
  assert not os.path.exists(tmp_path / "runs")


def test_a_maxlen_longer_than_every_sequence_is_cut_and_said(tmp_path):
  out = run_main("--maxlen=100000", *SMALL[:1], "--eval_every=1",
                 "--synthetic_users=150", "--synthetic_items=80", "--ks=10",
                 "--hidden_units=8", f"--results_dir={tmp_path}",
                 "--run_name=r")
  assert out.returncode == 0, out.stderr[-2000:]
  res = json.load(open(tmp_path / "r" / "results.json"))
  longest = res["dataset_stats"]["max_len"] - 1
  assert res["maxlen"] == longest < 100000
  assert (f"maxlen {longest} (--maxlen=100000 cut to the longest sequence "
          "of the data)") in out.stdout


def test_missing_data_names_both_ways_to_point_at_it(tmp_path):
  env = {**without_tensorflow(tmp_path),
         "ASASREC_DATA_DIR": str(tmp_path / "nowhere")}
  out = subprocess.run([sys.executable, "-m", "asasrec_tf.main",
                        "--dataset=video", "--download=false",
                        f"--results_dir={tmp_path}"], capture_output=True,
                       text=True, cwd=REPO, timeout=300, env=env)
  assert out.returncode == 2
  assert str(tmp_path / "nowhere" / "video") in out.stderr
  assert "--data_dir or $ASASREC_DATA_DIR" in out.stderr


def test_data_dir_from_the_environment(shared_data):
  env = {**os.environ, "ASASREC_DATA_DIR": shared_data}
  out = subprocess.run([sys.executable, "-m", "asasrec_tf.data",
                        "--dataset=video", "--split=loo", "--download=false"],
                       capture_output=True, text=True, cwd=REPO, timeout=300,
                       env=env)
  assert out.returncode == 0, out.stderr[-2000:]
  assert json.loads(out.stdout)["users"] == 31013


# --- issue 19: nothing a user has is deleted, no wrong answer without error --

def test_a_hostile_run_name_is_refused_and_results_stay_whole(tmp_path):
  results = tmp_path / "results"
  (results / "runs").mkdir(parents=True)
  (results / "table2.md").write_text("tracked")
  for name in ("..", ".", "../../x", "/tmp/elsewhere", "a" * 300):
    # --lr=1e30 diverges in the first epoch: the clean-up path runs
    out = run_main(*SMALL, "--lr=1e30", f"--results_dir={results / 'runs'}",
                   f"--run_name={name}")
    assert out.returncode == 2, (name, out.stderr[-2000:])
    assert "--run_name" in out.stderr and "Traceback" not in out.stderr
  assert sorted(os.listdir(results)) == ["runs", "table2.md"]
  assert os.listdir(results / "runs") == []


def test_a_failed_start_in_a_users_directory_deletes_nothing(tmp_path):
  (tmp_path / "mine").mkdir()
  (tmp_path / "mine" / "notes.txt").write_text("keep me")
  out = run_main(*SMALL, "--lr=1e30", f"--results_dir={tmp_path}",
                 "--run_name=mine")
  assert out.returncode == 2 and "is not a run directory" in out.stderr
  assert os.listdir(tmp_path / "mine") == ["notes.txt"]
  # --restart does not make it one either
  out = run_main(*SMALL, "--restart", f"--results_dir={tmp_path}",
                 "--run_name=mine")
  assert out.returncode == 2 and os.listdir(tmp_path / "mine") == [
      "notes.txt"]


def _interactions(path, shift=0):
  path.write_text("".join(f"{u} {1 + (u * 7 + i + shift) % 60}\n"
                          for u in range(1, 120) for i in range(8)))


def test_data_edited_in_place_is_refused_naming_the_file(tmp_path):
  data = tmp_path / "mine.txt"
  _interactions(data)
  args = (*SMALL, f"--data_path={data}", "--data_format=sasrec",
          f"--results_dir={tmp_path / 'runs'}", "--run_name=r",
          f"--cache_dir={tmp_path / 'cache'}")
  first = run_main(*args)
  assert first.returncode == 0, first.stderr[-2000:]
  res = json.load(open(tmp_path / "runs" / "r" / "results.json"))
  assert res["dataset"] == "custom" and res["data_file"] == str(data)
  assert len(res["data_sha256"]) == 64
  _interactions(data, shift=1)           # the same file name, other data
  again = run_main(*args)
  assert again.returncode == 2, again.stderr[-2000:]
  assert f"{data} now has sha256" in again.stderr
  assert "--restart" in again.stderr and "already complete" not in again.stdout


def test_a_named_dataset_is_not_given_a_users_file(tmp_path):
  data = tmp_path / "mine.txt"
  _interactions(data)
  out = run_main("--dataset=video", f"--data_path={data}",
                 "--data_format=sasrec", f"--results_dir={tmp_path / 'runs'}")
  assert out.returncode == 2
  assert "cannot be labelled --dataset=video" in out.stderr
  assert not (tmp_path / "runs").exists()


def test_a_cache_that_cannot_be_written_is_a_warning(tmp_path):
  (tmp_path / "cache").write_text("a file, not a directory")
  data = tmp_path / "mine.txt"
  _interactions(data)
  out = run_main(*SMALL, f"--data_path={data}", "--data_format=sasrec",
                 f"--cache_dir={tmp_path / 'cache'}",
                 f"--results_dir={tmp_path / 'runs'}", "--run_name=r")
  assert out.returncode == 0, out.stderr[-2000:]
  assert "warning: the preprocessed data was not cached" in out.stderr
  assert (tmp_path / "runs" / "r" / "results.json").exists()


def test_a_file_size_limit_is_one_line_not_a_crash(tmp_path):
  import resource

  def limit():  # 1 MB: the item table and Adam's moments need more
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

  out = subprocess.run(
      [sys.executable, "-m", "asasrec_tf.main", "--epochs=1",
       "--synthetic_users=150", "--synthetic_items=3000", "--maxlen=10",
       "--hidden_units=64", f"--results_dir={tmp_path}", "--run_name=r",
       "--cache_dir="], capture_output=True, text=True, cwd=REPO,
      timeout=300, preexec_fn=limit)
  assert out.returncode == 2, (out.returncode, out.stderr[-3000:])
  assert "File too large" in out.stderr and "Traceback" not in out.stderr
  assert "Exception ignored" not in out.stderr
  assert ".weights.h5: File too large" in out.stderr
  # it failed before its first checkpoint: its directory is gone, whole
  assert os.listdir(tmp_path) == []


def test_corrupt_checkpoint_state_and_init_weights_are_one_line(small_run,
                                                               tmp_path):
  args = (*SMALL, f"--results_dir={tmp_path}", "--run_name=r")
  _copy_of(small_run, tmp_path)
  state = tmp_path / "r" / "checkpoint.json"
  payload = json.loads(state.read_text())
  payload["state"] = {"best": 5, "history": "x"}   # valid JSON, wrong fields
  state.write_text(json.dumps(payload))
  os.remove(tmp_path / "r" / "results.json")
  out = run_main(*args)
  assert out.returncode == 2, out.stderr[-2000:]
  assert f"{state}: unreadable checkpoint state" in out.stderr
  assert "--restart" in out.stderr and "Traceback" not in out.stderr
  torn = tmp_path / "torn.weights.h5"
  torn.write_bytes((tmp_path / "r" / "best.weights.h5").read_bytes()[:300])
  out = run_main(*SMALL, f"--init_checkpoint={torn}",
                 f"--results_dir={tmp_path}", "--run_name=s")
  assert out.returncode == 2, out.stderr[-2000:]
  assert f"--init_checkpoint: {torn} is not a readable weights file" in \
      out.stderr and "Traceback" not in out.stderr


def test_the_authors_block_and_loss_train_and_serve(tmp_path):
  out = run_main(*SMALL, "--model=asasrec", "--block=authors",
                 "--loss=bce_authors", "--adv_target=output",
                 "--adv_passes=one", f"--results_dir={tmp_path}",
                 "--run_name=r")
  assert out.returncode == 0, out.stderr[-2000:]
  res = json.load(open(tmp_path / "r" / "results.json"))
  assert (res["flags"]["block"], res["flags"]["loss"]) == ("authors",
                                                           "bce_authors")
  from asasrec_tf.artifacts import Served
  from asasrec_tf.recommend import recommend
  served = Served(str(tmp_path / "r"))   # rebuilt with the authors' block
  assert served.model.block == "authors"
  assert len(recommend(served, history=["3", "5"], top_n=5)["items"]) == 5
  bad = run_main(*SMALL, "--model=bpr", "--loss=bce_authors",
                 f"--results_dir={tmp_path}")
  assert bad.returncode == 2 and "apply to sasrec and asasrec" in bad.stderr


def _hparams_dashboard(logdir):
  """What TensorBoard's HParams dashboard gets for ``logdir``: {session
  group: (hparams, {metric tag: value})}, through its own plugin."""
  from tensorboard import context
  from tensorboard.backend.event_processing import (data_provider,
                                                    plugin_event_multiplexer)
  from tensorboard.plugins import base_plugin
  from tensorboard.plugins.hparams import (api_pb2, backend_context,
                                           get_experiment, list_session_groups)
  mux = plugin_event_multiplexer.EventMultiplexer()
  mux.AddRunsFromDirectory(logdir)
  mux.Reload()
  ctx = backend_context.Context(base_plugin.TBContext(
      logdir=logdir, multiplexer=mux,
      data_provider=data_provider.MultiplexerDataProvider(mux, logdir)))
  exp = get_experiment.Handler(context.RequestContext(), ctx, "",
                               api_pb2.GetExperimentRequest()).run()
  cols = ([api_pb2.ColParams(hparam=h.name) for h in exp.hparam_infos] +
          [api_pb2.ColParams(metric=m.name) for m in exp.metric_infos])
  request = api_pb2.ListSessionGroupsRequest(
      start_index=0, slice_size=100, col_params=cols,
      allowed_statuses=[api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS])
  groups = list_session_groups.Handler(context.RequestContext(), ctx, "",
                                       request).run().session_groups
  return {g.name: ({k: getattr(v, v.WhichOneof("kind"))
                    for k, v in g.hparams.items()},
                   {m.name.tag: m.value for m in g.metric_values})
          for g in groups}


def test_the_hparams_dashboard_lists_every_run_with_flags_and_metrics(
    finished_runs):
  logdir = os.path.dirname(finished_runs["sasrec"])
  shown = _hparams_dashboard(logdir)
  assert set(shown) >= {"sasrec", "asasrec", "bpr", "apr"}   # the run names
  for name in ("sasrec", "asasrec", "bpr", "apr"):
    hparams, metrics = shown[name]
    assert hparams["model"] == name and hparams["maxlen"] == "8"
    assert hparams["ks"] == "10,100"                # lists as strings
    res = json.load(open(os.path.join(finished_runs[name], "results.json")))
    assert metrics["selected/test/ndcg@100"] == pytest.approx(
        res["metrics"]["test"]["ndcg@100"], rel=1e-6)
  # a flat zero adversarial loss is logged only where there is an adversary
  assert "train/adv_loss" in shown["asasrec"][1]
  assert "train/adv_loss" not in shown["sasrec"][1]
