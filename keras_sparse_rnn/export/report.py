"""What an export gives back: the `ExportReport` of a written file, or an
`ExportError` that says why the model cannot be exported as asked. The report
holds what the file is (size, loop form, ops, sparse tensors, signature), how
it was checked (the LiteRT-vs-Keras error and its tolerance, the XNNPACK
delegate) and the notes a user should read; `str(report)` is the summary that
`python -m keras_sparse_rnn.export` prints.
"""

import dataclasses


class ExportError(ValueError):
    """The model cannot be exported as asked (says why and what to do).

    `converter_log`: when the TFLite converter failed, its whole output
    (error text and MLIR dumps), which is not printed to the terminal.
    """

    converter_log = ""


@dataclasses.dataclass
class ExportReport:
    """What `export_tflite` wrote and how it checked it.

    Attributes:
        path: the `.tflite` file.
        size_bytes: its size.
        dense_size_bytes: size of the same model (same weights, loop form
            and quantization) converted without sparse encoding; `None` if
            not measured (`compare_dense=False`).
        ops: set of the op names in the file, all subgraphs (e.g. `WHILE`,
            `FULLY_CONNECTED`, `DENSIFY`).
        sparse_tensors: how many tensors the file stores sparse-encoded.
        quantization: `None`, `"float16"`, `"dynamic_int8"` or `"int8"`.
        sparse_encoding: whether the file is sparse-encoded
            (`Optimize.EXPERIMENTAL_SPARSITY`, CSR tables); False also when
            the dense encoding was smaller and kept.
        unroll: `True` (unrolled), `False` (`WHILE` loop); `None` when the
            model has no loop (streaming, or no RNN).
        streaming: whether it is a single-time-step model.
        batch_size, sequence_length: the static input shape used
            (`sequence_length` is 1 for a streaming file).
        inputs, outputs: `{name: (shape, dtype)}` of the signature
            `serving_default`, in order (the model's inputs, then the
            states; its outputs, then the states). The file's tensor
            details (`get_input_details()`) carry the same names.
        state_names: streaming only: the state inputs (and outputs, same
            names) in order.
        max_abs_error: largest |LiteRT - Keras| over the verification
            outputs (`None` if `verify=False`).
        tolerance: the float32 threshold it was checked against
            (`1e-5 * max(1, max |Keras output|)`), `None` for quantized files
            (their error is reported, only checked to be finite).
        xnnpack: whether the file runs with LiteRT's default XNNPACK
            delegate (`False`: it needs `BUILTIN_WITHOUT_DEFAULT_DELEGATES`).
            The file is always loaded and run once, even with
            `verify=False`.
        convert_seconds: time spent converting (all attempts).
        notes: what else a user should know about this file.
        candidates: every file converted on the way, in order, as
            `choice.Candidate`s: loop forms that failed, then each encoding
            of the working form with its size, error, delegate and
            conversion time; the one written has `kept=True`.
        converter_log: what the TFLite converter printed (its C++ logs go
            here, not to the terminal).
    """

    path: str
    size_bytes: int
    dense_size_bytes: object
    ops: frozenset
    sparse_tensors: int
    quantization: object
    sparse_encoding: bool
    unroll: object
    streaming: bool
    batch_size: int
    sequence_length: object
    inputs: dict
    outputs: dict
    state_names: list
    max_abs_error: object
    tolerance: object
    xnnpack: object
    convert_seconds: float
    notes: list = dataclasses.field(default_factory=list)
    converter_log: str = ""
    candidates: list = dataclasses.field(default_factory=list)

    @property
    def size_ratio(self):
        """File size over the dense-encoded file's size (or None)."""
        if not self.dense_size_bytes:
            return None
        return self.size_bytes / self.dense_size_bytes

    @property
    def densify(self):
        """Whether a `DENSIFY` op expands sparse weights at run time."""
        return "DENSIFY" in self.ops

    def __str__(self):
        def kb(n):
            return f"{n / 1024:.1f} KB" if n < 1024 ** 2 else \
                f"{n / 1024 ** 2:.2f} MB"

        if self.streaming:
            form = (f"streaming: one time step, batch {self.batch_size}, "
                    f"{len(self.state_names)} state tensors in and out")
        elif self.unroll is None:
            form = f"no loop, batch {self.batch_size}"
        else:
            form = (("unrolled" if self.unroll else "WHILE loop")
                    + f", batch {self.batch_size}, sequence length "
                    f"{self.sequence_length}")
        if self.sparse_tensors == 0:
            sparse = "none stored sparse"
        elif self.densify:
            sparse = (f"{self.sparse_tensors} tensors stored sparse, expanded "
                      "by DENSIFY at run time (size win only)")
        else:
            sparse = (f"{self.sparse_tensors} tensors stored sparse, read "
                      "sparse by FULLY_CONNECTED (no DENSIFY)")
        if self.max_abs_error is None:
            verified = "not run"
        else:
            limit = (f"<= {self.tolerance:.1e}" if self.tolerance is not None
                     else "quantized: reported, not thresholded")
            verified = (f"max |LiteRT - Keras| = {self.max_abs_error:.2e} "
                        f"({limit})")
        verified += ("; runs with the XNNPACK delegate" if self.xnnpack else
                     "; runs without the XNNPACK delegate only")
        if self.dense_size_bytes:
            size = (f"{kb(self.size_bytes)} (dense encoding "
                    f"{kb(self.dense_size_bytes)}, ratio "
                    f"{self.size_ratio:.3f})")
        else:
            size = f"{kb(self.size_bytes)} (dense encoding not measured)"
        lines = [
            f"TFLite export: {self.path}",
            f"  size:         {size}",
            f"  form:         {form}",
            f"  quantization: {self.quantization or 'none (float32)'}; "
            f"sparse encoding: {'on' if self.sparse_encoding else 'off'}",
            f"  weights:      {sparse}",
            f"  ops ({len(self.ops)}):     {', '.join(sorted(self.ops))}",
            "  inputs:       " + ", ".join(
                f"{k} {list(s)} {d}" for k, (s, d) in self.inputs.items()),
            "  outputs:      " + ", ".join(
                f"{k} {list(s)} {d}" for k, (s, d) in self.outputs.items()),
            f"  verification: {verified}",
            f"  converted in: {self.convert_seconds:.1f} s",
        ]
        lines += [f"  candidate:    {c}" for c in self.candidates]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)
