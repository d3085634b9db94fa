"""The one place that looks through optimizer wrappers.

Keras's `LossScaleOptimizer` (and any wrapper in its style) holds the
optimizer that does the work in `inner_optimizer`: its slots, its class, its
`update_sparse_topology` hook are that one's. A `MultiOptimizer` holds one
inner optimizer per group of variables. Everything in this package that
needs the optimizer behind a wrapper (the slot lookup of
`_keras.optimizer_slots`, the topology hook that `SparseMatrix.replace`
calls, `SNTASGDTrigger`) asks here. Of this package it imports only
`_keras.multi_optimizer` (a `MultiOptimizer`'s private attributes), so the
layers (below DST and the optimizers) can use it.
"""

import keras

from keras_sparse_rnn._keras import multi_optimizer


def wrapper_chain(optimizer):
    """`[optimizer, the optimizer it wraps, ...]`, outermost first (a list
    of one for an optimizer that wraps none; empty for `None`)."""
    chain = []
    while optimizer is not None and all(optimizer is not o for o in chain):
        chain.append(optimizer)
        optimizer = getattr(optimizer, "inner_optimizer", None)
    return chain


def unwrap(optimizer):
    """The innermost optimizer: the one that keeps the slots (`None` for
    `None`)."""
    chain = wrapper_chain(optimizer)
    return chain[-1] if chain else None


def topology_hook(optimizer):
    """The `update_sparse_topology(variable, new_mask, grown)` method of the
    optimizer or of the first optimizer it wraps that has one, else `None`."""
    for opt in wrapper_chain(optimizer):
        if hasattr(opt, "update_sparse_topology"):
            return opt.update_sparse_topology
    return None


def owner(optimizer, variable):
    """The optimizer that trains `variable` and holds its slots: through
    wrappers, and through a `MultiOptimizer` to its inner optimizer for the
    variable (`None` when that one is not built or does not train it)."""
    optimizer = unwrap(optimizer)
    if isinstance(optimizer, keras.optimizers.MultiOptimizer):
        if not optimizer.built:
            return None
        inner = multi_optimizer.inner_optimizer_for(optimizer, variable)
        return None if inner is None else owner(inner, variable)
    return optimizer


def working_optimizers(optimizer):
    """The optimizers that do the work behind `optimizer`: `[unwrap(optimizer)]`,
    or every inner optimizer of a `MultiOptimizer` (empty if it has none)."""
    optimizer = unwrap(optimizer)
    if isinstance(optimizer, keras.optimizers.MultiOptimizer):
        return [o for inner in multi_optimizer.inner_optimizers(optimizer)
                for o in working_optimizers(inner)]
    return [] if optimizer is None else [optimizer]
