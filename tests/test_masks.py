import numpy as np
import pytest

from keras_sparse_rnn import masks


@pytest.mark.parametrize("shape,sparsity", [((7, 13), 0.3), ((100,), 0.99), ((4, 4), 0.0)])
def test_random_mask_exact_count(shape, sparsity):
    m = masks.random_mask(shape, sparsity, seed=1)
    assert m.shape == shape and m.dtype == np.float32
    assert int(m.sum()) == round((1 - sparsity) * np.prod(shape))
    np.testing.assert_array_equal(m, masks.random_mask(shape, sparsity, seed=1))


def test_per_gate_counts():
    m = masks.random_mask((5, 12), [0.2, 0.4, 0.6, 0.8], seed=0, gates=4)
    assert [int(m[:, g * 3:(g + 1) * 3].sum()) for g in range(4)] == [12, 9, 6, 3]


def test_blocks():
    m = masks.random_mask((8, 6), 0.5, seed=0, block_shape=(4, 1))
    grid = masks.block_reduce(m, (4, 1))
    assert set(np.unique(grid)) <= {0.0, 4.0}
    assert int(m.sum()) == 4 * 6 == masks.expected_active_count((8, 6), 0.5, 1, (4, 1))
    np.testing.assert_array_equal(masks.expand_blocks(grid / 4, (4, 1)), m)


def test_stable_seed_is_fixed():
    # crc32 of "3/kernel": the same in every process (unlike Python's hash).
    assert masks.stable_seed(3, "kernel") == 998635914
    assert masks.stable_seed(3, "kernel") != masks.stable_seed(3, "recurrent_kernel")


def test_gate_and_block_errors():
    with pytest.raises(ValueError, match="cannot be split into 4 gates"):
        masks.gate_slices((3, 10), 4)
    with pytest.raises(ValueError, match="cannot be cut into blocks"):
        masks.block_grid((6, 4), (4, 1))
    with pytest.raises(ValueError, match="one sparsity per gate"):
        masks.random_mask((2, 8), [0.5, 0.5], seed=0, gates=4)


def test_gate_counts_counts_each_column_block_exactly():
    mask = np.zeros((3, 8), np.float32)
    mask[:, 0:2] = 1  # gate 0: 6
    mask[0, 5] = 1    # gate 2: 1
    mask[:, 7] = 1    # gate 3: 3
    counts = masks.gate_counts(mask, 4)
    assert counts.dtype == np.int64
    np.testing.assert_array_equal(counts, [6, 0, 1, 3])
    np.testing.assert_array_equal(masks.gate_counts(mask, 1), [10])


def test_sparsity_of_count_round_trips_active_count():
    from keras_sparse_rnn.masks import active_count, sparsity_of_count

    for size in (1, 7, 192, 6400):
        for count in range(1, size + 1, max(1, size // 37)):
            s = sparsity_of_count(size, count)
            assert s == 1.0 - count / size and active_count(size, s) == count
    assert sparsity_of_count(192, 0) is None


def test_top_k_mask_is_exact_and_stable():
    """The package's one top-k (masks.magnitude_mask, GradualPruning): exactly
    k ones, at the largest scores; equal scores taken by position."""
    scores = np.array([[0.5, 2.0, 0.5], [2.0, 0.5, 1.0]])
    got = masks.top_k_mask(scores, 3)
    assert got.dtype == np.float32 and got.shape == (2, 3)
    # 2.0 at flat positions 1 and 3, then 1.0 at 5.
    np.testing.assert_array_equal(got, [[0, 1, 0], [1, 0, 1]])
    # Ties at the boundary: the earlier positions, whatever k.
    ties = np.zeros(6)
    for k in range(7):
        np.testing.assert_array_equal(masks.top_k_mask(ties, k),
                                      [1.0] * k + [0.0] * (6 - k))
    np.testing.assert_array_equal(masks.top_k_mask(scores, 0), np.zeros((2, 3)))
    np.testing.assert_array_equal(masks.top_k_mask(scores, 10), np.ones((2, 3)))
    # Exact on a large array with many ties: counts, and the same each call.
    rng = np.random.default_rng(0)
    big = rng.integers(0, 5, size=(300, 40)).astype(np.float64)
    for k in (0, 1, 999, 6000, 12000):
        m = masks.top_k_mask(big, k)
        assert int(m.sum()) == k
        if 0 < k < big.size:
            assert big[m == 1].min() >= big[m == 0].max()
        np.testing.assert_array_equal(m, masks.top_k_mask(big.copy(), k))
    with pytest.raises(ValueError, match="k must be >= 0, got -1"):
        masks.top_k_mask(scores, -1)


def test_magnitude_mask_and_pruning_share_the_top_k():
    """magnitude_mask's ties go by position, as top_k_mask's do."""
    values = np.array([[1.0, -1.0, 1.0, -1.0]])
    np.testing.assert_array_equal(masks.magnitude_mask(values, 0.5),
                                  masks.top_k_mask(np.abs(values), 2))
