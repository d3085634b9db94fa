"""Argument checks shared by the public functions and layers.

Each raises `ValueError` naming the argument, the value received and what is
allowed; nothing is clipped.
"""

import math
import numbers


def validate_sparsity(value, name="sparsity"):
    """Returns `value` as a float if it is a number in [0, 1), else raises."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"{name} must be a number in [0, 1), got {value!r} "
            f"of type {type(value).__name__}"
        )
    value = float(value)
    if math.isnan(value) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return value


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
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def validate_rate(value, name):
    """A dropout rate: a number in [0, 1)."""
    return validate_sparsity(value, name)


def validate_bool(value, name):
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


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
