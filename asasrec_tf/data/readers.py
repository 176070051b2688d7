"""Readers for the raw interaction formats.

Each reader turns one file into :class:`Interactions`: parallel arrays of raw
user ids, raw item ids and (where the format has them) timestamps, in file
order. Parsing uses pandas' C parser; when it or a later check fails, the file
is scanned line by line so that the error names the first offending line and
what was expected there. Blank lines are skipped.

Formats:
  sasrec         ``user item`` per line (whitespace separated, integer ids),
                 grouped by user, in time order (no timestamps).
  movielens      GroupLens ``UserID::MovieID::Rating::Timestamp``.
  rating_tsv     ``user<TAB>item<TAB>rating<TAB>time`` (He et al.'s ``.rating``);
                 time is a number or a ``YYYY-MM-DD HH:MM:SS`` date.
  csv            a header naming ``user,item,timestamp`` (any order, other
                 columns ignored); ids are arbitrary tokens; timestamp is a
                 number or an ISO date.
  snap_checkins  SNAP ``user<TAB>time<TAB>lat<TAB>lon<TAB>location``; rows
                 without a location are dropped.
"""

from __future__ import annotations

import dataclasses
import datetime
import gzip
import io
import re
import zlib
from typing import Callable, Dict, Optional, Sequence

import numpy as np
import pandas as pd

from asasrec_tf.errors import DataError

MAX_ID = 2**63 - 1
_UINT = re.compile(r"[0-9]+")
_BLANKS = re.compile(r"[ \t]+")  # what separates fields for pandas' r"\s+"


@dataclasses.dataclass
class Interactions:
  """Raw interactions in file order.

  Attributes:
    users: [n] raw user ids (int64, or str for token formats).
    items: [n] raw item ids (int64, or str).
    times: [n] float64 timestamps, or None when the file order is time order.
  """

  users: np.ndarray
  items: np.ndarray
  times: Optional[np.ndarray]

  def __len__(self) -> int:
    return len(self.users)


def read_bytes(path: str) -> bytes:
  """Returns the file's content, gunzipped when it is a gzip file."""
  try:
    with open(path, "rb") as f:
      raw = f.read()
  except FileNotFoundError:
    raise DataError(path, "no such file") from None
  except IsADirectoryError:
    raise DataError(path, "is a directory, expected a data file") from None
  except OSError as e:
    raise DataError(path, f"cannot be read: {e.strerror}") from None
  if raw[:2] == b"\x1f\x8b":
    try:
      raw = gzip.decompress(raw)
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
      raise DataError(path, f"truncated or corrupt gzip file ({e}); "
                      "download it again") from None
  return raw


def read_checked(path: str) -> bytes:
  """Returns the file's bytes once they are known to be non-empty UTF-8 text,
  without a byte order mark.

  Parsers read these bytes directly: a ``str`` wrapped in ``io.StringIO``
  is copied at four bytes a character (a 20M-line file peaked at 2 GB that
  way, 0.8 GB from the bytes).
  """
  raw = read_bytes(path)
  try:
    raw.decode("utf-8")
  except UnicodeDecodeError as e:
    line = raw[:e.start].count(b"\n") + 1
    raise DataError(path, "is not UTF-8 text (byte "
                    f"0x{raw[e.start]:02x})", line=line) from None
  raw = raw.removeprefix(b"\xef\xbb\xbf")  # a byte order mark is not content
  if not raw or raw.isspace():
    raise DataError(path, "is empty: expected at least one interaction")
  return raw


# --- line-by-line validation, used to locate errors -------------------------


def _check_id(tok: str) -> Optional[str]:
  shown = tok if len(tok) <= 40 else f"{tok[:20]}...{tok[-8:]} ({len(tok)} characters)"
  if not _UINT.fullmatch(tok):
    return f"'{shown}' is not a non-negative integer id"
  digits = tok.lstrip("0") or "0"
  if len(digits) > 19 or int(digits) > MAX_ID:
    return f"id {shown} is too large (the limit is 2^63-1)"
  return None


def _check_token(tok: str) -> Optional[str]:
  return None if tok.strip() else "empty id"


def _check_number(tok: str) -> Optional[str]:
  try:
    v = float(tok)
  except ValueError:
    return f"'{tok}' is not a number"
  return None if np.isfinite(v) else f"'{tok}' is not a finite number"


def _check_time(tok: str) -> Optional[str]:
  if _check_number(tok) is None:
    return None
  try:
    datetime.datetime.fromisoformat(tok.strip())
  except ValueError:
    return f"'{tok}' is neither a number nor an ISO date"
  return None


_CHECKS: Dict[str, Callable[[str], Optional[str]]] = {
    "id": _check_id,
    "token": _check_token,
    "number": _check_number,
    "time": _check_time,
    "any": lambda tok: None,
}


@dataclasses.dataclass(frozen=True)
class _Layout:
  """What one line of a format holds: a separator and checked columns."""

  sep: Optional[str]  # None: any run of whitespace.
  columns: Sequence[str]  # names, for messages.
  checks: Sequence[str]  # keys of _CHECKS, one per column.
  allow_extra: bool = False

  def describe(self) -> str:
    sep = {None: "whitespace", "\t": "tab", "::": "'::'", ",": "comma"}[self.sep]
    return f"{len(self.columns)} {sep}-separated fields {' '.join(self.columns)}"


def _scan(path: str, text: str, layout: _Layout, first_line: int = 1) -> None:
  """Raises DataError for the first line that does not fit ``layout``."""
  for offset, line in enumerate(io.StringIO(text)):
    lineno = first_line + offset
    content, stripped = line.rstrip("\r\n"), line.strip(" \t\r\n")
    # Blank means spaces and tabs only, as the parsers skip; a line of other
    # whitespace (a lone vertical tab, say) is a line of one bad field.
    if not stripped:
      continue
    fields = (_BLANKS.split(stripped) if layout.sep is None
              else content.split(layout.sep))
    n = len(layout.columns)
    if len(fields) < n or (len(fields) > n and not layout.allow_extra):
      raise DataError(path, f"expected {layout.describe()}, found "
                      f"{len(fields)} field(s): {content[:80]!r}", lineno)
    for name, check, tok in zip(layout.columns, layout.checks, fields):
      problem = _CHECKS[check](tok)
      if problem:
        raise DataError(path, f"{name}: {problem}", lineno)


def _parse_times(values: pd.Series) -> Optional[np.ndarray]:
  """Numbers as they are, dates as unix seconds; None when any is invalid."""
  nums = pd.to_numeric(values, errors="coerce")
  if not nums.isna().any():
    out = nums.to_numpy(np.float64)
    return out if np.isfinite(out).all() else None
  dates = pd.to_datetime(values, errors="coerce", format="ISO8601", utc=True)
  if dates.isna().any():
    return None
  return (dates - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(
      np.float64)


def _parse_ids(values: pd.Series) -> Optional[np.ndarray]:
  """Non-negative int64 ids, or None when any is not one."""
  if values.dtype == object:
    return None
  out = values.to_numpy()
  if out.dtype.kind not in "iu" or (out < 0).any():
    return None
  return out.astype(np.int64)


def _read_delimited(path: str, raw: bytes, layout: _Layout,
                    time_col: Optional[int],
                    parse_sep: Optional[bytes] = None) -> Interactions:
  """Shared path of the headerless formats.

  ``parse_sep`` is the separator of ``raw`` when it was rewritten for the C
  parser (``::`` to tab); errors are still reported against ``layout``.
  """
  sep = parse_sep.decode() if parse_sep else (
      r"\s+" if layout.sep is None else layout.sep)
  users = items = times = None
  # Fast path: the C parser reads the id columns as int64 itself (checking
  # each token as a string took 20 of 30 s on 20M lines). Its integers are
  # laxer than ours ("+3", "-0", "\v3", and " 3" in a tab-separated field),
  # so a file with such bytes anywhere takes the string path; inferring the
  # columns' types rather than asking for int64 keeps its float fallback
  # ("1e3", "7.0", 9007199254740993.0 read as ...992) out. Anything refused
  # goes to the string path, which names the line.
  lax = [b"+", b"-", b"\x0b", b"\x0c"] + ([] if layout.sep is None else [b" "])
  frame = None if any(b in raw for b in lax) else _read_frame(raw, sep, None)
  if frame is not None and frame.shape[1] == len(layout.columns) and (
      frame[0].dtype == np.int64 and frame[1].dtype == np.int64):
    users, items = _parse_ids(frame[0]), _parse_ids(frame[1])
    if time_col is not None:
      times = _parse_times(frame[time_col].astype(str))
  if users is None or items is None or (time_col is not None and
                                        times is None):
    frame = _read_frame(raw, sep, str)
    users = items = times = None
    if frame is not None and frame.shape[1] == len(layout.columns):
      users = _parse_ids(_to_int(frame[0]))
      items = _parse_ids(_to_int(frame[1]))
      if time_col is not None:
        times = _parse_times(frame[time_col])
  ok = users is not None and items is not None and (
      time_col is None or times is not None)
  if not ok:
    text = raw.decode("utf-8")
    _scan(path, text.replace(sep, layout.sep) if parse_sep else text, layout)
    raise DataError(path, f"could not be parsed as {layout.describe()}") from None
  return Interactions(users, items, times)


def _read_frame(raw: bytes, sep: str, dtype) -> Optional[pd.DataFrame]:
  """``raw`` parsed by pandas' C parser (None when it refuses it)."""
  try:
    return pd.read_csv(io.BytesIO(raw), sep=sep, header=None, engine="c",
                       dtype=dtype, skip_blank_lines=True, na_filter=False,
                       quoting=3, encoding="utf-8")
  except (pd.errors.ParserError, ValueError, OverflowError, TypeError):
    return None


def _to_int(col: pd.Series) -> pd.Series:
  """Strings to int64 when every one is an in-range non-negative integer
  (leading zeros allowed)."""
  if not col.str.fullmatch(r"0*[0-9]{1,19}").all():
    return pd.Series([None], dtype=object)
  try:
    return col.astype(np.int64)
  except (OverflowError, ValueError):
    return pd.Series([None], dtype=object)


def read_sasrec(path: str) -> Interactions:
  layout = _Layout(None, ("user", "item"), ("id", "id"))
  return _read_delimited(path, read_checked(path), layout, time_col=None)


def read_movielens(path: str) -> Interactions:
  raw = read_checked(path)
  layout = _Layout("::", ("UserID", "MovieID", "Rating", "Timestamp"),
                   ("id", "id", "number", "number"))
  if b"\t" in raw:
    _scan(path, raw.decode("utf-8"), layout)
  return _read_delimited(path, raw.replace(b"::", b"\t"), layout, time_col=3,
                         parse_sep=b"\t")


def read_rating_tsv(path: str) -> Interactions:
  layout = _Layout("\t", ("user", "item", "rating", "time"),
                   ("id", "id", "number", "time"))
  return _read_delimited(path, read_checked(path), layout, time_col=3)


def read_csv(path: str) -> Interactions:
  header_bytes, _, body = read_checked(path).partition(b"\n")
  header_line = header_bytes.decode("utf-8")
  header = [h.strip().lower() for h in header_line.split(",")]
  missing = [c for c in ("user", "item", "timestamp") if c not in header]
  if missing:
    raise DataError(path, "the header must name the columns user,item,timestamp"
                    f" (missing: {','.join(missing)}; found: {header_line.strip()[:80]!r})",
                    1)
  cols = [header.index(c) for c in ("user", "item", "timestamp")]
  checks = ["any"] * len(header)
  for c, check in zip(cols, ("token", "token", "time")):
    checks[c] = check
  layout = _Layout(",", tuple(header), tuple(checks))
  try:
    frame = pd.read_csv(io.BytesIO(body), sep=",", header=None, engine="c",
                        dtype=str, skip_blank_lines=True, na_filter=False,
                        encoding="utf-8")
  except (pd.errors.ParserError, ValueError):
    frame = None
  if frame is None or frame.shape[1] != len(header):
    _scan(path, body.decode("utf-8"), layout, first_line=2)
    raise DataError(path, f"could not be parsed as {layout.describe()}") from None
  users = frame[cols[0]].str.strip().to_numpy(str)
  items = frame[cols[1]].str.strip().to_numpy(str)
  times = _parse_times(frame[cols[2]])
  if times is None or (users == "").any() or (items == "").any():
    _scan(path, body.decode("utf-8"), layout, first_line=2)
    raise DataError(path, f"could not be parsed as {layout.describe()}") from None
  return Interactions(users, items, times)


def read_snap_checkins(path: str) -> Interactions:
  raw = read_checked(path)
  layout = _Layout("\t", ("user", "time", "latitude", "longitude", "location"),
                   ("id", "time", "any", "any", "any"))
  try:
    frame = pd.read_csv(io.BytesIO(raw), sep="\t", header=None, engine="c",
                        dtype=str, na_filter=False, encoding="utf-8",
                        names=["user", "time", "lat", "lon", "loc"])
  except (pd.errors.ParserError, ValueError):
    _scan(path, raw.decode("utf-8"), layout)
    raise DataError(path, f"could not be parsed as {layout.describe()}") from None
  loc = frame["loc"].str.strip()
  keep = (loc != "") & (loc.str.strip("0") != "")
  frame = frame[keep]
  users = _parse_ids(_to_int(frame["user"]))
  times = _parse_times(frame["time"])
  if users is None or times is None:
    _scan(path, raw.decode("utf-8"), layout)
    raise DataError(path, f"could not be parsed as {layout.describe()}") from None
  return Interactions(users, loc[keep].to_numpy(str), times)


FORMATS: Dict[str, Callable[[str], Interactions]] = {
    "sasrec": read_sasrec,
    "movielens": read_movielens,
    "rating_tsv": read_rating_tsv,
    "csv": read_csv,
    "snap_checkins": read_snap_checkins,
}


def read(path: str, fmt: str) -> Interactions:
  """Reads ``path`` in format ``fmt`` (a key of FORMATS)."""
  if fmt not in FORMATS:
    raise DataError(path, f"unknown format {fmt!r}; expected one of "
                    f"{', '.join(FORMATS)}")
  out = FORMATS[fmt](path)
  if not len(out):
    raise DataError(path, f"holds no usable interaction in format {fmt!r}")
  return out
