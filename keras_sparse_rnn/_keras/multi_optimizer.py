"""Keras's `MultiOptimizer`: its inner optimizers, and which one trains a
variable (private attributes: Keras has no public API for either)."""


def inner_optimizers(optimizer):
    """The inner optimizers of a `keras.optimizers.MultiOptimizer`."""
    return list(optimizer._inner_optimizers)


def inner_optimizer_for(optimizer, variable):
    """The inner optimizer of a built `MultiOptimizer` that trains
    `variable`, or `None` if none does."""
    idx = optimizer._var_to_optimizer_idx.get(optimizer._var_key(variable))
    if idx is None:
        return None
    return optimizer._inner_optimizers[idx]
