import math

import pytest

from keras_sparse_rnn.dst import schedules
from keras_sparse_rnn.validation import check_fraction


def test_constant_schedule():
    s = schedules.ConstantSchedule(0.3)
    assert [s(i, 100 * i) for i in range(3)] == [0.3, 0.3, 0.3]


def test_cosine_schedule_is_rigl_formula():
    s = schedules.CosineSchedule(0.5, decay_steps=1000)
    for t in (0, 1, 250, 500, 999, 1000):
        expected = 0.5 / 2 * (1 + math.cos(math.pi * t / 1000))
        assert s(7, t) == pytest.approx(expected, abs=1e-12)
    assert s(0, 0) == 0.5
    assert s(1, 500) == 0.25
    assert s(2, 1000) == 0.0
    assert s(3, 5000) == 0.0  # stays at zero after T


def test_get_resolves_names_and_callables():
    assert isinstance(schedules.get("constant", 0.2), schedules.ConstantSchedule)
    cos = schedules.get("cosine", 0.2, decay_steps=10)
    assert (cos.drop_fraction, cos.decay_steps) == (0.2, 10)
    fn = lambda index, step: 0.1  # noqa: E731
    assert schedules.get(fn, 0.2) is fn


def test_cosine_needs_decay_steps():
    with pytest.raises(ValueError, match="cosine.*stop"):
        schedules.get("cosine", 0.3)


@pytest.mark.parametrize("value", [0, 1, 1.2, -0.1, float("nan"), "0.3", True])
def test_bad_drop_fraction(value):
    with pytest.raises(ValueError, match=r"drop_fraction must be"):
        schedules.ConstantSchedule(value)
    with pytest.raises(ValueError, match=r"drop_fraction must be"):
        schedules.CosineSchedule(value, decay_steps=10)


def test_bad_schedule_name():
    with pytest.raises(ValueError, match=r"schedule must be one of \['constant', 'cosine'\]"):
        schedules.check_schedule("linear")


@pytest.mark.parametrize("value", [1.0, -0.01, "x", None])
def test_schedule_output_check_rejects(value):
    with pytest.raises(ValueError, match=r"schedule must return a number in \[0, 1\)"):
        check_fraction(value, "schedule", verb="return")


def test_schedule_output_check_accepts_zero():
    assert check_fraction(0, "schedule", verb="return") == 0.0


def test_cosine_bad_decay_steps():
    with pytest.raises(ValueError, match="decay_steps must be a positive int, got 0"):
        schedules.CosineSchedule(0.3, 0)
