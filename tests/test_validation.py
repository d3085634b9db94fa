"""The argument checks: each returns the value or names what is wrong and
what would be right; nothing is converted or clipped."""

import pathlib

import numpy as np
import pytest

from keras_sparse_rnn import validation as v


@pytest.mark.parametrize("call,message", [
    (lambda: v.check_int(0, "units", minimum=1), r"^units must be a positive int, got 0$"),
    (lambda: v.check_int(2.0, "units", minimum=1),
     r"^units must be a positive int, got 2.0 of type float$"),
    (lambda: v.check_int(True, "seed", minimum=0),
     r"^seed must be a non-negative int, got True of type bool$"),
    (lambda: v.check_int(9, "k", minimum=2, maximum=8), r"^k must be an int in \[2, 8\], got 9$"),
    (lambda: v.check_int(2, "max_tokens", minimum=3, allow_none=True),
     r"^max_tokens must be an int >= 3 or None, got 2$"),
    (lambda: v.check_int("3", "n"), r"^n must be an int, got '3' of type str$"),
    (lambda: v.check_number(float("inf"), "bias"), r"^bias must be a finite number, got inf$"),
    (lambda: v.check_number(0, "power", minimum=0, exclusive_minimum=True),
     r"^power must be a number > 0, got 0.0$"),
    (lambda: v.check_number(1.5, "momentum", minimum=0, maximum=1),
     r"^momentum must be a number in \[0, 1\], got 1.5$"),
    (lambda: v.check_number(None, "x", minimum=1), r"^x must be a number >= 1, got None of type NoneType$"),
    (lambda: v.check_fraction(1.2, "sparsity"), r"^sparsity must be in \[0, 1\), got 1.2$"),
    (lambda: v.check_fraction(float("nan"), "sparsity"), r"^sparsity must be in \[0, 1\), got nan$"),
    (lambda: v.check_fraction(0, "test_fraction", include_low=False),
     r"^test_fraction must be in \(0, 1\), got 0.0$"),
    (lambda: v.check_fraction("0.5", "rate"),
     r"^rate must be a number in \[0, 1\), got '0.5' of type str$"),
    (lambda: v.check_fraction(1.5, "schedule", verb="return"),
     r"^schedule must return a number in \[0, 1\), got 1.5$"),
    (lambda: v.check_seed(-1), r"^mask_seed must be a non-negative int, got -1$"),
    (lambda: v.check_seed(1.0), r"^mask_seed must be None or a non-negative int, got 1.0$"),
    (lambda: v.check_block((1, 0)), r"^block must be None or a pair of positive ints"),
    (lambda: v.check_bool(1, "shuffle"), r"^shuffle must be True or False, got 1 of type int$"),
    (lambda: v.check_verbose(-1), r"^verbose must be a bool or an int >= 0 \(0: silent\), got -1$"),
    (lambda: v.check_verbose("yes"), r"^verbose must be a bool or an int >= 0 \(0: silent\), got 'yes'$"),
    (lambda: v.check_choice("mid", "padding", ("post", "pre")),
     r"^padding must be one of 'post', 'pre', got 'mid'$"),
    (lambda: v.check_str("", "name"), r"^name must be a non-empty str, got ''$"),
    (lambda: v.check_path(3, "path"), r"^path must be a non-empty str or os.PathLike, got 3$"),
])
def test_errors_name_the_argument_the_value_and_what_is_allowed(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_valid_values_come_back_as_the_named_type():
    assert v.check_int(np.int64(3), "n") == 3 and type(v.check_int(np.int64(3), "n")) is int
    assert v.check_int(None, "n", allow_none=True) is None
    assert v.check_number(np.float32(0.5), "x") == 0.5
    assert type(v.check_number(2, "x")) is float
    assert v.check_fraction(0, "sparsity") == 0.0
    assert v.check_fraction(1, "stop", include_low=False, include_high=True) == 1.0
    assert v.check_seed(None) is None and v.check_seed(np.int32(7)) == 7
    assert v.check_block([1, 4]) == (1, 4)
    assert v.check_verbose(1) == 1
    # As Keras's callbacks take it (issue 21): a bool or any level.
    assert v.check_verbose(True) == 1 and v.check_verbose(2) == 2 and v.check_verbose(False) == 0
    assert v.check_path(pathlib.Path("~/x"), "p") == str(pathlib.Path("~/x").expanduser())


def test_existing_file(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("x")
    assert v.check_existing_file(f, "filename") == str(f)
    with pytest.raises(FileNotFoundError, match="filename: no such file"):
        v.check_existing_file(tmp_path / "b.txt", "filename")
    with pytest.raises(FileNotFoundError, match="filename must be a file, got the folder"):
        v.check_existing_file(tmp_path, "filename")


def test_callbacks_take_verbose_as_keras_does():
    """Issue 21: `DynamicSparsity(verbose=True)` and `verbose=2` were refused
    where Keras's callbacks take both."""
    import keras_sparse_rnn as ksr

    assert ksr.DynamicSparsity(0.3, verbose=True).verbose == 1
    assert ksr.DynamicSparsity(0.3, verbose=2).verbose == 2
    assert ksr.GradualPruning(0.5, end_step=10, verbose=True).verbose == 1
