"""The argument checks of `export_tflite`, run before anything is converted.

`check_options` refuses option values and combinations that cannot work
(naming the argument), `writable_path` makes sure the file can be written
(and gives its absolute path), and `check_exportable` refuses models the
TFLite converter or LiteRT cannot take: no TensorFlow backend, no input
signature, string inputs, preprocessing layers, weights outside their masks,
float16 with block-sparse weights. The generic value checks (`check_bool`,
`check_int`) come from `keras_sparse_rnn.validation`.
"""

import os

import keras

from keras_sparse_rnn.export.choice import PREFERENCES
from keras_sparse_rnn.export.prepare import all_layers
from keras_sparse_rnn.export.report import ExportError
from keras_sparse_rnn.validation import check_bool, check_int

QUANTIZATIONS = (None, "float16", "dynamic_int8", "int8")

# Preprocessing layers whose ops (string ops, lookup tables) are not TFLite
# builtins.
PREPROCESSING_LAYERS = (
    "TextVectorization", "StringLookup", "IntegerLookup", "Hashing",
    "HashedCrossing",
)


def check_options(quantization, representative_data, unroll, streaming,
                  sparse_encoding, batch_size, sequence_length, verify,
                  compare_dense, prefer="balanced", require_xnnpack=True,
                  verbose=False):
    """Raises ValueError, naming the argument, for an invalid option."""
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
    check_bool(streaming, "streaming")
    check_bool(sparse_encoding, "sparse_encoding")
    if batch_size is not None:
        check_int(batch_size, "batch_size", minimum=1)
    if sequence_length is not None:
        check_int(sequence_length, "sequence_length", minimum=1)
    if verify is None:
        raise ValueError("verify must be True, False or input data, got None")
    check_bool(compare_dense, "compare_dense")
    if not isinstance(prefer, str) or prefer not in PREFERENCES:
        raise ValueError(
            f"prefer must be one of {PREFERENCES} (how to choose among the "
            f"candidate files), got {prefer!r}"
        )
    check_bool(require_xnnpack, "require_xnnpack")
    if isinstance(verbose, bool) or (isinstance(verbose, int)
                                     and verbose >= 0):
        return
    raise ValueError(
        f"verbose must be True, False or an int >= 0 (as Keras's verbose), "
        f"got {verbose!r}"
    )


def writable_path(path):
    """The absolute form of `path`; ValueError if it cannot be written."""
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


def check_exportable(model, quantization, sparse_encoding):
    """Raises ValueError / ExportError for a model that cannot be exported."""
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
    block_sparse = _check_layers(model)
    if quantization == "float16" and sparse_encoding and block_sparse:
        raise ExportError(
            "quantization='float16' with sparse_encoding=True on a model with "
            "block-sparse weights (block=...) gives NaN outputs in LiteRT "
            "2.3 (measured: the sparse float16 weights are dequantized "
            "wrongly). Use quantization=None (float32 block-sparse weights "
            "run sparse), 'dynamic_int8', or sparse_encoding=False."
        )


def _check_layers(model):
    """Refuses preprocessing layers and weights outside their masks;
    returns whether any sparse weight is block-sparse."""
    from keras_sparse_rnn.layers.base import SparseLayerMixin

    block_sparse = False
    for layer in all_layers(model):
        kind = type(layer).__name__
        if kind in PREPROCESSING_LAYERS:
            raise ExportError(
                f"Layer '{layer.name}' ({kind}) cannot be converted to TFLite "
                "builtin ops (it runs string ops or lookup tables). Move it "
                "out of the model: preprocess in tf.data and export the model "
                "that takes its output (token ids)."
            )
        if isinstance(layer, SparseLayerMixin):
            for matrix in layer.get_sparse_weight_info():
                try:  # the exporter folds the masks into the weights
                    matrix.check(counts=False, context="export")
                except ValueError as error:
                    raise ExportError(str(error)) from None
                block_sparse |= matrix.block_shape is not None
    return block_sparse
