import gzip
import json
import os
import subprocess
import sys

import pytest

from asasrec_tf.data import download, loader, readers, registry
from asasrec_tf.errors import DataError, UserError

from tests.conftest import REPO


def run_data_cli(*args):
  return subprocess.run([sys.executable, "-m", "asasrec_tf.data", *args],
                        capture_output=True, text=True, cwd=REPO, timeout=120)


def test_video_matches_table_1(shared_data, tmp_path):
  out = run_data_cli("--dataset=video", f"--data_dir={shared_data}",
                     "--split=loo", f"--cache_dir={tmp_path}")
  assert out.returncode == 0, out.stderr
  stats = json.loads(out.stdout)
  assert (stats["users"], stats["items"], stats["interactions"],
          stats["train_interactions"]) == (31013, 23715, 287107, 256094)
  assert stats["auto_maxlen"] == 8


def test_ml1m_matches_table_1_and_the_authors_test_items(shared_data, tmp_path):
  data = loader.load("ml-1m", data_dir=shared_data, split="loo",
                     cache_dir=str(tmp_path))
  s = data.stats()
  assert (s["users"], s["items"], s["interactions"],
          s["train_interactions"]) == (6040, 3706, 1000209, 994169)
  assert s["test_users"] == 6040 and s["auto_maxlen"] == 50
  # ml-1m.txt keeps GroupLens MovieIDs, so the remapped ids map back to them.
  assert data.item_ids[1] == 1 and data.item_ids[-1] == 3952


def test_bert4rec_beauty_substitute_is_labelled_and_loads(shared_data, tmp_path):
  spec = registry.DATASETS["beauty-bert4rec"]
  assert spec.substitute_for == "beauty" and spec.directory == "beauty"
  assert "SUBSTITUTE" in spec.description
  data = loader.load("beauty-bert4rec", data_dir=shared_data, split="loo",
                     cache_dir=str(tmp_path))
  s = data.stats()
  # PROVENANCE.md: 353,962 lines, 40,226 users, 54,542 items.
  assert (s["users"], s["items"], s["interactions"]) == (40226, 54542, 353962)
  # The stored file is FeiSun/BERT4Rec's data/beauty.txt, byte for byte.
  raw = tmp_path / "beauty.txt"
  with gzip.open(os.path.join(shared_data, "beauty",
                              "SUBSTITUTE_bert4rec_beauty.txt.gz")) as f:
    raw.write_bytes(f.read())
  assert download.git_blob_sha1(str(raw)) == spec.files[0].git_blob_sha1


def test_ml1m_partial_raw_file(shared_data, tmp_path):
  out = run_data_cli(
      f"--data_path={shared_data}/ml-1m/ratings_PARTIAL_users1-2999.dat.gz",
      "--data_format=movielens", f"--cache_dir={tmp_path}")
  assert out.returncode == 0, out.stderr
  s = json.loads(out.stdout)
  assert (s["users"], s["items"], s["interactions"]) == (2999, 3615, 487650)


def test_second_load_comes_from_the_cache(shared_data, tmp_path, monkeypatch):
  first = loader.load("video", data_dir=shared_data, split="loo",
                      cache_dir=str(tmp_path))
  assert len(os.listdir(tmp_path)) == 1

  def no_parsing(*args):
    raise AssertionError("the raw file was parsed again")

  monkeypatch.setattr(readers, "read", no_parsing)
  second = loader.load("video", data_dir=shared_data, split="loo",
                       cache_dir=str(tmp_path))
  assert second.stats() == first.stats()
  # another split is another cache entry, so it must parse
  with pytest.raises(AssertionError, match="parsed again"):
    loader.load("video", data_dir=shared_data, split="loo_valid",
                cache_dir=str(tmp_path))


def test_bad_file_leaves_no_cache_entry(tmp_path):
  bad = tmp_path / "bad.txt"
  bad.write_text("1 2\n1 two\n")
  cache = tmp_path / "cache"
  with pytest.raises(DataError):
    loader.load(data_path=str(bad), data_format="sasrec", cache_dir=str(cache))
  assert not cache.exists() or not os.listdir(cache)


def test_missing_raw_file_says_where_and_how(tmp_path):
  with pytest.raises(DataError) as e:
    loader.load("video", data_dir=str(tmp_path), allow_download=False)
  msg = str(e.value)
  assert f"Video.txt[.gz] (sasrec format) into {tmp_path / 'video'}/" in msg
  assert "kang205/SASRec" in msg
  with pytest.raises(DataError) as e:
    loader.load("ml-1m", data_dir=str(tmp_path), allow_download=False,
                data_dir_hint="--data_dir or $ASASREC_DATA_DIR")
  # every accepted form, and both ways to point at a directory
  assert ("put ratings.dat[.gz] (movielens format) or ml-1m.txt[.gz] "
          f"(sasrec format) into {tmp_path / 'ml-1m'}/, or point --data_dir "
          "or $ASASREC_DATA_DIR at a directory") in str(e.value)


def test_a_relative_data_dir_variable_is_made_absolute(tmp_path, monkeypatch):
  from asasrec_tf import cli
  monkeypatch.chdir(tmp_path)
  monkeypatch.setenv("ASASREC_DATA_DIR", "shared/data")
  assert cli.default_data_dir() == str(tmp_path / "shared" / "data")


def test_manual_datasets_explain_the_manual_download(tmp_path):
  for name in ("foursquare", "yelp"):
    with pytest.raises(DataError, match="cannot be downloaded automatically"):
      loader.load(name, data_dir=str(tmp_path), allow_download=True)


def test_gz_and_alternative_raw_forms_are_found(tmp_path):
  folder = tmp_path / "ml-1m"
  folder.mkdir()
  (folder / "ml-1m.txt").write_text("1 10\n1 20\n2 10\n")
  path, fmt = loader.find_raw_file(registry.DATASETS["ml-1m"], str(tmp_path),
                                   allow_download=False)
  assert (os.path.basename(path), fmt) == ("ml-1m.txt", "sasrec")


def test_data_path_needs_a_format(tmp_path):
  with pytest.raises(UserError, match="--data_format is required"):
    loader.load(data_path=str(tmp_path / "x"))


def test_registry_covers_the_papers_six_datasets():
  paper = {name for name, spec in registry.DATASETS.items()
           if not spec.substitute_for}
  assert paper == {"ml-1m", "beauty", "video", "brightkite", "foursquare",
                   "yelp"}
  for spec in registry.DATASETS.values():
    for raw in spec.files:
      assert raw.format in readers.FORMATS
      if raw.url and spec.name != "brightkite":
        assert raw.sha256 or raw.git_blob_sha1, spec.name


@pytest.mark.parametrize("args,fragment", [
    (["--dataset=nope"], "flag --dataset=nope"),
    (["--dataset=foursquare", "--data_dir=/nonexistent"], "cannot be downloaded"),
    (["--data_path=/nonexistent/file.txt", "--data_format=sasrec"], "no such file"),
])
def test_cli_errors_exit_2_without_traceback(args, fragment):
  out = run_data_cli(*args)
  assert out.returncode == 2
  assert fragment in out.stderr
  assert "Traceback" not in out.stderr


def test_a_truncated_cache_entry_is_rebuilt(tmp_path, capsys):
  raw = tmp_path / "d.txt"
  raw.write_text("".join(f"{u} {i}\n" for u in range(5) for i in range(1, 5)))
  cache = tmp_path / "cache"
  first = loader.load(data_path=str(raw), data_format="sasrec",
                      cache_dir=str(cache))
  (entry,) = os.listdir(cache)
  with open(cache / entry, "r+b") as f:
    f.truncate(40)           # a zip cut short: BadZipFile, not OSError
  again = loader.load(data_path=str(raw), data_format="sasrec",
                      cache_dir=str(cache))
  assert again.stats() == first.stats()
  assert "ignoring unreadable cache entry" in capsys.readouterr().err
  # ...and the entry was written again, whole
  assert loader.load(data_path=str(raw), data_format="sasrec",
                     cache_dir=str(cache)).stats() == first.stats()


def test_repeated_lines_are_counted_and_can_be_dropped(tmp_path):
  # user 1: 5 5 6 7 7 (two lines repeat the one before); user 2: 8 9 8
  raw = tmp_path / "d.txt"
  raw.write_text("1 5\n1 5\n1 6\n1 7\n1 7\n2 8\n2 9\n2 8\n")
  kept = loader.load(data_path=str(raw), data_format="sasrec", split="loo_valid")
  assert kept.stats()["repeats"] == 2 and not kept.stats()["repeats_dropped"]
  # kept: the test item (7) repeats the validation item (7)
  assert kept.item_ids[kept.test_items[0]] == kept.item_ids[
      kept.valid_items[0]] == 7
  dropped = loader.load(data_path=str(raw), data_format="sasrec",
                        split="loo_valid", drop_repeats=True)
  assert dropped.stats()["repeats"] == 2 and dropped.stats()["repeats_dropped"]
  assert dropped.stats()["interactions"] == 6
  # user 1 is now 5 6 7: validation 6, test 7
  assert [dropped.item_ids[i] for i in (dropped.valid_items[0],
                                        dropped.test_items[0])] == [6, 7]
