import json
import subprocess
import sys

import numpy as np
import pytest

from asasrec_tf.artifacts import Served
from asasrec_tf.export import export
from asasrec_tf.recommend import recommend


# Runs in a fresh interpreter where importing asasrec_tf is impossible.
LOADER = """
import json, sys
sys.modules["asasrec_tf"] = None
import numpy as np, tensorflow as tf
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = serve(histories=tf.constant(json.loads(sys.argv[2]), tf.int64))
print(json.dumps({k: v.numpy().tolist() for k, v in out.items()}))
"""


@pytest.mark.parametrize("model", ["sasrec", "bpr", "mostpop"])
def test_saved_model_serves_without_the_package(finished_runs, model, tmp_path):
  export(finished_runs[model], str(tmp_path / "export"), top_n=5)
  # -1 pads on either side; 424242 is unknown and ignored
  histories = [[-1, -1, 3, 7, 424242], [5, 9, 11, -1, -1], [-1, -1, -1, -1, -1]]
  out = subprocess.run([sys.executable, "-c", LOADER, str(tmp_path / "export"),
                        json.dumps(histories)], capture_output=True, text=True,
                       cwd=str(tmp_path), timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  served_out = json.loads(out.stdout)
  served = Served(finished_runs[model])
  for row, history in enumerate(histories):
    ids = [str(i) for i in history if i not in (-1, 424242)]
    expect = recommend(served, history=ids, top_n=5)
    assert served_out["items"][row] == [e["item"] for e in expect["items"]]
    np.testing.assert_allclose(served_out["scores"][row],
                               [e["score"] for e in expect["items"]],
                               rtol=1e-4, atol=1e-5)
