"""Argument checks shared by the public functions and layers.

Each raises `ValueError` naming the argument, the value received and what is
allowed; nothing is clipped.
"""

import math
import numbers
import os


def validate_fraction(value, name, *, include_low=True, include_high=False,
                      verb="be"):
    """Returns `value` as a float if it is a number in the interval between 0
    and 1 (ends included as `include_low` / `include_high` say), else raises.

    `verb` words the message: `"x must be in [0, 1), got 2.0"`, or with
    `verb="return"`, `"x must return a number in [0, 1), got 2.0"`.
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


def validate_sparsity(value, name="sparsity"):
    """Returns `value` as a float if it is a number in [0, 1), else raises."""
    return validate_fraction(value, name)


def validate_seed(value, name="mask_seed"):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(
            f"{name} must be None or a non-negative int, got {value!r}"
        )
    if value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value}")
    return int(value)


def validate_units(value, name="units"):
    return check_int(name, value, minimum=1)


def validate_rate(value, name):
    """A dropout rate: a number in [0, 1)."""
    return validate_sparsity(value, name)


def validate_bool(value, name):
    return check_bool(name, value)


def validate_block(value, name="block"):
    """None, or a pair of positive ints (output, input) such as (1, 4)."""
    if value is None:
        return None
    if (not isinstance(value, (list, tuple)) or len(value) != 2 or any(
            isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1
            for v in value)):
        raise ValueError(
            f"{name} must be None or a pair of positive ints (output, input) "
            f"such as (1, 4), got {value!r}"
        )
    return (int(value[0]), int(value[1]))


def check_int(name, value, minimum=None, maximum=None, allow_none=False):
    """Return `value` as a Python int, or raise a `ValueError`.

    Booleans and non-integral numbers (`2.0`, `"3"`) are refused: nothing is
    silently converted.
    """
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


def check_fraction(name, value):
    """Check a float in [0, 1) (e.g. a validation split)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"{name} must be a float in [0, 1), got {value!r} of type "
            f"{type(value).__name__}"
        )
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a float in [0, 1), got {value}")
    return value


def check_choice(name, value, choices):
    """Check that `value` is one of `choices`."""
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def check_bool(name, value):
    """Check a real `bool` (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise ValueError(
            f"{name} must be True or False, got {value!r} of type "
            f"{type(value).__name__}"
        )
    return value


def check_str(name, value, allow_none=False):
    """Check a non-empty string."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value:
        allowed = "a non-empty str" + (" or None" if allow_none else "")
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def check_path(name, value, allow_none=False):
    """Check a `str`/`os.PathLike` and return it as an expanded `str`.

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


def check_existing_file(name, value):
    """Check a path argument that must name an existing file."""
    value = check_path(name, value)
    if not os.path.isfile(value):
        if os.path.isdir(value):
            raise FileNotFoundError(
                f"{name} must be a file, got the folder {value!r}"
            )
        raise FileNotFoundError(f"{name}: no such file {value!r}")
    return value
