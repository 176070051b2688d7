import numpy as np

from asasrec_tf.data.dataset import SequenceDataset, tail_matrix


def test_tail_matrix_left_pads_and_truncates():
  offsets = np.array([0, 3, 3, 8])
  items = np.array([1, 2, 3, 4, 5, 6, 7, 8])
  got = tail_matrix(offsets, items, np.array([2, 0, 1]), 4)
  np.testing.assert_array_equal(got, [[5, 6, 7, 8], [0, 1, 2, 3], [0, 0, 0, 0]])


def test_history_for_test_appends_the_validation_item(tiny_dataset):
  offsets, items = tiny_dataset.history("test")
  # user 10: train 1 2 3 + valid 4; user 20: train 2 + valid 3
  np.testing.assert_array_equal(items[offsets[0]:offsets[1]], [1, 2, 3, 4])
  np.testing.assert_array_equal(items[offsets[1]:offsets[2]], [2, 3])
  np.testing.assert_array_equal(items[offsets[2]:offsets[3]], [6, 1])
  offsets, items = tiny_dataset.history("valid")
  np.testing.assert_array_equal(items, tiny_dataset.train_items)


def test_stats_by_hand(tiny_dataset):
  s = tiny_dataset.stats()
  # lengths 5, 3, 2, 4 -> 14 interactions; held out 2+2+0+2 = 6
  assert (s["users"], s["items"], s["interactions"]) == (4, 6, 14)
  assert s["train_interactions"] == 8
  assert (s["valid_users"], s["test_users"]) == (3, 3)
  assert (s["min_len"], s["max_len"], s["mean_len"]) == (2, 5, 3.5)
  # mean train length 8 / 4 = 2 -> auto maxlen 2
  assert s["auto_maxlen"] == 2


def test_save_load_roundtrip(tiny_dataset, tmp_path):
  path = str(tmp_path / "d.npz")
  tiny_dataset.save(path)
  back = SequenceDataset.load(path)
  assert back.stats() == tiny_dataset.stats()
  np.testing.assert_array_equal(back.item_ids, tiny_dataset.item_ids)
  np.testing.assert_array_equal(back.train_items, tiny_dataset.train_items)


def test_popularity(tiny_dataset):
  # train: u10 1 2 3, u20 2, u30 6 1, u40 3 3
  np.testing.assert_array_equal(tiny_dataset.item_popularity(),
                                [0, 2, 2, 3, 0, 0, 1])
