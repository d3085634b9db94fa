import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_sparse_rnn")
class StatelessDropout(keras.layers.Dropout):
    """`keras.layers.Dropout` whose random bits come from Philox, named.

    Keras's `Dropout` calls `tf.nn.experimental.stateless_dropout` without
    `rng_alg`, which leaves the algorithm to the device. Compiled by XLA on
    the CPU, the scalar ops that derive that algorithm's key and counter from
    the seed are then fused into the loop over the elements and recomputed
    for each one: in a training step of a 2 x 416 LSTM language model (batch
    20, 20 steps), three `Dropout(0.5)` layers made the step 2.07 times as
    costly as no dropout, the same three layers of this one, which names
    `"philox"`, 1.04 times (`benchmarks/dropout_cost.py`). (ThreeFry, the
    other algorithm, has no TensorFlow kernel outside XLA on the CPU.)

    Use it in place of `keras.layers.Dropout` in models trained with
    `jit_compile=True`; elsewhere the two cost the same. It is a
    `keras.layers.Dropout` (`isinstance` holds, so exporters treat it as one)
    with the same arguments and, on the CPU, the same masks for the same
    seed, eager or compiled: TensorFlow's auto-select is Philox there. (On a
    device whose auto-select is another algorithm, the masks differ.)

    Args:
        rate: Float in [0, 1]. Fraction of the input units to drop.
        noise_shape: Shape of the binary mask multiplied with the input,
            `None` for an axis taken from the input, as in
            `keras.layers.Dropout`: `(batch, 1, features)` keeps one mask
            for all the time steps of a sequence.
        seed: Integer seed, as in `keras.layers.Dropout`; `None` draws
            from Keras's global seed generator.

    Call arguments:
        inputs: Input tensor (of any rank).
        training: Python boolean; dropout applies only when True.

    Example:

    >>> layer = StatelessDropout(0.5, seed=0)
    >>> x = np.ones((2, 1000), "float32")
    >>> y = layer(x, training=True).numpy()
    >>> sorted(set(y.ravel().tolist()))
    [0.0, 2.0]
    >>> bool(np.all(layer(x, training=False).numpy() == x))
    True
    """

    def call(self, inputs, training=False):
        if not training or self.rate == 0:  # no seed_generator at rate 0
            return inputs
        return philox_dropout(inputs, self.rate, self.seed_generator, self.noise_shape)


def philox_dropout(inputs, rate, seed_generator, noise_shape=None):
    """`keras.random.dropout(inputs, rate, noise_shape, seed=seed_generator)`
    on the TensorFlow backend, with `rng_alg="philox"` named (see
    `StatelessDropout`)."""
    if rate == 0:
        return inputs
    if rate == 1:
        return tf.zeros_like(inputs)
    # Keras's seed, cast as Keras casts it for the stateless ops (its
    # generator's state is int64; XLA wants an int32 seed).
    seed = tf.cast(tf.math.floormod(seed_generator.next(), tf.int32.max - 1), "int32")
    if noise_shape is not None:
        shape = tf.shape(inputs)
        noise_shape = tf.stack([shape[i] if size is None else size
                                for i, size in enumerate(noise_shape)])
    return tf.nn.experimental.stateless_dropout(
        inputs, rate, seed, noise_shape=noise_shape, rng_alg="philox")
