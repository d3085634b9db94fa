import numpy as np
import pytest
import keras
import tensorflow as tf

import keras_sparse_rnn as ksr
from keras_sparse_rnn import StatelessDropout


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
    layer = StatelessDropout(0.3, seed=7)
    first = layer(x, training=True).numpy()
    second = layer(x, training=True).numpy()
    np.testing.assert_allclose(first, reference(x, 0.3, 7), rtol=1e-6)
    np.testing.assert_allclose(second, reference(x, 0.3, 7, draws=2), rtol=1e-6)
    assert np.any((first == 0) != (second == 0))  # a new mask at each call


def test_rate_and_scale():
    x = np.ones((200, 500), "float32")
    y = StatelessDropout(0.3, seed=1)(x, training=True).numpy()
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.7)}
    # 100,000 draws: the dropped fraction's standard deviation is 0.0014.
    assert abs(np.mean(y == 0) - 0.3) < 0.01


def test_inference_and_edge_rates_as_keras():
    x = np.random.default_rng(1).normal(size=(4, 6)).astype("float32")
    np.testing.assert_array_equal(StatelessDropout(0.5, seed=0)(x), x)  # training=False
    np.testing.assert_array_equal(StatelessDropout(0.0)(x, training=True), x)
    np.testing.assert_array_equal(StatelessDropout(1.0)(x, training=True), np.zeros_like(x))
    assert isinstance(StatelessDropout(0.5), keras.layers.Dropout)


def test_noise_shape_shares_the_mask():
    # One mask per sequence and feature, the same at every time step.
    x = np.ones((4, 6, 10), "float32")
    layer = StatelessDropout(0.5, noise_shape=(None, 1, 10), seed=2)
    y = layer(x, training=True).numpy()
    np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1], y.shape))
    np.testing.assert_allclose(
        y, reference(x, 0.5, 2, noise_shape=(None, 1, 10)), rtol=1e-6)


def test_same_seed_same_masks_other_seed_other_masks():
    x = np.ones((8, 64), "float32")
    first = StatelessDropout(0.5, seed=3)(x, training=True).numpy()
    again = StatelessDropout(0.5, seed=3)(x, training=True).numpy()
    other = StatelessDropout(0.5, seed=4)(x, training=True).numpy()
    np.testing.assert_array_equal(first, again)
    assert np.any(first != other)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_same_masks_as_keras_dropout(jit_compile):
    # TensorFlow's auto-select is Philox on the CPU: the same bits, eager or
    # compiled by XLA (which lays them out otherwise than the eager kernel).
    x = np.random.default_rng(3).normal(size=(6, 7, 40)).astype("float32")
    ours = StatelessDropout(0.4, noise_shape=(None, 1, 40), seed=4)
    theirs = keras.layers.Dropout(0.4, noise_shape=(None, 1, 40), seed=4)
    draw = [tf.function(lambda v, layer=layer: layer(v, training=True),
                        jit_compile=jit_compile) for layer in (ours, theirs)]
    for _ in range(2):  # the first draw and the next
        mine, keras_own = draw[0](x).numpy(), draw[1](x).numpy()
        np.testing.assert_array_equal(mine, keras_own)
        assert 0.3 < np.mean(mine == 0) < 0.5


def test_xla_masks_rate_scale_and_seed():
    x = np.ones((400, 250), "float32")

    def compiled_draws(seed):
        layer = StatelessDropout(0.4, seed=seed)
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


def test_fit_with_jit_compile_trains_and_drops():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5, 8))
    hidden = keras.layers.Dense(16)(inputs)
    dropped = StatelessDropout(0.5, seed=5, name="drop")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(1)(dropped))
    model.compile("sgd", "mse", jit_compile=True)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 5, 8)), rng.normal(size=(32, 5, 1))
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    # Two training calls of the same batch differ (a mask per call); two
    # inference calls do not.
    train = keras.Model(inputs, dropped)
    a, b = train(x, training=True).numpy(), train(x, training=True).numpy()
    assert np.any((a == 0) != (b == 0))
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))


def test_mixed_precision():
    layer = StatelessDropout(0.5, seed=6, dtype="mixed_float16")
    y = layer(np.ones((4, 32), "float32"), training=True)
    assert y.dtype == "float16"
    assert set(np.unique(y.numpy())) == {0.0, 2.0}


@pytest.mark.parametrize("arguments, message", [
    (dict(rate=1.2), "rate"),
    (dict(rate=0.5, noise_shape=(None, 0)), "noise_shape"),
])
def test_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        StatelessDropout(**arguments)


def test_config_and_saved_model_round_trip(tmp_path):
    layer = StatelessDropout(0.25, noise_shape=(None, 1, 8), seed=9, name="drop")
    config = layer.get_config()
    assert config["seed"] == 9 and config["noise_shape"] == (None, 1, 8)
    clone = StatelessDropout.from_config(config)
    x = np.ones((2, 3, 8), "float32")
    np.testing.assert_array_equal(clone(x, training=True), layer(x, training=True))

    inputs = keras.Input((3, 8))
    model = keras.Model(inputs, keras.layers.Dense(2)(layer(inputs)))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.get_layer("drop"), StatelessDropout)
    assert loaded.get_layer("drop").get_config() == layer.get_config()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_exports_as_a_dropout(tmp_path):
    keras.utils.set_random_seed(1)
    inputs = keras.Input((6,), dtype="int32", batch_size=1)
    x = ksr.SparseEmbedding(20, 8, sparsity=0.5, mask_seed=1)(inputs)
    x = StatelessDropout(0.5, seed=1)(x)
    x = ksr.SparseLSTM(8, sparsity=0.5, mask_seed=2, return_sequences=True)(x)
    outputs = ksr.SparseDense(20, sparsity=0.5, mask_seed=3)(StatelessDropout(0.5)(x))
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
