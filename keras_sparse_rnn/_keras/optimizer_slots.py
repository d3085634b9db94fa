"""The one place that reads Keras 3 optimizers' per-weight slots.

(Below the layers, whose one write path, `SparseMatrix.replace`, resets
slots at grown positions; `dst.optimizer_slots` re-exports it.)

Keras 3 optimizers have no public slot API: each keeps lists of slot
variables, one per trainable variable, in attributes of its own
(`SGD.momentums`, `Adam._momentums` / `_velocities`, ...), indexed by
`optimizer._get_variable_index(variable)`. This module knows those
attributes for every built-in optimizer (tests/dst/test_optimizer_slots.py
checks each against the slot variables' names, which Keras derives from the
weight's path), looks through `LossScaleOptimizer` and `MultiOptimizer`
(`optimizers.wrappers.owner`: the optimizer that holds a weight's slots), and for
an optimizer it does not know falls back to any list attribute holding one
variable per trainable variable with the weight's shape.

Only slots of the weight's own shape are per-position and can be reset at
grown positions. Adafactor's factored second moments (one row vector and one
column vector per matrix, `_r` and `_c`) are not per-position; they are
left alone (its `_v`, recomputed from them each step, is reset).
"""

import keras

from keras_sparse_rnn.optimizers.wrappers import owner, working_optimizers

__all__ = ["first_moment", "has_first_moment", "owner", "reset_slots",
           "slot_variables", "trained_variables", "variable_index"]

_OPT = keras.optimizers

# Slot attributes per optimizer class (subclasses inherit them via the MRO).
_SLOT_ATTRS = {
    _OPT.SGD: ("momentums",),
    _OPT.Adam: ("_momentums", "_velocities", "_velocity_hats"),
    _OPT.Nadam: ("_momentums", "_velocities"),
    _OPT.Adamax: ("_m", "_u"),
    _OPT.RMSprop: ("_velocities", "_momentums", "_average_gradients"),
    _OPT.Adagrad: ("_accumulators",),
    _OPT.Adadelta: ("_accumulated_grads", "_accumulated_delta_vars"),
    _OPT.Ftrl: ("_accumulators", "_linears"),
    _OPT.Lamb: ("_momentums", "_velocities"),
    _OPT.Lion: ("_momentums",),
    _OPT.Adafactor: ("_r", "_c", "_v"),
    _OPT.Muon: ("momentums", "adam_velocities"),
    _OPT.ScheduleFreeAdamW: ("_momentums", "_velocities"),
}
# Attributes of the base optimizer: the weights' EMA (`use_ema=True`) and
# the gradient accumulators (`gradient_accumulation_steps`).
_BASE_ATTRS = ("_model_variables_moving_average", "_accumulated_gradients")

# The slot that is an exponential moving average of the gradient (up to a
# constant factor), what SNFS grows by.
_FIRST_MOMENT = {
    _OPT.SGD: "momentums",  # only when momentum != 0
    _OPT.Adam: "_momentums",
    _OPT.Nadam: "_momentums",
    _OPT.Adamax: "_m",
    _OPT.Lamb: "_momentums",
    _OPT.Lion: "_momentums",
}
# Never treated as slot lists by the fallback scan.
_NOT_SLOTS = ("_variables", "_trainable_variables", "_tracker")


def _known_class(optimizer, table):
    for cls in type(optimizer).__mro__:
        if cls in table:
            return cls
    return None


def variable_index(optimizer, variable):
    """The index of `variable` in `optimizer`'s per-variable lists (raises
    KeyError for a variable it does not train)."""
    return optimizer._get_variable_index(variable)


def trained_variables(optimizer):
    """The variables `optimizer` was built with, in its index order."""
    return optimizer._trainable_variables


def _index(optimizer, variable):
    if optimizer is None or not optimizer.built:
        return None
    try:
        return variable_index(optimizer, variable)
    except KeyError:  # not trained by this optimizer (frozen weight)
        return None


def _slot_from(optimizer, attr, index, variable):
    values = getattr(optimizer, attr, None)
    if not isinstance(values, (list, tuple)) or index >= len(values):
        return None
    slot = values[index]
    if slot is None or tuple(slot.shape) != tuple(variable.shape):
        return None
    return slot


def _fallback_attrs(optimizer):
    count = len(trained_variables(optimizer))
    attrs = []
    for attr, value in sorted(vars(optimizer).items()):
        if attr in _NOT_SLOTS or not isinstance(value, (list, tuple)):
            continue
        if len(value) == count and value and all(
                v is None or isinstance(v, keras.Variable) for v in value):
            attrs.append(attr)
    return tuple(attrs)


def slot_variables(optimizer, variable):
    """The per-position slot variables of `variable`, as `(attr, slot)`.

    Args:
        optimizer: a built Keras 3 optimizer (or `None`).
        variable: a trainable variable it optimizes.

    Returns:
        A list of `(attribute name, slot variable)` for every slot of the
        variable's shape: momentum, Adam moments, RMS and Adagrad
        accumulators, FTRL's linear term, the weights' EMA (`use_ema`) and
        gradient accumulators. Empty for a variable the optimizer does not
        train, or an optimizer that is not built.
    """
    opt = owner(optimizer, variable)
    index = _index(opt, variable)
    if index is None:
        return []
    cls = _known_class(opt, _SLOT_ATTRS)
    if cls is not None:
        attrs = _SLOT_ATTRS[cls]
    else:
        attrs = tuple(a for a in _fallback_attrs(opt) if a not in _BASE_ATTRS)
    found = []
    for attr in attrs + _BASE_ATTRS:
        slot = _slot_from(opt, attr, index, variable)
        if slot is not None and all(slot is not s for _, s in found):
            found.append((attr, slot))
    return found


def has_first_moment(optimizer):
    """Whether the optimizer keeps a moving average of the gradient (every
    inner optimizer of a `MultiOptimizer` does)."""
    optimizers = working_optimizers(optimizer)
    return bool(optimizers) and all(_keeps_first_moment(o) for o in optimizers)


def _keeps_first_moment(optimizer):
    cls = _known_class(optimizer, _FIRST_MOMENT)
    if cls is None:
        return False
    if cls is _OPT.SGD:
        return optimizer.momentum != 0
    return True


def first_moment(optimizer, variable):
    """The slot holding the moving average of `variable`'s gradient, or None.

    SGD with momentum (`m = mu * m - lr * g`), Adam, AdamW, Nadam, Lamb
    (`m = beta_1 * m + (1 - beta_1) * g`), Adamax and Lion: up to a sign
    and a scale, an exponential moving average of the gradient, which SNFS
    (sparse momentum) ranks by magnitude.
    """
    opt = owner(optimizer, variable)
    if opt is None or not has_first_moment(opt):
        return None
    index = _index(opt, variable)
    if index is None:
        return None
    return _slot_from(opt, _FIRST_MOMENT[_known_class(opt, _FIRST_MOMENT)],
                      index, variable)


def reset_slots(optimizer, variable, positions):
    """Sets every per-position slot of `variable` to 0 where `positions` is 1.

    Args:
        optimizer: the model's optimizer.
        variable: the weight.
        positions: 0/1 tensor of the weight's shape (the grown positions).

    Returns:
        The attribute names of the slots that were reset.
    """
    names = []
    for attr, slot in slot_variables(optimizer, variable):
        keep = 1 - keras.ops.cast(positions, slot.dtype)
        slot.assign(slot * keep)
        names.append(attr)
    return names
