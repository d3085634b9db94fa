"""Callbacks that add to `logs` must run before the callbacks that read them.

Keras passes one `logs` dict through the callbacks of `fit` in the order the
user listed them: values a callback adds at `on_epoch_end` (`dst_*`,
`pruning_sparsity`) reach only the callbacks after it. `TensorBoard`,
`CSVLogger`, `EarlyStopping`, ... listed before `DynamicSparsity` would never
see them. Keras offers no hook for this, so at `on_train_begin` our callbacks
find the `CallbackList` that calls them (from the caller's frame, in
`_keras.callers`) and move themselves before the first such reader. Where the list cannot be found (a
Keras that calls callbacks differently), they warn once with what to do.
"""

import warnings

import keras

from keras_sparse_rnn._keras import callers

#: Keras callbacks that read epoch logs (History and the progress bar are
#: appended after the user's callbacks, so they see everything already).
LOG_READERS = tuple(
    getattr(keras.callbacks, name) for name in (
        "TensorBoard", "CSVLogger", "EarlyStopping", "ModelCheckpoint",
        "ReduceLROnPlateau", "RemoteMonitor", "LambdaCallback",
        "TerminateOnNaN", "History", "ProgbarLogger")
    if hasattr(keras.callbacks, name)
)

_warned = set()


def move_before_log_consumers(callback):
    """Moves `callback` before the first log reader listed ahead of it.

    Call from `callback.on_train_begin`. Moving an item to an earlier index
    while `CallbackList` iterates keeps every other callback called once.
    Returns True if it moved.
    """
    # The caller's caller: `callback.on_train_begin`'s `CallbackList`.
    callbacks = callers.calling_callback_list(callback, skip=2)
    if callbacks is None:
        key = type(callback).__name__
        if key not in _warned:
            _warned.add(key)
            warnings.warn(
                f"{key} could not check its place among the callbacks: list it "
                "before TensorBoard, CSVLogger, EarlyStopping and "
                "ModelCheckpoint, so that they see the values it logs",
                stacklevel=3)
        return False
    items = callbacks.callbacks
    index = next(i for i, c in enumerate(items) if c is callback)
    first_reader = next((i for i, c in enumerate(items[:index])
                         if isinstance(c, LOG_READERS)), None)
    if first_reader is None:
        return False
    items.insert(first_reader, items.pop(index))
    return True
