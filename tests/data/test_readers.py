import gzip
import re

from hypothesis import given, settings, strategies as st
import numpy as np
import pytest

from asasrec_tf.data import readers
from asasrec_tf.errors import DataError


def write(tmp_path, name, text, gz=False):
  path = tmp_path / name
  data = text.encode("utf-8") if isinstance(text, str) else text
  path.write_bytes(gzip.compress(data) if gz else data)
  return str(path)


def test_sasrec_parses_in_file_order(tmp_path):
  path = write(tmp_path, "a.txt", "1 5\n1 3\n\n2 7\n")
  got = readers.read(path, "sasrec")
  np.testing.assert_array_equal(got.users, [1, 1, 2])
  np.testing.assert_array_equal(got.items, [5, 3, 7])
  assert got.times is None


def test_gzip_is_transparent(tmp_path):
  path = write(tmp_path, "a.txt.gz", "1 5\n2 3\n", gz=True)
  np.testing.assert_array_equal(readers.read(path, "sasrec").items, [5, 3])


def test_movielens(tmp_path):
  path = write(tmp_path, "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n")
  got = readers.read(path, "movielens")
  np.testing.assert_array_equal(got.items, [1193, 661])
  np.testing.assert_array_equal(got.times, [978300760, 978302109])


def test_rating_tsv_with_dates(tmp_path):
  path = write(tmp_path, "x.rating",
               "0\t4\t1\t2010-01-02 00:00:00\n0\t5\t1\t2010-01-01 00:00:00\n")
  got = readers.read(path, "rating_tsv")
  # 2010-01-01 is 14610 days after 1970-01-01: 14610 * 86400 = 1262304000.
  np.testing.assert_array_equal(got.times, [1262304000 + 86400, 1262304000])


def test_csv_header_in_any_order_and_token_ids(tmp_path):
  path = write(tmp_path, "c.csv", "item,timestamp,user,extra\nb,2,alice,x\na,1,alice,y\n")
  got = readers.read(path, "csv")
  np.testing.assert_array_equal(got.users, ["alice", "alice"])
  np.testing.assert_array_equal(got.items, ["b", "a"])
  np.testing.assert_array_equal(got.times, [2, 1])


def test_snap_checkins_drop_rows_without_location(tmp_path):
  path = write(tmp_path, "b.txt",
               "0\t2010-10-17T01:48:53Z\t39.7\t-104.9\tabc\n"
               "0\t2010-10-16T06:02:04Z\t0\t0\t00000000000000000000000000000000\n"
               "1\t2010-10-16T06:02:04Z\t1\t1\tdef\n")
  got = readers.read(path, "snap_checkins")
  np.testing.assert_array_equal(got.items, ["abc", "def"])


@pytest.mark.parametrize("fmt,text,line,fragment", [
    ("sasrec", "1 2\n1 x\n", 2, "item: 'x' is not a non-negative integer"),
    ("sasrec", "1 2\n1 2 3\n", 2, "expected 2 whitespace-separated fields"),
    ("sasrec", "1 2\n3\n", 2, "found 1 field"),
    ("sasrec", "1 2\n-1 2\n", 2, "user: '-1' is not a non-negative"),
    ("sasrec", "1 2\n1 99999999999999999999\n", 2, "too large"),
    # Python refuses int() of more than 4,300 digits: still a line and a reason
    ("sasrec", "1 2\n1 " + "9" * 100000 + "\n", 2,
     "(100000 characters) is too large"),
    ("sasrec", "1 2\n1 0009223372036854775808\n", 2, "too large"),
    ("sasrec", "1 2\n1 2.5\n", 2, "'2.5'"),
    # pandas reads these as integers (through a float, or with a sign);
    # 9007199254740993.0 would become ...992: none is an integer id
    ("sasrec", "1 2\n1e3 5\n", 2, "user: '1e3' is not a non-negative"),
    ("sasrec", "1 2\n1 7.0\n", 2, "item: '7.0' is not a non-negative"),
    ("sasrec", "1 2\n9007199254740993.0 5\n", 2, "'9007199254740993.0'"),
    ("sasrec", "1 2\n+3 5\n", 2, "user: '+3' is not a non-negative"),
    ("sasrec", "1 2\n-0 5\n", 2, "user: '-0' is not a non-negative"),
    ("sasrec", "1 2\n\v3 5\n", 2, "user: '\v3' is not a non-negative"),
    # a line of a vertical tab alone is not blank: named, with what it holds
    ("sasrec", "1 2\n\v\n2 3\n", 2, "found 1 field(s): '\\x0b'"),
    ("rating_tsv", "0\t1\t1\t5\n\f\n", 2, "found 1 field(s): '\\x0c'"),
    ("movielens", "1::2::3::4\n1::2.0::3::4\n", 2, "MovieID: '2.0'"),
    ("rating_tsv", "0\t1\t1\t5\n 3\t1\t1\t5\n", 2, "user: ' 3' is not"),
    ("movielens", "1::2::3::4\n1::2::3\n", 2, "expected 4 '::'-separated"),
    ("movielens", "1::2::3::4\n1::2::3::t\n", 2, "Timestamp: 't' is not a number"),
    ("rating_tsv", "0\t1\t1\t5\n0\t1\t1\tyesterday\n", 2, "neither a number nor an ISO date"),
    ("csv", "user,item,timestamp\na,b,1\na,b\n", 3, "expected 3 comma-separated"),
    ("csv", "user,item,timestamp\na,b,1\na,b,soon\n", 3, "neither a number"),
    ("csv", "user,item\na,b\n", 1, "missing: timestamp"),
])
def test_malformed_line_is_named(tmp_path, fmt, text, line, fragment):
  path = write(tmp_path, "bad", text)
  with pytest.raises(DataError) as e:
    readers.read(path, fmt)
  assert e.value.line == line
  assert e.value.path == path
  assert fragment in str(e.value)
  assert str(e.value).startswith(f"{path}:{line}: ")


ID_TOKENS = st.one_of(
    st.integers(0, 10**6).map(str),
    st.integers(0, 10**6).map(lambda i: f"00{i}"),
    st.sampled_from(["+3", "-0", "-3", "1.0", "1e3", "3.", "0x1", "inf", "\v3",
                     "9007199254740993.0", "9223372036854775807",
                     "9223372036854775808", "18446744073709551616", "١٢"]))


def first_bad_line(rows):
  """The reference for integer ids: the 1-based number of the first row
  with a token that is not ASCII digits of a value up to 2^63-1 (None when
  every row is fine)."""
  for number, row in enumerate(rows, 1):
    if not all(re.fullmatch(r"[0-9]+", t) and int(t) < 2**63 for t in row):
      return number
  return None


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(ID_TOKENS, ID_TOKENS), min_size=1,
                     max_size=6),
       fmt=st.sampled_from(["sasrec", "movielens", "rating_tsv"]))
def test_ids_are_integers_exactly_as_written(tmp_path_factory, rows, fmt):
  """Whatever pandas' parser would accept, an id is read only when it is
  written as a non-negative integer, and then as exactly that value."""
  line = {"sasrec": "{} {}", "movielens": "{}::{}::5::978300760",
          "rating_tsv": "{}\t{}\t5\t978300760"}[fmt]
  path = write(tmp_path_factory.mktemp("ids"), "data",
               "".join(line.format(*row) + "\n" for row in rows))
  bad = first_bad_line(rows)
  if bad is None:
    got = readers.read(path, fmt)
    assert got.users.tolist() == [int(u) for u, _ in rows]
    assert got.items.tolist() == [int(i) for _, i in rows]
  else:
    with pytest.raises(DataError) as e:
      readers.read(path, fmt)
    assert e.value.line == bad


def test_zero_padded_ids_are_read_as_their_value(tmp_path):
  # 20 digits, but the value 1 (the parser path took at most 19 digits)
  path = write(tmp_path, "pad", "00000000000000000001 00000000000000000042\n"
               "2 7\n")
  got = readers.read(path, "sasrec")
  np.testing.assert_array_equal(got.users, [1, 2])
  np.testing.assert_array_equal(got.items, [42, 7])


def test_a_byte_order_mark_is_not_part_of_the_header(tmp_path):
  path = write(tmp_path, "bom.csv",
               b"\xef\xbb\xbfuser,item,timestamp\na,b,1\na,c,2\n")
  got = readers.read(path, "csv")
  np.testing.assert_array_equal(got.items, ["b", "c"])


def test_empty_file(tmp_path):
  path = write(tmp_path, "empty.txt", "\n \n")
  with pytest.raises(DataError, match="is empty"):
    readers.read(path, "sasrec")


def test_truncated_gzip(tmp_path):
  whole = gzip.compress(b"1 2\n" * 1000)
  path = write(tmp_path, "t.txt.gz", whole[: len(whole) // 2])
  with pytest.raises(DataError, match="truncated or corrupt gzip"):
    readers.read(path, "sasrec")


def test_not_utf8_names_the_line(tmp_path):
  path = write(tmp_path, "u.csv", b"user,item,timestamp\na,b,1\n\xff,b,2\n")
  with pytest.raises(DataError) as e:
    readers.read(path, "csv")
  assert e.value.line == 3 and "not UTF-8" in str(e.value)


def test_missing_file(tmp_path):
  with pytest.raises(DataError, match="no such file"):
    readers.read(str(tmp_path / "nope.txt"), "sasrec")


def test_unknown_format(tmp_path):
  path = write(tmp_path, "a.txt", "1 2\n")
  with pytest.raises(DataError, match="unknown format 'xml'"):
    readers.read(path, "xml")
