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


def _allocator(**env):
  environ = {k: v for k, v in os.environ.items()
             if k != "TF_CPU_ALLOCATOR_USE_BFC"}
  out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True,
                       text=True, cwd=REPO, env={**environ, **env},
                       timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  return out.stdout.split()[-1]


def test_importing_the_package_chooses_the_bfc_allocator_unless_told_not_to():
  # only a BFC allocator keeps the statistics get_memory_info reads
  assert _allocator() == "True"
  assert _allocator(TF_CPU_ALLOCATOR_USE_BFC="false") == "default"
