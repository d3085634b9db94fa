"""Bad input: clear errors, and nothing left at the path."""

import os

import numpy as np
import pytest
import keras
import tensorflow as tf

from export_helpers import STEPS, lm, tokens
from keras_sparse_rnn import SparseLSTM
from keras_sparse_rnn.export import ExportError, export_tflite
from keras_sparse_rnn.export.convert import conversion_error


@keras.saving.register_keras_serializable(package="export_tests")
class Determinant(keras.layers.Layer):
    """Uses an op (MatrixDeterminant) that no TFLite builtin runs."""

    def call(self, x):
        squares = tf.reshape(x[..., :4], (-1, 2, 2))
        det = tf.reshape(tf.linalg.det(squares), tf.shape(x[..., :1]))
        return x * det


def test_unknown_sequence_length(lm_random, tmp_path):
    path = tmp_path / "m.tflite"
    with pytest.raises(ExportError, match=r"sequence length is unknown.*"
                       r"pass sequence_length"):
        export_tflite(lm_random, path)
    assert not path.exists()
    assert os.listdir(tmp_path) == []


def test_unknown_batch(lm_random, tmp_path):
    path = tmp_path / "m.tflite"
    with pytest.raises(ExportError, match="unknown batch size and batch_size "
                       "is None"):
        export_tflite(lm_random, path, sequence_length=STEPS, batch_size=None)
    inputs = keras.Input((STEPS,), batch_size=2, dtype="int32")
    fixed = keras.Model(inputs, lm_random(inputs))
    with pytest.raises(ExportError, match="sequence length 6, but "
                       "sequence_length=5"):
        export_tflite(fixed, path, batch_size=2, sequence_length=5)
    assert not path.exists()


def test_unconvertible_layer_is_named(tmp_path, capfd):
    inputs = keras.Input((None, 4))
    x = Determinant(name="my_det_layer")(inputs)
    model = keras.Model(inputs, keras.layers.LSTM(3)(x))
    path = tmp_path / "det.tflite"
    with pytest.raises(ExportError, match=r"layer\(s\) 'my_det_layer' "
                       r"\(Determinant\).*MatrixDeterminant.*Replace them") as info:
        export_tflite(model, path, sequence_length=3)
    assert os.listdir(tmp_path) == []
    # The converter's whole output is on the error, not on the terminal.
    assert "MatrixDeterminant" in info.value.converter_log
    assert len(info.value.converter_log) > len(str(info.value))
    printed = capfd.readouterr()
    assert "MatrixDeterminant" not in printed.out + printed.err


def test_converter_failure_blames_the_failing_layer(tmp_path):
    """A numpy_function (PyFunc) before a SparseLSTM: the Lambda is named,
    not the LSTM that the converter's MLIR dump also mentions."""
    def numpy_identity(x):
        y = tf.numpy_function(lambda a: a, [x], tf.float32)
        y.set_shape(x.shape)
        return y

    inputs = keras.Input((None, 4))
    x = keras.layers.Lambda(numpy_identity, output_shape=(None, 4),
                            name="np_lambda")(inputs)
    model = keras.Model(inputs, SparseLSTM(3, sparsity=0.5, mask_seed=0)(x))
    path = tmp_path / "pyfunc.tflite"
    with pytest.raises(ExportError, match=r"layer\(s\) 'np_lambda' \(Lambda\)"
                       r" to TFLite.*PyFunc") as info:
        export_tflite(model, path, sequence_length=3, unroll=False)
    message = str(info.value).split("Converter message")[0]
    assert "sparse_lstm" not in message
    assert "sparse_lstm" in info.value.converter_log  # the dump names it
    # A failure whose location names no layer of the model says so.
    error = type("ConverterError", (Exception,), {})(
        "<unknown>:0: error: loc(\"StatefulPartitionedCall\"): 'tf.Foo' op "
        "is neither a custom op nor a flex op")
    explained = conversion_error(error, model)
    assert "Cannot convert the model" in str(explained)
    assert "The cause could not be located" in str(explained)


def test_preprocessing_layer_is_named(tmp_path):
    inputs = keras.Input((STEPS,), dtype="int32")
    x = keras.layers.IntegerLookup(vocabulary=[1, 2, 3], name="lookup")(
        inputs)
    x = keras.layers.Embedding(8, 4)(x)
    model = keras.Model(inputs, keras.layers.LSTM(2)(x))
    path = tmp_path / "lookup.tflite"
    with pytest.raises(ExportError, match=r"'lookup' \(IntegerLookup\).*"
                       r"preprocess in tf.data"):
        export_tflite(model, path)
    assert not path.exists()


@pytest.mark.parametrize("kind", ["missing_dir", "is_dir", "under_file"])
def test_unwritable_path(lm_random, tmp_path, kind):
    if kind == "missing_dir":
        path, match = tmp_path / "nope" / "m.tflite", "does not exist"
    elif kind == "is_dir":
        path, match = tmp_path, "is a directory"
    else:
        (tmp_path / "file").write_text("x")
        path, match = tmp_path / "file" / "m.tflite", "does not exist"
    with pytest.raises(ValueError, match=match):
        export_tflite(lm_random, path, sequence_length=STEPS)
    with pytest.raises(ValueError, match="path must be a str"):
        export_tflite(lm_random, 3, sequence_length=STEPS)


def test_verification_failure_leaves_nothing(bidi_classifier, tmp_path):
    """Keras 3.15's unrolled go_backwards RNN treats a mask differently from
    its loop: an unrolled file of a masked Bidirectional model does not match
    the model. Export fails loudly; an existing file at path is kept."""
    path = tmp_path / "bidi.tflite"
    path.write_bytes(b"previous")
    x = tokens((1, STEPS), seed=8, low=1)
    x[0, 3:] = 0
    with pytest.raises(ExportError, match=r"verification failed.*unroll=True"
                       r".*beyond the float32 tolerance"):
        export_tflite(bidi_classifier, path, sequence_length=STEPS,
                      unroll=True, verify=x)
    assert path.read_bytes() == b"previous"
    assert sorted(os.listdir(tmp_path)) == ["bidi.tflite"]
    # "auto" tries the WHILE loop first, which matches.
    report = export_tflite(bidi_classifier, path, sequence_length=STEPS,
                           verify=x)
    assert report.unroll is False and report.max_abs_error <= 1e-5
    assert path.read_bytes() != b"previous"


def test_weights_outside_mask(tmp_path):
    model = lm(seed=7)
    kernel = model.get_layer("softmax").kernel
    mask = keras.ops.convert_to_numpy(model.get_layer("softmax").kernel_mask)
    values = keras.ops.convert_to_numpy(kernel).copy()
    values[mask == 0] = 1.0
    with pytest.raises(ValueError, match="non-zero outside its mask"):
        kernel.assign(values)  # refused in eager code
    tf.function(lambda: kernel.assign(values))()  # traced code is not checked
    path = tmp_path / "m.tflite"
    with pytest.raises(ExportError, match=r"Layer 'softmax': \d+ weights .*"
                       "outside its mask are non-zero"):
        export_tflite(model, path, sequence_length=STEPS)
    assert not path.exists()


def test_stateful_needs_streaming(tmp_path):
    model = keras.Sequential([
        keras.Input((3, 2), batch_size=1),
        keras.layers.LSTM(2, stateful=True, name="stateful_lstm")])
    with pytest.raises(ExportError, match=r"\['stateful_lstm'\] are "
                       "stateful=True.*streaming=True"):
        export_tflite(model, tmp_path / "s.tflite")


def test_invalid_arguments(lm_random, tmp_path):
    path = tmp_path / "m.tflite"
    cases = [
        (dict(unroll="yes"), "unroll must be 'auto', True or False, got 'yes'"),
        (dict(batch_size=0), "batch_size must be a positive int, got 0"),
        (dict(sequence_length=-2),
         "sequence_length must be a positive int, got -2"),
        (dict(streaming="yes"), "streaming must be True or False, got 'yes'"),
        (dict(sparse_encoding=1),
         "sparse_encoding must be True or False, got 1"),
        (dict(verify=None), "verify must be True, False or input data"),
        (dict(verify=np.zeros((1, 2, 3))), r"verify: a batch has shape"),
    ]
    for kwargs, match in cases:
        kwargs.setdefault("sequence_length", STEPS)
        with pytest.raises(ValueError, match=match):
            export_tflite(lm_random, path, **kwargs)
    with pytest.raises(ValueError, match="model must be a keras.Model"):
        export_tflite(keras.layers.LSTM(2), path, sequence_length=STEPS)

    class Sub(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="subclassed model has no input "
                       "signature"):
        export_tflite(Sub(), path, sequence_length=STEPS)
    assert not path.exists()
