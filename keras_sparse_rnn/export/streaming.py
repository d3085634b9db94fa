"""A single-time-step model with the recurrent states as inputs and outputs.

`streaming_model(model)` rebuilds a sequence model so that one call reads one
time step: every recurrent layer (`keras.layers.RNN` and its subclasses:
`SparseLSTM`, `SparseGRU`, `SparseRHN`, `LSTM`, `GRU`, ...) is replaced by one
call of its own cell, whose states enter as extra model inputs and leave as
extra model outputs. The cells and every other layer are reused, not copied:
the step model shares the weights of `model`.
"""

import re

import keras
from keras import ops

from keras_sparse_rnn._keras import functional as functional_lib

# Layers that compute each time step from that step alone (the last axis is
# the feature axis): they give the same result on one step as on the whole
# sequence. Anything else (pooling over time, convolutions, attention,
# Flatten, Bidirectional) cannot be streamed.
_PER_STEP_LAYERS = (
    keras.layers.InputLayer,
    keras.layers.Embedding,
    keras.layers.Dense,
    keras.layers.EinsumDense,
    keras.layers.TimeDistributed,
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.GaussianDropout,
    keras.layers.GaussianNoise,
    keras.layers.AlphaDropout,
    keras.layers.ActivityRegularization,
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.PReLU,
    keras.layers.ELU,
    keras.layers.Identity,
    keras.layers.Rescaling,
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
    keras.layers.Average,
    keras.layers.Maximum,
    keras.layers.Minimum,
)
# Layers that are per step only when they work on the last axis.
_LAST_AXIS_LAYERS = (
    keras.layers.Softmax,
    keras.layers.LayerNormalization,
    keras.layers.BatchNormalization,
    keras.layers.Concatenate,
)

# Keras ops recorded in a functional graph (e.g. the `not_equal` of an
# Embedding's mask_zero, or `x * 2`) that work elementwise.
_ELEMENTWISE_OPS = frozenset({
    "Abs", "Add", "Cast", "Clip", "Divide", "Equal", "Exp", "Greater",
    "GreaterEqual", "Less", "LessEqual", "Log", "LogicalAnd", "LogicalNot",
    "LogicalOr", "Maximum", "Minimum", "Multiply", "Negative", "NotEqual",
    "Power", "Relu", "Sigmoid", "Softplus", "Sqrt", "Square", "Subtract",
    "Tanh", "TrueDivide", "Where",
})


def _is_last_axis(layer):
    axis = getattr(layer, "axis", -1)
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    return all(a == -1 or (a is not None and a >= 2) for a in axes)


def safe_name(name):
    """`name` with every character outside `[A-Za-z0-9_]` replaced by `_`
    (the form a TFLite signature name takes)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


# The names Keras gives an unnamed `keras.Input`: `keras_tensor_<n>` in the
# session that made the model, `input_layer_<n>` once saved and loaded or
# cloned; both count the inputs made so far in the session.
_AUTOMATIC_INPUT_NAME = re.compile(r"(keras_tensor|input_layer)(_\d+)?")


def input_names(inputs):
    """The signature names of a model's inputs: the name given to
    `keras.Input(..., name=...)`, made safe (`safe_name`); an unnamed input
    (whose Keras name counts the inputs made in the session, and changes
    with `load_model` or `sparsify`) is `input_<i>`, `i` its position."""
    return [f"input_{i}" if _AUTOMATIC_INPUT_NAME.fullmatch(x.name)
            else safe_name(x.name) for i, x in enumerate(inputs)]


class StreamingInfo:
    """What `streaming_model` built: names and shapes of inputs and outputs.

    Attributes:
        input_names: names of the step model's data inputs (one time step
            each, shape `(batch, 1, ...)`), in the order of `model.inputs`:
            the `keras.Input` names, `input_<i>` for unnamed ones (see
            `input_names`).
        output_names: names of the model's outputs, in order.
        state_names: names of the recurrent states, in order: each is both an
            input (the state before the step) and an output (after it).
        state_shapes: `{name: shape}` of each state.
        rnn_layers: the recurrent layers replaced by their cells.
    """

    def __init__(self):
        self.input_names = []
        self.output_names = []
        self.state_names = []
        self.state_shapes = {}
        self.state_dtypes = {}
        self.rnn_layers = []

    def __repr__(self):
        return (
            f"StreamingInfo(inputs={self.input_names}, "
            f"outputs={self.output_names}, states={self.state_names})"
        )


class _RNNStep(keras.layers.Layer):
    """One time step of an RNN layer: its cell, called once.

    A layer of its own (named after the RNN layer) so that the step model's
    operation names stay unique when several RNN layers have cells of the
    same name; it shares the cell and its weights.
    """

    def __init__(self, rnn, structure, **kwargs):
        super().__init__(name=f"{rnn.name}_step", dtype=rnn.dtype_policy,
                         **kwargs)
        self.rnn = rnn
        self._structure = keras.tree.map_structure(lambda _: 0, structure)
        self.built = True

    def call(self, inputs, states):
        cell = self.rnn.cell
        kwargs = {}
        if functional_lib.takes_training(cell):
            kwargs["training"] = False
        states = keras.tree.pack_sequence_as(self._structure, list(states))
        output, new_states = cell(ops.squeeze(inputs, axis=1), states,
                                  **kwargs)
        if not keras.tree.is_nested(new_states):
            new_states = [new_states]
        if self.rnn.return_sequences:
            output = ops.expand_dims(output, axis=1)
        return [output, *keras.tree.flatten(new_states)]


class _Builder:
    def __init__(self, batch_size):
        self.batch_size = batch_size
        self.info = StreamingInfo()
        self.state_inputs = []
        self.state_outputs = []

    def _state_name(self, layer, i):
        base = safe_name(f"{layer.name}_state_{i}")
        name, k = base, 1
        taken = set(self.info.state_names) | set(self.info.input_names)
        while name in taken:
            name = f"{base}_{k}"
            k += 1
        return name

    def rnn_step(self, layer, x, *args, **kwargs):
        where = f"Layer '{layer.name}' ({type(layer).__name__})"
        if getattr(layer, "go_backwards", False):
            raise ValueError(
                f"{where} has go_backwards=True: it reads the sequence from "
                "its end and cannot be streamed one step at a time. Export it "
                "with streaming=False."
            )
        kwargs.pop("mask", None)
        if args or kwargs.get("initial_state") is not None:
            raise ValueError(
                f"{where} is called with an explicit initial_state; the "
                "streaming exporter makes the states model inputs itself and "
                "cannot stream a layer whose initial state comes from another "
                "layer. Export it with streaming=False."
            )
        if len(x.shape) != 3 or x.shape[1] != 1:
            raise ValueError(
                f"{where} receives a tensor of shape {x.shape} in the step "
                "model; expected (batch, 1, features). Only a sequence input "
                "of one step can be streamed."
            )
        cell = layer.cell
        for c in getattr(cell, "cells", [cell]):
            for size in keras.tree.flatten(c.state_size):
                if not isinstance(size, int):
                    raise ValueError(
                        f"{where}: its cell's state_size {c.state_size} is not "
                        "a list of ints; only vector states can be streamed."
                    )
        # The zero state gives the states' structure, shapes and dtypes.
        structure = layer.get_initial_state(self.batch_size)
        leaves = keras.tree.flatten(structure)
        state_in = []
        for i, leaf in enumerate(leaves):
            name = self._state_name(layer, i)
            dtype = keras.backend.standardize_dtype(leaf.dtype)
            tensor = keras.Input(
                batch_shape=tuple(leaf.shape), dtype=dtype, name=name
            )
            self.info.state_names.append(name)
            self.info.state_shapes[name] = tuple(int(d) for d in leaf.shape)
            self.info.state_dtypes[name] = dtype
            state_in.append(tensor)
        self.state_inputs += state_in
        results = _RNNStep(layer, structure)(x, state_in)
        output, new_states = results[0], results[1:]
        if len(new_states) != len(state_in):
            raise ValueError(
                f"{where}: its cell returned {len(new_states)} state tensors "
                f"for {len(state_in)} state inputs; cannot stream it."
            )
        self.state_outputs += new_states
        self.info.rnn_layers.append(layer)
        if layer.return_state:
            return [output, *new_states]
        return output

    def call(self, op, *args, **kwargs):
        kwargs.pop("training", None)
        if isinstance(op, keras.layers.Bidirectional):
            raise ValueError(
                f"Layer '{op.name}' (Bidirectional) reads the whole sequence "
                "backwards and cannot be streamed one step at a time. Export "
                "it with streaming=False (the full-sequence model)."
            )
        if isinstance(op, keras.layers.RNN):
            return self.rnn_step(op, *args, **kwargs)
        if isinstance(op, keras.Sequential):
            functional = functional_lib.graph(op)
            if functional is None:
                raise ValueError(
                    f"Nested Sequential model '{op.name}' is not built with "
                    "an input shape; build it before exporting."
                )
            return self.run(functional, args[0] if len(args) == 1 else args)
        if isinstance(op, keras.Model) and functional_lib.graph(op) is not None:
            return self.run(op, args[0] if len(args) == 1 else list(args))
        elementwise_op = (not isinstance(op, keras.layers.Layer)
                          and type(op).__name__ in _ELEMENTWISE_OPS)
        if elementwise_op or isinstance(op, _PER_STEP_LAYERS) or (
                isinstance(op, _LAST_AXIS_LAYERS) and _is_last_axis(op)):
            if functional_lib.takes_training(op):
                kwargs["training"] = False
            return op(*args, **kwargs)
        kind = type(op).__name__
        raise ValueError(
            f"Layer '{op.name}' ({kind}) cannot be streamed: the step model "
            "only holds layers that work on each time step alone (Embedding, "
            "Dense, TimeDistributed, Dropout, activations, normalization on "
            "the last axis, merges, and RNN layers). Export it with "
            "streaming=False, or move the layer out of the model."
        )

    def run(self, functional, inputs):
        return functional_lib.run_through_graph(functional, inputs, self.call)


def streaming_model(model, batch_size=1):
    """Builds the one-time-step model of a sequence model.

    Each recurrent layer of `model` is replaced by one call of its cell; the
    cell's states become inputs (the state before the step) and outputs (the
    state after it) of the new model, one per state tensor (`h` and `c` for an
    LSTM). Stepping it through a sequence from zero states gives, at step
    `t`, what `model` gives at position `t` of the whole sequence (for
    outputs with a time axis) and at the end (for the others). The new model
    shares the layers, so it has the same weights.

    Args:
        model: a built functional or Sequential `keras.Model` whose inputs are
            sequences `(batch, time, ...)`, with `keras.layers.RNN` layers
            (any cell with vector states) and per-time-step layers around
            them. `Bidirectional`, `go_backwards=True` and layers that mix
            time steps (pooling over time, convolutions, attention) cannot be
            streamed. Masks (`mask_zero=True`) are not applied: feed only
            real tokens.
        batch_size: static batch size of the step model. Defaults to `1`.

    Returns:
        `(step_model, info)`: `step_model` takes
        `[*one_step_inputs, *states]` and returns `[*outputs, *new_states]`
        (lists, in the order of `info.input_names`, `info.state_names` and
        `info.output_names`, `info.state_names`); `info` is a
        `StreamingInfo`.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((None,), dtype="int32"),
    ...     SparseEmbedding(50, 8),
    ...     SparseLSTM(16, return_sequences=True),
    ...     SparseDense(50)])
    >>> step, info = streaming_model(model)
    >>> info.state_names
    ['sparse_lstm_state_0', 'sparse_lstm_state_1']
    """
    from keras_sparse_rnn.validation import check_int

    batch_size = check_int(batch_size, "batch_size", minimum=1)
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"model must be a keras.Model, got {type(model).__name__}"
        )
    functional = functional_lib.graph(model)
    if functional is None or not getattr(functional, "inputs", None):
        raise ValueError(
            f"model '{model.name}' must be a built functional or Sequential "
            "model (with an Input) to be streamed; a subclassed model has no "
            "graph of layers to rebuild."
        )
    builder = _Builder(batch_size)
    step_inputs = []
    for x, name in zip(functional.inputs, input_names(functional.inputs)):
        if len(x.shape) < 2:
            raise ValueError(
                f"Input '{x.name}' of model '{model.name}' has shape "
                f"{x.shape}; a streamed input must be a sequence "
                "(batch, time, ...)."
            )
        step_inputs.append(keras.Input(
            batch_shape=(batch_size, 1, *x.shape[2:]), dtype=x.dtype,
            name=name,
        ))
        builder.info.input_names.append(name)
    outputs = builder.run(
        functional,
        step_inputs[0] if len(step_inputs) == 1 else step_inputs,
    )
    if not builder.info.rnn_layers:
        raise ValueError(
            f"model '{model.name}' has no recurrent (keras.layers.RNN) layer: "
            "there is no state to stream. Export it with streaming=False."
        )
    outputs = keras.tree.flatten(outputs)
    builder.info.output_names = [f"output_{i}" for i in range(len(outputs))]
    step = keras.Model(
        step_inputs + builder.state_inputs,
        outputs + builder.state_outputs,
        name=f"{model.name}_step",
    )
    return step, builder.info
