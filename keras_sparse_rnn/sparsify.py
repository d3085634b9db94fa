"""From a trained dense Keras model to the sparse one, in one call."""

import keras

from keras_sparse_rnn.distribution import sparsity_per_matrix
from keras_sparse_rnn.layers import (
    SparseDense,
    SparseEmbedding,
    SparseGRU,
    SparseGRUCell,
    SparseLSTM,
    SparseLSTMCell,
)
from keras_sparse_rnn.layers.sparse_matrix import sparse_matrices
from keras_sparse_rnn.validation import check_block

#: Keras layer (or cell) class -> its sparse counterpart. Exact classes: a
#: subclass of a Keras layer may compute something else.
COUNTERPARTS = {
    keras.layers.LSTM: SparseLSTM,
    keras.layers.GRU: SparseGRU,
    keras.layers.Dense: SparseDense,
    keras.layers.Embedding: SparseEmbedding,
    keras.layers.LSTMCell: SparseLSTMCell,
    keras.layers.GRUCell: SparseGRUCell,
}


def _sparse_copy(layer, block=None):
    """The sparse counterpart of `layer` from its config, dense (sparsity 0:
    all-ones masks) so that the dense weights load as they are, with `block`
    on its kernels (an embedding table has none); None if `layer` has no
    counterpart."""
    cls = COUNTERPARTS.get(type(layer))
    if cls is not None:
        config = layer.get_config()
        if cls in (SparseDense, SparseEmbedding):
            for key in ("lora_rank", "lora_alpha", "quantization_config"):
                if config.get(key) is not None:
                    raise ValueError(
                        f"layer '{layer.name}' uses {key}={config[key]!r}, which "
                        "a sparse layer does not support: merge or remove it first")
                config.pop(key, None)
        config.update(sparsity=0.0, mask_seed=0)
        if block is not None and cls is not SparseEmbedding:
            config["block"] = block
        return cls.from_config(config)
    if type(layer) is keras.layers.Bidirectional:
        forward, backward = (_sparse_copy(layer.forward_layer, block),
                             _sparse_copy(layer.backward_layer, block))
        if forward is None:
            return None
        config = layer.get_config()
        return keras.layers.Bidirectional(
            forward, merge_mode=config["merge_mode"], backward_layer=backward,
            name=layer.name)
    if type(layer) is keras.layers.TimeDistributed:
        inner = _sparse_copy(layer.layer, block)
        return None if inner is None else keras.layers.TimeDistributed(
            inner, name=layer.name)
    if type(layer) is keras.layers.RNN and type(layer.cell) in COUNTERPARTS:
        config = layer.get_config()
        config.pop("cell")
        return keras.layers.RNN(_sparse_copy(layer.cell, block), **config)
    return None


def _copy_weights(dense, sparse):
    """Dense layer's weights into its sparse copy, sub-layer by sub-layer."""
    if isinstance(dense, (keras.layers.Bidirectional,)):
        _copy_weights(dense.forward_layer, sparse.forward_layer)
        _copy_weights(dense.backward_layer, sparse.backward_layer)
    elif isinstance(dense, keras.layers.TimeDistributed):
        _copy_weights(dense.layer, sparse.layer)
    elif type(dense) is keras.layers.RNN:
        sparse.cell.set_weights(dense.cell.get_weights())
    else:
        sparse.set_weights(dense.get_weights())  # the counterpart's list


def sparsify(model, sparsity, distribution="erdos_renyi", per_gate=False,
             exclude=(), block=None):
    """A sparse copy of a trained dense Keras model, masks by magnitude.

    Every `keras.layers.LSTM`, `GRU`, `Dense` and `Embedding` (also inside
    `Bidirectional`, `TimeDistributed`, or as an `LSTMCell` / `GRUCell` in
    `keras.layers.RNN`) becomes its sparse counterpart with the same
    configuration and weights; then each sparse matrix keeps its largest-|w|
    weights at the sparsity `distribution` gives it under the global
    `sparsity` (exact counts, as `distribute_sparsity` computes them) and
    the others become exactly zero. Other layers are cloned as they are.
    The result is ready to fine-tune (`compile`, then `fit`, with or without
    `DynamicSparsity`) or to export.

    Args:
        model: a built Functional or Sequential `keras.Model`.
        sparsity: global fraction of zeros over the sparse matrices, in [0, 1).
        distribution: `"erdos_renyi"` or `"uniform"` (see
            `distribute_sparsity`).
        per_gate: each gate block of an LSTM/GRU kernel its own count.
        exclude: names of layers to keep dense.
        block: `None`, or the `block` of the sparse layers' kernels: `(1, n)`
            (LiteRT's blocks) or `(b, b)` (constant fan-in, which the sparse
            recurrent cells can compute from: see `SparseLSTMCell`). Blocks
            are kept whole, by their mean |w|; embedding tables have none.

    Returns:
        A new, uncompiled `keras.Model`.

    Example:

    >>> dense = keras.Sequential([keras.Input((5,), dtype="int32"),
    ...                           keras.layers.Embedding(50, 8),
    ...                           keras.layers.LSTM(8), keras.layers.Dense(3)])
    >>> sparse = sparsify(dense, 0.75, "uniform")
    >>> [type(l).__name__ for l in sparse.layers]
    ['SparseEmbedding', 'SparseLSTM', 'SparseDense']
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model, got {type(model).__name__}")
    block = check_block(block)
    if not model.built:
        raise ValueError(f"model '{model.name}' is not built: call it on data "
                         "(or give it a keras.Input) first")
    exclude = set(exclude)
    unknown = exclude - {layer.name for layer in model.layers}
    if unknown:
        raise ValueError(f"exclude names {sorted(unknown)}, which are not layers of "
                         f"'{model.name}': {[l.name for l in model.layers]}")
    pairs = []

    def clone(layer):
        new = None if layer.name in exclude else _sparse_copy(layer, block)
        if new is None:
            return layer.__class__.from_config(layer.get_config())
        pairs.append((layer, new))
        return new

    sparse = keras.models.clone_model(model, clone_function=clone)
    if not pairs:
        raise ValueError(
            f"model '{model.name}' has no LSTM, GRU, Dense or Embedding layer to "
            "make sparse")
    converted = {id(new) for _, new in pairs}
    for old, new in zip(model.layers, sparse.layers):  # clone_model keeps the order
        if id(new) not in converted and old.weights:
            new.set_weights(old.get_weights())
    for dense_layer, sparse_layer in pairs:
        _copy_weights(dense_layer, sparse_layer)
    sparsities = sparsity_per_matrix(sparse, sparsity, distribution, per_gate)
    for matrix in sparse_matrices(sparse):  # each through its write path
        matrix.layer.set_mask_by_magnitude(matrix.name, sparsities[matrix.weight.path])
    return sparse

