"""Exports a run as a TensorFlow SavedModel for TF Serving.

  python -m asasrec_tf.export --run_dir=results/runs/RUN --export_dir=OUT --top_n=10

The ``serving_default`` signature takes ``histories``: a [batch, length]
tensor of original item ids, oldest first, padded with -1 (or "" for string
ids) on either side, and returns ``count`` [batch], ``items`` [batch, k]
(original ids), ``scores`` [batch, k], k <= top_n, and ``fallback`` [batch]
(bool): true where the history held no known item, so that the row's items
are the most popular ones and its scores their training counts, not the
model's. Unknown ids are ignored; items of the history and padding are never
recommended: when fewer than top_n items are left, ``count`` says how many a
row has, k is the largest count of the batch (so a single history gets
exactly its items), and a shorter row's slots past its count hold the
padding id with score -inf. The SavedModel needs TensorFlow only, not this
package. It is written into a temporary directory beside --export_dir and
renamed into place when complete, so a failed export leaves nothing.
"""

import os
import shutil
import tempfile

from absl import flags

from asasrec_tf import cli, errors

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FLAGS = flags.FLAGS


def define_flags() -> None:
  cli.define_serving_flags()
  cli.define_flag("Export", "string", "export_dir", None,
                  "Where to write the SavedModel (a new or empty directory). "
                  "Its serving_default signature returns count, items, "
                  "scores and fallback (true where the history held no "
                  "known item and the most popular items were returned).")


def export(run_dir: str, export_dir: str, top_n: int = 10) -> str:
  """Writes the SavedModel of ``run_dir`` to ``export_dir`` (new or empty).

  Raises:
    UserError: the run cannot be served (e.g. non-finite weights) or the
      SavedModel cannot be written; nothing is left behind then.
  """
  import tensorflow as tf
  from asasrec_tf.artifacts import Served
  from asasrec_tf.serving import ServingModule
  served = Served(run_dir)
  served.check_finite()
  module = ServingModule(served, top_n)
  parent = os.path.dirname(os.path.abspath(export_dir))
  try:
    tmp = tempfile.mkdtemp(prefix=".tmp-export-", dir=parent)
  except OSError as e:
    raise errors.UserError(f"--export_dir: cannot write into {parent}: "
                           f"{e.strerror or e}") from None
  try:
    tf.saved_model.save(module, tmp,
                        signatures={"serving_default": module.serve})
    os.rename(tmp, export_dir)
  except (OSError, tf.errors.OpError) as e:
    reason = getattr(e, "strerror", None) or getattr(e, "message", None) or e
    raise errors.UserError(f"--export_dir: cannot write the SavedModel to "
                           f"{export_dir}: {reason}; nothing was written"
                           ) from None
  finally:
    if os.path.isdir(tmp):
      shutil.rmtree(tmp, ignore_errors=True)
  return export_dir


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS.run_dir or not FLAGS.export_dir:
    raise errors.UserError("--run_dir and --export_dir are required")
  if os.path.exists(FLAGS.export_dir) and not os.path.isdir(FLAGS.export_dir):
    raise errors.UserError(f"--export_dir: {FLAGS.export_dir} is a file; "
                           "name a new or empty directory")
  if os.path.exists(FLAGS.export_dir) and os.listdir(FLAGS.export_dir):
    raise errors.UserError(f"--export_dir: {FLAGS.export_dir} exists and is "
                           "not empty")
  print(export(FLAGS.run_dir, FLAGS.export_dir, FLAGS.top_n))


if __name__ == "__main__":
  cli.run(main, __doc__, define_flags)
