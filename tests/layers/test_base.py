"""Invariants every sparse layer shares: masks kept through training, saving."""

import json
import numpy as np
import pytest
import keras

from layer_helpers import (
    OPTIMIZERS,
    MaskChecker,
    gru_model,
    lm_data,
    lstm_lm,
    rhn_model,
    sequence_data,
)

from keras_sparse_rnn import SparseDense, SparseLSTMCell, sparse_weights

# The variant trained under each optimizer (a GRU's `reset_after`, an RHN's
# `coupled`) alternates, so that both variants meet several optimizers.
_VARIANT = {"sgd_momentum": True, "adam": False, "adamw": True,
            "rmsprop": False, "adagrad": True}


def _trained_model(layer, variant):
    """(model, loss, data) of one recurrent layer kind."""
    if layer == "lstm":
        return (lstm_lm(),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                lm_data())
    if layer == "gru":
        # use_cudnn=False: on a GPU the cuDNN path would turn XLA off.
        model = gru_model(reset_after=variant, dropout=0.2,
                          recurrent_dropout=0.2, use_cudnn=False)
    else:
        model = rhn_model(coupled=variant, dropout=0.2, recurrent_dropout=0.2)
    return model, "mse", sequence_data()


@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("layer", ["lstm", "gru", "rhn"])
def test_inactive_weights_stay_zero_every_step(layer, optimizer, jit_compile):
    model, loss, (x, y) = _trained_model(layer, _VARIANT[optimizer])
    counts = [int(m.numpy().sum()) for _, m in sparse_weights(model)]
    before = [w.numpy().copy() for w, _ in sparse_weights(model)]
    model.compile(OPTIMIZERS[optimizer](), loss, jit_compile=jit_compile)
    assert model.jit_compile is jit_compile
    checker = MaskChecker()
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0,
                        callbacks=[checker])
    assert checker.steps == 8
    assert np.all(np.isfinite(history.history["loss"]))
    assert [int(m.numpy().sum()) for _, m in sparse_weights(model)] == counts
    # Training really moved the active weights.
    for (w, m), b in zip(sparse_weights(model), before):
        active = m.numpy() == 1
        assert not np.allclose(w.numpy()[active], b[active])


def test_user_constraint_applies_to_active_weights():
    cell = SparseLSTMCell(4, sparsity=0.5, mask_seed=0,
                          kernel_constraint=keras.constraints.NonNeg())
    model = keras.Sequential([keras.Input((3, 2)), keras.layers.RNN(cell),
                              keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(1.0), "mse", jit_compile=True)
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(8, 3, 2)), rng.normal(size=(8, 1)) * 10,
              epochs=3, verbose=0)
    kernel, mask = cell.kernel.numpy(), cell.kernel_mask.numpy()
    assert np.all(kernel >= 0)
    assert np.all(kernel[mask == 0] == 0)
    assert cell.get_config()["kernel_constraint"]["class_name"] == "NonNeg"


def test_save_load_round_trip(tmp_path):
    model = lstm_lm()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = lm_data()
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    for (w1, m1), (w2, m2) in zip(sparse_weights(model), sparse_weights(loaded)):
        assert w1.name == w2.name and m1.name == m2.name
    assert [type(l) for l in loaded.layers] == [type(l) for l in model.layers]
    for a, b in zip(model.layers, loaded.layers):  # as JSON: tuples are lists
        assert json.dumps(a.get_config()) == json.dumps(b.get_config())
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               loaded.predict(x, verbose=0), atol=1e-6)
    # The loaded model keeps its masks through training too.
    loaded.fit(x, y, epochs=1, verbose=0, callbacks=[MaskChecker()])


def test_config_round_trip_and_clone():
    model = lstm_lm(dropout=0.1)
    for layer in model.layers:
        if type(layer) is keras.layers.RNN:
            layer = layer.cell
        config = layer.get_config()
        clone = layer.__class__.from_config(config)
        assert clone.get_config() == config
        assert config["mask_seed"] in (1, 2, 3, 4)
    cloned = keras.models.clone_model(model)
    # Same mask_seed in the config: the same masks.
    for (_, m1), (_, m2) in zip(sparse_weights(model), sparse_weights(cloned)):
        np.testing.assert_array_equal(m1.numpy(), m2.numpy())


def _saved_layer(tmp_path, layer, shape):
    model = keras.Sequential([keras.Input(shape), layer])
    path = tmp_path / "m.keras"
    model.save(path)
    return path


def test_load_rejects_mask_with_wrong_count(tmp_path):
    path = _saved_layer(tmp_path, SparseDense(4, sparsity=0.5, mask_seed=0), (6,))
    # A config asking for another sparsity than the file's masks hold.
    other = keras.Sequential([keras.Input((6,)), SparseDense(4, sparsity=0.25, mask_seed=0)])
    with pytest.raises(ValueError, match=r"the mask has 12 active weights, but the "
                                         r"layer's sparsity 0.25 requires exactly 18"):
        other.load_weights(path)


def test_load_rejects_mask_with_wrong_shape(tmp_path):
    path = _saved_layer(tmp_path, SparseDense(4, sparsity=0.5), (6,))
    other = keras.Sequential([keras.Input((5,)), SparseDense(4, sparsity=0.5)])
    with pytest.raises(ValueError, match=r"the file has shape \(6, 4\), the layer expects \(5, 4\)"):
        other.load_weights(path)


def test_load_rejects_non_binary_mask_and_weights_outside(tmp_path):
    layer = SparseDense(4, sparsity=0.5, mask_seed=0)
    _saved_layer(tmp_path, layer, (6,))
    layer.save_own_variables(saved := {})
    saved = {k: np.array(v) for k, v in saved.items()}  # a file's arrays
    names = [v.name for v in layer._trainable_variables + layer._non_trainable_variables]
    kernel, mask = str(names.index("kernel")), str(names.index("kernel_mask"))
    store = dict(saved, **{mask: saved[mask] * 0.5})
    with pytest.raises(ValueError, match="a mask must hold only 0 and 1"):
        layer.load_own_variables(store)
    store = dict(saved, **{kernel: np.ones((6, 4), np.float32)})
    with pytest.raises(ValueError, match="12 weights of 'kernel' outside the mask are non-zero"):
        layer.load_own_variables(store)
    # Assigning such values directly is refused too (they never reach a file).
    with pytest.raises(ValueError, match="a mask must hold only 0 and 1"):
        layer.kernel_mask.assign(layer.kernel_mask * 0.5)
    with pytest.raises(ValueError, match="12 weights of 'kernel' non-zero outside"):
        layer.kernel.assign(np.ones((6, 4)))
