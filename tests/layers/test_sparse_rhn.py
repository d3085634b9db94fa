import numpy as np
import pytest
import keras

from layer_helpers import rhn_model, sequence_data

from keras_sparse_rnn import distribute_sparsity, sparse_weights, sparsity_summary
from keras_sparse_rnn.layers import SparseRHN, SparseRHNCell


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _np_rhn(x, kernel, recurrents, bias, units, coupled, s0=None,
            input_mask=None, state_mask=None, step_mask=None):
    """Reference RHN from Zilly et al. 2017, eqs. 7-9, one gate at a time.

    h_l = tanh(W_H x [l==1] + R_H,l s_{l-1} + b_H,l)
    t_l = sigmoid(W_T x [l==1] + R_T,l s_{l-1} + b_T,l)
    c_l = 1 - t_l, or sigmoid(W_C x [l==1] + R_C,l s_{l-1} + b_C,l)
    s_l = h_l * t_l + s_{l-1} * c_l
    Dropout masks (variational): the same for every step and micro-layer, on
    x and on the s_{l-1} that enter the products. A masked step (step_mask 0)
    keeps the previous state and output.
    """
    u = units
    w_h, w_t = kernel[:, :u], kernel[:, u:2 * u]
    w_c = None if coupled else kernel[:, 2 * u:]
    batch = x.shape[0]
    s = np.zeros((batch, u)) if s0 is None else s0.astype("float64")
    outputs = []
    for step in range(x.shape[1]):
        x_t = x[:, step] if input_mask is None else x[:, step] * input_mask
        prev = s
        for l, r in enumerate(recurrents):
            r_h, r_t = r[:, :u], r[:, u:2 * u]
            b_h, b_t = bias[l, :u], bias[l, u:2 * u]
            s_in = s if state_mask is None else s * state_mask
            first = l == 0
            h = np.tanh((x_t @ w_h if first else 0) + s_in @ r_h + b_h)
            t = _sigmoid((x_t @ w_t if first else 0) + s_in @ r_t + b_t)
            if coupled:
                c = 1.0 - t
            else:
                c = _sigmoid((x_t @ w_c if first else 0) + s_in @ r[:, 2 * u:]
                             + bias[l, 2 * u:])
            s = h * t + s * c
        if step_mask is not None:
            keep = step_mask[:, step:step + 1]
            s = np.where(keep, s, prev)
        outputs.append(s)
    return np.stack(outputs, axis=1), s


def _weights(cell):
    return (cell.kernel.numpy(), [r.numpy() for r in cell.recurrent_kernels],
            cell.bias.numpy())


class TestNumerics:
    @pytest.mark.parametrize("sparsity", [0.0, 0.6])
    @pytest.mark.parametrize("coupled", [True, False])
    @pytest.mark.parametrize("depth", [1, 3])
    def test_matches_numpy_reference(self, depth, coupled, sparsity):
        rng = np.random.default_rng(depth)
        x = rng.normal(size=(3, 6, 5)).astype("float32")
        s0 = rng.normal(size=(3, 4)).astype("float32")
        layer = SparseRHN(4, depth=depth, coupled=coupled, sparsity=sparsity,
                          mask_seed=5, bias_initializer="uniform",
                          kernel_initializer="uniform",
                          return_sequences=True, return_state=True)
        seq, state = layer(x, initial_state=[s0])
        kernel, recurrents, bias = _weights(layer.cell)
        gates = 2 if coupled else 3
        assert kernel.shape == (5, gates * 4)
        assert [r.shape for r in recurrents] == [(4, gates * 4)] * depth
        assert bias.shape == (depth, gates * 4)
        assert np.count_nonzero(kernel) == round((1 - sparsity) * 5 * gates * 4)
        ref_seq, ref_state = _np_rhn(x, kernel, recurrents, bias, 4, coupled, s0)
        np.testing.assert_allclose(seq, ref_seq, atol=1e-5)
        np.testing.assert_allclose(state, ref_state, atol=1e-5)
        np.testing.assert_allclose(seq[:, -1], state, atol=0)

    def test_input_enters_first_micro_layer_only(self):
        # Depth 2, constant weights, zero biases, s_0 = 0: by hand, with x in
        # micro-layer 1 only.
        layer = SparseRHN(1, depth=2, sparsity=0.0, transform_bias=0.0,
                          kernel_initializer=keras.initializers.Constant(1.0),
                          recurrent_initializer=keras.initializers.Constant(0.5),
                          return_state=True)
        x = np.array([[[2.0]]], dtype="float32")
        _, state = layer(x)
        h1 = np.tanh(2.0)
        t1 = _sigmoid(2.0)
        s1 = h1 * t1
        s2 = np.tanh(0.5 * s1) * _sigmoid(0.5 * s1) + s1 * (1 - _sigmoid(0.5 * s1))
        np.testing.assert_allclose(state, [[s2]], atol=1e-6)

    def test_bias_initial_values(self):
        for coupled, expected in [(True, [0.25, 0.25, -1.5, -1.5]),
                                  (False, [0.25, 0.25, -1.5, -1.5, 1.5, 1.5])]:
            cell = SparseRHNCell(2, depth=3, coupled=coupled, transform_bias=-1.5,
                                 bias_initializer=keras.initializers.Constant(0.25))
            cell.build((None, 4))
            np.testing.assert_array_equal(cell.bias.numpy(), [expected] * 3)
            assert cell.bias.constraint is None

    def test_variational_dropout_one_mask_per_sequence(self):
        # In training the layer uses one input mask and one state mask for the
        # whole sequence, drawn in that order from the cell's seed generator.
        rng = np.random.default_rng(0)
        x = rng.normal(size=(3, 7, 6)).astype("float32")
        layer = SparseRHN(5, depth=3, sparsity=0.5, mask_seed=1, dropout=0.4,
                          recurrent_dropout=0.3, seed=17, return_sequences=True)
        out = layer(x, training=True)
        gen = keras.random.SeedGenerator(seed=17)
        in_mask = keras.random.dropout(np.ones((3, 6), "float32"), 0.4, seed=gen)
        st_mask = keras.random.dropout(np.ones((3, 5), "float32"), 0.3, seed=gen)
        in_mask, st_mask = np.asarray(in_mask), np.asarray(st_mask)
        np.testing.assert_allclose(np.unique(in_mask), [0.0, 1 / 0.6], rtol=1e-6)
        assert 0.0 in st_mask
        kernel, recurrents, bias = _weights(layer.cell)
        ref, _ = _np_rhn(x, kernel, recurrents, bias, 5, True,
                         input_mask=in_mask, state_mask=st_mask)
        np.testing.assert_allclose(out, ref, atol=1e-5)
        # Inference ignores dropout.
        ref_inf, _ = _np_rhn(x, kernel, recurrents, bias, 5, True)
        np.testing.assert_allclose(layer(x), ref_inf, atol=1e-5)
        assert not np.allclose(out, ref_inf, atol=1e-3)


class TestLayerOptions:
    def _layer_and_ref(self, x, **kwargs):
        layer = SparseRHN(4, depth=2, sparsity=0.5, mask_seed=2,
                          bias_initializer="uniform", **kwargs)
        layer.build(x.shape)
        return layer, _weights(layer.cell)

    def test_go_backwards(self):
        x = np.random.default_rng(1).normal(size=(2, 5, 3)).astype("float32")
        layer, (k, r, b) = self._layer_and_ref(x, go_backwards=True,
                                               return_sequences=True)
        ref, _ = _np_rhn(x[:, ::-1], k, r, b, 4, True)
        np.testing.assert_allclose(layer(x), ref, atol=1e-5)

    def test_unroll(self):
        x = np.random.default_rng(2).normal(size=(2, 5, 3)).astype("float32")
        layer, (k, r, b) = self._layer_and_ref(x, unroll=True,
                                               return_sequences=True)
        ref, _ = _np_rhn(x, k, r, b, 4, True)
        np.testing.assert_allclose(layer(x), ref, atol=1e-5)

    def test_stateful(self):
        x = np.random.default_rng(3).normal(size=(2, 6, 3)).astype("float32")
        layer, (k, r, b) = self._layer_and_ref(x[:, :3], stateful=True)
        first, second = layer(x[:, :3]), layer(x[:, 3:])
        ref, _ = _np_rhn(x, k, r, b, 4, True)
        np.testing.assert_allclose(first, ref[:, 2], atol=1e-5)
        np.testing.assert_allclose(second, ref[:, 5], atol=1e-5)
        layer.reset_state()
        np.testing.assert_allclose(layer(x[:, 3:]),
                                   _np_rhn(x[:, 3:], k, r, b, 4, True)[1], atol=1e-5)

    def test_masking_and_initial_state(self):
        rng = np.random.default_rng(4)
        x = rng.normal(size=(2, 5, 3)).astype("float32")
        x[0, 3:] = 0.0
        x[1, 1] = 0.0
        step_mask = np.any(x != 0, axis=-1)
        s0 = rng.normal(size=(2, 4)).astype("float32")
        layer = SparseRHN(4, depth=2, sparsity=0.5, mask_seed=2,
                          return_sequences=True, return_state=True)
        inputs = keras.Input((5, 3))
        model = keras.Model(inputs, layer(keras.layers.Masking()(inputs)))
        weights = _weights(layer.cell)
        out_seq, out_state = model(x)
        ref_seq, ref_state = _np_rhn(x, *weights, 4, True, step_mask=step_mask)
        np.testing.assert_allclose(out_seq, ref_seq, atol=1e-5)
        np.testing.assert_allclose(out_state, ref_state, atol=1e-5)
        # Keras populates `mask` only when the inputs are the one tensor
        # argument: with an initial state the mask is passed explicitly.
        out_seq, out_state = layer(x, initial_state=[s0], mask=step_mask)
        ref_seq, ref_state = _np_rhn(x, *weights, 4, True, s0, step_mask=step_mask)
        np.testing.assert_allclose(out_seq, ref_seq, atol=1e-5)
        np.testing.assert_allclose(out_state, ref_state, atol=1e-5)

    def test_cell_in_rnn_equals_layer(self):
        x = np.random.default_rng(5).normal(size=(2, 4, 3)).astype("float32")
        layer = SparseRHN(4, depth=2, mask_seed=9)
        rnn = keras.layers.RNN(SparseRHNCell(4, depth=2, mask_seed=9))
        layer.build(x.shape)
        rnn.build(x.shape)
        for a, b in zip(layer.cell.weights, rnn.cell.weights):
            assert a.name == b.name
            b.assign(a)
        np.testing.assert_allclose(layer(x), rnn(x), atol=0)


class TestMasks:
    def test_exact_counts_names_and_seed(self):
        cell = SparseRHNCell(6, depth=3, sparsity=0.67, mask_seed=3)
        cell.build((None, 5))
        assert [w.name for w, _ in cell.sparse_weights] == [
            "kernel", "recurrent_kernel_0", "recurrent_kernel_1",
            "recurrent_kernel_2"]
        assert [m.name for w, m in cell.sparse_weights] == [
            w.name + "_mask" for w, _ in cell.sparse_weights]
        counts = [int(m.numpy().sum()) for _, m in cell.sparse_weights]
        assert counts == [round(0.33 * 5 * 12)] + [round(0.33 * 6 * 12)] * 3
        for w, m in cell.sparse_weights:
            assert np.all(w.numpy()[m.numpy() == 0] == 0)
            assert np.all(w.numpy()[m.numpy() == 1] != 0)
        # Each micro-layer draws its own mask.
        assert not np.array_equal(cell.recurrent_kernel_0_mask.numpy(),
                                  cell.recurrent_kernel_1_mask.numpy())
        again = SparseRHNCell(6, depth=3, sparsity=0.67, mask_seed=3)
        again.build((None, 5))
        for (_, m1), (_, m2) in zip(cell.sparse_weights, again.sparse_weights):
            np.testing.assert_array_equal(m1.numpy(), m2.numpy())

    def test_gates_and_per_gate_sparsity(self):
        cell = SparseRHNCell(4, depth=2, coupled=False, mask_seed=0, sparsity={
            "kernel": [0.0, 0.5, 0.75], "recurrent_kernel": 0.5,
            "recurrent_kernel_1": [0.25, 0.5, 0.75]})
        cell.build((None, 8))
        info = {s.name: s for s in cell.get_sparse_weight_info()}
        assert all(s.gates == 3 and s.gate_names == ("H", "T", "C")
                   for s in info.values())
        k = cell.kernel_mask.numpy()
        assert [int(k[:, g * 4:(g + 1) * 4].sum()) for g in range(3)] == [32, 16, 8]
        assert int(cell.recurrent_kernel_0_mask.numpy().sum()) == 24
        r1 = cell.recurrent_kernel_1_mask.numpy()
        assert [int(r1[:, g * 4:(g + 1) * 4].sum()) for g in range(3)] == [12, 8, 4]
        assert cell.expected_active_count("recurrent_kernel_1") == 24
        coupled = SparseRHNCell(4, depth=1, mask_seed=0)
        coupled.build((None, 8))
        assert coupled.get_sparse_weight_info()[0].gate_names == ("H", "T")

    def test_only_selected_matrices_are_sparse(self):
        cell = SparseRHNCell(4, depth=2, sparse_kernel=False, mask_seed=0)
        cell.build((None, 3))
        assert [w.name for w, _ in cell.sparse_weights] == [
            "recurrent_kernel_0", "recurrent_kernel_1"]
        assert cell.kernel.constraint is None

    def test_block_masks_are_whole_blocks(self):
        cell = SparseRHNCell(8, depth=2, sparsity=0.75, block=(1, 4), mask_seed=0)
        cell.build((None, 12))
        assert [w.name for w, _ in cell.sparse_weights] == [
            "kernel", "recurrent_kernel_0", "recurrent_kernel_1"]
        for w, m in cell.sparse_weights:
            blocks = m.numpy().reshape(m.shape[0] // 4, 4, m.shape[1])
            assert np.all(blocks.min(axis=1) == blocks.max(axis=1))
        assert int(cell.kernel_mask.numpy().sum()) == 4 * round(0.25 * 3 * 16)
        assert int(cell.recurrent_kernel_1_mask.numpy().sum()) == 4 * round(0.25 * 2 * 16)


class TestTraining:
    def test_save_load_round_trip(self, tmp_path):
        model = rhn_model(coupled=False)
        model.compile("adam", "mse")
        x, y = sequence_data()
        model.fit(x, y, epochs=1, verbose=0)
        path = tmp_path / "rhn.keras"
        model.save(path)
        loaded = keras.models.load_model(path)
        assert isinstance(loaded.layers[0], SparseRHN)
        for a, b in zip(model.get_weights(), loaded.get_weights()):
            np.testing.assert_array_equal(a, b)
        for (w1, m1), (w2, m2) in zip(sparse_weights(model), sparse_weights(loaded)):
            assert (w1.name, m1.name) == (w2.name, m2.name)
            np.testing.assert_array_equal(m1.numpy(), m2.numpy())
        np.testing.assert_array_equal(model.predict(x, verbose=0),
                                      loaded.predict(x, verbose=0))

    def test_config_round_trip_and_clone(self):
        layer = SparseRHN(4, depth=2, coupled=False, transform_bias=-1.0,
                          dropout=0.1, recurrent_dropout=0.2, mask_seed=4,
                          sparsity={"kernel": 0.3, "recurrent_kernel": [0.5, 0.6, 0.7]},
                          return_sequences=True, go_backwards=True)
        config = layer.get_config()
        assert config["depth"] == 2 and config["transform_bias"] == -1.0
        clone = SparseRHN.from_config(config)
        assert clone.get_config() == config
        cell_config = layer.cell.get_config()
        assert SparseRHNCell.from_config(cell_config).get_config() == cell_config
        model = keras.Sequential([keras.Input((3, 4)), layer])
        cloned = keras.models.clone_model(model)
        for (_, m1), (_, m2) in zip(sparse_weights(model), sparse_weights(cloned)):
            np.testing.assert_array_equal(m1.numpy(), m2.numpy())


class TestModelTools:
    def test_sparse_weights(self):
        model = rhn_model(depth=3, units=8, coupled=True)
        pairs = sparse_weights(model)
        assert [w.name for w, _ in pairs] == ["kernel"] + [
            f"recurrent_kernel_{l}" for l in range(3)]
        assert [(w.path, m.path) for w, m in pairs] == [
            (w.path, m.path) for w, m in model.layers[0].sparse_weights]
        assert [int(m.numpy().sum()) for _, m in pairs] == [
            round(0.4 * 64)] + [round(0.4 * 128)] * 3

    def test_summary_flops(self):
        model = rhn_model(depth=3, units=8, coupled=True)
        summary = sparsity_summary(model, print_fn=None)
        # Input kernel 4x16 and three recurrent kernels 8x16, sparsity 0.6:
        # each matrix is used once per token (the recurrent ones once per
        # micro-layer), 2 FLOPs per weight; the (3, 16) bias is no product.
        active_k, active_r = round(0.4 * 64), round(0.4 * 128)
        assert [m["active"] for m in summary.matrices] == [active_k] + [active_r] * 3
        rhn = next(l for l in summary.layers if l["layer"].endswith("rhn_cell"))
        assert rhn["dense_flops"] == 2 * (64 + 3 * 128)
        assert rhn["sparse_flops"] == 2 * (active_k + 3 * active_r)
        dense_head = 2 * 8 * 2
        assert summary.forward_flops == 2 * (active_k + 3 * active_r) + dense_head
        assert summary.total_params == active_k + 3 * active_r + 3 * 16 + 8 * 2 + 2

    def test_distribute_sparsity_per_gate(self):
        model = rhn_model(depth=2, units=8, coupled=False)
        result = distribute_sparsity(model, 0.8, "erdos_renyi", per_gate=True)
        pairs = sparse_weights(model)
        total = sum(int(np.prod(w.shape)) for w, _ in pairs)
        assert sum(int(m.numpy().sum()) for _, m in pairs) == round(0.2 * total)
        for w, m in pairs:
            assert len(result[w.path]) == 3
            assert np.all(w.numpy()[m.numpy() == 0] == 0)
            assert 0 < int(m.numpy().sum()) < int(np.prod(w.shape))
        # Erdos-Renyi: an input gate block (4 x 8: (4 + 8) / 32) is denser than
        # a recurrent one (8 x 8: (8 + 8) / 64).
        k, r = result[pairs[0][0].path][0], result[pairs[1][0].path][0]
        assert k < r


class TestBadInput:
    @pytest.mark.parametrize("kwargs,match", [
        ({"depth": 0}, "depth must be a positive int, got 0"),
        ({"depth": 2.0}, "depth must be a positive int, got 2.0"),
        ({"depth": True}, "depth must be a positive int, got True"),
        ({"transform_bias": "-2"}, "transform_bias must be a finite number, got '-2' of type str"),
        ({"transform_bias": None}, "transform_bias must be a finite number, got None"),
        ({"transform_bias": float("inf")}, "transform_bias must be a finite number, got inf"),
        ({"sparsity": 1.0}, r"sparsity must be in \[0, 1\), got 1.0"),
        ({"sparsity": -0.1}, r"sparsity must be in \[0, 1\), got -0.1"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
        ({"recurrent_dropout": -0.5}, r"recurrent_dropout must be in \[0, 1\), got -0.5"),
        ({"coupled": "yes"}, "coupled must be True or False, got 'yes'"),
        ({"mask_seed": -1}, "mask_seed must be a non-negative int, got -1"),
        ({"block": (4,)}, "block must be None or a pair"),
    ])
    def test_arguments(self, kwargs, match):
        args = {"depth": 2, **kwargs}
        with pytest.raises(ValueError, match=match):
            SparseRHN(4, **args)
        with pytest.raises(ValueError, match=match):
            SparseRHNCell(4, **args)

    def test_units(self):
        for units in (0, -3, 2.5):
            with pytest.raises(ValueError, match=f"units must be a positive int, got {units}"):
                SparseRHN(units, depth=1)

    def test_sparsity_dict_keys(self):
        cell = SparseRHNCell(3, depth=2, sparsity={"kernel": 0.5, "recurrent_kernel_0": 0.5})
        with pytest.raises(ValueError, match="without an entry for the sparse weight 'recurrent_kernel_1'"):
            cell.build((None, 2))
        cell = SparseRHNCell(3, depth=2, sparsity={"kernel": 0.5, "recurrent_kernel": 0.5,
                                                    "recurrent_kernel_2": 0.5})
        with pytest.raises(ValueError, match=r"names \['recurrent_kernel_2'\], which are not sparse"):
            cell.build((None, 2))
        cell = SparseRHNCell(3, depth=1, sparsity={"kernel": [0.5, 0.5, 0.5],
                                                    "recurrent_kernel": 0.5})
        with pytest.raises(ValueError, match="a list of 2 floats"):
            cell.build((None, 2))

    def test_block_must_divide_units(self):
        with pytest.raises(ValueError, match="cannot be cut into blocks"):
            SparseRHNCell(6, depth=1, block=(1, 4)).build((None, 8))
