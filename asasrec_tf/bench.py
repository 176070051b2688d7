"""Benchmark: training step, epoch, evaluation and data-loading times.

  python -m asasrec_tf.bench [--quick] [--bench_data_dir=../shared/data] [--out=results/bench.md]
  python -m asasrec_tf.bench --case=b_asasrec-authors    # one case, as JSON

Each case runs in its own process (so that its peak RSS is its own) and
prints one JSON line; this driver collects them into a Markdown table with
the machine's description. Medians are over at least 20 steps after warm-up.
FLOPs are estimated analytically (multiply-adds x 2 of the matrix products,
x3 for forward + backward, times the passes through the network a step
makes) and divided by the median step time.

With --profile, the SASRec and ASASRec steps of case (a) are also traced
with tf.profiler (the trace is written under --profile_dir, browsable with
TensorBoard's profile plugin) and the table gets the share of CPU time per
op type, which is what explains a missed target.

  python -m asasrec_tf.bench --scale [--out=results/bench_scale.md]

measures how cost grows with what should not matter (generated data, d 64,
maxlen 50, batch 128): the ms per step of SASRec and of the authors' step,
each with the default (dense) and the lazy Adam, with 10K to 3M items;
building the sampler, one epoch of batches and the peak RSS with 50K to 2M
users of 10 items among 100K;
loading a 20M-line file; full-ranking evaluation at 3M items; the
optimizer's update alone at 1M items, fused Adam against Keras's with and
without XLA (``--case=scale-adam_1000000`` runs that one alone).

  python -m asasrec_tf.bench --pmixer_dir=DIR --torch_python=PY [--rounds=3]

times our SASRec step and epoch side by side with pmixer/SASRec.pytorch's
(a checkout of it in DIR; PY a Python with torch and numpy) on case (a):
Video, maxlen 50, batch 128, d 64, 2 blocks, 1 head, dropout 0.5, both
frameworks on every core. Fresh processes alternate, ABBA over the rounds,
so that drift hits both alike; the table (results/bench_pmixer.md) gives
each round and the medians' ratios. See bench_pmixer.py for how its code
is driven.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from asasrec_tf import cli  # noqa: E402

FLAGS = flags.FLAGS


def define_flags() -> None:
  g = "Bench"
  cli.define_flag(g, "bool", "quick", False, "A reduced run (fewer steps, "
                  "smaller evaluation case) that finishes in about two "
                  "minutes; its table goes to results/quick/bench.md unless "
                  "--out says otherwise.")
  cli.define_flag(g, "string", "bench_data_dir", "../shared/data",
                  "Where video/ and ml-1m/ raw files are.")
  cli.define_flag(g, "string", "out", None, "Markdown output (default "
                  "results/bench.md, with --quick results/quick/bench.md; "
                  "'' = none).")
  cli.define_flag(g, "string", "case", None,
                  "Internal: run one case and print JSON.")
  cli.define_flag(g, "integer", "steps", 30, "Timed steps per training case.")
  cli.define_flag(g, "bool", "profile", False, "Trace case (a) with "
                  "tf.profiler and report where the CPU time goes.")
  cli.define_flag(g, "string", "profile_dir",
                  os.path.join(tempfile.gettempdir(), "asasrec_profile"),
                  "Where --profile writes its traces.")
  cli.define_flag(g, "bool", "scale", False, "Measure how cost grows with "
                  "items, users and file size instead (about 10 minutes; "
                  "Linux: memory is read from /proc); the table goes to "
                  "results/bench_scale.md.")
  cli.define_flag(g, "bool", "losses", False, "Time the losses beyond the "
                  "paper (--loss=gbce, --loss=ce) against bce in the "
                  "paper's Video and ML-1M settings instead; the table goes "
                  "to results/bench_losses.md.")
  cli.define_flag(g, "string", "pmixer_dir", None, "A checkout of "
                  "pmixer/SASRec.pytorch: time our SASRec side by side "
                  "with its training step instead; the table goes to "
                  "results/bench_pmixer.md.")
  cli.define_flag(g, "string", "torch_python", sys.executable,
                  "With --pmixer_dir: a Python that has torch and numpy.")
  cli.define_flag(g, "integer", "rounds", 3, "With --pmixer_dir: rounds of "
                  "one fresh process each.", lower_bound=1)

TRAIN_CASES = {
    "a": ("video", "50", 128, "Video, maxlen 50, batch 128 (kang205/pmixer)"),
    "b": ("video", "auto", 512, "Video, paper setting (maxlen auto, batch 512)"),
    "c": ("ml-1m", "200", 128, "ML-1M, maxlen 200, batch 128 (SASRec's ML-1M)"),
    "f": ("ml-1m", "auto", 512, "ML-1M, paper setting (maxlen auto, batch 512)"),
}


def _peak_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# The authors' step (feay1234/ASASRec): Gamma from a dropout-off pass
# (forward and a backward to the item table only), then one training pass.
AUTHORS_STEP = {"adv_target": "output", "adv_passes": "one"}

# The models a training case times: (model, build keyword arguments, passes
# through the network per step, length buckets).
VARIANTS = {
    "sasrec": ("sasrec", {}, 1, False),
    "asasrec": ("asasrec", {}, 3, False),
    "asasrec-shared": ("asasrec", {"adv_gamma": "shared"}, 2, False),
    "asasrec-shared-output": ("asasrec", {**AUTHORS_STEP,
                                          "adv_gamma": "shared",
                                          "adv_gamma_uses": "target"}, 1, False),
    "asasrec-authors": ("asasrec", AUTHORS_STEP, 2, False),
    # Dropout off: the ceiling of any cheaper dropout (a third of case
    # (a)'s profile), not a configuration anyone trains.
    "sasrec-no-dropout": ("sasrec", {"dropout_rate": 0.0}, 1, False),
    "sasrec-buckets": ("sasrec", {}, 1, True),
    "asasrec-shared-buckets": ("asasrec", {"adv_gamma": "shared"}, 2, True),
    # The losses beyond the paper (gbce with gSASRec's 256 negatives).
    "sasrec-gbce": ("sasrec", {"loss": "gbce"}, 1, False),
    "sasrec-ce": ("sasrec", {"loss": "ce"}, 1, False),
    "asasrec-authors-gbce": ("asasrec", {**AUTHORS_STEP, "loss": "gbce"}, 2,
                             False),
    "asasrec-authors-ce": ("asasrec", {**AUTHORS_STEP, "loss": "ce"}, 2, False),
}
LOSS_VARIANTS = ("sasrec-gbce", "sasrec-ce", "asasrec-authors-gbce",
                 "asasrec-authors-ce")
# --losses: each loss of SASRec and of the authors' step in the paper's
# settings, the cases issue 23's runs train in.
LOSS_CASES = tuple(f"{k}_{m}" for k in ("b", "f")
                   for m in ("sasrec", "asasrec-authors", *LOSS_VARIANTS))
# Which variants each training case times (every one on case (a)).
CASE_VARIANTS = {"a": tuple(VARIANTS),
                 "b": ("sasrec", "asasrec", "asasrec-shared", "asasrec-authors",
                       *LOSS_VARIANTS),
                 "c": ("sasrec", "asasrec", "asasrec-shared", *LOSS_VARIANTS),
                 "f": ("sasrec", "asasrec-authors", *LOSS_VARIANTS)}
# The variants --profile traces (on case (a)).
PROFILED = ("sasrec", "asasrec", "sasrec-buckets")


def sasrec_step_flops(batch: int, maxlen: int, d: int, blocks: int,
                      num_items: int, passes: int, scored: int = 2,
                      targets: float = None) -> float:
  """Analytic FLOPs of one training step (see the module doc): ``scored``
  output rows a target (bce 2, gbce 1 + k, ce every item) at ``targets``
  positions (default every one of batch x maxlen; gbce and ce score the
  real targets only)."""
  per_block = 2 * batch * maxlen * d * d * 5 + 2 * batch * maxlen * maxlen * d * 2
  positions = batch * maxlen if targets is None else targets
  logits = 2 * positions * d * scored
  forward = blocks * per_block + logits
  adam = 12 * ((num_items + 1) * d + maxlen * d + blocks * 5 * d * d)
  return 3 * forward * passes + adam


def op_breakdown(logdir: str, steps: int, top: int = 8):
  """[(op type, CPU ms per step, share)] from the newest trace in ``logdir``.

  Sums the durations of the TensorFlow op events of the executor threads
  (events named 'scope/op:Type'), so the shares are of CPU time, which on
  a multi-core machine exceeds wall time.
  """
  import collections
  import glob
  from tensorflow.tsl.profiler.protobuf import xplane_pb2
  paths = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"),
                           recursive=True), key=os.path.getmtime)
  space = xplane_pb2.XSpace()
  with open(paths[-1], "rb") as f:
    space.ParseFromString(f.read())
  by_type = collections.Counter()
  for plane in space.planes:
    names = plane.event_metadata
    for line in plane.lines:
      if not line.name.startswith("tf_Compute"):
        continue
      for event in line.events:
        name = names[event.metadata_id].name
        # Op events are 'scope/op:Type'; executor frames ('Class::Method')
        # contain the ops and would count them twice.
        if ":" in name and "::" not in name:
          by_type[name.rsplit(":", 1)[1]] += event.duration_ps / 1e9
  total = sum(by_type.values()) or 1.0
  return [(t, ms / steps, ms / total) for t, ms in by_type.most_common(top)]


def _train_case(key: str, variant: str, quick: bool, steps: int):
  import numpy as np
  from asasrec_tf.data import loader
  from asasrec_tf.data.sampler import TrainingSampler
  from asasrec_tf.evaluation.ranking import RankingEvaluator, make_scorer
  from asasrec_tf.training import factory, runner, sizing

  dataset, maxlen_flag, batch_size, _ = TRAIN_CASES[key]
  data = loader.load(dataset, data_dir=FLAGS.bench_data_dir, split="loo",
                     cache_dir=os.path.join(tempfile.gettempdir(),
                                            "asasrec_bench_cache"))
  maxlen = sizing.resolve_maxlen(maxlen_flag, data)
  model_name, kwargs, passes, buckets = VARIANTS[variant]
  model = factory.build(model_name, data, maxlen, **kwargs)
  loss = kwargs.get("loss", "bce")
  negatives = factory.train_negatives(loss, None)
  sampler = TrainingSampler(data, maxlen, batch_size, seed=0,
                            length_buckets=buckets, num_negatives=negatives)
  plain, adv = runner.compile_steps(model, sampler)
  step = adv if model_name == "asasrec" else plain
  steps = 8 if quick else steps
  # Steps fed from the real pipeline and from tensors already in memory,
  # interleaved so that drift (warm-up, other load) hits both alike.
  it = iter(sampler.dataset(1).repeat())
  batches = [next(it) for _ in range(steps)]
  for b in batches[:3]:
    step(b)
  pipeline, memory = [], []
  for b in batches:
    t = time.perf_counter()
    float(step(next(it))["loss"])
    pipeline.append(time.perf_counter() - t)
    t = time.perf_counter()
    float(step(b)["loss"])
    memory.append(time.perf_counter() - t)
  pipeline_ms = statistics.median(pipeline) * 1e3
  memory_ms = statistics.median(memory) * 1e3
  # One whole epoch through the real loop (quick: estimated from the step).
  if quick:
    epoch_s = pipeline_ms / 1e3 * sampler.steps_per_epoch
  else:
    t = time.perf_counter()
    for b in sampler.dataset(2):
      float(step(b)["loss"])
    epoch_s = time.perf_counter() - t
  evaluator = RankingEvaluator(data, "test", maxlen, ks=(10, 100))
  scorer = make_scorer(model)
  evaluator.evaluate(scorer)  # trace
  eval_s = evaluator.evaluate(scorer).seconds
  # Length buckets cut each batch to its longest window: count that work.
  width = float(np.mean([b["positives"].shape[1] for b in sampler.dataset(3)])
                ) if buckets else maxlen
  scored = {"ce": data.num_items, "gbce": 1 + negatives}.get(loss, 2)
  targets = (float(np.mean([np.count_nonzero(b["positives"])
                            for b in batches])) if loss in ("ce", "gbce")
             else None)
  flops = sasrec_step_flops(batch_size, width, 64, 2, data.num_items, passes,
                            scored, targets)
  profile = None
  if FLAGS.profile and key == "a" and variant in PROFILED:
    import tensorflow as tf
    logdir = os.path.join(FLAGS.profile_dir, f"{key}_{variant}")
    traced = batches[:10]
    tf.profiler.experimental.start(logdir)
    for b in traced:
      float(step(b)["loss"])
    tf.profiler.experimental.stop()
    profile = op_breakdown(logdir, len(traced))
  return {"case": key, "model": variant, "maxlen": maxlen, "width": width,
          "batch": batch_size, "steps_per_epoch": sampler.steps_per_epoch,
          "step_ms": pipeline_ms,
          "step_ms_in_memory": memory_ms, "epoch_s": epoch_s,
          "epoch_estimated": quick, "eval_s": eval_s,
          "gflop_per_step": flops / 1e9,
          "gflops": flops / 1e9 / (pipeline_ms / 1e3),
          "peak_rss_mb": _peak_rss_mb(), "profile": profile}


def _eval_case(quick: bool):
  import numpy as np
  from asasrec_tf.data.dataset import SequenceDataset
  from asasrec_tf.evaluation.ranking import RankingEvaluator, make_scorer
  from asasrec_tf.training import factory
  users, items = (5220, 57289) if quick else (52204, 57289)
  # Beauty's shape: 57,289 items, about 6.6 training items per user.
  rng = np.random.default_rng(0)
  lengths = rng.integers(3, 11, size=users)
  data = SequenceDataset(
      name="beauty-scale", split="loo", num_items=items,
      train_offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
      train_items=rng.integers(1, items + 1, size=lengths.sum()).astype(np.int32),
      valid_items=np.zeros(users, np.int32),
      test_items=rng.integers(1, items + 1, size=users).astype(np.int32),
      user_ids=np.arange(users), item_ids=np.arange(-1, items))
  model = factory.build("sasrec", data, 50)
  evaluator = RankingEvaluator(data, "test", 50, ks=(10, 100))
  scorer = make_scorer(model)
  result = evaluator.evaluate(scorer)
  profile = None
  if FLAGS.profile:
    import tensorflow as tf
    logdir = os.path.join(FLAGS.profile_dir, "d")
    tf.profiler.experimental.start(logdir)
    evaluator.evaluate(scorer)
    tf.profiler.experimental.stop()
    # "ms/step" is then ms per evaluation of all users.
    profile = op_breakdown(logdir, 1)
  return {"case": "d", "users": int(len(evaluator.users)),
          "items": int(data.num_items), "eval_s": result.seconds,
          "peak_rss_mb": _peak_rss_mb(), "profile": profile}


def _load_case():
  from asasrec_tf.data import loader
  with tempfile.TemporaryDirectory() as cache:
    t = time.perf_counter()
    loader.load("ml-1m", data_dir=FLAGS.bench_data_dir, split="loo",
                cache_dir=cache)
    first = time.perf_counter() - t
    t = time.perf_counter()
    loader.load("ml-1m", data_dir=FLAGS.bench_data_dir, split="loo",
                cache_dir=cache)
    second = time.perf_counter() - t
  return {"case": "e", "first_s": first, "second_s": second,
          "peak_rss_mb": _peak_rss_mb()}


# --scale: items of the step cases, users of the sampler cases.
SCALE_ITEMS = (10_000, 100_000, 1_000_000, 3_000_000)
SCALE_USERS = (50_000, 500_000, 2_000_000)
SCALE_MODELS = {"sasrec": ("sasrec", {}),
                "sasrec-lazy": ("sasrec", {"optimizer": "lazy_adam"}),
                "asasrec-authors": ("asasrec", AUTHORS_STEP),
                "asasrec-authors-lazy": ("asasrec", {**AUTHORS_STEP,
                                                     "optimizer": "lazy_adam"})}
SCALE_LINES = 20_000_000


def _random_dataset(num_users: int, num_items: int, length: int, seed: int = 0):
  """A SequenceDataset of ``num_users`` users with ``length`` + 1 random
  items each (the last held out as test)."""
  import numpy as np
  from asasrec_tf.data.dataset import SequenceDataset
  rng = np.random.default_rng(seed)
  items = rng.integers(1, num_items + 1, size=(num_users, length + 1),
                       dtype=np.int32)
  return SequenceDataset(
      name="scale", split="loo", num_items=num_items,
      train_offsets=np.arange(num_users + 1, dtype=np.int64) * length,
      train_items=items[:, :-1].reshape(-1),
      valid_items=np.zeros(num_users, np.int32), test_items=items[:, -1],
      user_ids=np.arange(num_users), item_ids=np.arange(num_items + 1))


def _scale_step_case(num_items: int, variant: str, steps: int) -> dict:
  from asasrec_tf.data.sampler import TrainingSampler
  from asasrec_tf.training import factory, runner
  data = _random_dataset(2_000, num_items, 50)
  name, kwargs = SCALE_MODELS[variant]
  model = factory.build(name, data, 50, **kwargs)
  sampler = TrainingSampler(data, 50, 128, seed=0)
  plain, adv = runner.compile_steps(model, sampler)
  step = adv if name == "asasrec" else plain
  batches = list(sampler.dataset(1))[:steps]
  for b in batches[:3]:
    float(step(b)["loss"])
  times = []
  for b in batches:
    t = time.perf_counter()
    float(step(b)["loss"])
    times.append(time.perf_counter() - t)
  return {"case": "scale-items", "items": num_items, "model": variant,
          "step_ms": statistics.median(times) * 1e3,
          "peak_rss_mb": _peak_rss_mb()}


def _scale_users_case(num_users: int) -> dict:
  from asasrec_tf.data.sampler import TrainingSampler
  data = _random_dataset(num_users, 100_000, 10)
  t = time.perf_counter()
  sampler = TrainingSampler(data, 50, 128, seed=0)
  build_s = time.perf_counter() - t
  t = time.perf_counter()
  batches = sum(1 for _ in sampler.dataset(1))
  epoch_s = time.perf_counter() - t
  return {"case": "scale-users", "users": num_users, "build_s": build_s,
          "epoch_batches_s": epoch_s, "batches": batches,
          "peak_rss_mb": _peak_rss_mb()}


def _scale_load_case() -> dict:
  import numpy as np
  from asasrec_tf.data import loader
  folder = tempfile.mkdtemp(prefix="asasrec-scale-")
  path = os.path.join(folder, "big.txt")
  rng = np.random.default_rng(0)
  chunk = 1_000_000  # written in chunks, so that the file's making does not
  with open(path, "wb") as f:  # set the peak RSS measured for its loading
    for start in range(0, SCALE_LINES, chunk):
      users = np.arange(start, start + chunk) // 10 + 1
      items = rng.integers(1, 100_001, size=chunk)
      np.savetxt(f, np.stack([users, items], 1), fmt="%d")
  before = _peak_rss_mb()
  t = time.perf_counter()
  loader.load_file(path, "sasrec", "custom", "loo",
                   cache_dir=os.path.join(folder, "cache"))
  first = time.perf_counter() - t
  peak = _peak_rss_mb()
  t = time.perf_counter()
  loader.load_file(path, "sasrec", "custom", "loo",
                   cache_dir=os.path.join(folder, "cache"))
  second = time.perf_counter() - t
  import shutil
  shutil.rmtree(folder, ignore_errors=True)
  return {"case": "scale-load", "lines": SCALE_LINES, "first_s": first,
          "cached_s": second, "peak_rss_mb": peak, "rss_before_mb": before}


def _status_mb(field: str) -> float:
  """A field of /proc/self/status in MB (VmRSS now, VmHWM its peak)."""
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith(field + ":"):
        return int(line.split()[1]) / 1024.0
  raise RuntimeError(f"no {field} in /proc/self/status")


def _scale_eval_case() -> dict:
  from asasrec_tf.evaluation.ranking import RankingEvaluator, make_scorer
  from asasrec_tf.models.sasrec import SASRec
  data = _random_dataset(2_000, 3_000_000, 50)
  # Built as serving and `recommend` build a trained model: weights only. A
  # training process also holds Adam's two moments (twice the item table).
  model = SASRec(data.num_items, 50, dropout_rate=0.0)
  model.build_for_inputs()
  model_mb, build_peak_mb = _status_mb("VmRSS"), _status_mb("VmHWM")
  with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # restart VmHWM, so that it measures the ranking alone
  evaluator = RankingEvaluator(data, "test", 50, ks=(10, 100))
  result = evaluator.evaluate(make_scorer(model))
  return {"case": "scale-eval", "items": 3_000_000,
          "users": int(len(evaluator.users)),
          "batch": evaluator.batch_size, "eval_s": result.seconds,
          "model_rss_mb": model_mb, "build_peak_rss_mb": build_peak_mb,
          "peak_rss_mb": _status_mb("VmHWM")}


# The optimizer's update alone: the table size, and the rows of one batch's
# gradient (128 sequences x 50 positions, repeats included).
ADAM_ITEMS = 1_000_000
ADAM_ROWS = 128 * 50
ADAM_UPDATES = ("fused", "keras", "keras-xla")


def _adam_update_case(num_items: int, rounds: int) -> dict:
  """The optimizer's update alone on a [num_items + 1, 64] item table: our
  DenseAdam (TensorFlow's fused kernel), Keras's Adam, and Keras's Adam with
  the update compiled by XLA (issue 22 measured XLA 1.85x faster than
  Keras's update at 1M items). Each gets the same densified gradient of
  ADAM_ROWS rows; the three alternate within each round, so that the
  machine's drift hits all alike. Also reports how far the fused kernel
  moved the weights and how far each other update's weights end from it,
  and the memory floor of any update with TF1's dense semantics
  (_memory_floor_ms)."""
  import keras
  import numpy as np
  import tensorflow as tf
  from asasrec_tf.training.optimizers import DenseAdam
  rng = np.random.default_rng(0)
  start = rng.normal(0, 0.01, (num_items + 1, 64)).astype(np.float32)
  indices = tf.constant(rng.integers(1, num_items + 1, ADAM_ROWS), tf.int64)
  values = tf.constant(rng.normal(0, 1, (ADAM_ROWS, 64)).astype(np.float32))
  shape = tf.constant(start.shape, tf.int64)

  def update(optimizer, jit):
    table = tf.Variable(start)
    optimizer.build([table])

    @tf.function(jit_compile=jit)
    def apply():
      gradient = tf.convert_to_tensor(tf.IndexedSlices(values, indices, shape))
      optimizer.apply_gradients([(gradient, table)])
    return apply, table

  settings = dict(learning_rate=1e-3, beta_2=0.98, epsilon=1e-8)
  updates = {"fused": update(DenseAdam(**settings), False),
             "keras": update(keras.optimizers.Adam(**settings), False),
             "keras-xla": update(keras.optimizers.Adam(**settings), True)}
  for apply, _ in updates.values():  # trace and compile, then warm up
    apply()
    apply()
  times = {name: [] for name in updates}
  for _ in range(rounds):
    for name, (apply, _) in updates.items():
      t = time.perf_counter()
      apply()
      times[name].append(time.perf_counter() - t)
  fused = updates["fused"][1].numpy()
  return {"case": "scale-adam", "items": num_items, "rows": ADAM_ROWS,
          "updates": 2 + rounds,
          "ms": {n: statistics.median(t) * 1e3 for n, t in times.items()},
          "floor_ms": _memory_floor_ms(start.shape, rounds),
          "fused_moved": float(np.abs(fused - start).max()),
          "max_abs_diff": {n: float(np.abs(v.numpy() - fused).max())
                           for n, (_, v) in updates.items() if n != "fused"},
          "peak_rss_mb": _peak_rss_mb()}


def _memory_floor_ms(shape, rounds: int) -> float:
  """Median ms to scale three float32 tables of ``shape`` in place, split
  over every core: the least memory traffic (read and write the weights
  and both moments of every row) of any update that, as TF1's Adam, moves
  every row at every step."""
  import threading
  import numpy as np
  tables = [np.full(shape, 0.5, np.float32).reshape(-1) for _ in range(3)]
  size, cores = tables[0].size, os.cpu_count() or 1
  bounds = [(size * c // cores, size * (c + 1) // cores) for c in range(cores)]

  def scale(lo, hi):
    for table in tables:
      np.multiply(table[lo:hi], 0.999, out=table[lo:hi])

  times = []
  for _ in range(2 + rounds):
    threads = [threading.Thread(target=scale, args=b) for b in bounds]
    t = time.perf_counter()
    for thread in threads:
      thread.start()
    for thread in threads:
      thread.join()
    times.append(time.perf_counter() - t)
  return statistics.median(times[2:]) * 1e3


def adam_text(r: dict) -> str:
  """The paragraph of results/bench_scale.md on the update alone."""
  ms = r["ms"]
  return (f"The optimizer's update alone on a {r['items']:,}-row item table "
          f"(d 64; a batch's gradient of {r['rows']:,} rows, densified; "
          f"medians over {r['updates'] - 2} alternating updates): our fused "
          f"Adam {ms['fused']:.1f} ms, Keras's Adam {ms['keras']:.1f} ms "
          f"({ms['keras'] / ms['fused']:.2f}x the fused), Keras's Adam "
          f"compiled by XLA {ms['keras-xla']:.1f} ms "
          f"({ms['keras-xla'] / ms['fused']:.2f}x the fused); after "
          f"{r['updates']} updates their weights differ from the fused "
          f"kernel's by at most {r['max_abs_diff']['keras']:.1e} and "
          f"{r['max_abs_diff']['keras-xla']:.1e}. Scaling the weights and "
          f"both moments of every row in place, the least memory traffic an "
          f"update that moves every row can have, takes {r['floor_ms']:.1f} "
          f"ms ({ms['fused'] / r['floor_ms']:.2f}x of it is the fused "
          f"kernel's).")


def scale_cases():
  cases = [f"scale-items_{n}_{m}" for n in SCALE_ITEMS for m in SCALE_MODELS]
  cases += [f"scale-users_{n}" for n in SCALE_USERS]
  return cases + ["scale-load", "scale-eval", f"scale-adam_{ADAM_ITEMS}"]


def scale_table(rows) -> str:
  """results/bench_scale.md: the cases and their growth ratios."""
  out = [f"Machine: {machine()}. Generated data, d 64, maxlen 50, batch "
         "128; each case in its own process (`python -m asasrec_tf.bench "
         "--scale`). Medians over the timed steps.", "",
         "| items | " + " | ".join(f"{m} ms/step" for m in SCALE_MODELS) +
         " | peak RSS MB (authors' step) |",
         "|---|" + "---|" * (len(SCALE_MODELS) + 1)]
  steps = {(r["items"], r["model"]): r for r in rows
           if r["case"] == "scale-items"}
  base = min(SCALE_ITEMS)
  for n in SCALE_ITEMS:
    cells = []
    for m in SCALE_MODELS:
      r = steps.get((n, m))
      cells.append("—" if r is None else
                   f"{r['step_ms']:.1f} ({r['step_ms'] / steps[(base, m)]['step_ms']:.2f}x)"
                   if (base, m) in steps else f"{r['step_ms']:.1f}")
    rss = steps.get((n, "asasrec-authors"))
    out.append(f"| {n:,} | " + " | ".join(cells) + " | "
               + ("—" if rss is None else f"{rss['peak_rss_mb']:.0f}") + " |")
  out += ["", "(x: the ratio to the 10K-item step of the same model.)", "",
          "| users (100K items, 10 each) | sampler built, s | one epoch of "
          "batches, s | peak RSS MB |", "|---|---|---|---|"]
  for r in rows:
    if r["case"] == "scale-users":
      out.append(f"| {r['users']:,} | {r['build_s']:.2f} | "
                 f"{r['epoch_batches_s']:.1f} | {r['peak_rss_mb']:.0f} |")
  for r in rows:
    if r["case"] == "scale-load":
      out += ["", f"Loading a {r['lines']:,}-line `user item` file: "
              f"{r['first_s']:.1f} s parsed and cached, {r['cached_s']:.3f} s "
              f"from the cache; peak RSS {r['peak_rss_mb']:.0f} MB."]
    if r["case"] == "scale-eval":
      out += ["", f"Full-ranking evaluation of {r['users']:,} users over "
              f"{r['items']:,} items: {r['eval_s']:.1f} s in batches of "
              f"{r['batch']} users; peak RSS while ranking "
              f"{r['peak_rss_mb']:.0f} MB, {r['model_rss_mb']:.0f} MB "
              "before it with the model built (its initialisation peaked at "
              f"{r['build_peak_rss_mb']:.0f} MB). A training process holds Adam's "
              "two moments besides (twice the item table, "
              f"{2 * (r['items'] + 1) * 64 * 4 / 2**30:.1f} GiB here)."]
    if r["case"] == "scale-adam":
      out += ["", adam_text(r)]
  return "\n".join(out) + "\n"


def export_pmixer_data(data, path: str) -> int:
  """Writes ``data``'s whole sequences (training items, then the held-out
  ones) as pmixer/SASRec.pytorch reads them: `user item` per line, users
  numbered from 1 in our order, our item ids (1..I), each user's lines in
  time order. Returns the number of lines."""
  import numpy as np
  users = np.arange(1, data.num_users + 1, dtype=np.int64)
  lengths = np.diff(data.train_offsets)
  parts = [np.stack([np.repeat(users, lengths), data.train_items], 1)]
  for held in (data.valid_items, data.test_items):
    kept = held > 0
    parts.append(np.stack([users[kept], held[kept]], 1))
  lines = np.concatenate(parts).astype(np.int64)
  from asasrec_tf.fileio import atomic_write_text
  atomic_write_text(path, "".join(f"{u} {i}\n" for u, i in lines))
  return len(lines)


def _run_json(cmd, what: str, cwd=None) -> dict:
  print(f"running {what} ...", file=sys.stderr, flush=True)
  out = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
  if out.returncode != 0:
    print(out.stderr[-3000:], file=sys.stderr)
    raise SystemExit(f"{what} failed")
  return json.loads(out.stdout.strip().splitlines()[-1])


def versus_pmixer(pmixer_dir: str, torch_python: str, rounds: int,
                  steps: int, data_dir: str) -> str:
  """The side-by-side table of --pmixer_dir (see the module doc), on the
  Video file under ``data_dir``."""
  from asasrec_tf.data import loader
  from asasrec_tf.training import sizing
  dataset, maxlen_flag, batch, _ = TRAIN_CASES["a"]
  data = loader.load(dataset, data_dir=data_dir, split="loo",
                     cache_dir=os.path.join(tempfile.gettempdir(),
                                            "asasrec_bench_cache"))
  maxlen = sizing.resolve_maxlen(maxlen_flag, data)
  driver = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "bench_pmixer.py")
  ours_cmd = [sys.executable, "-m", "asasrec_tf.bench", "--case=a_sasrec",
              f"--bench_data_dir={data_dir}", f"--steps={steps}"]
  rows = {"ours": [], "pmixer": []}
  with tempfile.TemporaryDirectory(prefix="asasrec-pmixer-") as work:
    os.makedirs(os.path.join(work, "data"))
    export_pmixer_data(data, os.path.join(work, "data", f"{dataset}.txt"))
    theirs_cmd = [torch_python, driver,
                  f"--pmixer_dir={os.path.abspath(pmixer_dir)}",
                  f"--dataset={dataset}", f"--maxlen={maxlen}",
                  f"--batch_size={batch}", f"--steps={steps}"]
    for r in range(rounds):
      order = ("ours", "pmixer") if r % 2 == 0 else ("pmixer", "ours")
      for who in order:
        cmd, cwd = (ours_cmd, None) if who == "ours" else (theirs_cmd, work)
        rows[who].append(_run_json(cmd, f"{who}, round {r + 1}", cwd))
  return pmixer_table(rows, maxlen, batch, rounds)


def pmixer_table(rows, maxlen: int, batch: int, rounds: int) -> str:
  """results/bench_pmixer.md from each side's per-round JSON rows
  (``rows["ours"]``, ``rows["pmixer"]``)."""
  keys = (("step_ms", "ms/step, sampler-fed", ".1f"),
          ("step_ms_in_memory", "ms/step, batches in memory", ".1f"),
          ("epoch_s", "s/epoch", ".2f"))
  ours, theirs = rows["ours"], rows["pmixer"]
  out = [f"Machine: {machine()}; PyTorch {theirs[0]['torch']}, "
         f"{theirs[0]['threads']} threads. Video, maxlen {maxlen}, batch "
         f"{batch}, d 64, 2 blocks, 1 head, dropout 0.5, Adam; {rounds} "
         f"round{'s' if rounds > 1 else ''} of one fresh process per side, "
         "alternating (ABBA), each value a median over its timed steps "
         "(`python -m asasrec_tf.bench --pmixer_dir=DIR "
         "--torch_python=PY`). pmixer/SASRec.pytorch is driven as its main.py "
         "trains (its sampler with 3 worker processes, its model, loss and "
         f"Adam); an epoch is {theirs[0]['steps_per_epoch']} steps there, "
         f"{ours[0]['steps_per_epoch']} here (users with a training "
         "example).", "",
         "| | " + " | ".join(label for _, label, _ in keys) +
         " | peak RSS MB |", "|---|" + "---|" * (len(keys) + 1)]
  for who, name in (("ours", "asasrec_tf SASRec"),
                    ("pmixer", "pmixer/SASRec.pytorch")):
    for r, row in enumerate(rows[who]):
      out.append(f"| {name}, round {r + 1} | " + " | ".join(
          format(row[k], f) for k, _, f in keys) +
          f" | {row['peak_rss_mb']:.0f} |")
  def ratio(key):
    return (statistics.median(r[key] for r in theirs)
            / statistics.median(r[key] for r in ours))
  out.append("| **pmixer / ours, ratio of the medians** | " + " | ".join(
      f"**{ratio(k):.2f}x**" for k, _, _ in keys) + " | |")
  return "\n".join(out) + "\n"


def run_case(case: str) -> dict:
  if case.startswith("scale-items_"):
    _, n, variant = case.split("_", 2)
    return _scale_step_case(int(n), variant, 8 if FLAGS.quick else 20)
  if case.startswith("scale-users_"):
    return _scale_users_case(int(case.split("_")[1]))
  if case == "scale-load":
    return _scale_load_case()
  if case == "scale-eval":
    return _scale_eval_case()
  if case.startswith("scale-adam_"):
    return _adam_update_case(int(case.split("_")[1]), 5 if FLAGS.quick else 20)
  if case == "d":
    return _eval_case(FLAGS.quick)
  if case == "e":
    return _load_case()
  key, variant = case.split("_", 1)
  return _train_case(key, variant, FLAGS.quick, FLAGS.steps)


def machine() -> str:
  import tensorflow as tf
  from asasrec_tf.training.runner import platform_info
  info = platform_info()
  isa = {True: " (AVX-512)", False: " (no AVX-512)"}.get(info["avx512"], "")
  onednn = {True: ", oneDNN on", False: ", oneDNN off"}.get(info["onednn"], "")
  gpus = tf.config.list_physical_devices("GPU")
  return (f"{info['cpu']}{isa}, {info['cores']} cores, "
          f"{len(gpus)} GPU(s), TensorFlow {tf.__version__}{onednn}")


def _base(variant: str) -> str:
  """What a variant's step is compared with: SASRec fed the same batches
  (plain SASRec itself for the length-bucketed SASRec)."""
  if variant == "sasrec-buckets":
    return "sasrec"
  return "sasrec-buckets" if variant.endswith("-buckets") else "sasrec"


def _maxlen_cell(r) -> str:
  width = r.get("width", r["maxlen"])
  if width == r["maxlen"]:
    return str(r["maxlen"])
  return f"{r['maxlen']} (cut to {width:.1f} on average)"


def table(rows, quick: bool) -> str:
  lines = ["| case | model | maxlen | batch | ms/step (pipeline) | ms/step "
           "(in memory) | s/epoch | eval s | GFLOP/step | GFLOP/s | peak RSS MB |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
  for r in rows:
    if r["case"] in TRAIN_CASES:
      epoch = f"{r['epoch_s']:.2f}" + (" (est.)" if r["epoch_estimated"] else "")
      lines.append(
          f"| ({r['case']}) {TRAIN_CASES[r['case']][3]} | {r['model']} | "
          f"{_maxlen_cell(r)} | {r['batch']} | {r['step_ms']:.1f} | "
          f"{r['step_ms_in_memory']:.1f} | {epoch} | {r['eval_s']:.2f} | "
          f"{r['gflop_per_step']:.3f} | {r['gflops']:.1f} | "
          f"{r['peak_rss_mb']:.0f} |")
  for r in rows:
    if r["case"] == "d":
      lines.append(f"| (d) evaluation only, {r['users']:,} users x "
                   f"{r['items']:,} items, maxlen 50 | sasrec | 50 | | | | | "
                   f"{r['eval_s']:.2f} | | | {r['peak_rss_mb']:.0f} |")
    if r["case"] == "e":
      lines.append(f"| (e) ML-1M load: parse {r['first_s']:.2f} s, cache "
                   f"{r['second_s']:.3f} s | | | | | | | | | | "
                   f"{r['peak_rss_mb']:.0f} |")
  ratios = {}
  for r in rows:
    if r["case"] in TRAIN_CASES:
      ratios.setdefault(r["case"], {})[r["model"]] = r["step_ms"]
  notes = [f"- {m} / {_base(m)} step, case ({k}): {v[m] / v[_base(m)]:.2f}x"
           for k, v in sorted(ratios.items()) for m in v
           if m != _base(m) and _base(m) in v]
  pipe = [f"- case ({r['case']}) {r['model']}: pipeline / in-memory step "
          f"{r['step_ms'] / r['step_ms_in_memory']:.2f}x"
          for r in rows if r["case"] in TRAIN_CASES]
  head = f"Machine: {machine()}. {'Quick run. ' if quick else ''}"
  profiles = []
  for r in rows:
    if r.get("profile"):
      what = (f"case ({r['case']}) {r['model']} (CPU ms per step"
              if r["case"] in TRAIN_CASES else
              f"case ({r['case']}) evaluation (CPU ms per whole evaluation")
      profiles += ["", f"Profile, {what} by op type, share of op CPU time):",
                   "", "| op type | ms/step | share |", "|---|---|---|"]
      profiles += [f"| {t} | {ms:.2f} | {share:.0%} |"
                   for t, ms, share in r["profile"]]
  return "\n".join([head, "", *lines, "", *notes, *pipe, *profiles]) + "\n"


def losses_table(rows, quick: bool) -> str:
  """--losses: ms per step of each loss and its ratio to bce for the same
  model and case, with the epoch it implies and the peak memory."""
  def model_and_loss(variant):
    loss = VARIANTS[variant][1].get("loss", "bce")
    return variant.removesuffix(f"-{loss}"), loss

  bce = {(r["case"], r["model"]): r["step_ms"] for r in rows
         if model_and_loss(r["model"])[1] == "bce"}
  lines = ["| case | model | loss | ms/step | x bce | s/epoch (est.) | "
           "peak RSS MB |", "|---|---|---|---|---|---|---|"]
  for r in rows:
    model, loss = model_and_loss(r["model"])
    base = bce.get((r["case"], model))
    ratio = f"{r['step_ms'] / base:.2f}" if base else "—"
    lines.append(f"| ({r['case']}) {TRAIN_CASES[r['case']][3]} | {model} | "
                 f"{loss} | {r['step_ms']:.1f} | {ratio} | "
                 f"{r['epoch_s']:.1f} | {r['peak_rss_mb']:.0f} |")
  head = (f"Machine: {machine()}. {'Quick run. ' if quick else ''}"
          "Each case in its own process (`python -m asasrec_tf.bench "
          "--losses`); gbce with gSASRec's 256 negatives per target, ce over "
          "the whole catalog; medians over the timed steps, fed by the input "
          "pipeline (which draws gbce's negatives).")
  return "\n".join([head, "", *lines]) + "\n"


def output_path(quick: bool, out=None, scale: bool = False,
                pmixer: bool = False, losses: bool = False) -> str:
  """Where the table goes: --out if given, else results/bench.md (with
  --scale results/bench_scale.md, with --pmixer_dir
  results/bench_pmixer.md, with --losses results/bench_losses.md), or for
  a quick run the same under the ignored results/quick/, so that a smoke
  run never replaces a committed table."""
  if out is not None:
    return out
  name = ("bench_pmixer.md" if pmixer else
          "bench_scale.md" if scale else
          "bench_losses.md" if losses else "bench.md")
  return f"results/quick/{name}" if quick else f"results/{name}"


def main(argv):
  del argv
  if FLAGS.case:
    print(json.dumps(run_case(FLAGS.case)))
    return
  if FLAGS.pmixer_dir:
    if FLAGS.scale or FLAGS.profile:
      raise SystemExit("--pmixer_dir runs on its own: drop --scale and "
                       "--profile")
    text = versus_pmixer(FLAGS.pmixer_dir, FLAGS.torch_python, FLAGS.rounds,
                         8 if FLAGS.quick else FLAGS.steps,
                         FLAGS.bench_data_dir)
    _write(text, output_path(FLAGS.quick, FLAGS.out, pmixer=True))
    return
  cases = [f"{k}_{m}" for k in TRAIN_CASES for m in CASE_VARIANTS[k]]
  cases += ["d", "e"]
  if FLAGS.quick:
    cases = ["a_sasrec", "a_asasrec", "a_asasrec-shared", "d", "e"]
  if FLAGS.scale and FLAGS.losses:
    raise SystemExit("--scale and --losses are separate tables: run one")
  if FLAGS.scale:
    cases = scale_cases()
  if FLAGS.losses:
    cases = list(LOSS_CASES)
  rows = []
  for case in cases:
    cmd = [sys.executable, "-m", "asasrec_tf.bench", f"--case={case}",
           f"--bench_data_dir={FLAGS.bench_data_dir}", f"--steps={FLAGS.steps}"]
    if FLAGS.quick:
      cmd.append("--quick")
    if FLAGS.profile:
      cmd += ["--profile", f"--profile_dir={FLAGS.profile_dir}"]
    print(f"running case {case} ...", file=sys.stderr, flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
      print(out.stderr[-3000:], file=sys.stderr)
      raise SystemExit(f"case {case} failed")
    rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
  if FLAGS.scale:
    text = scale_table(rows)
  elif FLAGS.losses:
    text = losses_table(rows, FLAGS.quick)
  else:
    text = table(rows, FLAGS.quick)
  _write(text, output_path(FLAGS.quick, FLAGS.out, FLAGS.scale,
                           losses=FLAGS.losses))


def _write(text: str, out: str) -> None:
  print(text)
  if out:
    from asasrec_tf.fileio import atomic_write_text
    atomic_write_text(out, text)


if __name__ == "__main__":
  cli.run(main, __doc__, define_flags)
