"""The bench's arithmetic and reporting (its timings stay out of the tests)."""

import tensorflow as tf

from asasrec_tf import bench


def test_a_quick_bench_never_overwrites_the_committed_table():
  assert bench.output_path(quick=False) == "results/bench.md"
  assert bench.output_path(quick=True) == "results/quick/bench.md"
  assert bench.output_path(quick=True, out="x.md") == "x.md"


def test_flops_by_hand():
  # batch 2, maxlen 3, d 4, 1 block, 5 items:
  # block = 2*2*3*4*4*5 + 2*2*3*3*4*2 = 960 + 288 = 1248; logits 2*2*3*4*2 = 96
  # forward 1344; adam 12 * (6*4 + 3*4 + 1*5*4*4) = 12 * 116 = 1392.
  assert bench.sasrec_step_flops(2, 3, 4, 1, 5, passes=1) == 3 * 1344 + 1392
  assert bench.sasrec_step_flops(2, 3, 4, 1, 5, passes=3) == 9 * 1344 + 1392


def test_table_reports_ratios_and_profiles():
  row = {"case": "a", "maxlen": 50, "batch": 128, "step_ms_in_memory": 40.0,
         "epoch_s": 10.0, "epoch_estimated": False, "eval_s": 4.0,
         "gflop_per_step": 2.0, "gflops": 40.0, "peak_rss_mb": 800,
         "profile": None}
  rows = [{**row, "model": "sasrec", "step_ms": 50.0},
          {**row, "model": "asasrec-shared", "step_ms": 80.0,
           "profile": [["MatMul", 12.5, 0.25]]},
          {**row, "model": "sasrec-buckets", "step_ms": 20.0, "width": 12.25},
          {**row, "model": "asasrec-shared-buckets", "step_ms": 50.0,
           "width": 12.25}]
  text = bench.table(rows, quick=False)
  assert "- asasrec-shared / sasrec step, case (a): 1.60x" in text
  assert "- sasrec-buckets / sasrec step, case (a): 0.40x" in text
  assert "- asasrec-shared-buckets / sasrec-buckets step, case (a): 2.50x" in text
  assert "| 50 (cut to 12.2 on average) |" in text
  assert "- case (a) sasrec: pipeline / in-memory step 1.25x" in text
  assert "| MatMul | 12.50 | 25% |" in text


def test_op_breakdown_reads_a_trace(tmp_path):
  x = tf.random.uniform([64, 64])

  @tf.function
  def step(x):
    return tf.reduce_sum(tf.matmul(x, x) * 2.0)

  step(x)
  tf.profiler.experimental.start(str(tmp_path))
  for _ in range(3):
    step(x).numpy()
  tf.profiler.experimental.stop()
  rows = bench.op_breakdown(str(tmp_path), steps=3)
  types = {t for t, _, _ in rows}
  assert any("MatMul" in t for t in types), types
  assert not any("Process" in t for t in types)
  assert abs(sum(share for _, _, share in rows) - 1.0) < 1e-6 or len(rows) == 8
  assert all(ms >= 0 for _, ms, _ in rows)
