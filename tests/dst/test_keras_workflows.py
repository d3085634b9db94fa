"""DynamicSparsity and GradualPruning in the workflows Keras users already
have: custom training loops, unbuilt models, the same model built twice in
one process, steps_per_execution (any callback order: tests/test_callback_order.py)."""

import numpy as np
import pytest
import keras
import tensorflow as tf

import keras_sparse_rnn as ksr
from keras_sparse_rnn.dst import DynamicSparsity, optimizer_slots

from dst_helpers import BATCH, SEQ, VOCAB, data, gate_counts, lm, masks_of

X, Y = data()
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _check_topology(model, optimizer, before_masks, before_counts):
    """Counts per gate unchanged, zeros outside the masks, grown weights and
    every optimizer slot at grown positions zero. Returns grown count."""
    assert gate_counts(model) == before_counts
    grown = 0
    for (w, m), old in zip(ksr.sparse_weights(model), before_masks):
        new = m.numpy()
        values = w.numpy()
        assert np.all(values[new == 0] == 0)
        newly = (new == 1) & (old == 0)
        grown += int(newly.sum())
        assert np.all(values[newly] == 0)
        slots = optimizer_slots.slot_variables(optimizer, w)
        assert slots, "the optimizer keeps slots for every weight here"
        for _, slot in slots:
            assert np.all(slot.numpy()[newly] == 0), slot.name
    return grown


# Custom training loops --------------------------------------------------------

@pytest.mark.parametrize("optimizer_name,grow,signal", [
    ("sgd_momentum", "gradient", "loss_and_batch"),
    ("adam", "gradient", "gradients"),
    ("adam", "random", None),
    ("sgd_momentum", "momentum", None),
])
def test_custom_xla_loop_with_topology_updates(optimizer_name, grow, signal):
    model = lm()
    model(X[:BATCH])  # built by a call, never compiled
    optimizer = (keras.optimizers.SGD(0.5, momentum=0.9)
                 if optimizer_name == "sgd_momentum" else keras.optimizers.Adam(0.02))
    dst = DynamicSparsity(0.3, grow=grow, update_every_steps=2, stop=7,
                          schedule="constant", seed=3)
    dst.attach(model, optimizer)
    assert getattr(model, "optimizer", None) is None  # never compiled

    @tf.function(jit_compile=True)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = LOSS(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return grads

    updates, grown = [], 0
    for step in range(8):
        x, y = X[step * BATCH:(step + 1) * BATCH], Y[step * BATCH:(step + 1) * BATCH]
        grads = train_step(x, y)
        masks, counts = masks_of(model), gate_counts(model)
        kwargs = {}
        if signal == "loss_and_batch":
            kwargs = {"loss_fn": LOSS, "batch": (x, y)}
        elif signal == "gradients":
            kwargs = {"gradients": grads}
        record = dst.step_end(**kwargs)
        if record is not None:
            updates.append(record["step"])
            assert record["pruned"] == record["grown"] > 0
            grown += _check_topology(model, optimizer, masks, counts)
    assert updates == [2, 4, 6]  # every 2 steps, before stop=7
    assert grown > 0
    # Weights outside the masks stayed zero through the XLA-compiled steps.
    for w, m in ksr.sparse_weights(model):
        assert np.all(w.numpy()[m.numpy() == 0] == 0)


def test_custom_loop_gradient_growth_equals_fit_with_grow_data():
    """The loss-and-batch signal ranks positions as grow_data does in fit."""
    def run(custom):
        model = lm()
        batch = (X[:8], Y[:8])
        dst = DynamicSparsity(0.3, grow="gradient", update_every_steps=4,
                              schedule="constant",
                              grow_data=None if custom else batch)
        optimizer = keras.optimizers.SGD(0.5)
        if custom:
            model(X[:BATCH])
            dst.attach(model, optimizer, total_steps=8)
            for step in range(8):
                x, y = X[step * BATCH:(step + 1) * BATCH], Y[step * BATCH:(step + 1) * BATCH]
                with tf.GradientTape() as tape:
                    loss = LOSS(y, model(x, training=True))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
                dst.step_end(loss_fn=LOSS, batch=batch)
        else:
            model.compile(optimizer, LOSS)
            model.fit(X, Y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0,
                      callbacks=[dst])
        return [u["step"] for u in dst.updates], masks_of(model)

    steps_a, masks_a = run(custom=True)
    steps_b, masks_b = run(custom=False)
    assert steps_a == steps_b == [4]
    for a, b in zip(masks_a, masks_b):
        np.testing.assert_array_equal(a, b)


def test_custom_loop_misuse_is_explained():
    dst = DynamicSparsity(0.3, grow="gradient", update_every_steps=2)
    with pytest.raises(RuntimeError, match=r"attach\(model, optimizer\) first"):
        dst.step_end()
    with pytest.raises(ValueError, match="is not built: call it on a batch"):
        dst.attach(_unbuilt("subclassed", 0.7), keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match="cosine' decays to zero at `stop`: give `stop`"):
        DynamicSparsity(0.3, update_every_steps=2).attach(lm(), keras.optimizers.SGD(0.1))
    model = lm()
    with pytest.raises(ValueError, match="optimizer must be a keras.optimizers.Optimizer"):
        dst.attach(model, "sgd")
    dst.attach(model, keras.optimizers.SGD(0.1), total_steps=10)
    with pytest.raises(ValueError, match="needs a gradient: give grow_data"):
        dst.update_topology()
    with pytest.raises(ValueError, match="loss_fn and batch go together"):
        dst.step_end(loss_fn=LOSS)
    with pytest.raises(ValueError, match="not both"):
        dst.step_end(loss_fn=LOSS, batch=(X[:4], Y[:4]), gradients=[])
    with pytest.raises(ValueError, match=r"aligned with model.trainable_variables \(\d+ variables\)"):
        dst.update_topology(gradients=[tf.zeros(3)])
    with pytest.raises(ValueError, match="call epoch_end"):
        DynamicSparsity(0.3, schedule="constant").attach(
            model, keras.optimizers.SGD(0.1)).step_end()


def test_custom_loop_gradual_pruning():
    model = lm(sparsity=0.0)
    model(X[:BATCH])
    optimizer = keras.optimizers.SGD(0.1)
    pruning = ksr.GradualPruning(0.8, end_step=6, frequency=2).attach(model, optimizer)
    applied = []
    for step in range(8):
        with tf.GradientTape() as tape:
            loss = LOSS(Y[:BATCH], model(X[:BATCH], training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        applied.append(pruning.step_end())
    # tfmot's steps from 1: pruning at steps 2, 4 and 6 (the step about to run).
    assert [s is not None for s in applied] == [True, False, True, False, True,
                                                False, False, False]
    assert applied[4] == pytest.approx(0.8)
    for spec in ksr.sparse_matrices(model):
        if spec.name in ("kernel", "recurrent_kernel") and spec.layer.name == "cell":
            assert spec.mask.numpy().sum() == ksr.pruning.kept_count(
                spec.mask.numpy().size, 0.8)


# Unbuilt models --------------------------------------------------------------

class SubclassedLM(keras.Model):
    def __init__(self, sparsity=0.7):
        super().__init__()
        self.emb = ksr.SparseEmbedding(VOCAB, 8, sparsity=sparsity, mask_seed=1)
        self.rnn = ksr.SparseLSTM(8, sparsity=sparsity, mask_seed=2,
                                  return_sequences=True)
        self.out = ksr.SparseDense(VOCAB, sparsity=sparsity, mask_seed=3)

    def call(self, x):
        return self.out(self.rnn(self.emb(x)))


def _unbuilt(kind, sparsity):
    if kind == "subclassed":
        return SubclassedLM(sparsity)
    return keras.Sequential([  # no keras.Input
        ksr.SparseEmbedding(VOCAB, 8, sparsity=sparsity, mask_seed=1),
        ksr.SparseLSTM(8, sparsity=sparsity, mask_seed=2, return_sequences=True),
        ksr.SparseDense(VOCAB, sparsity=sparsity, mask_seed=3)])


@pytest.mark.parametrize("kind", ["subclassed", "sequential_without_input"])
def test_unbuilt_models_train_with_the_callbacks(kind):
    model = _unbuilt(kind, 0.7)
    model.compile(keras.optimizers.Adam(0.02), LOSS)
    assert not model.built
    dst = DynamicSparsity(0.3, grow="random")
    history = model.fit(X, Y, batch_size=BATCH, epochs=3, verbose=0, callbacks=[dst])
    assert [u["step"] for u in dst.updates] == [8, 16]
    assert history.history["dst_updates"] == [1, 1, 0]
    for w, m in ksr.sparse_weights(model):
        assert np.all(w.numpy()[m.numpy() == 0] == 0)

    model = _unbuilt(kind, 0.0)
    model.compile(keras.optimizers.SGD(0.1), LOSS)
    pruning = ksr.GradualPruning(0.5, end_step=16, frequency=4)
    history = model.fit(X, Y, batch_size=BATCH, epochs=2, verbose=0,
                        callbacks=[pruning])
    assert history.history["pruning_sparsity"][-1] == pytest.approx(0.5)
    for spec in ksr.sparse_matrices(model):
        m = spec.mask.numpy()
        assert m.sum() == ksr.pruning.kept_count(m.size, 0.5)


# Reproducible in one process ----------------------------------------------------

def test_same_seed_same_masks_when_the_model_is_built_twice_in_one_process():
    def run():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([  # auto-generated names: sequential, sequential_1
            keras.Input((SEQ,), dtype="int32"),
            ksr.SparseEmbedding(VOCAB, 8, sparsity=0.5),
            ksr.SparseLSTM(8, sparsity=0.7, return_sequences=True),
            ksr.SparseDense(VOCAB, sparsity=0.5)])
        model.compile(keras.optimizers.Adam(0.02), LOSS)
        initial = masks_of(model)
        dst = DynamicSparsity(0.3, prune="set", grow="random", seed=5)
        model.fit(X, Y, batch_size=BATCH, epochs=3, verbose=0, shuffle=False,
                  callbacks=[dst])
        return model.name, initial, masks_of(model)

    name_a, initial_a, final_a = run()
    name_b, initial_b, final_b = run()  # no clear_session in between
    assert name_a != name_b
    for a, b in zip(initial_a + final_a, initial_b + final_b):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(i, f) for i, f in zip(initial_a, final_a))


# steps_per_execution ------------------------------------------------------------

def test_steps_per_execution_larger_than_the_period_still_updates():
    model = lm()
    model.compile(keras.optimizers.Adam(0.02), LOSS, steps_per_execution=8)
    dst = DynamicSparsity(0.3, grow="random", update_every_steps=2)
    with pytest.warns(UserWarning, match="at the first chunk end after each due step"):
        model.fit(X, Y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[dst])
    # 8 steps an epoch, one chunk: due at 2, 4, 6 -> done at the end of
    # chunk 1 (step 8); due at 10, 12, 14 -> step 16; none due at the end.
    assert [u["step"] for u in dst.updates] == [8, 16]

