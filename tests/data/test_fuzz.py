"""Malformed data files reach only the project's own DataError, and never a
cache entry."""

import gzip
import os
import tempfile

from hypothesis import HealthCheck, given, settings, strategies as st

from asasrec_tf.data import loader, readers
from asasrec_tf.errors import DataError

SEPARATORS = [" ", "\t", "::", ",", ";", "  ", ""]
TOKENS = st.one_of(
    st.integers(-5, 10**6).map(str),
    st.integers(2**63 - 3, 2**70).map(str),  # around and past int64
    st.sampled_from(["", "x", "1.5", "nan", "inf", "1e3", "١٢", "ü", "\x00",
                     "2010-10-17T01:48:53Z", "2010-13-45 99:00:00", '"', "0"]),
    st.text(max_size=4))


@st.composite
def lines(draw):
  n = draw(st.integers(1, 6))
  sep = draw(st.sampled_from(SEPARATORS))
  return sep.join(draw(st.lists(TOKENS, min_size=0, max_size=n)))


@st.composite
def files(draw):
  kind = draw(st.sampled_from(["text", "bytes", "gzip", "truncated_gzip"]))
  if kind == "bytes":
    return draw(st.binary(max_size=200))
  body = "\n".join(draw(st.lists(lines(), min_size=0, max_size=8)))
  if draw(st.booleans()):
    body = "user,item,timestamp\n" + body
  data = body.encode("utf-8", errors="surrogatepass")
  if kind == "gzip":
    return gzip.compress(data)
  if kind == "truncated_gzip":
    whole = gzip.compress(data)
    return whole[: draw(st.integers(0, max(0, len(whole) - 1)))]
  return data


COUNTER = {"tried": 0}


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(content=files(), fmt=st.sampled_from(sorted(readers.FORMATS)),
       split=st.sampled_from(["loo", "loo_valid"]))
def test_malformed_files_only_raise_data_error(content, fmt, split):
  COUNTER["tried"] += 1
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "data.txt")
    with open(path, "wb") as f:
      f.write(content)
    cache = os.path.join(tmp, "cache")
    try:
      data = loader.load(data_path=path, data_format=fmt, split=split,
                         cache_dir=cache)
    except DataError as e:
      assert str(e).startswith(path)
      assert not os.path.exists(cache) or not os.listdir(cache)
    else:
      assert data.num_items >= 1 and data.num_users >= 1
      assert os.listdir(cache)
