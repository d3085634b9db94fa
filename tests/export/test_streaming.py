"""One-time-step models: Keras step model and streaming TFLite files."""

import numpy as np
import pytest
import keras

from export_helpers import VOCAB, stream_tflite, tokens
from keras_sparse_rnn import SparseLSTMCell
from keras_sparse_rnn.export import export_tflite, streaming_model


def _keras(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def _step_keras(step, info, x):
    states = [np.zeros(info.state_shapes[n], "float32")
              for n in info.state_names]
    outputs = []
    for t in range(x.shape[1]):
        result = [keras.ops.convert_to_numpy(r)
                  for r in step([x[:, t:t + 1], *states], training=False)]
        outputs.append(result[0])
        states = result[1:]
    return outputs


def test_streaming_model_names_and_shapes(lm_random):
    step, info = streaming_model(lm_random, batch_size=2)
    assert info.input_names == ["tokens"]
    assert info.output_names == ["output_0"]
    assert info.state_names == [
        "lstm_1_state_0", "lstm_1_state_1", "lstm_2_state_0",
        "lstm_2_state_1",
    ]
    assert all(info.state_shapes[n] == (2, 16) for n in info.state_names)
    assert [tuple(x.shape) for x in step.inputs] == [(2, 1)] + [(2, 16)] * 4
    assert [tuple(y.shape) for y in step.outputs] == [(2, 1, VOCAB)] + [
        (2, 16)] * 4
    # Shares the layers: same weights, nothing copied.
    assert {id(v) for v in step.weights} <= {id(v) for v in lm_random.weights}


def test_keras_step_model_matches_full_sequence():
    """Stacked cells, a GRU cell and Dropout: stepping equals the sequence."""
    keras.utils.set_random_seed(2)
    inputs = keras.Input((None, 3), name="x")
    h = keras.layers.RNN(keras.layers.StackedRNNCells(
        [SparseLSTMCell(8, mask_seed=1), keras.layers.GRUCell(6)]),
        return_sequences=True, name="rnn")(inputs)
    h = keras.layers.Dropout(0.5)(h)
    outputs = keras.layers.TimeDistributed(keras.layers.Dense(2))(h)
    model = keras.Model(inputs, outputs)
    step, info = streaming_model(model)
    assert info.state_names == ["rnn_state_0", "rnn_state_1", "rnn_state_2"]
    x = np.random.default_rng(0).normal(size=(1, 7, 3)).astype("float32")
    full = _keras(model, x)
    for t, y in enumerate(_step_keras(step, info, x)):
        np.testing.assert_allclose(y[:, 0], full[:, t], atol=1e-6, rtol=0)


@pytest.fixture(scope="module")
def lm_stream(lm_block, tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "lm_step.tflite"
    return export_tflite(lm_block, path, streaming=True, sequence_length=5)


def test_streaming_lm_file_matches_full_sequence(lm_stream, lm_block):
    report = lm_stream
    assert report.streaming and report.unroll is None
    assert report.sequence_length == 1
    assert "WHILE" not in report.ops and "DENSIFY" not in report.ops
    assert report.inputs["tokens"] == ((1, 1), "int32")
    assert report.outputs["output_0"] == ((1, 1, VOCAB), "float32")
    assert report.state_names == [
        "lstm_1_state_0", "lstm_1_state_1", "lstm_2_state_0",
        "lstm_2_state_1",
    ]
    for name in report.state_names:
        assert report.inputs[name] == ((1, 16), "float32")
        assert report.outputs[name] == ((1, 16), "float32")
    # A sequence longer than the one verified at export.
    x = tokens((1, 12), seed=21)
    full = _keras(lm_block, x)
    shapes = {n: report.inputs[n][0] for n in report.state_names}
    steps = stream_tflite(report.path, ["tokens"], shapes, [x])
    got = np.concatenate([s["output_0"] for s in steps], axis=1)
    np.testing.assert_allclose(got, full, atol=1e-5, rtol=0)
    assert "streaming: one time step" in str(report)
    # The tensor details carry the signature's names (not
    # serving_default_<name>:0 and PartitionedCall:<i>).
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=report.path)
    assert sorted(d["name"] for d in interpreter.get_input_details()) == \
        sorted(report.inputs)
    assert sorted(d["name"] for d in interpreter.get_output_details()) == \
        sorted(report.outputs)
    assert list(report.outputs) == ["output_0", *report.state_names]


def _unnamed_lm(layers):
    return keras.Sequential([keras.Input((None,), dtype="int32"),
                             layers.Embedding(VOCAB, 4),
                             layers.LSTM(6, return_sequences=True),
                             layers.Dense(VOCAB)])


def test_streaming_names_do_not_depend_on_how_the_model_was_made(tmp_path):
    """An unnamed Input is `input_0` in memory (Keras names it
    keras_tensor_<n>), after load_model (input_layer_<n>) and after
    sparsify; the report, the signature and the tensor details agree."""
    from ai_edge_litert.interpreter import Interpreter
    from keras_sparse_rnn import sparsify

    keras.utils.set_random_seed(8)
    model = sparsify(_unnamed_lm(keras.layers), 0.5)
    model.save(tmp_path / "lm.keras")
    loaded = keras.models.load_model(tmp_path / "lm.keras")
    for made in (model, loaded, _unnamed_lm(keras.layers)):
        assert streaming_model(made)[1].input_names == ["input_0"]
    report = export_tflite(loaded, tmp_path / "step.tflite", streaming=True,
                           compare_dense=False)
    # States are named after their layer (kept by load_model and sparsify).
    rnn = model.layers[1].name
    assert loaded.layers[1].name == rnn
    states = [f"{rnn}_state_0", f"{rnn}_state_1"]
    assert list(report.inputs) == ["input_0", *states]
    assert list(report.outputs) == ["output_0", *states]
    interpreter = Interpreter(model_path=report.path)
    signature = interpreter.get_signature_list()["serving_default"]
    assert sorted(signature["inputs"]) == sorted(report.inputs)
    assert sorted(signature["outputs"]) == sorted(report.outputs)
    assert sorted(d["name"] for d in interpreter.get_input_details()) == \
        sorted(report.inputs)
    assert sorted(d["name"] for d in interpreter.get_output_details()) == \
        sorted(report.outputs)
    # Token by token, the states carried, as the README shows.
    step = interpreter.get_signature_runner()
    x = tokens((1, 5), seed=12)
    carried = {n: np.zeros(report.inputs[n][0], "float32") for n in states}
    outputs = []
    for t in range(x.shape[1]):
        got = step(input_0=x[:, t:t + 1], **carried)
        carried = {n: got[n] for n in states}
        outputs.append(got["output_0"])
    np.testing.assert_allclose(np.concatenate(outputs, axis=1),
                               _keras(model, x), atol=1e-5, rtol=0)


def test_streaming_classifier_last_output(classifier, tmp_path):
    report = export_tflite(classifier, tmp_path / "cls_step.tflite",
                           streaming=True)
    assert report.outputs["output_0"] == ((1, 2), "float32")
    x = tokens((1, 9), seed=4)
    shapes = {n: report.inputs[n][0] for n in report.state_names}
    steps = stream_tflite(report.path, ["tokens"], shapes, [x])
    np.testing.assert_allclose(steps[-1]["output_0"], _keras(classifier, x),
                               atol=1e-5, rtol=0)
    # Each prefix's prediction is the model's on that prefix.
    np.testing.assert_allclose(steps[3]["output_0"],
                               _keras(classifier, x[:, :4]), atol=1e-5,
                               rtol=0)


def test_bidirectional_cannot_stream(bidi_classifier, tmp_path):
    path = tmp_path / "bidi_step.tflite"
    with pytest.raises(ValueError, match=r"Bidirectional.*streaming=False"):
        export_tflite(bidi_classifier, path, streaming=True)
    assert not path.exists()


def test_layer_mixing_time_steps_cannot_stream(tmp_path):
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, 4)(inputs)
    x = keras.layers.LSTM(4, return_sequences=True)(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    with pytest.raises(ValueError, match=r"'pool' \(GlobalAveragePooling1D\)"
                       r" cannot be streamed"):
        streaming_model(model)
    backwards = keras.Sequential([
        keras.Input((None, 2)),
        keras.layers.LSTM(3, go_backwards=True, name="back")])
    with pytest.raises(ValueError, match="'back'.*go_backwards=True"):
        streaming_model(backwards)
    plain = keras.Sequential([keras.Input((None, 2)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="no recurrent"):
        streaming_model(plain)


def test_streaming_stateful_layer(tmp_path):
    """A stateful layer streams (its states become inputs), and the export
    leaves its stored state alone."""
    keras.utils.set_random_seed(6)
    model = keras.Sequential([
        keras.Input((None, 2), batch_size=1),
        keras.layers.LSTM(4, stateful=True, return_sequences=True),
    ])
    before = [keras.ops.convert_to_numpy(s).copy()
              for s in model.layers[0].states]
    report = export_tflite(model, tmp_path / "stateful.tflite",
                           streaming=True)
    after = [keras.ops.convert_to_numpy(s) for s in model.layers[0].states]
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b)
    assert report.max_abs_error <= 1e-5
