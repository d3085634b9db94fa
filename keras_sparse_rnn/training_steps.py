"""`TrainingSteps`: how many optimizer steps a training will run.

`DynamicSparsity` and `GradualPruning` take their start, stop and period in
steps, or as fractions of the planned training / `None` for its end; both
learn the length of the training once at its start, from `fit`'s parameters
(`epochs * steps per epoch`) or from `attach(..., total_steps)` in a custom
loop (`base_updater.BaseUpdater`), and resolve their arguments against it
here.
"""

import collections
import numbers

from keras_sparse_rnn.validation import check_fraction, check_int

#: The resolved steps of a periodic callback: first step it may act at,
#: the step it stops before (`None`: never), its period in steps (`None`:
#: it counts epochs, the steps per epoch being unknown).
StepWindow = collections.namedtuple("StepWindow", ["start", "stop", "period"])


def _check_step_or_fraction(value, name, first_step, fraction_interval,
                            allow_none):
    """An int step >= `first_step`, or a fraction of training (a float in
    `fraction_interval`, "[0, 1)" or "(0, 1]")."""
    if value is None and allow_none:
        return None
    allowed = (f"{'None, ' if allow_none else ''}an int >= {first_step} "
               f"(a step) or a float in {fraction_interval} (a fraction of "
               "training)")
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if value < first_step:
            raise ValueError(f"{name} must be {allowed}, got {value}")
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return check_fraction(value, f"{name} as a fraction of training",
                              include_low=fraction_interval[0] == "[",
                              include_high=fraction_interval[-1] == "]")
    raise ValueError(f"{name} must be {allowed}, got {value!r}")


def check_start(value):
    """`start`: an int step >= 0, or a fraction of training in [0, 1)."""
    return _check_step_or_fraction(value, "start", 0, "[0, 1)", allow_none=False)


def check_stop(value):
    """`stop`: None, an int step >= 1, or a fraction of training in (0, 1]."""
    return _check_step_or_fraction(value, "stop", 1, "(0, 1]", allow_none=True)


class _EveryEpoch(int):
    """The default `update_every_epochs=1`, told apart from an explicit 1."""

    def __repr__(self):
        return "1"


#: `DynamicSparsity`'s default `update_every_epochs`.
DEFAULT_EVERY_EPOCHS = _EveryEpoch(1)


def check_period(every_epochs, every_steps):
    """`(update_every_epochs, update_every_steps)`: one a positive int, the
    other None; `every_steps` given wins over the default `every_epochs`."""
    if every_steps is not None:
        if every_epochs is not None and every_epochs is not DEFAULT_EVERY_EPOCHS:
            raise ValueError(
                "update_every_epochs and update_every_steps cannot both "
                f"be given, got update_every_epochs={every_epochs!r} "
                f"and update_every_steps={every_steps!r}: give one "
                "of them"
            )
        return None, check_int(every_steps, "update_every_steps", minimum=1)
    if every_epochs is None:
        raise ValueError(
            "update_every_epochs and update_every_steps are both None:"
            " give one of them (a positive int)"
        )
    return check_int(every_epochs, "update_every_epochs", minimum=1), None


def check_start_stop(start, stop):
    """`(start, stop)` checked (`check_start`, `check_stop`), and `start <
    stop` when both are steps or both fractions."""
    start, stop = check_start(start), check_stop(stop)
    if isinstance(stop, type(start)) and stop is not None and start >= stop:
        raise ValueError(
            f"start must be smaller than stop, got start={start!r} "
            f"and stop={stop!r}"
        )
    return start, stop


class TrainingSteps:
    """The planned optimizer steps of one training.

    Args:
        total_steps: the planned number of steps, or `None` if unknown.
        steps_per_epoch: steps per epoch, or `None` (unknown, or a custom
            loop that counts its own epochs).
        source: how to name where the step count came from in an error
            ("this fit call ...").
    """

    def __init__(self, total_steps=None, steps_per_epoch=None,
                 source="attach without total_steps"):
        self.total_steps = total_steps
        self.steps_per_epoch = steps_per_epoch
        self.source = source

    @classmethod
    def of_fit(cls, params):
        """The steps of a `fit` call, from the callback's `params`."""
        params = params or {}
        epochs, steps = params.get("epochs"), params.get("steps")
        return cls(int(epochs) * int(steps) if epochs and steps else None,
                   int(steps) if steps else None,
                   source="this fit call (a dataset of unknown length; or "
                          "pass steps_per_epoch to fit)")

    @classmethod
    def of_attach(cls, total_steps):
        """The steps of a custom loop: `attach(..., total_steps)`."""
        return cls(total_steps, None, source="attach without total_steps")

    def step(self, value, name):
        """`value` in steps: `None` and ints as they are, a float as that
        fraction of the planned steps (which must then be known)."""
        if value is None or isinstance(value, int):
            return value
        if self.total_steps is None:
            raise ValueError(
                f"{name}={value} is a fraction of the planned training, "
                "but the planned number of steps is unknown: give "
                f"{name} in steps (an int), or steps_per_epoch to fit "
                "(total_steps to attach)"
            )
        return int(round(value * self.total_steps))

    def required_total(self, name):
        """The planned steps, for an argument `name=None` meaning "the end of
        training", which then must be known."""
        if not self.total_steps:
            raise ValueError(
                f"{name}=None needs the number of planned steps, which "
                f"{self.source} does not know: pass {name}"
            )
        return self.total_steps

    def window(self, start, stop, every_steps=None, every_epochs=None):
        """`StepWindow` of a periodic callback: `start` and `stop` (ints or
        fractions; `stop=None` is the end of training, `None` if unknown),
        the period from `every_steps`, or `every_epochs` times the steps per
        epoch (`None` when those are unknown: count epochs)."""
        start = self.step(start, "start")
        stop = self.step(stop, "stop")
        stop = self.total_steps if stop is None else stop
        if stop is not None and start >= stop:
            raise ValueError(
                f"start ({start} steps) must be before stop "
                f"({stop} steps): no update would happen"
            )
        if every_steps is not None:
            period = every_steps
        elif self.steps_per_epoch:
            period = every_epochs * self.steps_per_epoch
        else:
            period = None
        return StepWindow(start, stop, period)
