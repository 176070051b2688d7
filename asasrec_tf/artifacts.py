"""What a run directory needs for serving: id maps, histories, the model.

``serving.npz`` holds the original user and item ids (index = internal id),
every user's full known history (training and held-out items, internal ids,
time order) and the training popularity; ``model.json`` says how to rebuild
the model whose weights are ``best.weights.h5``. Both are written when the
run starts, so a run can be served as soon as it has a best checkpoint.
"""

from __future__ import annotations

import io
import json
import os
import warnings
import zipfile
from typing import Dict, Optional

import numpy as np

from asasrec_tf.data.dataset import SequenceDataset
from asasrec_tf.fileio import atomic_write_bytes, atomic_write_text
from asasrec_tf.errors import UserError

SERVING = "serving.npz"
MODEL = "model.json"

def full_history(data: SequenceDataset):
  """CSR (offsets, items) of every user's items, held-out ones last."""
  offsets, items = data.history("test")
  has = (data.test_items > 0).astype(np.int64)
  items = np.insert(items, offsets[1:][has > 0], data.test_items[has > 0])
  return offsets + np.concatenate([[0], np.cumsum(has)]), items.astype(np.int32)


def save(run_dir: str, data: SequenceDataset, model_name: str, maxlen: int,
         hyper: Dict[str, object]) -> None:
  offsets, items = full_history(data)
  buf = io.BytesIO()
  np.savez(buf, user_ids=data.user_ids, item_ids=data.item_ids,
           history_offsets=offsets, history_items=items,
           popularity=data.item_popularity())
  atomic_write_bytes(os.path.join(run_dir, SERVING), buf.getvalue())
  atomic_write_text(os.path.join(run_dir, MODEL), json.dumps({
      "model": model_name, "maxlen": maxlen, "num_users": data.num_users,
      "num_items": data.num_items, "hyper": hyper}, indent=1) + "\n")


class Served:
  """A loaded run: id maps, histories and the model with its best weights."""

  def __init__(self, run_dir: str):
    self.run_dir = run_dir
    for name in (SERVING, MODEL):
      if not os.path.isfile(os.path.join(run_dir, name)):
        raise UserError(f"--run_dir: {run_dir} has no {name}; is it a run "
                        "directory of asasrec_tf.main?")
    path = os.path.join(run_dir, SERVING)
    try:
      with np.load(path, allow_pickle=False) as z:
        self.user_ids = z["user_ids"]
        self.item_ids = z["item_ids"]
        self.history_offsets = z["history_offsets"]
        self.history_items = z["history_items"]
        self.popularity = z["popularity"]
    except (OSError, ValueError, KeyError, EOFError,
            zipfile.BadZipFile) as e:
      raise UserError(f"{path}: unreadable ({e}); rerun the training "
                      "command with --restart to rewrite it") from None
    path = os.path.join(run_dir, MODEL)
    try:
      with open(path) as f:
        self.spec = json.load(f)
      self.maxlen = int(self.spec["maxlen"])
      self.num_items = int(self.spec["num_items"])
      self.model_name = self.spec["model"]
    except (OSError, ValueError, KeyError, TypeError) as e:
      raise UserError(f"{path}: unreadable ({e}); expected the JSON "
                      "asasrec_tf.main writes") from None
    self.model = self._build(run_dir)
    self._item_index = {self._key(v): i for i, v in enumerate(self.item_ids)
                        if i > 0}
    self._user_index = {self._key(v): i for i, v in enumerate(self.user_ids)}

  @staticmethod
  def _key(value) -> str:
    return str(value)

  def _build(self, run_dir: str):
    from asasrec_tf.models.mf import BPRMF
    from asasrec_tf.models.mostpop import MostPop
    from asasrec_tf.models.sasrec import SASRec
    name, hyper = self.model_name, self.spec["hyper"]
    if name == "mostpop":
      return MostPop(self.popularity)
    if name in ("bpr", "apr"):
      model = BPRMF(int(self.spec["num_users"]), self.num_items,
                    hidden_units=hyper["hidden_units"])
      model.build_for_inputs()
    else:
      model = SASRec(self.num_items, self.maxlen,
                     hidden_units=hyper["hidden_units"],
                     num_blocks=hyper["num_blocks"],
                     num_heads=hyper["num_heads"], dropout_rate=0.0,
                     block=hyper.get("block", "kang205"))
      model.build_for_inputs()
    weights = os.path.join(run_dir, "best.weights.h5")
    if not os.path.isfile(weights):
      raise UserError(f"--run_dir: {run_dir} has no best.weights.h5 yet")
    with warnings.catch_warnings():
      # The file also holds optimiser slots, which serving does not need.
      warnings.simplefilter("ignore")
      try:
        model.load_weights(weights)
      except (OSError, ValueError, KeyError) as e:
        raise UserError(f"{weights}: unreadable weights ({e})") from None
    return model

  def check_finite(self) -> None:
    """Raises UserError when the model's weights hold NaN or infinities (a
    run that diverged): such a model would score every item NaN."""
    weights = [np.asarray(w) for w in getattr(self.model, "weights", [])]
    if self.model_name == "mostpop":
      weights = [np.asarray(self.model.scores)]
    if not all(np.isfinite(w).all() for w in weights):
      raise UserError(f"{self.run_dir}: the model's weights are not finite "
                      "(NaN or infinite; the run diverged): retrain it")

  def item_index(self, original) -> Optional[int]:
    return self._item_index.get(self._key(original))

  def user_index(self, original) -> Optional[int]:
    return self._user_index.get(self._key(original))

  def user_history(self, user: int) -> np.ndarray:
    return self.history_items[self.history_offsets[user]:
                              self.history_offsets[user + 1]]

  def scores(self, history: np.ndarray, user: Optional[int] = None):
    """[I + 1] scores after ``history`` (internal ids) for one user.

    Sequence models read the last maxlen items; factorisation models use the
    user's embedding, or for a bare history the mean embedding of its items
    (fold-in).
    """
    import tensorflow as tf
    if self.model_name == "mostpop":
      return self.model.scores.astype(np.float64)
    if self.model_name in ("bpr", "apr"):
      if user is not None:
        vec = tf.gather(self.model.user_embedding, [user])
      else:
        vec = tf.reduce_mean(tf.gather(self.model.item_embedding, history),
                             axis=0, keepdims=True)
      return tf.matmul(vec, self.model.item_embedding,
                       transpose_b=True).numpy()[0].astype(np.float64)
    window = np.zeros((1, self.maxlen), np.int32)
    tail = history[-self.maxlen:]
    if len(tail):
      window[0, -len(tail):] = tail
    users = tf.constant([0 if user is None else user], tf.int32)
    return self.model.score(users, tf.constant(window)).numpy()[0].astype(
        np.float64)
