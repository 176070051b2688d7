"""The datasets of the paper: where their raw files live and how to get them.

Each dataset lives in ``<data_dir>/<name>/``. A dataset may accept several raw
forms (``ml-1m`` takes GroupLens ``ratings.dat`` or a SASRec-format
``ml-1m.txt``); the first one present wins, and ``<file>.gz`` is accepted for
every ``<file>``. Integrity is checked with the SHA-256 of the downloaded file
where one is published, otherwise with the git blob id of the file in the
repository it comes from (``git hash-object``), which identifies the exact bytes
just as well.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

SASREC_RAW = "https://raw.githubusercontent.com/kang205/SASRec/master/data"
BERT4REC_RAW = "https://raw.githubusercontent.com/FeiSun/BERT4Rec/master/data"


@dataclasses.dataclass(frozen=True)
class RawFile:
  """One accepted raw form of a dataset.

  Attributes:
    name: file name inside ``<data_dir>/<dataset>/`` (``.gz`` also accepted).
    format: reader name, see ``asasrec_tf.data.readers.FORMATS``.
    url: where to download it from, or None if it must be fetched by hand.
    sha256: SHA-256 of the downloaded bytes (the archive, for zips).
    git_blob_sha1: git blob id of the file, when no SHA-256 is published.
    archive_member: path inside a zip archive at ``url``.
  """

  name: str
  format: str
  url: Optional[str] = None
  sha256: Optional[str] = None
  git_blob_sha1: Optional[str] = None
  archive_member: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """A dataset of the paper.

  Attributes:
    name: the ``--dataset`` value.
    files: accepted raw forms, in order of preference.
    how_to_get: how to obtain a raw file by hand, shown (with where to put
      it) when none is present and none can be downloaded.
    description: one line for ``--help`` and the README.
    folder: sub-folder of ``data_dir`` holding the raw files (default: the
      name), so that a substitute can sit beside the data it stands in for.
    substitute_for: the paper's dataset this one replaces, when it is not
      the paper's data; reports label it as such.
  """

  name: str
  files: Tuple[RawFile, ...]
  how_to_get: str
  description: str
  folder: Optional[str] = None
  substitute_for: Optional[str] = None

  @property
  def directory(self) -> str:
    return self.folder or self.name


DATASETS = {
    spec.name: spec for spec in (
        DatasetSpec(
            name="ml-1m",
            files=(
                RawFile(
                    "ratings.dat", "movielens",
                    url="https://files.grouplens.org/datasets/movielens/ml-1m.zip",
                    sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
                    archive_member="ml-1m/ratings.dat"),
                RawFile("ml-1m.txt", "sasrec"),
            ),
            how_to_get=("download https://files.grouplens.org/datasets/movielens/"
                        "ml-1m.zip and take ratings.dat out of it"),
            description="MovieLens 1M ratings (GroupLens), 6,040 users"),
        DatasetSpec(
            name="beauty",
            files=(RawFile(
                "Beauty.txt", "sasrec", url=f"{SASREC_RAW}/Beauty.txt",
                git_blob_sha1="cee2ab468d220772a9dfefed9aa9c492dc9b3418"),),
            how_to_get=f"download {SASREC_RAW}/Beauty.txt",
            description="Amazon Beauty as preprocessed by SASRec, 52,204 users"),
        DatasetSpec(
            name="beauty-bert4rec",
            folder="beauty",
            substitute_for="beauty",
            files=(RawFile(
                "SUBSTITUTE_bert4rec_beauty.txt", "sasrec",
                url=f"{BERT4REC_RAW}/beauty.txt",
                git_blob_sha1="16718a33ebdb33504f257421b18ae8bf3ddfe327"),),
            how_to_get=(f"download {BERT4REC_RAW}/beauty.txt and rename it "
                        "SUBSTITUTE_bert4rec_beauty.txt"),
            description=("SUBSTITUTE for the paper's Beauty: BERT4Rec's Amazon "
                         "Beauty (40,226 users, 5-core filtered), not the "
                         "paper's data")),
        DatasetSpec(
            name="video",
            files=(RawFile(
                "Video.txt", "sasrec", url=f"{SASREC_RAW}/Video.txt",
                sha256="b7376fe24430743f411dc7f567285657b2adb3f74361cc7ba0aee94f3024b651",
                git_blob_sha1="f576455c76008a2c02a178c9d4ee930be632af89"),),
            how_to_get=f"download {SASREC_RAW}/Video.txt",
            description="Amazon Video Games as preprocessed by SASRec, 31,013 users"),
        DatasetSpec(
            name="brightkite",
            files=(RawFile(
                "loc-brightkite_totalCheckins.txt", "snap_checkins",
                url="https://snap.stanford.edu/data/loc-brightkite_totalCheckins.txt.gz"),),
            how_to_get=("download https://snap.stanford.edu/data/"
                        "loc-brightkite_totalCheckins.txt.gz"),
            description="Brightkite check-ins (SNAP); no checksum is published"),
        DatasetSpec(
            name="foursquare",
            files=(RawFile("checkins.csv", "csv"),),
            how_to_get=(
                "it cannot be downloaded automatically: get the Foursquare 2011 "
                "check-ins of Manotumruksa et al. (SIGIR'18, CARA; ask the "
                "authors, see https://github.com/feay1234/CARA), convert them to "
                "a CSV with the header 'user,item,timestamp'"),
            description="Foursquare 2011 check-ins (manual download)"),
        DatasetSpec(
            name="yelp",
            files=(RawFile("checkins.csv", "csv"),),
            how_to_get=(
                "it cannot be downloaded automatically: get the Yelp dataset "
                "from https://www.yelp.com/dataset (accept its licence), convert "
                "the reviews to a CSV with the header 'user,item,timestamp'"),
            description="Yelp reviews (manual download)"),
    )
}

SYNTHETIC = "synthetic"
CUSTOM = "custom"


def names() -> Tuple[str, ...]:
  """All ``--dataset`` values: the paper's six, ``synthetic`` and ``custom``."""
  return tuple(DATASETS) + (SYNTHETIC, CUSTOM)
