import pytest

from keras_sparse_rnn.training_steps import (DEFAULT_EVERY_EPOCHS, StepWindow, TrainingSteps,
                                             check_period, check_start, check_start_stop,
                                             check_stop)


def test_steps_of_fit_and_attach():
    steps = TrainingSteps.of_fit({"epochs": 3, "steps": 10})
    assert (steps.total_steps, steps.steps_per_epoch) == (30, 10)
    steps = TrainingSteps.of_fit({"epochs": 3, "steps": None})
    assert (steps.total_steps, steps.steps_per_epoch) == (None, None)
    assert TrainingSteps.of_fit(None).total_steps is None
    steps = TrainingSteps.of_attach(40)
    assert (steps.total_steps, steps.steps_per_epoch) == (40, None)


def test_steps_from_ints_and_fractions():
    steps = TrainingSteps(30, 10)
    assert steps.step(7, "start") == 7
    assert steps.step(None, "stop") is None
    assert steps.step(0.25, "start") == 8  # round(7.5) to even
    assert steps.step(0.5, "stop") == 15
    with pytest.raises(ValueError, match=r"start=0.5 is a fraction of the planned training, "
                                         r"but the planned number of steps is unknown"):
        TrainingSteps().step(0.5, "start")


def test_required_total_names_the_source():
    assert TrainingSteps.of_attach(12).required_total("end_step") == 12
    with pytest.raises(ValueError, match=r"end_step=None needs the number of planned steps, "
                                         r"which attach without total_steps does not know"):
        TrainingSteps.of_attach(None).required_total("end_step")
    with pytest.raises(ValueError, match=r"which this fit call \(a dataset of unknown length"):
        TrainingSteps.of_fit({"epochs": 2}).required_total("end_step")


def test_window():
    steps = TrainingSteps(30, 10)
    assert steps.window(0, None, every_epochs=2) == StepWindow(0, 30, 20)
    assert steps.window(0.1, 0.9, every_steps=5) == StepWindow(3, 27, 5)
    assert TrainingSteps().window(2, None, every_epochs=1) == StepWindow(2, None, None)
    with pytest.raises(ValueError, match=r"start \(27 steps\) must be before stop \(27 steps\)"):
        steps.window(0.9, 0.9, every_steps=5)


@pytest.mark.parametrize("check,value,message", [
    (check_start, -1, r"start must be an int >= 0 \(a step\) or a float in \[0, 1\) \(a fraction of training\), got -1"),
    (check_start, True, r"start must be an int >= 0 .*got True"),
    (check_start, 1.0, r"start as a fraction of training must be in \[0, 1\), got 1.0"),
    (check_start, "0", r"start must be an int >= 0 .*got '0'"),
    (check_stop, 0, r"stop must be None, an int >= 1 .*got 0"),
    (check_stop, 0.0, r"stop as a fraction of training must be in \(0, 1\], got 0.0"),
])
def test_start_and_stop_checks(check, value, message):
    with pytest.raises(ValueError, match=message):
        check(value)
    assert check_start(0.5) == 0.5 and check_stop(1.0) == 1.0 and check_stop(None) is None


def test_period_and_window_checks():
    """DynamicSparsity's update_every_* and start/stop, checked here once."""
    assert check_period(DEFAULT_EVERY_EPOCHS, None) == (1, None)
    assert repr(DEFAULT_EVERY_EPOCHS) == "1"
    assert check_period(3, None) == (3, None)
    assert check_period(DEFAULT_EVERY_EPOCHS, 5) == (None, 5)  # the default yields
    assert check_period(None, 5) == (None, 5)
    with pytest.raises(ValueError, match="cannot both be given, got "
                                         "update_every_epochs=1 and update_every_steps=5"):
        check_period(1, 5)
    with pytest.raises(ValueError, match="are both None"):
        check_period(None, None)
    assert check_start_stop(2, 10) == (2, 10)
    assert check_start_stop(0.5, 3) == (0.5, 3)  # a fraction and a step: told at fit
    assert check_start_stop(0, None) == (0, None)
    with pytest.raises(ValueError, match="start must be smaller than stop, got start=0.5 and stop=0.5"):
        check_start_stop(0.5, 0.5)
