import numpy as np
import pytest
import keras
import tensorflow as tf

import keras_sparse_rnn as ksr
from keras_sparse_rnn import PhiloxDropout


def reference(x, rate, seed, noise_shape=None, draws=1):
    """Dropout of `x` written out: the `draws`-th seed of Keras's generator
    seeded `seed`, cast as Keras casts it, a uniform draw of Philox, kept where it is >= rate and scaled by 1 / (1 - rate)."""
    generator = keras.random.SeedGenerator(seed)
    for _ in range(draws):
        state = generator.next().numpy()
    seed = (state % (np.iinfo("int32").max - 1)).astype("int32")
    shape = x.shape if noise_shape is None else [
        x.shape[i] if n is None else n for i, n in enumerate(noise_shape)]
    uniform = tf.random.stateless_uniform(shape, seed, dtype=x.dtype, alg="philox").numpy()
    return x * (uniform >= rate) / np.asarray(1 - rate, x.dtype)


def test_masks_are_philox_uniform_draws():
    x = np.random.default_rng(0).normal(size=(3, 4, 50)).astype("float32")
    layer = PhiloxDropout(0.3, seed=7)
    first = layer(x, training=True).numpy()
    second = layer(x, training=True).numpy()
    np.testing.assert_allclose(first, reference(x, 0.3, 7), rtol=1e-6)
    np.testing.assert_allclose(second, reference(x, 0.3, 7, draws=2), rtol=1e-6)
    assert np.any((first == 0) != (second == 0))  # a new mask at each call


def test_rate_and_scale():
    x = np.ones((200, 500), "float32")
    y = PhiloxDropout(0.3, seed=1)(x, training=True).numpy()
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.7)}
    # 100,000 draws: the dropped fraction's standard deviation is 0.0014.
    assert abs(np.mean(y == 0) - 0.3) < 0.01


def test_inference_and_edge_rates_as_keras():
    x = np.random.default_rng(1).normal(size=(4, 6)).astype("float32")
    np.testing.assert_array_equal(PhiloxDropout(0.5, seed=0)(x), x)  # training=False
    np.testing.assert_array_equal(PhiloxDropout(0.0)(x, training=True), x)
    np.testing.assert_array_equal(PhiloxDropout(1.0)(x, training=True), np.zeros_like(x))
    assert isinstance(PhiloxDropout(0.5), keras.layers.Dropout)


def test_noise_shape_shares_the_mask():
    # One mask per sequence and feature, the same at every time step.
    x = np.ones((4, 6, 10), "float32")
    layer = PhiloxDropout(0.5, noise_shape=(None, 1, 10), seed=2)
    y = layer(x, training=True).numpy()
    np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1], y.shape))
    np.testing.assert_allclose(
        y, reference(x, 0.5, 2, noise_shape=(None, 1, 10)), rtol=1e-6)


def test_same_seed_same_masks_other_seed_other_masks():
    x = np.ones((8, 64), "float32")
    first = PhiloxDropout(0.5, seed=3)(x, training=True).numpy()
    again = PhiloxDropout(0.5, seed=3)(x, training=True).numpy()
    other = PhiloxDropout(0.5, seed=4)(x, training=True).numpy()
    np.testing.assert_array_equal(first, again)
    assert np.any(first != other)


def in_mode(function, mode):
    """`function` run eagerly, traced into a graph, or compiled by XLA."""
    if mode == "eager":
        return function
    return tf.function(function, jit_compile=mode == "xla")


@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
def test_same_masks_as_keras_dropout(mode):
    # TensorFlow's auto-select is Philox on the CPU: the same bits in each
    # mode (XLA lays them out otherwise than the TensorFlow kernel).
    x = np.random.default_rng(3).normal(size=(6, 7, 40)).astype("float32")
    ours = PhiloxDropout(0.4, noise_shape=(None, 1, 40), seed=4)
    theirs = keras.layers.Dropout(0.4, noise_shape=(None, 1, 40), seed=4)
    draw = [in_mode(lambda v, layer=layer: layer(v, training=True), mode)
            for layer in (ours, theirs)]
    for _ in range(2):  # the first draw and the next
        mine, keras_own = draw[0](x).numpy(), draw[1](x).numpy()
        np.testing.assert_array_equal(mine, keras_own)
        assert 0.3 < np.mean(mine == 0) < 0.5


@pytest.mark.parametrize("count", [None, 4])
@pytest.mark.parametrize("mode", ["eager", "xla"])
def test_cells_masks_are_keras_own(count, mode):
    # The sparse cells' mask hook against Keras's, equally seeded: one mask
    # (an RHN, or an LSTM without recurrent dropout) or one a gate.
    from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

    def masks(create):
        cell = ksr.SparseLSTMCell(8, sparsity=0.5, dropout=0.3, seed=6)
        if count is not None:
            cell.dropout_mask_count = count
        step = in_mode(lambda v: create(cell, v, 0.3), mode)
        return [np.asarray(m) for m in tf.nest.flatten(step(np.ones((5, 12), "float32")))]

    mine = masks(ksr.SparseLSTMCell._create_dropout_mask)
    keras_own = masks(DropoutRNNCell._create_dropout_mask)
    assert len(mine) == len(keras_own) == (count or 1)
    for a, b in zip(mine, keras_own):
        np.testing.assert_array_equal(a, b)
    assert 0.15 < np.mean(mine[0] == 0) < 0.45


def test_xla_masks_rate_scale_and_seed():
    x = np.ones((400, 250), "float32")

    def compiled_draws(seed):
        layer = PhiloxDropout(0.4, seed=seed)
        step = tf.function(lambda v: layer(v, training=True), jit_compile=True)
        return step(x).numpy(), step(x).numpy()

    first, second = compiled_draws(4)
    assert set(np.unique(first)) == {0.0, np.float32(1 / 0.6)}
    assert abs(np.mean(first == 0) - 0.4) < 0.01  # 100,000 draws: sd 0.0015
    assert np.mean((first == 0) != (second == 0)) > 0.4  # a new mask a call
    again = compiled_draws(4)
    np.testing.assert_array_equal(first, again[0])
    np.testing.assert_array_equal(second, again[1])
    assert np.any(first != compiled_draws(5)[0])


def test_compiled_training_step_drops_inference_does_not():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5, 8))
    hidden = keras.layers.Dense(16)(inputs)
    dropped = PhiloxDropout(0.5, seed=5, name="drop")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(1)(dropped))
    # Learning rate 0: the weights stay, so the losses differ by dropout only.
    model.compile(keras.optimizers.SGD(0.0), "mse", jit_compile=True)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 5, 8)), rng.normal(size=(8, 5, 1))
    train = [float(model.train_on_batch(x, y)) for _ in range(2)]
    test = [float(model.test_on_batch(x, y)) for _ in range(2)]
    assert test[0] == test[1]  # inference: no dropout
    assert train[0] != test[0] and train[1] != test[0]  # training: dropout
    assert train[0] != train[1]  # a new mask at each step
    model.compile(keras.optimizers.SGD(0.1), "mse", jit_compile=True)
    history = model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


def test_mixed_precision():
    layer = PhiloxDropout(0.5, seed=6, dtype="mixed_float16")
    y = layer(np.ones((4, 32), "float32"), training=True)
    assert y.dtype == "float16"
    assert set(np.unique(y.numpy())) == {0.0, 2.0}


def test_needs_the_tensorflow_backend(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ValueError, match="needs the TensorFlow backend, got Keras backend 'jax'"):
        PhiloxDropout(0.5)


@pytest.mark.parametrize("arguments, message", [
    (dict(rate=1.2), "rate"),
    (dict(rate=0.5, noise_shape=(None, 0)), "noise_shape"),
])
def test_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        PhiloxDropout(**arguments)


def test_config_and_saved_model_round_trip(tmp_path):
    layer = PhiloxDropout(0.25, noise_shape=(None, 1, 8), seed=9, name="drop")
    config = layer.get_config()
    assert config["seed"] == 9 and config["noise_shape"] == (None, 1, 8)
    clone = PhiloxDropout.from_config(config)
    x = np.ones((2, 3, 8), "float32")
    np.testing.assert_array_equal(clone(x, training=True), layer(x, training=True))

    inputs = keras.Input((3, 8))
    model = keras.Model(inputs, keras.layers.Dense(2)(layer(inputs)))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.get_layer("drop"), PhiloxDropout)
    assert loaded.get_layer("drop").get_config() == layer.get_config()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_exports_as_a_dropout(tmp_path):
    keras.utils.set_random_seed(1)
    inputs = keras.Input((6,), dtype="int32", batch_size=1)
    x = ksr.SparseEmbedding(20, 8, sparsity=0.5, mask_seed=1)(inputs)
    x = PhiloxDropout(0.5, seed=1)(x)
    x = ksr.SparseLSTM(8, sparsity=0.5, mask_seed=2, return_sequences=True)(x)
    outputs = ksr.SparseDense(20, sparsity=0.5, mask_seed=3)(PhiloxDropout(0.5)(x))
    model = keras.Model(inputs, outputs)
    report = ksr.export_tflite(model, tmp_path / "lm.tflite")  # checks against Keras
    assert report.max_abs_error <= report.tolerance and (tmp_path / "lm.tflite").exists()
    streaming = ksr.export_tflite(model, tmp_path / "step.tflite", streaming=True)
    assert streaming.streaming


@pytest.mark.parametrize("layer_class, arguments", [
    (ksr.SparseLSTM, {}), (ksr.SparseGRU, {}), (ksr.SparseRHN, dict(depth=2))])
def test_cells_draw_their_masks_with_philox_named(layer_class, arguments, monkeypatch):
    algorithms = []
    draw = tf.nn.experimental.stateless_dropout

    def recording(*args, rng_alg=None, **kwargs):
        algorithms.append(rng_alg)
        return draw(*args, rng_alg=rng_alg, **kwargs)

    monkeypatch.setattr(tf.nn.experimental, "stateless_dropout", recording)
    layer = layer_class(4, sparsity=0.5, dropout=0.3, recurrent_dropout=0.2, **arguments)
    layer(np.ones((2, 3, 5), "float32"), training=True)
    # Keras's own masks would call it with rng_alg=None.
    assert len(algorithms) >= 2 and set(algorithms) == {"philox"}
