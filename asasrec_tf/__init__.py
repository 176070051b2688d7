"""asasrec_tf: ASASRec (SIGIR 2020) and its baselines in TensorFlow 2 / Keras.

The package follows the flow of an experiment:
``data`` (read, preprocess, split, sample) -> ``models`` (Keras layers and
models) -> ``training`` (the fit loop) -> ``evaluation`` (ranking metrics and
significance) -> ``main`` (the command line that ties them together).
"""

__version__ = "0.1.0"
