"""Run helpers of a training script: threads, time budget, run log, backups.

A long run must survive a kill and end as an uninterrupted run would: at
each epoch end `epoch_backup` writes the model, the optimizer and the
topology-update state (all kept in variables) and `run_log` the epoch's
logs, both through files replaced atomically (`write_json_atomic`). The
same `fit` started again resumes from the last completed epoch.
`time_budget` stops a run after a wall time; `set_threads` sizes
TensorFlow's thread pools. `kill_after_epoch_for_tests` is the crash the
resume tests inflict (`$KSR_TEST_KILL_AFTER_EPOCH`).

The callbacks subclass `callback_base`, `keras.callbacks.Callback` by
default, or `tf_keras.callbacks.Callback` for a `tf_keras` script.
"""

import json
import os
import pathlib
import time

from keras_sparse_rnn import validation

#: The environment variable read by `kill_after_epoch_for_tests`.
KILL_AFTER_EPOCH_VARIABLE = "KSR_TEST_KILL_AFTER_EPOCH"


def _callback_base(value):
    """`value`, a callback class, or `keras.callbacks.Callback` for None."""
    if value is None:
        import keras

        return keras.callbacks.Callback
    if not isinstance(value, type) or not hasattr(value, "on_epoch_end"):
        raise ValueError(
            "callback_base must be a callback class such as "
            f"keras.callbacks.Callback or tf_keras.callbacks.Callback, got {value!r}")
    return value


def set_threads(threads):
    """Sets TensorFlow's intra- and inter-op thread pools to `threads`.

    Call before any TensorFlow op runs. `threads` is an int >= 1, or None to
    keep TensorFlow's default (all cores).
    """
    threads = validation.check_int(threads, "threads", minimum=1, allow_none=True)
    if threads is not None:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def write_json_atomic(path, value):
    """Writes `value` as JSON to `path` through a temporary file.

    A kill leaves the old file or the new one, never half of one. `value`
    must be JSON-serializable (else `TypeError`, and `path` is untouched).
    """
    path = pathlib.Path(validation.check_path(path, "path"))
    text = json.dumps(value, indent=1)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def time_budget(minutes, callback_base=None):
    """A callback that stops training after `minutes` of wall time.

    The clock starts when this function is called; the training stops at
    the end of the first batch past the deadline (`model.stop_training`),
    so the epoch ends as usual (its logs, validation and backups included).

    Args:
        minutes: the budget, a number > 0.
        callback_base: the callback class to subclass (default
            `keras.callbacks.Callback`).
    """
    minutes = validation.check_number(minutes, "minutes", minimum=0,
                                      exclusive_minimum=True)
    base = _callback_base(callback_base)
    deadline = time.monotonic() + 60 * minutes

    class TimeBudget(base):
        def on_train_batch_end(self, batch, logs=None):
            if time.monotonic() > deadline:
                self.model.stop_training = True

    return TimeBudget()


def run_log(path, callback_base=None):
    """A callback that keeps the epoch logs of a run across interruptions.

    At each epoch end it appends the epoch's logs (as other callbacks left
    them: put it after them) and the training seconds so far to the JSON
    file `path` (`{"epochs": [{"epoch", "seconds", "logs"}, ...]}`). When a
    resumed `fit` begins at epoch `e` (the backup's), the entries from `e`
    on are dropped: an epoch logged after the last backup is trained again.

    The callback's `history()` is `{metric: [value per epoch]}` over every
    epoch of the run, `seconds()` the training time of the run so far and
    `resumed_at` the epoch a resumed `fit` began with (None for a fresh one;
    the number of epochs logged for a resumed `fit` with no epoch left).

    Args:
        path: the JSON file (its folder must exist).
        callback_base: the callback class to subclass (default
            `keras.callbacks.Callback`).
    """
    path = pathlib.Path(validation.check_path(path, "path"))
    base = _callback_base(callback_base)

    class RunLog(base):
        def __init__(self):
            super().__init__()
            self.entries = []
            self.resumed_at = None
            self._base_seconds = 0.0
            self._start = None

        def on_train_begin(self, logs=None):
            self.entries = (json.loads(path.read_text())["epochs"]
                            if path.is_file() else [])
            self._start = None

        def on_epoch_begin(self, epoch, logs=None):
            if self._start is None:  # the first epoch of this `fit`
                self.entries = [e for e in self.entries if e["epoch"] < epoch]
                self.resumed_at = epoch if epoch > 0 else None
                self._base_seconds = self.entries[-1]["seconds"] if self.entries else 0.0
                self._start = time.monotonic()

        def on_train_end(self, logs=None):
            if self._start is None and self.entries:
                # A resumed `fit` with no epoch left to run (its backup was
                # of the last epoch): every logged epoch is the backup's.
                self.resumed_at = self.entries[-1]["epoch"] + 1

        def on_epoch_end(self, epoch, logs=None):
            self.entries.append({
                "epoch": epoch,
                "seconds": self._base_seconds + time.monotonic() - self._start,
                "logs": {k: float(v) for k, v in (logs or {}).items()}})
            write_json_atomic(path, {"epochs": self.entries})

        def history(self):
            """`{metric: [value per epoch]}` over every epoch of the run."""
            out = {}
            for entry in self.entries:
                for k, v in entry["logs"].items():
                    out.setdefault(k, []).append(v)
            return out

        def seconds(self):
            """The training seconds of the run (every `fit` of it) so far."""
            return self.entries[-1]["seconds"] if self.entries else 0.0

    return RunLog()


def epoch_backup(backup_dir, delete_checkpoint=True):
    """`keras.callbacks.BackupAndRestore` whose checkpoint is never half written.

    Keras writes `latest.weights.h5` and then `training_metadata.json` in
    place: a kill between the two, or during either, leaves weights of one
    epoch with the epoch number of another, or a truncated file. Here each
    epoch's weights go to their own file (through a temporary name) and the
    metadata, replaced atomically last, names the file to load; the previous
    epoch's file is deleted only after that. The weights file holds the
    model's variables, so the optimizer's slots and iterations and the
    DynamicSparsity / GradualPruning state (kept in variables) resume too.
    Put it last in the callbacks, so that the checkpoint of an epoch includes
    the topology update at its end.

    With `delete_checkpoint=True` (Keras's default) the backup is deleted
    when `fit` ends. A script that does more after `fit` (evaluation, saving,
    export) passes `False` and deletes the folder once its results are
    written, so that a kill after `fit` resumes from the last epoch (a
    `fit` that has no epoch left to run) instead of training from scratch.

    Keras 3 only (it overrides `BackupAndRestore`'s `_load_model` and
    `_save_model`, Keras 3.15's: `keras_sparse_rnn._keras.backup`).

    Args:
        backup_dir: the folder of the backup (created when first written).
        delete_checkpoint: bool, whether `fit`'s end deletes the backup.
    """
    from keras_sparse_rnn._keras.backup import atomic_backup_and_restore

    backup_dir = validation.check_path(backup_dir, "backup_dir")
    if not isinstance(delete_checkpoint, bool):
        raise ValueError(f"delete_checkpoint must be a bool, got {delete_checkpoint!r}")
    return atomic_backup_and_restore(backup_dir, write_json_atomic, delete_checkpoint)


def kill_after_epoch_for_tests(callback_base=None):
    """The resume tests' real crash: `[callback]` that SIGKILLs this process
    once epoch N (1-based) has ended, when `$KSR_TEST_KILL_AFTER_EPOCH=N`,
    or once `fit` has ended (after its last epoch) when the value is `end`;
    `[]` when the variable is unset or empty.

    List it after the backup callbacks: the kill comes after the epoch's
    backup. A value that is neither an int >= 1 nor `end` raises
    `ValueError`.
    """
    value = os.environ.get(KILL_AFTER_EPOCH_VARIABLE)
    if not value:
        return []
    if value == "end":
        epoch = None
    else:
        try:
            epoch = int(value)
        except ValueError:
            epoch = 0
        if epoch < 1:
            raise ValueError(f"${KILL_AFTER_EPOCH_VARIABLE} must be an int >= 1 "
                             f"or 'end', got {value!r}")
    base = _callback_base(callback_base)
    import signal

    class Kill(base):
        def on_epoch_end(self, epoch_index, logs=None):
            if epoch_index + 1 == epoch:
                os.kill(os.getpid(), signal.SIGKILL)

        def on_train_end(self, logs=None):
            if epoch is None:
                os.kill(os.getpid(), signal.SIGKILL)

    return [Kill()]
