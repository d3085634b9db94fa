"""Prune and grow criteria by name: what `DynamicSparsity(prune=, grow=)` takes.

A new DST variant is a criterion function (see `scores` for the contract)
and one `register_*` call:

    def sensitivity_prune(weight, active, reduce):
        return [(active, reduce(tf.abs(weight)) / reduce(tf.ones_like(weight)))]

    register_prune("mean_magnitude", sensitivity_prune)
    DynamicSparsity(prune="mean_magnitude", grow="gradient", grow_data=...)

A new grow signal (what the grow criterion reads as `grow_input`) is a
`grow_inputs.GrowInput` subclass and one `register_grow_input` call; see
`grow_inputs`.

Register before the callback is created; the update is compiled per
criterion name.
"""

import collections

from keras_sparse_rnn.dst import grow_inputs, scores

PruneMethod = collections.namedtuple("PruneMethod", ["name", "fn"])
GrowMethod = collections.namedtuple("GrowMethod", ["name", "fn", "needs"])

#: How counts are kept across the gate blocks of a packed kernel.
REDISTRIBUTIONS = ("none", "gates")

_PRUNE = {}
_GROW = {}
#: Grow inputs by name: what a grow criterion can ask the callback for.
_GROW_INPUTS = {}


def _check_name(name, kind):
    if not isinstance(name, str) or not name:
        raise ValueError(f"A {kind} name must be a non-empty str, "
                         f"got {name!r}")


def register_prune(name, fn, overwrite=False):
    """Registers `fn(weight, active, reduce) -> [(eligible, importance)]`."""
    _check_name(name, "prune criterion")
    if not callable(fn):
        raise ValueError(f"fn must be callable, got {fn!r}")
    if name in _PRUNE and not overwrite:
        raise ValueError(f"A prune criterion named {name!r} is already "
                         "registered; pass overwrite=True to replace it")
    _PRUNE[name] = PruneMethod(name, fn)


def register_grow(name, fn, needs=None, overwrite=False):
    """Registers `fn(grow_input, weight, reduce, seed) -> importance`.

    Args:
        name: the name `DynamicSparsity(grow=...)` takes.
        fn: the criterion (see `scores`).
        needs: the name of the grow input `fn` reads (see
            `register_grow_input`): `None` (nothing), `"gradient"`,
            `"momentum"` or a registered one.
        overwrite: replace an existing criterion of that name.
    """
    _check_name(name, "grow criterion")
    if not callable(fn):
        raise ValueError(f"fn must be callable, got {fn!r}")
    if needs not in _GROW_INPUTS:
        raise ValueError(f"needs must be one of {grow_input_names()}, got "
                         f"{needs!r}")
    if name in _GROW and not overwrite:
        raise ValueError(f"A grow criterion named {name!r} is already "
                         "registered; pass overwrite=True to replace it")
    _GROW[name] = GrowMethod(name, fn, needs)


def register_grow_input(name, cls, overwrite=False):
    """Registers a `grow_inputs.GrowInput` subclass under `name`, for
    `register_grow(..., needs=name)`."""
    _check_name(name, "grow input")
    if not (isinstance(cls, type) and issubclass(cls, grow_inputs.GrowInput)):
        raise ValueError(f"cls must be a subclass of keras_sparse_rnn.dst."
                         f"grow_inputs.GrowInput, got {cls!r}")
    if name in _GROW_INPUTS and not overwrite:
        raise ValueError(f"A grow input named {name!r} is already "
                         "registered; pass overwrite=True to replace it")
    _GROW_INPUTS[name] = cls


def grow_input_names():
    """`None` (no input) and the registered grow input names."""
    return [None] + sorted(n for n in _GROW_INPUTS if n is not None)


def get_grow_input(needs):
    """The `GrowInput` class registered for a grow criterion's `needs`."""
    return _GROW_INPUTS[needs]


def prune_names():
    return sorted(_PRUNE)


def grow_names():
    return sorted(_GROW)


def get_prune(name, arg="prune"):
    if not isinstance(name, str) or name not in _PRUNE:
        raise ValueError(f"{arg} must be one of {prune_names()}, got {name!r}")
    return _PRUNE[name]


def get_grow(name, arg="grow"):
    if not isinstance(name, str) or name not in _GROW:
        raise ValueError(f"{arg} must be one of {grow_names()}, got {name!r}")
    return _GROW[name]


def check_redistribution(value, name="redistribution"):
    """`"none"` or `"gates"`."""
    if not isinstance(value, str) or value not in REDISTRIBUTIONS:
        raise ValueError(f"{name} must be one of {list(REDISTRIBUTIONS)}, got "
                         f"{value!r}")
    return value


_GROW_INPUTS[None] = grow_inputs.NoGrowInput
register_grow_input("gradient", grow_inputs.GradientGrowInput)
register_grow_input("momentum", grow_inputs.MomentumGrowInput)
register_prune("magnitude", scores.magnitude_prune)
register_prune("set", scores.set_prune)
register_grow("random", scores.random_grow)
register_grow("gradient", scores.gradient_grow, needs="gradient")
register_grow("momentum", scores.momentum_grow, needs="momentum")
