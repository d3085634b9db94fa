import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_sparse_rnn")
class PhiloxDropout(keras.layers.Dropout):
    """`keras.layers.Dropout` whose random bits come from Philox, named.

    Keras's `Dropout` calls `tf.nn.experimental.stateless_dropout` without
    `rng_alg`: TensorFlow then derives the algorithm's key and counter from
    the seed with an op of its own, which XLA on the CPU fuses into the loop
    over the elements and recomputes for each one. In a training step of the
    sparse 2 x 416 LSTM language model of `benchmarks/dropout_cost.py`
    (sparsity 0.58, batch 20, 20 steps, `jit_compile=True`), three
    `Dropout(0.5)` layers made the step about twice as costly as no dropout;
    the same three layers of this one, which names `rng_alg="philox"`, cost
    within 5% of no dropout (`benchmarks/results/dropout_cost.json`).
    (ThreeFry, the other algorithm, has no TensorFlow kernel outside XLA on
    the CPU.)

    Use it in place of `keras.layers.Dropout` in models trained with
    `jit_compile=True`; without XLA both run the same TensorFlow kernel. It
    is a `keras.layers.Dropout` (`isinstance` holds, so exporters treat it
    as one) with the same arguments, and draws the same masks as
    `keras.layers.Dropout` with the same seed in the same mode (eager, graph
    or XLA) on the CPU, where TensorFlow's auto-selected algorithm is Philox
    too. (On a device whose auto-select is another algorithm, such as a TPU,
    the masks differ.) TensorFlow backend only. A saved model that holds it
    loads after `import keras_sparse_rnn`, which registers it.

    Args:
        rate: Float in [0, 1]. Fraction of the input units to drop.
        noise_shape: Shape of the binary mask multiplied with the input,
            `None` for an axis taken from the input, as in
            `keras.layers.Dropout`: `(batch, 1, features)` keeps one mask
            for all the time steps of a sequence.
        seed: Integer seed, as in `keras.layers.Dropout`; `None`: a seed of
            its own from Python's `random` (which
            `keras.utils.set_random_seed` fixes).

    Call arguments:
        inputs: Input tensor (of any rank).
        training: Python boolean; dropout applies only when True.

    Example:

    >>> layer = PhiloxDropout(0.5, seed=0)
    >>> x = np.ones((2, 1000), "float32")
    >>> y = layer(x, training=True).numpy()
    >>> sorted(set(y.ravel().tolist()))
    [0.0, 2.0]
    >>> bool(np.all(layer(x, training=False).numpy() == x))
    True
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        if keras.backend.backend() != "tensorflow":
            raise ValueError(
                "PhiloxDropout needs the TensorFlow backend, got Keras backend "
                f"{keras.backend.backend()!r}; use keras.layers.Dropout there"
            )
        super().__init__(rate, noise_shape=noise_shape, seed=seed, **kwargs)

    def call(self, inputs, training=False):
        # At rate 0 Keras's Dropout has no seed generator.
        if not training or self.rate == 0:
            return inputs
        if self.rate == 1:
            return tf.zeros_like(inputs)
        return philox_dropout(inputs, self.rate, self.seed_generator, self.noise_shape)


def philox_dropout(inputs, rate, seed_generator, noise_shape=None):
    """What `keras.random.dropout(inputs, rate, noise_shape,
    seed=seed_generator)` computes on the TensorFlow backend, with
    `rng_alg="philox"` named; for `0 < rate < 1` (the callers check it)."""
    # Keras's seed, cast as Keras casts it for the stateless ops (its
    # generator's state is int64; XLA wants an int32 seed).
    seed = tf.cast(tf.math.floormod(seed_generator.next(), tf.int32.max - 1), "int32")
    if noise_shape is not None:
        shape = tf.shape(inputs)
        noise_shape = tf.stack([shape[i] if size is None else size
                                for i, size in enumerate(noise_shape)])
    return tf.nn.experimental.stateless_dropout(
        inputs, rate, seed, noise_shape=noise_shape, rng_alg="philox")
