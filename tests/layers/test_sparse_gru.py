import numpy as np
import pytest
import keras

from layer_helpers import gru_model, sequence_data

from keras_sparse_rnn import distribute_sparsity, sparse_weights, sparsity_summary
from keras_sparse_rnn.layers import SparseGRU, SparseGRUCell


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _np_gru(x, kernel, recurrent_kernel, bias, units, reset_after):
    """Reference GRU (Keras gate order z, r, h; sigmoid/tanh)."""
    u = units
    if bias is None:
        b_in, b_rec = np.zeros(3 * u), np.zeros(3 * u)
    elif reset_after:
        b_in, b_rec = bias[0], bias[1]
    else:
        b_in, b_rec = bias, np.zeros(3 * u)
    h = np.zeros((x.shape[0], u))
    outputs = []
    for t in range(x.shape[1]):
        xz, xr, xh = np.split(x[:, t] @ kernel + b_in, 3, axis=-1)
        rz, rr = h @ recurrent_kernel[:, :u], h @ recurrent_kernel[:, u:2 * u]
        z = _sigmoid(xz + rz + b_rec[:u])
        r = _sigmoid(xr + rr + b_rec[u:2 * u])
        if reset_after:
            hh = np.tanh(xh + r * (h @ recurrent_kernel[:, 2 * u:] + b_rec[2 * u:]))
        else:
            hh = np.tanh(xh + (r * h) @ recurrent_kernel[:, 2 * u:])
        h = z * h + (1 - z) * hh
        outputs.append(h)
    return np.stack(outputs, axis=1), h


def _copy_weights(src_cell, dst_cell):
    assert len(src_cell.trainable_weights) == len(dst_cell.trainable_weights)
    for src, dst in zip(src_cell.trainable_weights, dst_cell.trainable_weights):
        assert src.name == dst.name
        dst.assign(src)


class TestMasks:
    def test_exact_counts_gates_and_seed(self):
        cell = SparseGRUCell(6, sparsity=0.67, mask_seed=3)
        cell.build((None, 5))
        assert [m.name for _, m in cell.sparse_weights] == [
            "kernel_mask", "recurrent_kernel_mask"]
        counts = [int(m.numpy().sum()) for _, m in cell.sparse_weights]
        assert counts == [round(0.33 * 5 * 18), round(0.33 * 6 * 18)]
        info = cell.get_sparse_weight_info()
        assert [(s.gates, s.gate_names) for s in info] == [(3, ("z", "r", "h"))] * 2
        for w, m in cell.sparse_weights:
            assert np.all(w.numpy()[m.numpy() == 0] == 0)
            assert np.all(w.numpy()[m.numpy() == 1] != 0)
        again = SparseGRUCell(6, sparsity=0.67, mask_seed=3)
        again.build((None, 5))
        for (_, m1), (_, m2) in zip(cell.sparse_weights, again.sparse_weights):
            np.testing.assert_array_equal(m1.numpy(), m2.numpy())
        assert cell.bias.constraint is None

    def test_per_gate_sparsity(self):
        cell = SparseGRUCell(4, mask_seed=0, sparsity={
            "kernel": [0.0, 0.5, 0.75], "recurrent_kernel": 0.5})
        cell.build((None, 8))
        k = cell.kernel_mask.numpy()
        assert [int(k[:, g * 4:(g + 1) * 4].sum()) for g in range(3)] == [32, 16, 8]
        assert int(cell.recurrent_kernel_mask.numpy().sum()) == 24

    def test_only_selected_matrices_are_sparse(self):
        cell = SparseGRUCell(4, sparse_kernel=False, mask_seed=0)
        cell.build((None, 3))
        assert [w.name for w, _ in cell.sparse_weights] == ["recurrent_kernel"]
        assert cell.kernel.constraint is None

    def test_block_masks_are_whole_blocks(self):
        cell = SparseGRUCell(8, sparsity=0.75, block=(1, 4), mask_seed=0)
        cell.build((None, 12))
        assert [w.name for w, _ in cell.sparse_weights] == ["kernel", "recurrent_kernel"]
        for w, m in cell.sparse_weights:
            blocks = m.numpy().reshape(m.shape[0] // 4, 4, m.shape[1])
            assert np.all(blocks.min(axis=1) == blocks.max(axis=1))
        assert int(cell.kernel_mask.numpy().sum()) == 4 * round(0.25 * 3 * 24)


class TestNumerics:
    @pytest.mark.parametrize("reset_after", [True, False])
    def test_matches_numpy_reference_with_masked_weights(self, reset_after):
        x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
        layer = SparseGRU(4, sparsity=0.5, mask_seed=11, reset_after=reset_after,
                          return_sequences=True, return_state=True,
                          bias_initializer="uniform")
        seq, h = layer(x)
        k, rk, b = [w.numpy() for w in layer.cell.trainable_weights]
        assert np.count_nonzero(k) == round(0.5 * 3 * 12)
        assert np.count_nonzero(rk) == round(0.5 * 4 * 12)
        ref_seq, ref_h = _np_gru(x, k, rk, b, 4, reset_after)
        np.testing.assert_allclose(seq, ref_seq, atol=1e-5)
        np.testing.assert_allclose(h, ref_h, atol=1e-5)


OPTIONS = [
    {},
    {"return_sequences": True},
    {"return_state": True, "return_sequences": True},
    {"go_backwards": True, "return_sequences": True},
    {"unroll": True, "return_sequences": True},
    {"use_cudnn": False},
    {"reset_after": False},
    {"reset_after": False, "use_bias": False, "go_backwards": True},
    {"use_bias": False},
    {"activation": "relu", "recurrent_activation": "hard_sigmoid"},
    {"implementation": 1},
    {"dropout": 0.3, "recurrent_dropout": 0.2},  # inference: no dropout
    {"dropout": 0.3, "reset_after": False},
]


class TestEquivalenceWithKeras:
    @pytest.mark.parametrize("options", OPTIONS)
    def test_sparsity_zero_equals_keras_gru(self, options):
        x = np.random.default_rng(1).normal(size=(3, 6, 5)).astype("float32")
        dense = keras.layers.GRU(7, bias_initializer="uniform", **options)
        sparse = SparseGRU(7, sparsity=0.0, **options)
        dense.build(x.shape)
        sparse.build(x.shape)
        _copy_weights(dense.cell, sparse.cell)
        assert sparse.cell.implementation == dense.cell.implementation
        out_dense, out_sparse = dense(x), sparse(x)
        assert len(keras.tree.flatten(out_dense)) == len(keras.tree.flatten(out_sparse))
        for a, b in zip(keras.tree.flatten(out_dense), keras.tree.flatten(out_sparse)):
            np.testing.assert_allclose(a, b, atol=1e-6)

    @pytest.mark.parametrize("reset_after", [True, False])
    def test_training_dropout_same_seed_equals_keras(self, reset_after):
        # Same seed: the same dropout masks as Keras's own GRU.
        x = np.random.default_rng(6).normal(size=(3, 4, 5)).astype("float32")
        kwargs = {"dropout": 0.4, "recurrent_dropout": 0.3, "seed": 5,
                  "reset_after": reset_after, "return_sequences": True}
        dense = keras.layers.GRU(6, **kwargs)
        sparse = SparseGRU(6, sparsity=0.0, **kwargs)
        dense.build(x.shape)
        sparse.build(x.shape)
        _copy_weights(dense.cell, sparse.cell)
        out_dense = dense(x, training=True)
        np.testing.assert_allclose(out_dense, sparse(x, training=True), atol=1e-6)
        assert not np.allclose(out_dense, dense(x), atol=1e-3)

    @pytest.mark.parametrize("reset_after", [True, False])
    def test_masking_and_initial_state(self, reset_after):
        x = np.random.default_rng(2).normal(size=(2, 5, 3)).astype("float32")
        x[0, 3:] = 0.0
        step_mask = np.any(x != 0, axis=-1)
        dense = keras.layers.GRU(4, return_sequences=True, return_state=True,
                                 reset_after=reset_after)
        sparse = SparseGRU(4, sparsity=0.0, return_sequences=True,
                           return_state=True, reset_after=reset_after)
        inputs = keras.Input((5, 3))
        masked = keras.layers.Masking()(inputs)
        m_dense = keras.Model(inputs, dense(masked))
        m_sparse = keras.Model(inputs, sparse(masked))
        _copy_weights(dense.cell, sparse.cell)
        for a, b in zip(m_dense(x), m_sparse(x)):
            np.testing.assert_allclose(a, b, atol=1e-6)
        # The mask really held the state of sample 0 over its padding.
        seq = np.asarray(m_sparse(x)[0])
        np.testing.assert_array_equal(seq[0, 3], seq[0, 2])
        # With an initial state Keras populates no mask: pass it explicitly.
        s = np.random.default_rng(3).normal(size=(2, 4)).astype("float32")
        a = dense(x, initial_state=[s], mask=step_mask)
        b = sparse(x, initial_state=[s], mask=step_mask)
        for u, v in zip(a, b):
            np.testing.assert_allclose(u, v, atol=1e-6)
        assert not np.allclose(b[1], m_sparse(x)[1], atol=1e-3)

    def test_stateful(self):
        x = np.random.default_rng(4).normal(size=(2, 3, 3)).astype("float32")
        dense = keras.layers.GRU(4, stateful=True)
        sparse = SparseGRU(4, sparsity=0.0, stateful=True)
        dense.build(x.shape)
        sparse.build(x.shape)
        _copy_weights(dense.cell, sparse.cell)
        first = sparse(x)
        np.testing.assert_allclose(dense(x), first, atol=1e-6)
        second = sparse(x)  # starts from the carried state
        np.testing.assert_allclose(dense(x), second, atol=1e-6)
        assert not np.allclose(first, second, atol=1e-4)

    @pytest.mark.parametrize("reset_after", [True, False])
    def test_cell_in_rnn_equals_keras_cell(self, reset_after):
        x = np.random.default_rng(5).normal(size=(2, 4, 3)).astype("float32")
        dense = keras.layers.RNN(keras.layers.GRUCell(5, reset_after=reset_after))
        sparse = keras.layers.RNN(SparseGRUCell(5, sparsity=0.0,
                                                reset_after=reset_after))
        dense.build(x.shape)
        sparse.build(x.shape)
        _copy_weights(dense.cell, sparse.cell)
        np.testing.assert_allclose(dense(x), sparse(x), atol=1e-6)

    def test_config_has_every_keras_argument(self):
        dense = keras.layers.GRU(3).get_config()
        sparse = SparseGRU(3, sparsity=0.2, mask_seed=1).get_config()
        assert set(sparse) - set(dense) == {
            "sparsity", "mask_seed", "block", "sparse_kernel",
            "sparse_recurrent_kernel", "compute_path"}
        assert set(dense) - set(sparse) == set()
        assert sparse["reset_after"] is True and sparse["sparsity"] == 0.2


class TestTraining:
    def test_save_load_round_trip(self, tmp_path):
        model = gru_model(reset_after=False)
        model.compile("adam", "mse")
        x, y = sequence_data()
        model.fit(x, y, epochs=1, verbose=0)
        path = tmp_path / "gru.keras"
        model.save(path)
        loaded = keras.models.load_model(path)
        assert isinstance(loaded.layers[0], SparseGRU)
        assert loaded.layers[0].reset_after is False
        for a, b in zip(model.get_weights(), loaded.get_weights()):
            np.testing.assert_array_equal(a, b)
        for (w1, m1), (w2, m2) in zip(sparse_weights(model), sparse_weights(loaded)):
            assert (w1.name, m1.name) == (w2.name, m2.name)
            np.testing.assert_array_equal(m1.numpy(), m2.numpy())
        np.testing.assert_array_equal(model.predict(x, verbose=0),
                                      loaded.predict(x, verbose=0))

    def test_config_round_trip_and_clone(self):
        layer = SparseGRU(4, sparsity={"kernel": [0.2, 0.4, 0.6], "recurrent_kernel": 0.5},
                          mask_seed=4, reset_after=False, dropout=0.1)
        config = layer.get_config()
        assert SparseGRU.from_config(config).get_config() == config
        cell_config = layer.cell.get_config()
        assert SparseGRUCell.from_config(cell_config).get_config() == cell_config
        model = keras.Sequential([keras.Input((3, 4)), layer])
        cloned = keras.models.clone_model(model)
        for (_, m1), (_, m2) in zip(sparse_weights(model), sparse_weights(cloned)):
            np.testing.assert_array_equal(m1.numpy(), m2.numpy())


class TestModelTools:
    def test_sparse_weights(self):
        model = gru_model()
        pairs = sparse_weights(model)
        assert [w.name for w, _ in pairs] == ["kernel", "recurrent_kernel"]
        assert [int(m.numpy().sum()) for _, m in pairs] == [
            round(0.4 * 4 * 24), round(0.4 * 8 * 24)]

    @pytest.mark.parametrize("reset_after", [False, True])
    def test_summary_flops(self, reset_after):
        model = gru_model(reset_after=reset_after)
        summary = sparsity_summary(model, print_fn=None)
        active_k, active_r = round(0.4 * 96), round(0.4 * 192)
        gru = next(l for l in summary.layers if l["layer"].endswith("gru_cell"))
        assert gru["dense_flops"] == 2 * (96 + 192)
        assert gru["sparse_flops"] == 2 * (active_k + active_r)
        bias = 2 * 24 if reset_after else 24
        assert summary.total_params == active_k + active_r + bias + 8 * 2 + 2
        assert summary.forward_flops == 2 * (active_k + active_r) + 2 * 8 * 2

    def test_distribute_sparsity_per_gate(self):
        model = gru_model()
        result = distribute_sparsity(model, 0.8, "erdos_renyi", per_gate=True)
        pairs = sparse_weights(model)
        total = sum(int(np.prod(w.shape)) for w, _ in pairs)
        assert sum(int(m.numpy().sum()) for _, m in pairs) == round(0.2 * total)
        for w, m in pairs:
            assert len(result[w.path]) == 3
            assert np.all(w.numpy()[m.numpy() == 0] == 0)
        # Erdos-Renyi: an input gate block (4 x 8) is denser than a recurrent
        # one (8 x 8).
        assert result[pairs[0][0].path][0] < result[pairs[1][0].path][0]


class TestBadInput:
    @pytest.mark.parametrize("kwargs,match", [
        ({"sparsity": 1.2}, r"sparsity must be in \[0, 1\), got 1.2"),
        ({"sparsity": "0.5"}, "sparsity must be a number"),
        ({"dropout": 1.5}, r"dropout must be in \[0, 1\), got 1.5"),
        ({"recurrent_dropout": 1.0}, r"recurrent_dropout must be in \[0, 1\), got 1.0"),
        ({"reset_after": "yes"}, "reset_after must be True or False, got 'yes'"),
        ({"mask_seed": -1}, "mask_seed must be a non-negative int, got -1"),
        ({"block": (4,)}, "block must be None or a pair"),
        ({"sparse_kernel": 1}, "sparse_kernel must be True or False, got 1"),
    ])
    def test_arguments(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            SparseGRU(4, **kwargs)
        with pytest.raises(ValueError, match=match):
            SparseGRUCell(4, **kwargs)

    def test_units_and_cudnn(self):
        for units in (0, -2):
            with pytest.raises(ValueError, match=f"units must be a positive int, got {units}"):
                SparseGRU(units)
            with pytest.raises(ValueError, match=f"units must be a positive int, got {units}"):
                SparseGRUCell(units)
        with pytest.raises(ValueError, match="use_cudnn must be one of"):
            SparseGRU(3, use_cudnn="maybe")

    def test_sparsity_dict_keys(self):
        cell = SparseGRUCell(3, sparsity={"kernel": 0.5, "recurrent_kernel": 0.5, "bias": 0.5})
        with pytest.raises(ValueError, match=r"names \['bias'\], which are not sparse weights"):
            cell.build((None, 2))
        cell = SparseGRUCell(3, sparsity={"kernel": [0.5] * 4, "recurrent_kernel": 0.5})
        with pytest.raises(ValueError, match="a list of 3 floats"):
            cell.build((None, 2))
