import pytest

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
