"""The bench's arithmetic and reporting (its timings stay out of the tests)."""

import os
import unittest.mock

import pytest
import tensorflow as tf

from asasrec_tf import bench
from asasrec_tf.training import sizing


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
  # 6 rows scored at each of 4 targets (gbce with k = 5, or ce over 6
  # items): logits 2 * 4 * 4 * 6 = 192 in place of 2 * 6 * 4 * 2 = 96
  assert bench.sasrec_step_flops(2, 3, 4, 1, 5, passes=1, scored=6,
                                 targets=4) == 3 * (1344 - 96 + 192) + 1392


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


def test_the_losses_table_gives_each_loss_against_bce_of_its_model(
    monkeypatch):
  monkeypatch.setattr(bench, "machine", lambda: "test machine")
  row = {"case": "f", "epoch_s": 3.0, "peak_rss_mb": 1000.0}
  rows = [{**row, "model": "sasrec", "step_ms": 250.0},
          {**row, "model": "sasrec-ce", "step_ms": 1400.0},
          {**row, "model": "asasrec-authors", "step_ms": 300.0},
          {**row, "model": "asasrec-authors-gbce", "step_ms": 2700.0}]
  text = bench.losses_table(rows, quick=False)
  case = "(f) ML-1M, paper setting (maxlen auto, batch 512)"
  # 1400 / 250 = 5.60; 2700 / 300 = 9.00 (the authors' step's own bce)
  assert f"| {case} | sasrec | ce | 1400.0 | 5.60 | 3.0 | 1000 |" in text
  assert f"| {case} | sasrec | bce | 250.0 | 1.00 |" in text
  assert f"| {case} | asasrec-authors | gbce | 2700.0 | 9.00 |" in text
  # without its bce row a loss has no ratio
  assert "| — |" in bench.losses_table(rows[1:2], quick=True)
  assert bench.output_path(False, losses=True) == "results/bench_losses.md"
  assert bench.output_path(True, losses=True) == "results/quick/bench_losses.md"


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


def test_the_scale_table_reports_growth_against_10k_items(monkeypatch):
  monkeypatch.setattr(bench, "machine", lambda: "a test machine")
  rows = [{"case": "scale-items", "items": n, "model": m,
           "step_ms": base * f, "peak_rss_mb": 100 * f}
          for n, f in ((10_000, 1), (1_000_000, 2.5))
          for m, base in (("sasrec", 40.0), ("sasrec-lazy", 40.0),
                          ("asasrec-authors", 60.0),
                          ("asasrec-authors-lazy", 64.0))]
  rows += [{"case": "scale-users", "users": 2_000_000, "build_s": 3.0,
            "epoch_batches_s": 20.0, "batches": 15625, "peak_rss_mb": 2400},
           {"case": "scale-eval", "items": 3_000_000, "users": 2000,
            "batch": 21, "eval_s": 60.0, "peak_rss_mb": 2000,
            "model_rss_mb": 1400, "build_peak_rss_mb": 2800}]
  text = bench.scale_table(rows)
  # 100 ms / 40 ms = 2.50x; 150 / 60 = 2.50x; 160 / 64 = 2.50x; the RSS
  # column is the authors' step's (100 MB * 2.5); sizes not measured say so
  assert ("| 1,000,000 | 100.0 (2.50x) | 100.0 (2.50x) | 150.0 (2.50x) | "
          "160.0 (2.50x) | 250 |") in text
  assert "| 100,000 | — | — | — | — | — |" in text
  assert "| 2,000,000 | 3.00 | 20.0 | 2400 |" in text
  assert ("in batches of 21 users; peak RSS while ranking 2000 MB, 1400 MB "
          "before it with the model built (its initialisation peaked at "
          "2800 MB)") in text
  assert bench.output_path(False, scale=True) == "results/bench_scale.md"
  assert len(bench.scale_cases()) == 4 * 4 + 3 + 3


def test_the_adam_paragraph_gives_each_update_against_the_fused_kernel():
  row = {"case": "scale-adam", "items": 1_000_000, "rows": 6400,
         "updates": 22, "ms": {"fused": 80.0, "keras": 200.0,
                               "keras-xla": 100.0},
         "fused_moved": 4e-3, "floor_ms": 32.0,
         "max_abs_diff": {"keras": 3e-8, "keras-xla": 7e-8},
         "peak_rss_mb": 900}
  text = bench.adam_text(row)
  # 200 / 80 = 2.50x, 100 / 80 = 1.25x
  assert "our fused Adam 80.0 ms, Keras's Adam 200.0 ms (2.50x the fused)" \
      in text
  assert "compiled by XLA 100.0 ms (1.25x the fused)" in text
  assert "medians over 20 alternating updates" in text
  assert "at most 3.0e-08 and 7.0e-08" in text
  # 80 / 32 = 2.50x
  assert "can have, takes 32.0 ms (2.50x of it is the fused kernel's)" in text
  assert text in bench.scale_table([row])


def test_the_adam_case_times_three_updates_that_agree():
  row = bench._adam_update_case(1_000, rounds=2)
  assert set(row["ms"]) == set(bench.ADAM_UPDATES)
  assert all(ms > 0 for ms in row["ms"].values())
  # Four updates of the same gradient: the same Adam to float rounding,
  # and a real update (lr 1e-3 moves a touched weight by about 1e-3 a step).
  assert row["fused_moved"] > 1e-3
  assert row["max_abs_diff"]["keras"] < 1e-6
  assert row["max_abs_diff"]["keras-xla"] < 1e-6
  assert row["floor_ms"] > 0


def test_the_memory_floor_scales_every_row_of_three_tables(monkeypatch):
  import numpy as np
  seen = []
  multiply = np.multiply

  def spy(a, b, out):
    seen.append(out.size)
    return multiply(a, b, out=out)

  monkeypatch.setattr(np, "multiply", spy)
  monkeypatch.setattr(bench.os, "cpu_count", lambda: 2)
  assert bench._memory_floor_ms((11, 4), rounds=1) > 0
  # 3 rounds (2 warm-up + 1) x 2 cores x 3 tables, each core half of the
  # 44 values: 22 each, so every row of every table is scaled each round
  assert seen == [22] * 18


def _tiny_dataset():
  import numpy as np
  from asasrec_tf.data.dataset import SequenceDataset
  # user 0 trained on 3, 1 and held out 2 (valid) and 4 (test); user 1
  # trained on 2 with test 3 and no validation item.
  return SequenceDataset(
      name="tiny", split="loo_valid", num_items=4,
      train_offsets=np.array([0, 2, 3], np.int64),
      train_items=np.array([3, 1, 2], np.int32),
      valid_items=np.array([2, 0], np.int32),
      test_items=np.array([4, 3], np.int32),
      user_ids=np.array([10, 20]), item_ids=np.arange(-1, 4))


def test_pmixer_data_is_each_users_sequence_in_time_order(tmp_path):
  path = tmp_path / "video.txt"
  assert bench.export_pmixer_data(_tiny_dataset(), str(path)) == 6
  lines = path.read_text().splitlines()
  by_user = {}
  for line in lines:
    u, i = line.split(" ")
    by_user.setdefault(int(u), []).append(int(i))
  # users numbered from 1; training items, then validation, then test
  assert by_user == {1: [3, 1, 2, 4], 2: [2, 3]}


def test_versus_pmixer_alternates_fresh_processes_abba(monkeypatch, tmp_path):
  calls = []

  def fake_run(cmd, what, cwd=None):
    calls.append(what)
    if "pmixer" in what:
      data = os.path.join(cwd, "data", "video.txt")
      assert os.path.isfile(data) and "--dataset=video" in cmd
      # the window our case (a) trains with ("50", capped by this data)
      maxlen = sizing.resolve_maxlen("50", _tiny_dataset())
      assert f"--maxlen={maxlen}" in cmd and "--batch_size=128" in cmd
      assert cmd[1].endswith("bench_pmixer.py")
      return {"step_ms": 100.0, "step_ms_in_memory": 90.0, "epoch_s": 20.0,
              "steps_per_epoch": 5, "torch": "x", "threads": 2,
              "peak_rss_mb": 1.0}
    assert "--case=a_sasrec" in cmd
    return {"step_ms": 40.0, "step_ms_in_memory": 30.0, "epoch_s": 8.0,
            "steps_per_epoch": 5, "peak_rss_mb": 1.0}

  from asasrec_tf.data import loader
  monkeypatch.setattr(loader, "load", lambda *a, **k: _tiny_dataset())
  monkeypatch.setattr(bench, "_run_json", fake_run)
  monkeypatch.setattr(bench, "machine", lambda: "a test machine")
  text = bench.versus_pmixer(str(tmp_path), "python", rounds=3, steps=4,
                              data_dir=str(tmp_path))
  assert calls == ["ours, round 1", "pmixer, round 1", "pmixer, round 2",
                   "ours, round 2", "ours, round 3", "pmixer, round 3"]
  # 100 / 40 = 2.50x, 90 / 30 = 3.00x, 20 / 8 = 2.50x
  assert "| **2.50x** | **3.00x** | **2.50x** |" in text
  assert bench.output_path(False, pmixer=True) == "results/bench_pmixer.md"


def test_the_pmixer_table_compares_medians():
  ours = [{"step_ms": v, "step_ms_in_memory": v, "epoch_s": v,
           "steps_per_epoch": 9, "peak_rss_mb": 1.0} for v in (40.0, 50.0, 10.0)]
  theirs = [{**r, "step_ms": v, "step_ms_in_memory": v, "epoch_s": v,
             "torch": "2.13.0", "threads": 2} for r, v in zip(ours, (90.0, 100.0, 400.0))]
  with unittest.mock.patch.object(bench, "machine", lambda: "m"):
    text = bench.pmixer_table({"ours": ours, "pmixer": theirs}, 50, 128, 3)
  # medians 100 and 40: 2.50x whatever the outlying rounds (10, 400)
  assert text.count("**2.50x**") == 3
  assert "| pmixer/SASRec.pytorch, round 3 | 400.0 | 400.0 | 400.00 | 1 |" in text


def test_the_pmixer_driver_finds_its_sources_or_says_what_it_expected(tmp_path):
  from asasrec_tf import bench_pmixer
  with pytest.raises(SystemExit, match="checkout of pmixer/SASRec.pytorch"):
    bench_pmixer.source_dir(str(tmp_path))
  (tmp_path / "model.py").write_text("")
  (tmp_path / "utils.py").write_text("")
  assert bench_pmixer.source_dir(str(tmp_path)) == str(tmp_path)
  (tmp_path / "python").mkdir()
  (tmp_path / "python" / "model.py").write_text("")
  (tmp_path / "python" / "utils.py").write_text("")
  assert bench_pmixer.source_dir(str(tmp_path)) == str(tmp_path / "python")
