"""What Keras code is calling us: the library's only stack-frame reads.

Keras offers no hook for these, so they read the caller's frame or Keras's
name-scope stack; tests/test_keras_adapter.py fails when Keras 3 calls
differently:

- `pending_set_weights_value`: `keras.layers.Layer.set_weights` (what
  `model.set_weights` runs) assigns variables one by one, each sparse weight
  before its mask; the guard checks a weight against the mask value of the
  same call.
- `calling_callback_list`: the `CallbackList` of `fit` that runs a callback
  (`callback_order` moves our callbacks before the log readers).
- `in_optimizer_update`: whether an optimizer's update is running (its
  assignments are re-masked by the constraint right after).
"""

import sys

import keras
from keras.src.backend.common import global_state

_LAYER_SET_WEIGHTS = keras.layers.Layer.set_weights.__code__


def in_optimizer_update():
    """Whether the current code runs inside a Keras optimizer's `apply`
    (under its name scope, whose `caller` is the optimizer)."""
    stack = global_state.get_global_attribute("name_scope_stack", default=None) or []
    return any(isinstance(getattr(scope, "caller", None), keras.optimizers.Optimizer)
               for scope in stack)


def pending_set_weights_value(variable, max_depth=6):
    """The value `keras.layers.Layer.set_weights`, if it is a caller (up to
    `max_depth` frames up) of the current code, is about to give
    `variable`; else None."""
    frame = sys._getframe(1)
    for _ in range(max_depth):
        if frame is None or frame.f_code is _LAYER_SET_WEIGHTS:
            break
        frame = frame.f_back
    if frame is None or frame.f_code is not _LAYER_SET_WEIGHTS:
        return None
    variables = frame.f_locals.get("layer_weights")
    values = frame.f_locals.get("weights")
    if variables is None or values is None:
        return None
    for v, value in zip(variables, values):
        if v is variable:
            return value
    return None


def calling_callback_list(callback, skip=2, max_depth=4):
    """The `keras.callbacks.CallbackList` holding `callback` that calls
    the current code (looked for from `skip` frames up), or None."""
    frame = sys._getframe(skip)
    for _ in range(max_depth):
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if isinstance(owner, keras.callbacks.CallbackList) and any(
                c is callback for c in owner.callbacks):
            return owner
        frame = frame.f_back
    return None
