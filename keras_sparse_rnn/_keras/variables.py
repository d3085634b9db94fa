"""A subclass of a Keras variable's class whose eager `assign` is checked.

Keras variables have no assignment hook. `checked_class` subclasses the
variable's own class (TensorFlow's `keras.Variable`), so `assign`,
`assign_add` and `assign_sub` (which go through `assign`) call a check
first; `tf.train.Checkpoint`'s restore protocol (`_restore_from_tensors`)
runs inside the given `restoring` context instead.
"""

_classes = {}


def checked_class(cls, before_assign, restoring):
    """The subclass of `cls` whose `assign(value)` calls
    `before_assign(variable, value)` first, and whose checkpoint restore
    runs inside `restoring()`. One class per `cls`."""
    key = (cls, before_assign, restoring)
    checked = _classes.get(key)
    if checked is None:
        def assign(self, value):
            before_assign(self, value)
            return cls.assign(self, value)

        def _restore_from_tensors(self, restored_tensors):
            # `tf.train.Checkpoint` restores each variable on its own.
            with restoring():
                return cls._restore_from_tensors(self, restored_tensors)

        checked = type(f"Masked{cls.__name__}", (cls,),
                       {"assign": assign, "__module__": __name__,
                        "_restore_from_tensors": _restore_from_tensors,
                        "__doc__": f"{cls.__doc__ or ''}\n\nChecked against its mask "
                                   "(`keras_sparse_rnn.layers.guard`)."})
        _classes[key] = checked
    return checked


def make_checked(variable, before_assign, restoring):
    """Makes `variable` an instance of `checked_class(type(variable), ...)`."""
    variable.__class__ = checked_class(type(variable), before_assign, restoring)
