import json
import subprocess
import sys

import numpy as np
import pytest

from asasrec_tf.artifacts import Served
from asasrec_tf.errors import UserError
from asasrec_tf.recommend import recommend

from tests.conftest import REPO

# End-to-end: left out of the fast tier (pytest -m "not slow").
pytestmark = pytest.mark.slow


def cli(*args):
  return subprocess.run([sys.executable, "-m", "asasrec_tf.recommend", *args],
                        capture_output=True, text=True, cwd=REPO, timeout=120)


@pytest.mark.parametrize("model", ["sasrec", "asasrec", "bpr", "apr", "mostpop"])
def test_user_top_n_excludes_history_and_follows_scores(finished_runs, model):
  served = Served(finished_runs[model])
  user = served.user_ids[3]
  out = recommend(served, user=user, top_n=5)
  items = [e["item"] for e in out["items"]]
  history = set(served.item_ids[served.user_history(3)].tolist())
  assert len(items) == 5 and not set(items) & history
  scores = served.scores(served.user_history(3), 3)
  scores[0] = -np.inf
  scores[served.user_history(3)] = -np.inf
  expect = served.item_ids[np.argsort(-scores, kind="stable")[:5]].tolist()
  assert items == expect
  assert [e["score"] for e in out["items"]] == sorted(
      [e["score"] for e in out["items"]], reverse=True)


def test_unknown_history_items_are_skipped_or_refused(finished_runs):
  served = Served(finished_runs["sasrec"])
  out = recommend(served, history=["3", "424242"], top_n=3)
  assert out["source"] == "sasrec"
  assert out["notes"] == ["skipped unknown item id(s): 424242"]
  assert 3 not in [e["item"] for e in out["items"]]
  with pytest.raises(UserError, match="unknown item id.*424242"):
    recommend(served, history=["3", "424242"], strict=True)


def test_empty_history_falls_back_to_popularity(finished_runs):
  served = Served(finished_runs["bpr"])
  out = recommend(served, history=["424242"], top_n=3)
  assert out["source"] == "popularity"
  assert "most popular" in out["notes"][-1]
  pop = served.popularity.copy()
  pop[0] = -1
  assert [e["item"] for e in out["items"]] == served.item_ids[
      np.argsort(-pop, kind="stable")[:3]].tolist()


def test_cli_json_and_errors(finished_runs):
  out = cli(f"--run_dir={finished_runs['sasrec']}", "--history=3,7",
            "--format=json", "--top_n=4")
  assert out.returncode == 0, out.stderr[-2000:]
  assert len(json.loads(out.stdout)["items"]) == 4
  bad = cli(f"--run_dir={finished_runs['sasrec']}", "--user=nobody")
  assert bad.returncode == 2 and "unknown user id 'nobody'" in bad.stderr
  strict = cli(f"--run_dir={finished_runs['sasrec']}", "--history=99999",
               "--strict")
  assert strict.returncode == 2 and "Traceback" not in strict.stderr


def test_text_output_has_headers_and_says_whose_history(finished_runs):
  served = Served(finished_runs["sasrec"])
  user = served.user_ids[2]
  out = cli(f"--run_dir={finished_runs['sasrec']}", f"--user={user}",
            "--top_n=3")
  assert out.returncode == 0, out.stderr[-2000:]
  lines = out.stdout.splitlines()
  n = len(served.user_history(2))
  assert lines[0].startswith(f"user {user}: {n} known items, the last: ")
  assert lines[0].endswith("(scored by sasrec)")
  assert lines[1].split() == ["rank", "item", "score"]
  assert [line.split()[0] for line in lines[2:]] == ["1", "2", "3"]


def test_a_model_with_non_finite_weights_is_refused(finished_runs, tmp_path):
  import shutil
  import tensorflow as tf
  run = tmp_path / "run"
  shutil.copytree(finished_runs["sasrec"], run)
  served = Served(str(run))
  served.model.item_table.assign(tf.fill(served.model.item_table.shape,
                                         float("nan")))
  served.model.save_weights(str(run / "best.weights.h5"))
  out = cli(f"--run_dir={run}", "--history=3,7")
  assert out.returncode == 2 and "NaN or infinite" in out.stderr
  assert "Traceback" not in out.stderr
