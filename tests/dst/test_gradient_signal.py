"""`dst/gradient_signal.py`: the gradient a grow criterion ranks positions by,
from the gradients a custom loop gives, its loss and batch, or `grow_data`
(a dataset: its first batch); the states of stateful RNNs are kept."""

import re

import numpy as np
import pytest
import keras
import tensorflow as tf

import keras_sparse_rnn as ksr
from keras_sparse_rnn.dst import DynamicSparsity
from keras_sparse_rnn.dst.gradient_signal import check_grow_data

from dst_helpers import BATCH, compile_lm, data, lm, masks_of

X, Y = data()


def _fit(model, callbacks, epochs=3, **kwargs):
    return model.fit(X, Y, batch_size=BATCH, epochs=epochs, verbose=0,
                     shuffle=False, callbacks=callbacks, **kwargs)


# Moved from tests/dst/test_callback.py ------------------------------------------

def test_dataset_grow_data_uses_its_first_batch():
    import tensorflow as tf

    def masks_after(grow_data):
        model = compile_lm(lm())
        cb = DynamicSparsity(0.3, grow="gradient", grow_data=grow_data)
        _fit(model, [cb], epochs=2)
        return masks_of(model)

    # A dataset of two different batches: only the first one ranks the
    # positions, so the masks equal those grown on that batch alone, and
    # differ from those grown on the second one.
    first, second = (X[:8], Y[:8]), (X[8:16], Y[8:16])
    dataset = tf.data.Dataset.from_tensor_slices((X[:16], Y[:16])).batch(8)
    on_dataset = masks_after(dataset)
    for a, b in zip(on_dataset, masks_after(first)):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b)
               for a, b in zip(on_dataset, masks_after(second)))


def test_stateful_rnn_states_survive_the_gradient():
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((6,), batch_size=4, dtype="int32"),
        ksr.SparseEmbedding(24, 8, sparsity=0.5, mask_seed=1),
        ksr.SparseLSTM(8, sparsity=0.7, mask_seed=2, stateful=True,
                       return_sequences=True, name="lstm"),
        ksr.SparseDense(24, sparsity=0.5, mask_seed=3)])
    compile_lm(model)
    model.fit(X, Y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    states = [v.numpy() for v in model.get_layer("lstm").states]
    cb = DynamicSparsity(0.3, grow="gradient", grow_data=(X[:4], Y[:4]))
    cb.set_model(model)
    record = cb.update_topology(drop_fraction=0.3)
    assert record["grown"] > 0
    for a, v in zip(states, model.get_layer("lstm").states):
        np.testing.assert_array_equal(a, v.numpy())


# check_grow_data --------------------------------------------------------------------

def test_check_grow_data_takes_one_batch_or_a_dataset():
    x, y, w = np.zeros((2, 3)), np.zeros(2), np.ones(2)
    assert check_grow_data(None) is None
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(2)
    assert check_grow_data(dataset) is dataset
    for batch in ([x, y], (x, y), (x, y, w), (x,)):
        checked = check_grow_data(batch)
        assert type(checked) is tuple and len(checked) == len(batch)
        assert all(a is b for a, b in zip(checked, batch, strict=True))


@pytest.mark.parametrize("grow_data", [np.zeros((2, 3)), (), (1, 2, 3, 4), {"x": 1}, "xy"])
def test_check_grow_data_refuses_anything_else(grow_data):
    with pytest.raises(ValueError, match=re.escape(
            "grow_data must be an (x, y) or (x, y, sample_weight) tuple of one batch, "
            "or a tf.data.Dataset of such batches, got ")):
        check_grow_data(grow_data)


# Given gradients rank the positions ----------------------------------------------

def _one_matrix():
    """A SparseDense kernel (4, 6) with 12 active weights of magnitudes 1..12
    (in position order), attached to a DynamicSparsity that grows by gradient."""
    keras.backend.clear_session()
    model = keras.Sequential([keras.Input((4,)),
                              ksr.SparseDense(6, sparsity=0.5, mask_seed=0, name="out")])
    kernel = model.get_layer("out").kernel
    mask = model.get_layer("out").kernel_mask.numpy()
    values = np.zeros((4, 6), np.float32)
    values[mask == 1] = np.arange(1, 13)
    kernel.assign(values)
    dst = DynamicSparsity(0.25, prune="magnitude", grow="gradient", schedule="constant",
                          update_every_steps=100)
    dst.attach(model, keras.optimizers.SGD(0.1), total_steps=1000)
    return model, dst, mask


def _expected_mask(mask):
    """The 3 smallest active weights pruned, the 3 inactive positions of the
    largest |gradient| (see `_gradient`) grown."""
    expected = mask.copy()
    expected.flat[np.flatnonzero(mask == 1)[:3]] = 0
    expected.flat[np.flatnonzero(mask == 0)[-3:]] = 1
    return expected


def _gradient(mask):
    """Zero where active, -1, -2, ..., -12 on the inactive positions in order."""
    g = np.zeros((4, 6), np.float32)
    g[mask == 0] = -np.arange(1, 13)
    return g


@pytest.mark.parametrize("form", ["aligned", "pairs"])
def test_given_gradients_grow_the_positions_of_largest_magnitude(form):
    model, dst, mask = _one_matrix()
    kernel, bias = model.trainable_variables
    g = [tf.constant(_gradient(mask)), tf.zeros(6)]
    gradients = g if form == "aligned" else list(zip(g, (kernel, bias)))
    record = dst.update_topology(drop_fraction=0.25, gradients=gradients)
    assert (record["pruned"], record["grown"]) == (3, 3)
    np.testing.assert_array_equal(model.get_layer("out").kernel_mask.numpy(),
                                  _expected_mask(mask))


def test_a_loss_and_a_batch_rank_as_their_gradient_does():
    """The gradient of the loss on the batch (training=False) is the signal."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 4)).astype("float32"), rng.normal(size=(8, 6)).astype("float32")
    loss = keras.losses.MeanSquaredError()

    model, dst, _ = _one_matrix()
    dst.update_topology(drop_fraction=0.25, loss_fn=loss, batch=(x, y))
    from_loss = model.get_layer("out").kernel_mask.numpy()

    model, dst, _ = _one_matrix()
    with tf.GradientTape() as tape:
        value = loss(y, model(x, training=False))
    dst.update_topology(drop_fraction=0.25,
                        gradients=tape.gradient(value, model.trainable_variables))
    np.testing.assert_array_equal(from_loss, model.get_layer("out").kernel_mask.numpy())


def test_misuse_of_the_signal_is_explained():
    model, dst, _ = _one_matrix()
    kernel, bias = model.trainable_variables
    before = model.get_layer("out").kernel_mask.numpy()
    cases = [
        (dict(), "grow='gradient' needs a gradient: give grow_data to the callback, or "
                 "loss_fn and batch (or gradients) to step_end / epoch_end / update_topology"),
        (dict(loss_fn="mse", batch=(X, Y)), "loss_fn must be callable, got 'mse'"),
        (dict(loss_fn=keras.losses.MeanSquaredError(), batch=(X,)),
         "batch must be (x, y) or (x, y, sample_weight), got "),
        (dict(gradients=[(tf.zeros(6), bias)]),
         "gradients has none for the sparse weight 'sequential/out/kernel'"),
        (dict(gradients=[tf.zeros((4, 6))]),
         "gradients must be aligned with model.trainable_variables (2 variables) or be "
         "(gradient, variable) pairs, got a list of 1"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            dst.update_topology(drop_fraction=0.25, **kwargs)
    np.testing.assert_array_equal(model.get_layer("out").kernel_mask.numpy(), before)
