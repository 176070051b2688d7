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

from asasrec_tf import cli, errors

if __name__ == "__main__":
  cli.quiet_interrupts()  # Ctrl-C in the imports below: one line
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

from asasrec_tf.artifacts import Served  # noqa: E402

FLAGS = flags.FLAGS


def define_flags() -> None:
  cli.define_serving_flags()
  cli.define_flag("Export", "string", "export_dir", None,
                  "Where to write the SavedModel (a new or empty directory). "
                  "Its serving_default signature returns count, items, "
                  "scores and fallback (true where the history held no "
                  "known item and the most popular items were returned).")


class ServingModule(tf.Module):
  """Maps original ids in, scores with the run's model, top-N ids out."""

  def __init__(self, served: Served, top_n: int):
    super().__init__()
    self.maxlen = served.maxlen
    self.top_n = min(top_n, served.num_items)
    self.kind = served.model_name
    ids = served.item_ids[1:]
    self.string_ids = ids.dtype.kind not in "iu"
    key_dtype = tf.string if self.string_ids else tf.int64
    keys = ids.astype(str) if self.string_ids else ids.astype(np.int64)
    self.pad = "" if self.string_ids else -1
    self.to_internal = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(keys, key_dtype),
            tf.range(1, served.num_items + 1, dtype=tf.int32)),
        default_value=0)
    self.to_original = tf.constant(served.item_ids.astype(str)
                                   if self.string_ids else
                                   served.item_ids.astype(np.int64))
    # The Keras model is kept out of the tracked attributes (Keras would add a
    # float32 serving signature of its own); its variables are tracked here.
    model = served.model
    self.weights = [getattr(v, "value", v) for v in getattr(model, "weights", [])]
    self._model = lambda: model
    self.popularity = tf.constant(served.popularity, tf.float32)
    spec = tf.TensorSpec([None, None], key_dtype, name="histories")
    self.serve = tf.function(self._serve, input_signature=[spec])

  def _score(self, internal):
    """[B, I + 1] scores for [B, L] internal ids (0 = padding/unknown)."""
    model = self._model()
    if self.kind == "mostpop":
      return tf.tile(tf.constant(model.scores, tf.float32)[None],
                     [tf.shape(internal)[0], 1])
    if self.kind in ("bpr", "apr"):
      table = tf.convert_to_tensor(model.item_embedding)
      mask = tf.cast(internal > 0, tf.float32)[..., None]
      emb = tf.gather(table, internal) * mask
      vec = tf.reduce_sum(emb, 1) / tf.maximum(tf.reduce_sum(mask, 1), 1.0)
      return tf.matmul(vec, table, transpose_b=True)
    # Keep the last maxlen known items, left-padded with 0.
    ragged = tf.ragged.boolean_mask(internal, internal > 0)
    ragged = tf.reverse(ragged, axis=[1])[:, :self.maxlen]
    window = tf.reverse(ragged.to_tensor(0, shape=[None, self.maxlen]),
                        axis=[1])
    return model.score(tf.zeros([tf.shape(window)[0]], tf.int32), window)

  def _serve(self, histories):
    internal = self.to_internal.lookup(histories)
    internal = tf.where(tf.equal(histories, self.pad), 0, internal)
    scores = self._score(internal)
    empty = tf.reduce_all(internal == 0, axis=1)
    scores = tf.where(empty[:, None], self.popularity[None], scores)
    batch = tf.shape(internal)[0]
    rows = tf.repeat(tf.range(batch), tf.shape(internal)[1])
    seen = tf.stack([rows, tf.reshape(internal, [-1])], axis=1)
    seen = tf.concat([seen, tf.stack([tf.range(batch),
                                      tf.zeros([batch], tf.int32)], 1)], 0)
    scores = tf.tensor_scatter_nd_update(
        scores, seen, tf.fill([tf.shape(seen)[0]], float("-inf")))
    count = tf.minimum(self.top_n, tf.reduce_sum(
        tf.cast(tf.math.is_finite(scores), tf.int32), axis=1))
    k = tf.maximum(tf.reduce_max(count), 0)  # 0 for an empty batch
    top = tf.math.top_k(scores, k=k)
    keep = tf.sequence_mask(count, k)
    return {"count": count,
            "items": tf.where(keep, tf.gather(self.to_original, top.indices),
                              tf.cast(self.pad, self.to_original.dtype)),
            "scores": tf.where(keep, top.values, float("-inf")),
            "fallback": empty}


def export(run_dir: str, export_dir: str, top_n: int = 10) -> str:
  """Writes the SavedModel of ``run_dir`` to ``export_dir`` (new or empty).

  Raises:
    UserError: the run cannot be served (e.g. non-finite weights) or the
      SavedModel cannot be written; nothing is left behind then.
  """
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
  define_flags()
  cli.run(main, __doc__)
