import numpy as np
import pytest
import keras

import keras_sparse_rnn as ksr
from keras_sparse_rnn import SparseDense, SparseEmbedding


def test_sparse_dense_matches_masked_matmul():
    layer = SparseDense(5, sparsity=0.6, mask_seed=2, bias_initializer="ones",
                        activation="relu")
    x = np.random.default_rng(0).normal(size=(3, 10)).astype("float32")
    y = layer(x).numpy()
    assert int(layer.kernel_mask.numpy().sum()) == 20
    np.testing.assert_allclose(y, np.maximum(x @ layer.kernel.numpy() + 1, 0), atol=1e-6)
    assert layer.kernel_mask.trainable is False


def test_sparse_dense_zero_sparsity_equals_dense():
    # Random inputs and non-zero biases: a bias or activation dropped, or an
    # input feature ignored, would show.
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 5)).astype("float32")
    dense = keras.layers.Dense(4, activation="tanh",
                               bias_initializer="random_normal")
    sparse = SparseDense(4, sparsity=0.0, activation="tanh")
    dense.build(x.shape)
    sparse.build(x.shape)
    assert int(sparse.kernel_mask.numpy().sum()) == 20  # every weight active
    kernel, bias = dense.get_weights()
    assert np.all(bias != 0)
    sparse.set_weights([kernel, bias])  # the Keras counterpart's list
    expected = np.tanh(x.astype("float64") @ kernel + bias)
    np.testing.assert_allclose(sparse(x), expected, atol=1e-6)
    np.testing.assert_allclose(sparse(x), dense(x), atol=1e-7)


def test_sparse_embedding_lookup_and_mask():
    layer = SparseEmbedding(10, 4, sparsity=0.75, mask_seed=0, mask_zero=True)
    ids = np.array([[1, 2, 0]])
    out = layer(ids).numpy()
    table = layer.embeddings.numpy()
    np.testing.assert_array_equal(out[0], table[[1, 2, 0]])
    assert np.count_nonzero(table) == 10
    assert layer.compute_mask(ids).numpy().tolist() == [[True, True, False]]
    assert "block" not in layer.get_config()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnknownMarkWarning")
def test_sparse_embedding_weights_argument_as_keras(monkeypatch):
    """`weights=` as `keras.layers.Embedding` takes it (an array or a list of
    one), under `set_weights`'s rule: zero outside the mask, else refused."""
    from keras.src import layers as keras_layers
    from keras.src.layers.core import embedding_test

    # Keras's own test of the argument, on a SparseEmbedding of sparsity 0.
    def sparse_embedding(*args, **kwargs):
        return SparseEmbedding(*args, sparsity=0.0, **kwargs)

    monkeypatch.setattr(keras_layers, "Embedding", sparse_embedding)
    embedding_test.EmbeddingTest("test_weights_constructor_arg").test_weights_constructor_arg()
    monkeypatch.undo()

    weights = np.random.default_rng(2).normal(size=(6, 2)).astype("float32")
    mask = SparseEmbedding(6, 2, sparsity=0.5, mask_seed=1)
    mask.build()
    mask = mask.embeddings_mask.numpy()
    for given in (weights * mask, [weights * mask]):
        layer = SparseEmbedding(6, 2, sparsity=0.5, mask_seed=1, weights=given)
        np.testing.assert_array_equal(layer.embeddings.numpy(), weights * mask)
        np.testing.assert_array_equal(layer.embeddings_mask.numpy(), mask)
    # The list of get_weights(): a mask of one's own.
    other = np.roll(mask, 1, axis=0)
    layer = SparseEmbedding(6, 2, sparsity=0.5, mask_seed=1,
                            weights=[weights * other, other])
    np.testing.assert_array_equal(layer.embeddings_mask.numpy(), other)
    np.testing.assert_array_equal(layer.embeddings.numpy(), weights * other)
    with pytest.raises(ValueError, match=r"weights .*6 weights of 'embeddings'"
                       r" outside the mask are non-zero"):
        SparseEmbedding(6, 2, sparsity=0.5, mask_seed=1, weights=weights)
    with pytest.raises(ValueError, match=r"weights .*shape \(6, 2\) from an "
                       r"array of shape \(2, 6\)"):
        SparseEmbedding(6, 2, sparsity=0.0, weights=weights.T)


@pytest.mark.parametrize("sparsity", [0.0, 0.6])
def test_sparse_embedding_matches_numpy_lookup(sparsity):
    rng = np.random.default_rng(3)
    table = rng.normal(size=(12, 5)).astype("float32")
    ids = rng.integers(0, 12, size=(4, 7))
    mask = SparseEmbedding(12, 5, sparsity=sparsity, mask_seed=4)
    mask.build()
    mask = mask.embeddings_mask.numpy()
    layer = SparseEmbedding(12, 5, sparsity=sparsity, mask_seed=4,
                            weights=table * mask)
    assert int(mask.sum()) == round((1 - sparsity) * 60)
    np.testing.assert_array_equal(layer(ids).numpy(), (table * mask)[ids])
    if sparsity == 0.0:
        dense = keras.layers.Embedding(12, 5, weights=table)
        np.testing.assert_array_equal(layer(ids).numpy(), dense(ids).numpy())


@pytest.mark.parametrize("cls,args", [(SparseDense, (4,)), (SparseEmbedding, (5, 4))])
def test_unsupported_keras_features(cls, args):
    with pytest.raises(ValueError, match="does not support lora_rank"):
        cls(*args, lora_rank=2)
    layer = cls(*args)
    layer.build((None, 3) if cls is SparseDense else None)
    with pytest.raises(NotImplementedError, match="cannot be quantized by Keras"):
        layer.quantize("int8")


def test_model_quantize_skips_the_sparse_layers_with_a_warning():
    # As Keras does with a layer it cannot quantize: a warning, the others done.
    model = keras.Sequential([keras.Input((6,), dtype="int32"),
                              SparseEmbedding(20, 8, mask_seed=0),
                              keras.layers.Dense(8),
                              SparseDense(4, mask_seed=1)])
    before = [w.numpy() for w in ksr.sparse_weights(model)[0]]
    with pytest.warns(UserWarning, match="SparseEmbedding '.*' cannot be quantized"):
        model.quantize("int8")
    assert model.layers[1].quantization_mode == "int8"
    assert model.layers[0].quantization_mode is None
    assert model.layers[2].quantization_mode is None
    np.testing.assert_array_equal(ksr.sparse_weights(model)[0][0].numpy(), before[0])


def test_bad_units():
    with pytest.raises(ValueError, match="units must be a positive int, got -1"):
        SparseDense(-1)
    with pytest.raises(ValueError, match="sparsity must be in"):
        SparseEmbedding(5, 2, sparsity=1)
