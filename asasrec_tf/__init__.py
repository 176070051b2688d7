"""asasrec_tf: ASASRec (SIGIR 2020) and its baselines in TensorFlow 2 / Keras.

The package follows the flow of an experiment:
``data`` (read, preprocess, split, sample) -> ``models`` (Keras layers and
models) -> ``training`` (the fit loop) -> ``evaluation`` (ranking metrics and
significance) -> ``main`` (the command line that ties them together).
"""

import os

__version__ = "0.1.0"

# TensorFlow's default CPU allocator takes every large tensor as fresh pages
# from the operating system (and TensorFlow trims freed memory back to it),
# so each training step page-faults its big buffers anew. Its BFC allocator
# keeps and reuses them: the same weights bit for bit, the steps of
# ``bench --scale`` 3-4x faster (the paper's settings gain up to 10%), at
# the price of holding the peak (docs/performance.md). TensorFlow reads the
# variable when it makes its first tensor, so this applies when the package
# is imported before that; a value the user set stands (``false`` opts out).
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

# TensorFlow decides by the CPU whether to run its oneDNN kernels: it ran
# them on the AVX-512 EPYC of this project's earlier sessions and left them
# off on a later AVX2 one, where a SASRec step of `bench` case (a) then took
# 1.28x as long (median of three interleaved fresh processes,
# docs/performance.md).
# oneDNN may round differently from TensorFlow's kernels, so results.json
# records which ran ("platform"). Read when TensorFlow is imported; a value
# the user set stands (``0`` opts out).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
