"""The TensorFlow module behind a SavedModel: original ids in, top-N out.

See export.py for the signature it serves. It needs TensorFlow only, so the
SavedModel runs where this package is not installed (TF Serving).
"""

import numpy as np
import tensorflow as tf

from asasrec_tf.artifacts import Served


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
    self.serve = tf.function(self._serve, input_signature=[spec],
                             autograph=False)

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
