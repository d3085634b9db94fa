"""Module-scoped tiny models for the export tests."""

import pytest
import keras

from export_helpers import VOCAB, lm, randomize_biases
from keras_sparse_rnn import SparseDense, SparseEmbedding, SparseLSTM, SparseLSTMCell


@pytest.fixture(scope="module")
def lm_random():
    return lm()


@pytest.fixture(scope="module")
def lm_block():
    return lm(block=(1, 4))


@pytest.fixture(scope="module")
def cell_model():
    """RNN(SparseLSTMCell) on float features, with plain Keras layers."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((None, 4), name="features")
    x = keras.layers.Dense(8, activation="relu")(inputs)
    x = keras.layers.RNN(SparseLSTMCell(12, sparsity=0.5, mask_seed=5),
                         return_sequences=True)(x)
    x = keras.layers.LayerNormalization()(x)
    x = keras.layers.Dropout(0.5)(x)
    outputs = SparseDense(3, sparsity=0.5, mask_seed=6)(x)
    model = keras.Model(inputs, outputs, name="cell_model")
    randomize_biases(model)
    return model


@pytest.fixture(scope="module")
def bidi_classifier():
    """Bidirectional(SparseLSTM) text classifier with mask_zero."""
    keras.utils.set_random_seed(4)
    inputs = keras.Input((None,), dtype="int32", name="tokens")
    x = SparseEmbedding(VOCAB, 8, sparsity=0.5, mask_seed=7,
                        mask_zero=True)(inputs)
    x = keras.layers.Bidirectional(
        SparseLSTM(8, sparsity=0.5, mask_seed=8, return_sequences=True))(x)
    x = keras.layers.LSTM(8)(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name="bidi_classifier")
    randomize_biases(model)
    return model


@pytest.fixture(scope="module")
def classifier():
    """Embedding -> SparseLSTM (last output) -> Dense: streamable."""
    keras.utils.set_random_seed(5)
    inputs = keras.Input((None,), dtype="int32", name="tokens")
    x = SparseEmbedding(VOCAB, 8, sparsity=0.5, mask_seed=9)(inputs)
    x = SparseLSTM(12, sparsity=0.5, mask_seed=10)(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name="classifier")
    randomize_biases(model)
    return model
