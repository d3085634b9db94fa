"""Our recurrent layers and cells against Keras's, built with the same arguments.

`SparseLSTM` and `SparseGRU` cannot run `keras.layers.LSTM.__init__` /
`GRU.__init__` (those build a Keras cell of their own): they repeat what it
sets after `keras.layers.RNN.__init__`. These tests compare every attribute,
the config, the variables and the cuDNN choice with the Keras layer built
from the same arguments, so that a Keras upgrade that changes any of it
fails here. The sparse settings are the only allowed difference.
"""

import importlib
import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_sparse_rnn import SparseGRU, SparseGRUCell, SparseLSTM, SparseLSTMCell
from keras_sparse_rnn.layers import SparseRHN, SparseRHNCell

#: The config keys only the sparse layers and cells have.
SPARSE_KEYS = {"sparsity", "mask_seed", "block", "sparse_kernel",
               "sparse_recurrent_kernel", "compute_path"}
#: The attributes only a sparse cell has, before and after `build`.
SPARSE_CELL_ATTRS = SPARSE_KEYS | {"_sparse_matrices", "_owner_description",
                                   "_block_cache", "_step_products", "_in_call",
                                   "_traced_fan_in"}
SPARSE_BUILT_ATTRS = {"kernel_mask", "recurrent_kernel_mask"}

PAIRS = {
    "lstm": (keras.layers.LSTM, SparseLSTM),
    "gru": (keras.layers.GRU, SparseGRU),
}
CELL_PAIRS = {
    "lstm": (keras.layers.LSTMCell, SparseLSTMCell),
    "gru": (keras.layers.GRUCell, SparseGRUCell),
}

# Every argument of keras.layers.LSTM / GRU away from its default, with the
# RNN ones (`zero_output_for_mask`, `dtype`, `trainable`) too.
EVERY_ARGUMENT = dict(
    activation="relu", recurrent_activation="hard_sigmoid", use_bias=False,
    kernel_initializer="he_normal", recurrent_initializer="glorot_normal",
    bias_initializer="ones", kernel_regularizer="l2",
    recurrent_regularizer="l1", bias_regularizer=keras.regularizers.L1L2(0.01, 0.02),
    activity_regularizer="l2", kernel_constraint="non_neg",
    recurrent_constraint="unit_norm", bias_constraint="max_norm",
    dropout=0.25, recurrent_dropout=0.1, seed=7, return_sequences=True,
    return_state=True, go_backwards=True, stateful=True, unroll=True,
    use_cudnn=False, implementation=1, zero_output_for_mask=True,
    dtype="float64", trainable=False,
)
#: The argument only one of the two has; alone, GRU's rules out cuDNN.
EXTRA = {"lstm": dict(unit_forget_bias=False), "gru": dict(reset_after=False)}
ARGUMENTS = {
    "defaults": {},
    "own_argument": {},  # EXTRA's
    "every_argument": EVERY_ARGUMENT,
    "use_cudnn_true": dict(use_cudnn=True),
    "dropout_only": dict(dropout=0.3),  # cuDNN stays possible
    "recurrent_dropout": dict(recurrent_dropout=0.3),
    "unrolled": dict(unroll=True),
    "no_bias": dict(use_bias=False),
    "relu": dict(activation="relu"),
}


def _is_mask(value):
    """A mask variable, or TensorFlow's checkpoint reference to one."""
    value = getattr(value, "ref", value)
    return isinstance(value, keras.Variable) and value.name.endswith("_mask")


def _described(value):
    """`value` as plain data that two equal settings share: Keras objects
    by their serialization, variables by name, shape and dtype."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):  # the masks are compared apart
        return [_described(v) for v in value if not _is_mask(v)]
    if isinstance(value, dict):
        return {k: _described(v) for k, v in value.items() if not _is_mask(v)}
    if isinstance(value, keras.InputSpec):
        return repr(value)
    if isinstance(value, keras.Variable):
        return ("variable", value.name, tuple(value.shape), value.dtype,
                value.trainable)
    if hasattr(value, "ref") and hasattr(value, "name"):  # checkpoint deps
        return ("reference", value.name, _described(value.ref))
    if isinstance(value, keras.random.SeedGenerator):
        return ("seed_generator", value._initial_seed)
    if isinstance(value, keras.layers.Layer):
        return "layer"  # the cells are compared on their own
    if isinstance(value, (keras.initializers.Initializer,
                          keras.regularizers.Regularizer,
                          keras.constraints.Constraint,
                          keras.DTypePolicy)) or callable(value):
        return keras.saving.serialize_keras_object(value)  # activations too
    return type(value).__name__


#: Set per instance by `keras.layers.Layer.__new__`: the recorded
#: constructor arguments and the wrappers of the class's own `build` and
#: `quantize`, which differ by construction.
_PER_CLASS = {"_auto_config", "build", "quantize"}


def _attributes(obj, skip=()):
    return {k: _described(v) for k, v in vars(obj).items()
            if k not in skip and k not in _PER_CLASS}


def _assert_same_attributes(dense, sparse, extra):
    """Same attribute names, but `extra` only in `sparse`; same values."""
    dense_attrs, sparse_attrs = _attributes(dense), _attributes(sparse, extra)
    assert set(vars(sparse)) - set(vars(dense)) == set(extra)
    assert sorted(sparse_attrs) == sorted(dense_attrs)
    for name in dense_attrs:
        assert sparse_attrs[name] == dense_attrs[name], name


def _assert_same_config(dense_config, sparse_config):
    assert set(sparse_config) - set(dense_config) == SPARSE_KEYS
    assert {k: v for k, v in sparse_config.items()
            if k not in SPARSE_KEYS} == dense_config


def _pair(kind, arguments, **sparse_arguments):
    dense_cls, sparse_cls = PAIRS[kind]
    args = dict(ARGUMENTS[arguments])
    if arguments in ("every_argument", "own_argument"):
        args.update(EXTRA[kind])
    dense = dense_cls(3, name="rnn", **args)
    sparse = sparse_cls(3, sparsity=0.25, mask_seed=1, name="rnn", **args,
                        **sparse_arguments)
    return dense, sparse


@pytest.fixture(params=[False, True], ids=["cpu", "gpu_available"])
def gpu_available(request, monkeypatch):
    """Whether Keras sees a GPU: with one, the cuDNN choice turns XLA off."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the cuDNN choice is made on TensorFlow only")
    # The module, not the `rnn` function that its package exports.
    rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")
    monkeypatch.setattr(rnn, "_is_gpu_available", lambda: request.param)
    return request.param


@pytest.mark.parametrize("arguments", sorted(ARGUMENTS))
@pytest.mark.parametrize("kind", sorted(PAIRS))
def test_layer_equals_keras_layer(kind, arguments, gpu_available):
    dense, sparse = _pair(kind, arguments)
    _assert_same_attributes(dense, sparse, ())
    _assert_same_config(dense.get_config(), sparse.get_config())
    _assert_same_attributes(dense.cell, sparse.cell, SPARSE_CELL_ATTRS)
    _assert_same_config(dense.cell.get_config(), sparse.cell.get_config())
    # Spelled out: what the layer sets after keras.layers.RNN.__init__.
    for name in ("input_spec", "use_cudnn", "supports_jit", "return_sequences",
                 "return_state", "go_backwards", "stateful", "unroll",
                 "zero_output_for_mask", "state_size", "supports_masking"):
        assert _described(getattr(sparse, name)) == _described(
            getattr(dense, name)), name
    if gpu_available and arguments in ("defaults", "dropout_only"):
        assert sparse.supports_jit is False  # the cuDNN branch was taken

    shape = (2, 4, 5)
    dense.build(shape)
    sparse.build(shape)
    _assert_same_attributes(dense, sparse, ())
    _assert_same_attributes(dense.cell, sparse.cell,
                            SPARSE_CELL_ATTRS | SPARSE_BUILT_ATTRS)
    assert [v.path for v in sparse.weights if not v.name.endswith("_mask")] == [
        v.path for v in dense.weights]


@pytest.mark.parametrize("kind", sorted(PAIRS))
def test_bad_use_cudnn_is_refused_like_keras(kind):
    dense_cls, sparse_cls = PAIRS[kind]
    with pytest.raises(ValueError, match="use_cudnn"):
        dense_cls(3, use_cudnn="maybe")
    with pytest.raises(ValueError, match="use_cudnn must be one of"):
        sparse_cls(3, use_cudnn="maybe")


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("kind", sorted(PAIRS))
def test_same_global_seed_same_weights_and_dropout_as_keras(kind, jit_compile):
    # Building the layer draws the same random numbers as Keras's: with the
    # same `keras.utils.set_random_seed`, sparsity 0 gives Keras's weights
    # and dropout masks, without copying anything. The cells name Philox for
    # their masks, Keras auto-selects it on the CPU: the same bits, eager or
    # compiled by XLA.
    dense_cls, sparse_cls = PAIRS[kind]
    args = dict(dropout=0.4, recurrent_dropout=0.3, return_sequences=True)
    x = np.random.default_rng(0).normal(size=(3, 4, 5)).astype("float32")
    keras.utils.set_random_seed(11)
    dense = dense_cls(6, **args)
    dense.build(x.shape)
    keras.utils.set_random_seed(11)
    sparse = sparse_cls(6, sparsity=0.0, **args)
    sparse.build(x.shape)
    for a, b in zip(dense.weights, [v for v in sparse.weights
                                    if not v.name.endswith("_mask")]):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    def train_call(layer):
        return tf.function(lambda v: layer(v, training=True), jit_compile=jit_compile)(x)

    out = train_call(dense)
    np.testing.assert_allclose(train_call(sparse), out, atol=1e-6)
    assert not np.allclose(out, dense(x), atol=1e-3)  # dropout was on


@pytest.mark.parametrize("arguments", ["defaults", "every_argument"])
@pytest.mark.parametrize("kind", sorted(CELL_PAIRS))
def test_cell_equals_keras_cell(kind, arguments):
    dense_cls, sparse_cls = CELL_PAIRS[kind]
    args = {}
    if arguments == "every_argument":
        args = {k: v for k, v in EVERY_ARGUMENT.items()
                if k in _cell_argument_names(kind)}
        args.update(EXTRA[kind], dtype="float64", trainable=False)
    dense = dense_cls(3, name="cell", **args)
    sparse = sparse_cls(3, sparsity=0.25, mask_seed=1, name="cell", **args)
    _assert_same_attributes(dense, sparse, SPARSE_CELL_ATTRS - {"_owner_description"})
    _assert_same_config(dense.get_config(), sparse.get_config())
    dense.build((None, 5))
    sparse.build((None, 5))
    _assert_same_attributes(
        dense, sparse,
        (SPARSE_CELL_ATTRS - {"_owner_description"}) | SPARSE_BUILT_ATTRS)


def _cell_argument_names(kind):
    cls = CELL_PAIRS[kind][0]
    return set(inspect.signature(cls.__init__).parameters) | {"implementation"}


def test_rhn_layer_is_the_rnn_of_its_cell():
    # SparseRHN has no Keras counterpart: its RNN part equals a
    # keras.layers.RNN of the same cell and arguments, plus LSTM's input spec.
    args = dict(return_sequences=True, return_state=True, go_backwards=True,
                stateful=True, unroll=True, zero_output_for_mask=True)
    layer = SparseRHN(3, depth=2, mask_seed=1, name="rnn", **args)
    rnn = keras.layers.RNN(SparseRHNCell(3, depth=2, mask_seed=1,
                                         name="rhn_cell"), name="rnn", **args)
    attrs = _attributes(layer, {"_input_spec"})
    assert attrs == _attributes(rnn, {"_input_spec"})
    assert layer.input_spec.ndim == 3 and rnn.input_spec is None
    rnn_config = rnn.get_config()
    cell_config = rnn_config.pop("cell")["config"]
    for key in ("name", "trainable", "dtype"):
        cell_config.pop(key)
    assert layer.get_config() == {**rnn_config, **cell_config,
                                  "activity_regularizer": None}
