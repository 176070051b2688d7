"""Times pmixer/SASRec.pytorch's training step and epoch, for `bench --pmixer_dir`.

Run by `python -m asasrec_tf.bench --pmixer_dir=DIR` under a Python that has
PyTorch (--torch_python), as a script, in a folder that holds
data/<dataset>.txt in that repository's format (`user item` per line, ids
from 1, in time order). It imports model.py and utils.py from DIR, a
checkout of pmixer/SASRec.pytorch (its python/ folder when it has one; no
code of it ships here) and drives them as the repository's main.py does:
its WarpSampler with three worker processes, its SASRec with Xavier-normal
initialisation and zeroed padding rows, binary cross-entropy with logits
over the non-padding positions, Adam with betas (0.9, 0.98). It imports
nothing of asasrec_tf, so the torch Python needs only torch and numpy.

Prints one JSON line: the median ms per step fed by the sampler and fed
from batches already in memory (interleaved, as bench's own cases are), and
the seconds of one whole epoch of the main loop.
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--pmixer_dir", required=True,
                 help="A checkout of pmixer/SASRec.pytorch.")
  p.add_argument("--dataset", required=True,
                 help="Name of data/<dataset>.txt in the working directory.")
  p.add_argument("--maxlen", type=int, default=50)
  p.add_argument("--batch_size", type=int, default=128)
  p.add_argument("--hidden_units", type=int, default=64)
  p.add_argument("--num_blocks", type=int, default=2)
  p.add_argument("--num_heads", type=int, default=1)
  p.add_argument("--dropout_rate", type=float, default=0.5)
  p.add_argument("--lr", type=float, default=0.001)
  p.add_argument("--steps", type=int, default=30)
  p.add_argument("--threads", type=int, default=os.cpu_count())
  p.add_argument("--workers", type=int, default=3,
                 help="WarpSampler processes (main.py's 3).")
  return p.parse_args(argv)


def source_dir(pmixer_dir: str) -> str:
  """The folder of the checkout that holds model.py and utils.py."""
  for d in (os.path.join(pmixer_dir, "python"), pmixer_dir):
    if all(os.path.isfile(os.path.join(d, f)) for f in ("model.py", "utils.py")):
      return d
  raise SystemExit(f"{pmixer_dir}: no model.py and utils.py in it or in its "
                   "python/ folder; expected a checkout of "
                   "pmixer/SASRec.pytorch")


def main(argv=None):
  args = parse_args(argv)
  sys.path.insert(0, source_dir(args.pmixer_dir))
  import numpy as np
  import torch
  from model import SASRec
  from utils import WarpSampler, data_partition

  torch.set_num_threads(args.threads)
  user_train, _, _, usernum, itemnum = data_partition(args.dataset)
  num_batch = (len(user_train) - 1) // args.batch_size + 1
  model_args = argparse.Namespace(
      device="cpu", norm_first=False, hidden_units=args.hidden_units,
      num_blocks=args.num_blocks, num_heads=args.num_heads,
      dropout_rate=args.dropout_rate, maxlen=args.maxlen)
  model = SASRec(usernum, itemnum, model_args)
  for param in model.parameters():
    if param.dim() > 1:  # main.py's try/except skips what xavier cannot init
      torch.nn.init.xavier_normal_(param.data)
  model.pos_emb.weight.data[0, :] = 0
  model.item_emb.weight.data[0, :] = 0
  model.train()
  bce = torch.nn.BCEWithLogitsLoss()
  adam = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.98))
  sampler = WarpSampler(user_train, usernum, itemnum,
                        batch_size=args.batch_size, maxlen=args.maxlen,
                        n_workers=args.workers)

  def next_batch():
    return tuple(np.array(x) for x in sampler.next_batch())

  def step(batch):
    u, seq, pos, neg = batch
    pos_logits, neg_logits = model(u, seq, pos, neg)
    ones = torch.ones(pos_logits.shape)
    zeros = torch.zeros(neg_logits.shape)
    adam.zero_grad()
    where = np.where(pos != 0)
    loss = bce(pos_logits[where], ones[where])
    loss += bce(neg_logits[where], zeros[where])
    loss.backward()
    adam.step()
    return loss.item()

  try:
    batches = [next_batch() for _ in range(args.steps)]
    for b in batches[:3]:
      step(b)
    pipeline, memory = [], []
    for b in batches:
      t = time.perf_counter()
      step(next_batch())
      pipeline.append(time.perf_counter() - t)
      t = time.perf_counter()
      step(b)
      memory.append(time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(num_batch):
      step(next_batch())
    epoch_s = time.perf_counter() - t
  finally:
    sampler.close()
  print(json.dumps({
      "step_ms": statistics.median(pipeline) * 1e3,
      "step_ms_in_memory": statistics.median(memory) * 1e3,
      "epoch_s": epoch_s, "steps_per_epoch": num_batch,
      "users": len(user_train), "items": itemnum,
      "torch": torch.__version__, "threads": torch.get_num_threads(),
      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))


if __name__ == "__main__":
  main()
