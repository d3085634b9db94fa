"""Assignments that would put a non-zero weight outside its mask raise.

The optimizer keeps pruned weights at zero (the mask constraint), but a user
can also write variables: `layer.set_weights`, `model.set_weights`,
`variable.assign`, `assign_add`, `assign_sub`. Each sparse weight and its
mask get a subclass of their Keras variable class whose `assign` checks, in
eager mode, that the pair stays consistent: the weight zero outside the mask,
the mask 0/1 with the layer's exact active count. Nothing is checked where
the check would cost training time or is the constraint's job:

- in traced code (`tf.function`, the compiled train step): the optimizer's
  constraint re-masks right after its update;
- inside an optimizer's own update in eager mode (`run_eagerly=True`, an
  eager custom loop), for the same reason;
- inside `unchecked()`, where library code assigns a weight and its mask
  together after checking them (loading, topology updates, pruning), and
  while `tf.train.Checkpoint` restores variables one by one.

`keras.layers.Layer.set_weights` (what `model.set_weights` runs) assigns the
variables one by one, each weight before its mask: when a weight is assigned
from there, it is checked against the mask value of the same call.
"""

import contextlib
import sys
import threading

import keras
import numpy as np
import tensorflow as tf

_local = threading.local()
_classes = {}
_LAYER_SET_WEIGHTS = keras.layers.Layer.set_weights.__code__


@contextlib.contextmanager
def unchecked():
    """Assign weights and masks without the check (library code that has
    checked the pair itself, or assigns the mask and the weight in turn)."""
    depth = getattr(_local, "depth", 0)
    _local.depth = depth + 1
    try:
        yield
    finally:
        _local.depth = depth


def _in_optimizer_update():
    from keras.src.backend.common import global_state

    stack = global_state.get_global_attribute("name_scope_stack", default=None) or []
    return any(isinstance(getattr(scope, "caller", None), keras.optimizers.Optimizer)
               for scope in stack)


def _checking():
    return (not getattr(_local, "depth", 0) and tf.executing_eagerly()
            and not _in_optimizer_update())


def _pending_value(variable):
    """The value `keras.layers.Layer.set_weights`, if it is the caller of
    the current assignment, is about to give `variable`; else None."""
    frame = sys._getframe(1)
    for _ in range(5):  # _value_of, _check, assign, (assign_add), caller
        if frame is None or frame.f_code is _LAYER_SET_WEIGHTS:
            break
        frame = frame.f_back
    if frame is None or frame.f_code is not _LAYER_SET_WEIGHTS:
        return None
    variables, values = frame.f_locals.get("layer_weights"), frame.f_locals.get("weights")
    if variables is None or values is None:
        return None
    for v, value in zip(variables, values):
        if v is variable:
            return np.asarray(value)
    return None


def _value_of(variable):
    pending = _pending_value(variable)
    return pending if pending is not None else np.asarray(variable.numpy())


def _check(variable, value):
    layer, name, role = variable._ksr_guard
    spec = layer._sparse_registry.specs[name]
    value = np.asarray(keras.ops.convert_to_numpy(value))
    if role == "weight":
        weight, mask = value, _value_of(spec.mask)
    else:
        mask, weight = value, _value_of(spec.weight)
        layer._check_mask_values(spec, mask)
    outside = int(np.count_nonzero(weight[mask == 0]))
    if outside:
        raise ValueError(
            f"{layer._description()}: this assignment would leave {outside} "
            f"weights of '{name}' non-zero outside its mask "
            f"('{name}_mask', {int(mask.sum())} of {mask.size} active); a "
            "sparse weight must be zero there. Multiply the values by the "
            f"mask first (`layer.{name}_mask`), give the weights and their "
            "masks together (`set_weights` with the list of `get_weights()`), "
            "or turn a trained dense model into a sparse one with "
            "`keras_sparse_rnn.sparsify(model, sparsity)`, which chooses the "
            "masks by magnitude"
        )


def _guarded_class(cls):
    guarded = _classes.get(cls)
    if guarded is None:
        def assign(self, value):
            if _checking():
                _check(self, value)
            return cls.assign(self, value)

        def _restore_from_tensors(self, restored_tensors):
            # `tf.train.Checkpoint` restores each variable on its own, a
            # weight before or after its mask: the pair is consistent once
            # the whole checkpoint (written from a consistent model) is in.
            with unchecked():
                return cls._restore_from_tensors(self, restored_tensors)

        guarded = type(f"Masked{cls.__name__}", (cls,),
                       {"assign": assign, "__module__": __name__,
                        "_restore_from_tensors": _restore_from_tensors,
                        "__doc__": f"{cls.__doc__ or ''}\n\nChecked against its mask "
                                   "(`keras_sparse_rnn.layers.guard`)."})
        _classes[cls] = guarded
    return guarded


def guard(layer, name):
    """Checks every later eager assignment of `layer.<name>` and its mask."""
    spec = layer._sparse_registry.specs[name]
    for variable, role in ((spec.weight, "weight"), (spec.mask, "mask")):
        # `assign_add` / `assign_sub` of Keras variables go through `assign`.
        variable.__class__ = _guarded_class(type(variable))
        variable._ksr_guard = (layer, name, role)
