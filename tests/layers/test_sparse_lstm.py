import numpy as np
import pytest
import keras

from keras_sparse_rnn import SparseLSTM, SparseLSTMCell, sparse_weights


def _np_lstm(x, kernel, recurrent_kernel, bias, units):
    """Reference LSTM (Keras gate order i, f, c, o; sigmoid/tanh)."""
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))
    h = np.zeros((x.shape[0], units))
    c = np.zeros((x.shape[0], units))
    outputs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent_kernel + bias
        i, f, g, o = np.split(z, 4, axis=-1)
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1), h, c


def _copy_dense_weights(dense_layer, sparse_layer):
    for src, dst in zip(dense_layer.cell.trainable_weights,
                        sparse_layer.cell.trainable_weights):
        dst.assign(src)


class TestMasks:
    def test_exact_counts_and_seed(self):
        cell = SparseLSTMCell(6, sparsity=0.67, mask_seed=3)
        cell.build((None, 5))
        counts = [int(m.numpy().sum()) for _, m in cell.sparse_weights]
        assert counts == [round(0.33 * 5 * 24), round(0.33 * 6 * 24)]
        assert [m.name for _, m in cell.sparse_weights] == [
            "kernel_mask", "recurrent_kernel_mask"]
        again = SparseLSTMCell(6, sparsity=0.67, mask_seed=3)
        again.build((None, 5))
        for (_, m1), (_, m2) in zip(cell.sparse_weights, again.sparse_weights):
            np.testing.assert_array_equal(m1.numpy(), m2.numpy())
        other = SparseLSTMCell(6, sparsity=0.67, mask_seed=4)
        other.build((None, 5))
        assert not np.array_equal(cell.sparse_weights[0][1].numpy(),
                                  other.sparse_weights[0][1].numpy())

    def test_weights_zero_outside_mask_at_build(self):
        cell = SparseLSTMCell(8, sparsity=0.9, mask_seed=0)
        cell.build((None, 4))
        assert [(w.name, m.name) for w, m in cell.sparse_weights] == [
            ("kernel", "kernel_mask"), ("recurrent_kernel", "recurrent_kernel_mask")]
        for w, m in cell.sparse_weights:
            assert np.all(w.numpy()[m.numpy() == 0] == 0)
            assert np.all(w.numpy()[m.numpy() == 1] != 0)

    def test_only_selected_matrices_are_sparse(self):
        cell = SparseLSTMCell(4, sparse_recurrent_kernel=False, mask_seed=0)
        cell.build((None, 3))
        assert [w.name for w, _ in cell.sparse_weights] == ["kernel"]
        assert cell.bias.constraint is None

    def test_global_seed_draws_reproducible_mask_seed(self):
        keras.utils.set_random_seed(7)
        a = SparseLSTMCell(4)
        keras.utils.set_random_seed(7)
        b = SparseLSTMCell(4)
        assert a.mask_seed == b.mask_seed


class TestNumerics:
    def test_matches_numpy_reference_with_masked_weights(self):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(2, 5, 3)).astype("float32")
        layer = SparseLSTM(4, sparsity=0.5, mask_seed=11, return_sequences=True,
                           return_state=True, bias_initializer="uniform")
        seq, h, c = layer(x)
        k, rk, b = [w.numpy() for w in layer.cell.trainable_weights]
        assert np.count_nonzero(k) == round(0.5 * 3 * 16)
        ref_seq, ref_h, ref_c = _np_lstm(x, k, rk, b, 4)
        np.testing.assert_allclose(seq, ref_seq, atol=1e-5)
        np.testing.assert_allclose(h, ref_h, atol=1e-5)
        np.testing.assert_allclose(c, ref_c, atol=1e-5)

    # Fixed weights, masks and input; the expected numbers were computed once
    # with NumPy (float64) from the LSTM equations, gate order i, f, c, o.
    KERNEL = [[0.5, 0.0, -0.4, 0.0], [0.0, 0.3, 0.0, 0.7], [-0.2, 0.6, 0.0, 0.0]]
    KERNEL_MASK = [[1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 0, 0]]
    RECURRENT = [[0.0, 0.9, -0.5, 0.0]]
    RECURRENT_MASK = [[0, 1, 1, 0]]
    BIAS = [0.1, -0.2, 0.3, 0.05]
    INPUT = [[[1.0, -0.5, 0.25], [0.5, 1.0, -1.0], [-0.75, 0.2, 0.6]]]

    @pytest.mark.parametrize("go_backwards,sequence,h,c", [
        (False, [-0.0268607626, 0.0326566074, 0.1281230041], 0.1281230041,
         0.2384968845),
        (True, [0.1165131104, 0.0767306385, -0.0145337609], -0.0145337609,
         -0.0341655735),
    ])
    def test_exact_values_fixed_weights(self, go_backwards, sequence, h, c):
        layer = SparseLSTM(1, sparsity=0.5, mask_seed=0, return_sequences=True,
                           return_state=True, go_backwards=go_backwards)
        layer.build((1, 3, 3))
        values = {"kernel": self.KERNEL, "recurrent_kernel": self.RECURRENT,
                  "bias": self.BIAS, "kernel_mask": self.KERNEL_MASK,
                  "recurrent_kernel_mask": self.RECURRENT_MASK}
        layer.set_weights([np.array(values[v.name], "float32")
                           for v in layer.weights])
        out_seq, out_h, out_c = layer(np.array(self.INPUT, "float32"))
        np.testing.assert_allclose(out_seq, np.reshape(sequence, (1, 3, 1)),
                                   atol=1e-6)
        np.testing.assert_allclose(out_h, [[h]], atol=1e-6)
        np.testing.assert_allclose(out_c, [[c]], atol=1e-6)


OPTIONS = [
    {},
    {"return_sequences": True},
    {"return_state": True},
    {"go_backwards": True, "return_sequences": True},
    {"unroll": True, "return_sequences": True},
    {"use_cudnn": False},
    {"activation": "relu", "recurrent_activation": "hard_sigmoid"},
    {"unit_forget_bias": False, "use_bias": False},
    {"dropout": 0.3, "recurrent_dropout": 0.2},  # inference: no dropout
]


class TestEquivalenceWithKeras:
    @pytest.mark.parametrize("options", OPTIONS)
    def test_sparsity_zero_equals_keras_lstm(self, options):
        x = np.random.default_rng(1).normal(size=(3, 6, 5)).astype("float32")
        dense = keras.layers.LSTM(7, **options)
        sparse = SparseLSTM(7, sparsity=0.0, **options)
        dense.build(x.shape)
        sparse.build(x.shape)
        _copy_dense_weights(dense, sparse)
        for a, b in zip(keras.tree.flatten(dense(x)), keras.tree.flatten(sparse(x))):
            np.testing.assert_allclose(a, b, atol=1e-6)

    def test_masking_and_initial_state(self):
        x = np.random.default_rng(2).normal(size=(2, 5, 3)).astype("float32")
        mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)
        s = [np.random.default_rng(3).normal(size=(2, 4)).astype("float32")] * 2
        dense = keras.layers.LSTM(4, return_sequences=True)
        sparse = SparseLSTM(4, sparsity=0.0, return_sequences=True)
        dense.build(x.shape)
        sparse.build(x.shape)
        _copy_dense_weights(dense, sparse)
        # Keras fills `mask` in only when the inputs are the sole tensor
        # argument, so pass it explicitly beside the initial state.
        out_dense = dense(x, mask=mask, initial_state=s)
        out_sparse = sparse(x, mask=mask, initial_state=s)
        np.testing.assert_allclose(out_dense, out_sparse, atol=1e-6)
        # The mask took effect: masked steps repeat the last output.
        np.testing.assert_allclose(out_sparse[0, 3], out_sparse[0, 2])
        unmasked = sparse(x, initial_state=s)
        assert not np.allclose(unmasked[0, 3], out_sparse[0, 3])

    def test_stateful(self):
        x = np.random.default_rng(4).normal(size=(2, 3, 3)).astype("float32")
        dense = keras.layers.LSTM(4, stateful=True)
        sparse = SparseLSTM(4, sparsity=0.0, stateful=True)
        dense.build(x.shape)
        sparse.build(x.shape)
        _copy_dense_weights(dense, sparse)
        outputs = []
        for _ in range(2):  # the second call starts from the carried state
            outputs.append(sparse(x))
            np.testing.assert_allclose(dense(x), outputs[-1], atol=1e-6)
        assert not np.allclose(outputs[0], outputs[1])
        sparse.reset_states()
        np.testing.assert_allclose(sparse(x), outputs[0], atol=1e-6)

    def test_cell_in_rnn_equals_keras_cell(self):
        x = np.random.default_rng(5).normal(size=(2, 4, 3)).astype("float32")
        dense = keras.layers.RNN(keras.layers.LSTMCell(5))
        sparse = keras.layers.RNN(SparseLSTMCell(5, sparsity=0.0))
        dense.build(x.shape)
        sparse.build(x.shape)
        _copy_dense_weights(dense, sparse)
        np.testing.assert_allclose(dense(x), sparse(x), atol=1e-6)


class TestContainers:
    def test_stacked_bidirectional_time_distributed_nested(self):
        inner = keras.Sequential([
            keras.Input((6, 4)),
            keras.layers.Bidirectional(keras.layers.RNN(
                keras.layers.StackedRNNCells([SparseLSTMCell(3, mask_seed=1),
                                              SparseLSTMCell(3, mask_seed=2)]),
                return_sequences=True)),
        ])
        from keras_sparse_rnn import SparseDense
        outer = keras.Sequential([
            keras.Input((6, 4)), inner,
            keras.layers.TimeDistributed(SparseDense(2, mask_seed=3))])
        pairs = sparse_weights(outer)
        # 2 directions x 2 cells x 2 matrices, plus the dense kernel
        assert len(pairs) == 9
        assert all(m.name == w.name + "_mask" for w, m in pairs)
        assert outer(np.zeros((1, 6, 4))).shape == (1, 6, 2)

    @pytest.mark.parametrize("wrap", ["layer", "cell"])
    def test_bidirectional_directions_have_their_own_masks(self, wrap):
        def build():
            if wrap == "layer":
                rnn = SparseLSTM(8, sparsity=0.5, mask_seed=4)
            else:
                rnn = keras.layers.RNN(SparseLSTMCell(8, sparsity=0.5, mask_seed=4))
            return keras.Sequential([keras.Input((5, 6)),
                                     keras.layers.Bidirectional(rnn)])

        first, second = build(), build()
        masks = [m.numpy() for _, m in sparse_weights(first)]
        paths = [w.path for w, _ in sparse_weights(first)]
        backward = [m for m, p in zip(masks, paths) if "backward_" in p]
        forward = [m for m, p in zip(masks, paths) if "forward_" in p]
        assert len(backward) == len(forward) == 2
        for b, f in zip(backward, forward):
            assert b.sum() == f.sum() and not np.array_equal(b, f)
        # The same seed still gives the same masks, direction by direction.
        for a, b in zip(masks, [m.numpy() for _, m in sparse_weights(second)]):
            np.testing.assert_array_equal(a, b)

    def test_no_sparse_layer_raises(self):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        with pytest.raises(ValueError, match="has no sparse layer"):
            sparse_weights(model)
        with pytest.raises(ValueError, match="must be a keras.Model"):
            sparse_weights("model")


class TestBadInput:
    @pytest.mark.parametrize("value,match", [
        (1.2, r"sparsity must be in \[0, 1\), got 1.2"),
        (1.0, r"sparsity must be in \[0, 1\), got 1.0"),
        (-0.1, r"sparsity must be in \[0, 1\), got -0.1"),
        (float("nan"), r"sparsity must be in \[0, 1\)"),
        (True, "sparsity must be a number"),
        ("0.5", "sparsity must be a number"),
    ])
    def test_sparsity(self, value, match):
        with pytest.raises(ValueError, match=match):
            SparseLSTM(4, sparsity=value)

    def test_other_arguments(self):
        with pytest.raises(ValueError, match="units must be a positive int, got 0"):
            SparseLSTMCell(0)
        with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got 1.5"):
            SparseLSTMCell(3, dropout=1.5)
        with pytest.raises(ValueError, match="mask_seed must be"):
            SparseLSTMCell(3, mask_seed=-1)
        with pytest.raises(ValueError, match="block must be None or a pair"):
            SparseLSTMCell(3, block=(4,))
        with pytest.raises(ValueError, match="sparse_kernel must be True or False"):
            SparseLSTMCell(3, sparse_kernel="yes")
        with pytest.raises(ValueError, match="use_cudnn must be one of"):
            SparseLSTM(3, use_cudnn="maybe")

    def test_sparsity_dict_keys(self):
        cell = SparseLSTMCell(3, sparsity={"kernel": 0.5})
        with pytest.raises(ValueError, match="without an entry for the sparse weight 'recurrent_kernel'"):
            cell.build((None, 2))
        cell = SparseLSTMCell(3, sparsity={"kernel": 0.5, "recurrent_kernel": 0.5, "bias": 0.5})
        with pytest.raises(ValueError, match=r"names \['bias'\], which are not sparse weights"):
            cell.build((None, 2))
        cell = SparseLSTMCell(3, sparsity={"kernel": [0.5, 0.5], "recurrent_kernel": 0.5})
        with pytest.raises(ValueError, match="a list of 4 floats"):
            cell.build((None, 2))

    def test_block_must_divide_input_dim(self):
        with pytest.raises(ValueError, match="cannot be cut into blocks"):
            SparseLSTMCell(4, block=(1, 4)).build((None, 6))


class TestBlocks:
    def test_block_masks_are_whole_blocks(self):
        cell = SparseLSTMCell(8, sparsity=0.75, block=(1, 4), mask_seed=0)
        cell.build((None, 12))
        for w, m in cell.sparse_weights:
            blocks = m.numpy().reshape(m.shape[0] // 4, 4, m.shape[1])
            assert np.all(blocks.min(axis=1) == blocks.max(axis=1))
        assert int(cell.kernel_mask.numpy().sum()) == 4 * round(0.25 * 3 * 32)
