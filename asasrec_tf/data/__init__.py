"""Data layer: dataset registry, readers, downloads, preprocessing, sampling."""

from asasrec_tf.data.dataset import SequenceDataset

__all__ = ["SequenceDataset"]
