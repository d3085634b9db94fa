"""keras_sparse_rnn._keras: each use of Keras internals, checked against the
pinned Keras (3.15). A failure here names the adapter module to update."""

import ast
import contextlib
import inspect
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_sparse_rnn._keras import (callers, functional, layers, multi_optimizer,
                                     optimizer_slots, rnn, training, variables)

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "keras_sparse_rnn"


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), path.read_text()


def test_keras_internals_only_in_the_adapter():
    """`keras.src` is imported and stack frames are read only in `_keras/`;
    frames in one module of it."""
    keras_src, frames = set(), set()
    for name, text in _sources():
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras.src"):
                keras_src.add(name)
            if isinstance(node, ast.Import) and any(
                    a.name.startswith("keras.src") for a in node.names):
                keras_src.add(name)
            if isinstance(node, ast.Attribute) and node.attr in (
                    "_getframe", "f_locals", "f_back", "f_globals"):
                frames.add(name)
    assert keras_src == {"_keras/callers.py", "_keras/rnn.py"}
    assert frames == {"_keras/callers.py"}


def _checked(variable, seen, restoring=contextlib.nullcontext):
    variables.make_checked(variable, lambda v, value: seen.append(
        (v, np.asarray(keras.ops.convert_to_numpy(value)))), restoring)
    return variable


# callers ------------------------------------------------------------------

def test_pending_set_weights_value():
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    pending = []
    variables.make_checked(
        layer.kernel,
        lambda v, value: pending.append(callers.pending_set_weights_value(layer.bias)),
        contextlib.nullcontext)
    kernel, bias = np.ones((3, 2), "float32"), np.array([5.0, 6.0], "float32")
    layer.set_weights([kernel, bias])  # keras.layers.Layer.set_weights
    np.testing.assert_array_equal(np.asarray(pending[0]), bias)
    layer.kernel.assign(kernel)  # not inside set_weights
    assert pending[1] is None


def test_calling_callback_list():
    found = []

    class Probe(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            found.append(callers.calling_callback_list(self, skip=1))

    probe = Probe()
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=1, verbose=0,
              callbacks=[probe])
    assert isinstance(found[0], keras.callbacks.CallbackList)
    assert any(c is probe for c in found[0].callbacks)
    assert callers.calling_callback_list(probe, skip=1) is None  # not from Keras


def test_in_optimizer_update():
    # The optimizer writes the update to the TensorFlow variable itself, and
    # the constraint through the Keras variable's `assign`.
    variable = keras.Variable(np.ones(3, "float32"))
    variable.constraint = keras.constraints.NonNeg()
    during = []
    variables.make_checked(variable, lambda v, value: during.append(
        callers.in_optimizer_update()), contextlib.nullcontext)
    optimizer = keras.optimizers.SGD(0.1)
    optimizer.apply([tf.ones(3)], [variable])  # eager: assigns the variable
    assert during and all(during)
    variable.assign(np.zeros(3, "float32"))
    assert during[-1] is False


# layers -------------------------------------------------------------------

def test_flatten_layers_finds_cells_in_wrappers():
    inner = keras.Sequential([keras.Input((4, 3)), keras.layers.Bidirectional(
        keras.layers.LSTM(2, return_sequences=True)),
        keras.layers.TimeDistributed(keras.layers.Dense(2))])
    model = keras.Sequential([keras.Input((4, 3)), inner])
    kinds = [type(l).__name__ for l in layers.flatten_layers(model)]
    assert kinds[0] == "Sequential" and kinds.count("LSTMCell") == 2
    assert "Dense" in kinds and "TimeDistributed" in kinds
    inside = layers.flatten_layers(model, include_self=False)
    assert inner in inside and model not in inside


def test_own_variables_are_what_keras_saves():
    for layer, shape in ((keras.layers.Dense(2), (None, 3)),
                         (keras.layers.BatchNormalization(), (None, 3))):
        layer.build(shape)
        store = {}
        keras.layers.Layer.save_own_variables(layer, store)
        own = layers.own_variables(layer)
        assert [store[str(i)] for i in range(len(store))] == own
        assert layers.own_trainable_variables(layer) == [
            v for v in own if v.trainable]


def test_check_load_own_variables():
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    layers.check_load_own_variables(layer, {"0": 0, "1": 0})
    with pytest.raises(ValueError, match="expected 2 variables, but received 1"):
        layers.check_load_own_variables(layer, {"0": 0})


# variables ----------------------------------------------------------------

def test_checked_variable_sees_every_eager_write():
    seen = []
    variable = _checked(keras.Variable(np.zeros(2, "float32")), seen)
    variable.assign([1.0, 2.0])
    variable.assign_add([1.0, 1.0])
    variable.assign_sub([0.5, 0.5])
    np.testing.assert_array_equal(variable.numpy(), [1.5, 2.5])
    assert [list(value) for _, value in seen] == [[1, 2], [2, 3], [1.5, 2.5]]
    assert type(variable).__name__ == "MaskedVariable"
    assert isinstance(variable, keras.Variable)


def test_checkpoint_restore_runs_in_restoring(tmp_path):
    restoring = []

    @contextlib.contextmanager
    def restore_context():
        restoring.append(True)
        yield

    variable = keras.Variable(np.array([1.0, 2.0], "float32"))
    path = tf.train.Checkpoint(v=variable).write(str(tmp_path / "ckpt"))
    variable.assign([0.0, 0.0])
    _checked(variable, [], restore_context)
    tf.train.Checkpoint(v=variable).read(path).assert_consumed()
    np.testing.assert_array_equal(variable.numpy(), [1.0, 2.0])
    assert restoring == [True]


# optimizer_slots ----------------------------------------------------------

def test_variable_index_and_trained_variables():
    a, b = keras.Variable(np.zeros(2, "float32")), keras.Variable(np.zeros(3, "float32"))
    optimizer = keras.optimizers.Adam()
    optimizer.build([a, b])
    assert optimizer_slots.trained_variables(optimizer) == [a, b]
    assert optimizer_slots.variable_index(optimizer, b) == 1
    with pytest.raises(KeyError):
        optimizer_slots.variable_index(optimizer, keras.Variable(np.zeros(1)))


# multi_optimizer ----------------------------------------------------------

def test_multi_optimizer_inner_optimizers_and_the_one_for_a_variable():
    from keras.src.optimizers.multi_optimizer import OptimizerMap

    adam, sgd = keras.optimizers.Adam(0.1), keras.optimizers.SGD(0.1)
    multi = keras.optimizers.MultiOptimizer(OptimizerMap(
        default_optimizer=sgd, optimizer_map={"kernel": adam}))
    assert multi_optimizer.inner_optimizers(multi) == [adam, sgd]
    kernel = keras.Variable([[1.0]], name="kernel")  # the map matches paths
    bias = keras.Variable([0.0], name="bias")
    multi.build([kernel, bias])
    assert multi_optimizer.inner_optimizer_for(multi, kernel) is adam
    assert multi_optimizer.inner_optimizer_for(multi, bias) is sgd
    assert multi_optimizer.inner_optimizer_for(multi, keras.Variable([1.0])) is None


# rnn ----------------------------------------------------------------------

def test_dropout_rnn_cell_is_keras_own():
    assert issubclass(keras.layers.LSTMCell, rnn.DropoutRNNCell)
    for method in ("get_dropout_mask", "get_recurrent_dropout_mask",
                   "reset_dropout_mask", "reset_recurrent_dropout_mask"):
        assert callable(getattr(rnn.DropoutRNNCell, method))
    # The hook the sparse cells override to draw their masks with Philox.
    assert list(inspect.signature(rnn.DropoutRNNCell._create_dropout_mask).parameters) == [
        "self", "step_input", "dropout_rate"]


def test_may_use_cudnn():
    gpu = bool(tf.config.list_logical_devices("GPU"))
    assert rnn.may_use_cudnn("tanh", "sigmoid", False, True) is gpu
    assert rnn.may_use_cudnn("relu", "sigmoid", False, True) is False
    assert rnn.may_use_cudnn("tanh", "sigmoid", False, True, reset_after=False) is False
    # Keras's own LSTM decides the same way.
    assert keras.layers.LSTM(2).supports_jit is not gpu


# functional ---------------------------------------------------------------

def test_graph_and_run_through_graph():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2),
                              keras.layers.Dropout(0.5)])
    graph = functional.graph(model)
    assert isinstance(graph, keras.Model) and graph is not model
    assert functional.graph(graph) is graph

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    assert functional.graph(Subclassed()) is None
    assert functional.graph(keras.Sequential([keras.layers.Dense(2)])) is None
    ops = []

    def call(op, *args, **kwargs):
        ops.append(type(op).__name__)
        return op(*args, **kwargs)

    x = np.ones((1, 3), "float32")
    out = functional.run_through_graph(graph, x, call)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), model(x), rtol=1e-6)
    assert ops == ["Dense", "Dropout"]
    for layer in (model.layers[0], model.layers[1], keras.layers.ReLU(),
                  keras.layers.LSTMCell(2), keras.layers.Add()):
        assert functional.takes_training(layer) == (
            "training" in inspect.signature(layer.call).parameters)
    assert functional.takes_training(model.layers[1])


# training -----------------------------------------------------------------

def test_compiled_loss():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.ones((2, 3), "float32"), np.zeros((2, 1), "float32")
    y_pred = model(x)
    expected = model.compute_loss(x, y, y_pred, training=False)
    np.testing.assert_allclose(training.compiled_loss(model, x, y, y_pred, None),
                               expected)


@pytest.mark.parametrize("delete_checkpoint", [True, False])
def test_backup_and_restore_hooks_are_keras_own(tmp_path, delete_checkpoint):
    # The hooks the atomic backup overrides and the attributes it reads: a
    # Keras that renames them must fail here, not resume from nothing.
    import keras

    from keras_sparse_rnn._keras.backup import atomic_backup_and_restore

    for hook in ("_load_model", "_save_model"):
        assert callable(getattr(keras.callbacks.BackupAndRestore, hook))
    written = {}
    backup = atomic_backup_and_restore(str(tmp_path / "b"),
                                       lambda path, value: written.update(value),
                                       delete_checkpoint)
    assert isinstance(backup, keras.callbacks.BackupAndRestore)
    assert backup._training_metadata_path.startswith(str(tmp_path / "b"))
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.ones((4, 2), "float32")
    model.fit(x, x[:, :1], epochs=2, callbacks=[backup], verbose=0)
    # After 2 epochs: 2 completed, the epoch a resumed fit starts from.
    assert written == {"epoch": 2, "batch": 0, "weights": "epoch-2.weights.h5"}
    assert hasattr(model, "_initial_epoch")
    # Keras's own argument decides whether the backup outlives the fit.
    kept = sorted(p.name for p in (tmp_path / "b").glob("*.weights.h5"))
    assert kept == ([] if delete_checkpoint else ["epoch-2.weights.h5"])
