"""`python -m keras_sparse_rnn.export` on a saved tiny model."""

import os
import subprocess
import sys

import numpy as np
import pytest

from export_helpers import STEPS, lm, tokens

pytestmark = pytest.mark.slow  # two subprocesses, each imports TensorFlow


def _run(*args):
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "keras_sparse_rnn.export", *map(str, args)],
        capture_output=True, text=True, env=env, timeout=300,
    )


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    model_path = folder / "lm.keras"
    lm(block=(1, 4)).save(model_path)
    np.save(folder / "samples.npy", tokens((4, STEPS), seed=1))
    return folder, model_path


def test_cli_exports_and_prints_report(saved):
    folder, model_path = saved
    out = folder / "lm.tflite"
    result = _run(model_path, out, "--sequence-length", STEPS, "--unroll",
                  "false", "--prefer", "size", "--verbose")
    assert result.returncode == 0, result.stderr
    assert "export_tflite: converting unroll=False (WHILE loop), sparse " \
        "encoding" in result.stdout
    assert "  candidate:    dense (unroll=False (WHILE loop)): " in \
        result.stdout
    assert f"TFLite export: {out}" in result.stdout
    assert "WHILE loop, batch 1, sequence length 6" in result.stdout
    assert "read sparse by FULLY_CONNECTED (no DENSIFY)" in result.stdout
    assert "max |LiteRT - Keras|" in result.stdout
    assert out.stat().st_size > 0
    result = _run(model_path, folder / "step.tflite", "--streaming",
                  "--quantization", "int8", "--representative-data",
                  folder / "samples.npy", "--no-sparse-encoding")
    assert result.returncode == 0, result.stderr
    assert "streaming: one time step" in result.stdout
    assert "quantization: int8; sparse encoding: off" in result.stdout


def test_cli_error_without_traceback(saved):
    folder, model_path = saved
    out = folder / "bad.tflite"
    result = _run(model_path, out)
    assert result.returncode == 1
    assert "error: model input 'tokens'" in result.stderr
    assert "pass sequence_length" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("case", ["representative_data", "model_file"])
def test_cli_unreadable_inputs_without_traceback(saved, case):
    folder, model_path = saved
    junk = folder / "junk.bin"
    junk.write_bytes(b"not a model, not an array")
    out = folder / "unreadable.tflite"
    if case == "representative_data":
        result = _run(model_path, out, "--sequence-length", STEPS,
                      "--quantization", "int8", "--representative-data", junk)
        expected = "error: cannot read --representative-data"
    else:
        result = _run(junk, out, "--sequence-length", STEPS)
        expected = "error: cannot load the model"
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
