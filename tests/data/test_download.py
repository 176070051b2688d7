import hashlib
import http.server
import io
import os
import threading
import zipfile

import pytest

from asasrec_tf.data import download, loader, registry
from asasrec_tf.data.registry import RawFile
from asasrec_tf.errors import DataError

CONTENT = b"1 1\n1 2\n2 2\n"


def sha256(b):
  return hashlib.sha256(b).hexdigest()


def test_git_blob_id_matches_git(tmp_path):
  path = tmp_path / "f"
  path.write_bytes(b"hello\n")
  # `printf 'hello\n' | git hash-object --stdin`
  assert download.git_blob_sha1(str(path)) == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_fetch_file_url_verifies_sha256(tmp_path):
  src = tmp_path / "src.txt"
  src.write_bytes(CONTENT)
  dest = tmp_path / "out" / "Video.txt"
  raw = RawFile("Video.txt", "sasrec", sha256=sha256(CONTENT))
  download.fetch(raw, str(dest), url=src.as_uri())
  assert dest.read_bytes() == CONTENT


def test_checksum_mismatch_leaves_nothing(tmp_path):
  src = tmp_path / "src.txt"
  src.write_bytes(CONTENT)
  dest = tmp_path / "out" / "Video.txt"
  raw = RawFile("Video.txt", "sasrec", git_blob_sha1="0" * 40)
  with pytest.raises(DataError, match="checksum mismatch"):
    download.fetch(raw, str(dest), url=src.as_uri())
  assert os.listdir(dest.parent) == []


def test_zip_member_over_loopback_http(tmp_path):
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w") as zf:
    zf.writestr("ml-1m/ratings.dat", "1::1::5::10\n1::2::5::11\n")
  archive = buf.getvalue()
  served = tmp_path / "www"
  served.mkdir()
  (served / "ml-1m.zip").write_bytes(archive)

  class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
      super().__init__(*a, directory=str(served), **k)

    def log_message(self, *args):
      pass

  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    url = f"http://127.0.0.1:{server.server_address[1]}/ml-1m.zip"
    raw = RawFile("ratings.dat", "movielens", url=url, sha256=sha256(archive),
                  archive_member="ml-1m/ratings.dat")
    dest = tmp_path / "data" / "ml-1m" / "ratings.dat"
    download.fetch(raw, str(dest))
    assert dest.read_text() == "1::1::5::10\n1::2::5::11\n"
    with pytest.raises(DataError, match="download failed"):
      download.fetch(raw, str(tmp_path / "x"), url=url + ".missing")
  finally:
    server.shutdown()
    server.server_close()


def test_loader_downloads_a_missing_file(tmp_path, monkeypatch):
  src = tmp_path / "Video.txt"
  src.write_bytes(CONTENT)
  spec = registry.DatasetSpec(
      "video", (RawFile("Video.txt", "sasrec", url=src.as_uri(),
                        sha256=sha256(CONTENT)),), "get it", "test")
  monkeypatch.setitem(registry.DATASETS, "video", spec)
  data = loader.load("video", data_dir=str(tmp_path / "data"),
                     allow_download=True, split="loo")
  assert data.stats()["interactions"] == 3
  assert (tmp_path / "data" / "video" / "Video.txt").read_bytes() == CONTENT


def test_failed_download_explains_manual_route(tmp_path, monkeypatch):
  spec = registry.DatasetSpec(
      "video", (RawFile("Video.txt", "sasrec",
                        url=(tmp_path / "missing.txt").as_uri()),),
      "download it from X", "test")
  monkeypatch.setitem(registry.DATASETS, "video", spec)
  with pytest.raises(DataError) as e:
    loader.load("video", data_dir=str(tmp_path / "d"), allow_download=True,
                data_dir_hint="--data_dir or $ASASREC_DATA_DIR")
  # after a failed download: how to get it by hand, every accepted name,
  # where to put it and both ways to point at another directory
  message = str(e.value)
  for fragment in ("download failed", "download it from X",
                   "Video.txt[.gz] (sasrec format)",
                   f"into {tmp_path / 'd' / 'video'}/",
                   "--data_dir or $ASASREC_DATA_DIR"):
    assert fragment in message, fragment
