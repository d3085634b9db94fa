"""`dst/state.py`: what a `DynamicSparsity` callback keeps across restarts
(the last update point, the update count, the ever-active masks, the grow
input's per-matrix state) is saved and restored with the model's weights,
leaves the model alone, and round-trips through `get_state` / `set_state`."""

import re
import warnings

import numpy as np
import pytest
import keras

from keras_sparse_rnn.dst import DynamicSparsity
from keras_sparse_rnn.dst.state import STATE_ATTR

from dst_helpers import BATCH, compile_lm, data, lm, masks_of

X, Y = data()
GROW_DATA = (X[:8], Y[:8])
STATE_KEYS = {"last_point", "update_count", "ever_active", "momentum"}
SHAPES = [(24, 8), (8, 32), (8, 32), (8, 24)]  # embedding, LSTM kernels, softmax


def _fit(model, callbacks, epochs=3, **kwargs):
    return model.fit(X, Y, batch_size=BATCH, epochs=epochs, verbose=0,
                     shuffle=False, callbacks=callbacks, **kwargs)


def _attached(**kwargs):
    """A fresh model and a callback set on it (no training)."""
    optimizer = kwargs.pop("optimizer", None)
    model = compile_lm(lm(), optimizer)
    cb = DynamicSparsity(0.3, **kwargs)
    cb.set_model(model)
    return model, cb


# Moved from tests/dst/test_callback.py ------------------------------------------

@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_state_is_saved_with_the_weights_and_leaves_the_model_alone(tmp_path):
    model = compile_lm(lm())
    n_weights, n_layers = len(model.weights), len(model.layers)
    cb = DynamicSparsity(0.3)
    _fit(model, [cb])
    assert (len(model.weights), len(model.layers)) == (n_weights, n_layers)
    state = cb.get_state()
    # Points at steps 8, 16 done; 24 is the last step: no update there.
    assert (state["last_point"], state["update_count"]) == (2, 2)
    path = str(tmp_path / "m.weights.h5")
    model.save_weights(path)
    model.save(str(tmp_path / "m.keras"))

    other = compile_lm(lm())
    cb2 = DynamicSparsity(0.3)
    cb2.set_model(other)
    assert cb2.get_state()["update_count"] == 0
    other.load_weights(path)
    restored = cb2.get_state()
    assert (restored["last_point"], restored["update_count"]) == (2, 2)
    for a, b in zip(state["ever_active"], restored["ever_active"]):
        np.testing.assert_array_equal(a, b)
    # A plain model loads files that carry the state.
    plain = keras.models.load_model(str(tmp_path / "m.keras"))
    assert not hasattr(plain, STATE_ATTR)
    for a, b in zip(masks_of(plain), masks_of(model)):
        np.testing.assert_array_equal(a, b)

    third = compile_lm(lm())
    cb3 = DynamicSparsity(0.3)
    cb3.set_model(third)
    cb3.set_state(state)
    assert cb3.get_state()["update_count"] == 2
    with pytest.raises(ValueError, match="state must be a dict with keys"):
        cb3.set_state({"update_count": 1})


# get_state / set_state ----------------------------------------------------------

def test_a_fresh_callbacks_state_is_its_models_masks_and_no_update():
    model, cb = _attached()
    state = cb.get_state()
    assert set(state) == STATE_KEYS
    assert (state["last_point"], state["update_count"], state["momentum"]) == (-1, 0, [])
    assert [a.shape for a in state["ever_active"]] == SHAPES
    for a, m in zip(state["ever_active"], masks_of(model), strict=True):
        np.testing.assert_array_equal(a, m)


def test_the_state_needs_a_model():
    for method, args in (("get_state", ()), ("set_state", ({},))):
        with pytest.raises(ValueError, match="The callback has no model yet: call set_model"):
            getattr(DynamicSparsity(0.3), method)(*args)


def test_set_state_then_get_state_gives_it_back():
    _, cb = _attached()
    state = {"last_point": 7, "update_count": 3,
             "ever_active": [np.ones(s, np.float32) for s in SHAPES], "momentum": []}
    cb.set_state(state)
    got = cb.get_state()
    assert (got["last_point"], got["update_count"], got["momentum"]) == (7, 3, [])
    assert len(got["ever_active"]) == len(SHAPES)
    for a in got["ever_active"]:
        np.testing.assert_array_equal(a, np.ones_like(a))


def test_set_state_refuses_a_state_of_another_model_and_changes_nothing():
    _, cb = _attached()
    before = cb.get_state()
    masks = [np.ones(s, np.float32) for s in SHAPES]
    bad = [
        ({"update_count": 1}, re.escape(
            "state must be a dict with keys ['ever_active', 'last_point', "
            "'momentum', 'update_count'], got {'update_count': 1}")),
        (dict(before, ever_active=masks[:2]), re.escape(
            "state has 2 ever-active masks and 0 moving averages; this model "
            "needs 4 and 0")),
        (dict(before, ever_active=[np.ones((2, 2))] + masks[1:]), re.escape(
            "state entry of shape (2, 2) does not fit (24, 8)")),
        (dict(before, momentum=masks), re.escape(
            "state has 4 ever-active masks and 4 moving averages; this model "
            "needs 4 and 0")),
    ]
    for state, message in bad:
        with pytest.raises(ValueError, match=message):
            cb.set_state(state)
    after = cb.get_state()
    assert (after["last_point"], after["update_count"]) == (-1, 0)
    for a, b in zip(before["ever_active"], after["ever_active"], strict=True):
        np.testing.assert_array_equal(a, b)


# The grow input's state ----------------------------------------------------------

def test_the_moving_average_of_snfs_without_first_moment_is_saved_and_restored(tmp_path):
    sgd = lambda: keras.optimizers.SGD(0.5)  # noqa: E731  (no momentum: its own average)
    model, cb = _attached(grow="momentum", grow_data=GROW_DATA, optimizer=sgd())
    fresh = cb.get_state()["momentum"]
    assert [m.shape for m in fresh] == SHAPES
    assert all(not m.any() for m in fresh)
    _fit(model, [cb])
    state = cb.get_state()
    assert state["update_count"] == 2
    assert all(m.any() for m in state["momentum"])
    path = str(tmp_path / "m.weights.h5")
    model.save_weights(path)
    other, cb2 = _attached(grow="momentum", grow_data=GROW_DATA, optimizer=sgd())
    other.load_weights(path)
    restored = cb2.get_state()
    assert (restored["last_point"], restored["update_count"]) == (
        state["last_point"], state["update_count"])
    for key in ("ever_active", "momentum"):
        assert len(restored[key]) == len(state[key]) == 4
        for a, b in zip(state[key], restored[key], strict=True):
            np.testing.assert_array_equal(a, b)


# Files without the state ---------------------------------------------------------

def test_a_file_saved_without_the_callback_loads_and_keeps_the_state(tmp_path):
    path = str(tmp_path / "plain.weights.h5")
    compile_lm(lm()).save_weights(path)
    model, cb = _attached()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.load_weights(path)
    assert not [w for w in caught if "DynamicSparsity state" in str(w.message)]
    state = cb.get_state()
    assert (state["last_point"], state["update_count"]) == (-1, 0)


def test_the_state_is_not_a_layer_of_the_model():
    model = compile_lm(lm())
    layers, weights = list(model.layers), [w.path for w in model.weights]
    cb = DynamicSparsity(0.3)
    cb.set_model(model)
    assert hasattr(model, STATE_ATTR)
    assert list(model.layers) == layers
    assert [w.path for w in model.weights] == weights
