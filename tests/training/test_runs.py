"""`keras_sparse_rnn.training.runs`: the run helpers the examples share."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import keras

from keras_sparse_rnn import training

ROOT = pathlib.Path(__file__).resolve().parents[2]
X = np.arange(48, dtype="float32").reshape(16, 3) / 48
Y = np.ones((16, 2), "float32")


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    return model


def _python(code, env=None):
    """Runs `code` in a fresh interpreter that imports this checkout's package."""
    full = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
                PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    full.pop(training.KILL_AFTER_EPOCH_VARIABLE, None)
    full.update(env or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, env=full, timeout=300)


# write_json_atomic --------------------------------------------------------------

def test_write_json_atomic_writes_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.json"
    training.write_json_atomic(path, {"epoch": 1, "values": [1.5, 2]})
    assert json.loads(path.read_text()) == {"epoch": 1, "values": [1.5, 2]}
    training.write_json_atomic(str(path), [3])
    assert json.loads(path.read_text()) == [3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_write_json_atomic_keeps_the_old_file_when_the_value_fails(tmp_path):
    path = tmp_path / "a.json"
    training.write_json_atomic(path, {"ok": True})
    with pytest.raises(TypeError, match="not JSON serializable"):
        training.write_json_atomic(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_write_json_atomic_checks_the_path():
    with pytest.raises(ValueError, match="path must be a non-empty str or os.PathLike, got 3"):
        training.write_json_atomic(3, {})


# set_threads --------------------------------------------------------------------

@pytest.mark.parametrize("threads,message", [
    (0, "threads must be a positive int or None, got 0"),
    (2.0, "threads must be a positive int or None, got 2.0 of type float"),
    (True, "threads must be a positive int or None, got True of type bool"),
])
def test_set_threads_checks_its_argument(threads, message):
    with pytest.raises(ValueError, match=message):
        training.set_threads(threads)


def test_set_threads_sets_both_pools_and_none_keeps_the_default():
    result = _python("""
        import tensorflow as tf
        from keras_sparse_rnn import training
        training.set_threads(None)
        print(tf.config.threading.get_intra_op_parallelism_threads(),
              tf.config.threading.get_inter_op_parallelism_threads())
        training.set_threads(3)
        print(tf.config.threading.get_intra_op_parallelism_threads(),
              tf.config.threading.get_inter_op_parallelism_threads())
    """)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == ["0 0", "3 3"]


# time_budget --------------------------------------------------------------------

def test_time_budget_stops_at_the_end_of_the_first_batch_past_it():
    model = _model()
    history = model.fit(X, Y, batch_size=4, epochs=3, verbose=0,
                        callbacks=[training.time_budget(1e-9)])
    assert int(model.optimizer.iterations.numpy()) == 1
    assert len(history.history["loss"]) == 1


def test_time_budget_not_reached_trains_every_step():
    model = _model()
    history = model.fit(X, Y, batch_size=4, epochs=3, verbose=0,
                        callbacks=[training.time_budget(60)])
    assert int(model.optimizer.iterations.numpy()) == 12
    assert len(history.history["loss"]) == 3


@pytest.mark.parametrize("kwargs,message", [
    ({"minutes": 0}, r"minutes must be a number > 0, got 0.0"),
    ({"minutes": -1.5}, r"minutes must be a number > 0, got -1.5"),
    ({"minutes": "5"}, r"minutes must be a number > 0, got '5' of type str"),
    ({"minutes": 1, "callback_base": int},
     r"callback_base must be a callback class such as keras.callbacks.Callback"),
    ({"minutes": 1, "callback_base": keras.callbacks.Callback()},
     r"callback_base must be a callback class"),
])
def test_time_budget_checks_its_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        training.time_budget(**kwargs)


def test_callbacks_subclass_the_given_base():
    class Base(keras.callbacks.Callback):
        pass

    assert isinstance(training.time_budget(1, Base), Base)
    assert isinstance(training.run_log("log.json", Base), Base)
    assert type(training.time_budget(1)).__mro__[1] is keras.callbacks.Callback


# run_log ------------------------------------------------------------------------

def test_run_log_writes_every_epoch_and_its_history(tmp_path):
    path = tmp_path / "epochs.json"
    model, log = _model(), training.run_log(path)
    history = model.fit(X, Y, batch_size=4, epochs=3, verbose=0, callbacks=[log])
    entries = json.loads(path.read_text())["epochs"]
    assert [e["epoch"] for e in entries] == [0, 1, 2]
    assert [sorted(e["logs"]) for e in entries] == [["loss"]] * 3
    assert log.history() == {"loss": [float(v) for v in history.history["loss"]]}
    seconds = [e["seconds"] for e in entries]
    assert 0 < seconds[0] <= seconds[1] <= seconds[2] == log.seconds()
    assert log.resumed_at is None


def test_run_log_of_a_resumed_fit_drops_the_epochs_trained_again(tmp_path):
    path = tmp_path / "epochs.json"
    model = _model()
    model.fit(X, Y, batch_size=4, epochs=3, verbose=0, callbacks=[training.run_log(path)])
    first = json.loads(path.read_text())["epochs"]
    # The backup was of epoch 1: epochs 1 and 2 are trained again.
    log = training.run_log(path)
    model.fit(X, Y, batch_size=4, epochs=4, initial_epoch=1, verbose=0, callbacks=[log])
    entries = json.loads(path.read_text())["epochs"]
    assert [e["epoch"] for e in entries] == [0, 1, 2, 3]
    assert entries[0] == first[0]
    assert all(e["seconds"] > first[0]["seconds"] for e in entries[1:])
    assert log.resumed_at == 1
    assert len(log.history()["loss"]) == 4
    assert log.seconds() == entries[-1]["seconds"]


def test_run_log_of_a_resumed_fit_with_no_epoch_left_keeps_every_epoch(tmp_path):
    """A kill after `fit` ended: the backup is of the last epoch, and `fit`
    started again runs none; the log still holds the whole run."""
    path = tmp_path / "epochs.json"
    _model().fit(X, Y, batch_size=4, epochs=3, verbose=0,
                 callbacks=[training.run_log(path)])
    first = json.loads(path.read_text())["epochs"]
    log = training.run_log(path)
    history = _model().fit(X, Y, batch_size=4, epochs=3, initial_epoch=3, verbose=0,
                           callbacks=[log])
    assert history.history == {}
    assert json.loads(path.read_text())["epochs"] == log.entries == first
    assert log.resumed_at == 3
    assert log.seconds() == first[-1]["seconds"]
    assert len(log.history()["loss"]) == 3


def test_run_log_before_any_epoch_is_empty(tmp_path):
    log = training.run_log(tmp_path / "none.json")
    assert (log.history(), log.seconds(), log.resumed_at) == ({}, 0.0, None)


# epoch_backup -------------------------------------------------------------------

def test_epoch_backup_never_leaves_a_half_written_checkpoint(tmp_path):
    """The metadata names the weights file; the old file goes only after."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    backup = training.epoch_backup(tmp_path / "b")
    backup.set_model(model)
    for epoch in range(2):
        backup.on_epoch_end(epoch)
        meta = json.loads((tmp_path / "b" / "training_metadata.json").read_text())
        assert meta == {"epoch": epoch + 1, "batch": 0,
                        "weights": f"epoch-{epoch + 1}.weights.h5"}
        assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
            f"epoch-{epoch + 1}.weights.h5", "training_metadata.json"]
    # A kill after the new weights but before the metadata: the old epoch loads.
    (tmp_path / "b" / "epoch-3.weights.h5").write_bytes(b"half written")
    fresh = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    fresh.compile("sgd", "mse")
    restore = training.epoch_backup(tmp_path / "b")
    restore.set_model(fresh)
    restore.on_train_begin()
    assert fresh._initial_epoch == 2
    assert len(model.weights) == len(fresh.weights) == 2
    for w, v in zip(model.weights, fresh.weights, strict=True):
        np.testing.assert_array_equal(w.numpy(), v.numpy())


def test_epoch_backup_resumes_fit_and_is_deleted_at_the_end(tmp_path):
    whole = _model()
    whole.fit(X, Y, batch_size=4, epochs=3, verbose=0, shuffle=False)
    interrupted = _model()
    interrupted.fit(X, Y, batch_size=4, epochs=2, verbose=0, shuffle=False,
                    callbacks=[training.epoch_backup(tmp_path / "b")])
    # `fit` ended normally, so its backup is gone: write one as a kill leaves it.
    backup = training.epoch_backup(tmp_path / "b")
    backup.set_model(interrupted)
    backup.on_epoch_end(1)
    resumed = _model(seed=5)
    history = resumed.fit(X, Y, batch_size=4, epochs=3, verbose=0, shuffle=False,
                          callbacks=[training.epoch_backup(tmp_path / "b")])
    assert len(history.history["loss"]) == 1  # epoch 2 only
    assert int(resumed.optimizer.iterations.numpy()) == 12
    for w, v in zip(whole.weights, resumed.weights, strict=True):
        np.testing.assert_allclose(w.numpy(), v.numpy(), rtol=1e-6)
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


def test_epoch_backup_kept_after_fit_resumes_a_fit_with_no_epoch_left(tmp_path):
    """`delete_checkpoint=False`: the backup outlives `fit`, and the same `fit`
    started again restores the last epoch and trains no further."""
    whole = _model()
    whole.fit(X, Y, batch_size=4, epochs=2, verbose=0, shuffle=False,
              callbacks=[training.epoch_backup(tmp_path / "b", delete_checkpoint=False)])
    meta = json.loads((tmp_path / "b" / "training_metadata.json").read_text())
    assert meta["epoch"] == 2
    resumed = _model(seed=5)
    history = resumed.fit(X, Y, batch_size=4, epochs=2, verbose=0, shuffle=False,
                          callbacks=[training.epoch_backup(tmp_path / "b",
                                                           delete_checkpoint=False)])
    assert history.history == {}
    assert int(resumed.optimizer.iterations.numpy()) == 8
    for w, v in zip(whole.weights, resumed.weights, strict=True):
        np.testing.assert_array_equal(w.numpy(), v.numpy())
    assert (tmp_path / "b" / "training_metadata.json").is_file()


def test_epoch_backup_kept_after_fit_restores_snt_asgd_averages(tmp_path):
    """SNT-ASGD writes its averages into the model at the end of `fit`; a run
    killed after that restores the last epoch's raw weights and averages, and
    its `fit` with no epoch left writes the same averaged weights again."""
    from keras_sparse_rnn.optimizers import SNTASGD

    def averaged_model(seed=0):
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(SNTASGD(0.1), "mse")
        return model

    class SwitchAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                self.model.optimizer.switch_to_averaging()

    whole = averaged_model()
    whole.fit(X, Y, batch_size=4, epochs=3, verbose=0, shuffle=False,
              callbacks=[SwitchAfterFirstEpoch(), training.epoch_backup(
                  tmp_path / "b", delete_checkpoint=False)])
    assert whole.optimizer.has_average_weights
    resumed = averaged_model(seed=5)
    history = resumed.fit(X, Y, batch_size=4, epochs=3, verbose=0, shuffle=False,
                          callbacks=[training.epoch_backup(tmp_path / "b",
                                                           delete_checkpoint=False)])
    assert history.history == {}
    for w, v in zip(whole.weights, resumed.weights, strict=True):
        np.testing.assert_array_equal(w.numpy(), v.numpy())
    # The averages differ from the last step's weights: they were written.
    raw = averaged_model(seed=5)
    raw.fit(X, Y, batch_size=4, epochs=1, verbose=0)  # builds the optimizer
    raw.load_weights(str(tmp_path / "b" / "epoch-3.weights.h5"))
    assert any(np.any(w.numpy() != v.numpy())
               for w, v in zip(whole.weights, raw.weights))


def test_epoch_backup_checks_its_arguments():
    with pytest.raises(ValueError, match="backup_dir must be a non-empty str"):
        training.epoch_backup("")
    with pytest.raises(ValueError, match="delete_checkpoint must be a bool, got 0"):
        training.epoch_backup("b", delete_checkpoint=0)


# kill_after_epoch_for_tests -----------------------------------------------------

@pytest.mark.parametrize("value", [None, ""])
def test_kill_hook_is_off_without_the_variable(monkeypatch, value):
    if value is None:
        monkeypatch.delenv(training.KILL_AFTER_EPOCH_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(training.KILL_AFTER_EPOCH_VARIABLE, value)
    assert training.kill_after_epoch_for_tests() == []


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_kill_hook_refuses_a_bad_value(monkeypatch, value):
    monkeypatch.setenv(training.KILL_AFTER_EPOCH_VARIABLE, value)
    with pytest.raises(ValueError, match=rf"\$KSR_TEST_KILL_AFTER_EPOCH must be an "
                                         rf"int >= 1 or 'end', got '{value}'"):
        training.kill_after_epoch_for_tests()


def test_kill_hook_kills_the_process_after_the_given_epoch():
    result = _python("""
        from keras_sparse_rnn import training
        [kill] = training.kill_after_epoch_for_tests()
        kill.on_epoch_end(0)
        print("after epoch 1", flush=True)
        kill.on_epoch_end(1)
        print("after epoch 2", flush=True)
    """, env={training.KILL_AFTER_EPOCH_VARIABLE: "2"})
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert result.stdout == "after epoch 1\n"


def test_kill_hook_kills_the_process_when_fit_ends():
    result = _python("""
        from keras_sparse_rnn import training
        [kill] = training.kill_after_epoch_for_tests()
        for epoch in range(3):
            kill.on_epoch_end(epoch)
        print("after the epochs", flush=True)
        kill.on_train_end()
        print("after fit", flush=True)
    """, env={training.KILL_AFTER_EPOCH_VARIABLE: "end"})
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert result.stdout == "after the epochs\n"
