"""float32 export: both loop forms, sparse encoding, the report."""

import os

import numpy as np
import pytest
import keras

from export_helpers import STEPS, VOCAB, lm, run_tflite, stream_tflite, tokens
from keras_sparse_rnn.export import (
    ExportError,
    ExportReport,
    export_tflite,
    tflite_ops,
)

BUILTIN_RNN_OPS = {"FULLY_CONNECTED", "LOGISTIC", "TANH", "MUL", "ADD"}


def _keras(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.fixture(scope="module")
def lm_exports(lm_random, lm_block, tmp_path_factory):
    """The LM, random and block-sparse, as WHILE loop and unrolled."""
    out = tmp_path_factory.mktemp("lm")
    reports = {}
    for name, model in (("random", lm_random), ("block", lm_block)):
        for unroll in (False, True):
            path = out / f"{name}_{unroll}.tflite"
            reports[name, unroll] = export_tflite(
                model, path, sequence_length=STEPS, unroll=unroll)
    return reports


@pytest.mark.parametrize("structure", ["random", "block"])
@pytest.mark.parametrize("unroll", [False, True])
def test_lm_file_matches_keras(lm_exports, lm_random, lm_block, structure,
                               unroll):
    report = lm_exports[structure, unroll]
    model = lm_random if structure == "random" else lm_block
    x = tokens((1, STEPS), seed=11)
    got = run_tflite(report.path, tokens=x)["output_0"]
    assert got.shape == (1, STEPS, VOCAB)
    np.testing.assert_allclose(got, _keras(model, x), rtol=0, atol=1e-5)
    assert report.max_abs_error <= 1e-5
    assert report.tolerance == pytest.approx(
        1e-5 * max(1.0, float(np.abs(_keras(model, tokens((1, STEPS))))
                              .max())), rel=0.5)


@pytest.mark.parametrize("structure", ["random", "block"])
def test_loop_forms(lm_exports, structure):
    loop = lm_exports[structure, False]
    unrolled = lm_exports[structure, True]
    assert loop.unroll is False and "WHILE" in loop.ops
    assert unrolled.unroll is True and "WHILE" not in unrolled.ops
    for report in (loop, unrolled):
        assert BUILTIN_RNN_OPS <= report.ops
        assert not any(op.startswith("CUSTOM") for op in report.ops)


@pytest.mark.parametrize("unroll", [False, True])
def test_random_sparsity_densifies_blocks_do_not(lm_exports, unroll):
    random, block = lm_exports["random", unroll], lm_exports["block", unroll]
    # 2 LSTM layers x (kernel, recurrent kernel) + the softmax kernel; the
    # embedding table is read by GATHER and stays dense.
    assert random.sparse_tensors == 5
    assert block.sparse_tensors == 5
    assert "DENSIFY" in random.ops and random.densify
    assert "DENSIFY" not in block.ops and not block.densify
    # The file's own flatbuffer says the same.
    assert tflite_ops(block.path) == (block.ops, 5)


def test_report_sizes_and_fields(lm_exports, lm_random, tmp_path):
    report = lm_exports["random", False]
    assert isinstance(report, ExportReport)
    assert report.size_bytes == os.path.getsize(report.path)
    assert report.size_bytes < report.dense_size_bytes
    assert report.size_ratio == report.size_bytes / report.dense_size_bytes
    assert report.quantization is None and report.sparse_encoding is True
    assert report.batch_size == 1 and report.sequence_length == STEPS
    assert report.inputs == {"tokens": ((1, STEPS), "int32")}
    assert report.outputs == {"output_0": ((1, STEPS, VOCAB), "float32")}
    assert report.xnnpack is True and report.streaming is False
    # The dense size is the size of the same export without sparse encoding
    # (up to the traced functions' names, which hold a counter).
    dense = export_tflite(lm_random, tmp_path / "dense.tflite",
                          sequence_length=STEPS, unroll=False,
                          sparse_encoding=False)
    assert abs(dense.size_bytes - report.dense_size_bytes) < 100
    assert dense.sparse_tensors == 0 and "DENSIFY" not in dense.ops
    text = str(report)
    assert text.startswith(f"TFLite export: {report.path}")
    for part in ("WHILE loop", "sequence length 6", "DENSIFY",
                 "max |LiteRT - Keras|", "dense encoding",
                 "['embedding'] are stored dense"):
        assert part in text


def test_auto_picks_while_loop(lm_random, tmp_path):
    report = export_tflite(lm_random, tmp_path / "auto.tflite",
                           sequence_length=STEPS)
    assert report.unroll is False and "WHILE" in report.ops
    assert not report.notes[0].startswith("unroll=False")


def test_model_static_length_and_batch(lm_random, tmp_path):
    """A model whose Input has a static batch and length needs neither."""
    inputs = keras.Input((STEPS,), batch_size=2, dtype="int32", name="ids")
    model = keras.Model(inputs, lm_random(inputs))
    report = export_tflite(model, tmp_path / "static.tflite", batch_size=2)
    assert report.inputs == {"ids": ((2, STEPS), "int32")}
    x = tokens((2, STEPS), seed=3)
    got = run_tflite(report.path, ids=x)["output_0"]
    np.testing.assert_allclose(got, _keras(model, x), atol=1e-5, rtol=0)


def test_batch_size_four(lm_block, tmp_path):
    report = export_tflite(lm_block, tmp_path / "b4.tflite",
                           sequence_length=STEPS, batch_size=4)
    x = tokens((4, STEPS), seed=5)
    got = run_tflite(report.path, tokens=x)["output_0"]
    np.testing.assert_allclose(got, _keras(lm_block, x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("unroll", [False, True])
def test_rnn_of_sparse_cell_with_keras_layers(cell_model, tmp_path, unroll):
    report = export_tflite(cell_model, tmp_path / "cell.tflite",
                           sequence_length=5, unroll=unroll)
    x = np.random.default_rng(2).normal(size=(1, 5, 4)).astype("float32")
    got = run_tflite(report.path, features=x)["output_0"]
    np.testing.assert_allclose(got, _keras(cell_model, x), atol=1e-5, rtol=0)
    assert report.unroll is unroll


def test_bidirectional_classifier(bidi_classifier, tmp_path):
    # Padded sequences: the mask (mask_zero=True) must be honoured.
    x = tokens((2, STEPS), seed=8, low=1)
    x[0, 4:] = 0
    x[1, 2:] = 0
    report = export_tflite(bidi_classifier, tmp_path / "bidi.tflite",
                           sequence_length=STEPS, batch_size=2, verify=x)
    assert report.unroll is False
    got = run_tflite(report.path, tokens=x)["output_0"]
    expected = _keras(bidi_classifier, x)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got.sum(axis=-1), [1.0, 1.0], atol=1e-6)


def test_dense_keras_model(tmp_path):
    """Any Keras RNN exports, sparse layers or not (GRU, SimpleRNN)."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((None, 3)),
        keras.layers.GRU(6, return_sequences=True),
        keras.layers.SimpleRNN(5),
        keras.layers.Dense(2),
    ])
    report = export_tflite(model, tmp_path / "plain.tflite",
                           sequence_length=4)
    assert report.sparse_tensors == 0 and "DENSIFY" not in report.ops
    x = np.random.default_rng(0).normal(size=(1, 4, 3)).astype("float32")
    name = next(iter(report.inputs))
    got = run_tflite(report.path, **{name: x})["output_0"]
    np.testing.assert_allclose(got, _keras(model, x), atol=1e-5, rtol=0)


def test_export_leaves_model_unchanged(lm_random, tmp_path):
    layers = [l for l in lm_random._flatten_layers()
              if isinstance(l, keras.layers.RNN)]
    export_tflite(lm_random, tmp_path / "u.tflite", sequence_length=STEPS,
                  unroll=True)
    assert all(l.unroll is False for l in layers)
    assert all(l.use_cudnn == "auto" for l in layers)


@pytest.fixture(scope="module")
def lm_sparse_table():
    return lm(embedding_sparsity=0.9, embedding_dim=16, seed=3)


@pytest.mark.parametrize("streaming", [False, True])
def test_sparse_embedding_stored_as_csr(lm_sparse_table, tmp_path,
                                        streaming):
    model = lm_sparse_table
    table = keras.ops.convert_to_numpy(model.get_layer("embedding").embeddings)
    nonzeros = int(np.count_nonzero(table))
    width = int((table != 0).sum(axis=1).max())
    assert nonzeros == 80  # 10% of 50 x 16
    report = export_tflite(model, tmp_path / "table.tflite",
                           sequence_length=STEPS, streaming=streaming)
    assert {"GATHER", "SCATTER_ND"} <= report.ops
    note = next(n for n in report.notes if "CSR form" in n)
    # (80 + width) x (4 + 2) bytes + 51 row starts x 4 bytes.
    kb = ((80 + width) * 6 + 51 * 4) / 1024
    assert (f"(80 non-zeros, int16 column indices, at most {width} per "
            f"row: {kb:.1f} KB for a dense 3.1 KB)") in note
    x = tokens((1, STEPS), seed=12)
    expected = _keras(model, x)
    if streaming:
        shapes = {n: report.inputs[n][0] for n in report.state_names}
        steps = stream_tflite(report.path, ["tokens"], shapes, [x])
        got = np.concatenate([s["output_0"] for s in steps], axis=1)
    else:
        got = run_tflite(report.path, tokens=x)["output_0"]
        assert "SCATTER_ND" not in export_tflite(
            model, tmp_path / "plain.tflite", sequence_length=STEPS,
            sparse_encoding=False).ops
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    # Every token of the vocabulary, rows with no non-zero included.
    if not streaming:
        for start in range(0, VOCAB, STEPS):
            x = (np.arange(start, start + STEPS) % VOCAB)[None].astype(
                "int32")
            got = run_tflite(report.path, tokens=x)["output_0"]
            np.testing.assert_allclose(got, _keras(model, x), atol=1e-5,
                                       rtol=0)
    # The model's own lookup is restored.
    assert "call" not in vars(model.get_layer("embedding"))


def test_csr_table_encoding():
    from keras_sparse_rnn.export.csr_embedding import csr_table

    table = np.array([[0, 2, 0, 3], [0, 0, 0, 0], [5, 0, 0, 0]], "float32")
    csr = csr_table(table, max_fraction=10)
    np.testing.assert_array_equal(csr.values, [2, 3, 5, 0, 0])
    np.testing.assert_array_equal(csr.columns, [1, 3, 0, 4, 4])
    np.testing.assert_array_equal(csr.row_starts, [0, 2, 2, 3])
    assert csr.width == 2 and csr.nonzeros == 3
    assert csr.columns.dtype == np.int16
    # (3 + 2) x (4 + 2) + 4 x 4 = 46 bytes, dense 48.
    assert csr.nbytes == 46
    assert csr_table(table, max_fraction=0.95) is None
    assert csr_table(table, max_fraction=0.97) is not None


def test_auto_falls_back_to_unrolled(lm_random, tmp_path, monkeypatch):
    """If the WHILE-loop file fails (here: made to fail at load), "auto"
    exports the unrolled form and says why in the report."""
    from keras_sparse_rnn.export import verify as verify_module

    real_runner = verify_module.runner

    def runner(path):
        if "WHILE" in tflite_ops(path)[0]:
            raise ExportError("WHILE rejected for the test")
        return real_runner(path)

    monkeypatch.setattr(verify_module, "runner", runner)
    report = export_tflite(lm_random, tmp_path / "auto.tflite",
                           sequence_length=STEPS)
    assert report.unroll is True and "WHILE" not in report.ops
    assert report.notes[0].startswith(
        "unroll=False (WHILE loop) failed (WHILE rejected for the test)")
    # The failed form is a candidate of the report too, with its time.
    failed, *rest = report.candidates
    assert failed.form == "unroll=False (WHILE loop)" and not failed.kept
    assert "WHILE rejected for the test" in failed.failure
    assert failed.seconds > 0 and all(c.form == "unroll=True" for c in rest)
    with pytest.raises(ExportError,
                       match="WHILE rejected for the test"):
        export_tflite(lm_random, tmp_path / "loop.tflite",
                      sequence_length=STEPS, unroll=False)
    assert sorted(os.listdir(tmp_path)) == ["auto.tflite"]


def test_compare_dense_false(lm_block, tmp_path):
    report = export_tflite(lm_block, tmp_path / "m.tflite",
                           sequence_length=STEPS, compare_dense=False)
    assert report.dense_size_bytes is None and report.size_ratio is None
    assert "dense encoding not measured" in str(report)


def test_long_tensor_names_cut_buffers_aligned(lm_exports):
    """Unrolled files would repeat long fused tensor names per time step."""
    from ai_edge_litert import schema_py_generated as schema

    for report in lm_exports.values():
        with open(report.path, "rb") as f:
            flat = schema.Model.GetRootAs(bytearray(f.read()), 0)
        names = [flat.Subgraphs(s).Tensors(t).Name()
                 for s in range(flat.SubgraphsLength())
                 for t in range(flat.Subgraphs(s).TensorsLength())]
        assert max(len(n) for n in names) <= 64
        for i in range(flat.BuffersLength()):
            buffer = flat.Buffers(i)
            if buffer.DataLength():
                assert buffer._tab.Vector(buffer._tab.Offset(4)) % 16 == 0


def test_verify_false(lm_block, tmp_path):
    report = export_tflite(lm_block, tmp_path / "m.tflite",
                           sequence_length=STEPS, verify=False,
                           compare_dense=False)
    assert report.max_abs_error is None and report.tolerance is None
    assert report.xnnpack is True  # the file is still loaded and run once
    assert "verification: not run; runs with the XNNPACK delegate" in str(
        report)


def test_csr_embedding_keeps_mask_zero(tmp_path):
    model = lm(embedding_sparsity=0.9, embedding_dim=16, seed=4,
               mask_zero=True)
    x = tokens((2, STEPS), seed=13, low=1)
    x[0, 3:] = 0
    report = export_tflite(model, tmp_path / "masked.tflite",
                           sequence_length=STEPS, batch_size=2, verify=x)
    assert any("CSR form" in n for n in report.notes)
    got = run_tflite(report.path, tokens=x)["output_0"]
    expected = _keras(model, x)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    # Masked steps repeat the last real step's output.
    np.testing.assert_allclose(expected[0, 3], expected[0, 2], atol=1e-6)
