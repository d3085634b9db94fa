"""Running an exported file in LiteRT and checking it against Keras.

`runner` loads a file with LiteRT's default XNNPACK delegate, or without it
when the delegate cannot prepare the file, and probes it once with zeros.
`verify_file` runs the verification batches through the file (a streaming
file is stepped through whole sequences from zero states) and through the
Keras model, and raises `ExportError` when a float32 file differs by more
than `FLOAT32_TOLERANCE * max(1, max |Keras output|)` or a quantized file
gives non-finite outputs. `xnnpack_note` says why a file runs without the
delegate.
"""

import dataclasses
import re

import numpy as np

from keras_sparse_rnn.export import batches as batches_lib
from keras_sparse_rnn.export.prepare import stateful_layers
from keras_sparse_rnn.export.report import ExportError

FLOAT32_TOLERANCE = 1e-5


@dataclasses.dataclass
class Verification:
    """How an exported file ran: delegate, signature and error.

    Attributes:
        xnnpack: whether it runs with the XNNPACK delegate.
        xnnpack_error: the delegate's error when it does not (else `None`).
        inputs, outputs: `{name: (shape, dtype)}` of `serving_default`.
        max_abs_error: largest |LiteRT - Keras| (`None`: not verified).
        tolerance: the float32 threshold (`None`: quantized or not verified).
        scale: `max(1, max |Keras output|)` of the verification outputs.
    """

    xnnpack: bool
    xnnpack_error: object
    inputs: dict
    outputs: dict
    max_abs_error: object = None
    tolerance: object = None
    scale: float = 1.0


def _interpreter(path, xnnpack):
    """A signature runner of the file, probed once with zeros."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kwargs = {}
    if not xnnpack:
        kwargs["experimental_op_resolver_type"] = (
            OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
    interpreter = Interpreter(model_path=path, **kwargs)
    runner = interpreter.get_signature_runner("serving_default")
    runner(**{name: np.zeros(d["shape"], d["dtype"])
              for name, d in runner.get_input_details().items()})
    return runner


def runner(path):
    """Runner with the XNNPACK delegate, else without: (runner, xnnpack,
    the XNNPACK error)."""
    try:
        return _interpreter(path, True), True, None
    except (RuntimeError, ValueError) as first:
        try:
            return _interpreter(path, False), False, first
        except (RuntimeError, ValueError) as second:
            raise ExportError(
                f"LiteRT cannot run the exported file: {second} (with the "
                f"XNNPACK delegate: {first})"
            ) from second


def _signature_details(runner, plan):
    """`{name: (shape, dtype)}` of the inputs and outputs, in the plan's
    order (the signature lists them sorted by name)."""
    def details(items, order):
        names = [n for n in order if n in items] + sorted(
            n for n in items if n not in order)
        return {k: (tuple(int(d) for d in items[k]["shape"]),
                    np.dtype(items[k]["dtype"]).name) for k in names}

    return (details(runner.get_input_details(), plan.input_names),
            details(runner.get_output_details(), plan.output_names))


def verify_file(path, unroll, plan, batches, quantization):
    """Runs the file at `path` (the plan's form `unroll`) in LiteRT against
    the Keras model on `batches`; a `Verification`, or ExportError beyond
    the tolerance."""
    # Looked up in this module at call time, so that a test can replace it.
    run, xnnpack, xnnpack_error = runner(path)
    inputs, outputs = _signature_details(run, plan)
    checked = Verification(xnnpack, xnnpack_error, inputs, outputs)
    if not batches:
        return checked
    if plan.streaming:
        error, scale = _stream_error(run, plan, batches)
    else:
        error, scale = _sequence_error(run, plan, batches)
    tolerance = FLOAT32_TOLERANCE * scale if quantization is None else None
    if not np.isfinite(error) or (tolerance is not None and error > tolerance):
        limit = (f"the float32 tolerance {tolerance:.1e}"
                 if tolerance is not None else "finite outputs")
        raise ExportError(
            f"verification failed: the LiteRT file "
            f"({plan.form_name(unroll)}) differs from "
            f"the Keras model by up to {error:.3e}, beyond {limit}"
        )
    return dataclasses.replace(checked, max_abs_error=error,
                               tolerance=tolerance, scale=scale)


def _max_error(got, ref, name):
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        raise ExportError(
            f"output '{name}': LiteRT gives shape {got.shape}, Keras "
            f"{ref.shape}"
        )
    if not np.all(np.isfinite(got)):
        return float("inf")
    return float(np.max(np.abs(got - ref))) if got.size else 0.0


def _scale(ref):
    return float(np.max(np.abs(ref))) if ref.size else 1


def _sequence_error(run, plan, batches):
    """Max error and output scale of a sequence (or loop-free) file."""
    err, scale = 0.0, 1.0
    for batch in batches:
        refs = batches_lib.keras_outputs(plan.model, batch)
        got = run(**dict(zip(plan.input_names, batch)))
        for name, ref in zip(plan.output_names, refs):
            err = max(err, _max_error(got[name], ref, name))
            scale = max(scale, _scale(ref))
    return err, scale


def _stream_error(run, plan, batches):
    """Max error and output scale of a streaming file stepped through whole
    sequences, against Keras on the whole sequences."""
    error, scale = 0.0, 1.0
    for batch in batches:
        refs = _keras_stream_refs(plan, batch)
        got = _step_through(run, plan.info, batch)
        e, s = _compare_stream(got, refs, plan.info.output_names)
        error, scale = max(error, e), max(scale, s)
    return error, scale


def _step_through(run, info, batch):
    """Runs the streaming file over whole sequences: per-step outputs."""
    states = batches_lib.zero_states(info)
    steps = batch[0].shape[1]
    outputs = []
    for t in range(steps):
        feeds = {n: a[:, t:t + 1] for n, a in zip(info.input_names, batch)}
        feeds.update(states)
        got = run(**feeds)
        outputs.append([got[n] for n in info.output_names])
        states = {n: got[n] for n in info.state_names}
    return outputs


def _compare_stream(outputs, refs, names):
    """Per-step outputs against full-sequence ones: max error, scale."""
    err, scale = 0.0, 1.0
    steps = len(outputs)
    for i, (name, ref) in enumerate(zip(names, refs)):
        first = np.asarray(outputs[0][i])
        if (ref.ndim == first.ndim and ref.ndim >= 2 and first.shape[1] == 1
                and ref.shape[1] == steps and steps > 1):
            got = np.concatenate([np.asarray(o[i]) for o in outputs], axis=1)
        else:
            got = np.asarray(outputs[-1][i])
        err = max(err, _max_error(got, ref, name))
        scale = max(scale, _scale(ref))
    return err, scale


def _keras_stream_refs(plan, batch):
    """Reference for a streaming check: the full model, or (for stateful
    layers, whose full-sequence call would use and change their stored
    state) the Keras step model."""
    if not stateful_layers(plan.model):
        return batches_lib.keras_outputs(plan.model, batch)
    per_step = [outs for _, _, outs in batches_lib.keras_step_through(
        plan.target, plan.info, batch)]
    refs = []
    for i in range(len(plan.info.output_names)):
        first = per_step[0][i]
        if first.ndim >= 2 and first.shape[1] == 1 and len(per_step) > 1:
            refs.append(np.concatenate([o[i] for o in per_step], axis=1))
        else:
            refs.append(per_step[-1][i])
    return refs


def xnnpack_note(xnnpack_error):
    """The report note of a file that runs without the XNNPACK delegate."""
    failed = sorted(set(re.findall(r"failed to delegate (\w+) node",
                                   str(xnnpack_error))))
    reason = (f"it fails to delegate {', '.join(failed)} nodes" if failed
              else str(xnnpack_error)[:120])
    return (
        "LiteRT's default XNNPACK delegate cannot prepare this file "
        f"({reason}); it runs with "
        "Interpreter(..., experimental_op_resolver_type="
        "OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)"
    )
