"""Helper run in a subprocess: one train step on one device and under
MirroredStrategy on two logical CPUs, same global batch; prints the largest
differences as JSON."""

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from asasrec_tf.data import loader  # noqa: E402
from asasrec_tf.data.sampler import PairSampler, TrainingSampler  # noqa: E402
from asasrec_tf.training import factory  # noqa: E402
from asasrec_tf.training import runner  # noqa: E402

name = sys.argv[1]
data = loader.load("synthetic", synthetic_users=64, synthetic_items=40)
maxlen = 6


def build():
  keras.utils.set_random_seed(0)
  # Adam's first step is about lr * sign(g) wherever |g| >> epsilon, so it
  # magnifies the replicas' reduction-order noise in gradients of size
  # ~epsilon; Keras's 1e-7 rather than TF1's 1e-8 keeps a 1e-5 comparison
  # about the distribution, not about that noise.
  return factory.build(name, data, maxlen, hidden_units=8, dropout_rate=0.0,
                       adam_epsilon=1e-7)


sampler = (TrainingSampler(data, maxlen, 64, seed=0) if name in ("sasrec", "asasrec")
           else PairSampler(data, 64, seed=0))
batch = next(iter(sampler.dataset(1)))

single = build()
plain, adv = runner.compile_steps(single, sampler)
single_logs = adv(batch)

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
  mirrored = build()
_, adv_m = runner.compile_steps(mirrored, sampler, strategy)
dist = iter(strategy.experimental_distribute_dataset(
    tf.data.Dataset.from_tensors(batch).unbatch().batch(64)))
mirrored_logs = adv_m(next(dist))

out = {
    "replicas": strategy.num_replicas_in_sync,
    "loss": abs(float(single_logs["loss"]) - float(mirrored_logs["loss"])),
    "weights": max(float(np.abs(a.numpy() - b.numpy()).max())
                   for a, b in zip(single.trainable_weights,
                                   mirrored.trainable_weights)),
    "moved": max(float(np.abs(a.numpy() - b.numpy()).max())
                 for a, b in zip(single.trainable_weights,
                                 build().trainable_weights)),
}
print(json.dumps(out))
