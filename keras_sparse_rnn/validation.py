"""Argument checks shared by the public functions and layers.

One convention: `check_<kind>(value, name, ...)` returns `value` (as the
Python type the check names) or raises a `ValueError` naming the argument,
the value received and what is allowed; nothing is clipped or silently
converted (`True` is not an int, `"3"` is not a number). Checks of one
domain's own vocabulary live with it and follow the same convention
(`dst.schedules.check_schedule`, `dst.registry.check_redistribution`,
`training_steps.check_start`).
"""

import math
import numbers
import os


def check_int(value, name, *, minimum=None, maximum=None, allow_none=False):
    """`value` as a Python int within `[minimum, maximum]` (either may be
    None), or None when `allow_none`."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(
            f"{name} must be {_int_description(minimum, maximum, allow_none)}, "
            f"got {value!r} of type {type(value).__name__}"
        )
    value = int(value)
    if (minimum is not None and value < minimum) or (
        maximum is not None and value > maximum
    ):
        raise ValueError(
            f"{name} must be {_int_description(minimum, maximum, allow_none)}, "
            f"got {value}"
        )
    return value


def _int_description(minimum, maximum, allow_none):
    if minimum == 1 and maximum is None:
        text = "a positive int"
    elif minimum == 0 and maximum is None:
        text = "a non-negative int"
    elif minimum is not None and maximum is not None:
        text = f"an int in [{minimum}, {maximum}]"
    elif minimum is not None:
        text = f"an int >= {minimum}"
    elif maximum is not None:
        text = f"an int <= {maximum}"
    else:
        text = "an int"
    return text + (" or None" if allow_none else "")


def check_number(value, name, *, minimum=None, maximum=None,
                 exclusive_minimum=False):
    """`value` as a finite float, at least `minimum` (greater, with
    `exclusive_minimum`) and at most `maximum` when they are given."""
    if minimum is not None and maximum is not None:
        low = "(" if exclusive_minimum else "["
        allowed = f"a number in {low}{minimum}, {maximum}]"
    elif minimum is not None:
        allowed = f"a number {'>' if exclusive_minimum else '>='} {minimum}"
    elif maximum is not None:
        allowed = f"a number <= {maximum}"
    else:
        allowed = "a finite number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {allowed}, got {value!r} of type "
                         f"{type(value).__name__}")
    value = float(value)
    if (not math.isfinite(value)
            or (minimum is not None and (value <= minimum if exclusive_minimum
                                         else value < minimum))
            or (maximum is not None and value > maximum)):
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return value


def check_fraction(value, name, *, include_low=True, include_high=False,
                   verb="be"):
    """`value` as a float in the interval between 0 and 1 (ends included as
    `include_low` / `include_high` say; by default [0, 1), e.g. a sparsity
    or a dropout rate).

    `verb` words the message: `"x must be in [0, 1), got 2.0"`, or with
    `verb="return"` (a callable's result), `"x must return a number in
    [0, 1), got 2.0"`.
    """
    interval = f"{'[' if include_low else '('}0, 1{']' if include_high else ')'}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"{name} must {verb} a number in {interval}, got {value!r} "
            f"of type {type(value).__name__}"
        )
    value = float(value)
    above = value >= 0.0 if include_low else value > 0.0
    below = value <= 1.0 if include_high else value < 1.0
    if math.isnan(value) or not (above and below):
        what = "be" if verb == "be" else f"{verb} a number"
        raise ValueError(f"{name} must {what} in {interval}, got {value}")
    return value


def check_seed(value, name="mask_seed"):
    """None, or a non-negative int seed."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(
            f"{name} must be None or a non-negative int, got {value!r}"
        )
    if value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value}")
    return int(value)


def check_block(value, name="block"):
    """None, or a pair of positive ints (output, input): `(1, n)` (blocks of n
    consecutive inputs of one output, as LiteRT runs them, e.g. (1, 4)) or
    `(b, b)` with b > 1 (square blocks of constant fan-in, e.g. (16, 16))."""
    if value is None:
        return None
    if (not isinstance(value, (list, tuple)) or len(value) != 2 or any(
            isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1
            for v in value)):
        raise ValueError(
            f"{name} must be None or a pair of positive ints (output, input) "
            f"such as (1, 4) or (16, 16), got {value!r}"
        )
    value = (int(value[0]), int(value[1]))
    if value[0] != 1 and value[0] != value[1]:
        raise ValueError(
            f"{name} must be (1, n) (blocks along the input, as LiteRT runs "
            f"them) or square (b, b) (blocks of constant fan-in), got {value}")
    return value


def check_bool(value, name):
    """A real `bool` (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise ValueError(
            f"{name} must be True or False, got {value!r} of type "
            f"{type(value).__name__}"
        )
    return value


def check_verbose(value, name="verbose"):
    """A callback's verbosity as Keras takes it: a bool or an int >= 0 (0 or
    False: silent; 1, 2 or True: print), returned as an int."""
    if (not isinstance(value, numbers.Integral)) or value < 0:
        raise ValueError(f"{name} must be a bool or an int >= 0 (0: silent), got "
                         f"{value!r}")
    return int(value)


def check_choice(value, name, choices):
    """One of the strings `choices`."""
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def check_str(value, name, allow_none=False):
    """A non-empty string (or None when `allow_none`)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value:
        allowed = "a non-empty str" + (" or None" if allow_none else "")
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def check_path(value, name, allow_none=False):
    """A `str`/`os.PathLike`, returned as an expanded `str`.

    Existence is not checked here (callers raise `FileNotFoundError`).
    """
    if value is None and allow_none:
        return None
    if not isinstance(value, (str, os.PathLike)) or (
        isinstance(value, str) and not value
    ):
        allowed = "a non-empty str or os.PathLike" + (
            " or None" if allow_none else ""
        )
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return os.path.expanduser(os.fspath(value))


def check_existing_file(value, name):
    """A path that names an existing file (else `FileNotFoundError`)."""
    value = check_path(value, name)
    if not os.path.isfile(value):
        if os.path.isdir(value):
            raise FileNotFoundError(
                f"{name} must be a file, got the folder {value!r}"
            )
        raise FileNotFoundError(f"{name}: no such file {value!r}")
    return value
