"""The examples end to end on tiny slices, and the reproduction benchmark.

`ptb_language_model.py` and `text_classification.py` run in this process
(their `main(argv)`); `tfmot_baseline.py` runs in its own process, as it
must (tfmot switches `tf.keras` to tf_keras). `benchmarks/reproduce.py`'s
table, plots and bar checks are tested on hand-made result JSONs.
"""

import importlib.util
import json
import math
import os
import pathlib
import re
import subprocess
import sys
import types
import warnings

import numpy as np
import pytest

from keras_sparse_rnn.dst import schedules as ksr_schedules

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = os.environ.get("KERAS_SPARSE_RNN_DATA",
                      str(ROOT.parent / "shared" / "data"))

RECORD_KEYS = {"args", "history", "wall_seconds", "train_steps", "active_params",
               "dense_params", "forward_flops_per_token", "training_flops_per_token",
               "dense_training_flops_per_token", "mean_training_flops_per_token",
               "epochs", "steps_per_epoch"}


def _module(path, name):
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ptb_lm():
    return _module("examples/ptb_language_model.py", "ptb_language_model_under_test")


@pytest.fixture(scope="module")
def text_clf():
    return _module("examples/text_classification.py", "text_classification_under_test")


@pytest.fixture(scope="module")
def reproduce():
    return _module("benchmarks/reproduce.py", "reproduce_under_test")


def _run(script, *args, env=None, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow",
               KERAS_SPARSE_RNN_DATA=DATA, **(env or {}))
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=timeout)


# --------------------------------------------------------------------------
# ptb_language_model.py
# --------------------------------------------------------------------------


def _shuffle_warnings(caught):
    """Keras's warning that `fit(shuffle=True)` ignores a tf.data.Dataset."""
    return [str(w.message) for w in caught if "`shuffle=True` was passed" in str(w.message)]


def test_ptb_static_tiny_end_to_end(ptb_lm, tmp_path, capsys):
    out = tmp_path / "ptb"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert ptb_lm.main(["--size", "tiny", "--method", "static", "--sparsity", "0.8",
                            "--steps-per-epoch", "5", "--epochs", "2",
                            "--verbose", "0", "--data-dir", os.path.join(DATA, "ptb"),
                            "--out-dir", str(out)]) == 0
    # Issue 21: fit's default shuffle=True warned on every run.
    assert _shuffle_warnings(caught) == []
    # What the demo prints: the sparsity report, the perplexities, the export.
    printed = capsys.readouterr().out
    for line in ("parameters:", "validation perplexity", "TFLite export:",
                 "verification: max |LiteRT - Keras|"):
        assert line in printed
    record = json.loads((out / "history.json").read_text())
    assert RECORD_KEYS | {"valid_perplexity", "test_perplexity"} <= set(record)
    assert record["train_steps"] == 10
    assert (record["epochs"], record["steps_per_epoch"]) == (2, 5)
    hist = record["history"]
    assert len(hist["val_perplexity"]) == 2
    np.testing.assert_allclose(hist["val_perplexity"], np.exp(hist["val_loss"]))
    # Evaluated again after training, from reset states: the last epoch's value.
    np.testing.assert_allclose(record["valid_perplexity"], hist["val_perplexity"][-1],
                               rtol=1e-5)
    assert math.isfinite(record["test_perplexity"])
    # Zaremba's lr 1 for a loss summed over BPTT 10 is 10 for Keras' mean loss.
    assert hist["learning_rate"] == [10.0, 10.0]
    summary = json.loads((out / "summary.json").read_text())
    active = sum(m["active"] for m in summary["matrices"])
    size = sum(m["size"] for m in summary["matrices"])
    assert active == round(0.2 * size) or abs(active / size - 0.2) < 1e-3
    assert record["active_params"] < record["dense_params"]
    assert record["mean_training_flops_per_token"] == record["training_flops_per_token"]
    assert (out / "model.keras").is_file() and (out / "summary.txt").is_file()
    # The exported file: one time step, batch 1, checked against Keras.
    tflite = record["tflite"]
    assert tflite["streaming"] is True
    assert tflite["size_bytes"] == (out / "model.tflite").stat().st_size > 0
    assert tflite["max_abs_error"] < 1e-3
    assert "FULLY_CONNECTED" in tflite["ops"]


def test_ptb_wide_sparse_at_the_dense_models_parameter_count(ptb_lm, tmp_path):
    # The tiny dense model (32 units, 10,000 words) trains 666,640 parameters;
    # 48 units at that count: 10,384 biases whole, the rest of the 996,864
    # sparse weights at density (666,640 - 10,384) / 996,864.
    out = tmp_path / "wide"
    assert ptb_lm.main(["--size", "tiny", "--method", "rigl", "--units", "48",
                        "--active-params", "666640", "--dropout", "0.3", "--block", "8",
                        "--steps-per-epoch", "3", "--epochs", "1", "--no-export",
                        "--no-backup", "--verbose", "0",
                        "--data-dir", os.path.join(DATA, "ptb"), "--out-dir", str(out)]) == 0
    record = json.loads((out / "history.json").read_text())
    assert record["dense_params"] == 996864 + 10384
    assert abs(record["active_params"] - 666640) <= 0.01 * 666640
    assert record["args"]["sparsity"] == pytest.approx(1 - 656256 / 996864)
    # Zaremba's init range scaled to the width: 0.1 * sqrt(32 / 48).
    assert record["config"]["units"] == 48 and record["config"]["dropout"] == 0.3
    assert record["config"]["init"] == pytest.approx(0.1 * math.sqrt(32 / 48))
    summary = json.loads((out / "summary.json").read_text())
    assert [m["shape"] for m in summary["matrices"]][:2] == [[10000, 48], [48, 192]]


def test_ptb_dropout_is_philox_before_each_layer_and_the_softmax(ptb_lm):
    # Not keras.layers.Dropout, which doubles an XLA-compiled CPU step.
    import keras_sparse_rnn as ksr

    args = ptb_lm.parse_args(["--size", "tiny", "--method", "dense", "--dropout", "0.3"])
    model = ptb_lm.build_model(args, ptb_lm.size_config(args), 50)
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    assert kinds == ["SparseEmbedding", "PhiloxDropout", "SparseLSTM", "PhiloxDropout",
                     "SparseLSTM", "PhiloxDropout", "SparseDense"]
    assert {layer.rate for layer in model.layers if isinstance(layer, ksr.PhiloxDropout)} == {0.3}


@pytest.mark.parametrize("argv,message", [
    (["--sparsity", "0.5", "--active-params", "10"], "not both"),
    (["--method", "dense", "--active-params", "10"], "not with --method dense"),
    (["--units", "0"], "--units must be >= 1, got 0"),
    (["--dropout", "1"], "--dropout must be in [0, 1), got 1.0"),
])
def test_ptb_width_flags_are_checked(ptb_lm, argv, message):
    with pytest.raises(ptb_lm.UsageError, match=re.escape(message)):
        ptb_lm.parse_args(argv)


@pytest.mark.parametrize("cell,method,optimizer,distribution", [
    ("rhn", "rigl", "sgd", "erdos_renyi"),
    ("gru", "snfs", "sntasgd", "uniform"),
    ("lstm", "set", "sgd", "uniform"),
])
def test_ptb_cells_methods_and_optimizers(ptb_lm, tmp_path, cell, method, optimizer,
                                          distribution):
    import keras

    out = tmp_path / "ptb"
    assert ptb_lm.main(["--size", "tiny", "--cell", cell, "--method", method,
                        "--optimizer", optimizer, "--distribution", distribution,
                        "--sparsity", "0.7", "--steps-per-epoch", "4", "--epochs", "3",
                        "--no-export", "--verbose", "0",
                        "--data-dir", os.path.join(DATA, "ptb"),
                        "--out-dir", str(out)]) == 0
    record = json.loads((out / "history.json").read_text())
    assert record["args"]["cell"] == cell and record["epochs_run"] == 3
    hist = record["history"]
    # Updates at the end of epochs 1 and 2 (stop at 75% of 12 steps).
    assert hist["dst_updates"] == [1, 1, 0]
    assert hist["dst_grown"][0] == hist["dst_pruned"][0] > 0
    assert math.isfinite(record["valid_perplexity"])
    summary = json.loads((out / "summary.json").read_text())
    active = sum(m["active"] for m in summary["matrices"])
    size = sum(m["size"] for m in summary["matrices"])
    assert active == round(0.3 * size)
    model = keras.models.load_model(out / "model.keras")
    assert type(model.get_layer(f"{cell}_0")).__name__ == {
        "rhn": "SparseRHN", "gru": "SparseGRU", "lstm": "SparseLSTM"}[cell]


def test_other_corpus_in_ptb_format(ptb_lm, tmp_path):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(30)]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for split, lines in (("train", 80), ("valid", 40), ("test", 40)):
        text = "\n".join(" ".join(rng.choice(words, 6)) for _ in range(lines))
        (corpus / f"{split}.txt").write_text(text + "\n")
    out = tmp_path / "out"
    assert ptb_lm.main(["--size", "tiny", "--method", "static", "--corpus", str(corpus),
                        "--epochs", "1", "--no-export", "--verbose", "0",
                        "--out-dir", str(out)]) == 0
    record = json.loads((out / "history.json").read_text())
    # 80 lines of 7 tokens in 20 streams of BPTT 10: 2 batches.
    assert record["train_steps"] == 2
    summary = json.loads((out / "summary.json").read_text())
    softmax = [m for m in summary["matrices"] if m["layer"] == "softmax"]
    assert softmax[0]["shape"][1] == 32  # 30 words, <eos> and an appended <unk>


def test_ptb_time_budget_stops_early(ptb_lm, tmp_path):
    out = tmp_path / "ptb"
    assert ptb_lm.main(["--size", "tiny", "--method", "static", "--epochs", "5",
                        "--steps-per-epoch", "4", "--time-budget", "0.0001",
                        "--no-export", "--verbose", "0",
                        "--data-dir", os.path.join(DATA, "ptb"),
                        "--out-dir", str(out)]) == 0
    record = json.loads((out / "history.json").read_text())
    assert record["epochs"] == 5 and record["epochs_run"] == 1
    assert record["train_steps"] == 1


def test_ptb_initial_weights_differ_between_matrices(ptb_lm):
    args = ptb_lm.parse_args(["--size", "tiny", "--method", "dense"])
    model = ptb_lm.build_model(args, dict(ptb_lm.SIZES["tiny"]), 50)
    cells = [model.get_layer(f"lstm_{i}").cell for i in range(2)]
    kernels = [c.kernel.numpy() for c in cells] + [c.recurrent_kernel.numpy() for c in cells]
    for i in range(len(kernels)):
        for j in range(i + 1, len(kernels)):
            assert not np.allclose(kernels[i], kernels[j]), (i, j)
    assert np.abs(kernels[0]).max() <= 0.1


def test_ptb_rhn_micro_layers_start_different(ptb_lm):
    """One recurrent initializer serves every micro-layer: it draws anew each time,
    and the same seed gives the same model."""
    def recurrent_kernels():
        args = ptb_lm.parse_args(["--cell", "rhn", "--size", "tiny", "--method", "dense"])
        cell = ptb_lm.build_model(args, ptb_lm.size_config(args), 50).get_layer("rhn_0").cell
        return [k.numpy() for k in cell.recurrent_kernels]

    kernels = recurrent_kernels()
    assert len(kernels) == 2 and not np.allclose(kernels[0], kernels[1])
    assert np.abs(kernels[1]).max() <= 0.1
    for first, again in zip(kernels, recurrent_kernels()):
        np.testing.assert_array_equal(first, again)


def test_ptb_rhn_is_zillys_setting(ptb_lm):
    """`--cell rhn` is Zilly et al.'s PTB RHN: depth 10 x 830, their dropouts,
    schedule and weight decay, converted for Keras' mean loss."""
    import keras

    import keras_sparse_rnn as ksr

    args = ptb_lm.parse_args(["--cell", "rhn", "--method", "dense"])
    assert args.size == "zilly"
    config = ptb_lm.size_config(args)
    model = ptb_lm.build_model(args, config, 10000)
    rhn = model.get_layer("rhn_0")
    cell = rhn.cell
    assert (cell.units, cell.depth, cell.coupled, cell.transform_bias) == (830, 10, True, -2.0)
    assert (cell.dropout, cell.recurrent_dropout) == (0.75, 0.25)
    words, output = model.get_layer("word_dropout"), model.get_layer("output_dropout")
    assert type(words) is type(output) is ksr.PhiloxDropout
    assert (words.rate, words.noise_shape) == (0.25, (None, None, 1))
    assert (output.rate, output.noise_shape) == (0.75, (None, 1, 830))
    assert [layer.name for layer in model.layers[1:]] == [
        "embedding", "word_dropout", "rhn_0", "output_dropout", "softmax"]
    # Untied: Zilly's 23.5 M plus a softmax kernel of its own (830 x 10,000).
    trained = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trained == (10000 * 830 + 830 * 1660 + 10 * (830 * 1660 + 1660)
                       + 830 * 10000 + 10000)
    assert np.abs(cell.kernel.numpy()).max() <= 0.04
    optimizer = ptb_lm.make_optimizer(args, config)
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert float(optimizer.learning_rate) == pytest.approx(0.2 * 35)
    assert optimizer.global_clipnorm == pytest.approx(10 / 35)
    assert optimizer.weight_decay == pytest.approx(1e-7 / 35)
    # Zilly's lr / 1.02 ** max(i - 19, 0) at the 0-based epoch i, times 35.
    schedule = ptb_lm.ZarembaSchedule(ptb_lm.keras_learning_rate(args, config),
                                      config["decay"], config["decay_after"])
    schedule.set_model(types.SimpleNamespace(optimizer=optimizer))
    lrs = []
    for epoch in (0, 19, 20, 21):
        schedule.on_epoch_begin(epoch)
        lrs.append(float(optimizer.learning_rate))
    assert lrs == pytest.approx([7.0, 7.0, 7.0 / 1.02, 7.0 / 1.02 ** 2])
    assert config["epochs"] == 500 and config["bptt"] == 35


def test_ptb_weight_decay_is_the_l2_step_of_the_summed_loss(ptb_lm):
    """Keras' decoupled decay with `weight_decay / bptt` and lr `lr * bptt`
    moves a weight as Zilly's L2 term does: by `lr * weight_decay * w`."""
    import keras

    args = ptb_lm.parse_args(["--cell", "rhn", "--size", "tiny", "--method", "dense"])
    config = dict(ptb_lm.size_config(args), weight_decay=0.01)
    optimizer = ptb_lm.make_optimizer(args, config)
    w = keras.Variable(np.array([1.0, -2.0, 0.0], np.float32))
    optimizer.apply([keras.ops.zeros(3)], [w])
    np.testing.assert_allclose(w.numpy(), np.array([1.0, -2.0, 0.0]) * (1 - 1.0 * 0.01),
                               rtol=1e-6)


def test_ptb_rhn_dropouts_are_per_sequence_and_per_word(ptb_lm):
    args = ptb_lm.parse_args(["--cell", "rhn", "--size", "tiny", "--method", "dense"])
    model = ptb_lm.build_model(args, ptb_lm.size_config(args), 50)
    ones = np.ones((20, 10, 32), np.float32)
    words = model.get_layer("word_dropout")(ones, training=True).numpy()
    # A token's features are dropped together, tokens independently.
    np.testing.assert_allclose(np.unique(words), [0.0, 1 / 0.75], rtol=1e-6)
    assert (words == words[:, :, :1]).all() and not (words == words[:, :1, :]).all()
    output = model.get_layer("output_dropout")(ones, training=True).numpy()
    # One mask per sequence for all its time steps.
    assert (output == output[:, :1, :]).all() and not (output == output[:, :, :1]).all()
    np.testing.assert_allclose(np.unique(output), [0.0, 1 / 0.25], rtol=1e-6)


@pytest.mark.parametrize("argv,message", [
    (["--cell", "lstm", "--size", "zilly"],
     "--cell lstm has the sizes large, medium, small, tiny, got --size zilly"),
    (["--cell", "rhn", "--size", "medium"],
     "--cell rhn has the sizes tiny, zilly, got --size medium"),
])
def test_ptb_sizes_belong_to_their_cell(ptb_lm, argv, message):
    with pytest.raises(ptb_lm.UsageError, match=message):
        ptb_lm.parse_args(argv)


@pytest.mark.parametrize("example", ["ptb_lm", "text_clf"])
def test_recorded_distribution_is_the_one_that_runs(request, example):
    module = request.getfixturevalue(example)

    def distribution(*argv):
        return module.parse_args(["--sparsity", "0.5", *argv]).distribution

    assert distribution("--method", "set") == "erdos_renyi"
    assert distribution("--method", "rigl", "--distribution", "uniform") == "uniform"
    assert distribution("--method", "dense") is None
    assert distribution("--method", "gradual") == "uniform"
    assert distribution("--method", "gradual", "--distribution", "uniform") == "uniform"
    with pytest.raises(module.UsageError,
                       match="--method gradual prunes each matrix to the same sparsity: "
                             "give --distribution uniform or leave it out"):
        distribution("--method", "gradual", "--distribution", "erdos_renyi")


def test_ptb_gradual_starts_dense_and_ends_at_target(ptb_lm, tmp_path):
    out = tmp_path / "gradual"
    assert ptb_lm.main(["--size", "tiny", "--method", "gradual", "--sparsity", "0.75",
                        "--steps-per-epoch", "10", "--epochs", "2", "--no-export",
                        "--verbose", "0", "--out-dir", str(out)]) == 0
    record = json.loads((out / "history.json").read_text())
    # 20 steps: frequency 1, end step 15. At the end of epoch 1 the masks are
    # those of step 11, about to run: 0.75 * (1 - (1 - 11/15)^3); then 0.75.
    np.testing.assert_allclose(record["history"]["pruning_sparsity"],
                               [0.75 * (1 - (4 / 15) ** 3), 0.75], rtol=1e-6)
    summary = json.loads((out / "summary.json").read_text())
    for m in summary["matrices"]:
        assert abs(m["density"] - 0.25) < 1e-3, m
    dense_flops = record["dense_training_flops_per_token"]
    assert record["training_flops_per_token"] < record["mean_training_flops_per_token"]
    assert record["mean_training_flops_per_token"] < dense_flops
    np.testing.assert_allclose(record["mean_training_flops_per_token"],
                               dense_flops * ksr_schedules.mean_density(0.75, 20, 20),
                               atol=1)


# --------------------------------------------------------------------------
# text_classification.py
# --------------------------------------------------------------------------


def test_imdb_set_tiny_end_to_end(text_clf, tmp_path):
    out = tmp_path / "imdb"
    assert text_clf.main(["--dataset", "imdb", "--method", "set", "--sparsity", "0.9",
                          "--max-train-examples", "200", "--max-eval-examples", "100",
                          "--epochs", "2", "--units", "8", "--embedding-dim", "8",
                          "--sequence-length", "32", "--batch-size", "50",
                          "--max-tokens", "500", "--verbose", "0",
                          "--out-dir", str(out)]) == 0
    record = json.loads((out / "history.json").read_text())
    assert RECORD_KEYS | {"valid_accuracy", "test_accuracy"} <= set(record)
    assert record["num_examples"] == {"train": 200, "valid": 100, "test": 100}
    assert record["vocab_size"] == 500
    assert (record["train_steps"], record["steps_per_epoch"]) == (8, 4)
    hist = record["history"]
    assert len(hist["val_accuracy"]) == 2 and len(hist["accuracy"]) == 2
    # One topology update: after epoch 1 (step 4 < 75% of 8 steps).
    assert hist["dst_updates"] == [1.0, 0.0]
    for key in ("valid_accuracy", "test_accuracy"):
        # 100 examples: accuracy is a multiple of 1/100.
        assert 0 <= record[key] <= 1
        assert abs(record[key] * 100 - round(record[key] * 100)) < 1e-4
    np.testing.assert_allclose(record["valid_accuracy"], hist["val_accuracy"][-1],
                               rtol=1e-6)
    summary = json.loads((out / "summary.json").read_text())
    active = sum(m["active"] for m in summary["matrices"])
    size = sum(m["size"] for m in summary["matrices"])
    assert abs(active / size - 0.1) < 2e-3
    assert record["active_params"] < record["dense_params"]
    assert (out / "model.keras").is_file()


def test_imdb_without_validation_split_trains_on_every_review(text_clf, tmp_path):
    out = tmp_path / "imdb"
    assert text_clf.main(["--dataset", "imdb", "--method", "static", "--sparsity",
                          "0.96", "--valid-fraction", "0", "--max-train-examples", "100",
                          "--max-eval-examples", "50", "--epochs", "1", "--units", "8",
                          "--embedding-dim", "8", "--sequence-length", "16",
                          "--batch-size", "50", "--max-tokens", "300", "--no-save",
                          "--verbose", "0", "--out-dir", str(out)]) == 0
    record = json.loads((out / "history.json").read_text())
    assert record["num_examples"] == {"train": 100, "test": 50}
    assert record["valid_accuracy"] is None and "val_accuracy" not in record["history"]
    assert 0 <= record["test_accuracy"] <= 1
    # Without a slice, the whole 25,000 training reviews are kept.
    args = text_clf.parse_args(["--valid-fraction", "0"])
    assert args.valid_fraction == 0.0


def test_wide_sparse_at_a_dense_models_parameter_count(text_clf, tmp_path):
    # The 16/16 classifier trained at the dense 8/8 one's 4,562 parameters
    # (500 words: embedding 4,000, LSTM 544, output 18), its LSTM in 8 x 8
    # blocks computed from the active blocks.
    common = ["--dataset", "imdb", "--max-train-examples", "100", "--max-eval-examples",
              "50", "--valid-fraction", "0", "--epochs", "1", "--sequence-length", "16",
              "--batch-size", "50", "--max-tokens", "500", "--no-save", "--verbose", "0"]
    wide = tmp_path / "wide"
    target = 4562
    assert text_clf.main([*common, "--method", "set", "--active-params", str(target),
                          "--units", "16", "--embedding-dim", "16", "--block", "8",
                          "--compute-path", "blocks", "--jit-compile", "true",
                          "--out-dir", str(wide)]) == 0
    record = json.loads((wide / "history.json").read_text())
    vocab = record["vocab_size"]
    assert vocab == 500
    assert abs(record["active_params"] - target) <= 0.01 * target
    sparse_total = 16 * vocab + 2 * 16 * 64 + 16 * 2
    assert record["dense_params"] == sparse_total + 64 + 2
    assert record["args"]["sparsity"] == pytest.approx(1 - (target - 66) / sparse_total)
    summary = json.loads((wide / "summary.json").read_text())
    # embedding, LSTM kernel and recurrent kernel, classifier
    assert [m["compute"] for m in summary["matrices"]] == [
        "masked_dense", "blocks", "blocks", "masked_dense"]


@pytest.mark.parametrize("argv,message", [
    (["--sparsity", "0.5", "--active-params", "10"], "not both"),
    (["--method", "dense", "--active-params", "10"], "not with --method dense"),
    (["--active-params", "0"], "--active-params must be >= 1, got 0"),
    (["--compute-path", "blocks"], "give --block"),
    (["--block", "1"], "--block must be an int >= 2"),
])
def test_text_classification_width_flags_are_checked(text_clf, argv, message):
    with pytest.raises(text_clf.UsageError, match=re.escape(message)):
        text_clf.parse_args(argv)


def test_sst2_bidirectional_gradual_tiny(text_clf, tmp_path):
    out = tmp_path / "sst2"
    assert text_clf.main(["--dataset", "sst2", "--method", "gradual", "--sparsity",
                          "0.5", "--bidirectional", "--max-train-examples", "64",
                          "--max-eval-examples", "32", "--epochs", "1", "--units", "8",
                          "--embedding-dim", "8", "--batch-size", "16", "--no-save",
                          "--verbose", "0", "--out-dir", str(out)]) == 0
    record = json.loads((out / "history.json").read_text())
    assert record["num_examples"] == {"train": 64, "valid": 32, "test": 32}
    assert record["args"]["sequence_length"] == 64
    # 4 steps: frequency 1, end step 3: the last pruning reaches 0.5.
    assert record["history"]["pruning_sparsity"] == [0.5]
    summary = json.loads((out / "summary.json").read_text())
    # embedding, 2 directions x (kernel, recurrent kernel), classifier
    assert len(summary["matrices"]) == 6
    assert summary["matrices"][-1]["shape"] == [16, 2]
    for m in summary["matrices"]:
        assert abs(m["density"] - 0.5) < 0.01, m
    assert not (out / "model.keras").exists()


def test_cr_as_distributed_tiny(text_clf, tmp_path, capsys):
    """Issue 21: the script takes every corpus the loaders read; CR has
    label-only lines (skipped) and no split (fold 0 of 10 is the test)."""
    out = tmp_path / "cr"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert text_clf.main(["--dataset", "cr", "--method", "static", "--sparsity",
                              "0.8", "--max-train-examples", "64",
                              "--max-eval-examples", "32", "--epochs", "1",
                              "--units", "8", "--embedding-dim", "8", "--batch-size",
                              "32", "--max-tokens", "300", "--no-save", "--verbose",
                              "0", "--out-dir", str(out)]) == 0
    assert _shuffle_warnings(caught) == []
    assert "custrev.all: skipped 4 label-only lines" in capsys.readouterr().out
    record = json.loads((out / "history.json").read_text())
    assert record["num_examples"] == {"train": 64, "valid": 32, "test": 32}
    assert record["class_names"] == ["0", "1"]
    assert (record["args"]["folds"], record["args"]["fold"]) == (10, 0)


def test_every_corpus_and_own_files_are_datasets(text_clf, tmp_path):
    """Without training: the corpora the loaders read, and one's own files
    with string labels and two text columns."""
    assert {"imdb", "sst2", "sst5", "trec", "trec_fine", "mr", "subj", "cr", "mpqa",
            "ag_news", "csv", "lines"} <= set(text_clf.DATASETS)
    own = tmp_path / "own.csv"
    own.write_text("label,title,body\nsport,Win,The team won\nnews,Vote,"
                   "They voted\nsport,Loss,They lost\nnews,Tax,Taxes rise\n")
    args = text_clf.parse_args(["--dataset", "csv", "--train-file", str(own),
                                "--header", "--label-column", "label", "--text-column",
                                "title,body", "--test-fraction", "0.5",
                                "--valid-fraction", "0", "--batch-size", "2"])
    data = text_clf.load_data(args)
    assert data.class_names == ["news", "sport"] and data.num_classes == 2
    assert data.num_examples == {"train": 2, "test": 2}
    # Both text columns of the training rows (the seeded half: Loss, Tax).
    assert set(data.vocab) == {"", "[UNK]", "loss", "they", "lost", "tax", "taxes", "rise"}
    ag = text_clf.load_data(text_clf.parse_args(
        ["--dataset", "ag_news", "--max-train-examples", "8", "--max-eval-examples",
         "8", "--data-dir", os.path.join(DATA, "ag_news")]))
    assert ag.class_names == ["1", "2", "3", "4"]
    assert ag.num_examples == {"train": 8, "valid": 8, "test": 8}
    for argv, message in [
            (["--dataset", "lines"], "--dataset lines needs --train-file"),
            (["--dataset", "mr", "--train-file", str(own)],
             "--train-file is for --dataset csv or lines, got --dataset mr"),
            (["--fold", "10"], "--fold must be in [0, 9] (--folds 10), got 10"),
            (["--test-fraction", "1"], "--test-fraction must be in (0, 1), got 1.0")]:
        with pytest.raises(text_clf.UsageError, match=re.escape(message)):
            text_clf.parse_args(argv)


def test_text_classification_data_slice_is_fixed(text_clf):
    texts = [f"text {i}" for i in range(10)]
    labels = np.arange(10)
    a = text_clf._take(texts, labels, 4, seed=3)
    b = text_clf._take(texts, labels, 4, seed=3)
    assert a[0] == b[0] and list(a[1]) == list(b[1])
    assert [int(t.split()[1]) for t in a[0]] == list(a[1])
    assert len(set(a[0])) == 4
    assert sorted(text_clf._take(texts, labels, None, seed=3)[1]) == list(range(10))


# --------------------------------------------------------------------------
# tfmot_baseline.py (its own process)
# --------------------------------------------------------------------------


@pytest.mark.slow
def test_tfmot_baseline_tiny(tmp_path):
    from keras_sparse_rnn.pruning import kept_count

    out = tmp_path / "tfmot"
    result = _run("examples/tfmot_baseline.py", "--size", "tiny", "--sparsity", "0.5",
                  "--steps-per-epoch", "6", "--epochs", "2", "--verbose", "0",
                  "--out-dir", out)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((out / "history.json").read_text())
    assert RECORD_KEYS | {"valid_perplexity", "test_perplexity"} <= set(record)
    assert record["args"]["method"] == "tfmot"
    assert record["train_steps"] == 12
    hist = record["history"]
    assert len(hist["val_perplexity"]) == 2
    np.testing.assert_allclose(hist["val_perplexity"], np.exp(hist["val_loss"]))
    assert hist["learning_rate"] == [10.0, 10.0]
    # 12 steps: frequency 1, end step 9; at step 6: 0.5 * (1 - (1/3)^3).
    np.testing.assert_allclose(hist["pruning_sparsity"],
                               [0.5 * (1 - (1 / 3) ** 3), 0.5], rtol=1e-4)
    matrices = {(m["layer"], m["name"]): m for m in record["pruned_matrices"]}
    assert set(matrices) == {("embedding", "embeddings"), ("lstm_0", "kernel"),
                             ("lstm_0", "recurrent_kernel"), ("lstm_1", "kernel"),
                             ("lstm_1", "recurrent_kernel"), ("softmax", "kernel")}
    for m in matrices.values():  # tfmot's count, as GradualPruning's
        assert m["active"] == kept_count(m["size"], 0.5), m
    # embedding, 2 x (kernel, recurrent kernel, bias), softmax kernel and bias
    assert record["dense_params"] == (10000 * 32 + 2 * (2 * 32 * 128 + 128)
                                      + 32 * 10000 + 10000) == 666640
    assert record["active_params"] == (sum(m["active"] for m in matrices.values())
                                       + 2 * 128 + 10000)
    assert record["forward_flops_per_token"] == 2 * sum(
        m["active"] for k, m in matrices.items() if k[1] != "embeddings")
    assert (out / "model.keras").is_file()


# --------------------------------------------------------------------------
# Bad input: a message, exit code 2, no traceback
# --------------------------------------------------------------------------


@pytest.mark.parametrize("script,args,message", [
    ("examples/ptb_language_model.py", ["--sparsity", "1"], "--sparsity must be in [0, 1)"),
    ("examples/ptb_language_model.py", ["--method", "magic"], "invalid choice"),
    ("examples/ptb_language_model.py", ["--bogus"], "unrecognized arguments"),
    ("examples/ptb_language_model.py", ["--data-dir", "/nonexistent/ptb"], "is not a folder"),
    ("examples/ptb_language_model.py", ["--method", "set", "--sparsity", "0"],
     "needs --sparsity > 0"),
    ("examples/ptb_language_model.py", ["--seed", "-1"], "--seed must be >= 0, got -1"),
    ("examples/text_classification.py", ["--sparsity", "1.0"], "--sparsity must be in [0, 1)"),
    ("examples/text_classification.py", ["--max-train-examples", "0"],
     "--max-train-examples must be >= 1, got 0"),
    ("examples/text_classification.py", ["--dataset", "mnist"], "invalid choice"),
    ("examples/text_classification.py", ["--valid-fraction", "1"],
     "--valid-fraction must be in [0, 1), got 1.0"),
    ("examples/ptb_language_model.py", ["--threads", "0"], "--threads must be >= 1, got 0"),
    ("benchmarks/reproduce.py", ["--profile", "cpu", "--parallel", "0"],
     "--parallel must be >= 1, got 0"),
    ("examples/tfmot_baseline.py", ["--sparsity", "0"], "--sparsity must be in (0, 1)"),
    ("examples/tfmot_baseline.py", ["--cell", "rhn"], "invalid choice"),
    ("examples/tfmot_baseline.py", ["--epochs", "0"], "--epochs must be >= 1"),
    ("benchmarks/reproduce.py", ["--profile", "huge"], "invalid choice"),
    ("benchmarks/width_cost.py", ["--steps", "0"], "--steps must be >= 1, got 0"),
    ("benchmarks/input_projection.py", ["--units", "0"], "--units must be >= 1, got [0]"),
    ("benchmarks/input_projection.py", ["--repeats", "0"], "--repeats must be >= 1, got 0"),
    ("benchmarks/dropout_cost.py", ["--steps", "0"], "--steps must be >= 1, got 0"),
    ("benchmarks/dropout_cost.py", ["--rounds", "0"], "--rounds must be >= 1, got 0"),
    ("benchmarks/width_cost.py", ["--widths", "416", "0"],
     "--widths must be >= 1, got [416, 0]"),
    ("benchmarks/reproduce.py", ["--profile", "quick", "--only", "nope"],
     "--only nope matches no run"),
])
def test_bad_flags_exit_2_without_traceback(script, args, message):
    result = _run(script, *args, timeout=120)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_sparsity_leaving_a_matrix_empty_exits_2(ptb_lm, tmp_path, capsys):
    assert ptb_lm.main(["--size", "tiny", "--method", "static", "--sparsity", "0.99999",
                        "--no-export", "--data-dir", os.path.join(DATA, "ptb"),
                        "--out-dir", str(tmp_path / "out")]) == 2
    # Refused when the layer is built, naming the user's layer.
    assert ("SparseLSTM 'lstm_0', weight 'kernel': sparsity 0.99999 leaves 0 of its "
            "4096 weights active") in capsys.readouterr().err


def test_missing_or_empty_data_exit_2(tmp_path):
    empty = tmp_path / "ptb"
    empty.mkdir()
    for split in ("train", "valid", "test"):
        (empty / f"ptb.{split}.txt").write_text("")
    result = _run("examples/ptb_language_model.py", "--size", "tiny", "--no-export",
                  "--data-dir", empty, "--out-dir", tmp_path / "out")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "ptb.train.txt is empty" in result.stderr
    assert "Traceback" not in result.stderr
    result = _run("examples/text_classification.py", "--data-dir", tmp_path,
                  "--out-dir", tmp_path / "out")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "train.jsonl.xz" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_split_too_short_for_one_batch_exits_2(ptb_lm, tmp_path, capsys):
    folder = tmp_path / "ptb"
    folder.mkdir()
    words = " ".join(["the cat sat on the mat"] * 10)
    for split in ("train", "valid"):
        (folder / f"ptb.{split}.txt").write_text("\n".join([words] * 5) + "\n")
    (folder / "ptb.test.txt").write_text("the cat sat\n")
    assert ptb_lm.main(["--size", "tiny", "--no-export", "--data-dir", str(folder),
                        "--out-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert ("error: the test split: ids has 4 tokens, too few for one batch of "
            "batch_size=20 streams and bptt=10 steps: at least 220 are needed") in err


# --------------------------------------------------------------------------
# Scripts a user copies
# --------------------------------------------------------------------------


def _assigned_dict(path, name):
    """The value of the top-level `name = {...}` of a script, without running it."""
    import ast

    tree = ast.parse(path.read_text())
    [node] = [n for n in tree.body if isinstance(n, ast.Assign)
              and [t.id for t in n.targets if isinstance(t, ast.Name)] == [name]]
    return eval(compile(ast.Expression(node.value), str(path), "eval"), {})


def test_examples_and_benchmarks_import_the_package_not_each_other():
    """No `sys.path` edits and no imports of another script: the shared run
    helpers come from `keras_sparse_rnn.training`."""
    import ast

    scripts = sorted([*(ROOT / "examples").glob("*.py"), *(ROOT / "benchmarks").glob("*.py")])
    names = {p.stem for p in scripts}
    assert {"ptb_language_model", "text_classification", "tfmot_baseline",
            "multi_worker_lm", "reproduce"} <= names
    for path in scripts:
        text = path.read_text()
        assert "sys.path" not in text, path
        imported = set()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
        assert not imported & names, (path, imported & names)


def test_tfmot_baseline_trains_zarembas_sizes_of_the_sparse_runs(ptb_lm):
    tfmot_sizes = _assigned_dict(ROOT / "examples" / "tfmot_baseline.py", "SIZES")
    assert sorted(tfmot_sizes) == ["large", "medium", "small", "tiny"]
    assert tfmot_sizes == ptb_lm.SIZES


# --------------------------------------------------------------------------
# benchmarks/reproduce.py
# --------------------------------------------------------------------------


def test_reproduce_dry_run_lists_the_grid(reproduce, capsys, tmp_path):
    assert reproduce.main(["--profile", "quick", "--dry-run",
                           "--results-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("profile quick: 13 runs")
    names = [line.split()[1] for line in lines[1:]]
    assert names == [
        "ptb_lstm_small_dense",
        *[f"ptb_lstm_small_{m}_{s}" for s in ("0.67", "0.9")
          for m in ("static", "set", "rigl", "gradual", "tfmot")],
        "imdb_dense", "imdb_set_0.9"]
    assert all("[todo]" in line for line in lines[1:])
    # Every PTB run: the same epochs and fixed slice.
    assert all("--epochs 6 --steps-per-epoch 700" in line for line in lines[1:12])
    assert "examples/tfmot_baseline.py" in lines[6]
    assert reproduce.main(["--profile", "quick", "--dry-run", "--only", "ptb_*_0.9",
                           "--results-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.count("\n") == 6
    full = reproduce.grid("full")
    assert len(full) == 100
    assert {r.method for r in full} == set(reproduce.METHOD_ORDER)
    assert not any(r.method == "tfmot" and r.group.startswith("rhn") for r in full)


def _ptb(ppl_per_epoch, test, active, flops, wall, steps=700):
    return {"history": {"val_perplexity": list(ppl_per_epoch)},
            "valid_perplexity": ppl_per_epoch[-1], "test_perplexity": test,
            "active_params": active, "forward_flops_per_token": flops,
            "training_flops_per_token": 3 * flops,
            "mean_training_flops_per_token": 3 * flops,
            "wall_seconds": wall, "epochs": len(ppl_per_epoch), "steps_per_epoch": steps}


def _imdb(valid, test):
    return {"history": {}, "valid_accuracy": valid, "test_accuracy": test,
            "active_params": 1000, "forward_flops_per_token": 10,
            "training_flops_per_token": 30, "mean_training_flops_per_token": 30,
            "wall_seconds": 50.0, "epochs": 3, "steps_per_epoch": 313,
            "num_examples": {"train": 20000}}


def _quick_records(**ppl):
    """Hand-made results of the quick grid; `ppl` overrides by run name."""
    values = {"dense": 120.0, "static_0.67": 140.0, "set_0.67": 125.0,
              "rigl_0.67": 128.0, "gradual_0.67": 123.0, "tfmot_0.67": 124.0,
              "static_0.9": 160.0, "set_0.9": 150.0, "rigl_0.9": 155.0,
              "gradual_0.9": 140.0, "tfmot_0.9": 141.0}
    values.update(ppl)
    records = {}
    for key, value in values.items():
        records[f"ptb_lstm_small_{key}"] = _ptb([400.0, 2 * value, value],
                                                value * 0.96, 1000, 500, 300.0)
    records["imdb_dense"] = _imdb(0.86, 0.85)
    records["imdb_set_0.9"] = _imdb(0.85, 0.84)
    return records


def _status(bars):
    return [b["status"] for b in bars]


def test_bar_checks_from_the_numbers(reproduce):
    runs = reproduce.grid("quick")
    bars = reproduce.check_bars(_quick_records(), runs)
    assert _status(bars) == ["met", "met", "met"]
    assert "best dynamic set 125.00 vs dense 120.00 (+4.2%, limit +5.0%)" in bars[0]["detail"]
    assert "SET 84.00% vs dense 85.00% (-1.00 points" in bars[2]["detail"]
    # 127 / 120 = +5.8%: outside 5%, though below static.
    bars = reproduce.check_bars(_quick_records(**{"set_0.67": 127.0}), runs)
    assert _status(bars)[0] == "missed"
    # The best dynamic is within 5% but not below static.
    bars = reproduce.check_bars(_quick_records(**{"static_0.67": 124.0}), runs)
    assert _status(bars)[0] == "missed"
    # Exactly 5% is within.
    bars = reproduce.check_bars(_quick_records(**{"set_0.67": 126.0}), runs)
    assert _status(bars)[0] == "met"
    # At 0.9 one dynamic method worse than static: missed.
    bars = reproduce.check_bars(_quick_records(**{"rigl_0.9": 161.0}), runs)
    assert _status(bars)[1] == "missed"
    assert "set 150.00, rigl 161.00 vs static 160.00" in bars[1]["detail"]
    # Gradual and tfmot are not dynamic: they do not count for the bars.
    bars = reproduce.check_bars(_quick_records(**{"gradual_0.9": 999.0}), runs)
    assert _status(bars)[1] == "met"
    records = _quick_records()
    records["imdb_set_0.9"] = _imdb(0.85, 0.8349)
    assert _status(reproduce.check_bars(records, runs))[2] == "missed"
    records["imdb_set_0.9"] = _imdb(0.85, 0.835)
    assert _status(reproduce.check_bars(records, runs))[2] == "met"
    records = _quick_records()
    del records["ptb_lstm_small_rigl_0.67"], records["imdb_dense"]
    assert _status(reproduce.check_bars(records, runs)) == ["not run", "met", "not run"]


def test_report_table_and_plots(reproduce, tmp_path):
    records = _quick_records()
    del records["ptb_lstm_small_tfmot_0.9"]
    folder = tmp_path / "reproduce_quick"
    folder.mkdir()
    for name, record in records.items():
        (folder / f"{name}.json").write_text(json.dumps(record))
    md, bars = reproduce.write_report("quick", tmp_path)
    text = md.read_text()
    assert md == tmp_path / "reproduce_quick.md"
    assert "12 of 13 runs done" in text
    assert "the first 700 of its 2,323 batches" in text and "6 epochs" in text
    assert ("| set | 0.67 | 1 | 125.00 | 120.00 | 1.042 | 1,000 | 500 | 1,500 | 300 "
            "| - | 1.00 | 3 x 700 |") in text
    assert "| dense | 0 | 1 | 120.00 | 115.20 | 1.000 |" in text
    # Zaremba's published figures beside ours, as a ratio to our dense run.
    assert "| Zaremba et al. (2014), dense | 0 | - | 120.7 | 114.5 | 1.006 |" in text
    assert "| set | 0.9 | 1 | 85.00% | 84.00% | -1.00 | 1,000 | 10 | 30 | 50 | - | 3 x 313 | 20,000 |" in text
    assert "Runs not done yet: ptb_lstm_small_tfmot_0.9." in text
    assert "- **met**: PTB lstm small, sparsity 0.67" in text
    for suffix in ("ppl_per_epoch", "ppl_vs_sparsity"):
        png = tmp_path / f"reproduce_quick_{suffix}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"![reproduce_quick_{suffix}](reproduce_quick_{suffix}.png)" in text
    assert _status(bars) == ["met", "met", "met"]


def test_reproduce_resumes_from_existing_json(reproduce, tmp_path, capsys):
    folder = tmp_path / "reproduce_quick"
    folder.mkdir()
    (folder / "imdb_dense.json").write_text(json.dumps(_imdb(0.86, 0.85)))
    assert reproduce.main(["--profile", "quick", "--only", "imdb_dense",
                           "--results-dir", str(tmp_path),
                           "--runs-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "1 of 1 runs done, 0 to run" in out
    assert "NOT RUN  IMDB" in out
    assert not (tmp_path / "runs").exists()
    assert (tmp_path / "reproduce_quick.md").is_file()


def test_cpu_profile_is_the_full_protocol_grid(reproduce):
    runs = reproduce.grid("cpu")
    names = [r.name for r in runs]
    assert names == [
        "ptb_lstm_small_dense", "ptb_lstm_small_dense_seed1",
        "ptb_lstm_small_static_0.67", "ptb_lstm_small_set_0.67",
        "ptb_lstm_small_rigl_0.67", "ptb_lstm_small_rigl_0.67_seed1",
        "ptb_lstm_small_snfs_0.67", "ptb_lstm_small_gradual_0.67",
        "ptb_lstm_small_tfmot_0.67",
        "ptb_lstm_small_static_0.9", "ptb_lstm_small_set_0.9",
        "ptb_lstm_small_rigl_0.9", "ptb_lstm_small_gradual_0.9",
        "ptb_lstm_small_rigl_0.67_b8", "ptb_lstm_small_rigl_0.9_b8",
        *[f"{d}_{m}{s}" for d in ("imdb", "sst2")
          for m in ("dense", "static_0.96", "set_0.96", "rigl_0.96")
          for s in ("", "_seed1", "_seed2")]]
    # Issue 19: RigL with 8 x 8 blocks of constant fan-in, a row of its own.
    blocked = [r for r in runs if r.block]
    assert [(r.method, r.sparsity, r.label) for r in blocked] == [
        ("rigl", 0.67, "rigl, 8x8 blocks"), ("rigl", 0.9, "rigl, 8x8 blocks")]
    assert all(r.argv[r.argv.index("--block") + 1] == "8" for r in blocked)
    records = {r.name: {"valid_perplexity": 100.0 + i} for i, r in enumerate(runs)}
    assert reproduce._seeds(records, runs, "ptb", "lstm small", "rigl", 0.67) == [
        records["ptb_lstm_small_rigl_0.67"], records["ptb_lstm_small_rigl_0.67_seed1"]]
    assert reproduce._seeds(records, runs, "ptb", "lstm small", "rigl", 0.9, block=8) == [
        records["ptb_lstm_small_rigl_0.9_b8"]]
    for run in runs:
        if run.kind == "ptb":
            # The size's own 13 epochs over the whole training set.
            assert "--epochs" not in run.argv and "--steps-per-epoch" not in run.argv
            assert run.argv[run.argv.index("--size") + 1] == "small"
            assert ("--seed" in run.argv) == (run.seed == 1)
        else:  # issue 20: three seeds of each text run
            assert ("--seed" in run.argv) == (run.seed > 0)
            if run.seed:
                assert run.argv[run.argv.index("--seed") + 1] == str(run.seed)
            if run.group == "imdb":  # the 25,000 / 25,000 split
                assert run.argv[run.argv.index("--valid-fraction") + 1] == "0.0"
            else:
                assert "--valid-fraction" not in run.argv
    commands = [r.command("out", threads=1) for r in runs]
    assert all(c[-4:] == ["--threads", "1", "--out-dir", "out"] for c in commands)
    gpu = reproduce.grid("gpu")
    assert [r.name for r in gpu] == [
        f"ptb_{group}_{m}" for group in ("lstm_medium", "rhn_zilly")
        for m in ("dense", "static_0.67", "set_0.67", "rigl_0.67", "snfs_0.67")]
    smoke = reproduce.grid("gpu", smoke=True)
    assert [r.group for r in smoke] == [r.group for r in gpu]
    assert all(r.argv[r.argv.index("--size") + 1] == "tiny" for r in smoke)


def test_equal_profile_is_issue_20s_grid(reproduce):
    runs = reproduce.grid("equal")
    text = [r for r in runs if r.kind == "text"]
    ptb = [r for r in runs if r.kind == "ptb"]
    # SST-2 first (cheap), then IMDB, then PTB: SET and RigL, three seeds each.
    assert [r.name for r in text] == [
        f"{d}_512_{m}_equal_b32{s}" for d in ("sst2", "imdb") for m in ("set", "rigl")
        for s in ("", "_seed1", "_seed2")]
    for r in text:
        argv = r.argv
        assert argv[argv.index("--active-params") + 1] == {
            "imdb": "2691842", "sst2": "2030082"}[r.group]
        assert "--sparsity" not in argv and r.sparsity is None
        assert argv[argv.index("--units") + 1] == "512"
        assert argv[argv.index("--embedding-dim") + 1] == "512"
        assert argv[argv.index("--jit-compile") + 1] == "true"
    units = reproduce.EQUAL_PTB["units"]
    assert [(r.method, r.seed, r.dropout, r.block) for r in ptb] == [
        ("rigl", 0, 0.0, 32), ("rigl", 1, 0.0, 32), ("set", 0, 0.0, 32),
        ("rigl", 0, 0.5, 32), ("rigl", 1, 0.5, 32), ("set", 0, 0.5, 32),
        ("gradual", 0, 0.5, None)]
    for r in ptb:
        argv = r.argv
        assert argv[argv.index("--active-params") + 1] == "4651600"
        assert argv[argv.index("--units") + 1] == str(units)
        assert argv[argv.index("--size") + 1] == "small" and "--epochs" not in argv
        assert r.label.startswith(f"{r.method}, {units} units")
    assert ptb[3].name == f"ptb_lstm_{units}_rigl_equal_drop0.5_b32"
    assert len({r.name for r in runs}) == len(runs)
    # The dense models the counts come from are the cpu profile's runs.
    for dataset, count in reproduce.EQUAL_TEXT["active_params"].items():
        record = json.loads((ROOT / "benchmarks" / "results" / "reproduce_cpu"
                             / f"{dataset}_dense.json").read_text())
        assert record["active_params"] == count
    record = json.loads((ROOT / "benchmarks" / "results" / "reproduce_cpu"
                         / "ptb_lstm_small_dense.json").read_text())
    assert record["active_params"] == reproduce.EQUAL_PTB["active_params"]


def test_equal_report_sets_the_wide_runs_beside_the_dense_ones(reproduce, tmp_path):
    runs = reproduce.grid("equal")
    cpu = reproduce.grid("cpu")
    folder = tmp_path / "reproduce_cpu"
    folder.mkdir()

    def record(accuracy=None, ppl=None, sparsity=0.0, seconds=None):
        rec = {"args": {"sparsity": sparsity}, "active_params": 100, "dense_params": 400,
               "forward_flops_per_token": 10, "training_flops_per_token": 30,
               "wall_seconds": 60.0, "epochs_run": 2, "steps_per_epoch": 5,
               "history": {"val_perplexity": [ppl * 2, ppl] if ppl else []}}
        if accuracy is not None:
            rec.update(test_accuracy=accuracy, valid_accuracy=None)
        else:
            rec.update(valid_perplexity=ppl, test_perplexity=ppl)
        if seconds:
            rec["epoch_seconds"] = seconds
        return rec

    for r in cpu:
        if r.method == "dense" and r.group in ("imdb", "lstm small"):
            rec = record(0.80 + 0.01 * r.seed) if r.kind == "text" else record(ppl=120.0)
            (folder / f"{r.name}.json").write_text(json.dumps(rec))
    records = {}
    for i, r in enumerate(r for r in runs if r.group == "imdb" and r.method == "set"):
        records[r.name] = record(0.84 + 0.02 * i, sparsity=0.78)
    wide = next(r for r in runs if r.kind == "ptb")
    records[wide.name] = record(ppl=110.0, sparsity=0.77, seconds=[30.0, 300.0])
    records[wide.name]["run"] = {"threads": 1, "parallel_runs": 2}
    md, bars = reproduce.write_report("equal", tmp_path, runs, records)
    text = md.read_text()
    assert bars == [] and "### Bars" not in text
    # IMDB dense: 80, 81, 82 (mean 81, std 1); wide SET: 84, 86, 88 (86, std 2).
    assert "| dense | 0 | 3 | - | 81.00 ± 1.00% | +0.00 |" in text
    assert "| set, 512 units, 32x32 blocks | 0.78 | 3 | - | 86.00 ± 2.00% | +5.00 |" in text
    # By the dense runs' 1 minute the wide one had ended its first epoch only.
    assert "| valid / dense | valid ppl by 1 min |" in text
    assert f"| {wide.label} | 0.77 | 1 | 110.00 | 110.00 | 0.917 | 220.00 |" in text
    assert "| dense | 0 | 2 | 120.00 ± 0.00 | 120.00 ± 0.00 | 1.000 | 120.00 ± 0.00 |" in text
    # The wall time with the threads of each run and the runs at once.
    assert "| 30 | 60 | 1 x 2 | 1.00 | 2 x 5 |" in text
    assert "| 30 | 60 | - | 1.00 | 2 x 5 |" in text  # the dense run: not recorded
    assert (tmp_path / "reproduce_equal_ppl_vs_minutes.png").is_file()
    assert reproduce._minutes_per_epoch(records[wide.name]) == [0.5, 5.0]
    assert reproduce._valid_by_minutes([records[wide.name]], 0.4) == "-"
    dense = json.loads((folder / "ptb_lstm_small_dense.json").read_text())
    assert reproduce._minutes_per_epoch(dense) == [0.5, 1.0]  # 60 s over 2 epochs


def test_cpu_report_merges_seeds_and_shows_zaremba(reproduce, tmp_path):
    folder = tmp_path / "reproduce_cpu"
    folder.mkdir()
    records = {"ptb_lstm_small_dense": _ptb([200.0, 122.0], 117.0, 4000, 900, 3000.0),
               "ptb_lstm_small_dense_seed1": _ptb([200.0, 124.0], 119.0, 4000, 900,
                                                  3200.0),
               "ptb_lstm_small_rigl_0.67": _ptb([210.0, 125.0], 120.0, 1500, 300, 3100.0)}
    for name, record in records.items():
        (folder / f"{name}.json").write_text(json.dumps(record))
    md, _ = reproduce.write_report("cpu", tmp_path)
    text = md.read_text()
    assert md == tmp_path / "reproduce_cpu.md"
    assert "13 epochs over the whole training set" in text
    # Two seeds: mean ± half the range; ratios against the dense mean (123).
    assert ("| dense | 0 | 2 | 123.00 ± 1.00 | 118.00 ± 1.00 | 1.000 | 4,000 | 900 "
            "| 2,700 | 3100 | - | 1.00 | 2 x 700 |") in text
    assert "| rigl | 0.67 | 1 | 125.00 | 120.00 | 1.016 |" in text
    assert "| Zaremba et al. (2014), dense | 0 | - | 120.7 | 114.5 | 0.981 |" in text
    assert "3 of 39 runs done" in text  # 15 PTB (2 in 8 x 8 blocks), 24 text (3 seeds)


def test_cpu_bars_and_curves_use_the_mean_over_seeds(reproduce):
    runs = reproduce.grid("cpu")
    records = {"ptb_lstm_small_dense": _ptb([200.0, 120.0], 117.0, 4000, 900, 3000.0),
               "ptb_lstm_small_dense_seed1": _ptb([210.0, 130.0], 119.0, 4000, 900,
                                                  3000.0),
               "ptb_lstm_small_static_0.67": _ptb([240.0, 140.0], 130.0, 1500, 300, 1.0),
               "ptb_lstm_small_set_0.67": _ptb([230.0, 133.0], 128.0, 1500, 300, 1.0),
               # seed 0 alone would be within 5% of the dense mean (125 * 1.05)
               "ptb_lstm_small_rigl_0.67": _ptb([220.0, 130.0], 125.0, 1500, 300, 1.0),
               "ptb_lstm_small_rigl_0.67_seed1": _ptb([224.0, 134.0], 126.0, 1500, 300,
                                                      1.0),
               "ptb_lstm_small_snfs_0.67": _ptb([226.0, 135.0], 127.0, 1500, 300, 1.0)}
    bar = reproduce.check_bars(records, runs)[0]
    assert bar["status"] == "missed"
    assert bar["detail"] == ("best dynamic rigl 132.00 vs dense 125.00 (+5.6%, limit "
                             "+5.0%); static 140.00")
    seeds = reproduce._seeds(records, runs, "ptb", "lstm small", "rigl", 0.67)
    assert reproduce._mean_curve(seeds, "val_perplexity") == [222.0, 132.0]
    assert reproduce._seeds_label("rigl", seeds) == "rigl (mean of 2 seeds)"
    assert reproduce._seeds(records, runs, "ptb", "lstm small", "rigl", 0.9) == []


def test_log_axis_ticks_are_round_and_cover_the_range(reproduce):
    assert reproduce._log_ticks(115, 240) == [120, 140, 160, 180, 200]
    # Eight at most, evenly spread in log space, labels below 200 too.
    assert reproduce._log_ticks(110, 650) == [120, 160, 200, 250, 300, 350, 500, 600]
    assert reproduce._log_ticks(30, 2000, most=4) == [50, 140, 400, 1200]
    assert reproduce._log_ticks(121.04, 123.96) == [121.0, 124.0]


def test_cpu_bar_at_09_needs_only_the_methods_run_there(reproduce):
    """The cpu grid has SET and RigL at 0.9 but no SNFS: the bar compares those."""
    runs = reproduce.grid("cpu")
    records = {f"ptb_lstm_small_{name}": _ptb([300.0, valid], valid, 500, 100, 1.0)
               for name, valid in (("dense", 120.0), ("static_0.9", 200.0),
                                   ("set_0.9", 183.0), ("rigl_0.9", 164.0))}
    bar = reproduce.check_bars(records, runs)[1]
    assert bar["bar"].startswith("PTB lstm small, sparsity 0.9")
    assert (bar["status"], bar["detail"]) == ("met", "set 183.00, rigl 164.00 vs static 200.00")
    del records["ptb_lstm_small_set_0.9"]
    assert reproduce.check_bars(records, runs)[1]["status"] == "not run"


@pytest.mark.slow
def test_gpu_profile_machinery_runs_its_entries_tiny(reproduce, ptb_lm, tmp_path, capsys):
    """Every entry of the gpu profile is a valid command of its example; one
    real tiny run of each cell, a dense LSTM and a RigL RHN, two at once (the
    other methods' runs are tested with the examples)."""
    entries = reproduce.grid("gpu", smoke=True)
    assert len(entries) == 10
    for entry in entries:
        assert entry.script == "examples/ptb_language_model.py"
        ptb_lm.parse_args(entry.argv)  # raises UsageError if a flag is wrong
    chosen = ["ptb_lstm_tiny_dense", "ptb_rhn_tiny_rigl_0.67"]
    assert reproduce.main(["--profile", "gpu", "--smoke", "--parallel", "2",
                           "--threads", "1", "--results-dir", str(tmp_path / "results"),
                           "--runs-dir", str(tmp_path / "runs"), "--only", *chosen]) == 0
    assert "2 to run, 2 at a time with 1 thread each" in capsys.readouterr().out
    folder = tmp_path / "results" / "reproduce_gpu_smoke"
    records = {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}
    assert sorted(records) == sorted(chosen)
    for name, record in records.items():
        assert record["epochs_run"] == 2 and record["train_steps"] == 6, name
        run = record["run"]
        assert run["threads"] == 1 and run["parallel_runs"] == 2
        assert run["machine_cores"] == os.cpu_count()
        assert run["library_version"] and len(run["git_commit"]) == 40
        assert isinstance(run["git_dirty"], bool)
        assert record["wall_seconds"] > 0 and run["process_seconds"] > 0
        assert "--threads 1" in run["command"]
    assert records["ptb_rhn_tiny_rigl_0.67"]["history"]["dst_updates"] == [1, 0]
    text = (tmp_path / "results" / "reproduce_gpu_smoke.md").read_text()
    assert "### Penn Treebank, rhn zilly" in text and "2 of 10 runs done" in text


@pytest.mark.slow
def test_reproduce_executes_a_run_in_a_subprocess(reproduce, tmp_path):
    run = reproduce.Run("ptb_tiny_static", "ptb", "lstm tiny", "static", 0.8,
                        "examples/ptb_language_model.py",
                        ["--size", "tiny", "--method", "static", "--sparsity", "0.8",
                         "--epochs", "1", "--steps-per-epoch", "3", "--no-export"])
    path = tmp_path / "results" / "ptb_tiny_static.json"
    record = reproduce.execute(run, path, tmp_path / "runs")
    assert record is not None and path.is_file()
    saved = json.loads(path.read_text())
    assert saved["run"]["name"] == "ptb_tiny_static"
    assert saved["run"]["command"].startswith("examples/ptb_language_model.py --size tiny")
    assert saved["train_steps"] == 3
    assert (tmp_path / "runs" / "ptb_tiny_static" / "train.log").is_file()
    bad = reproduce.Run("bad", "ptb", "lstm tiny", "static", 0.8,
                        "examples/ptb_language_model.py", ["--sparsity", "2"])
    assert reproduce.execute(bad, tmp_path / "results" / "bad.json",
                             tmp_path / "runs") is None
    assert not (tmp_path / "results" / "bad.json").exists()


@pytest.mark.parametrize("argv,message", [
    (["--block", "1"], "--block must be an int >= 2"),
    (["--compute-path", "blocks"], "--compute-path blocks computes from B x B blocks"),
])
def test_ptb_block_flags_are_checked(ptb_lm, argv, message):
    with pytest.raises(ptb_lm.UsageError, match=message):
        ptb_lm.parse_args(["--size", "tiny", *argv])


def test_ptb_block_flag_builds_constant_fan_in_lstms_on_the_block_path(ptb_lm):
    # Issue 19: --block 8 on the tiny LSTM (32 units: 4 block rows), RigL at
    # 0.67 with Erdos-Renyi; the recurrent kernels keep constant fan-in.
    from keras_sparse_rnn import masks

    args = ptb_lm.parse_args(["--size", "tiny", "--method", "rigl", "--sparsity", "0.67",
                              "--block", "8", "--compute-path", "blocks"])
    model = ptb_lm.build_model(args, ptb_lm.size_config(args), 50)
    for i in range(2):
        cell = model.get_layer(f"lstm_{i}").cell
        assert cell.block == (8, 8) and cell.compute_path == "blocks"
        assert cell.block_path_weights() == ["kernel", "recurrent_kernel"]
        for spec in cell.get_sparse_weight_info():
            counts = masks.fan_in_counts(spec.mask.numpy(), spec.block_shape, 4)
            assert len(set(counts.tolist())) == 1 and 1 <= counts[0] <= 4
