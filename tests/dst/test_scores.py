import numpy as np
import tensorflow as tf

from keras_sparse_rnn.dst import scores
from keras_sparse_rnn.dst import updater


def _reduce(block=(1, 1), groups=1, shape=(4, 4)):
    def reduce(x):
        x = tf.reshape(tf.convert_to_tensor(x, tf.float32), shape)
        return updater.to_groups(updater.block_reduce(x, block), groups)
    return reduce


W = np.array([[0.5, -0.1, 0.0, 2.0],
              [-3.0, 0.2, -0.05, 0.0],
              [0.0, 0.0, 1.0, -1.5],
              [0.3, 0.0, 0.0, -0.4]], np.float32)
ACTIVE = W != 0


def test_magnitude_prune_is_abs_of_active():
    reduce = _reduce()
    [(eligible, importance)] = scores.magnitude_prune(
        tf.constant(W), reduce(ACTIVE.astype("float32")) > 0, reduce)
    np.testing.assert_array_equal(eligible.numpy().reshape(4, 4), ACTIVE)
    np.testing.assert_array_equal(importance.numpy().reshape(4, 4), np.abs(W))


def test_set_prune_pools_split_by_sign():
    reduce = _reduce()
    pools = scores.set_prune(tf.constant(W), tf.constant(ACTIVE.reshape(1, -1)),
                             reduce)
    (pos, dist_p), (neg, dist_n) = pools
    np.testing.assert_array_equal(pos.numpy().reshape(4, 4), ACTIVE & (W >= 0))
    np.testing.assert_array_equal(neg.numpy().reshape(4, 4), ACTIVE & (W < 0))
    np.testing.assert_array_equal(dist_p.numpy().reshape(4, 4), np.abs(W))
    assert not np.any(pos.numpy() & neg.numpy())


def test_set_prune_on_blocks_uses_block_sum_sign():
    reduce = _reduce(block=(2, 1), shape=(4, 4))
    active = reduce(ACTIVE.astype("float32")) > 0
    (pos, dist), (neg, _) = scores.set_prune(tf.constant(W), active, reduce)
    sums = W.reshape(2, 2, 4).sum(axis=1)
    np.testing.assert_allclose(dist.numpy().reshape(2, 4), np.abs(sums))
    np.testing.assert_array_equal(neg.numpy().reshape(2, 4), sums < 0)


def test_gradient_grow_sums_abs_over_blocks():
    g = np.arange(16, dtype=np.float32).reshape(4, 4) - 8
    reduce = _reduce(block=(2, 1), shape=(4, 4))
    score = scores.gradient_grow(tf.constant(g), tf.constant(W), reduce, None)
    np.testing.assert_array_equal(score.numpy().reshape(2, 4),
                                  np.abs(g).reshape(2, 2, 4).sum(axis=1))


def test_momentum_grow_ranks_like_gradient():
    g = np.array([[1.0, -5.0], [0.5, 2.0]], np.float32)
    reduce = _reduce(shape=(2, 2))
    score = scores.momentum_grow(tf.constant(g), tf.constant(g), reduce, None)
    np.testing.assert_array_equal(score.numpy(), [[1.0, 5.0, 0.5, 2.0]])


def test_random_grow_is_seeded_uniform():
    reduce = _reduce(shape=(4, 4))
    seed = tf.constant([1, 2], tf.int64)
    a = scores.random_grow(None, tf.constant(W), reduce, seed).numpy()
    b = scores.random_grow(None, tf.constant(W), reduce, seed).numpy()
    c = scores.random_grow(None, tf.constant(W), reduce,
                           tf.constant([1, 3], tf.int64)).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (1, 16) and np.all((a >= 0) & (a < 1))
