import numpy as np
import pytest
import keras

from keras_sparse_rnn import (
    SparseDense,
    SparseLSTM,
    distribute_sparsity,
    sparse_matrices,
    sparse_weights,
)
from keras_sparse_rnn.distribution import erdos_renyi_densities, exact_counts


def _two_dense():
    return keras.Sequential([keras.Input((10,)), SparseDense(10, mask_seed=0),
                             SparseDense(100, mask_seed=1)])


def test_erdos_renyi_by_hand():
    # raw (n_in + n_out) / (n_in * n_out): 0.2 and 0.11; eps = 550 / 130.
    model = _two_dense()
    result = distribute_sparsity(model, 0.5, "erdos_renyi")
    counts = [int(m.numpy().sum()) for _, m in sparse_weights(model)]
    eps = 550 / 130
    assert 0.2 * eps * 100 == pytest.approx(84.615, abs=1e-3)
    assert counts == [85, 465]  # 84.6 + 465.4, the remainder to the larger fraction
    assert sum(counts) == 550
    assert list(result.values()) == pytest.approx([1 - 85 / 100, 1 - 465 / 1000])
    for spec in sparse_matrices(model):
        assert spec.layer.expected_active_count(spec.name) == int(spec.mask.numpy().sum())


def test_erdos_renyi_makes_small_matrix_dense():
    densities = erdos_renyi_densities([(2, 2), (100, 100)], 0.5)
    assert densities[0] == 1.0
    assert densities[1] == pytest.approx(4998 / 10000)
    assert exact_counts([4, 10000], densities, 5002) == [4, 4998]


def test_uniform_total_is_exact():
    model = keras.Sequential([keras.Input((None, 7)),
                              SparseLSTM(5, return_sequences=True, mask_seed=0),
                              SparseDense(3, mask_seed=1)])
    total = 7 * 20 + 5 * 20 + 5 * 3
    distribute_sparsity(model, 0.67, "uniform")
    counts = [int(m.numpy().sum()) for _, m in sparse_weights(model)]
    assert sum(counts) == round(0.33 * total)


def test_per_gate_and_config_round_trip(tmp_path):
    model = keras.Sequential([keras.Input((None, 8)), SparseLSTM(4, mask_seed=0)])
    result = distribute_sparsity(model, 0.8, "erdos_renyi", per_gate=True)
    lstm = model.layers[0]
    kernel = result[lstm.cell.kernel.path]
    assert isinstance(kernel, list) and len(kernel) == 4
    for spec in sparse_matrices(model):
        mask = spec.mask.numpy()
        expected = [round((1 - s) * mask.size / 4) for s in spec.layer.matrix_sparsity(spec.name)]
        assert [int(mask[:, g * 4:(g + 1) * 4].sum()) for g in range(4)] == expected
    assert sum(int(m.numpy().sum()) for _, m in sparse_weights(model)) == round(0.2 * (32 + 16) * 4)
    # Weights re-initialized then masked: zero exactly outside.
    for w, m in sparse_weights(model):
        assert np.all(w.numpy()[m.numpy() == 0] == 0)
        assert np.count_nonzero(w.numpy()) == int(m.numpy().sum())
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.layers[0].cell.sparsity == lstm.cell.sparsity
    for (_, a), (_, b) in zip(sparse_weights(model), sparse_weights(loaded)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def _block_model(embedding):
    from keras_sparse_rnn import SparseEmbedding

    layers = [keras.Input((6,), dtype="int32")]
    if embedding:
        layers.append(SparseEmbedding(400, 16, mask_seed=0))
    else:
        layers.append(keras.layers.Embedding(400, 16))
    layers += [SparseLSTM(16, return_sequences=True, block=(1, 4), mask_seed=1),
               SparseDense(400, block=(1, 4), mask_seed=2)]
    return keras.Sequential(layers)


@pytest.mark.parametrize("method", ["erdos_renyi", "uniform"])
def test_blocks_beside_an_unblocked_embedding(method):
    # The kernels get whole blocks of 4, the embedding the rest: the total
    # in weights is exact and each matrix is near its density.
    model = _block_model(embedding=True)
    distribute_sparsity(model, 0.8, method)
    specs = sparse_matrices(model)
    total = sum(int(np.prod(s.weight.shape)) for s in specs)
    active = sum(int(s.mask.numpy().sum()) for s in specs)
    assert active == round(0.2 * total)
    densities = erdos_renyi_densities([tuple(s.weight.shape) for s in specs], 0.8) \
        if method == "erdos_renyi" else [0.2] * len(specs)
    for spec, density in zip(specs, densities):
        mask = spec.mask.numpy()
        assert spec.layer.expected_active_count(spec.name) == int(mask.sum())
        size = mask.size
        assert abs(mask.sum() - density * size) <= max(4, 0.01 * size)
        if spec.block_shape is not None:  # (4, 1) on a kernel: rows in fours
            groups = mask.reshape(mask.shape[0] // 4, 4, mask.shape[1])
            assert np.all(groups.min(axis=1) == groups.max(axis=1))


def test_blocks_only_count_in_blocks():
    model = _block_model(embedding=False)
    distribute_sparsity(model, 0.8, "erdos_renyi")
    specs = sparse_matrices(model)
    blocks = sum(int(np.prod(s.weight.shape)) // 4 for s in specs)
    assert sum(int(s.mask.numpy().sum()) for s in specs) == 4 * round(0.2 * blocks)


def test_bad_input():
    model = _two_dense()
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\), got 1.0"):
        distribute_sparsity(model, 1.0)
    with pytest.raises(ValueError, match="method must be one of"):
        distribute_sparsity(model, 0.5, "random")
    with pytest.raises(ValueError, match="per_gate must be True or False"):
        distribute_sparsity(model, 0.5, per_gate=1)
    with pytest.raises(ValueError, match="has no sparse layer"):
        distribute_sparsity(keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]), 0.5)


def _wide_classifier(block=None):
    # A text classifier's shape: embedding, LSTM of constant fan-in blocks, and
    # an output layer so small that Erdos-Renyi wants it denser than dense.
    from keras_sparse_rnn import SparseEmbedding

    blocks = {} if block is None else dict(block=(block, block))
    return keras.Sequential([
        keras.Input((5,), dtype="int32"),
        SparseEmbedding(300, 16, sparsity=0.5, mask_seed=0),
        SparseLSTM(16, sparsity=0.5, mask_seed=1, **blocks),
        SparseDense(2, sparsity=0.5, mask_seed=2)])


def test_blocks_beside_an_output_layer_that_erdos_renyi_makes_dense():
    # A wide text classifier: embedding 20,000 x 512, an LSTM of 16 x 16 blocks
    # with constant fan-in, and a 512 x 2 output layer that Erdos-Renyi makes
    # dense. The kernels' whole blocks fall short of their share; the rest must
    # go to the embedding, not to the full output layer (it once raised
    # "Cannot place ... active weights").
    from keras_sparse_rnn.distribution import _counts

    shapes = [(20000, 512), (512, 2048), (512, 2048), (512, 2)]
    sparsity = 0.78
    densities = erdos_renyi_densities(shapes, sparsity)
    assert densities[3] == 1.0
    sizes = [20000 * 512, 32 * 128, 32 * 128, 1024]  # the kernels in blocks
    block_sizes = [1, 256, 256, 1]
    counts = _counts(sizes, block_sizes, densities, sparsity)
    weights = [c * b for c, b in zip(counts, block_sizes)]
    assert sum(weights) == round(0.22 * sum(n * b for n, b in zip(sizes, block_sizes)))
    assert counts[3] == 1024
    assert counts[1] == counts[2] == round(densities[1] * 32 * 128)
    # Small numbers by hand: 2 of 10 blocks of 64 (128 weights), so 142 of the
    # 270 weights are left: 10 fill the small matrix, 132 go to the big one.
    assert _counts([10, 1000, 10], [64, 1, 1], [0.25, 0.1, 1.0], 1 - 270 / 1650) \
        == [2, 132, 10]


@pytest.mark.parametrize("block", [None, 8])
def test_sparsity_for_active_params(block):
    from keras_sparse_rnn import sparsity_for_active_params, sparsity_summary

    model = _wide_classifier(block)
    # Outside the sparse matrices: the LSTM's bias (64) and the output's (2).
    sparse_total = 300 * 16 + 2 * 16 * 64 + 16 * 2
    target = 66 + sparse_total // 4
    sparsity = sparsity_for_active_params(model, target)
    assert sparsity == pytest.approx(1 - (target - 66) / sparse_total, abs=1e-12)
    distribute_sparsity(model, sparsity)
    counted = sparsity_summary(model, print_fn=None).total_params
    if block is None:
        assert counted == target
    else:  # whole blocks on the LSTM, the rest exact elsewhere
        assert abs(counted - target) <= 1


def test_sparsity_for_active_params_bad_input():
    from keras_sparse_rnn import sparsity_for_active_params

    model = _wide_classifier()
    with pytest.raises(ValueError, match=r"active_params must be in \(66, 6,946\]"):
        sparsity_for_active_params(model, 66)
    with pytest.raises(ValueError, match=r"must be in \(66, 6,946\].*got 6,947"):
        sparsity_for_active_params(model, 6947)
    with pytest.raises(ValueError, match="active_params must be an int, got 1.5"):
        sparsity_for_active_params(model, 1.5)
    with pytest.raises(ValueError, match="has no sparse layer"):
        sparsity_for_active_params(
            keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]), 10)
    assert sparsity_for_active_params(model, 6946) == 0.0


def test_plan_sparsity_is_a_deprecated_alias():
    """Renamed to sparsity_per_matrix ("plan" names the export plan); the old
    public name works for one release and warns."""
    import keras_sparse_rnn as ksr

    with pytest.warns(DeprecationWarning,
                      match="keras_sparse_rnn.plan_sparsity is deprecated .* "
                            "use keras_sparse_rnn.sparsity_per_matrix"):
        alias = ksr.plan_sparsity
    assert alias is ksr.sparsity_per_matrix
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        ksr.no_such_name
