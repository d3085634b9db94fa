"""What an export converts and in which forms: the `ExportPlan`.

`plan_export` turns the user's model and options into a plan: the float32
model to compare with (`model`), the model the converter traces (`target`:
the same model, or its one-step model when streaming), the static input
shapes of the file and of the verification data, the signature names, and
the loop forms to try in order (`forms`: `False` for a `WHILE` loop, `True`
unrolled, `None` for a model without a loop). A plan is built before
anything is converted, so shape and batch errors come first.
"""

import dataclasses

import keras

from keras_sparse_rnn.export import prepare
from keras_sparse_rnn.export.report import ExportError
from keras_sparse_rnn.export.streaming import input_names, streaming_model

DEFAULT_STREAM_STEPS = 8


@dataclasses.dataclass
class ExportPlan:
    """The model to convert, its static shapes and names, and its forms.

    Attributes:
        model: the model to compare with (float32, at the file's batch size).
        target: the model the converter traces (`model`, or its step model).
        info: the `StreamingInfo` of the step model (`None` unless streaming).
        streaming: whether `target` is a one-time-step model.
        batch_size: the file's static batch size.
        steps: the time steps of the verification sequences (`None` for
            inputs without a time axis).
        shapes: the static shapes of `target`'s inputs.
        data_shapes: the shapes of one batch of data for `model`.
        input_names, output_names: the signature names, in order.
        forms: the `unroll` values to try, in order.
        notes: what preparing the model changed, for the report.
    """

    model: keras.Model
    target: keras.Model
    info: object
    streaming: bool
    batch_size: int
    steps: object
    shapes: list
    data_shapes: list
    input_names: list
    output_names: list
    forms: list
    notes: list

    @property
    def sequence_length(self):
        """The file's static sequence length (1 for a streaming file)."""
        return 1 if self.streaming else self.steps

    @property
    def state_names(self):
        return list(self.info.state_names) if self.streaming else []

    def form_name(self, unroll):
        """How a report or an error names the form `unroll`."""
        if self.streaming:
            return "the streaming (one-step) model"
        return {None: "the model", True: "unroll=True",
                False: "unroll=False (WHILE loop)"}[unroll]


def plan_export(model, *, streaming, batch_size, sequence_length, unroll,
                quantization):
    """The `ExportPlan` of `model` (checked by `check_exportable`)."""
    if streaming:
        plan = _streaming_plan(model, batch_size, sequence_length)
    else:
        plan = _sequence_plan(model, batch_size, sequence_length, unroll,
                              quantization)
    if len(set(plan.input_names)) != len(plan.input_names):
        raise ExportError(f"input names are not unique: {plan.input_names}")
    return plan


def _streaming_plan(model, batch_size, sequence_length):
    model, notes = prepare.export_model(model, None)  # float32 compute
    if batch_size is None:
        batch_size = model.inputs[0].shape[0]
        if batch_size is None:
            raise ExportError(
                "batch_size is None and the model's batch size is "
                "unknown; pass batch_size (e.g. 1)"
            )
    target, info = streaming_model(model, batch_size)
    shapes = [tuple(x.shape) for x in target.inputs]
    steps = sequence_length
    if steps is None:
        steps = model.inputs[0].shape[1] or DEFAULT_STREAM_STEPS
    data_shapes = [(batch_size, steps, *s[2:])
                   for s in shapes[:len(info.input_names)]]
    return ExportPlan(
        model=model, target=target, info=info, streaming=True,
        batch_size=batch_size, steps=steps, shapes=shapes,
        data_shapes=data_shapes,
        input_names=info.input_names + info.state_names,
        output_names=info.output_names + info.state_names,
        forms=[None], notes=notes,
    )


def _sequence_plan(model, batch_size, sequence_length, unroll, quantization):
    stateful = prepare.stateful_layers(model)
    if stateful:
        raise ExportError(
            f"layer(s) {stateful} are stateful=True: a TFLite file has no "
            "variables to carry their state between calls. Export with "
            "streaming=True (the states become inputs and outputs), or "
            "rebuild the model with stateful=False."
        )
    # Float32 compute, at the batch size asked for.
    model, notes = prepare.export_model(model, batch_size)
    shapes = static_shapes(model, batch_size, sequence_length)
    if not prepare.has_rnn(model):
        forms = [None]
    elif unroll == "auto":
        # int8 calibration of a WHILE loop crashes TF 2.21: unroll int8.
        forms = [True] if quantization == "int8" else [False, True]
    else:
        forms = [unroll]
    return ExportPlan(
        model=model, target=model, info=None, streaming=False,
        batch_size=shapes[0][0],
        steps=shapes[0][1] if len(shapes[0]) > 1 else None,
        shapes=shapes, data_shapes=shapes,
        input_names=input_names(model.inputs),
        output_names=[f"output_{i}" for i in range(len(
            keras.tree.flatten(model.outputs)))],
        forms=forms, notes=notes,
    )


def static_shapes(model, batch_size, sequence_length):
    """The input shapes of `model` with the batch and time axes made static;
    ExportError where a dimension stays unknown or disagrees."""
    return [_static_shape(x, batch_size, sequence_length)
            for x in model.inputs]


def _static_shape(x, batch_size, sequence_length):
    shape = list(x.shape)
    shape[0] = _static_dim(
        shape[0], batch_size,
        unknown=f"model input '{x.name}' has an unknown batch size and "
        "batch_size is None: TFLite builtin RNN loops need a static batch; "
        "pass batch_size (e.g. 1)",
        mismatch=f"model input '{x.name}' has batch size {shape[0]}, but "
        f"batch_size={batch_size}; pass batch_size={shape[0]}",
    )
    if len(shape) > 1:
        shape[1] = _static_dim(
            shape[1], sequence_length,
            unknown=f"model input '{x.name}' has shape {tuple(x.shape)}: its "
            "sequence length is unknown and sequence_length is None. A "
            "TFLite file has static shapes: pass sequence_length (e.g. 35), "
            "or streaming=True for a one-step model.",
            mismatch=f"model input '{x.name}' has sequence length "
            f"{shape[1]}, but sequence_length={sequence_length}",
        )
    for axis, d in enumerate(shape):
        if d is None:
            raise ExportError(
                f"model input '{x.name}' has shape {tuple(x.shape)}: "
                f"dimension {axis} is unknown; TFLite needs static shapes"
            )
    return tuple(int(d) for d in shape)


def _static_dim(dim, asked, *, unknown, mismatch):
    """The model's `dim`, or the `asked` one where the model's is unknown;
    ExportError(`unknown`) if both are, ExportError(`mismatch`) if they
    disagree."""
    if dim is None:
        if asked is None:
            raise ExportError(unknown)
        return asked
    if asked is not None and dim != asked:
        raise ExportError(mismatch)
    return dim
