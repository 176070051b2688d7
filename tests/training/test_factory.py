import pytest

from asasrec_tf.errors import UserError
from asasrec_tf.training import factory


@pytest.mark.parametrize("name", ["sasrec", "asasrec"])
def test_adam_epsilon_is_tf1s_by_default(tiny_dataset, name):
  model = factory.build(name, tiny_dataset, maxlen=3, hidden_units=8)
  # TF1's AdamOptimizer (kang205/SASRec, the authors) uses 1e-8; Keras 1e-7.
  assert model.optimizer.epsilon == pytest.approx(1e-8)
  assert model.optimizer.beta_2 == pytest.approx(0.98)
  other = factory.build(name, tiny_dataset, maxlen=3, hidden_units=8,
                        adam_epsilon=1e-7)
  assert other.optimizer.epsilon == pytest.approx(1e-7)


def test_the_optimizer_choice(tiny_dataset):
  from asasrec_tf.training.optimizers import DenseAdam, LazyAdam
  assert type(factory.build("sasrec", tiny_dataset, 3, hidden_units=8)
              .optimizer) is DenseAdam
  lazy = factory.build("asasrec", tiny_dataset, 3, hidden_units=8,
                       optimizer="lazy_adam")
  assert type(lazy.optimizer) is LazyAdam
  with pytest.raises(UserError, match="apply to sasrec and asasrec"):
    factory.build("bpr", tiny_dataset, 3, optimizer="lazy_adam")


def test_negatives_per_target_follow_the_loss(tiny_dataset):
  assert factory.train_negatives("bce", None) == 1
  assert factory.train_negatives("gbce", None) == factory.GBCE_NEGATIVES == 256
  assert factory.train_negatives("gbce", 8) == 8
  for loss in ("bce", "bce_authors", "ce"):
    with pytest.raises(UserError, match="--train_negatives applies to"):
      factory.train_negatives(loss, 8)
  sampler = factory.build_sampler("asasrec", tiny_dataset, 3, 2, 0,
                                  num_negatives=2)
  assert sampler.epoch_arrays(0)["negatives"].shape[-1] == 2
  with pytest.raises(UserError, match="--gbce_t applies to --loss=gbce"):
    factory.build("sasrec", tiny_dataset, 3, gbce_t=0.5)
  model = factory.build("sasrec", tiny_dataset, 3, loss="gbce", gbce_t=0.5)
  assert (model.loss_form, model.gbce_t) == ("gbce", 0.5)


def test_the_item_table_is_read_as_the_optimizer_writes_it(tiny_dataset):
  """TensorFlow copies a variable at every whole read once a sparse op has
  written to it, and at every dense update once a sparse op has read it:
  the training step of lazy_adam reads the item table row by row, that of
  the dense Adam whole."""
  import tensorflow as tf
  batch = next(iter(factory.build_sampler("sasrec", tiny_dataset, 3, 2,
                                          0).dataset(0)))
  table = [tiny_dataset.num_items + 1, 64]
  for optimizer, whole in (("adam", True), ("lazy_adam", False)):
    model = factory.build("sasrec", tiny_dataset, 3, optimizer=optimizer)
    graph = tf.function(model.train_step).get_concrete_function(batch).graph
    ops = graph.get_operations()
    reads = [op.outputs[0].shape.as_list() for op in ops
             if op.type == "ReadVariableOp"]
    assert (table in reads) == whole, optimizer
    assert any(op.type == "ResourceGather" for op in ops) != whole, optimizer
