"""TFLite / LiteRT export of sparse (and dense) Keras 3 recurrent models.

`export_tflite` writes a `.tflite` file that uses builtin ops only, checks it
in the LiteRT interpreter against the Keras model, and returns an
`ExportReport`. What it relies on (measured with TF 2.21 / LiteRT 2.3):

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
import os
import re
import tempfile
import time
import warnings

import keras
import numpy as np

from keras_sparse_rnn.export import prepare
from keras_sparse_rnn.export.streaming import _safe_name, streaming_model
from keras_sparse_rnn.validation import validate_bool, validate_units

QUANTIZATIONS = (None, "float16", "dynamic_int8", "int8")
FLOAT32_TOLERANCE = 1e-5
_DEFAULT_STREAM_STEPS = 8
_MAX_CALIBRATION_BATCHES = 200

# Preprocessing layers whose ops (string ops, lookup tables) are not TFLite
# builtins.
_PREPROCESSING_LAYERS = (
    "TextVectorization", "StringLookup", "IntegerLookup", "Hashing",
    "HashedCrossing",
)


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
        sparse_encoding: whether the file is sparse-encoded (`Optimize.EXPERIMENTAL_SPARSITY`, CSR tables); False also when the dense encoding was smaller and kept.
        unroll: `True` (unrolled), `False` (`WHILE` loop); `None` when the
            model has no loop (streaming, or no RNN).
        streaming: whether it is a single-time-step model.
        batch_size, sequence_length: the static input shape used
            (`sequence_length` is 1 for a streaming file).
        inputs, outputs: `{name: (shape, dtype)}` of the signature
            `serving_default`.
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
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# ----------------------------------------------------------------- inspection
def tflite_ops(model_content):
    """Op names and sparse-tensor count of a `.tflite` flatbuffer.

    Args:
        model_content: the file's bytes, or a path to it.

    Returns:
        `(ops, sparse_tensors)`: a frozenset of op names over every subgraph
        (`"CUSTOM:<name>"` for custom and Flex ops) and the number of tensors
        stored with a sparsity encoding.
    """
    from ai_edge_litert import schema_py_generated as schema

    if isinstance(model_content, (str, os.PathLike)):
        with open(model_content, "rb") as f:
            model_content = f.read()
    names = {v: k for k, v in vars(schema.BuiltinOperator).items()
             if not k.startswith("_")}
    flat = schema.Model.GetRootAs(bytearray(model_content), 0)
    codes = []
    for i in range(flat.OperatorCodesLength()):
        oc = flat.OperatorCodes(i)
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        if code == schema.BuiltinOperator.CUSTOM:
            codes.append("CUSTOM:" + (oc.CustomCode() or b"").decode())
        else:
            codes.append(names.get(code, f"BUILTIN_{code}"))
    used, sparse = set(), 0
    for s in range(flat.SubgraphsLength()):
        sub = flat.Subgraphs(s)
        for o in range(sub.OperatorsLength()):
            used.add(codes[sub.Operators(o).OpcodeIndex()])
        for t in range(sub.TensorsLength()):
            if sub.Tensors(t).Sparsity() is not None:
                sparse += 1
    return frozenset(used), sparse


_NAME_LIMIT = 64


class _AlignedBuffer:
    """Packs a flatbuffer `Buffer` with its bytes aligned to 16, as the
    converter itself writes them (the generic object API aligns to 1)."""

    def __init__(self, buffer):
        self.buffer = buffer

    def Pack(self, builder):  # noqa: N802 (flatbuffers object API)
        from ai_edge_litert import schema_py_generated as schema

        data = self.buffer.data
        offset = None
        if data is not None:
            payload = np.asarray(data, dtype=np.uint8).tobytes()
            builder.StartVector(1, len(payload), 16)
            builder.head = builder.head - len(payload)
            builder.Bytes[builder.head:builder.head + len(payload)] = payload
            builder.vectorNumElems = len(payload)
            offset = builder.EndVector()
        schema.BufferStart(builder)
        if offset is not None:
            schema.BufferAddData(builder, offset)
        schema.BufferAddOffset(builder, self.buffer.offset)
        schema.BufferAddSize(builder, self.buffer.size)
        return schema.BufferEnd(builder)


def _shorten_tensor_names(content, limit=_NAME_LIMIT):
    """Cuts tensor names to `limit` characters.

    The converter names a tensor after every TensorFlow op fused into it
    (`a;b;c;...`); in an unrolled RNN those names repeat per time step and
    can outweigh the weights (measured: 1.38 MB of names in a 1.72 MB int8
    file). The signature's input and output names are kept whole; the
    runtime does not use tensor names otherwise.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    flat = schema.Model.GetRootAs(bytearray(content), 0)
    keep = set()
    for i in range(flat.SignatureDefsLength()):
        sig = flat.SignatureDefs(i)
        for j in range(sig.InputsLength()):
            keep.add((sig.SubgraphIndex(), sig.Inputs(j).TensorIndex()))
        for j in range(sig.OutputsLength()):
            keep.add((sig.SubgraphIndex(), sig.Outputs(j).TensorIndex()))
    model = schema.ModelT.InitFromObj(flat)
    if any(b.offset for b in model.buffers or []):
        return content  # buffers stored outside the flatbuffer (> 2 GB)
    changed = False
    for s, subgraph in enumerate(model.subgraphs or []):
        for t, tensor in enumerate(subgraph.tensors or []):
            name = tensor.name
            if name and len(name) > limit and (s, t) not in keep:
                if isinstance(name, str):
                    name = name.encode()
                tensor.name = name.split(b";")[0][:limit]
                changed = True
    if not changed:
        return content
    model.buffers = [_AlignedBuffer(b) for b in model.buffers]
    builder = flatbuffers.Builder(len(content) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


# ----------------------------------------------------------------- validation
def _check_path(path):
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(
            f"path must be a str or os.PathLike, got {type(path).__name__}"
        )
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        raise ValueError(f"path {path!r} is a directory; give a file path")
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise ValueError(
            f"path {path!r} cannot be written: its directory {parent!r} does "
            "not exist"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(
            f"path {path!r} cannot be written: no write permission on "
            f"{parent!r}"
        )
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise ValueError(
            f"path {path!r} cannot be written: the existing file is read-only"
        )
    return path


def _check_args(quantization, representative_data, unroll, streaming,
                sparse_encoding, batch_size, sequence_length):
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"quantization must be one of {QUANTIZATIONS}, got "
            f"{quantization!r}"
        )
    if quantization == "int8" and representative_data is None:
        raise ValueError(
            "quantization='int8' needs representative_data (a few batches of "
            "real inputs, to calibrate the activation ranges), got None"
        )
    if unroll not in ("auto", True, False):
        raise ValueError(
            f"unroll must be 'auto', True or False, got {unroll!r}"
        )
    if quantization == "int8" and unroll is False and not streaming:
        raise ValueError(
            "unroll=False with quantization='int8': calibrating a WHILE loop "
            "crashes TF 2.21's TFLite calibrator; use unroll=True or 'auto' "
            "(which unrolls int8 files)"
        )
    validate_bool(streaming, "streaming")
    validate_bool(sparse_encoding, "sparse_encoding")
    if batch_size is not None:
        validate_units(batch_size, "batch_size")
    if sequence_length is not None:
        validate_units(sequence_length, "sequence_length")


def _layers(model):
    return list(model._flatten_layers(include_self=False, recursive=True))


def _check_model(model, quantization, sparse_encoding):
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"model must be a keras.Model, got {type(model).__name__}"
        )
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "export_tflite needs the TensorFlow backend (the TFLite converter "
            f"traces the model with TensorFlow), got '{keras.backend.backend()}'"
            "; set KERAS_BACKEND=tensorflow"
        )
    if not model.built or not getattr(model, "inputs", None):
        raise ValueError(
            f"model '{model.name}' must be a built functional or Sequential "
            "model with an Input (a subclassed model has no input signature); "
            "wrap it: keras.Model(inputs, subclassed(inputs))"
        )
    for x in model.inputs:
        if keras.backend.standardize_dtype(x.dtype) == "string":
            raise ExportError(
                f"model input '{x.name}' has dtype string: TFLite builtin ops "
                "do not tokenize. Tokenize in tf.data and export the model "
                "that takes token ids."
            )
    block_sparse = False
    from keras_sparse_rnn.layers.base import SparseLayerMixin

    for layer in _layers(model):
        kind = type(layer).__name__
        if kind in _PREPROCESSING_LAYERS:
            raise ExportError(
                f"Layer '{layer.name}' ({kind}) cannot be converted to TFLite "
                "builtin ops (it runs string ops or lookup tables). Move it "
                "out of the model: preprocess in tf.data and export the model "
                "that takes its output (token ids)."
            )
        if isinstance(layer, SparseLayerMixin):
            for spec in layer.get_sparse_weight_info():
                weight = keras.ops.convert_to_numpy(spec.weight)
                mask = keras.ops.convert_to_numpy(spec.mask)
                outside = int(np.count_nonzero(weight[mask == 0]))
                if outside:
                    raise ExportError(
                        f"Layer '{layer.name}': {outside} weights of "
                        f"'{spec.weight.path}' outside its mask are non-zero; "
                        "the exporter folds the masks into the weights, so "
                        "they must be zero there (they are after every "
                        "optimizer step; a manual assign broke it). Apply "
                        "the mask: weight.assign(weight * mask)."
                    )
                block_sparse |= spec.block_shape is not None
    if quantization == "float16" and sparse_encoding and block_sparse:
        raise ExportError(
            "quantization='float16' with sparse_encoding=True on a model with "
            "block-sparse weights (block=...) gives NaN outputs in LiteRT "
            "2.3 (measured: the sparse float16 weights are dequantized "
            "wrongly). Use quantization=None (float32 block-sparse weights "
            "run sparse), 'dynamic_int8', or sparse_encoding=False."
        )


def _static_shapes(model, batch_size, sequence_length):
    shapes = []
    for x in model.inputs:
        shape = list(x.shape)
        if shape[0] is None:
            if batch_size is None:
                raise ExportError(
                    f"model input '{x.name}' has an unknown batch size and "
                    "batch_size is None: TFLite builtin RNN loops need a "
                    "static batch; pass batch_size (e.g. 1)"
                )
            shape[0] = batch_size
        elif batch_size is not None and shape[0] != batch_size:
            raise ExportError(
                f"model input '{x.name}' has batch size {shape[0]}, but "
                f"batch_size={batch_size}; pass batch_size={shape[0]}"
            )
        if len(shape) > 1:
            if shape[1] is None:
                if sequence_length is None:
                    raise ExportError(
                        f"model input '{x.name}' has shape {tuple(x.shape)}: "
                        "its sequence length is unknown and sequence_length "
                        "is None. A TFLite file has static shapes: pass "
                        "sequence_length (e.g. 35), or streaming=True for a "
                        "one-step model."
                    )
                shape[1] = sequence_length
            elif sequence_length is not None and shape[1] != sequence_length:
                raise ExportError(
                    f"model input '{x.name}' has sequence length {shape[1]}, "
                    f"but sequence_length={sequence_length}"
                )
        for axis, d in enumerate(shape):
            if d is None:
                raise ExportError(
                    f"model input '{x.name}' has shape {tuple(x.shape)}: "
                    f"dimension {axis} is unknown; TFLite needs static shapes"
                )
        shapes.append(tuple(int(d) for d in shape))
    return shapes


@contextlib.contextmanager
def _rnn_settings(model, unroll):
    """Sets `unroll` (and turns cuDNN off) on every RNN layer, then restores."""
    saved = []
    for layer in _layers(model):
        if isinstance(layer, keras.layers.RNN):
            saved.append((layer, "unroll", layer.unroll))
            if unroll is not None:
                layer.unroll = unroll
            if hasattr(layer, "use_cudnn"):
                saved.append((layer, "use_cudnn", layer.use_cudnn))
                layer.use_cudnn = False
    try:
        yield
    finally:
        for layer, attr, value in saved:
            setattr(layer, attr, value)


@dataclasses.dataclass
class _CsrTable:
    """An embedding table in compressed sparse row form: the non-zeros of
    all rows in order (`values`, `columns`) and where each row starts
    (`row_starts`, one more entry than rows). The arrays are padded with
    `width` entries (zeros in an extra column that the lookup drops), so
    that reading `width` entries from any row start stays in range."""

    values: np.ndarray  # (nnz + width,) float
    columns: np.ndarray  # (nnz + width,) int16 (int32 for wide tables)
    row_starts: np.ndarray  # (rows + 1,) int32
    width: int  # most non-zeros in one row
    output_dim: int

    @property
    def nbytes(self):
        return self.values.nbytes + self.columns.nbytes + \
            self.row_starts.nbytes

    @property
    def nonzeros(self):
        return int(self.row_starts[-1])


def _csr_table(table, max_fraction=0.9):
    """The CSR form of `table`, or None if it is not smaller than
    `max_fraction` of the dense table."""
    rows, dim = table.shape
    nonzero = table != 0
    counts = nonzero.sum(axis=1)
    width = max(int(counts.max()), 1)
    nnz = int(counts.sum())
    index_dtype = np.int16 if dim + 1 <= np.iinfo(np.int16).max else np.int32
    size = ((nnz + width) * (table.itemsize + np.dtype(index_dtype).itemsize)
            + 4 * (rows + 1))
    if size >= max_fraction * table.nbytes:
        return None
    r, c = np.nonzero(nonzero)  # row-major order
    values = np.concatenate([table[r, c], np.zeros(width, table.dtype)])
    columns = np.concatenate([c, np.full(width, dim)]).astype(index_dtype)
    row_starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return _CsrTable(values, columns, row_starts, width, dim)


def _csr_lookup(layer, csr):
    """A replacement for `Embedding.call`: for each id, GATHER `width`
    entries from its row start, send those past the row's end to the extra
    column, SCATTER_ND them into a dense vector and drop that column (all
    builtin ops; exact)."""
    import tensorflow as tf

    values = tf.constant(csr.values)
    columns = tf.constant(csr.columns)
    starts = tf.constant(csr.row_starts)
    dim, width = csr.output_dim, csr.width

    def call(inputs):
        ids = tf.cast(inputs, tf.int32)
        shape = ids.shape.as_list()
        flat = tf.reshape(ids, [-1])
        n = flat.shape[0]
        begin = tf.gather(starts, flat)[:, None]
        end = tf.gather(starts, flat + 1)[:, None]
        positions = begin + tf.range(width)[None, :]  # (n, width)
        cols = tf.cast(tf.gather(columns, positions), tf.int32)
        cols = tf.where(positions < end, cols, dim)
        rows = tf.broadcast_to(tf.range(n)[:, None], (n, width))
        indices = tf.reshape(tf.stack([rows, cols], axis=-1), (n * width, 2))
        updates = tf.reshape(tf.gather(values, positions), [-1])
        dense = tf.scatter_nd(indices, updates, (n, dim + 1))[:, :dim]
        return tf.cast(tf.reshape(dense, shape + [dim]), layer.compute_dtype)

    return call


def _csr_tables(model):
    """CSR forms of the sparse embedding tables, where smaller."""
    from keras_sparse_rnn.layers.base import SparseLayerMixin

    tables = {}
    for layer in _layers(model):
        if (isinstance(layer, keras.layers.Embedding)
                and isinstance(layer, SparseLayerMixin)
                and getattr(layer, "quantization_mode", None) is None):
            table = keras.ops.convert_to_numpy(layer.embeddings)
            csr = _csr_table(table)
            if csr is not None:
                tables[id(layer)] = (layer, csr)
    return tables


@contextlib.contextmanager
def _csr_embeddings(tables):
    """Traces the given embeddings with their CSR lookup."""
    for layer, csr in tables.values():
        object.__setattr__(layer, "call", _csr_lookup(layer, csr))
    try:
        yield
    finally:
        for layer, _ in tables.values():
            layer.__dict__.pop("call", None)


def _has_rnn(model):
    return any(isinstance(l, keras.layers.RNN) for l in _layers(model))


def _has_stateful(model):
    return [l.name for l in _layers(model)
            if isinstance(l, keras.layers.RNN) and l.stateful]


# ------------------------------------------------------------------ data
def _token_range(model):
    vocab, low = None, 0
    for layer in _layers(model):
        if isinstance(layer, keras.layers.Embedding):
            vocab = layer.input_dim if vocab is None else min(
                vocab, layer.input_dim)
            if layer.mask_zero:
                low = 1
    return low, (vocab if vocab is not None else 2)


def _random_inputs(model, shapes, count, seed=0):
    rng = np.random.default_rng(seed)
    low, high = _token_range(model)
    batches = []
    for _ in range(count):
        batch = []
        for x, shape in zip(model.inputs, shapes):
            dtype = keras.backend.standardize_dtype(x.dtype)
            if "int" in dtype:
                batch.append(rng.integers(low, high, size=shape).astype(dtype))
            elif dtype == "bool":
                batch.append(rng.integers(0, 2, size=shape).astype(bool))
            else:
                batch.append(rng.uniform(-1, 1, size=shape).astype(dtype))
        batches.append(batch)
    return batches


def _as_batches(model, data, batch_size, what):
    """User data (array, list of arrays, dict) -> list of per-batch lists."""
    names = [x.name for x in model.inputs]
    if isinstance(data, dict):
        missing = sorted(set(names) - set(data))
        if missing:
            raise ValueError(
                f"{what} is a dict without the model inputs {missing}; "
                f"its keys: {sorted(data)}"
            )
        arrays = [np.asarray(data[n]) for n in names]
    elif isinstance(data, (list, tuple)):
        arrays = [np.asarray(a) for a in data]
    else:
        arrays = [np.asarray(data)]
    if len(arrays) != len(names):
        raise ValueError(
            f"{what} must hold one array per model input ({len(names)}: "
            f"{names}), got {len(arrays)}"
        )
    n = arrays[0].shape[0] if arrays[0].ndim else 0
    if any(a.ndim < 2 or a.shape[0] != n for a in arrays):
        raise ValueError(
            f"{what} must be arrays of shape (samples, time, ...) with the "
            f"same number of samples, got shapes {[a.shape for a in arrays]}"
        )
    if n < batch_size or n % batch_size:
        raise ValueError(
            f"{what} has {n} samples; it must be a positive multiple of "
            f"batch_size={batch_size}"
        )
    batches = []
    for start in range(0, n, batch_size):
        batch = []
        for x, a in zip(model.inputs, arrays):
            dtype = keras.backend.standardize_dtype(x.dtype)
            batch.append(a[start:start + batch_size].astype(dtype))
        batches.append(batch)
    return batches


def _check_batch_shapes(batches, shapes, what):
    for batch in batches:
        for a, shape in zip(batch, shapes):
            if tuple(a.shape) != tuple(shape):
                raise ValueError(
                    f"{what}: a batch has shape {a.shape}, the exported input "
                    f"is {shape}"
                )


def _keras_call(model, batch):
    inputs = batch[0] if len(batch) == 1 else list(batch)
    out = model(inputs, training=False)
    return [keras.ops.convert_to_numpy(o) for o in keras.tree.flatten(out)]


# ------------------------------------------------------------------ convert
def _concrete_function(model, specs, output_names):
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    def call(*args):
        inputs = args[0] if len(args) == 1 else list(args)
        outputs = keras.tree.flatten(model(inputs, training=False))
        return dict(zip(output_names, outputs))

    fn = tf.function(call, input_signature=specs)
    # Weights become constants: a loop reading resource variables converts
    # but does not run in the interpreter.
    frozen = convert_variables_to_constants_v2(fn.get_concrete_function())
    # Freezing flattens the outputs (dict keys in sorted order) and the
    # signature would name them output_<i>: name them again.
    keys = tf.nest.flatten({name: name for name in output_names})

    def named(*args):
        return dict(zip(keys, frozen(*args)))

    return tf.function(named, input_signature=specs).get_concrete_function()


@contextlib.contextmanager
def _captured_output():
    """Sends what the process writes to stdout and stderr (the converter's
    C++ logs and, on errors, its MLIR dumps) to a temporary file instead of
    the terminal; yields a list that receives the text at the end."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    text = []
    with tempfile.TemporaryFile() as log:
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            yield text
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            log.seek(0)
            text.append(log.read().decode("utf-8", "replace"))


def _convert(frozen, quantization, sparse_encoding, representative, log=None):
    """The TFLite file's bytes; the converter's output is appended to `log`
    (a list of str) and, on an error, kept on the exception as
    `converter_log`."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [frozen], tf.Module()
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    optimizations = []
    if sparse_encoding:
        optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
    if quantization is not None:
        optimizations.append(tf.lite.Optimize.DEFAULT)
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS,
        ]
    converter.optimizations = optimizations
    with warnings.catch_warnings():
        # The calibrator builds a (deprecated) tf.lite.Interpreter.
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is "
                                "deprecated.*")
        try:
            with _captured_output() as text:
                content = converter.convert()
        except Exception as e:
            e.converter_log = "".join(text)
            raise
        finally:
            if log is not None:
                log.extend(text)
    return _shorten_tensor_names(content)


def _explain_conversion_error(error, model):
    text = str(error)
    found = []
    for layer in _layers(model):
        pattern = r"(^|[/\"])" + re.escape(layer.name) + r"(_\d+)?/"
        if re.search(pattern, text) and all(
                layer.name != n for n, _ in found):
            found.append((layer.name, type(layer).__name__))
    ops_found = re.findall(r"'tf\.(\w+)' op is neither a custom op", text)
    select = re.search(r"TF Select ops: ([^\n]+)", text)
    op_text = select.group(1) if select else ", ".join(sorted(set(ops_found)))
    if found:
        layers = ", ".join(f"'{n}' ({k})" for n, k in found)
        where = f"layer(s) {layers}"
    else:
        where = "a layer of the model"
    if op_text:
        return ExportError(
            f"Cannot convert {where} to TFLite builtin ops: the TensorFlow "
            f"op(s) {op_text} have no builtin TFLite kernel. Replace them in "
            "the layer (or move the layer out of the exported model); Flex "
            "(SELECT_TF_OPS) ops are not used because the Flex RNN ops do "
            "not run on LiteRT. Converter message (start): "
            f"{text[:600]}"
        )
    return ExportError(
        f"The TFLite converter failed on {where}: {text[:1500]}"
    )


# ------------------------------------------------------------------ run
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


def _runner(path):
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


def _signature_details(runner):
    def details(items):
        return {k: (tuple(int(d) for d in v["shape"]),
                    np.dtype(v["dtype"]).name) for k, v in items.items()}

    return details(runner.get_input_details()), details(
        runner.get_output_details())


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


def _verify_sequence(runner, model, batches, input_names, output_names):
    err, scale = 0.0, 1.0
    for batch in batches:
        refs = _keras_call(model, batch)
        got = runner(**dict(zip(input_names, batch)))
        for name, ref in zip(output_names, refs):
            err = max(err, _max_error(got[name], ref, name))
            scale = max(scale, float(np.max(np.abs(ref))) if ref.size else 1)
    return err, scale


def _step_through(runner, info, batch, zero_states):
    """Runs the streaming file over whole sequences: per-step outputs."""
    states = dict(zero_states)
    steps = batch[0].shape[1]
    outputs = []
    for t in range(steps):
        feeds = {n: a[:, t:t + 1] for n, a in zip(info.input_names, batch)}
        feeds.update(states)
        got = runner(**feeds)
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
        scale = max(scale, float(np.max(np.abs(ref))) if ref.size else 1)
    return err, scale


def _zero_states(info):
    return {n: np.zeros(info.state_shapes[n], info.state_dtypes[n])
            for n in info.state_names}


def _keras_stream_refs(model, step, info, batch):
    """Reference for a streaming check: the full model, or (for stateful
    layers, whose full-sequence call would use and change their stored
    state) the Keras step model."""
    if not _has_stateful(model):
        return _keras_call(model, batch)
    states = [np.zeros(info.state_shapes[n], info.state_dtypes[n])
              for n in info.state_names]
    per_step = []
    n_out = len(info.output_names)
    for t in range(batch[0].shape[1]):
        outs = _keras_call(step, [a[:, t:t + 1] for a in batch] + states)
        per_step.append(outs[:n_out])
        states = outs[n_out:]
    refs = []
    for i in range(n_out):
        first = per_step[0][i]
        if first.ndim >= 2 and first.shape[1] == 1 and len(per_step) > 1:
            refs.append(np.concatenate([o[i] for o in per_step], axis=1))
        else:
            refs.append(per_step[-1][i])
    return refs


# ------------------------------------------------------------------ main
def export_tflite(model, path, *, sequence_length=None, batch_size=1,
                  unroll="auto", quantization=None, representative_data=None,
                  sparse_encoding=True, streaming=False, verify=True,
                  compare_dense=True):
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
            `BUILTIN_WITHOUT_DEFAULT_DELEGATES` (`ExportReport.xnnpack` is
            False, and a warning says so). `"float16"` with block-sparse
            weights is refused (LiteRT 2.3 computes NaN).
        streaming: export a single-time-step model instead: inputs are one
            step of each model input `(batch, 1, ...)` and every recurrent
            state (`<layer>_state_<i>`), outputs are the model's outputs
            (`output_<i>`, with a time axis of 1 where the model's have one)
            and the new states, under the same names. See `streaming_model`.
        verify: `True` runs the file in the LiteRT interpreter on random
            inputs (tokens within the embedding's vocabulary) and compares
            with the Keras model; or the inputs to use (same forms as
            `representative_data`); `False` skips it. float32 files must
            match within `1e-5 * max(1, max |Keras output|)`, else
            `ExportError`. Quantized files must give finite outputs; their
            error is reported. A streaming file is stepped through whole
            sequences from zero states and compared with the Keras model on
            the whole sequences.
        compare_dense: also convert the model without sparse encoding (and,
            with CSR tables, with the tables only), report `dense_size_bytes`
            and keep the smallest file, so that a sparse-encoded file is
            never larger than the dense one. Each extra conversion takes as
            long as the first; `False` skips them (and that guarantee).

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
    _check_args(quantization, representative_data, unroll, streaming,
                sparse_encoding, batch_size, sequence_length)
    if verify is None:
        raise ValueError("verify must be True, False or input data, got None")
    validate_bool(compare_dense, "compare_dense")
    path = _check_path(path)
    _check_model(model, quantization, sparse_encoding)

    # What to convert: the model itself, or its one-step model.
    if streaming:
        model, notes = prepare.export_model(model, None)  # float32 compute
        if batch_size is None:
            batch_size = model.inputs[0].shape[0]
            if batch_size is None:
                raise ExportError(
                    "batch_size is None and the model's batch size is "
                    "unknown; pass batch_size (e.g. 1)"
                )
        target, info = streaming_model(model, batch_size)
        input_names = info.input_names + info.state_names
        output_names = info.output_names + info.state_names
        shapes = [tuple(x.shape) for x in target.inputs]
        steps = sequence_length
        if steps is None:
            steps = model.inputs[0].shape[1] or _DEFAULT_STREAM_STEPS
        seq_shapes = [(batch_size, steps, *s[2:]) for s in shapes[:len(
            info.input_names)]]
        candidates = [None]
    else:
        info = None
        stateful = _has_stateful(model)
        if stateful:
            raise ExportError(
                f"layer(s) {stateful} are stateful=True: a TFLite file has no "
                "variables to carry their state between calls. Export with "
                "streaming=True (the states become inputs and outputs), or "
                "rebuild the model with stateful=False."
            )
        # Float32 compute, at the batch size asked for.
        model, notes = prepare.export_model(model, batch_size)
        shapes = _static_shapes(model, batch_size, sequence_length)
        batch_size = shapes[0][0]
        seq_shapes = shapes
        steps = shapes[0][1] if len(shapes[0]) > 1 else None
        target = model
        input_names = [_safe_name(x.name) for x in model.inputs]
        output_names = [f"output_{i}" for i in range(len(
            keras.tree.flatten(model.outputs)))]
        if not _has_rnn(model):
            candidates = [None]
        elif unroll == "auto":
            candidates = [True] if quantization == "int8" else [False, True]
        else:
            candidates = [unroll]
    if len(set(input_names)) != len(input_names):
        raise ExportError(f"input names are not unique: {input_names}")

    # Data: verification batches and calibration samples.
    if isinstance(verify, bool):
        verify_batches = _random_inputs(model, seq_shapes, 2) if verify \
            else []
    else:
        verify_batches = _as_batches(model, verify, batch_size, "verify")
        if not streaming:
            _check_batch_shapes(verify_batches, shapes, "verify")
    representative = None
    if quantization == "int8":
        rep_batches = _as_batches(model, representative_data, batch_size,
                                  "representative_data")
        rep_batches = rep_batches[:_MAX_CALIBRATION_BATCHES]
        if streaming:
            representative = _stream_calibration(target, info, rep_batches)
        else:
            _check_batch_shapes(rep_batches, shapes, "representative_data")

            def representative():
                for batch in rep_batches:
                    yield dict(zip(input_names, batch))

    import tensorflow as tf

    tables = _csr_tables(model) if sparse_encoding else {}
    specs = [tf.TensorSpec(s, x.dtype, name=n)
             for s, x, n in zip(shapes, target.inputs, input_names)]
    def verify_file(file, candidate):
        """Runs `file` in LiteRT against the Keras model; raises
        ExportError beyond the tolerance."""
        runner, xnnpack, xnn_error = _runner(file)
        inputs, outputs = _signature_details(runner)
        error = tolerance = None
        if verify_batches:
            if streaming:
                error, scale = 0.0, 1.0
                for batch in verify_batches:
                    refs = _keras_stream_refs(model, target, info, batch)
                    got = _step_through(runner, info, batch, _zero_states(info))
                    e, s = _compare_stream(got, refs, info.output_names)
                    error, scale = max(error, e), max(scale, s)
            else:
                error, scale = _verify_sequence(
                    runner, model, verify_batches, input_names, output_names)
            if quantization is None:
                tolerance = FLOAT32_TOLERANCE * scale
            if not np.isfinite(error) or (
                    tolerance is not None and error > tolerance):
                limit = (f"the float32 tolerance {tolerance:.1e}"
                         if tolerance is not None else "finite outputs")
                raise ExportError(
                    f"verification failed: the LiteRT file "
                    f"({_form_name(candidate, streaming)}) differs from "
                    f"the Keras model by up to {error:.3e}, beyond {limit}"
                )
        return xnnpack, xnn_error, inputs, outputs, error, tolerance

    directory = os.path.dirname(path)
    failures = []
    converter_log = []
    convert_seconds = 0.0
    for candidate in candidates:
        fd, tmp = tempfile.mkstemp(
            prefix="." + os.path.basename(path) + ".", suffix=".tmp",
            dir=directory,
        )
        os.close(fd)
        try:
            start = time.perf_counter()
            with _rnn_settings(target, candidate), \
                    _csr_embeddings(tables):
                frozen = _concrete_function(target, specs, output_names)
            try:
                content = _convert(frozen, quantization, sparse_encoding,
                                   representative, converter_log)
            except Exception as e:  # ConverterError and friends
                if type(e).__name__ != "ConverterError":
                    raise
                error = _explain_conversion_error(e, model)
                # The whole output (MLIR dumps), kept off the terminal.
                error.converter_log = str(e) + "\n" + getattr(e, "converter_log", "")
                raise error from e
            convert_seconds += time.perf_counter() - start
            ops, sparse_tensors = tflite_ops(content)
            custom = sorted(o for o in ops if o.startswith("CUSTOM"))
            if custom:
                raise ExportError(
                    f"the converted file uses non-builtin ops {custom}"
                )
            with open(tmp, "wb") as f:
                f.write(content)
            xnnpack, xnn_error, inputs, outputs, error, tolerance = verify_file(
                tmp, candidate)
            break
        except ExportError as e:
            _remove(tmp)
            failures.append((candidate, e))
            if len(failures) == len(candidates):
                if len(failures) == 1:
                    raise
                detail = "; ".join(
                    f"{_form_name(c, streaming)}: {err}" for c, err in failures
                )
                combined = ExportError(f"no loop form could be exported: {detail}")
                combined.converter_log = "\n".join(
                    err.converter_log for _, err in failures if err.converter_log)
                raise combined from e
        except BaseException:
            _remove(tmp)
            raise
    if failures:
        notes.append(
            f"{_form_name(failures[0][0], streaming)} failed "
            f"({str(failures[0][1])[:200]}); exported "
            f"{_form_name(candidate, streaming)} instead"
        )
    if not xnnpack:
        failed = sorted(set(re.findall(r"failed to delegate (\w+) node",
                                       str(xnn_error))))
        reason = (f"it fails to delegate {', '.join(failed)} nodes" if failed
                  else str(xnn_error)[:120])
        message = (
            "LiteRT's default XNNPACK delegate cannot prepare this file "
            f"({reason}); it runs with "
            "Interpreter(..., experimental_op_resolver_type="
            "OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)"
        )
        notes.append(message)
        warnings.warn(message, stacklevel=2)
    # Never larger than the dense file of the same quantization. The
    # converter's sparsity pass covers every FULLY_CONNECTED weight at once,
    # so the choices are whole encodings: converter sparsity and CSR tables
    # (as verified above), CSR tables only, or dense.
    kept = "sparse"
    try:
        if not compare_dense:
            dense_size = None
        elif sparse_encoding:
            start = time.perf_counter()
            options = {"sparse": content}
            if tables:
                options["csr_only"] = _convert(frozen, quantization, False,
                                               representative, converter_log)
                with _rnn_settings(target, candidate):
                    frozen = _concrete_function(target, specs, output_names)
            options["dense"] = _convert(frozen, quantization, False,
                                        representative, converter_log)
            convert_seconds += time.perf_counter() - start
            dense_size = len(options["dense"])
            kept = min(options, key=lambda k: (len(options[k]), k != "sparse"))
            if kept != "sparse":
                with open(tmp, "wb") as f:
                    f.write(options[kept])
                xnnpack, xnn_error, inputs, outputs, error, tolerance = \
                    verify_file(tmp, candidate)
                what = ("without sparse encoding" if kept == "dense" else
                        "with the CSR embedding tables but dense "
                        "FULLY_CONNECTED weights")
                notes.append(
                    f"stored {what}: that file is smaller ({len(options[kept])} "
                    f"vs {len(content)} bytes with sparse encoding)"
                    + (" (int8 kernels read sparse weights only in blocks of "
                       "1x16: block=(1, 16); other sparse weights would be "
                       "stored as float32 and densified)"
                       if quantization in ("int8", "dynamic_int8") else ""))
                content = options[kept]
                ops, sparse_tensors = tflite_ops(content)
        else:
            dense_size = len(content)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    stored_dense = kept == "dense"
    notes += _notes(model, ops, sparse_encoding and not stored_dense,
                    {} if stored_dense else tables)
    size = os.path.getsize(path)
    return ExportReport(
        path=path,
        size_bytes=size,
        dense_size_bytes=dense_size,
        ops=ops,
        sparse_tensors=sparse_tensors,
        quantization=quantization,
        sparse_encoding=sparse_encoding and not stored_dense,
        unroll=candidate,
        streaming=streaming,
        batch_size=batch_size,
        sequence_length=1 if streaming else steps,
        inputs=inputs,
        outputs=outputs,
        state_names=list(info.state_names) if streaming else [],
        max_abs_error=error,
        tolerance=tolerance,
        xnnpack=xnnpack,
        convert_seconds=convert_seconds,
        notes=notes,
        converter_log="".join(converter_log),
    )


def _form_name(unroll, streaming):
    if streaming:
        return "the streaming (one-step) model"
    return {None: "the model", True: "unroll=True",
            False: "unroll=False (WHILE loop)"}[unroll]


def _remove(path):
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _notes(model, ops, sparse_encoding, tables):
    from keras_sparse_rnn.layers.base import SparseLayerMixin

    notes = []
    if sparse_encoding:
        for layer, csr in tables.values():
            rows = csr.row_starts.size - 1
            dense_kb = rows * csr.output_dim * csr.values.itemsize / 1024
            notes.append(
                f"embedding '{layer.name}' is stored in CSR form "
                f"({csr.nonzeros} non-zeros, {csr.columns.dtype.name} column "
                f"indices, at most {csr.width} per row: "
                f"{csr.nbytes / 1024:.1f} KB for a dense {dense_kb:.1f} KB) "
                "and looked up with GATHER + SCATTER_ND"
            )
        dense_tables = [
            l.name for l in _layers(model)
            if isinstance(l, SparseLayerMixin)
            and isinstance(l, keras.layers.Embedding) and id(l) not in tables
        ]
        if dense_tables:
            notes.append(
                f"sparse embedding table(s) {dense_tables} are stored dense: "
                "their CSR form would not be smaller"
            )
        if "DENSIFY" in ops:
            notes.append(
                "DENSIFY expands randomly sparse weights when the file "
                "loads: a smaller file, dense compute; train with "
                "block=(1, 4) (float32) for FULLY_CONNECTED to run sparse"
            )
    return notes


def _stream_calibration(step, info, batches):
    """Calibration samples of a step model: each step of each sequence, with
    the states Keras computes along the way."""
    samples = []
    n_out = len(info.output_names)
    for batch in batches:
        states = [np.zeros(info.state_shapes[n], info.state_dtypes[n])
                  for n in info.state_names]
        for t in range(batch[0].shape[1]):
            feeds = [a[:, t:t + 1] for a in batch]
            samples.append(dict(zip(info.input_names + info.state_names,
                                    feeds + states)))
            outs = _keras_call(step, feeds + states)
            states = outs[n_out:]
        if len(samples) >= _MAX_CALIBRATION_BATCHES:
            break

    def representative():
        yield from samples[:_MAX_CALIBRATION_BATCHES]

    return representative
