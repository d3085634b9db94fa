import numpy as np
import pytest
import keras

from keras_sparse_rnn import (
    SparseDense,
    SparseLSTM,
    distribute_sparsity,
    sparse_weight_info,
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
    for spec in sparse_weight_info(model):
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
    for spec in sparse_weight_info(model):
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
    specs = sparse_weight_info(model)
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
    specs = sparse_weight_info(model)
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
