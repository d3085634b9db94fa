import pytest

from keras_sparse_rnn.step_plan import StepPlan, StepWindow, check_start, check_stop


def test_plan_of_fit_and_attach():
    plan = StepPlan.of_fit({"epochs": 3, "steps": 10})
    assert (plan.total_steps, plan.steps_per_epoch) == (30, 10)
    plan = StepPlan.of_fit({"epochs": 3, "steps": None})
    assert (plan.total_steps, plan.steps_per_epoch) == (None, None)
    assert StepPlan.of_fit(None).total_steps is None
    plan = StepPlan.of_attach(40)
    assert (plan.total_steps, plan.steps_per_epoch) == (40, None)


def test_steps_from_ints_and_fractions():
    plan = StepPlan(30, 10)
    assert plan.step(7, "start") == 7
    assert plan.step(None, "stop") is None
    assert plan.step(0.25, "start") == 8  # round(7.5) to even
    assert plan.step(0.5, "stop") == 15
    with pytest.raises(ValueError, match=r"start=0.5 is a fraction of the planned training, "
                                         r"but the planned number of steps is unknown"):
        StepPlan().step(0.5, "start")


def test_required_total_names_the_source():
    assert StepPlan.of_attach(12).required_total("end_step") == 12
    with pytest.raises(ValueError, match=r"end_step=None needs the number of planned steps, "
                                         r"which attach without total_steps does not know"):
        StepPlan.of_attach(None).required_total("end_step")
    with pytest.raises(ValueError, match=r"which this fit call \(a dataset of unknown length"):
        StepPlan.of_fit({"epochs": 2}).required_total("end_step")


def test_window():
    plan = StepPlan(30, 10)
    assert plan.window(0, None, every_epochs=2) == StepWindow(0, 30, 20)
    assert plan.window(0.1, 0.9, every_steps=5) == StepWindow(3, 27, 5)
    assert StepPlan().window(2, None, every_epochs=1) == StepWindow(2, None, None)
    with pytest.raises(ValueError, match=r"start \(27 steps\) must be before stop \(27 steps\)"):
        plan.window(0.9, 0.9, every_steps=5)


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
