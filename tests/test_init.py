import os
import subprocess
import sys

from tests.conftest import REPO

# What importing the package sets for TensorFlow, as TensorFlow reports it:
# only a BFC allocator keeps the statistics get_memory_info reads (with
# oneDNN on, TensorFlow's CPU allocator is oneDNN's own, which keeps them
# whatever the allocator variable says), and results.json's oneDNN entry.
PROBE = """
import asasrec_tf
import tensorflow as tf
from asasrec_tf.training import runner
tf.ones([4])
try:
  allocator = tf.config.experimental.get_memory_info("CPU:0")["peak"] > 0
except ValueError:   # 'Allocator stats not available': the default allocator
  allocator = "default"
print(allocator, runner.platform_info()["onednn"])
"""
SET_BY_THE_PACKAGE = ("TF_CPU_ALLOCATOR_USE_BFC", "TF_ENABLE_ONEDNN_OPTS")


def _probe(**env):
  environ = {k: v for k, v in os.environ.items()
             if k not in SET_BY_THE_PACKAGE}
  out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True,
                       text=True, cwd=REPO, env={**environ, **env},
                       timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  return out.stdout.split()[-2:]


def test_importing_the_package_sets_bfc_and_onednn_unless_told_not_to():
  assert _probe() == ["True", "True"]
  # a value the user set stands (one process for both: each costs
  # TensorFlow's import)
  assert _probe(TF_CPU_ALLOCATOR_USE_BFC="false",
                TF_ENABLE_ONEDNN_OPTS="0") == ["default", "False"]
