"""Atomic file writes: readers see a whole file or the previous one, never
a torn one, and a failed write leaves nothing behind.

Every file the package writes goes through ``atomic_write``: the content is
written to a temporary ``.tmp-*`` file in the target's directory, flushed,
given the permissions a plainly created file would get (umask applied, not
mkstemp's 0600) and renamed over the target. A write that fails (disk full,
an exception in the writer) removes the temporary and raises WriteError
naming the target, with the previous file intact. Temporaries orphaned by a
killed process are removed by ``remove_stale_temporaries``.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from typing import Callable

from asasrec_tf.errors import UserError

PREFIX = ".tmp-"


class WriteError(UserError):
  """A file could not be written; the previous version, if any, is intact."""


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


def atomic_write(path: str, write: Callable[[str], None],
                 suffix: str = "") -> str:
  """Writes ``path`` atomically.

  Args:
    path: the target file.
    write: ``write(tmp_path)`` writes the whole content to ``tmp_path``.
    suffix: suffix of the temporary name (some writers, such as Keras's
      ``save_weights``, insist on an extension).

  Returns:
    ``path``.

  Raises:
    WriteError: the content could not be written (e.g. no space left).
  """
  directory = os.path.dirname(os.path.abspath(path))
  try:
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=PREFIX, suffix=suffix)
  except OSError as e:
    raise WriteError(f"cannot write {path}: {e.strerror or e}") from None
  os.close(fd)
  try:
    write(tmp)
    with open(tmp, "rb+") as f:
      os.fsync(f.fileno())
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)
  except OSError as e:
    reason = ("no space left on the device" if e.errno == errno.ENOSPC
              else e.strerror or str(e))
    raise WriteError(f"cannot write {path}: {reason}; "
                     f"{'the previous file is intact' if os.path.exists(path) else 'nothing was written'}"
                     ) from None
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return path


def atomic_write_bytes(path: str, data: bytes) -> str:
  """Writes ``data`` to ``path`` atomically."""

  def write(tmp: str) -> None:
    with open(tmp, "wb") as f:
      f.write(data)

  return atomic_write(path, write)


def atomic_write_text(path: str, text: str) -> str:
  """Writes ``text`` (UTF-8) to ``path`` atomically."""
  return atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temporaries(directory: str) -> int:
  """Removes the ``.tmp-*`` files in ``directory`` (left by a killed writer;
  call it only while holding the directory, e.g. a run's lock). Returns how
  many were removed."""
  removed = 0
  if not os.path.isdir(directory):
    return removed
  for name in os.listdir(directory):
    if name.startswith(PREFIX):
      path = os.path.join(directory, name)
      try:
        if os.path.isdir(path):
          shutil.rmtree(path)
        else:
          os.remove(path)
        removed += 1
      except OSError:
        pass
  return removed
