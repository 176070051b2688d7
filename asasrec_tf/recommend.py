"""Prints the top-N items for a user or a history, from a finished run.

  python -m asasrec_tf.recommend --run_dir=results/runs/RUN --user=42
  python -m asasrec_tf.recommend --run_dir=results/runs/RUN --history=1193,661 --format=json

Ids are the dataset's original ids. Items of the history (and padding) are
never recommended; when fewer than --top_n items are left, fewer are printed
and a note says so. Unknown history items are reported and skipped (refused
with --strict); an empty or wholly unknown history gets the most popular
items.
"""

import json
import os
import sys
from typing import Dict, List

import numpy as np
from absl import flags

from asasrec_tf import cli, errors
from asasrec_tf.artifacts import Served

# Quieten TensorFlow's C++ start-up banner; must precede its import.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FLAGS = flags.FLAGS


def define_flags() -> None:
  cli.define_serving_flags()
  g = "Request"
  cli.define_flag(g, "string", "user", None,
                  "An original user id of the run's dataset.")
  cli.define_flag(g, "list", "history", None,
                  "Original item ids, oldest first.")
  cli.define_flag(g, "enum", "format", "text", ["text", "json"],
                  "Output format.")
  cli.define_flag(g, "bool", "strict", False,
                  "Refuse unknown item ids in --history.")


def recommend(served: Served, user=None, history: List[str] = None,
              top_n: int = 10, strict: bool = False) -> Dict[str, object]:
  """Top-N recommendations as a JSON-ready dict (see the module doc)."""
  notes = []
  internal_user = None
  if user is not None:
    internal_user = served.user_index(user)
    if internal_user is None:
      raise errors.UserError(f"--user: unknown user id {user!r}")
    items = served.user_history(internal_user)
  else:
    known, unknown = [], []
    for raw in history or []:
      idx = served.item_index(raw.strip())
      if idx is None:
        unknown.append(raw)
      else:
        known.append(idx)
    if unknown:
      if strict:
        raise errors.UserError(f"--history: unknown item id(s) "
                               f"{', '.join(map(str, unknown))} (--strict)")
      notes.append(f"skipped unknown item id(s): {', '.join(map(str, unknown))}")
    items = np.asarray(known, dtype=np.int32)
  if len(items) or internal_user is not None:
    scores = served.scores(items, internal_user)
    source = served.model_name
    if not np.isfinite(scores[1:]).all():
      raise errors.UserError(f"{served.run_dir}: the model scores items as "
                             "NaN or infinite (its weights are not finite; "
                             "retrain it)")
  else:
    scores = served.popularity.astype(np.float64)
    source = "popularity"
    notes.append("empty history: recommending the most popular items")
  scores = scores.copy()
  scores[0] = -np.inf
  scores[items] = -np.inf
  n = min(top_n, int(np.isfinite(scores).sum()))
  if n < top_n:
    notes.append(f"only {n} items are left outside the history; returning "
                 f"{n} of the {top_n} asked for")
  top = np.argsort(-scores, kind="stable")[:n]
  return {"source": source, "notes": notes,
          "history": [served.item_ids[i].item() for i in items],
          "items": [{"item": served.item_ids[i].item(),
                     "score": float(scores[i])} for i in top]}


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS.run_dir:
    raise errors.UserError("--run_dir is required")
  if (FLAGS.user is None) == (FLAGS.history is None):
    raise errors.UserError("give exactly one of --user and --history")
  out = recommend(Served(FLAGS.run_dir), FLAGS.user, FLAGS.history,
                  FLAGS.top_n, FLAGS.strict)
  if FLAGS.format == "json":
    print(json.dumps(out))
    return
  for note in out["notes"]:
    print(f"note: {note}", file=sys.stderr)
  who = f"user {FLAGS.user}" if FLAGS.user is not None else "the history"
  shown = " ".join(map(str, out["history"][-10:]))
  more = len(out["history"]) - 10
  print(f"{who}: {len(out['history'])} known items"
        + (f", the last: {'... ' if more > 0 else ''}{shown}" if shown else "")
        + f" (scored by {out['source']})")
  print(f"{'rank':>4}  {'item':<12}  score")
  for rank, entry in enumerate(out["items"], 1):
    print(f"{rank:4d}  {str(entry['item']):<12}  {entry['score']:.4f}")


if __name__ == "__main__":
  cli.run(main, __doc__, define_flags)
