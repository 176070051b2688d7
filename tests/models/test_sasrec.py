import keras
import numpy as np
import pytest
import tensorflow as tf

from asasrec_tf.models.sasrec import ASASRec, SASRec

NUM_ITEMS, MAXLEN, D = 9, 4, 8


def batch():
  # left-padded inputs; positives are the next items; 0 marks padding
  return {
      "users": tf.constant([0, 1], tf.int32),
      "inputs": tf.constant([[0, 1, 2, 3], [0, 0, 5, 6]], tf.int32),
      "positives": tf.constant([[1, 2, 3, 4], [0, 5, 6, 7]], tf.int32),
      "negatives": tf.constant([[8, 9, 8, 5], [0, 1, 2, 3]], tf.int32),
  }


def make(cls=SASRec, dropout_rate=0.0, **kw):
  keras.utils.set_random_seed(0)
  model = cls(NUM_ITEMS, MAXLEN, hidden_units=D, num_blocks=2,
              dropout_rate=dropout_rate, **kw)
  model.build_for_inputs()
  model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0))
  return model


def softplus(x):
  return np.log1p(np.exp(x))


def test_loss_is_masked_bce_by_hand():
  model = make()
  b = batch()
  hidden = model(b["inputs"]).numpy()
  table = model.item_table.numpy()
  pos = np.einsum("bld,bld->bl", hidden, table[b["positives"].numpy()])
  neg = np.einsum("bld,bld->bl", hidden, table[b["negatives"].numpy()])
  mask = b["positives"].numpy() > 0
  # -log sigmoid(pos) - log(1 - sigmoid(neg)) = softplus(-pos) + softplus(neg)
  expect = (softplus(-pos) + softplus(neg))[mask].mean()
  np.testing.assert_allclose(model.sequence_loss(b, training=False).numpy(),
                             expect, rtol=1e-5)


def test_score_uses_the_last_position_and_the_shared_table():
  model = make()
  hist = batch()["inputs"]
  scores = model.score(tf.zeros([2], tf.int32), hist).numpy()
  hidden = model(hist).numpy()[:, -1]
  assert scores.shape == (2, NUM_ITEMS + 1)
  np.testing.assert_allclose(scores, hidden @ model.item_table.numpy().T,
                             rtol=1e-5, atol=1e-5)


def test_empty_history_scores_are_finite():
  model = make()
  assert np.isfinite(model.score(tf.zeros([1], tf.int32),
                                   tf.zeros([1, MAXLEN], tf.int32)).numpy()).all()


def _variables(model):
  return [v.numpy().copy() for v in model.trainable_variables]


def test_adversarial_step_matches_a_hand_written_reference():
  """ASASRec (target 'both') against Eqs. 8-11 computed another way: Gamma
  as the gradient w.r.t. the item table variable itself, the perturbed loss
  by overwriting that variable with E + Delta."""
  eps, reg = 0.5, 1.0
  model = make(ASASRec, adv_eps=eps, adv_reg=reg, adv_target="both")
  b = batch()
  w0 = _variables(model)
  table = model.item_table

  with tf.GradientTape() as tape:
    clean = model.sequence_loss(b, training=False)
  gamma = tf.convert_to_tensor(tape.gradient(clean, table)).numpy()
  norms = np.linalg.norm(gamma, axis=1, keepdims=True)
  delta = np.where(norms > 0, eps * gamma / np.maximum(norms, 1e-30), 0.0)

  with tf.GradientTape() as tape:
    clean = model.sequence_loss(b, training=True)
  g_clean = [tf.convert_to_tensor(g).numpy() for g in
             tape.gradient(clean, model.trainable_variables)]
  table.assign(w0[0] + delta)
  with tf.GradientTape() as tape:
    adv = model.sequence_loss(b, training=True)
  g_adv = [tf.convert_to_tensor(g).numpy() for g in
           tape.gradient(adv, model.trainable_variables)]
  table.assign(w0[0])
  expected = [w - (gc + reg * ga) for w, gc, ga in zip(w0, g_clean, g_adv)]

  got_delta = model.adversarial_delta(b).dense(NUM_ITEMS + 1).numpy()
  np.testing.assert_allclose(got_delta, delta, rtol=1e-4, atol=1e-6)
  touched = np.unique(np.concatenate([b[k].numpy().ravel() for k in
                                      ("inputs", "positives", "negatives")]))
  touched = touched[touched > 0]
  row_norms = np.linalg.norm(got_delta, axis=1)
  np.testing.assert_allclose(row_norms[touched], eps, rtol=1e-5)
  untouched = np.setdiff1d(np.arange(NUM_ITEMS + 1), touched)
  assert (row_norms[untouched] == 0).all()  # incl. padding row 0

  logs = model.train_step(b)
  np.testing.assert_allclose(logs["clean_loss"].numpy(), clean.numpy(), rtol=1e-5)
  np.testing.assert_allclose(logs["adv_loss"].numpy(), adv.numpy(), rtol=1e-5)
  for got, want in zip(_variables(model), expected):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("target", ["output", "input"])
def test_adversarial_targets_inject_where_told(target):
  model = make(ASASRec, adv_target=target)
  b = batch()
  delta = model.adversarial_delta(b)
  loss = lambda **kw: model.sequence_loss(b, training=False, **kw).numpy()
  expect = (loss(output_delta=delta) if target == "output"
            else loss(input_delta=delta))
  logs = model.train_step(b)
  np.testing.assert_allclose(logs["adv_loss"].numpy(), expect, rtol=1e-5)
  # the perturbation increases the loss (it follows the gradient)
  assert logs["adv_loss"].numpy() > logs["clean_loss"].numpy()


def test_global_norm_perturbation():
  model = make(ASASRec, adv_norm="global", adv_eps=0.25)
  delta = model.adversarial_delta(batch()).dense(NUM_ITEMS + 1).numpy()
  np.testing.assert_allclose(np.linalg.norm(delta), 0.25, rtol=1e-5)


def test_get_config_roundtrip():
  model = make(ASASRec, adv_eps=0.3, adv_target="output")
  clone = ASASRec.from_config(model.get_config())
  assert clone.adv_eps == 0.3 and clone.adv_target == "output"
  authors = make(ASASRec, adv_target="output", adv_passes="one",
                 adv_gamma="dropout", adv_gamma_uses="target")
  clone = ASASRec.from_config(authors.get_config())
  assert (clone.adv_passes, clone.adv_gamma, clone.adv_gamma_uses) == (
      "one", "dropout", "target")
  assert clone.get_config() == authors.get_config()


def test_rejects_unknown_target():
  with pytest.raises(ValueError):
    ASASRec(NUM_ITEMS, MAXLEN, adv_target="hidden")


def _reference_step(model, b, target, eps=0.5, reg=1.0):
  """Expected weights after one SGD(1.0) step of adv_gamma='shared' with
  dropout 0: Gamma w.r.t. the embeddings ``target`` perturbs, by hand."""
  w0 = _variables(model)
  zero = tf.zeros_like(model.item_table)
  where = {"input_delta": zero if target in ("both", "input") else None,
           "output_delta": zero if target in ("both", "output") else None}
  with tf.GradientTape() as tape:
    tape.watch(zero)
    clean = model.sequence_loss(b, training=False, **where)
  gamma = tf.convert_to_tensor(tape.gradient(clean, zero)).numpy()
  norms = np.linalg.norm(gamma, axis=1, keepdims=True)
  delta = tf.constant(np.where(norms > 0, eps * gamma / np.maximum(norms, 1e-30),
                               0.0), tf.float32)
  perturbed = {k: (delta if v is not None else None) for k, v in where.items()}
  with tf.GradientTape() as tape:
    loss = (model.sequence_loss(b, training=True) +
            reg * model.sequence_loss(b, training=True, **perturbed))
  grads = tape.gradient(loss, model.trainable_variables)
  return [w - tf.convert_to_tensor(g).numpy() for w, g in zip(w0, grads)]


@pytest.mark.parametrize("target", ["both", "input", "output"])
def test_shared_gamma_step_matches_a_hand_written_reference(target):
  model = make(ASASRec, adv_target=target, adv_gamma="shared",
               adv_gamma_uses="target")
  b = batch()
  expected = _reference_step(model, b, target)
  model.train_step(b)
  for got, want in zip(_variables(model), expected):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


# Step forms that must agree when dropout is 0, grouped by the Gamma they use.
SAME_WITHOUT_DROPOUT = {
    "output target, Gamma over all uses": [
        dict(adv_gamma=g, adv_passes=p, adv_gamma_uses="all")
        for g in ("clean", "dropout", "shared") for p in ("two", "one")
        if not (g == "shared" and p == "one")],
    "output target, Gamma over the output use": [
        dict(adv_gamma=g, adv_passes=p, adv_gamma_uses="target")
        for g in ("clean", "dropout", "shared") for p in ("two", "one")],
}


@pytest.mark.slow  # several step forms trained side by side: seconds each
@pytest.mark.parametrize("group", sorted(SAME_WITHOUT_DROPOUT))
def test_step_forms_agree_without_dropout(group):
  b = batch()
  runs = []
  for kw in SAME_WITHOUT_DROPOUT[group]:
    model = make(ASASRec, adv_target="output", **kw)
    logs = model.train_step(b)
    runs.append((kw, logs, _variables(model)))
  _, logs_a, w_a = runs[0]
  for kw, logs_b, w_b in runs[1:]:
    for k in ("clean_loss", "adv_loss"):
      np.testing.assert_allclose(logs_a[k].numpy(), logs_b[k].numpy(),
                                 rtol=1e-5, err_msg=str(kw))
    for a, b_ in zip(w_a, w_b):
      np.testing.assert_allclose(a, b_, rtol=1e-4, atol=1e-6, err_msg=str(kw))


def test_gamma_uses_matter_for_the_output_target():
  b = batch()
  deltas = [make(ASASRec, adv_target="output", adv_gamma_uses=uses)
            .adversarial_delta(b).dense(NUM_ITEMS + 1).numpy()
            for uses in ("all", "target")]
  # item 1 is an input and a positive: its two uses' gradients differ from
  # the output use's alone
  assert not np.allclose(deltas[0][1], deltas[1][1], atol=1e-4)


def _rng_state(model):
  from asasrec_tf.training.checkpoint import rng_variables
  return [v.numpy().copy() for v in rng_variables(model)]


def _set_rng_state(model, state):
  from asasrec_tf.training.checkpoint import rng_variables
  for var, value in zip(rng_variables(model), state):
    var.assign(value)


def _bce(hidden, table, b):
  """Eq. 5 by hand: masked mean of -log s(h.e_pos) - log(1 - s(h.e_neg))."""
  pos = tf.reduce_sum(hidden * tf.gather(table, b["positives"]), -1)
  neg = tf.reduce_sum(hidden * tf.gather(table, b["negatives"]), -1)
  mask = tf.cast(b["positives"] > 0, tf.float32)
  terms = -tf.math.log_sigmoid(pos) - tf.math.log_sigmoid(-neg)
  return tf.reduce_sum(terms * mask) / tf.reduce_sum(mask)


def _by_hand_delta(model, b, training, eps=0.5):
  """Delta from the gradient of Eq. 5 (by hand) w.r.t. the item table
  variable itself (every use of it), normalised per row."""
  with tf.GradientTape() as tape:
    loss = _bce(model(b["inputs"], training=training), model.item_table, b)
  gamma = tf.convert_to_tensor(tape.gradient(loss, model.item_table)).numpy()
  norms = np.linalg.norm(gamma, axis=1, keepdims=True)
  return np.where(norms > 0, eps * gamma / np.maximum(norms, 1e-30),
                  0.0).astype(np.float32)


def test_authors_step_matches_a_hand_written_reference():
  """The authors' step (feay1234/ASASRec SASRec.py) with dropout on: Delta
  from the gradient of the dropout-off loss w.r.t. the item table variable
  (input and output uses), normalised per row; then ONE dropout-on pass
  whose hidden states give both the clean loss and the loss with Delta added
  to the positive and negative embeddings."""
  eps, reg = 0.5, 1.0
  model = make(ASASRec, dropout_rate=0.5, adv_eps=eps, adv_reg=reg,
               adv_target="output", adv_passes="one")
  b = batch()
  w0 = _variables(model)
  rng = _rng_state(model)
  table = model.item_table

  delta = _by_hand_delta(model, b, training=False, eps=eps)
  with tf.GradientTape() as tape:
    hidden = model(b["inputs"], training=True)
    clean = _bce(hidden, table, b)
    adv = _bce(hidden, table + delta, b)
    loss = clean + reg * adv
  grads = tape.gradient(loss, model.trainable_variables)
  expected = [w - tf.convert_to_tensor(g).numpy() for w, g in zip(w0, grads)]

  _set_rng_state(model, rng)  # the step draws the same dropout mask
  logs = model.train_step(b)
  np.testing.assert_allclose(logs["clean_loss"].numpy(), clean.numpy(),
                             rtol=1e-5)
  np.testing.assert_allclose(logs["adv_loss"].numpy(), adv.numpy(), rtol=1e-5)
  for got, want in zip(_variables(model), expected):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)

  # Two passes would draw a second mask for the perturbed loss: the test
  # tells the forms apart.
  two = make(ASASRec, dropout_rate=0.5, adv_target="output")
  _set_rng_state(two, rng)
  assert not np.isclose(two.train_step(b)["adv_loss"].numpy(), adv.numpy(),
                        rtol=1e-3)


def test_gamma_with_dropout_draws_its_own_mask():
  """adv_gamma='dropout': Gamma from a dropout-on pass of its own, drawn
  before the training pass's mask."""
  model = make(ASASRec, dropout_rate=0.5, adv_target="output",
               adv_passes="one", adv_gamma="dropout")
  b = batch()
  rng = _rng_state(model)
  delta = _by_hand_delta(model, b, training=True)   # draws the first mask
  hidden = model(b["inputs"], training=True)
  adv = _bce(hidden, model.item_table + delta, b)
  _set_rng_state(model, rng)
  logs = model.train_step(b)
  np.testing.assert_allclose(logs["adv_loss"].numpy(), adv.numpy(), rtol=1e-5)


@pytest.mark.parametrize("kw, message", [
    (dict(adv_passes="one"), "needs adv_target='output'"),
    (dict(adv_passes="one", adv_target="output", adv_gamma="shared"),
     "set adv_gamma_uses='target'"),
    (dict(adv_gamma_uses="some"), "adv_gamma_uses must be one of"),
    (dict(adv_passes="three"), "adv_passes must be one of"),
])
def test_rejects_impossible_step_forms(kw, message):
  with pytest.raises(ValueError, match=message):
    ASASRec(NUM_ITEMS, MAXLEN, **kw)


def test_rejects_unknown_gamma():
  with pytest.raises(ValueError, match="adv_gamma"):
    ASASRec(NUM_ITEMS, MAXLEN, adv_gamma="twice")


@pytest.mark.parametrize("kw", [
    {},                                                   # Eq. 9, clean Gamma
    dict(adv_target="output", adv_passes="one"),          # the authors' step
    dict(adv_gamma="shared", adv_target="output", adv_gamma_uses="target",
         adv_passes="one"),
])
def test_float16_gamma_survives_a_huge_loss_scale(kw):
  """Gamma used to be taken from the loss-scaled loss: at the optimizer's
  scale (2^15 at first, here 2^30) it overflowed in float16, l2_normalize
  made it NaN and training stopped at step 1."""
  keras.utils.set_random_seed(0)
  model = ASASRec(NUM_ITEMS, MAXLEN, hidden_units=D, num_blocks=2,
                  dropout_rate=0.0, dtype="mixed_float16", **kw)
  model.build_for_inputs()
  model.compile(optimizer=keras.optimizers.LossScaleOptimizer(
      keras.optimizers.SGD(0.1), initial_scale=2.0 ** 30))
  b = batch()
  if model.adv_gamma != "shared":
    delta = model.adversarial_delta(b).dense(NUM_ITEMS + 1).numpy()
    assert np.isfinite(delta).all()
    norms = np.linalg.norm(delta, axis=1)
    assert np.allclose(norms[norms > 0], 0.5, rtol=1e-2) and (norms > 0).any()
  logs = model.train_step(b)
  assert all(np.isfinite(v.numpy()) for v in logs.values())
  assert logs["adv_loss"].numpy() > logs["clean_loss"].numpy()


class _L2EmbSASRec(SASRec):
  """SASRec with kang205's l2_emb as a layer loss, added in call."""

  def call(self, item_ids, input_delta=None, training=False):
    out = super().call(item_ids, input_delta=input_delta, training=training)
    self.add_loss(0.25 * tf.reduce_sum(tf.square(self.item_table)))
    return out


def test_regularisation_losses_join_every_step():
  """A layer's loss (e.g. kang205's l2_emb) reaches the loss of the one
  train_step skeleton, with nothing else to edit."""
  b = batch()
  plain = float(make().plain_step(b)["loss"])
  model = make(_L2EmbSASRec)
  l2 = 0.25 * float(tf.reduce_sum(tf.square(model.item_table)))
  assert float(model.plain_step(b)["loss"]) == pytest.approx(plain + l2,
                                                             rel=1e-5)


# --- the two blocks against numpy transcriptions of their sources -------------
#
# Written from kang205/SASRec (model.py, modules.py) and feay1234/ASASRec
# (SASRec.py, SASRecLayers.py), in evaluation mode (dropout off). Per block,
#   kang205: Q = LN(seq); seq = Q + MHA(Q, keys=seq)      (raw keys, values)
#            seq = LN(seq); seq = seq + FF(seq); seq *= mask
#   authors: seq = LN(seq); seq = seq + MHA(seq, keys=seq) (normed keys, values)
#            seq = LN(seq); seq = LN(seq + FF(seq)); seq *= mask
# and a final LN. Both mask keys with sign(|sum(keys)|): kang205's keys are
# the raw, masked sequence (padding rows are 0, so masked); the authors'
# keys are normalised, so a padding row is LN(0) = beta and is masked only
# while sum(beta) = 0. ``padding_keys='ids'`` replaces that mask by the
# item-id mask the models use.

def _ln(x, gamma, beta):
  mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
  return gamma * (x - mu) / np.sqrt(var + 1e-8) + beta


def _dense(layer, x):
  return x @ layer.kernel.numpy() + layer.bias.numpy()


def _norm(layer, x):
  return _ln(x, layer.gamma.numpy(), layer.beta.numpy())


def _transcription(model, ids, source, padding_keys="source"):
  """The forward pass of ``source`` ('kang205' or 'authors') with the
  weights of ``model``: [B, L, d]."""
  d = model.hidden_units
  emb = model.embedding
  mask = (ids != 0)[..., None].astype(np.float32)
  seq = emb.item_embedding.numpy()[ids] * np.sqrt(d)
  seq = (seq + emb.position_embedding.numpy()[None]) * mask
  for att_block, ff_block in zip(model.attention_blocks,
                                 model.feed_forward_blocks):
    att = att_block.attention
    queries = _norm(att_block.norm, seq)
    keys = queries if source == "authors" else seq
    q, k, v = _dense(att.query, queries), _dense(att.key, keys), _dense(
        att.value, keys)
    logits = q @ np.swapaxes(k, 1, 2) / np.sqrt(d)
    key_mask = np.sign(np.abs(keys.sum(-1)))
    if padding_keys == "ids":
      key_mask = (ids != 0).astype(np.float32)
    logits = np.where(key_mask[:, None, :] == 0, -2.0**32 + 1, logits)
    causal = np.tril(np.ones(logits.shape[1:]))
    logits = np.where(causal[None] == 0, -2.0**32 + 1, logits)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    w *= np.sign(np.abs(queries.sum(-1)))[..., None]   # query masking
    seq = w @ v + queries
    inputs = _norm(ff_block.norm, seq)
    out = _dense(ff_block.outer, np.maximum(_dense(ff_block.inner, inputs), 0))
    out = out + inputs
    if source == "authors":
      out = _norm(ff_block.out_norm, out)
    seq = out * mask
  return _norm(model.final_norm, seq)


def _randomise_norms(model, seed=5):
  """Layer norms away from their (1, 0) start, as after training."""
  rng = np.random.default_rng(seed)
  for layer in model._flatten_layers():
    if isinstance(layer, keras.layers.LayerNormalization):
      layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape))
      layer.beta.assign(rng.normal(0.0, 0.3, layer.beta.shape))


@pytest.mark.parametrize("block", ["kang205", "authors"])
def test_each_block_is_its_sources_forward_pass(block):
  model = make(block=block)
  _randomise_norms(model)
  full = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])          # no padding
  padded = batch()["inputs"].numpy()
  real = padded != 0
  np.testing.assert_allclose(model(tf.constant(full)).numpy(),
                             _transcription(model, full, block),
                             rtol=1e-4, atol=1e-4)
  ours = model(tf.constant(padded)).numpy()
  np.testing.assert_allclose(
      ours[real], _transcription(model, padded, block, "ids")[real],
      rtol=1e-4, atol=1e-4)
  source = _transcription(model, padded, block)[real]
  if block == "kang205":   # raw keys: its own mask works, the same outputs
    np.testing.assert_allclose(ours[real], source, rtol=1e-4, atol=1e-4)
  else:                    # normed keys: the source attends to padding
    assert np.abs(ours[real] - source).max() > 1e-2


def test_the_blocks_differ_and_round_trip():
  ours, theirs = make(block="kang205"), make(block="authors")
  ids = tf.constant([[1, 2, 3, 4]])
  assert not np.allclose(ours(ids).numpy(), theirs(ids).numpy())
  # the authors' block has one more layer norm per block: 2 x (gamma, beta)
  assert len(theirs.weights) == len(ours.weights) + 4
  clone = SASRec.from_config(theirs.get_config())
  assert clone.block == "authors" and clone.loss_form == "bce"


# --- the form of the loss --------------------------------------------------

def test_the_authors_loss_form_by_hand_and_where_its_gradient_vanishes():
  from asasrec_tf.models.sasrec import binary_cross_entropy
  pos = tf.constant([0.0, 2.0, 0.0, -60.0])
  neg = tf.constant([0.0, -1.0, 20.0, 0.0])
  with tf.GradientTape(persistent=True) as tape:
    tape.watch([pos, neg])
    ours = binary_cross_entropy(pos, neg, "bce")
    theirs = binary_cross_entropy(pos, neg, "bce_authors")
  # (0, 0): 2 log 2 = 1.386294; (2, -1): log(1 + e^-2) + log(1 + e^-1)
  # = 0.126928 + 0.313262 = 0.440190; (0, 20): log 2 + 20.000000002
  np.testing.assert_allclose(ours.numpy()[:3], [1.386294, 0.440190, 20.693147],
                             rtol=1e-5)
  np.testing.assert_allclose(theirs.numpy()[:2], ours.numpy()[:2], rtol=1e-5)
  # a negative at logit 20: sigmoid rounds to 1 in float32, so the authors'
  # loss is log 2 - log(1e-24) = 0.693147 + 55.262042 and flat
  np.testing.assert_allclose(theirs.numpy()[2], 55.955189, rtol=1e-5)
  assert tape.gradient(theirs, neg).numpy()[2] == 0.0
  assert tape.gradient(ours, neg).numpy()[2] == pytest.approx(1.0)
  # a positive at -60: sigmoid = 8.8e-27, far below 1e-24: no gradient
  assert abs(tape.gradient(theirs, pos).numpy()[3]) < 1e-2
  assert tape.gradient(ours, pos).numpy()[3] == pytest.approx(-1.0)


def test_the_authors_loss_form_is_the_same_inside_a_tf_function():
  # Traced, Grappler may fold (1 - s) + 1e-24 into (1 + 1e-24) - s = 1 - s,
  # which is log(0) = inf for a negative past logit 17; the authors' value
  # there is -log(1e-24) = 55.262042 (positive at 0 adds log 2 = 0.693147).
  from asasrec_tf.models.sasrec import binary_cross_entropy
  pos = tf.zeros([4])
  neg = tf.constant([0.0, 17.0, 60.0, 200.0])
  traced = tf.function(
      lambda p, n: binary_cross_entropy(p, n, "bce_authors"))(pos, neg)
  eager = binary_cross_entropy(pos, neg, "bce_authors")
  np.testing.assert_allclose(traced.numpy(), eager.numpy(), rtol=1e-6)
  np.testing.assert_allclose(traced.numpy()[2:], [55.955189] * 2, rtol=1e-5)


def test_the_loss_form_reaches_the_training_loss():
  ours, theirs = make(), make(loss="bce_authors")
  b = batch()
  np.testing.assert_allclose(ours.sequence_loss(b, training=False).numpy(),
                             theirs.sequence_loss(b, training=False).numpy(),
                             rtol=1e-5)   # small logits: the same value
  with pytest.raises(ValueError, match="loss must be one of"):
    make(loss="hinge")


# --- the perturbation over the rows a batch touches ---------------------------

STEP_FORMS = {
    "Eq. 9": {},
    "authors' step": dict(adv_target="output", adv_passes="one"),
    "shared Gamma": dict(adv_gamma="shared"),
    "one pass, shared Gamma": dict(adv_target="output", adv_passes="one",
                                   adv_gamma="shared", adv_gamma_uses="target"),
    "global norm": dict(adv_norm="global"),
}


@pytest.mark.parametrize("form", sorted(STEP_FORMS))
def test_rows_the_batch_touches_give_the_dense_step(form, monkeypatch):
  """2,000 items, of which the batch names 9: the step with Delta kept as
  the touched rows equals the step with a dense [I + 1, d] Delta (what
  several replicas use) to 1e-6."""
  _assert_rows_step_is_the_dense_step(batch(), STEP_FORMS[form], monkeypatch)


def _assert_rows_step_is_the_dense_step(b, model_kw, monkeypatch):
  """One step of a 2,000-item ASASRec on ``b`` with Delta as the touched
  rows and with a dense Delta (as on several replicas): equal to 1e-6."""
  from asasrec_tf.models import replicas

  def stepped(dense):
    keras.utils.set_random_seed(0)
    model = ASASRec(2000, MAXLEN, hidden_units=D, num_blocks=2,
                    dropout_rate=0.0, **model_kw)
    model.build_for_inputs()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0))
    with monkeypatch.context() as m:
      if dense:
        m.setattr(replicas, "num_replicas", lambda: 2)
      loss = model.train_step(b)["loss"].numpy()
    return loss, [w.numpy() for w in model.weights]

  (loss_rows, rows), (loss_dense, dense) = stepped(False), stepped(True)
  np.testing.assert_allclose(loss_rows, loss_dense, rtol=1e-6)
  for a, d in zip(rows, dense):
    np.testing.assert_allclose(a, d, rtol=1e-6, atol=1e-6)


def test_row_delta_is_the_dense_delta_on_a_mostly_untouched_table():
  keras.utils.set_random_seed(0)
  model = ASASRec(2000, MAXLEN, hidden_units=D, num_blocks=2,
                  dropout_rate=0.0)
  model.build_for_inputs()
  b = batch()
  # the dense reference: Gamma over a zero [I + 1, d] table, normalised per row
  zero = tf.zeros_like(model.item_table)
  with tf.GradientTape() as tape:
    tape.watch(zero)
    loss = model.sequence_loss(b, training=False, input_delta=zero,
                               output_delta=zero)
  gamma = tf.convert_to_tensor(tape.gradient(loss, zero)).numpy()
  norms = np.linalg.norm(gamma, axis=1, keepdims=True)
  expected = 0.5 * gamma / np.maximum(norms, 1e-12)
  delta = model.adversarial_delta(b)
  # only the 9 item ids the batch names, and padding, are held
  assert delta.ids.numpy().tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
  np.testing.assert_allclose(delta.dense(2001).numpy(), expected, rtol=1e-6,
                             atol=1e-6)


# --- the losses beyond the paper: gSASRec's gBCE and full cross-entropy -------

def test_gbce_by_hand():
  from asasrec_tf.models.sasrec import gbce_beta, generalised_bce
  # I = 5 items, k = 2: alpha = 2 / 4 = 0.5; t = 0.5: beta = 0.5 * (0.5 *
  # (1 - 2) + 2) = 0.75. Loss = 0.75 softplus(-1) + softplus(0) + softplus(2)
  # = 0.75 * 0.313262 + 0.693147 + 2.126928 = 3.055022
  assert gbce_beta(2, 5, 0.5) == pytest.approx(0.75)
  assert gbce_beta(2, 5, 0.0) == pytest.approx(1.0)    # t = 0: plain BCE
  assert gbce_beta(2, 5, 1.0) == pytest.approx(0.5)    # t = 1: beta = alpha
  got = generalised_bce(tf.constant([1.0]), tf.constant([[0.0, 2.0]]), 5, 0.5)
  np.testing.assert_allclose(got.numpy(), [3.055022], rtol=1e-5)
  # -log(sigmoid(1)^0.75) is the positive's term
  np.testing.assert_allclose(-np.log((1 / (1 + np.exp(-1.0))) ** 0.75),
                             0.75 * 0.313262, rtol=1e-5)


def _with_k_negatives(b, k, seed=0):
  rng = np.random.default_rng(seed)
  real = b["positives"].numpy() > 0
  neg = rng.integers(1, NUM_ITEMS + 1, size=real.shape + (k,))
  return {**b, "negatives": tf.constant(neg * real[..., None], tf.int32)}


def test_gbce_in_the_model_by_hand_and_bce_at_t0_with_one_negative():
  b = batch()
  # t = 0 and one negative: exactly the BCE of Eq. 5
  np.testing.assert_allclose(
      make(loss="gbce", gbce_t=0.0).sequence_loss(b, training=False).numpy(),
      make().sequence_loss(b, training=False).numpy(), rtol=1e-6)
  model = make(loss="gbce", gbce_t=0.75)
  b3 = _with_k_negatives(b, 3)
  hidden = model(b3["inputs"]).numpy()
  table = model.item_table.numpy()
  mask = b3["positives"].numpy() > 0
  h = hidden[mask]
  pos = np.einsum("nd,nd->n", h, table[b3["positives"].numpy()[mask]])
  neg = np.einsum("nd,nkd->nk", h, table[b3["negatives"].numpy()[mask]])
  alpha = 3 / (NUM_ITEMS - 1)
  beta = alpha * (0.75 * (1 - 1 / alpha) + 1 / alpha)
  expect = (beta * softplus(-pos) + softplus(neg).sum(-1)).mean()
  np.testing.assert_allclose(model.sequence_loss(b3, training=False).numpy(),
                             expect, rtol=1e-5)


@pytest.mark.parametrize("form", ["SASRec", "Eq. 9", "authors' step"])
def test_gbce_from_catalog_logits_is_gbce_from_gathered_rows(form,
                                                             monkeypatch):
  """The two ways gBCE reads its logits (the [N, I] catalog product, or the
  [N, k, d] gathered rows) give one loss and one step: after a training step
  of either, every weight agrees to 1e-6."""
  from asasrec_tf.models import sasrec
  b = _with_k_negatives(batch(), 3)
  kw = dict(loss="gbce", gbce_t=0.75)
  cls = SASRec if form == "SASRec" else ASASRec
  if form != "SASRec":
    kw.update(STEP_FORMS[form])

  def stepped(ratio):
    monkeypatch.setattr(sasrec, "GBCE_CATALOG_RATIO", ratio)
    model = make(cls, **kw)
    # 9 items, k = 3: ratio 0 never scores the catalog, 100 always does
    assert model._gbce_scores_catalog(3) == (ratio > 0)
    loss = model.sequence_loss(b, training=False).numpy()
    model.train_step(b)
    return loss, [w.numpy() for w in model.weights]

  (loss_rows, rows), (loss_catalog, catalog) = stepped(0), stepped(100)
  np.testing.assert_allclose(loss_catalog, loss_rows, rtol=1e-6)
  for a, c in zip(rows, catalog):
    np.testing.assert_allclose(c, a, rtol=1e-6, atol=1e-6)


def test_gbce_reads_the_catalog_when_k_is_a_sizeable_fraction_of_it():
  def scores_catalog(num_items, k, **kw):
    return SASRec(num_items, MAXLEN, loss="gbce", **kw)._gbce_scores_catalog(k)
  # bench_losses.md's two cases with gSASRec's k = 256: ML-1M's 3,706 items
  # (14.5 a negative) from the catalog, Video's 23,715 (92.6) by gathering
  assert scores_catalog(3706, 256)
  assert not scores_catalog(23715, 256)
  assert scores_catalog(4096, 256) and not scores_catalog(4097, 256)
  assert not scores_catalog(9, None)            # k unknown when traced
  # a row-sparse optimizer needs the gathered rows' sparse gradient
  assert not scores_catalog(3706, 256, row_reads=True)


def test_ce_is_softmax_cross_entropy_over_every_item_by_hand():
  model = make(loss="ce")
  b = batch()
  hidden = model(b["inputs"]).numpy()
  table = model.item_table.numpy()
  mask = b["positives"].numpy() > 0
  logits = hidden[mask] @ table[1:].T          # [7 targets, 9 items]; no id 0
  labels = b["positives"].numpy()[mask] - 1
  top = logits.max(1)
  lse = top + np.log(np.exp(logits - top[:, None]).sum(1))
  expect = (lse - logits[np.arange(len(labels)), labels]).mean()
  np.testing.assert_allclose(model.sequence_loss(b, training=False).numpy(),
                             expect, rtol=1e-5)
  clone = SASRec.from_config(model.get_config())
  assert clone.loss_form == "ce"


def test_ce_perturbs_every_item_row_with_gamma_of_the_same_loss():
  """Under 'ce' every item's output embedding gets a gradient, so Delta is a
  dense [I + 1, d] table: norm eps on rows 1..I, 0 on the padding row; and
  it is eps times the normalised gradient of the CE loss itself."""
  model = make(ASASRec, loss="ce", adv_target="output", adv_passes="one")
  b = batch()
  delta = model.adversarial_delta(b)
  assert isinstance(delta, tf.Tensor) and delta.shape == (NUM_ITEMS + 1, D)
  norms = np.linalg.norm(delta.numpy(), axis=1)
  np.testing.assert_allclose(norms[1:], 0.5, rtol=1e-5)
  assert norms[0] == 0.0
  zero = tf.zeros_like(model.item_table)
  with tf.GradientTape() as tape:
    tape.watch(zero)
    loss = model.sequence_loss(b, training=False, input_delta=zero,
                               output_delta=zero)
  gamma = tape.gradient(loss, zero).numpy()
  expect = 0.5 * gamma[1:] / np.linalg.norm(gamma[1:], axis=1, keepdims=True)
  np.testing.assert_allclose(delta.numpy()[1:], expect, rtol=1e-4, atol=1e-6)
  before = model.sequence_loss(b, training=False).numpy()
  out = model.train_step(b)
  assert np.isfinite(out["adv_loss"].numpy())
  assert out["adv_loss"].numpy() > out["clean_loss"].numpy()  # adversarial
  assert model.sequence_loss(b, training=False).numpy() != before


@pytest.mark.parametrize("form", ["Eq. 9", "authors' step"])
def test_gbce_rows_the_batch_touches_give_the_dense_step(form, monkeypatch):
  """gBCE's k negatives per target go through the same touched-rows Delta:
  equal to the dense step to 1e-6 on a 2,000-item table."""
  _assert_rows_step_is_the_dense_step(_with_k_negatives(batch(), 4),
                                      dict(loss="gbce", **STEP_FORMS[form]),
                                      monkeypatch)
