"""float16, dynamic-range int8 and full int8 exports."""

import warnings

import numpy as np
import pytest
import keras

from export_helpers import STEPS, lm, run_tflite, stream_tflite, tokens
from keras_sparse_rnn import SparseDense, SparseEmbedding, SparseGRU
from keras_sparse_rnn.export import ExportError, export_tflite
from keras_sparse_rnn.export import choice


def _keras(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.fixture(scope="module")
def float32_size(lm_random, tmp_path_factory):
    path = tmp_path_factory.mktemp("q") / "f32.tflite"
    return export_tflite(lm_random, path, sequence_length=STEPS).size_bytes


def _check_quantized(report, model, max_error):
    x = tokens((1, STEPS), seed=31)
    got = run_tflite(report.path, xnnpack=bool(report.xnnpack),
                     tokens=x)["output_0"]
    error = np.abs(got - _keras(model, x)).max()
    assert np.isfinite(report.max_abs_error)
    assert report.max_abs_error < max_error and error < max_error
    assert report.tolerance is None
    assert "quantized: reported, not thresholded" in str(report)


def test_float16(lm_random, float32_size, tmp_path):
    report = export_tflite(lm_random, tmp_path / "f16.tflite",
                           sequence_length=STEPS, quantization="float16")
    assert report.quantization == "float16" and report.unroll is False
    assert "DEQUANTIZE" in report.ops
    assert report.size_bytes < float32_size
    _check_quantized(report, lm_random, 1e-3)


def test_dynamic_int8(lm_block, tmp_path):
    # Sparse int8 weights are expanded by DENSIFY (int8 needs 1x16 blocks to
    # run sparse), and LiteRT 2.3's XNNPACK delegate cannot prepare that
    # file: by default the file kept is one Interpreter(path) runs with its
    # default delegate (here the dense one), with no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        report = export_tflite(lm_block, tmp_path / "dyn.tflite",
                               sequence_length=STEPS,
                               quantization="dynamic_int8")
    assert report.quantization == "dynamic_int8" and report.unroll is False
    assert report.xnnpack is True and not report.densify
    assert not report.sparse_encoding
    from ai_edge_litert.interpreter import Interpreter

    Interpreter(model_path=report.path).allocate_tensors()  # the check
    run_tflite(report.path, xnnpack=True, tokens=tokens((1, STEPS)))
    _check_quantized(report, lm_block, 0.05)
    sparse = next(c for c in report.candidates if c.encoding == "sparse")
    assert sparse.xnnpack is False and sparse.size_bytes < report.size_bytes
    assert any("needs LiteRT's builtin kernels" in n and
               "require_xnnpack=False" in n for n in report.notes)
    # The smaller sparse file only on request: it runs without the delegate,
    # and the report says so.
    with pytest.warns(UserWarning, match="XNNPACK delegate cannot prepare"):
        builtin = export_tflite(lm_block, tmp_path / "dyn_sparse.tflite",
                                sequence_length=STEPS,
                                quantization="dynamic_int8",
                                require_xnnpack=False)
    assert builtin.xnnpack is False and builtin.densify
    assert abs(builtin.size_bytes - sparse.size_bytes) < 100  # names
    assert "BUILTIN_WITHOUT_DEFAULT_DELEGATES" in str(builtin)
    _check_quantized(builtin, lm_block, 0.05)


def test_int8_needs_representative_data(lm_random, tmp_path):
    path = tmp_path / "int8.tflite"
    with pytest.raises(ValueError, match="int8.*needs representative_data"):
        export_tflite(lm_random, path, sequence_length=STEPS,
                      quantization="int8")
    with pytest.raises(ValueError, match="unroll=False with quantization="
                       "'int8'"):
        export_tflite(lm_random, path, sequence_length=STEPS,
                      quantization="int8", unroll=False,
                      representative_data=tokens((4, STEPS)))
    with pytest.raises(ValueError, match="multiple of batch_size=2"):
        export_tflite(lm_random, path, sequence_length=STEPS, batch_size=2,
                      quantization="int8",
                      representative_data=tokens((3, STEPS)))
    with pytest.raises(ValueError, match="quantization must be one of"):
        export_tflite(lm_random, path, sequence_length=STEPS,
                      quantization="int4")
    assert not path.exists()


def test_int8_unrolled(lm_random, tmp_path):
    report = export_tflite(lm_random, tmp_path / "int8.tflite",
                           sequence_length=STEPS, quantization="int8",
                           representative_data=tokens((8, STEPS), seed=2),
                           sparse_encoding=False)
    assert report.unroll is True and "WHILE" not in report.ops
    assert "QUANTIZE" in report.ops or "DEQUANTIZE" in report.ops
    _check_quantized(report, lm_random, 0.05)


def test_int8_streaming(classifier, tmp_path):
    report = export_tflite(classifier, tmp_path / "int8_step.tflite",
                           streaming=True, quantization="int8",
                           representative_data=tokens((4, 8), seed=3))
    x = tokens((1, 8), seed=9)
    shapes = {n: report.inputs[n][0] for n in report.state_names}
    steps = stream_tflite(report.path, ["tokens"], shapes, [x])
    error = np.abs(steps[-1]["output_0"] - _keras(classifier, x)).max()
    assert error < 0.05 and np.isfinite(report.max_abs_error)


def test_float16_block_sparse_is_refused(lm_block, tmp_path):
    path = tmp_path / "f16_block.tflite"
    with pytest.raises(ExportError, match="float16.*block-sparse.*NaN"):
        export_tflite(lm_block, path, sequence_length=STEPS,
                      quantization="float16")
    assert not path.exists()
    # Without sparse encoding it exports.
    report = export_tflite(lm_block, path, sequence_length=STEPS,
                           quantization="float16", sparse_encoding=False)
    assert np.isfinite(report.max_abs_error)


@pytest.mark.parametrize("quantization", ["float16", "dynamic_int8", "int8"])
def test_quantized_csr_embedding(quantization, tmp_path):
    model = lm(embedding_sparsity=0.9, embedding_dim=16, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # XNNPACK, see above
        report = export_tflite(model, tmp_path / "q.tflite",
                               sequence_length=STEPS,
                               quantization=quantization,
                               representative_data=tokens((4, STEPS)))
    assert report.size_bytes <= report.dense_size_bytes
    if quantization == "float16":
        assert "SCATTER_ND" in report.ops
        assert any("CSR form" in n for n in report.notes)
    else:
        # The CSR values stay float32 while the dense table is stored int8:
        # here the dense encoding is smaller, and kept.
        assert "SCATTER_ND" not in report.ops and not report.sparse_encoding
        assert any(n.startswith("stored without sparse encoding") for n in report.notes)
    _check_quantized(report, model, 0.05)


def test_sparse_file_is_never_larger_than_the_dense_one(tmp_path):
    """At sparsity 0.3, sparse weights stored as float32 (and densified)
    outweigh the dense int8 ones: the dense encoding is kept (verified), and
    the report says why."""
    model = lm(sparsity=0.3, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        report = export_tflite(model, tmp_path / "q.tflite",
                               sequence_length=STEPS,
                               quantization="dynamic_int8")
    assert report.size_bytes == report.dense_size_bytes
    assert report.size_bytes == (tmp_path / "q.tflite").stat().st_size
    assert not report.sparse_encoding and report.sparse_tensors == 0
    assert "DENSIFY" not in report.ops
    note = next(n for n in report.notes if n.startswith("stored without sparse encoding"))
    assert "that file is smaller" in note and "block=(1, 16)" in note
    _check_quantized(report, model, 0.05)
    # Where the sparse encoding is smaller it is kept.
    sparse = export_tflite(lm(sparsity=0.9, seed=5), tmp_path / "f.tflite",
                           sequence_length=STEPS)
    assert sparse.sparse_encoding and sparse.size_bytes < sparse.dense_size_bytes


def test_int8_with_1x16_blocks_has_no_densify(tmp_path):
    # LiteRT's int8 FULLY_CONNECTED reads blocks of 16 inputs sparse: no
    # DENSIFY op, the sparse weights stay compressed in the file.
    # 64 units: in a smaller model the block indices outweigh the zeros and
    # the (smaller) dense encoding would be kept.
    model = lm(block=(1, 16), units=64, embedding_dim=16, seed=5)
    report = export_tflite(model, tmp_path / "int8_b16.tflite",
                           sequence_length=STEPS, quantization="int8",
                           representative_data=tokens((8, STEPS), seed=2))
    assert report.quantization == "int8" and report.unroll is True
    assert "DENSIFY" not in report.ops and not report.densify
    assert report.sparse_tensors > 0
    assert not any(op.startswith("CUSTOM") or "FLEX" in op for op in report.ops)
    _check_quantized(report, model, 0.1)


def _gru_classifier(vocab, dim, seed):
    """SparseEmbedding (0.9, large entries) -> SparseGRU -> SparseDense: the
    issue's TREC classifier in small, where the int8 CSR table is
    calibrated worse than the dense one."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((None,), dtype="int32"),
        SparseEmbedding(vocab, dim, sparsity=0.9),
        SparseGRU(16, sparsity=0.9), SparseDense(6, sparsity=0.5)])
    table = model.layers[0].embeddings
    table.assign(table.numpy() * 40)
    return model, tokens((8, STEPS))


def test_int8_keeps_the_accurate_file_and_reports_every_candidate(
        tmp_path, capsys):
    """The sparse (CSR) int8 file is the smallest but 2.8 times less
    accurate: by default the dense file is kept; every candidate is in the
    report with its size, error and time; prefer='size' keeps the small one."""
    model, rep = _gru_classifier(100, 64, seed=1)
    report = export_tflite(model, tmp_path / "int8.tflite",
                           sequence_length=STEPS, quantization="int8",
                           representative_data=rep, verbose=True)
    by_encoding = {c.encoding: c for c in report.candidates}
    assert list(by_encoding) == ["sparse", "csr_only", "dense"]
    sparse, dense = by_encoding["sparse"], by_encoding["dense"]
    assert sparse.size_bytes < dense.size_bytes
    assert sparse.max_abs_error > 2 * dense.max_abs_error
    assert dense.kept and not report.sparse_encoding
    assert report.max_abs_error == dense.max_abs_error
    assert all(c.seconds > 0 for c in report.candidates)
    text = str(report)
    for c in report.candidates:
        assert f"candidate:    {c}" in text
        assert f"{c.size_bytes} bytes, max error {c.max_abs_error:.2e}" in text
    # The accuracy rule alone (the delegate allowed) keeps the dense file.
    noise = 1e-5 * max(1.0, float(np.abs(_keras(model, rep[:1])).max()))
    alike = [choice.Candidate(**{**vars(c), "kept": False})
             for c in report.candidates]
    assert alike[choice.choose(alike, "balanced", False, noise)[0]] \
        .encoding == "dense"
    # verbose: what it does, as it does it.
    printed = capsys.readouterr().out
    assert "export_tflite: converting unroll=True, sparse encoding" in printed
    assert "export_tflite: converting unroll=True, dense encoding" in printed
    assert "export_tflite: kept the dense file" in printed
    with pytest.warns(UserWarning, match="XNNPACK delegate cannot prepare"):
        small = export_tflite(model, tmp_path / "small.tflite",
                              sequence_length=STEPS, quantization="int8",
                              representative_data=rep, prefer="size",
                              require_xnnpack=False, verbose=False)
    assert small.sparse_encoding and small.size_bytes < report.size_bytes
    assert capsys.readouterr().out == ""


def test_int8_report_has_no_warning_of_a_discarded_file(tmp_path):
    """The sparse int8 file (which XNNPACK cannot prepare) is discarded for
    a smaller dense file that runs with XNNPACK: no warning of the discarded
    file, and no NumPy 2 `__array__ ... copy keyword` warnings."""
    model, rep = _gru_classifier(300, 16, seed=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = export_tflite(model, tmp_path / "int8.tflite",
                               sequence_length=STEPS, quantization="int8",
                               representative_data=rep)
    assert [str(w.message) for w in caught] == []
    assert report.xnnpack is True and "runs with the XNNPACK delegate" in \
        str(report)
    assert not any("XNNPACK delegate cannot prepare" in n
                   for n in report.notes)
    sparse = next(c for c in report.candidates if c.encoding == "sparse")
    assert sparse.xnnpack is False and not sparse.kept


def test_choice_arguments_are_checked(lm_random, tmp_path):
    path = tmp_path / "m.tflite"
    for kwargs, message in [
            (dict(prefer="smallest"), "prefer must be one of"),
            (dict(require_xnnpack="yes"), "require_xnnpack"),
            (dict(verbose=-1), "verbose must be True, False or an int")]:
        with pytest.raises(ValueError, match=message):
            export_tflite(lm_random, path, sequence_length=STEPS, **kwargs)
    assert not path.exists()
