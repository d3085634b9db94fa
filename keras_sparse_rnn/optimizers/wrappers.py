"""The one place that looks through optimizer wrappers.

Keras's `LossScaleOptimizer` (and any wrapper in its style) holds the
optimizer that does the work in `inner_optimizer`: its slots, its class, its
`update_sparse_topology` hook are that one's. A `MultiOptimizer` holds one
inner optimizer per group of variables. Everything in this package that
needs the optimizer behind a wrapper (the slot lookup of
`dst.optimizer_slots`, the DST callback's topology hook, `SNTASGDTrigger`)
asks here.
"""

import keras


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
        idx = optimizer._var_to_optimizer_idx.get(optimizer._var_key(variable))
        if idx is None:
            return None
        return owner(optimizer._inner_optimizers[idx], variable)
    return optimizer


def working_optimizers(optimizer):
    """The optimizers that do the work behind `optimizer`: `[unwrap(optimizer)]`,
    or every inner optimizer of a `MultiOptimizer` (empty if it has none)."""
    optimizer = unwrap(optimizer)
    if isinstance(optimizer, keras.optimizers.MultiOptimizer):
        return [o for inner in optimizer._inner_optimizers
                for o in working_optimizers(inner)]
    return [] if optimizer is None else [optimizer]
