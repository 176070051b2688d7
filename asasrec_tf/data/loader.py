"""Finds, downloads, parses, preprocesses and caches a dataset.

``load()`` is the one entry point; the programs build its arguments from
their flags (cli.data_from_flags).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zipfile
from typing import List, Optional

from asasrec_tf.data import download, preprocess, readers, registry, synthetic
from asasrec_tf.data.dataset import SequenceDataset
from asasrec_tf.errors import DataError, UserError
from asasrec_tf.fileio import WriteError

# 3: ids written as floats ("7.0", "1e3") or with a sign are refused, so a
# file the version-2 reader accepted is read again, and refused.
CACHE_VERSION = 3


def find_raw_file(spec: registry.DatasetSpec, data_dir: str,
                  allow_download: bool = True,
                  data_dir_hint: str = "data_dir") -> tuple:
  """Returns (path, format) of the first raw form of ``spec`` present.

  Downloads the first downloadable form when none is present and
  ``allow_download`` is set. ``data_dir_hint`` names, in the error, the ways
  the caller lets a user point at another data directory.
  """
  folder = os.path.join(data_dir, spec.directory)
  looked: List[str] = []
  for raw in spec.files:
    for candidate in (raw.name, raw.name + ".gz"):
      path = os.path.join(folder, candidate)
      looked.append(path)
      if os.path.isfile(path):
        return path, raw.format
  accepted = " or ".join(f"{raw.name}[.gz] ({raw.format} format)"
                         for raw in spec.files)
  where = (f"put {accepted} into {folder}/, or point {data_dir_hint} at a "
           f"directory that holds {spec.directory}/ with one of them")
  downloadable = [raw for raw in spec.files if raw.url]
  if allow_download and downloadable:
    raw = downloadable[0]
    dest = os.path.join(folder, raw.name)
    try:
      return download.fetch(raw, dest), raw.format
    except DataError as e:
      raise DataError(folder, f"no raw file of dataset {spec.name!r} and the "
                      f"download failed ({e}); {spec.how_to_get}; then "
                      f"{where}") from None
  raise DataError(folder, f"no raw file of dataset {spec.name!r}: "
                  f"{spec.how_to_get}; then {where}"
                  + ("" if not downloadable else
                     " (or run again with --download to fetch it)"))


def file_sha256(path: str) -> str:
  """The SHA-256 of a file's bytes, hex."""
  h = hashlib.sha256()
  try:
    with open(path, "rb") as f:
      for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
  except OSError as e:
    raise DataError(path, f"cannot be read: {e.strerror or e}") from None
  return h.hexdigest()


def _cache_key(content_sha256: str, fmt: str, split: str, min_item: int,
               drop_repeats: bool) -> str:
  h = hashlib.sha256(content_sha256.encode())
  h.update(json.dumps([fmt, split, min_item, drop_repeats,
                       CACHE_VERSION]).encode())
  return h.hexdigest()[:20]


def load_file(path: str, fmt: str, name: str, split: str = "loo_valid",
              min_item_interactions: int = 0,
              cache_dir: Optional[str] = None,
              drop_repeats: bool = False) -> SequenceDataset:
  """Reads and preprocesses one raw file, through the cache when given
  (an unreadable cache entry is rebuilt; one that cannot be written is
  skipped with a warning). The result records the file and its SHA-256
  (``source_path``, ``source_sha256``)."""
  if not os.path.isfile(path):
    raise DataError(path, "no such file")
  digest = file_sha256(path)
  cache_path = None
  if cache_dir:
    key = _cache_key(digest, fmt, split, min_item_interactions, drop_repeats)
    cache_path = os.path.join(cache_dir, f"{name}-{split}-{key}.npz")
    if os.path.isfile(cache_path):
      try:
        data = SequenceDataset.load(cache_path)
        data.source_path, data.source_sha256 = path, digest
        return data
      except (OSError, ValueError, KeyError, EOFError,
              zipfile.BadZipFile) as e:
        print(f"warning: ignoring unreadable cache entry {cache_path} ({e}); "
              "rebuilding it", file=sys.stderr)
  inter = readers.read(path, fmt)
  data = preprocess.preprocess(inter, name, split, min_item_interactions,
                               drop_repeats)
  data.source_path, data.source_sha256 = path, digest
  if cache_path:
    try:
      data.save(cache_path)
    except (OSError, WriteError) as e:
      print(f"warning: the preprocessed data was not cached ({e}); the run "
            "goes on (--cache_dir='' turns the cache off)", file=sys.stderr)
  return data


def load(dataset: str = registry.SYNTHETIC, data_dir: str = ".",
         data_path: Optional[str] = None, data_format: Optional[str] = None,
         split: str = "loo_valid", min_item_interactions: int = 0,
         cache_dir: Optional[str] = None, allow_download: bool = False,
         synthetic_users: int = 1000, synthetic_items: int = 300,
         synthetic_seed: int = 0, drop_repeats: bool = False,
         data_dir_hint: str = "data_dir") -> SequenceDataset:
  """Loads a dataset by name, or a custom file when ``data_path`` is set.

  ``data_dir_hint`` names, in a missing-file error, how the caller sets the
  data directory (the programs: "--data_dir or $ASASREC_DATA_DIR").
  """
  if data_path:
    if not data_format:
      raise UserError("--data_format is required with --data_path (one of "
                      f"{', '.join(readers.FORMATS)})")
    if dataset not in (registry.SYNTHETIC, registry.CUSTOM):
      raise UserError(f"--data_path reads your own file as dataset 'custom'; "
                      f"it cannot be labelled --dataset={dataset}. Drop "
                      f"--dataset (or pass --dataset=custom), or read "
                      f"{dataset}'s own file from --data_dir")
    return load_file(data_path, data_format, registry.CUSTOM, split,
                     min_item_interactions, cache_dir, drop_repeats)
  if dataset == registry.CUSTOM:
    raise UserError("--dataset=custom needs --data_path and --data_format")
  if dataset == registry.SYNTHETIC:
    inter = synthetic.generate(num_users=synthetic_users,
                               num_items=synthetic_items, seed=synthetic_seed)
    return preprocess.preprocess(inter, registry.SYNTHETIC, split,
                                 min_item_interactions, drop_repeats)
  if dataset not in registry.DATASETS:
    raise UserError(f"unknown dataset {dataset!r}; expected one of "
                    f"{', '.join(registry.names())}")
  path, fmt = find_raw_file(registry.DATASETS[dataset], data_dir,
                            allow_download, data_dir_hint)
  return load_file(path, fmt, dataset, split, min_item_interactions, cache_dir,
                   drop_repeats)
