import keras
import numpy as np
import tensorflow as tf

from asasrec_tf.models.mf import APR, BPRMF

P = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
Q = np.array([[0, 0], [1, 1], [2, 0], [0, 3]], np.float32)  # row 0: padding


def batch():
  # (user 0, pos 1, neg 2), (user 1, pos 3, neg 1)
  return {"users": tf.constant([0, 1]), "positives": tf.constant([1, 3]),
          "negatives": tf.constant([2, 1])}


def make(cls=BPRMF, **kw):
  model = cls(num_users=2, num_items=3, hidden_units=2, **kw)
  model.user_embedding.assign(P)
  model.item_embedding.assign(Q)
  model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0))
  return model


def test_bpr_loss_and_gradient_by_hand():
  model = make()
  with tf.GradientTape() as tape:
    loss = model.pair_loss(batch())
  gp, gq = [tf.convert_to_tensor(g).numpy() for g in
            tape.gradient(loss, [model.user_embedding, model.item_embedding])]
  # x_01 - x_02 = 1 - 2 = -1 -> softplus(1) = 1.3132617
  # x_13 - x_11 = 3 - 1 = 2  -> softplus(-2) = 0.1269280
  np.testing.assert_allclose(loss.numpy(), 1.3132617 + 0.1269280, rtol=1e-6)
  # dL/dd = -sigmoid(-d): -0.7310586 (first), -0.1192029 (second)
  a, b = 0.7310586, 0.1192029
  np.testing.assert_allclose(gp, [[a, -a], [b, -2 * b]], rtol=1e-5)
  np.testing.assert_allclose(gq, [[0, 0], [-a, b], [a, 0], [0, -b]], rtol=1e-5,
                             atol=1e-7)


def test_scores_are_dot_products():
  model = make()
  np.testing.assert_allclose(model.score(tf.constant([0, 1]), tf.zeros([2, 3], tf.int32)).numpy(),
                             P @ Q.T)


def test_apr_perturbation_has_norm_eps_per_row():
  model = make(APR, adv_eps=0.5)
  dp, dq = (d.dense(n).numpy()
            for d, n in zip(model.adversarial_deltas(batch()), (2, 4)))
  np.testing.assert_allclose(np.linalg.norm(dp, axis=1), [0.5, 0.5], rtol=1e-6)
  # items 1..3 touched, padding row untouched
  np.testing.assert_allclose(np.linalg.norm(dq, axis=1), [0, 0.5, 0.5, 0.5],
                             rtol=1e-6)
  # direction of the gradient: user 0's gradient is (a, -a)
  np.testing.assert_allclose(dp[0], 0.5 * np.array([1, -1]) / np.sqrt(2),
                             rtol=1e-6)


def test_apr_step_matches_reference():
  reg = 0.7
  model = make(APR, adv_eps=0.5, adv_reg=reg)
  b = batch()
  dp, dq = model.adversarial_deltas(b)
  with tf.GradientTape() as tape:
    total = model.pair_loss(b) + reg * model.pair_loss(b, dp, dq)
  grads = [tf.convert_to_tensor(g).numpy() for g in
           tape.gradient(total, [model.user_embedding, model.item_embedding])]
  model.train_step(b)
  np.testing.assert_allclose(model.user_embedding.numpy(), P - grads[0],
                             rtol=1e-5)
  np.testing.assert_allclose(model.item_embedding.numpy(), Q - grads[1],
                             rtol=1e-5, atol=1e-6)


def test_apr_rows_the_batch_touches_give_the_dense_step(monkeypatch):
  from asasrec_tf.models import replicas

  def stepped(dense):
    model = make(APR, adv_eps=0.5, adv_reg=0.7)
    with monkeypatch.context() as m:
      if dense:
        m.setattr(replicas, "num_replicas", lambda: 2)
      model.train_step(batch())
    return [w.numpy() for w in model.weights]

  for a, d in zip(stepped(False), stepped(True)):
    np.testing.assert_allclose(a, d, rtol=1e-6, atol=1e-7)
