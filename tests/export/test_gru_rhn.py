"""SparseGRU and SparseRHN export: both loop forms, blocks, streaming."""

import numpy as np
import pytest
import keras

from export_helpers import STEPS, VOCAB, randomize_biases, run_tflite, \
    stream_tflite, tokens
from keras_sparse_rnn import (
    SparseDense,
    SparseEmbedding,
    SparseGRU,
    SparseGRUCell,
    SparseRHN,
    SparseRHNCell,
)
from keras_sparse_rnn.export import export_tflite

RECURRENT = {
    "gru": lambda block: SparseGRU(16, sparsity=0.75, block=block,
                                   return_sequences=True, mask_seed=2,
                                   name="rec"),
    "gru_cell": lambda block: keras.layers.RNN(
        SparseGRUCell(8, sparsity=0.5, block=block, mask_seed=2),
        return_sequences=True, name="rec"),
    "rhn": lambda block: SparseRHN(16, depth=3, sparsity=0.75, block=block,
                                   return_sequences=True, mask_seed=2,
                                   name="rec"),
    "rhn_cell": lambda block: keras.layers.RNN(
        SparseRHNCell(8, depth=2, sparsity=0.5, block=block, mask_seed=2,
                      coupled=False),
        return_sequences=True, name="rec"),
}
# Sparse FULLY_CONNECTED weights: kernel + recurrent kernel(s) + softmax.
SPARSE_TENSORS = {"gru": 3, "gru_cell": 3, "rhn": 5, "rhn_cell": 4}


def _model(kind, block):
    keras.utils.set_random_seed(11)
    inputs = keras.Input((None,), dtype="int32", name="tokens")
    x = SparseEmbedding(VOCAB, 8, sparsity=0.5, mask_seed=1)(inputs)
    x = RECURRENT[kind](block)(x)
    outputs = SparseDense(VOCAB, sparsity=0.5, block=block, mask_seed=3)(x)
    model = keras.Model(inputs, outputs)
    randomize_biases(model)
    return model


@pytest.mark.parametrize("kind", sorted(RECURRENT))
@pytest.mark.parametrize("block", [None, (1, 4)])
def test_export_matches_keras(kind, block, tmp_path):
    model = _model(kind, block)
    x = tokens((1, STEPS), seed=5)
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    for unroll in (False, True):
        report = export_tflite(model, tmp_path / f"{unroll}.tflite",
                               sequence_length=STEPS, unroll=unroll)
        assert ("WHILE" in report.ops) is (not unroll)
        assert report.sparse_tensors == SPARSE_TENSORS[kind]
        assert ("DENSIFY" in report.ops) is (block is None)
        got = run_tflite(report.path, tokens=x)["output_0"]
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["gru", "rhn"])
def test_streaming(kind, tmp_path):
    model = _model(kind, (1, 4))
    report = export_tflite(model, tmp_path / "step.tflite", streaming=True)
    assert report.state_names == ["rec_state_0"]
    assert report.inputs["rec_state_0"] == ((1, 16), "float32")
    x = tokens((1, 9), seed=6)
    steps = stream_tflite(report.path, ["tokens"],
                          {"rec_state_0": (1, 16)}, [x])
    got = np.concatenate([s["output_0"] for s in steps], axis=1)
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_constant_fan_in_blocks_export_sparse_without_densify(tmp_path):
    # Issue 19: a model whose recurrent layer and softmax compute from their
    # active 8 x 8 blocks exports the masked kernels whole (the export traces the
    # masked-dense path); an 8 x 8 block is also two 1 x 4 blocks along the
    # input, so FULLY_CONNECTED reads the weights sparse, with no DENSIFY.
    keras.utils.set_random_seed(11)
    inputs = keras.Input((None,), dtype="int32", name="tokens")
    x = SparseEmbedding(VOCAB, 16, sparsity=0.5, mask_seed=1)(inputs)
    rec = SparseGRU(16, sparsity=0.5, block=(8, 8), compute_path="blocks",
                    return_sequences=True, mask_seed=2, name="rec")
    x = rec(x)
    softmax = SparseDense(VOCAB, sparsity=0.5, block=(8, 8), compute_path="blocks",
                          mask_seed=3)
    outputs = softmax(x)
    model = keras.Model(inputs, outputs)
    randomize_biases(model)
    assert rec.cell.block_path_weights() == ["kernel", "recurrent_kernel"]
    assert softmax.block_path_weights() == ["kernel"]
    x = tokens((1, STEPS), seed=5)
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    report = export_tflite(model, tmp_path / "blocks.tflite", sequence_length=STEPS)
    assert "DENSIFY" not in report.ops and report.sparse_tensors == 3
    got = run_tflite(report.path, tokens=x)["output_0"]
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
