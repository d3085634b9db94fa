"""Nothing a user calls leaves a weight non-zero outside its mask without an
error; weights move between dense and sparse models; LoRA and empty matrices
are refused; errors name the user's layer."""

import numpy as np
import pytest
import keras
import tensorflow as tf

import keras_sparse_rnn as ksr

X = np.random.default_rng(0).integers(0, 20, (8, 5)).astype("int32")
Y = np.random.default_rng(1).integers(0, 3, (8,)).astype("int32")


def _model(seeds=(0, 1, 2)):
    return keras.Sequential([
        keras.Input((5,), dtype="int32"),
        ksr.SparseEmbedding(20, 8, sparsity=0.5, mask_seed=seeds[0], name="emb"),
        ksr.SparseLSTM(8, sparsity=0.5, mask_seed=seeds[1], name="lstm"),
        ksr.SparseDense(3, sparsity=0.5, mask_seed=seeds[2], name="out")])


def _dense_model():
    keras.utils.set_random_seed(3)
    return keras.Sequential([
        keras.Input((5,), dtype="int32"),
        keras.layers.Embedding(20, 8, name="emb"),
        keras.layers.LSTM(8, name="lstm"),
        keras.layers.Dense(3, name="out")])


def _masked_everywhere(model):
    return all(np.all(w.numpy()[m.numpy() == 0] == 0)
               for w, m in ksr.sparse_weights(model))


# 1. Silent wrong states become errors ------------------------------------------

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


def test_save_refuses_an_inconsistent_model_instead_of_writing_it(tmp_path):
    model = _model()
    out = model.get_layer("out")
    # Only traced code escapes the eager check; the save catches it.
    tf.function(lambda: out.kernel.assign(tf.ones((8, 3))))()
    path = tmp_path / "bad.keras"
    with pytest.raises(ValueError, match="outside the mask are non-zero"):
        model.save(path)
    assert not path.exists() or not _loads(path)


def _loads(path):
    try:
        keras.models.load_model(path)
        return True
    except ValueError:
        return False


# 2. LoRA ------------------------------------------------------------------------

@pytest.mark.parametrize("layer", [ksr.SparseDense(4, sparsity=0.5),
                                   ksr.SparseEmbedding(10, 4, sparsity=0.5)])
def test_lora_is_refused(layer):
    layer.build((None, 6) if isinstance(layer, ksr.SparseDense) else None)
    with pytest.raises(ValueError, match="LoRA is not supported on sparse weights"):
        layer.enable_lora(2)
    assert ksr.sparse_weights(layer)[0][1].numpy().mean() == 0.5


# 3. A sparsity that leaves a matrix empty ----------------------------------------

@pytest.mark.parametrize("make,shape,message", [
    (lambda: ksr.SparseLSTM(8, sparsity=0.999), (2, 3, 4),
     r"SparseLSTM 'sparse_lstm\w*', weight 'kernel': sparsity 0.999 leaves 0 of its 128 weights"),
    (lambda: ksr.SparseDense(3, sparsity=0.99), (2, 4),
     r"weight 'kernel': sparsity 0.99 leaves 0 of its 12 weights active \(shape \(4, 3\)\)"),
    (lambda: ksr.SparseLSTM(8, sparsity={"kernel": [0.5, 0.999, 0.5, 0.5],
                                         "recurrent_kernel": 0.5}), (2, 3, 4),
     r"kernel' gate 1: sparsity 0.999 leaves 0 of its 32 weights"),
])
def test_a_matrix_left_empty_is_refused_at_build(make, shape, message):
    layer = make()
    with pytest.raises(ValueError, match=message):
        layer(np.ones(shape, np.float32))


# 13. Messages name the user's layer and every sparse weight ----------------------

def test_mistyped_sparsity_key_names_the_users_layer_and_every_weight():
    with pytest.raises(ValueError) as info:
        ksr.SparseLSTM(8, sparsity={"kernal": 0.5, "recurrent_kernel": 0.5},
                       name="my_lstm")(np.ones((2, 3, 4), np.float32))
    message = str(info.value)
    assert "SparseLSTM 'my_lstm'" in message and "['kernal']" in message
    assert "['kernel', 'recurrent_kernel']" in message
    with pytest.raises(ValueError, match=r"SparseRHN 'rhn'.*\['kernel', "
                                         r"'recurrent_kernel_0', 'recurrent_kernel_1', "
                                         r"'recurrent_kernel'\]"):
        ksr.SparseRHN(8, depth=2, sparsity={"kernel": 0.5, "recurent_kernel": 0.5},
                      name="rhn")(np.ones((2, 3, 4), np.float32))


# 6. Dense to sparse --------------------------------------------------------------

def test_set_weights_takes_the_keras_counterparts_list():
    dense = _dense_model()
    sparse = _model()
    for name in ("emb", "lstm", "out"):
        d, s = dense.get_layer(name), sparse.get_layer(name)
        masked = [w * m.numpy() if m is not None else w
                  for w, m in zip(d.get_weights(), _masks_for(s))]
        s.set_weights(masked)
        for value, variable in zip(masked, [v for v in s.weights
                                            if not v.name.endswith("_mask")]):
            np.testing.assert_array_equal(value, variable.numpy())
    with pytest.raises(ValueError, match=r"takes the 5 arrays of get_weights\(\).*or "
                                         r"the 3 arrays of its Keras counterpart"):
        sparse.get_layer("lstm").set_weights([np.zeros((8, 32))])


def _masks_for(layer):
    """Per counterpart weight, the mask variable that covers it (or None)."""
    masks = {id(w): m for w, m in ksr.sparse_weights(layer)}
    return [masks.get(id(v)) for v in layer.weights if not v.name.endswith("_mask")]


def test_sparsify_a_trained_dense_model_by_magnitude():
    dense = _dense_model()
    dense.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    dense.fit(X, Y, epochs=1, verbose=0)
    same = ksr.sparsify(dense, 0.0)
    np.testing.assert_allclose(same.predict(X, verbose=0), dense.predict(X, verbose=0),
                               rtol=1e-6, atol=1e-6)
    sparse = ksr.sparsify(dense, 0.8, "erdos_renyi")
    assert [type(l).__name__ for l in sparse.layers] == [
        "SparseEmbedding", "SparseLSTM", "SparseDense"]
    sparsities = ksr.sparsity_per_matrix(sparse, 0.8, "erdos_renyi")
    total = active = 0
    for spec in ksr.sparse_weight_info(sparse):
        w, m = spec.weight.numpy(), spec.mask.numpy()
        assert m.sum() == ksr.masks.expected_active_count(w.shape, sparsities[spec.weight.path])
        assert np.all(w[m == 0] == 0)
        source = _dense_value(dense, sparse, spec)
        np.testing.assert_array_equal(w[m == 1], source[m == 1])  # copied
        if 0 < m.sum() < m.size:  # kept: the largest magnitudes
            assert np.abs(source[m == 1]).min() >= np.abs(source[m == 0]).max()
        total, active = total + m.size, active + m.sum()
    assert active == round(0.2 * total)
    sparse.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    sparse.fit(X, Y, epochs=2, verbose=0, callbacks=[ksr.DynamicSparsity(0.3)])
    assert _masked_everywhere(sparse)


def _dense_value(dense, sparse, spec):
    """The trained dense weight that `spec`'s weight was copied from."""
    top = next(l for l in sparse.layers
               if spec.layer is l or spec.layer is getattr(l, "cell", None))
    layer = dense.get_layer(top.name)
    holder = layer.cell if hasattr(layer, "cell") else layer
    return getattr(holder, spec.name).numpy()


def test_sparsify_wrappers_and_cells_and_its_errors():
    inputs = keras.Input((5,), dtype="int32")
    x = keras.layers.Embedding(20, 8, name="words")(inputs)
    x = keras.layers.Bidirectional(keras.layers.GRU(4, return_sequences=True))(x)
    x = keras.layers.RNN(keras.layers.LSTMCell(4), return_sequences=True)(x)
    x = keras.layers.TimeDistributed(keras.layers.Dense(2))(x)
    outputs = keras.layers.GlobalAveragePooling1D()(x)
    dense = keras.Model(inputs, outputs)
    sparse = ksr.sparsify(dense, 0.0, exclude=["words"])
    np.testing.assert_allclose(sparse.predict(X, verbose=0), dense.predict(X, verbose=0),
                               rtol=1e-5, atol=1e-6)
    names = [type(l).__name__ for l in sparse.layers]
    assert names[1] == "Embedding" and names[2:5] == ["Bidirectional", "RNN", "TimeDistributed"]
    assert type(sparse.layers[2].forward_layer).__name__ == "SparseGRU"
    assert type(sparse.layers[3].cell).__name__ == "SparseLSTMCell"
    with pytest.raises(ValueError, match="exclude names \\['nope'\\]"):
        ksr.sparsify(dense, 0.5, exclude=["nope"])
    plain = keras.Sequential([keras.Input((3,)), keras.layers.ReLU()])
    with pytest.raises(ValueError, match="no LSTM, GRU, Dense or Embedding"):
        ksr.sparsify(plain, 0.5)
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\)"):
        ksr.sparsify(dense, 1.5)
