import os
import subprocess
import sys

from tests.conftest import REPO

PROBE = """
import asasrec_tf
import tensorflow as tf
tf.ones([4])
try:
  print(tf.config.experimental.get_memory_info("CPU:0")["peak"] > 0)
except ValueError:   # 'Allocator stats not available': the default allocator
  print("default")
"""


ONEDNN_PROBE = """
import asasrec_tf
from asasrec_tf.training import runner
print(runner.platform_info()["onednn"])
"""
SET_BY_THE_PACKAGE = ("TF_CPU_ALLOCATOR_USE_BFC", "TF_ENABLE_ONEDNN_OPTS")


def _probe(code, **env):
  environ = {k: v for k, v in os.environ.items()
             if k not in SET_BY_THE_PACKAGE}
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, cwd=REPO, env={**environ, **env},
                       timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  return out.stdout.split()[-1]


def _allocator(**env):
  # with oneDNN on, TensorFlow's CPU allocator is oneDNN's own (which keeps
  # statistics whatever this variable says): probe TensorFlow's
  return _probe(PROBE, TF_ENABLE_ONEDNN_OPTS="0", **env)


def test_importing_the_package_chooses_the_bfc_allocator_unless_told_not_to():
  # only a BFC allocator keeps the statistics get_memory_info reads
  assert _allocator() == "True"
  assert _allocator(TF_CPU_ALLOCATOR_USE_BFC="false") == "default"


def test_importing_the_package_turns_onednn_on_unless_told_not_to():
  # what TensorFlow reports it runs, as results.json records it
  assert _probe(ONEDNN_PROBE) == "True"
  assert _probe(ONEDNN_PROBE, TF_ENABLE_ONEDNN_OPTS="0") == "False"
