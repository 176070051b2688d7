import pytest

from asasrec_tf.errors import UserError
from asasrec_tf.training import sizing


def test_maxlen_is_cut_to_the_longest_window(tiny_dataset):
  # tiny_dataset's longest user has 5 items: 4 of them are ever an input
  assert sizing.longest_window(tiny_dataset) == 4
  assert sizing.resolve_maxlen("3", tiny_dataset) == 3
  assert sizing.resolve_maxlen("30000", tiny_dataset) == 4
  # auto: min(mean training length, 50) = int(mean(3, 1, 2, 2)) = 2
  assert sizing.resolve_maxlen("auto", tiny_dataset) == 2


def test_step_memory_counts_every_attention_tensor():
  # maxlen 30000, batch 1, 1 head, 2 blocks: (4 * 2 + 2) tensors of
  # 30000^2 float32 = 10 * 3.6e9 bytes = 36 GB > 80 % of 24 GiB (20.6 GB)
  with pytest.raises(UserError, match="about 34 GiB for attention"):
    sizing.check_step_memory(30000, 1, 1, 2, limit_bytes=int(0.8 * 24 * 2**30))
  # the paper's steps: 512 x 50 x 50, 10 tensors: 51 MB
  sizing.check_step_memory(50, 512, 1, 2, limit_bytes=int(0.8 * 24 * 2**30))


def test_sizing_loads_no_tensorflow():
  """main checks the data with it before TensorFlow loads."""
  import subprocess
  import sys
  code = ("import sys; import asasrec_tf.training.sizing, "
          "asasrec_tf.evaluation.protocol; "
          "print([m for m in ('tensorflow', 'keras') if m in sys.modules])")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, timeout=120)
  assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
