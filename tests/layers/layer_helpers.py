"""What the layer tests share: small models, their data, the optimizers they
train with and a callback that checks the masks after every step."""

import keras
import numpy as np

from keras_sparse_rnn import (
    SparseDense,
    SparseEmbedding,
    SparseGRU,
    SparseLSTM,
    SparseLSTMCell,
    SparseRHN,
    sparse_weights,
)

#: Every optimizer family whose slots the masks must survive.
OPTIMIZERS = {
    "sgd_momentum": lambda: keras.optimizers.SGD(0.5, momentum=0.9),
    "adam": lambda: keras.optimizers.Adam(0.05),
    "adamw": lambda: keras.optimizers.AdamW(0.05, weight_decay=0.1),
    "rmsprop": lambda: keras.optimizers.RMSprop(0.05),
    "adagrad": lambda: keras.optimizers.Adagrad(0.5),
}


class MaskChecker(keras.callbacks.Callback):
    """Checks after every training step that inactive weights are exactly 0."""

    def __init__(self):
        super().__init__()
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        pairs = sparse_weights(self.model)
        assert pairs, "no sparse weights to check"
        for w, m in pairs:
            outside = w.numpy()[m.numpy() == 0]
            assert outside.size, f"{w.path}: no inactive weight to check"
            assert np.all(outside == 0), f"{w.path}: {np.count_nonzero(outside)} non-zero"
        self.steps += 1


def lstm_lm(vocab=20, units=6, seq=5, batch=4, **kwargs):
    """A language model with every sparse layer kind but GRU and RHN; the
    `kwargs` go to its `SparseLSTMCell`."""
    return keras.Sequential([
        keras.Input((seq,), batch_size=batch, dtype="int32"),
        SparseEmbedding(vocab, 8, sparsity=0.5, mask_seed=1),
        keras.layers.RNN(SparseLSTMCell(units, sparsity=0.7, mask_seed=2, **kwargs),
                         return_sequences=True),
        # use_cudnn=False: on a GPU the cuDNN path would turn XLA off.
        SparseLSTM(units, sparsity=0.6, mask_seed=3, return_sequences=True,
                   use_cudnn=False),
        SparseDense(vocab, sparsity=0.5, mask_seed=4),
    ])


def lm_data(vocab=20, n=16, seq=5, seed=0):
    """Token ids and their next tokens, for `lstm_lm`."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, vocab, size=(n, seq)).astype("int32")
    return x, np.roll(x, -1, axis=1)


def gru_model(reset_after=True, **kwargs):
    return keras.Sequential([
        keras.Input((5, 4)),
        SparseGRU(8, sparsity=0.6, mask_seed=3, reset_after=reset_after,
                  return_sequences=True, **kwargs),
        keras.layers.Dense(2),
    ])


def rhn_model(depth=3, units=8, coupled=True, **kwargs):
    return keras.Sequential([
        keras.Input((5, 4)),
        SparseRHN(units, depth=depth, sparsity=0.6, coupled=coupled, mask_seed=3,
                  return_sequences=True, **kwargs),
        keras.layers.Dense(2),
    ])


def sequence_data(n=16, seed=0):
    """Sequences of 5 steps of 4 features and their targets (2 per step),
    for `gru_model` and `rhn_model`."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 5, 4)).astype("float32"),
            rng.normal(size=(n, 5, 2)).astype("float32"))
