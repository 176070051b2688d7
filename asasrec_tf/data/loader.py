"""Finds, downloads, parses, preprocesses and caches a dataset.

Owns the data flags. ``load_from_flags()`` is what the entry points call;
``load()`` takes explicit arguments for library use and tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import List, Optional

from absl import flags

from asasrec_tf.data import download, preprocess, readers, registry, synthetic
from asasrec_tf.data.dataset import SPLITS, SequenceDataset
from asasrec_tf.errors import DataError, UserError

CACHE_VERSION = 1


def _default_cache_root() -> str:
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
      os.path.expanduser("~"), ".cache")
  return os.path.join(base, "asasrec_tf")


flags.DEFINE_enum("dataset", registry.SYNTHETIC, list(registry.names()),
                  "Dataset to use. 'custom' (implied by --data_path) reads "
                  "your own file.")
flags.DEFINE_string("data_dir", os.path.join(_default_cache_root(), "raw"),
                    "Directory holding <dataset>/<raw file>.")
flags.DEFINE_string("data_path", None,
                    "A custom interaction file (needs --data_format).")
flags.DEFINE_enum("data_format", None, list(readers.FORMATS),
                  "Format of --data_path.")
flags.DEFINE_enum("split", "loo_valid", list(SPLITS),
                  "loo_valid: last item test, second to last validation; "
                  "loo: last item test, no validation (the paper).")
flags.DEFINE_integer("min_item_interactions", 0,
                     "Drop items with fewer interactions (0: keep all, as the "
                     "paper's data did).", lower_bound=0)
flags.DEFINE_string("cache_dir", os.path.join(_default_cache_root(),
                                              "processed"),
                    "Where preprocessed datasets are cached ('' disables).")
flags.DEFINE_bool("download", True,
                  "Download a missing raw file when it has a public URL.")
flags.DEFINE_integer("synthetic_users", 1000, "Users of --dataset=synthetic.",
                     lower_bound=1)
flags.DEFINE_integer("synthetic_items", 300, "Items of --dataset=synthetic.",
                     lower_bound=4)
flags.DEFINE_integer("synthetic_seed", 0, "Seed of --dataset=synthetic.")

FLAGS = flags.FLAGS


def find_raw_file(spec: registry.DatasetSpec, data_dir: str,
                  allow_download: bool = True) -> tuple:
  """Returns (path, format) of the first raw form of ``spec`` present.

  Downloads the first downloadable form when none is present and
  ``allow_download`` is set.
  """
  folder = os.path.join(data_dir, spec.directory)
  looked: List[str] = []
  for raw in spec.files:
    for candidate in (raw.name, raw.name + ".gz"):
      path = os.path.join(folder, candidate)
      looked.append(path)
      if os.path.isfile(path):
        return path, raw.format
  target = os.path.join(folder, spec.files[0].name)
  downloadable = [raw for raw in spec.files if raw.url]
  if allow_download and downloadable:
    raw = downloadable[0]
    dest = os.path.join(folder, raw.name)
    try:
      return download.fetch(raw, dest), raw.format
    except DataError as e:
      raise DataError(folder, f"no raw file of dataset {spec.name!r} (looked "
                      f"for {', '.join(looked)}) and the download failed "
                      f"({e}); {spec.how_to_get} at {dest}") from None
  raise DataError(folder, f"no raw file of dataset {spec.name!r} (looked for "
                  f"{', '.join(looked)}); {spec.how_to_get} at {target}"
                  + ("" if not downloadable else
                     ", or run again with --download"))


def _cache_key(path: str, fmt: str, split: str, min_item: int) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  h.update(json.dumps([fmt, split, min_item, CACHE_VERSION]).encode())
  return h.hexdigest()[:20]


def load_file(path: str, fmt: str, name: str, split: str = "loo_valid",
              min_item_interactions: int = 0,
              cache_dir: Optional[str] = None) -> SequenceDataset:
  """Reads and preprocesses one raw file, through the cache when given."""
  if not os.path.isfile(path):
    raise DataError(path, "no such file")
  cache_path = None
  if cache_dir:
    key = _cache_key(path, fmt, split, min_item_interactions)
    cache_path = os.path.join(cache_dir, f"{name}-{split}-{key}.npz")
    if os.path.isfile(cache_path):
      try:
        return SequenceDataset.load(cache_path)
      except (OSError, ValueError, KeyError):
        print(f"ignoring unreadable cache entry {cache_path}", file=sys.stderr)
  inter = readers.read(path, fmt)
  data = preprocess.preprocess(inter, name, split, min_item_interactions)
  if cache_path:
    try:
      data.save(cache_path)
    except OSError as e:
      print(f"could not write the cache {cache_path}: {e}", file=sys.stderr)
  return data


def load(dataset: str = registry.SYNTHETIC, data_dir: str = ".",
         data_path: Optional[str] = None, data_format: Optional[str] = None,
         split: str = "loo_valid", min_item_interactions: int = 0,
         cache_dir: Optional[str] = None, allow_download: bool = False,
         synthetic_users: int = 1000, synthetic_items: int = 300,
         synthetic_seed: int = 0) -> SequenceDataset:
  """Loads a dataset by name, or a custom file when ``data_path`` is set."""
  if data_path:
    if not data_format:
      raise UserError("--data_format is required with --data_path (one of "
                      f"{', '.join(readers.FORMATS)})")
    name = dataset if dataset not in (registry.SYNTHETIC,) else registry.CUSTOM
    return load_file(data_path, data_format, name, split,
                     min_item_interactions, cache_dir)
  if dataset == registry.CUSTOM:
    raise UserError("--dataset=custom needs --data_path and --data_format")
  if dataset == registry.SYNTHETIC:
    inter = synthetic.generate(num_users=synthetic_users,
                               num_items=synthetic_items, seed=synthetic_seed)
    return preprocess.preprocess(inter, registry.SYNTHETIC, split,
                                 min_item_interactions)
  if dataset not in registry.DATASETS:
    raise UserError(f"unknown dataset {dataset!r}; expected one of "
                    f"{', '.join(registry.names())}")
  path, fmt = find_raw_file(registry.DATASETS[dataset], data_dir,
                            allow_download)
  return load_file(path, fmt, dataset, split, min_item_interactions, cache_dir)


def load_from_flags() -> SequenceDataset:
  """Loads the dataset the data flags describe."""
  return load(dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
              data_path=FLAGS.data_path, data_format=FLAGS.data_format,
              split=FLAGS.split,
              min_item_interactions=FLAGS.min_item_interactions,
              cache_dir=FLAGS.cache_dir or None, allow_download=FLAGS.download,
              synthetic_users=FLAGS.synthetic_users,
              synthetic_items=FLAGS.synthetic_items,
              synthetic_seed=FLAGS.synthetic_seed)
