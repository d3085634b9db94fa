"""`callback_order.py`: a callback that adds to the epoch logs moves itself
before the callbacks listed ahead of it that read them, each callback still
called once; where it cannot find the list it warns, once per class."""

import csv
import glob
import warnings

import numpy as np
import pytest
import keras
import tensorflow as tf

import keras_sparse_rnn as ksr
from keras_sparse_rnn import callback_order
from keras_sparse_rnn.dst import DynamicSparsity

VOCAB, SEQ, BATCH = 24, 6, 4
X = np.random.default_rng(0).integers(0, VOCAB, size=(32, SEQ)).astype("int32")
Y = np.roll(X, -1, axis=1)
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def lm(sparsity=0.7):
    """Sparse embedding, sparse LSTM cell, sparse softmax (as tests/dst's `lm`)."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((SEQ,), dtype="int32"),
        ksr.SparseEmbedding(VOCAB, 8, sparsity=0.5, mask_seed=1, name="emb"),
        keras.layers.RNN(ksr.SparseLSTMCell(8, sparsity=sparsity, mask_seed=2, name="cell"),
                         return_sequences=True, name="rnn"),
        ksr.SparseDense(VOCAB, sparsity=0.5, mask_seed=3, name="softmax"),
    ], name="lm")


class Adds(keras.callbacks.Callback):
    """Adds `added` to the epoch logs; moves itself when `move`."""

    def __init__(self, move=True):
        super().__init__()
        self.move, self.moved, self.begun = move, None, 0

    def on_train_begin(self, logs=None):
        self.begun += 1
        if self.move:
            self.moved = callback_order.move_before_log_consumers(self)

    def on_epoch_end(self, epoch, logs=None):
        logs["added"] = float(epoch + 1)


class Plain(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.begun = 0

    def on_train_begin(self, logs=None):
        self.begun += 1


# Moved from tests/dst/test_keras_workflows.py -----------------------------------

def _tensorboard_tags(logdir):
    tags = set()
    for path in glob.glob(f"{logdir}/train/events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                tags.add(value.tag)
    return tags


@pytest.mark.parametrize("which", ["dst", "gradual"])
def test_logged_values_reach_loggers_listed_before_the_callback(tmp_path, which):
    model = lm(sparsity=0.0 if which == "gradual" else 0.7)
    model.compile(keras.optimizers.Adam(0.02), LOSS)
    if which == "dst":
        ours, key = DynamicSparsity(0.3, grow="random"), "dst_itop_rate"
    else:
        ours, key = ksr.GradualPruning(0.5, end_step=16, frequency=4), "pruning_sparsity"
    csv_path, logdir = tmp_path / "log.csv", tmp_path / "tb"
    stop = keras.callbacks.EarlyStopping(monitor=key, mode="max", patience=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, Y, batch_size=BATCH, epochs=3, verbose=0, callbacks=[
            keras.callbacks.CSVLogger(str(csv_path)),
            keras.callbacks.TensorBoard(str(logdir)), stop, ours])
    messages = [str(w.message) for w in caught]
    assert not any("Early stopping conditioned on metric" in m for m in messages)
    assert not any("could not check its place" in m for m in messages)
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and key in rows[0]
    assert float(rows[-1][key]) > 0
    assert f"epoch_{key}" in _tensorboard_tags(logdir)




# move_before_log_consumers --------------------------------------------------------

def test_moves_before_the_first_reader_and_every_callback_runs_once():
    lambda_calls = []
    reader = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: lambda_calls.append("begin"))
    plain, stop, ours = Plain(), keras.callbacks.EarlyStopping(monitor="added"), Adds()
    callbacks = keras.callbacks.CallbackList([plain, reader, stop, ours])
    callbacks.on_train_begin()
    assert callbacks.callbacks == [plain, ours, reader, stop]
    assert ours.moved is True
    assert (plain.begun, ours.begun, lambda_calls) == (1, 1, ["begin"])


def test_stays_in_place_without_a_reader_ahead_of_it():
    plain, ours, reader = Plain(), Adds(), keras.callbacks.CSVLogger("unused.csv")
    callbacks = keras.callbacks.CallbackList([plain, ours, reader])
    callbacks.on_train_begin()
    assert ours.moved is False
    assert callbacks.callbacks == [plain, ours, reader]
    assert (plain.begun, ours.begun) == (1, 1)


def test_without_its_callback_list_it_warns_once_per_class():
    cls = type(f"Lonely{id(object())}", (Plain,), {})
    first, second = cls(), cls()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert callback_order.move_before_log_consumers(first) is False
        assert callback_order.move_before_log_consumers(second) is False
    assert [str(w.message) for w in caught] == [
        f"{cls.__name__} could not check its place among the callbacks: list it "
        "before TensorBoard, CSVLogger, EarlyStopping and ModelCheckpoint, so that "
        "they see the values it logs"]


def test_the_log_readers_are_kerass_callbacks_that_read_epoch_logs():
    assert sorted(c.__name__ for c in callback_order.LOG_READERS) == sorted([
        "TensorBoard", "CSVLogger", "EarlyStopping", "ModelCheckpoint",
        "ReduceLROnPlateau", "RemoteMonitor", "LambdaCallback", "TerminateOnNaN",
        "History", "ProgbarLogger"])
    assert all(issubclass(c, keras.callbacks.Callback) for c in callback_order.LOG_READERS)


@pytest.mark.parametrize("move", [True, False])
def test_in_fit_a_logger_listed_first_sees_the_values_only_after_the_move(tmp_path, move):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    path = tmp_path / "log.csv"
    model.fit(np.ones((8, 3)), np.ones((8, 1)), epochs=2, verbose=0,
              callbacks=[keras.callbacks.CSVLogger(str(path)), Adds(move=move)])
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    if move:
        assert [row["added"] for row in rows] == ["1.0", "2.0"]
    else:
        assert "added" not in rows[0]
