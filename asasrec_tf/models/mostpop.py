"""MostPop: rank items by training popularity, the same for every user."""

from __future__ import annotations

import numpy as np


class MostPop:
  """Non-personalised popularity ranking; ties broken by smaller item id.

  Scores are positions in that order (I for the most popular item down to 1),
  so they are exact in float32 and the tie-break survives the evaluator's
  ties-count-against rule.
  """

  def __init__(self, popularity: np.ndarray):
    """Args: popularity: [I + 1] training counts per item id (0 = padding)."""
    popularity = np.asarray(popularity)
    num_items = len(popularity) - 1
    ids = np.arange(1, num_items + 1)
    order = ids[np.lexsort((ids, -popularity[1:]))]  # most popular first
    self.scores = np.zeros(num_items + 1, dtype=np.float32)
    self.scores[order] = np.arange(num_items, 0, -1, dtype=np.float32)

  def score(self, users: np.ndarray, histories: np.ndarray) -> np.ndarray:
    """[B, I + 1] the popularity scores, for any users and histories."""
    return np.broadcast_to(self.scores, (len(users), len(self.scores)))
