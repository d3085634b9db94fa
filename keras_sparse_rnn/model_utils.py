"""Finding the sparse weights of a model, wherever its layers are nested."""

import keras

from keras_sparse_rnn.layers.base import SparseLayerMixin
from keras_sparse_rnn.validation import check_int


def sparse_layers(model):
    """The sparse layers and cells of `model` (itself included), nested or not."""
    if not isinstance(model, keras.layers.Layer):
        raise ValueError(
            "model must be a keras.Model or keras.layers.Layer, got "
            f"{type(model).__name__}"
        )
    # `_flatten_layers` walks every tracked sub-layer: RNN cells,
    # StackedRNNCells, Bidirectional, TimeDistributed and nested models.
    return [
        layer for layer in model._flatten_layers(include_self=True, recursive=True)
        if isinstance(layer, SparseLayerMixin)
    ]


def sparse_layers_built(model):
    """Whether every sparse layer of `model` has its masks (is built).

    True for a model without sparse layers (the callers then say so).
    """
    return all(layer.get_sparse_weight_info() for layer in sparse_layers(model))


def check_attach(model, optimizer, total_steps):
    """The arguments of a callback's `attach` (custom training loops);
    returns `total_steps` as an int or None."""
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise ValueError(
            "optimizer must be a keras.optimizers.Optimizer (the one your "
            f"loop calls apply_gradients on), got {optimizer!r:.100}")
    total_steps = check_int(total_steps, "total_steps", minimum=1,
                            allow_none=True)
    if not sparse_layers_built(model):
        raise ValueError(f"model '{model.name}' is not built: call it on a "
                         "batch of data before attach")
    return total_steps


def sparse_weight_info(model):
    """Every `SparseWeight` record (layer, name, weight, mask, gates, kind).

    Raises:
        ValueError: if the model has no built sparse layer.
    """
    layers = sparse_layers(model)
    info = [spec for layer in layers for spec in layer.get_sparse_weight_info()]
    if not info:
        if layers:
            raise ValueError(
                f"model '{model.name}' has sparse layers "
                f"({[l.name for l in layers]}) that are not built yet: call "
                "the model on data or build it first"
            )
        raise ValueError(
            f"model '{model.name}' has no sparse layer: use SparseLSTMCell, "
            "SparseLSTM, SparseRHN, SparseGRU, SparseDense or SparseEmbedding"
        )
    return info


def sparse_weights(model):
    """Returns every `(weight, mask)` variable pair of a model.

    Also finds sparse cells inside `keras.layers.RNN`, `StackedRNNCells`,
    `Bidirectional`, `TimeDistributed` and nested models.

    Args:
        model: a built `keras.Model` or layer.

    Returns:
        A list of `(weight, mask)` pairs of variables.

    Raises:
        ValueError: if the model has no sparse layer (or none is built).
    """
    return [(s.weight, s.mask) for s in sparse_weight_info(model)]
