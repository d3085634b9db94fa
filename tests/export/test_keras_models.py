"""The models users train export as they are: a static training batch other
than the file's, mixed precision, and no converter noise on the terminal."""

import os
import subprocess
import sys

import numpy as np
import pytest
import keras

import keras_sparse_rnn as ksr
from keras_sparse_rnn.export import export_tflite

from export_helpers import STEPS, VOCAB, run_tflite, tokens


def _readme_model(batch_size=20, stateful=False):
    """The README's model: a static batch of 20, as for stateful training."""
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((STEPS,), batch_size=batch_size, dtype="int32", name="tokens"),
        ksr.SparseEmbedding(VOCAB, 8, sparsity=0.67, mask_seed=0),
        keras.layers.RNN(ksr.SparseLSTMCell(8, sparsity=0.67, mask_seed=1),
                         return_sequences=True, stateful=stateful),
        ksr.SparseLSTM(8, sparsity=0.67, mask_seed=2, return_sequences=True,
                       stateful=stateful),
        ksr.SparseDense(VOCAB, sparsity=0.67, mask_seed=3)])


def test_export_at_batch_1_of_a_model_trained_at_batch_20(tmp_path):
    model = _readme_model()
    report = export_tflite(model, tmp_path / "lm.tflite", sequence_length=STEPS,
                           batch_size=1)
    assert report.batch_size == 1 and report.max_abs_error <= report.tolerance
    assert any("rebuilt at batch size 1" in n for n in report.notes)
    x = tokens((1, STEPS), seed=4)
    got = run_tflite(report.path, tokens=x)["output_0"]
    # The same weights: the batch-20 model on 20 copies gives the same rows.
    want = model.predict(np.repeat(x, 20, axis=0), verbose=0)[:1]
    np.testing.assert_allclose(got, want, atol=1e-5)
    # The user's model is untouched.
    assert model.inputs[0].shape[0] == 20


def test_cli_default_batch_exports_a_batch_20_model(tmp_path):
    model = _readme_model()
    model.save(tmp_path / "lm.keras")
    result = subprocess.run(
        [sys.executable, "-m", "keras_sparse_rnn.export", str(tmp_path / "lm.keras"),
         str(tmp_path / "lm.tflite"), "--sequence-length", str(STEPS)],
        capture_output=True, text=True, timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "batch 1" in result.stdout and (tmp_path / "lm.tflite").is_file()


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_model_exports_float32(policy, tmp_path, capfd):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = _readme_model(batch_size=None)
        model.compile(keras.optimizers.Adam(0.01),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        x = tokens((8, STEPS))
        model.fit(x, np.roll(x, -1, axis=1), epochs=1, verbose=0)
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.layers[1].compute_dtype == policy.split("_")[1]
    assert ksr.sparse_weights(model), "no sparse weights to check"
    for w, m in ksr.sparse_weights(model):
        assert np.all(keras.ops.convert_to_numpy(w)[keras.ops.convert_to_numpy(m) == 0] == 0)
    capfd.readouterr()
    report = export_tflite(model, tmp_path / "seq.tflite", sequence_length=STEPS)
    assert any(f"computes in {policy}" in n for n in report.notes)
    assert report.max_abs_error <= report.tolerance
    stream = export_tflite(model, tmp_path / "step.tflite", streaming=True,
                           sequence_length=STEPS)
    assert stream.streaming and stream.max_abs_error <= stream.tolerance
    # Against the mixed-precision model itself, within its own precision.
    x = tokens((1, STEPS), seed=9)
    got = run_tflite(report.path, tokens=x)["output_0"]
    want = keras.ops.convert_to_numpy(model(x)).astype("float32")
    assert np.abs(got - want).max() < 0.05 * max(1.0, np.abs(want).max())
    printed = capfd.readouterr()
    for noise in ("TensorListReserve", "mlir", "loc("):
        assert noise not in printed.out + printed.err
    assert model.layers[1].compute_dtype != "float32"  # untouched
