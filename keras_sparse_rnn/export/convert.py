"""Tracing a model and converting it to TFLite bytes.

A `Converter` traces the plan's target in one loop form (`unroll` set and
cuDNN off on every RNN layer, the CSR embedding lookups in place), freezes
the weights into constants (a `WHILE` loop that reads resource variables
converts but fails at run time) and runs the TFLite converter with builtin
ops only, the sparsity and quantization options asked for. The converter's
C++ output goes to `Converter.log`, not the terminal; `conversion_error`
turns a converter failure into an `ExportError` that names the layers and
ops at fault. The bytes come back with their tensor names cut short.
"""

import contextlib
import os
import re
import sys
import tempfile
import time
import warnings

import keras

from keras_sparse_rnn.export.csr_embedding import csr_embeddings
from keras_sparse_rnn.export.flatbuffer import shorten_tensor_names
from keras_sparse_rnn.export.prepare import all_layers
from keras_sparse_rnn.export.report import ExportError


class Converter:
    """Traces and converts the forms of one `ExportPlan`.

    Attributes:
        log: what the TFLite converter printed, one str per conversion.
        seconds: the time spent in `timing()` blocks that completed.
    """

    def __init__(self, plan, quantization, representative, tables):
        import tensorflow as tf

        self.plan = plan
        self.quantization = quantization
        self.representative = representative
        self.tables = tables
        self.input_signature = [
            tf.TensorSpec(s, x.dtype, name=n) for s, x, n in zip(
                plan.shapes, plan.target.inputs, plan.input_names)]
        self.log = []
        self.seconds = 0.0

    @contextlib.contextmanager
    def timing(self):
        """Adds the block's time to `seconds` if it completes."""
        start = time.perf_counter()
        yield
        self.seconds += time.perf_counter() - start

    def trace(self, unroll, csr=True):
        """The frozen concrete function of the target in form `unroll`, with
        the CSR embedding lookups (`csr=True`) or the dense tables."""
        with rnn_settings(self.plan.target, unroll), \
                csr_embeddings(self.tables if csr else {}):
            return concrete_function(self.plan.target, self.input_signature,
                                     self.plan.output_names)

    def convert(self, frozen, sparse_encoding):
        """The TFLite bytes of a traced function (converter errors as raised)."""
        return convert_to_tflite(frozen, self.quantization, sparse_encoding,
                                 self.representative, self.log)

    def convert_form(self, unroll, sparse_encoding):
        """`(frozen, bytes)` of form `unroll` with the CSR tables; a converter
        failure becomes an ExportError that names the layer at fault."""
        frozen = self.trace(unroll)
        try:
            return frozen, self.convert(frozen, sparse_encoding)
        except Exception as e:  # ConverterError and friends
            if type(e).__name__ != "ConverterError":
                raise
            raise conversion_error(e, self.plan.model) from e


@contextlib.contextmanager
def rnn_settings(model, unroll):
    """Sets `unroll` (and turns cuDNN off) on every RNN layer, then restores."""
    saved = []
    for layer in all_layers(model):
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


def concrete_function(model, input_signature, output_names):
    """`model` as a concrete function of `input_signature` with its weights frozen
    into constants and its outputs named `output_names`."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    def call(*args):
        inputs = args[0] if len(args) == 1 else list(args)
        outputs = keras.tree.flatten(model(inputs, training=False))
        return dict(zip(output_names, outputs))

    from keras_sparse_rnn.layers import block_path

    fn = tf.function(call, input_signature=input_signature)
    # Weights become constants: a loop reading resource variables converts
    # but does not run in the interpreter. Traced masked-dense: the file
    # holds each masked kernel whole, for FULLY_CONNECTED (sparse where its
    # blocks are LiteRT's), not the block path's gathers.
    with block_path.masked_dense():
        frozen = convert_variables_to_constants_v2(fn.get_concrete_function())
    # Freezing flattens the outputs (dict keys in sorted order) and the
    # signature would name them output_<i>: name them again.
    keys = tf.nest.flatten({name: name for name in output_names})

    def named(*args):
        return dict(zip(keys, frozen(*args)))

    return tf.function(named, input_signature=input_signature).get_concrete_function()


@contextlib.contextmanager
def captured_output():
    """Sends what the process writes to stdout and stderr (the converter's
    C++ logs and, on errors, its MLIR dumps) to a temporary file instead of
    the terminal; yields a list that receives the text at the end."""
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


def _converter(frozen, quantization, sparse_encoding, representative):
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
    return converter


def convert_to_tflite(frozen, quantization, sparse_encoding, representative,
                      log=None):
    """The TFLite file's bytes; the converter's output is appended to `log`
    (a list of str) and, on an error, kept on the exception as
    `converter_log`."""
    converter = _converter(frozen, quantization, sparse_encoding,
                           representative)
    with warnings.catch_warnings():
        # The calibrator builds a (deprecated) tf.lite.Interpreter.
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is "
                                "deprecated.*")
        try:
            with captured_output() as text:
                content = converter.convert()
        except Exception as e:
            e.converter_log = "".join(text)
            raise
        finally:
            if log is not None:
                log.extend(text)
    return shorten_tensor_names(content)


def _error_lines(text):
    """The converter's lines that report an op's failure (with its location),
    not the MLIR dumps and notes around them."""
    return [line for line in text.splitlines()
            if "error:" in line and "failed while converting" not in line]


def _blamed_layers(lines, model):
    """`[(name, class name)]` of the layers whose name scopes appear in the
    locations of the failing ops (`functional_1/np_lambda_1/PyFunc`): a
    layer name exactly, else with TensorFlow's `_<n>` scope suffix."""
    layers = {layer.name: layer for layer in all_layers(model)}
    found = []
    for line in lines:
        for scope in re.findall(r'"([^"]*/[^"]*)"', line):
            if ".py" in scope:  # a Python source location
                continue
            for part in scope.split("@")[0].split("/")[:-1]:
                name = part if part in layers else re.sub(r"_\d+$", "", part)
                if name in layers and all(name != n for n, _ in found):
                    found.append((name, type(layers[name]).__name__))
    return found


def conversion_error(error, model):
    """The ExportError of a converter failure: which layers (those in the
    location of the failing op, or none when the location names no layer)
    and which ops; the converter's whole output (MLIR dumps) is kept as
    `converter_log`."""
    text = str(error)
    log = text + "\n" + getattr(error, "converter_log", "")
    found = _blamed_layers(_error_lines(log), model)
    ops_found = re.findall(r"'tf\.(\w+)' op is neither a custom op", text)
    select = re.search(r"TF Select ops: ([^\n]+)", text)
    op_text = select.group(1) if select else ", ".join(sorted(set(ops_found)))
    if found:
        layers = ", ".join(f"'{n}' ({k})" for n, k in found)
        where = f"layer(s) {layers}"
        unlocated = ""
    else:
        where = "the model"
        unlocated = (" The cause could not be located: the converter's "
                     "error names no layer of the model (see "
                     "converter_log).")
    if op_text:
        explained = ExportError(
            f"Cannot convert {where} to TFLite builtin ops: the TensorFlow "
            f"op(s) {op_text} have no builtin TFLite kernel.{unlocated} "
            "Replace them in the layer (or move the layer out of the "
            "exported model); Flex (SELECT_TF_OPS) ops are not used because "
            "the Flex RNN ops do not run on LiteRT. Converter message "
            f"(start): {text[:600]}"
        )
    else:
        explained = ExportError(
            f"The TFLite converter failed on {where}.{unlocated} "
            f"Converter message: {text[:1500]}"
        )
    explained.converter_log = log
    return explained
