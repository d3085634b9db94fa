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


# 1. Silent wrong states become errors (the eager checks: tests/layers/test_guard.py)

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
    for spec in ksr.sparse_matrices(sparse):
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
