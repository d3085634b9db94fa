"""Schedules: the drop fraction of DST updates and the sparsity of pruning.

Drop-fraction schedules say how much of each matrix a `DynamicSparsity`
update replaces; the sparsity schedules (tfmot's `PolynomialDecay`, op for
op, and `gradual_schedule`) say how sparse `GradualPruning` makes the model
at each step.

A drop-fraction schedule is a callable `(update_index, step) -> fraction`: `update_index`
counts the updates done before this one (0, 1, 2, ...), `step` is the number
of optimizer steps done when the update runs. The fraction must be in [0, 1);
0 makes the update a no-op.
"""

import math

import numpy as np
import tensorflow as tf

from keras_sparse_rnn.validation import check_fraction, check_int, check_number

CONSTANT = "constant"
COSINE = "cosine"
NAMES = (CONSTANT, COSINE)


class ConstantSchedule:
    """The same drop fraction at every update (SET, Selfish-RNN's start).

    Args:
        drop_fraction: the fraction in (0, 1).

    Example:

    >>> ConstantSchedule(0.3)(update_index=5, step=1000)
    0.3
    """

    def __init__(self, drop_fraction):
        self.drop_fraction = check_fraction(drop_fraction, "drop_fraction",
                                            include_low=False)

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
        self.drop_fraction = check_fraction(drop_fraction, "drop_fraction",
                                            include_low=False)
        self.decay_steps = check_int(decay_steps, "decay_steps", minimum=1)

    def __call__(self, update_index, step):
        t = min(max(int(step), 0), self.decay_steps)
        value = 0.5 * self.drop_fraction * (
            1.0 + math.cos(math.pi * t / self.decay_steps))
        # cos(pi) is -1 + 1e-16 in floating point: clean the ends up.
        return round(value, 12)

    def __repr__(self):
        return f"CosineSchedule({self.drop_fraction}, {self.decay_steps})"


def check_schedule(schedule):
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
    schedule = check_schedule(schedule)
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


# Sparsity schedules of gradual pruning -------------------------------------

def check_pruning_schedule(final_sparsity, initial_sparsity, begin_step,
                           end_step, power):
    final_sparsity = check_fraction(final_sparsity, "final_sparsity")
    initial_sparsity = check_fraction(initial_sparsity, "initial_sparsity")
    if final_sparsity < initial_sparsity:
        raise ValueError(
            "final_sparsity must be >= initial_sparsity (pruning never "
            f"regrows weights), got final_sparsity={final_sparsity} and "
            f"initial_sparsity={initial_sparsity}"
        )
    begin_step = check_int(begin_step, "begin_step", minimum=0)
    if end_step is not None:
        end_step = check_int(end_step, "end_step", minimum=0)
        if end_step <= begin_step:
            raise ValueError(
                f"end_step must be > begin_step ({begin_step}), got {end_step}"
            )
    power = check_number(power, "power", minimum=0, exclusive_minimum=True)
    return final_sparsity, initial_sparsity, begin_step, end_step, power


def polynomial_decay_sparsity(step, *, final_sparsity, end_step,
                              initial_sparsity=0.0, begin_step=0, power=3):
    """Sparsity of tfmot's `PolynomialDecay` schedule at `step`.

    `s_t = s_f + (s_i - s_f) * (1 - p) ** power` with
    `p = clip((step - begin_step) / (end_step - begin_step), 0, 1)`,
    computed in float32 with the same TensorFlow ops, in the same order, as
    `tfmot.sparsity.keras.PolynomialDecay(initial_sparsity, final_sparsity,
    begin_step, end_step, power)(step)[1]`, so the value is identical to the
    last bit (a NumPy float32 `pow` differs from TensorFlow's in about a
    third of the cases). Before `begin_step` it is `initial_sparsity`, after
    `end_step` `final_sparsity`. Whether pruning happens at `step` at all:
    `last_pruning_step(step, ...) == step`.

    Args:
        step: int >= 0, the training step (tfmot counts from 1 at the first
            training step; `GradualPruning` uses
            `optimizer.iterations + 1` for the step about to run).
        final_sparsity: float in [0, 1), reached at `end_step`.
        end_step: int > `begin_step`.
        initial_sparsity: float in [0, `final_sparsity`]. Defaults to 0.
        begin_step: int >= 0. Defaults to 0.
        power: the exponent, a number > 0. Defaults to 3.

    Returns:
        A Python float holding the float32 value tfmot computes.

    Example:

    >>> polynomial_decay_sparsity(500, final_sparsity=0.8, end_step=1000)
    0.699999988079071
    """
    step = check_int(step, "step", minimum=0)
    final_sparsity, initial_sparsity, begin_step, end_step, power = (
        check_pruning_schedule(final_sparsity, initial_sparsity, begin_step,
                               end_step, power))
    if end_step is None:
        raise ValueError("end_step must be an int > begin_step, got None")
    # tfmot's PolynomialDecay.__call__, op for op (the step is an int64
    # tensor there: its pruning_step variable).
    step = tf.constant(step, dtype=tf.int64)
    p = tf.math.minimum(
        1.0,
        tf.math.maximum(
            0.0,
            tf.math.divide(
                tf.dtypes.cast(step - begin_step, tf.float32),
                end_step - begin_step)))
    sparsity = tf.math.add(
        tf.math.multiply(initial_sparsity - final_sparsity,
                         tf.math.pow(1 - p, power)),
        final_sparsity)
    return float(sparsity.numpy())


def last_pruning_step(step, begin_step, end_step, frequency):
    """The latest step <= `step` at which tfmot's schedules prune, or None.

    They prune at the steps `begin_step <= t <= end_step` where
    `t - begin_step` is a multiple of `frequency`
    (`PruningSchedule._should_prune_in_step`), never at step 0 (tfmot's
    first training step is 1). So the last pruning step is the last such
    multiple before `end_step`: if `end_step - begin_step` is not a multiple
    of `frequency`, the schedule never prunes at `end_step` and
    `final_sparsity` is not reached, in tfmot as here. The schedule prunes
    at `step` itself when this returns `step`.
    """
    last = min(step, end_step)
    if last < begin_step:
        return None
    last = begin_step + (last - begin_step) // frequency * frequency
    return last if last >= 1 else None


def gradual_schedule(total_steps):
    """`(frequency, end_step)` of a gradual pruning over `total_steps`.

    About 100 pruning steps, the last at 75% of training (Zhu & Gupta's
    practice of stopping pruning well before the end), with `end_step` a
    multiple of `frequency`: otherwise tfmot's schedule (and
    `GradualPruning`, which repeats it) never prunes at `end_step` and stops
    short of the final sparsity. The examples and the tfmot baseline use it,
    so that both prune on the same steps.
    """
    total_steps = check_int(total_steps, "total_steps", minimum=1)
    frequency = max(1, total_steps // 100)
    end_step = max(frequency, int(0.75 * total_steps) // frequency * frequency)
    return frequency, end_step


def mean_density(final_sparsity, planned_steps, steps_done):
    """Mean density over the steps trained of a `gradual_schedule` run.

    The cubic schedule from dense to `final_sparsity` over `planned_steps`
    (`gradual_schedule(planned_steps)`): the mask of pruning step t is in
    effect from step t (tfmot counts steps from 1) to the next pruning step.
    Every matrix is pruned to the same sparsity, so the run's training FLOPs
    are about the dense ones times this (float64 arithmetic; tfmot's float32
    rounding is negligible). `1.0` when no step was trained.
    """
    final_sparsity = check_fraction(final_sparsity, "final_sparsity")
    steps_done = check_int(steps_done, "steps_done", minimum=0)
    if steps_done == 0:
        return 1.0
    frequency, end_step = gradual_schedule(planned_steps)
    t = np.arange(1, steps_done + 1)
    last = np.minimum(t, end_step) // frequency * frequency
    s = np.where(last >= 1, final_sparsity * (1 - (1 - last / end_step) ** 3), 0.0)
    return float(np.mean(1.0 - s))
