"""Running a functional model's graph of layers, op by op.

The streaming export rebuilds a model with each RNN layer replaced by one
step of its cell: it runs the model's graph (Keras's `Functional`, which a
built `Sequential` keeps) with a function of its own in place of each op.
"""

import keras


def graph(model):
    """The `Functional` graph of `model`: itself, or the one a built
    `Sequential` keeps; None for a subclassed or unbuilt model."""
    if isinstance(model, keras.Sequential):
        model = getattr(model, "_functional", None)
    if model is None or not hasattr(model, "_run_through_graph"):
        return None
    return model


def run_through_graph(functional, inputs, call_fn):
    """Runs `functional`'s graph on `inputs`, `call_fn(op, *args,
    **kwargs)` computing each op."""
    return functional._run_through_graph(
        inputs, operation_fn=lambda op: op, call_fn=call_fn)


def takes_training(op):
    """Whether `op.call` takes a `training` argument (Keras passes it)."""
    return bool(getattr(op, "_call_has_training_arg", False))
