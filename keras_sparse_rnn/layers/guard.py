"""Assignments that would put a non-zero weight outside its mask raise.

The optimizer keeps pruned weights at zero (the mask constraint), but a user
can also write variables: `layer.set_weights`, `model.set_weights`,
`variable.assign`, `assign_add`, `assign_sub`. Each sparse weight and its
mask become instances of a subclass of their Keras variable class
(`_keras.variables`) whose `assign` checks, in eager mode, that the pair
stays consistent (`SparseMatrix.check`): the weight zero outside the mask,
the mask 0/1 with the layer's exact active count. Nothing is checked where
the check would cost training time or is the constraint's job:

- in traced code (`tf.function`, the compiled train step): the optimizer's
  constraint re-masks right after its update;
- inside an optimizer's own update in eager mode (`run_eagerly=True`, an
  eager custom loop), for the same reason;
- inside `unchecked()`: the library's one write path,
  `SparseMatrix.replace`, which assigns a mask and its weight together,
  and while `tf.train.Checkpoint` restores variables one by one.

`keras.layers.Layer.set_weights` (what `model.set_weights` runs) assigns the
variables one by one, each weight before its mask: when a weight is assigned
from there, it is checked against the mask value of the same call
(`_keras.callers.pending_set_weights_value`).
"""

import contextlib
import threading

import numpy as np
import tensorflow as tf

from keras_sparse_rnn._keras import callers, variables

_local = threading.local()


@contextlib.contextmanager
def unchecked():
    """Assign weights and masks without the check: only for
    `SparseMatrix.replace` (a pair consistent together) and checkpoint
    restores."""
    depth = getattr(_local, "depth", 0)
    _local.depth = depth + 1
    try:
        yield
    finally:
        _local.depth = depth


def _checking():
    return (not getattr(_local, "depth", 0) and tf.executing_eagerly()
            and not callers.in_optimizer_update())


def _value_of(variable):
    pending = callers.pending_set_weights_value(variable)
    return np.asarray(pending) if pending is not None else variable


def _before_assign(variable, value):
    if not _checking():
        return
    matrix, role = variable._ksr_guard
    if role == "weight":
        matrix.check(value, _value_of(matrix.mask), counts=False, context="assign")
    else:
        matrix.check(_value_of(matrix.weight), value, context="assign")


def guard(matrix):
    """Checks every later eager assignment of a `SparseMatrix`'s weight and
    mask."""
    for variable, role in ((matrix.weight, "weight"), (matrix.mask, "mask")):
        # `assign_add` / `assign_sub` of Keras variables go through `assign`.
        variables.make_checked(variable, _before_assign, unchecked)
        variable._ksr_guard = (matrix, role)
