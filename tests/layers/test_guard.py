"""`layers/guard.py`: an eager assignment that would leave a weight non-zero
outside its mask raises and changes nothing; `unchecked()`, traced code, an
optimizer's own update and checkpoint restores are not checked; a weight
given with its mask (`set_weights`) is checked against that mask."""

import re

import numpy as np
import pytest
import keras
import tensorflow as tf

import keras_sparse_rnn as ksr
from keras_sparse_rnn.layers import guard

X = np.random.default_rng(0).integers(0, 20, (8, 5)).astype("int32")
Y = np.random.default_rng(1).integers(0, 3, (8,)).astype("int32")


def _model(seeds=(0, 1, 2)):
    return keras.Sequential([
        keras.Input((5,), dtype="int32"),
        ksr.SparseEmbedding(20, 8, sparsity=0.5, mask_seed=seeds[0], name="emb"),
        ksr.SparseLSTM(8, sparsity=0.5, mask_seed=seeds[1], name="lstm"),
        ksr.SparseDense(3, sparsity=0.5, mask_seed=seeds[2], name="out")])


def _masked_everywhere(model):
    pairs = ksr.sparse_weights(model)
    assert len(pairs) == 4  # the embedding, the LSTM's two kernels, the output kernel
    return all(np.all(w.numpy()[m.numpy() == 0] == 0) for w, m in pairs)


def _dense(seed=0):
    """A built SparseDense: kernel (4, 3), 6 of its 12 positions active."""
    layer = ksr.SparseDense(3, sparsity=0.5, mask_seed=seed, name="out")
    layer.build((None, 4))
    return layer


OUTSIDE = re.escape(
    "SparseDense 'out': this assignment would leave 6 weights of 'kernel' non-zero "
    "outside its mask ('kernel_mask', 6 of 12 active); a sparse weight must be zero there.")


# Moved from tests/layers/test_weight_transfer.py --------------------------------

def test_assignments_outside_the_mask_raise_and_change_nothing(tmp_path):
    model = _model()
    out = model.get_layer("out")
    before = [w.numpy().copy() for w in model.weights]
    dense_kernel = np.ones((8, 3), np.float32)
    attempts = {
        "layer.set_weights": lambda: out.set_weights([dense_kernel, np.zeros(3)]),
        "variable.assign": lambda: out.kernel.assign(dense_kernel),
        "assign_add": lambda: out.kernel.assign_add(dense_kernel),
        "assign_sub": lambda: out.kernel.assign_sub(dense_kernel),
        "mask.assign": lambda: out.kernel_mask.assign(1 - out.kernel_mask.numpy()),
        "cell variable": lambda: model.get_layer("lstm").cell.kernel.assign(
            np.ones((8, 32), np.float32)),
    }
    weights = model.get_weights()
    index = next(i for i, v in enumerate(model.weights) if v is out.kernel)
    weights[index] = dense_kernel
    attempts["model.set_weights"] = lambda: model.set_weights(weights)
    for name, attempt in attempts.items():
        with pytest.raises(ValueError, match="outside|mask has"):
            attempt()
        for a, b in zip(before, model.weights):
            np.testing.assert_array_equal(a, b.numpy(), err_msg=name)
    path = tmp_path / "m.keras"
    model.save(path)  # still consistent: saves and loads
    keras.models.load_model(path)


def test_error_names_the_layer_the_weight_and_the_fix():
    model = _model()
    with pytest.raises(ValueError) as info:
        model.get_layer("lstm").cell.kernel.assign(np.ones((8, 32), np.float32))
    message = str(info.value)
    assert "SparseLSTM 'lstm'" in message and "'kernel'" in message
    assert "keras_sparse_rnn.sparsify" in message and "128 of 256 active" in message


def test_model_set_weights_of_another_sparse_model_moves_the_masks_too():
    a, b = _model(), _model(seeds=(10, 11, 12))
    assert any(not np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))
    a.set_weights(b.get_weights())
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_allclose(a.predict(X, verbose=0), b.predict(X, verbose=0))


def test_training_in_every_mode_is_not_stopped_by_the_check():
    """The optimizer moves pruned weights, then its constraint re-masks: an
    eager optimizer step (run_eagerly, FTRL's plain assign) is not refused."""
    for optimizer, eager in ((keras.optimizers.Adam(0.01), True),
                             (keras.optimizers.Ftrl(0.1), True),
                             (keras.optimizers.SGD(0.1, momentum=0.9), False)):
        model = _model()
        model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(
            from_logits=True), run_eagerly=eager)
        model.fit(X, Y, epochs=2, verbose=0)
        assert _masked_everywhere(model)
    # An eager custom loop.
    model, optimizer = _model(), keras.optimizers.Adam(0.01)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    for _ in range(2):
        with tf.GradientTape() as tape:
            value = loss(Y, model(X, training=True))
        grads = tape.gradient(value, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
    assert _masked_everywhere(model)




# Assignments of one layer's weight and mask ---------------------------------------

def test_assignments_inside_the_mask_go_through_exactly():
    layer = _dense()
    mask = layer.kernel_mask.numpy()
    values = np.arange(1, 13, dtype="float32").reshape(4, 3) * mask
    layer.kernel.assign(values)
    np.testing.assert_array_equal(layer.kernel.numpy(), values)
    layer.kernel.assign_add(2 * mask)
    np.testing.assert_array_equal(layer.kernel.numpy(), values + 2 * mask)
    layer.kernel.assign_sub(mask)
    np.testing.assert_array_equal(layer.kernel.numpy(), values + mask)
    layer.bias.assign(np.ones(3))  # not a sparse weight: never checked
    np.testing.assert_array_equal(layer.bias.numpy(), np.ones(3))


@pytest.mark.parametrize("how", ["assign", "assign_add", "assign_sub"])
def test_an_assignment_outside_the_mask_raises_with_its_count_and_changes_nothing(how):
    layer = _dense()
    before = layer.kernel.numpy().copy()
    with pytest.raises(ValueError, match=OUTSIDE):
        getattr(layer.kernel, how)(np.ones((4, 3), np.float32))
    np.testing.assert_array_equal(layer.kernel.numpy(), before)


def test_one_weight_outside_is_counted():
    layer = _dense()
    values = layer.kernel.numpy().copy()
    values.flat[np.flatnonzero(layer.kernel_mask.numpy() == 0)[0]] = 0.5
    with pytest.raises(ValueError, match=re.escape(
            "would leave 1 weights of 'kernel' non-zero outside its mask")):
        layer.kernel.assign(values)


def test_a_mask_assignment_is_checked_against_the_weight_and_the_count():
    layer = _dense()
    mask = layer.kernel_mask.numpy()
    with pytest.raises(ValueError, match=re.escape(
            "SparseDense 'out', mask 'kernel_mask': a mask must hold only 0 and 1")):
        layer.kernel_mask.assign(mask * 0.5)
    more = mask.copy()
    more.flat[np.flatnonzero(mask == 0)[0]] = 1
    with pytest.raises(ValueError, match=re.escape(
            "SparseDense 'out', mask 'kernel_mask': the mask has 7 active weights, but "
            "the layer's sparsity 0.5 requires exactly 6 for a weight of shape (4, 3)")):
        layer.kernel_mask.assign(more)
    # Another mask of the right count: refused while the weight is non-zero
    # where it would be inactive, accepted once the weight is zero there.
    layer.kernel.assign(mask)
    other = 1 - mask
    with pytest.raises(ValueError, match=OUTSIDE):
        layer.kernel_mask.assign(other)
    np.testing.assert_array_equal(layer.kernel_mask.numpy(), mask)
    layer.kernel.assign(np.zeros((4, 3)))
    layer.kernel_mask.assign(other)
    np.testing.assert_array_equal(layer.kernel_mask.numpy(), other)


def test_unchecked_allows_any_assignment_and_ends_with_its_block():
    layer = _dense()
    with guard.unchecked():
        layer.kernel.assign(np.ones((4, 3)))
        with guard.unchecked():
            pass
        layer.kernel.assign(2 * np.ones((4, 3)))  # still unchecked after the inner block
    np.testing.assert_array_equal(layer.kernel.numpy(), 2 * np.ones((4, 3)))
    with pytest.raises(ValueError, match="non-zero outside its mask"):
        layer.kernel.assign(3 * np.ones((4, 3)))
    with pytest.raises(KeyError):
        with guard.unchecked():
            raise KeyError("inside")
    with pytest.raises(ValueError, match="non-zero outside its mask"):
        layer.kernel.assign(3 * np.ones((4, 3)))  # checked again after an error


def test_traced_assignments_are_left_to_the_constraint():
    layer = _dense()
    tf.function(lambda: layer.kernel.assign(tf.ones((4, 3))))()
    np.testing.assert_array_equal(layer.kernel.numpy(), np.ones((4, 3)))


def test_layer_set_weights_checks_each_weight_against_the_mask_given_with_it():
    a, b = _dense(seed=0), _dense(seed=1)
    assert not np.array_equal(a.kernel_mask.numpy(), b.kernel_mask.numpy())
    a.kernel.assign(a.kernel_mask.numpy())  # non-zero where b's mask is 0
    a.set_weights(b.get_weights())
    for x, y in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(x, y)
    # b's kernel with another mask it is non-zero outside of: refused, nothing changes.
    c = _dense(seed=2)
    outside = int(np.count_nonzero(b.kernel.numpy()[c.kernel_mask.numpy() == 0]))
    assert outside > 0
    before = [w.copy() for w in a.get_weights()]
    with pytest.raises(ValueError, match=f"{outside} weights of 'kernel' (non-zero )?outside"):
        a.set_weights([b.kernel.numpy(), b.bias.numpy(), c.kernel_mask.numpy()])
    for x, y in zip(before, a.get_weights(), strict=True):
        np.testing.assert_array_equal(x, y)


def test_a_checkpoint_restores_weights_and_masks_one_by_one(tmp_path):
    a, b = _dense(seed=0), _dense(seed=1)
    a.kernel.assign(np.arange(12, dtype="float32").reshape(4, 3) * a.kernel_mask.numpy())
    path = tf.train.Checkpoint(layer=a).write(str(tmp_path / "ckpt"))
    tf.train.Checkpoint(layer=b).read(path).assert_consumed()
    for x, y in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="non-zero outside its mask"):
        b.kernel.assign(np.ones((4, 3)))  # checked again after the restore


def test_guarded_variables_stay_keras_variables_of_the_layer():
    layer = _dense()
    for variable in (layer.kernel, layer.kernel_mask):
        assert isinstance(variable, keras.Variable)
    assert [w.path for w in layer.weights] == ["out/kernel", "out/bias", "out/kernel_mask"]
