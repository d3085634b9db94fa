"""Tiny models and data shared by the DynamicSparsity tests."""

import numpy as np
import keras

import keras_sparse_rnn as ksr

VOCAB, SEQ, N, BATCH = 24, 6, 32, 4


def data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, VOCAB, size=(N, SEQ)).astype("int32")
    return x, np.roll(x, -1, axis=1)


def lm(block=None, sparsity=0.7, seed=0, units=8, sparse_ends=True):
    """Sparse embedding, sparse LSTM (packed i, f, c, o kernels), sparse
    softmax. Fixed names and seeds: two calls give the same model.

    `sparse_ends=False` makes the embedding and softmax dense: the two LSTM
    kernels (both 8 x 32) then share one compiled update.
    """
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    if sparse_ends:
        emb = ksr.SparseEmbedding(VOCAB, 8, sparsity=0.5, mask_seed=1, name="emb")
        out = ksr.SparseDense(VOCAB, sparsity=0.5, mask_seed=3, block=block,
                              name="softmax")
    else:
        emb = keras.layers.Embedding(VOCAB, 8, name="emb")
        out = keras.layers.Dense(VOCAB, name="softmax")
    return keras.Sequential([
        keras.Input((SEQ,), dtype="int32"),
        emb,
        keras.layers.RNN(
            ksr.SparseLSTMCell(units, sparsity=sparsity, mask_seed=2,
                               block=block, name="cell"),
            return_sequences=True, name="rnn"),
        out,
    ], name="lm")


def compile_lm(model, optimizer=None, jit_compile=False, **kwargs):
    model.compile(
        optimizer or keras.optimizers.Adam(0.02),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile, **kwargs)
    return model


def masks_of(model):
    return [m.numpy().copy() for _, m in ksr.sparse_weights(model)]


def gate_counts(model):
    out = []
    for spec in ksr.sparse_matrices(model):
        m = spec.mask.numpy()
        out.append(m.reshape(-1, spec.gates, m.shape[-1] // spec.gates)
                   .sum(axis=(0, 2)).astype(int).tolist())
    return out


class TopologyChecker(keras.callbacks.Callback):
    """Put after DynamicSparsity: checks each epoch end (after its update)
    that counts are fixed, weights outside the masks are 0, newly active
    weights are 0 and every optimizer slot there is 0."""

    def __init__(self, per_gate=True):
        super().__init__()
        self.per_gate = per_gate
        self.newly_active = 0

    def on_train_begin(self, logs=None):
        self.masks = masks_of(self.model)
        self.counts = gate_counts(self.model)

    def on_epoch_end(self, epoch, logs=None):
        from keras_sparse_rnn.dst import optimizer_slots

        counts = gate_counts(self.model)
        if self.per_gate:
            assert counts == self.counts
        else:
            assert [sum(c) for c in counts] == [sum(c) for c in self.counts]
        new_masks = masks_of(self.model)
        for (w, m), old, new in zip(ksr.sparse_weights(self.model),
                                    self.masks, new_masks):
            assert np.all(w.numpy()[new == 0] == 0)
            newly = (new == 1) & (old == 0)
            self.newly_active += int(newly.sum())
            assert np.all(w.numpy()[newly] == 0)
            for _, slot in optimizer_slots.slot_variables(
                    self.model.optimizer, w):
                assert np.all(slot.numpy()[newly] == 0), slot.name
        self.masks = new_masks
