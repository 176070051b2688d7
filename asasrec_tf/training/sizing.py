"""What maxlen a run uses and whether its training step fits in memory:
checked from the data alone, before TensorFlow is loaded, so that a run
that cannot work says so in a second."""

from __future__ import annotations

import os
from typing import Optional

from asasrec_tf.data.dataset import SequenceDataset
from asasrec_tf.errors import UserError


def check_maxlen(value: str) -> None:
  """Validates a --maxlen value before any data is read."""
  if value == "auto":
    return
  try:
    maxlen = int(value)
  except ValueError:
    maxlen = 0
  if maxlen < 1:
    raise UserError(f"--maxlen must be a positive integer or 'auto', got "
                    f"{value!r}")


def longest_window(data: SequenceDataset) -> int:
  """The most items a model input of ``data`` ever holds: a user's whole
  sequence but the item predicted (at least 1)."""
  lengths = (data.train_lengths + (data.valid_items > 0) +
             (data.test_items > 0))
  return max(1, int(lengths.max(initial=0)) - 1)


def resolve_maxlen(value: str, data: SequenceDataset) -> int:
  """An integer --maxlen, or the authors' 'auto' rule for ``data``; never
  more than ``data``'s longest window (positions past it would only ever
  hold padding, and attention costs maxlen squared)."""
  check_maxlen(value)
  wanted = data.auto_maxlen() if value == "auto" else int(value)
  return min(wanted, longest_window(data))


# [batch, heads, maxlen, maxlen] float32 tensors alive at a step's peak: per
# block the attention logits, mask, weights and dropout kept for the
# backward pass, plus the backward's own at the last block (measured: 4.6
# tensors' worth at 1 block, 8.0-8.9 at 2).
_ATTENTION_TENSORS_PER_BLOCK, _ATTENTION_TENSORS_EXTRA = 4, 2


def check_step_memory(maxlen: int, batch_size: int, num_heads: int,
                      num_blocks: int, limit_bytes: Optional[int] = None
                      ) -> None:
  """Refuses a SASRec step whose attention alone would not fit in memory
  (``limit_bytes``, default 80 % of the machine's physical memory)."""
  if limit_bytes is None:
    try:
      limit_bytes = int(0.8 * os.sysconf("SC_PHYS_PAGES") *
                        os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError):
      return
  tensors = (_ATTENTION_TENSORS_PER_BLOCK * num_blocks +
             _ATTENTION_TENSORS_EXTRA)
  need = 4 * tensors * batch_size * num_heads * maxlen * maxlen
  if need > limit_bytes:
    raise UserError(f"--maxlen={maxlen}: a training step would need about "
                    f"{need / 2**30:.0f} GiB for attention alone "
                    f"(--batch_size={batch_size}, --num_heads={num_heads}, "
                    f"--num_blocks={num_blocks}), more than the "
                    f"{limit_bytes / 2**30:.0f} GiB it may use on this "
                    "machine; use a "
                    "smaller --maxlen (or 'auto') or --batch_size")
