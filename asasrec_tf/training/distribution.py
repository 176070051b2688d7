"""tf.distribute strategies for training on several devices or machines.

``--distribution=mirrored`` replicates the model on every local GPU (or on
the logical devices configured); ``multi_worker`` runs one process per
machine, configured by the ``TF_CONFIG`` environment variable. The model and
its optimiser must be built inside ``strategy.scope()``. Losses are scaled by
the global batch (see SASRec.sequence_loss) and gradients are summed across
replicas by the optimiser, so a distributed step equals the single-device
step on the same global batch; ASASRec's gradient for the perturbation is
summed across replicas before it is normalised, so every replica uses the
same perturbation.

TensorFlow's MultiWorkerMirroredStrategy waits for every worker inside C++,
silently, for ever, deaf to Ctrl-C and SIGTERM. So a worker first meets the
others in Python (``wait_for_workers``): it listens on its own address and
waits until every other worker's address accepts connections, saying whom
it waits for, giving up after a timeout, interruptible; only then does it
build the strategy, whose own servers then find each other at once.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from typing import Callable, List, Tuple

import tensorflow as tf

from asasrec_tf.errors import UserError

from asasrec_tf.choices import STRATEGIES
# How often a waiting worker says whom it still waits for, in seconds.
REPORT_EVERY = 30.0


def make_strategy(name: str, worker_timeout: float = 600.0
                  ) -> tf.distribute.Strategy:
  """The strategy called ``name``; for multi_worker, after every worker of
  TF_CONFIG's cluster is reachable (see wait_for_workers)."""
  if name == "none":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    return tf.distribute.MirroredStrategy()
  if name == "multi_worker":
    wait_for_workers(worker_timeout)
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise UserError(f"--distribution must be one of {', '.join(STRATEGIES)}")


def cluster_addresses() -> Tuple[str, List[Tuple[str, str]]]:
  """(this task's address, [(task, address)] of the others) from TF_CONFIG.

  Raises:
    UserError: TF_CONFIG is missing or does not describe this task.
  """
  raw = os.environ.get("TF_CONFIG")
  if not raw:
    raise UserError("--distribution=multi_worker needs the TF_CONFIG "
                    "environment variable (cluster and task of this worker)")
  try:
    config = json.loads(raw)
    cluster, task = config["cluster"], config["task"]
    tasks = [(f"{kind} {i}", str(address)) for kind in sorted(cluster)
             for i, address in enumerate(cluster[kind])]
    own = f"{task['type']} {int(task.get('index', 0))}"
  except (ValueError, KeyError, TypeError) as e:
    raise UserError(f"TF_CONFIG is not a cluster and task description "
                    f"({e}): expected {{\"cluster\": {{\"worker\": "
                    f"[\"host:port\", ...]}}, \"task\": {{\"type\": "
                    f"\"worker\", \"index\": 0}}}}") from None
  addresses = dict(tasks)
  if own not in addresses:
    raise UserError(f"TF_CONFIG: this task ({own}) is not in its cluster")
  return addresses[own], [(t, a) for t, a in tasks if t != own]


def _split(address: str) -> Tuple[str, int]:
  host, _, port = address.rpartition(":")
  try:
    return host.strip("[]") or "localhost", int(port)
  except ValueError:
    raise UserError(f"TF_CONFIG: {address!r} is not host:port") from None


def _reachable(address: str) -> bool:
  try:
    with socket.create_connection(_split(address), timeout=1.0):
      return True
  except OSError:
    return False


def wait_for_workers(timeout: float,
                     log: Callable[[str], None] = lambda m: print(
                         m, file=sys.stderr, flush=True)) -> None:
  """Returns once every other worker of TF_CONFIG accepts connections,
  listening on this worker's own address meanwhile so that they find it.

  Raises:
    UserError: this worker's address cannot be listened on, or a worker is
      still unreachable after ``timeout`` seconds (the error names it).
  """
  own, others = cluster_addresses()
  if not others:
    return
  listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
  try:
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
      listener.bind(("", _split(own)[1]))
      listener.listen(64)
    except OSError as e:
      raise UserError(f"TF_CONFIG: cannot listen on this worker's address "
                      f"{own}: {e.strerror or e}") from None
    began = time.monotonic()
    waiting = others
    said = None
    while True:
      waiting = [(t, a) for t, a in waiting if not _reachable(a)]
      if not waiting:
        return
      who = ", ".join(f"{t} at {a}" for t, a in waiting)
      waited = time.monotonic() - began
      if waited >= timeout:
        raise UserError(f"--distribution=multi_worker: gave up after "
                        f"{timeout:g} s waiting for {who} (not reachable); "
                        "start every worker of TF_CONFIG's cluster, check "
                        "its addresses, or raise --worker_timeout")
      if said is None or waited - said >= REPORT_EVERY:
        log(f"waiting for {who} ({waited:.0f} of {timeout:g} s; Ctrl-C "
            "stops)")
        said = waited
      time.sleep(0.5)
  finally:
    listener.close()


def is_chief() -> bool:
  """True unless this is a non-chief worker of a multi-worker cluster."""
  config = json.loads(os.environ.get("TF_CONFIG", "{}"))
  task = config.get("task", {})
  if not task:
    return True
  if task.get("type") == "chief":
    return True
  has_chief = "chief" in config.get("cluster", {})
  return task.get("type") == "worker" and task.get("index", 0) == 0 and (
      not has_chief)
