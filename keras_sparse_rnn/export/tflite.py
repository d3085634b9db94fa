"""`export_tflite`: a Keras 3 recurrent model to a LiteRT (TFLite) file.

`export_tflite` writes a `.tflite` file that uses builtin ops only, checks it
in the LiteRT interpreter against the Keras model, and returns an
`ExportReport`. It runs named steps, each in its own module: check the
arguments (`checks`), plan the target and its loop forms (`plan`), prepare
the verification and calibration batches (`batches`), try each form in turn
(trace and convert: `convert`; run and compare: `verify`), convert and
verify the other encodings of the working form and keep one (`choice`: the
smallest file close to the best candidate's error that runs with XNNPACK,
by default), and report (`report`). What it relies on (measured with TF 2.21 /
LiteRT 2.3):

- A Keras 3 RNN converts to a `WHILE` loop of `FULLY_CONNECTED` and
  elementwise ops (or, unrolled, to one copy of them per time step); the
  batch and sequence length must be static.
- The weights are folded in as constants (`convert_variables_to_constants_v2`):
  a loop that reads resource variables converts but fails at run time.
- `Optimize.EXPERIMENTAL_SPARSITY` stores sparse `FULLY_CONNECTED` weights
  compressed. Random sparsity adds a `DENSIFY` op (smaller file, dense compute);
  blocks of 1x4 along the input dimension (float32) reach `FULLY_CONNECTED`
  sparse, with no `DENSIFY`. The converter stores embedding tables
  (`GATHER`) dense; the exporter stores a sparse table in CSR form instead
  and looks it up with `GATHER` + `SCATTER_ND` (exact).
- The converter names each tensor after every op fused into it; unrolled,
  those names can outweigh the weights, so they are cut to 64 characters.
- Full-integer (`"int8"`) calibration of a `WHILE` loop crashes the TF 2.21
  calibrator (segmentation fault): int8 files are unrolled.
"""

import contextlib
import dataclasses
import functools
import os
import tempfile
import time
import warnings

from keras_sparse_rnn.export import choice as choice_lib
from keras_sparse_rnn.export import verify as verify_lib
from keras_sparse_rnn.export.batches import prepare_batches
from keras_sparse_rnn.export.checks import (
    check_exportable,
    check_options,
    writable_path,
)
from keras_sparse_rnn.export.convert import Converter
from keras_sparse_rnn.export.csr_embedding import csr_tables, table_notes
from keras_sparse_rnn.export.flatbuffer import tflite_ops
from keras_sparse_rnn.export.plan import plan_export
from keras_sparse_rnn.export.report import ExportError, ExportReport


def export_tflite(model, path, *, sequence_length=None, batch_size=1,
                  unroll="auto", quantization=None, representative_data=None,
                  sparse_encoding=True, streaming=False, verify=True,
                  compare_dense=True, prefer="balanced", require_xnnpack=True,
                  verbose=False):
    """Exports a Keras model to a LiteRT (TFLite) file of builtin ops.

    The masks are folded into the weights (the weights outside a mask are
    zero already; this is checked). With `sparse_encoding=True` the converter
    stores sparse `FULLY_CONNECTED` weights compressed: random sparsity is
    expanded by a `DENSIFY` op when the file loads (a smaller file, dense
    compute); weights in blocks of 1x4 along the input dimension (layers built
    with `block=(1, 4)`) are read sparse by `FULLY_CONNECTED`, with no
    `DENSIFY`. A sparse embedding table (`SparseEmbedding`) is stored in
    compressed sparse row form, when that is smaller, and looked up with
    `GATHER` + `SCATTER_ND` (the converter would store it dense). The file
    is written to a temporary file next to `path`, checked, then moved to
    `path`: on any error nothing is left at `path` (an existing file there is
    left as it was).

    Args:
        model: a built functional or Sequential `keras.Model` (TensorFlow
            backend) with inputs `(batch, time, ...)`: `SparseEmbedding`,
            `SparseLSTM`, `RNN(SparseLSTMCell(...))`, `SparseGRU`,
            `SparseRHN`, `SparseDense`, stacked, `Bidirectional`, Keras RNN
            layers with any cell whose weights are plain variables, and
            ordinary layers around them.
        path: the `.tflite` file to write.
        sequence_length: static number of time steps of the exported file;
            needed when the model's time dimension is `None` (except with
            `streaming=True`, where it is only the length of the verification
            sequences, default: the model's, else 8).
        batch_size: static batch size. Defaults to `1`. `None` uses the
            model's own static batch size (an error if it has none).
        unroll: `False`: a `WHILE` loop (file size independent of the length);
            `True`: the time loop unrolled (one copy of the cell's ops per
            step; required for `"int8"`, whose calibration of a `WHILE` loop
            crashes TF 2.21). `"auto"` (default) unrolls for `"int8"`, else
            tries the `WHILE` loop and falls back to unrolling if the loop
            fails to convert, to run or to verify. Ignored with
            `streaming=True` (one step has no loop).
        quantization: `None` (float32), `"float16"` (weights stored float16),
            `"dynamic_int8"` (int8 weights, float activations) or `"int8"`
            (int8 weights and activations, calibrated on
            `representative_data`; inputs and outputs stay float/int as in
            the model).
        representative_data: samples for `"int8"` calibration: an array
            `(samples, time, ...)` for a single-input model, a list of such
            arrays or a dict `{input name: array}`; the sample count must be a
            multiple of `batch_size`. With `streaming=True` the sequences are
            stepped through in Keras to calibrate the states too.
        sparse_encoding: turn on `Optimize.EXPERIMENTAL_SPARSITY` and the
            CSR embedding tables. With `"dynamic_int8"`/`"int8"` the sparse
            weights are expanded by `DENSIFY` unless in blocks of 1x16
            (`block=(1, 16)`), and LiteRT 2.3's default XNNPACK delegate may
            fail to prepare such a file: it then runs with
            `BUILTIN_WITHOUT_DEFAULT_DELEGATES`: such a file is kept only
            with `require_xnnpack=False` (`ExportReport.xnnpack` is then
            False, and a warning says so). `"float16"` with block-sparse
            weights is refused (LiteRT 2.3 computes NaN).
        streaming: export a single-time-step model instead: inputs are one
            step of each model input `(batch, 1, ...)` and every recurrent
            state (`<layer>_state_<i>`), outputs are the model's outputs
            (`output_<i>`, with a time axis of 1 where the model's have one)
            and the new states, under the same names. See `streaming_model`.
            An input is named as given to `keras.Input(..., name=...)`, an
            unnamed one `input_<i>` (its position), in streaming and
            sequence files alike, whether the model was made in memory,
            loaded or sparsified; the signature, the interpreter's tensor
            details and the report use the same names.
        verify: `True` runs the file in the LiteRT interpreter on random
            inputs (tokens within the embedding's vocabulary) and compares
            with the Keras model; or the inputs to use (same forms as
            `representative_data`); `False` skips it. float32 files must
            match within `1e-5 * max(1, max |Keras output|)`, else
            `ExportError`. Quantized files must give finite outputs; their
            error is reported. A streaming file is stepped through whole
            sequences from zero states and compared with the Keras model on
            the whole sequences.
        compare_dense: also convert the model in the other encodings
            (without sparse encoding and, with CSR tables, with the tables
            only), verify each and keep one by the rule of `prefer`; the
            report lists every candidate (`ExportReport.candidates`: size,
            error, XNNPACK, conversion time) and `dense_size_bytes`. Each
            extra conversion takes about as long as the first; `False`
            skips them, unless the first file needs the builtin kernels and
            `require_xnnpack` is True.
        prefer: how to choose among the candidate files (all of the same
            loop form and quantization) that verify:
            `"balanced"` (default): the smallest of those whose error is
            close to the best candidate's, i.e. at most
            `1.25 * best error + 1e-5 * max(1, max |Keras output|)` (float32
            files that verify are all close; a quantized encoding that loses
            accuracy is not kept for its bytes). `"size"`: the smallest file,
            whatever its error. `"accuracy"`: the file with the lowest error
            (then the smallest). Without verification the smallest is kept.
            See `keras_sparse_rnn.export.choice`.
        require_xnnpack: `True` (default): keep only a file that
            `Interpreter(path)` runs with its default XNNPACK delegate (if no
            candidate does, the best one is kept with a warning). `False`:
            also files that need `BUILTIN_WITHOUT_DEFAULT_DELEGATES` (e.g. a
            smaller sparse `"dynamic_int8"` file with `DENSIFY`).
        verbose: `True` (or an int > 0, as Keras's `verbose`) prints what
            the export does: each conversion as it starts, and its size,
            error, delegate and time when verified. Defaults to `False`.

    Returns:
        An `ExportReport` (`str(report)` is a readable summary).

    Raises:
        ValueError: an invalid argument (naming it).
        ExportError (a ValueError): unknown sequence length or batch, a layer
            that cannot be converted (named, with what to do), or a file that
            fails verification.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((None,), dtype="int32"),
    ...     SparseEmbedding(50, 8, sparsity=0.5),
    ...     SparseLSTM(16, sparsity=0.75, block=(1, 4), return_sequences=True),
    ...     SparseDense(50, sparsity=0.75, block=(1, 4))])
    >>> report = export_tflite(model, "lm.tflite", sequence_length=10)
    >>> "DENSIFY" in report.ops
    False
    """
    check_options(quantization, representative_data, unroll, streaming,
                  sparse_encoding, batch_size, sequence_length, verify,
                  compare_dense, prefer, require_xnnpack, verbose)
    say = _Progress(verbose)
    path = writable_path(path)
    check_exportable(model, quantization, sparse_encoding)
    plan = plan_export(model, streaming=streaming, batch_size=batch_size,
                       sequence_length=sequence_length, unroll=unroll,
                       quantization=quantization)
    verify_batches, representative = prepare_batches(
        plan, verify, quantization, representative_data)
    tables = csr_tables(plan.model) if sparse_encoding else {}
    converter = Converter(plan, quantization, representative, tables)
    check = functools.partial(verify_lib.verify_file, plan=plan,
                              batches=verify_batches,
                              quantization=quantization)
    first = "sparse" if sparse_encoding else "dense"
    say(f"exporting '{model.name}' to {path} (quantization "
        f"{quantization or 'none'}, {first} encoding first)")
    with _staging_file(path) as staged:
        tried = []
        form, failures = _first_working_form(
            plan, lambda u: _try_form(u, converter, check, staged,
                                      sparse_encoding, plan, say, tried))
        notes = plan.notes + _fallback_notes(plan, failures, form)
        forms = [form]
        if sparse_encoding and (compare_dense or (
                require_xnnpack and not form.check.xnnpack)):
            forms += _other_encodings(form, converter, check, staged, plan,
                                      say)
        candidates = [f.candidate for f in forms]
        kept, choice_notes = choice_lib.choose(
            candidates, prefer, require_xnnpack,
            verify_lib.FLOAT32_TOLERANCE * form.check.scale)
        if kept and converter.quantization in ("int8", "dynamic_int8") \
                and forms[kept].encoding == "dense":
            choice_notes[-1] += (
                " (int8 kernels read sparse weights only in blocks of 1x16: "
                "block=(1, 16); other sparse weights are stored as float32 "
                "and densified)")
        notes += choice_notes
        dense = [c.size_bytes for c in candidates if c.encoding == "dense"]
        form = dataclasses.replace(forms[kept],
                                   dense_size=dense[0] if dense else None)
        _write(staged, form.content)
        os.replace(staged, path)
    if not form.check.xnnpack:
        notes.append(_warn_xnnpack(form.check))
    say(f"kept the {form.encoding} file: {len(form.content)} bytes")
    return _report(path, plan, form, converter, quantization, notes,
                   tried[:-1] + candidates)


class _Progress:
    """Prints what the export does when `verbose` is on (Keras-style:
    `verbose` 0/False is silent)."""

    def __init__(self, verbose):
        self.verbose = bool(verbose)

    def __call__(self, message):
        if self.verbose:
            print(f"export_tflite: {message}", flush=True)


@dataclasses.dataclass
class _Form:
    """One loop form converted and verified: its bytes and how it ran."""

    unroll: object
    frozen: object  # the traced function, CSR lookups in place
    content: bytes
    ops: frozenset
    sparse_tensors: int
    check: verify_lib.Verification
    encoding: str
    candidate: choice_lib.Candidate
    dense_size: object = None  # bytes without sparse encoding, if measured


@contextlib.contextmanager
def _staging_file(path):
    """A temporary file next to `path`, removed at the end unless moved: on
    any error nothing is left at `path` (an existing file stays as it was)."""
    fd, staged = tempfile.mkstemp(
        prefix="." + os.path.basename(path) + ".", suffix=".tmp",
        dir=os.path.dirname(path),
    )
    os.close(fd)
    try:
        yield staged
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(staged)


def _write(path, content):
    with open(path, "wb") as f:
        f.write(content)


def _checked(unroll, encoding, frozen, content, seconds, check, staged,
             plan, say):
    """Writes `content` to `staged` and verifies it: a `_Form` (ExportError
    if the file uses non-builtin ops or fails verification, with the
    failed `Candidate` as `error.candidate`)."""
    candidate = choice_lib.Candidate(encoding, plan.form_name(unroll),
                                     len(content), None, None, seconds)
    try:
        ops, sparse_tensors = tflite_ops(content)
        custom = sorted(o for o in ops if o.startswith("CUSTOM"))
        if custom:
            raise ExportError(
                f"the converted file uses non-builtin ops {custom}")
        _write(staged, content)
        checked = check(staged, unroll)
    except ExportError as e:
        candidate.failure = str(e)
        e.candidate = candidate
        say(f"  {candidate}")
        raise
    candidate.max_abs_error = checked.max_abs_error
    candidate.xnnpack = checked.xnnpack
    say(f"  {candidate}")
    return _Form(unroll, frozen, content, ops, sparse_tensors, checked,
                 encoding, candidate)


def _try_form(unroll, converter, check, staged, sparse_encoding, plan, say,
              tried):
    """Converts form `unroll` in the first encoding, writes it to `staged`
    and verifies it: a `_Form`, or ExportError. Each attempt's `Candidate`
    is appended to `tried`."""
    encoding = "sparse" if sparse_encoding else "dense"
    say(f"converting {plan.form_name(unroll)}, {encoding} encoding ...")
    start = time.perf_counter()
    try:
        with converter.timing():
            frozen, content = converter.convert_form(unroll, sparse_encoding)
    except ExportError as e:
        tried.append(choice_lib.Candidate(
            encoding, plan.form_name(unroll), None, None, None,
            time.perf_counter() - start, failure=str(e)))
        say(f"  {tried[-1]}")
        raise
    seconds = time.perf_counter() - start
    try:
        form = _checked(unroll, encoding, frozen, content, seconds, check,
                        staged, plan, say)
    except ExportError as e:
        tried.append(e.candidate)
        raise
    tried.append(form.candidate)
    return form


def _first_working_form(plan, attempt):
    """`(form, failures)`: the first of the plan's forms that `attempt`
    exports, and the `(unroll, ExportError)` of those tried before it."""
    failures = []
    for unroll in plan.forms:
        try:
            return attempt(unroll), failures
        except ExportError as e:
            failures.append((unroll, e))
    if len(failures) == 1:
        raise failures[0][1]
    detail = "; ".join(f"{plan.form_name(u)}: {e}" for u, e in failures)
    combined = ExportError(f"no loop form could be exported: {detail}")
    combined.converter_log = "\n".join(
        e.converter_log for _, e in failures if e.converter_log)
    raise combined from failures[-1][1]


def _fallback_notes(plan, failures, form):
    if not failures:
        return []
    unroll, error = failures[0]
    return [f"{plan.form_name(unroll)} failed ({str(error)[:200]}); exported "
            f"{plan.form_name(form.unroll)} instead"]


def _warn_xnnpack(check):
    message = verify_lib.xnnpack_note(check.xnnpack_error)
    # stacklevel 3: the warning points at the caller of export_tflite.
    warnings.warn(message, stacklevel=3)
    return message


def _other_encodings(form, converter, check, staged, plan, say):
    """The form in the other encodings, each converted and verified: CSR
    tables only (when there are tables) and dense. The converter's
    sparsity pass covers every FULLY_CONNECTED weight at once, so the
    choices are whole encodings. A candidate that fails to verify is kept
    as a failed `Candidate` (a `_Form` without content)."""
    others = []
    for encoding in (["csr_only"] if converter.tables else []) + ["dense"]:
        say(f"converting {plan.form_name(form.unroll)}, {encoding} "
            "encoding ...")
        start = time.perf_counter()
        try:
            with converter.timing():
                if encoding == "csr_only" or not converter.tables:
                    frozen = form.frozen
                else:
                    frozen = converter.trace(form.unroll, csr=False)
                content = converter.convert(frozen, sparse_encoding=False)
        except Exception as e:  # ConverterError: this candidate fails alone
            if type(e).__name__ != "ConverterError":
                raise
            failed = choice_lib.Candidate(
                encoding, plan.form_name(form.unroll), None, None, None,
                time.perf_counter() - start, failure=str(e)[:300])
            say(f"  {failed}")
            others.append(_Form(form.unroll, None, b"", frozenset(), 0, None,
                                encoding, failed))
            continue
        seconds = time.perf_counter() - start
        try:
            others.append(_checked(form.unroll, encoding, frozen, content,
                                   seconds, check, staged, plan, say))
        except ExportError as e:
            others.append(_Form(form.unroll, frozen, b"", frozenset(), 0,
                                None, encoding, e.candidate))
    return others


def _report(path, plan, form, converter, quantization, notes, candidates):
    sparse = form.encoding != "dense"
    if sparse:
        notes = notes + table_notes(plan.model, converter.tables)
        if "DENSIFY" in form.ops:
            notes.append(
                "DENSIFY expands randomly sparse weights when the file "
                "loads: a smaller file, dense compute; train with "
                "block=(1, 4) (float32) for FULLY_CONNECTED to run sparse"
            )
    check = form.check
    return ExportReport(
        path=path,
        size_bytes=os.path.getsize(path),
        dense_size_bytes=form.dense_size,
        ops=form.ops,
        sparse_tensors=form.sparse_tensors,
        quantization=quantization,
        sparse_encoding=sparse,
        unroll=form.unroll,
        streaming=plan.streaming,
        batch_size=plan.batch_size,
        sequence_length=plan.sequence_length,
        inputs=check.inputs,
        outputs=check.outputs,
        state_names=plan.state_names,
        max_abs_error=check.max_abs_error,
        tolerance=check.tolerance,
        xnnpack=check.xnnpack,
        convert_seconds=converter.seconds,
        notes=notes,
        candidates=candidates,
        converter_log="".join(converter.log),
    )
