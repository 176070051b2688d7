"""run_all.sh end to end on the synthetic data (quick mode), and its
argument checking."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


def _run_all(*args, timeout=600):
  # The Python running the tests, whichever environment it is in.
  return subprocess.run(["bash", os.path.join(REPO, "run_all.sh"), *args],
                        capture_output=True, text=True, cwd=REPO,
                        timeout=timeout,
                        env={**os.environ, "PYTHON": sys.executable})


@pytest.mark.parametrize("arg,message", [
    ("--bogus", "unknown argument '--bogus'"),
    ("--models=bpr,svd", "unknown model 'svd'"),
    ("--datasets=video,nope", "unknown dataset 'nope'"),
    ("--protocols=dirty", "unknown protocol 'dirty'"),
    ("--epochs=ten", "'ten' is not a number"),
    ("--seed=-1", "'-1' is not a number"),
    ("--ablation_runs=block-authors,nope", "unknown ablation run 'nope'"),
    ("--loss=focal", "unknown loss 'focal'"),
    ("--loss=ce", "--loss=ce trains SASRec models only; drop 'mostpop'"),
])
def test_bad_arguments_exit_2(arg, message):
  out = _run_all(arg)
  assert out.returncode == 2 and message in out.stderr


def test_help_lists_the_options():
  out = _run_all("--help")
  assert out.returncode == 0
  for option in ("--datasets", "--models", "--data_dir", "--quick", "--force",
                 "--ablation", "--pre_epochs", "--bpr_pre_epochs", "--seed",
                 "--loss", "--sensitivity"):
    assert option in out.stdout


def _fake_python(tmp_path):
  """A stand-in for Python that logs each command run_all.sh gives it and
  makes each training 'finish' (a results.json in its run directory)."""
  log = tmp_path / "commands.log"
  fake = tmp_path / "python"
  fake.write_text(f"""#!/usr/bin/env bash
echo "$*" >> {log}
for a in "$@"; do
  case "$a" in --results_dir=*) rd="${{a#*=}}";; --run_name=*) rn="${{a#*=}}";; esac
done
if [[ "$2" == asasrec_tf.main ]]; then mkdir -p "$rd/$rn"; echo '{{"metrics": {{}}}}' > "$rd/$rn/results.json"; fi
""")
  fake.chmod(0o755)
  return fake, log


def test_seed_names_every_run_and_passes_the_seed(tmp_path):
  fake, log = _fake_python(tmp_path)
  out = subprocess.run(
      ["bash", os.path.join(REPO, "run_all.sh"), "--datasets=synthetic",
       "--protocols=paper", "--models=mostpop,sasrec,asasrec-authors",
       "--seed=2", f"--out={tmp_path / 'out'}"],
      capture_output=True, text=True, cwd=REPO, timeout=60,
      env={**os.environ, "PYTHON": str(fake)})
  assert out.returncode == 0, out.stdout + out.stderr
  mains = [line.split() for line in log.read_text().splitlines()
           if line.startswith("-m asasrec_tf.main")]
  names = [next(a for a in m if a.startswith("--run_name=")) for m in mains]
  assert names == ["--run_name=synthetic-paper-seed2-mostpop",
                   "--run_name=synthetic-paper-seed2-sasrec-pre",
                   "--run_name=synthetic-paper-seed2-sasrec",
                   "--run_name=synthetic-paper-seed2-asasrec-authors"]
  assert all("--seed=2" in m for m in mains)
  # the continuations start from this seed's own -pre run
  pre = f"--init_checkpoint={tmp_path / 'out' / 'runs'}/synthetic-paper-seed2-sasrec-pre"
  assert all(pre in m for m in mains[2:])


def _mains(tmp_path, *args):
  """run_all.sh's main commands under the fake Python, as argument lists."""
  fake, log = _fake_python(tmp_path)
  out = subprocess.run(
      ["bash", os.path.join(REPO, "run_all.sh"), "--datasets=synthetic",
       "--protocols=paper", *args, f"--out={tmp_path / 'out'}"],
      capture_output=True, text=True, cwd=REPO, timeout=60,
      env={**os.environ, "PYTHON": str(fake)})
  assert out.returncode == 0, out.stdout + out.stderr
  return [line.split() for line in log.read_text().splitlines()
          if line.startswith("-m asasrec_tf.main")]


def _name(main):
  return next(a for a in main if a.startswith("--run_name="))[11:]


def test_a_loss_names_the_group_and_reaches_every_run(tmp_path):
  mains = _mains(tmp_path, "--models=sasrec,asasrec-authors", "--seed=1",
                 "--loss=gbce")
  p = "synthetic-paper-seed1-loss-gbce-"
  assert [_name(m) for m in mains] == [p + "sasrec-pre", p + "sasrec",
                                       p + "asasrec-authors"]
  assert all("--loss=gbce" in m for m in mains)
  runs = tmp_path / "out" / "runs"
  assert all(f"--init_checkpoint={runs}/{p}sasrec-pre" in m for m in mains[1:])


def test_sensitivity_runs_the_grid_but_its_centre_from_the_same_start(
    tmp_path):
  mains = _mains(tmp_path, "--models=sasrec,asasrec-authors", "--sensitivity")
  names = [_name(m) for m in mains]
  p = "synthetic-paper-"
  # 5 eps x 2 lambda = 10 points; (0.5, 1) is the group's asasrec-authors
  grid = [m for m in mains if "-sens-" in _name(m)]
  assert len(grid) == 9 and names[:3] == [p + "sasrec-pre", p + "sasrec",
                                          p + "asasrec-authors"]
  assert p + "sens-eps0.05-reg0.1-asasrec-authors" in names
  assert p + "sens-eps0.5-reg1-asasrec-authors" not in names
  start = f"--init_checkpoint={tmp_path / 'out' / 'runs'}/{p}sasrec-pre"
  for m in grid:
    eps, reg = _name(m).split("-")[3:5]
    assert f"--adv_eps={eps[3:]}" in m and f"--adv_reg={reg[3:]}" in m
    assert start in m and "--adv_passes=one" in m


@pytest.mark.parametrize("pre,tag", [("1000", "bpr1000-"), ("0200", "")])
def test_bpr_pre_epochs_other_than_table2s_name_their_own_group(
    tmp_path, pre, tag):
  mains = _mains(tmp_path, "--models=bpr,apr,sasrec", "--seed=1",
                 f"--bpr_pre_epochs={pre}")
  p = "synthetic-paper-seed1-"
  assert [_name(m) for m in mains] == [
      p + tag + "bpr-pre", p + tag + "bpr", p + tag + "apr",
      p + "sasrec-pre", p + "sasrec"]
  assert f"--epochs={int(pre)}" in mains[0]
  start = f"--init_checkpoint={tmp_path / 'out' / 'runs'}/{p}{tag}bpr-pre"
  assert start in mains[1] and start in mains[2]


def test_chosen_ablation_runs_and_an_ablation_group(tmp_path):
  fake, log = _fake_python(tmp_path)
  out = subprocess.run(
      ["bash", os.path.join(REPO, "run_all.sh"), "--datasets=synthetic",
       "--protocols=paper", "--models=sasrec", "--seed=1",
       "--ablation_runs=sasrec-loss-authors,block-authors",
       f"--out={tmp_path / 'out'}"],
      capture_output=True, text=True, cwd=REPO, timeout=60,
      env={**os.environ, "PYTHON": str(fake)})
  assert out.returncode == 0, out.stdout + out.stderr
  mains = [line.split() for line in log.read_text().splitlines()
           if line.startswith("-m asasrec_tf.main")]
  names = [next(a for a in m if a.startswith("--run_name="))[11:]
           for m in mains]
  p = "synthetic-paper-seed1-"
  assert names == [p + "sasrec-pre", p + "sasrec",
                   p + "ablation-sasrec-loss-authors",
                   p + "ablation-block-authors-sasrec-pre",
                   p + "ablation-block-authors-sasrec",
                   p + "ablation-block-authors-asasrec-authors"]
  assert "--loss=bce_authors" in mains[2]
  # the block's group: its own pre-run, its continuations start from it
  assert all("--block=authors" in m for m in mains[3:])
  runs = tmp_path / "out" / "runs"
  assert f"--init_checkpoint={runs}/{p}ablation-block-authors-sasrec-pre" in \
      mains[5]
  assert "--adv_passes=one" in mains[5]


def test_seed_0_keeps_the_plain_names(tmp_path):
  fake, log = _fake_python(tmp_path)
  out = subprocess.run(
      ["bash", os.path.join(REPO, "run_all.sh"), "--datasets=synthetic",
       "--protocols=clean", "--models=mostpop", f"--out={tmp_path / 'out'}"],
      capture_output=True, text=True, cwd=REPO, timeout=60,
      env={**os.environ, "PYTHON": str(fake)})
  assert out.returncode == 0, out.stdout + out.stderr
  assert "--run_name=synthetic-clean-mostpop --checkpoint_every=10 --seed=0" \
      in log.read_text()


def test_force_restarts_through_the_program_and_a_torn_result_is_rerun(
    tmp_path):
  fake, log = _fake_python(tmp_path)
  runs = tmp_path / "out" / "runs"
  (runs / "synthetic-paper-mostpop").mkdir(parents=True)
  (runs / "synthetic-paper-mostpop" / "results.json").write_text("")
  (runs / "synthetic-paper-mostpop" / "notes.txt").write_text("mine")

  def run_all(*extra):
    return subprocess.run(
        ["bash", os.path.join(REPO, "run_all.sh"), "--datasets=synthetic",
         "--protocols=paper", "--models=mostpop", f"--out={tmp_path / 'out'}",
         *extra], capture_output=True, text=True, cwd=REPO, timeout=60,
        env={**os.environ, "PYTHON": str(fake)})

  out = run_all()   # an empty results.json is not a finished run
  assert "runs finished: 1; skipped (done before): 0" in out.stdout
  assert "--restart" not in log.read_text()
  out = run_all()
  assert "runs finished: 0; skipped (done before): 1" in out.stdout
  out = run_all("--force")
  assert "runs finished: 1; skipped (done before): 0" in out.stdout
  mains = [l for l in log.read_text().splitlines() if "asasrec_tf.main" in l]
  assert "--restart" in mains[-1]
  # the script itself deleted nothing (the program's --restart removes only
  # a run's own files)
  assert (runs / "synthetic-paper-mostpop" / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_quick_run_builds_every_table_and_resumes(tmp_path):
  args = ("--quick", "--datasets=synthetic,yelp",
          "--models=mostpop,sasrec,asasrec-authors", "--protocols=paper",
          f"--data_dir={tmp_path / 'no-data'}", f"--out={tmp_path / 'out'}")
  out = _run_all(*args)
  assert out.returncode == 0, out.stdout + out.stderr
  assert "data not available" in out.stdout and "yelp" in out.stdout
  runs = sorted(n for n in os.listdir(tmp_path / "out" / "runs")
                if not n.endswith(".log"))
  assert runs == ["synthetic-paper-asasrec-authors",
                  "synthetic-paper-mostpop", "synthetic-paper-sasrec",
                  "synthetic-paper-sasrec-pre"]
  authors = json.load(open(tmp_path / "out" / "runs" /
                           "synthetic-paper-asasrec-authors" / "results.json"))
  assert (authors["flags"]["adv_target"], authors["flags"]["adv_passes"]) == (
      "output", "one")
  # continued from the -pre run's last checkpoint, epochs numbered on
  assert authors["start_epoch"] == 2 and authors["init"]["optimizer"]
  for name in ("table2.md", "table2.csv", "robustness.md",
               "figure2_synthetic.png"):
    assert os.path.isfile(tmp_path / "out" / name), name
  table = (tmp_path / "out" / "table2.md").read_text()
  assert "| Yelp | data not available offline |" in table
  # every file of a quick run says it is a smoke test, and where it read
  for name in ("table2.md", "robustness.md"):
    text = (tmp_path / "out" / name).read_text()
    assert "(SMOKE TEST, not a result)" in text.splitlines()[0], name
    assert "say nothing about the paper" in text
  assert (tmp_path / "out" / "table2.csv").read_text().startswith(
      "# **SMOKE TEST**")
  assert f"`{tmp_path / 'out' / 'runs'}/*/results.json`" in table
  assert "Synthetic HR@100" in table
  assert "runs finished: 4; skipped (done before): 0; failed: 0" in out.stdout
  assert out.stdout.startswith("run_all: SMOKE TEST")
  assert "SMOKE TEST tables and figures" in out.stdout
  # Second time: every finished run is skipped.
  again = _run_all(*args)
  assert again.returncode == 0, again.stdout + again.stderr
  assert "runs finished: 0; skipped (done before): 4; failed: 0" in \
      again.stdout


def _timed_fake_python(tmp_path, body=""):
  """A stand-in for Python whose trainings take a moment (a pre-run longer
  than the rest) and log when they start and end (and the threads they
  were given), to see what ran at once. ``body`` runs first (e.g. to fail
  or to wait for a signal)."""
  log = tmp_path / "timed.log"
  fake = tmp_path / "python"
  fake.write_text(f"""#!/usr/bin/env bash
for a in "$@"; do
  case "$a" in --results_dir=*) rd="${{a#*=}}";; --run_name=*) rn="${{a#*=}}";; esac
done
[[ "$2" == asasrec_tf.main ]] || exit 0
echo "start $rn $(date +%s.%N) $$ ${{TF_NUM_INTRAOP_THREADS:-unset}}" >> {log}
{body}
if [[ "$rn" == *-pre ]]; then sleep 1; else sleep 0.3; fi
mkdir -p "$rd/$rn"; echo '{{"metrics": {{}}}}' > "$rd/$rn/results.json"
echo "end $rn $(date +%s.%N)" >> {log}
""")
  fake.chmod(0o755)
  return fake, log


def _timed(log):
  """{run name: [start, end]} from a timed fake's log."""
  spans = {}
  for line in log.read_text().splitlines():
    what, name, t = line.split()[:3]
    spans.setdefault(name, [None, None])[what == "end"] = float(t)
  return spans


def _run_all_with(fake, tmp_path, *args, env=None):
  """run_all.sh on the synthetic data under ``fake``, with no thread
  settings of the caller's but those of ``env``."""
  base = {k: v for k, v in os.environ.items() if not k.startswith("TF_NUM_")}
  return subprocess.run(
      ["bash", os.path.join(REPO, "run_all.sh"), "--datasets=synthetic",
       "--protocols=paper", *args, f"--out={tmp_path / 'out'}"],
      capture_output=True, text=True, cwd=REPO, timeout=120,
      env={**base, "PYTHON": str(fake), **(env or {})})


def test_jobs_run_at_once_but_a_continuation_after_its_pre_run(tmp_path):
  fake, log = _timed_fake_python(tmp_path)
  models = "--models=mostpop,sasrec,asasrec,asasrec-authors"
  out = _run_all_with(fake, tmp_path, models, "--jobs=2")
  assert out.returncode == 0, out.stdout + out.stderr
  assert "runs finished: 5; skipped (done before): 0; failed: 0" in out.stdout
  spans = _timed(log)
  p = "synthetic-paper-"
  assert set(spans) == {p + n for n in ("mostpop", "sasrec-pre", "sasrec",
                                        "asasrec", "asasrec-authors")}
  for n in ("sasrec", "asasrec", "asasrec-authors"):
    assert spans[p + n][0] >= spans[p + "sasrec-pre"][1], n
  # at most two at a time, and two did run at once (mostpop beside the
  # pre-run, then two of the three continuations)
  events = sorted([(s, 1) for s, _ in spans.values()] +
                  [(e, -1) for _, e in spans.values()])
  running = peak = 0
  for _, change in events:
    running += change
    peak = max(peak, running)
  assert peak == 2
  # each process gets its share of the cores
  threads = {line.split()[4] for line in log.read_text().splitlines()
             if line.startswith("start")}
  assert threads == {str(max(1, (os.cpu_count() or 1) // 2))}
  # a second time every run is skipped, none started
  again = _run_all_with(fake, tmp_path, models, "--jobs=2")
  assert "runs finished: 0; skipped (done before): 5; failed: 0" in \
      again.stdout
  assert len(_timed(log)) == 5


def test_jobs_keep_the_threads_a_user_set(tmp_path):
  fake, log = _timed_fake_python(tmp_path)
  out = _run_all_with(fake, tmp_path, "--models=mostpop", "--jobs=2",
                      env={"TF_NUM_INTRAOP_THREADS": "7"})
  assert out.returncode == 0, out.stdout + out.stderr
  assert log.read_text().split()[4] == "7"


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_failed_pre_run_fails_its_continuations_unrun(tmp_path, jobs):
  fake, log = _timed_fake_python(
      tmp_path, body='[[ "$rn" == *-pre ]] && exit 1')
  out = _run_all_with(fake, tmp_path, "--models=mostpop,sasrec,"
                      "asasrec-authors", f"--jobs={jobs}")
  assert out.returncode == 1
  p = "synthetic-paper-"
  assert "runs finished: 1; skipped (done before): 0; failed: 3" in out.stdout
  assert (f"failed: {p}sasrec-pre {p}sasrec {p}asasrec-authors"
          in out.stderr)
  assert f"skipping {p}sasrec: {p}sasrec-pre did not finish" in out.stderr
  started = {line.split()[1] for line in log.read_text().splitlines()}
  assert started == {p + "mostpop", p + "sasrec-pre"}


@pytest.mark.parametrize("jobs,sig,status", [
    ("1", "SIGINT", 130), ("1", "SIGTERM", 143), ("2", "SIGINT", 130),
    ("2", "SIGTERM", 143)])
def test_a_signal_stops_every_run_through_sigterm(tmp_path, jobs, sig,
                                                  status):
  import signal
  import time
  # Each training waits until told to stop; told with SIGTERM, it says so
  # and exits 143, as the program does after its checkpoint.
  fake, log = _timed_fake_python(tmp_path, body=(
      f'trap \'echo "term $rn" >> {tmp_path / "timed.log"}; exit 143\' TERM\n'
      'sleep 60 & wait $!'))
  proc = subprocess.Popen(
      ["bash", os.path.join(REPO, "run_all.sh"), "--datasets=synthetic",
       "--protocols=paper", "--models=mostpop,sasrec", f"--jobs={jobs}",
       f"--out={tmp_path / 'out'}"],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
      env={**os.environ, "PYTHON": str(fake)})
  deadline = time.time() + 60
  while time.time() < deadline:
    starts = [l for l in (log.read_text().splitlines() if log.exists()
                          else []) if l.startswith("start")]
    if len(starts) == int(jobs):
      break
    time.sleep(0.1)
  assert len(starts) == int(jobs)
  proc.send_signal(getattr(signal, sig))
  _, err = proc.communicate(timeout=30)
  assert proc.returncode == status, err
  lines = log.read_text().splitlines()
  # every training that had started was told, and none is left running
  assert sorted(l.split()[1] for l in lines if l.startswith("term")) == \
      sorted(l.split()[1] for l in starts)
  for line in starts:
    pid = int(line.split()[3])
    with pytest.raises(ProcessLookupError):
      os.kill(pid, 0)
  assert not any(l.startswith("end") for l in lines)
