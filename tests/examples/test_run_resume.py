"""A PTB run killed (SIGKILL) after epoch 1 of 3, started again and killed
after its training but before its results are written, and started a third
time with the same command ends with the masks, weights and history of an
uninterrupted run.

The kill is real: `$KSR_TEST_KILL_AFTER_EPOCH` makes the example SIGKILL
itself once an epoch has ended and its backup is written (or once `fit` has
ended), so no cleanup code runs, as when a machine goes down.
"""

import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = os.environ.get("KERAS_SPARSE_RNN_DATA", str(ROOT.parent / "shared" / "data"))


def _run(script, args, out, kill_after=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow",
               KERAS_SPARSE_RNN_DATA=DATA)
    env.pop("KSR_TEST_KILL_AFTER_EPOCH", None)
    if kill_after is not None:
        env["KSR_TEST_KILL_AFTER_EPOCH"] = str(kill_after)
    return subprocess.run([sys.executable, str(ROOT / script), *args,
                           "--out-dir", str(out)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=600)


def _arrays_of_keras_file(path):
    """Every array of a `.keras` file (weights, masks, optimizer and DST state)."""
    with zipfile.ZipFile(path) as z:
        f = h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
        out = {}
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return out


def _killed(script, args, out, kill_after, epochs_logged):
    """Runs `script` in `out` killed after epoch `kill_after` (or, for "end",
    once its `fit` has ended, before the results are written): the epochs it
    logged."""
    killed = _run(script, args, out, kill_after=kill_after)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (out / "history.json").exists() and (out / "backup").is_dir()
    logged = json.loads((out / "epochs.json").read_text())["epochs"]
    assert [e["epoch"] for e in logged] == list(range(epochs_logged))
    return logged


def _whole_and_resumed(script, args, tmp_path):
    """Runs `script` whole; and again, killed after its first epoch, started
    again and killed once its training has ended (before the results are
    written), and started a third time, which trains no epoch and writes them.
    The two `history.json` dicts, the resumed run's folder and the epochs the
    second start logged."""
    whole = _run(script, args, tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr[-3000:]
    a = json.loads((tmp_path / "whole" / "history.json").read_text())
    assert a["resumed_at_epoch"] is None
    assert a["train_steps"] == 3 * 6 and a["epochs_run"] == 3
    out = tmp_path / "killed"
    _killed(script, args, out, 1, 1)
    logged = _killed(script, args, out, "end", 3)
    resumed = _run(script, args, out)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    b = json.loads((out / "history.json").read_text())
    assert b["resumed_at_epoch"] == 3  # the last start trained no epoch
    assert b["train_steps"] == 3 * 6 and b["epochs_run"] == 3
    assert not (out / "backup").exists()  # deleted once the results were written
    return a, b, out, logged


def _assert_same_run(a, b):
    for key in a["history"]:
        assert a["history"][key] == b["history"][key], key
    assert a["valid_perplexity"] == b["valid_perplexity"]
    assert a["test_perplexity"] == b["test_perplexity"]


def _kill_and_resume(script, args, tmp_path):
    """`_whole_and_resumed`, and the resumed run equals the whole one."""
    a, b, out, _ = _whole_and_resumed(script, args, tmp_path)
    _assert_same_run(a, b)
    return a, b, out


@pytest.mark.slow
def test_killed_dst_run_resumes_to_the_uninterrupted_masks_and_weights(tmp_path):
    args = ["--size", "tiny", "--method", "rigl", "--sparsity", "0.7",
            "--steps-per-epoch", "6", "--epochs", "3", "--no-export", "--verbose", "0"]
    a, b, out = _kill_and_resume("examples/ptb_language_model.py", args, tmp_path)
    # Updates at the ends of epochs 1 and 2: one before the kill, one after.
    assert a["history"]["dst_updates"] == b["history"]["dst_updates"] == [1, 1, 0]
    want = _arrays_of_keras_file(tmp_path / "whole" / "model.keras")
    got = _arrays_of_keras_file(out / "model.keras")
    assert set(want) == set(got)
    # The file holds the topology-update state and the optimizer's variables
    # (its iteration count first), besides the weights and their masks.
    assert any(k.startswith("_keras_sparse_rnn_dst_state/") for k in want)
    assert int(got["optimizer/vars/0"]) == 18
    masks = [v for k, v in want.items() if k.startswith("layers/") and v.ndim == 2
             and set(np.unique(v)) <= {0.0, 1.0}]
    assert len(masks) == 6  # embedding, 2 x (kernel, recurrent kernel), softmax
    for k in want:
        np.testing.assert_array_equal(want[k], got[k], err_msg=k)


@pytest.mark.slow
def test_killed_tfmot_run_resumes_to_the_uninterrupted_weights(tmp_path):
    """tfmot's baseline in tf_keras: its own BackupAndRestore, and the pruning
    step (a variable of each pruning wrapper) comes back with the weights."""
    args = ["--size", "tiny", "--sparsity", "0.7", "--steps-per-epoch", "6",
            "--epochs", "3", "--no-save", "--verbose", "0"]
    a, b, out = _kill_and_resume("examples/tfmot_baseline.py", args, tmp_path)
    # The sparsity it reached follows the pruning step: a restarted step would
    # repeat epoch 1's pruning and end less sparse.
    assert a["history"]["pruning_sparsity"] == b["history"]["pruning_sparsity"]
    assert a["history"]["pruning_sparsity"][-1] > a["history"]["pruning_sparsity"][0]


@pytest.mark.slow
def test_reproduce_resumes_a_killed_grid_run_from_its_backup(tmp_path, monkeypatch):
    """`reproduce.py` started again after its run was killed continues that run
    from its last completed epoch (gradual pruning: the masks follow the
    optimizer's step) and ends where an uninterrupted grid does."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "reproduce_resume", ROOT / "benchmarks" / "reproduce.py")
    reproduce = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reproduce)
    monkeypatch.setenv("KERAS_SPARSE_RNN_DATA", DATA)
    name = "ptb_lstm_tiny_gradual_0.67"

    def grid(where):
        return reproduce.main(["--profile", "cpu", "--smoke", "--only", name,
                               "--threads", "1", "--results-dir", str(where / "results"),
                               "--runs-dir", str(where / "runs")])

    assert grid(tmp_path / "whole") == 0
    monkeypatch.setenv("KSR_TEST_KILL_AFTER_EPOCH", "1")
    assert grid(tmp_path / "killed") == 1  # the run failed: no JSON
    result = tmp_path / "killed" / "results" / "reproduce_cpu_smoke" / f"{name}.json"
    assert not result.exists()
    assert (tmp_path / "killed" / "runs" / name / "backup").is_dir()
    monkeypatch.delenv("KSR_TEST_KILL_AFTER_EPOCH")
    assert grid(tmp_path / "killed") == 0
    b = json.loads(result.read_text())
    a = json.loads((tmp_path / "whole" / "results" / "reproduce_cpu_smoke"
                    / f"{name}.json").read_text())
    assert a["run"]["resumed_at_epoch"] is None and b["run"]["resumed_at_epoch"] == 1
    assert a["epochs_run"] == b["epochs_run"] == 2
    assert a["history"] == b["history"]
    assert a["valid_perplexity"] == b["valid_perplexity"]
    assert a["test_perplexity"] == b["test_perplexity"]
    want = _arrays_of_keras_file(tmp_path / "whole" / "runs" / name / "model.keras")
    got = _arrays_of_keras_file(tmp_path / "killed" / "runs" / name / "model.keras")
    assert set(want) == set(got)
    masks = [k for k, v in want.items() if k.startswith("layers/") and v.ndim == 2
             and set(np.unique(v)) <= {0.0, 1.0}]
    assert len(masks) == 6
    for k in want:
        np.testing.assert_array_equal(want[k], got[k], err_msg=k)


@pytest.mark.slow
def test_killed_text_run_resumes_from_its_last_epoch(tmp_path):
    """The text example resumes too. Its training split is reshuffled each epoch
    by tf.data, and a resumed process starts that sequence again, so epochs
    after the kill see another order than an uninterrupted run's: the run
    resumes and completes, but only the epochs before the kill are the same."""
    args = ["--dataset", "sst2", "--method", "set", "--sparsity", "0.8",
            "--max-train-examples", "96", "--max-eval-examples", "32", "--epochs", "3",
            "--units", "8", "--embedding-dim", "8", "--batch-size", "16", "--no-save",
            "--verbose", "0"]
    a, b, out, logged = _whole_and_resumed("examples/text_classification.py", args,
                                           tmp_path)
    for key in a["history"]:
        assert len(b["history"][key]) == 3, key
        assert a["history"][key][0] == b["history"][key][0], key
        # The start killed after its training logged these epochs; the last
        # start trained none again.
        assert b["history"][key] == [e["logs"][key] for e in logged], key
