"""Verified, atomic downloads of the registered raw files.

A file is streamed into a temporary file beside its destination, checked
against its SHA-256 or git blob id, and only then renamed into place, so an
interrupted or corrupted download never leaves a file that looks complete.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from typing import Optional

from asasrec_tf.data.registry import RawFile
from asasrec_tf.errors import DataError
from asasrec_tf.fileio import PREFIX, atomic_write

_CHUNK = 1 << 20


def git_blob_sha1(path: str) -> str:
  """The id git gives the file's content (``git hash-object``)."""
  h = hashlib.sha1()
  h.update(b"blob %d\0" % os.path.getsize(path))
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(_CHUNK), b""):
      h.update(chunk)
  return h.hexdigest()


def sha256_file(path: str) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(_CHUNK), b""):
      h.update(chunk)
  return h.hexdigest()


def _stream(url: str, dest: str, timeout: float) -> None:
  """Copies ``url`` to the open path ``dest``, printing progress."""
  try:
    with urllib.request.urlopen(url, timeout=timeout) as response, open(
        dest, "wb") as out:
      total = int(response.headers.get("Content-Length") or 0)
      done = 0
      while True:
        chunk = response.read(_CHUNK)
        if not chunk:
          break
        out.write(chunk)
        done += len(chunk)
        pct = f" {100 * done // total:3d}%" if total else ""
        print(f"\r  {os.path.basename(dest)}: {done >> 20} MiB{pct}", end="",
              file=sys.stderr)
    print(file=sys.stderr)
  except (urllib.error.URLError, OSError, ValueError) as e:
    raise DataError(url, f"download failed: {getattr(e, 'reason', e)}") from None


def fetch(raw: RawFile, dest: str, url: Optional[str] = None,
          timeout: float = 60.0) -> str:
  """Downloads ``raw`` to ``dest`` (the final path of the raw file).

  Args:
    raw: the registry entry; its checksum is verified.
    dest: where the raw file must end up.
    url: overrides ``raw.url`` (tests use a ``file://`` or loopback URL).
    timeout: seconds without an answer before giving up.

  Returns:
    ``dest``.

  Raises:
    DataError: the download failed or its checksum does not match; nothing is
      left at ``dest``.
  """
  url = url or raw.url
  if not url:
    raise DataError(dest, "has no download URL")
  directory = os.path.dirname(os.path.abspath(dest))
  os.makedirs(directory, exist_ok=True)
  print(f"downloading {url}", file=sys.stderr)
  with tempfile.TemporaryDirectory(dir=directory, prefix=PREFIX) as scratch:
    got = os.path.join(scratch, "download")
    _stream(url, got, timeout)
    _verify(raw, got, url)
    if not raw.archive_member:
      return atomic_write(dest, lambda tmp: shutil.copyfile(got, tmp))
    try:
      with zipfile.ZipFile(got) as zf:
        zf.getinfo(raw.archive_member)

        def extract(tmp: str) -> None:
          with zf.open(raw.archive_member) as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, _CHUNK)

        return atomic_write(dest, extract)
    except (zipfile.BadZipFile, KeyError) as e:
      raise DataError(url, f"archive has no usable {raw.archive_member}: {e}"
                      ) from None


def _verify(raw: RawFile, path: str, url: str) -> None:
  if raw.sha256:
    got = sha256_file(path)
    if got != raw.sha256:
      raise DataError(url, f"checksum mismatch: sha256 {got}, expected "
                      f"{raw.sha256}; the download is corrupt or the file "
                      "changed upstream")
  elif raw.git_blob_sha1:
    got = git_blob_sha1(path)
    if got != raw.git_blob_sha1:
      raise DataError(url, f"checksum mismatch: git blob {got}, expected "
                      f"{raw.git_blob_sha1}; the download is corrupt or the "
                      "file changed upstream")
