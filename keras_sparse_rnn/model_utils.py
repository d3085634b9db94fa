"""Finding the sparse weights of a model, wherever its layers are nested.

The finder itself is `layers.sparse_matrix.sparse_matrices` (below the
layers, which use it too); this module adds what the callbacks check.
"""

import warnings

import keras

from keras_sparse_rnn.layers.sparse_matrix import sparse_layers, sparse_matrices
from keras_sparse_rnn.validation import check_int

__all__ = ["check_attach", "sparse_layers", "sparse_layers_built",
           "sparse_matrices", "sparse_weight_info", "sparse_weights"]


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
    """Deprecated: `sparse_matrices(model)`, which returns the same list
    of `SparseMatrix` objects."""
    warnings.warn("sparse_weight_info is deprecated: use "
                  "keras_sparse_rnn.sparse_matrices", DeprecationWarning,
                  stacklevel=2)
    return sparse_matrices(model)


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
    return [(m.weight, m.mask) for m in sparse_matrices(model)]
