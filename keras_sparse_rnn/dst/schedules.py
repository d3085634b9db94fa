"""Drop-fraction schedules: how much of each matrix an update replaces.

A schedule is a callable `(update_index, step) -> fraction`: `update_index`
counts the updates done before this one (0, 1, 2, ...), `step` is the number
of optimizer steps done when the update runs. The fraction must be in [0, 1);
0 makes the update a no-op.
"""

import math
import numbers

from keras_sparse_rnn.validation import validate_fraction

CONSTANT = "constant"
COSINE = "cosine"
NAMES = (CONSTANT, COSINE)


def validate_drop_fraction(value, name="drop_fraction"):
    """Returns `value` as a float if it is a number in (0, 1), else raises."""
    return validate_fraction(value, name, include_low=False)


def check_fraction(value, where="schedule"):
    """Checks a fraction a schedule returned: a real number in [0, 1)."""
    return validate_fraction(value, where, verb="return")


class ConstantSchedule:
    """The same drop fraction at every update (SET, Selfish-RNN's start).

    Args:
        drop_fraction: the fraction in (0, 1).

    Example:

    >>> ConstantSchedule(0.3)(update_index=5, step=1000)
    0.3
    """

    def __init__(self, drop_fraction):
        self.drop_fraction = validate_drop_fraction(drop_fraction)

    def __call__(self, update_index, step):
        return self.drop_fraction

    def __repr__(self):
        return f"ConstantSchedule({self.drop_fraction})"


class CosineSchedule:
    """RigL's cosine decay: `zeta_t = zeta_0 / 2 * (1 + cos(pi * t / T))`.

    `t` is the optimizer step of the update and `T` the step at which the
    fraction reaches zero (the callback's `stop`); after `T` it stays 0.
    As in RigL (Evci et al. 2020), `t` counts from the start of training,
    not from the first update.

    Args:
        drop_fraction: `zeta_0`, in (0, 1).
        decay_steps: `T`, a positive int.

    Example:

    >>> s = CosineSchedule(0.4, decay_steps=100)
    >>> s(0, 0), s(1, 50), s(2, 100)
    (0.4, 0.2, 0.0)
    """

    def __init__(self, drop_fraction, decay_steps):
        self.drop_fraction = validate_drop_fraction(drop_fraction)
        if (isinstance(decay_steps, bool)
                or not isinstance(decay_steps, numbers.Integral)
                or decay_steps < 1):
            raise ValueError(
                f"decay_steps must be a positive int, got {decay_steps!r}"
            )
        self.decay_steps = int(decay_steps)

    def __call__(self, update_index, step):
        t = min(max(int(step), 0), self.decay_steps)
        value = 0.5 * self.drop_fraction * (
            1.0 + math.cos(math.pi * t / self.decay_steps))
        # cos(pi) is -1 + 1e-16 in floating point: clean the ends up.
        return round(value, 12)

    def __repr__(self):
        return f"CosineSchedule({self.drop_fraction}, {self.decay_steps})"


def validate_schedule(schedule):
    """`"constant"`, `"cosine"` or a callable, else a `ValueError`."""
    if callable(schedule):
        return schedule
    if schedule in NAMES:
        return schedule
    raise ValueError(
        f"schedule must be one of {list(NAMES)} or a callable "
        f"(update_index, step) -> fraction, got {schedule!r}"
    )


def get(schedule, drop_fraction, decay_steps=None):
    """Resolves a schedule name or callable into a callable.

    Args:
        schedule: `"constant"`, `"cosine"`, or a callable
            `(update_index, step) -> fraction`, returned as it is.
        drop_fraction: the initial fraction `zeta_0`.
        decay_steps: the step where `"cosine"` reaches 0 (required for it).
    """
    schedule = validate_schedule(schedule)
    if callable(schedule):
        return schedule
    if schedule == CONSTANT:
        return ConstantSchedule(drop_fraction)
    if decay_steps is None:
        raise ValueError(
            "schedule='cosine' decays to zero at `stop`: give `stop`, or "
            "train with a known number of steps per epoch"
        )
    return CosineSchedule(drop_fraction, decay_steps)
