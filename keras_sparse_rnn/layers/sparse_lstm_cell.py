"""The sparse LSTM cell: `keras.layers.LSTMCell` with masked kernels."""

import keras
from keras import ops

from keras_sparse_rnn.layers.recurrent import (SparseCellMixin, check_dropout_rates,
                                               gate_inputs, static_rows)
from keras_sparse_rnn.validation import check_int

LSTM_GATES = ("i", "f", "c", "o")


@keras.saving.register_keras_serializable(package="keras_sparse_rnn")
class SparseLSTMCell(SparseCellMixin, keras.layers.LSTMCell):
    """Cell class for a sparse LSTM layer.

    A drop-in for `keras.layers.LSTMCell` whose kernel and recurrent kernel
    hold a fixed number of non-zero weights. Each sparse weight has a binary,
    non-trainable mask (`kernel_mask`, `recurrent_kernel_mask`) with exactly
    `round((1 - sparsity) * size)` ones; the weights outside it are zero at
    build time and stay exactly zero after every optimizer step (the mask is
    applied by the weight's constraint, inside the compiled train step), so
    the per-time-step computation is the dense cell's, unchanged. Biases are
    dense. Use it in `keras.layers.RNN`, `keras.layers.StackedRNNCells` or
    `keras.layers.Bidirectional(keras.layers.RNN(...))`; `SparseLSTM` is the
    whole-sequence layer.

    Args:
        units: Positive integer, dimensionality of the output space.
        sparsity: Fraction of zeros of each sparse matrix, in [0, 1).
            A dict `{"kernel": s, "recurrent_kernel": s}` gives each its own;
            a value may be a list of 4 floats, one per gate (i, f, c, o), as
            `keras_sparse_rnn.distribute_sparsity(..., per_gate=True)` sets.
            Defaults to `0.5`.
        sparse_kernel: Whether the input kernel is sparse. Defaults to `True`.
        sparse_recurrent_kernel: Whether the recurrent kernel is sparse.
            Defaults to `True`.
        mask_seed: Integer seed of the initial masks; each matrix draws from
            it and its own name, so the same seed gives the same masks.
            `None` draws one from NumPy's global generator (which
            `keras.utils.set_random_seed` seeds) and stores it in the config.
        block: `None` (any weight can be on or off); `(1, n)`, e.g. `(1, 4)`:
            weights are on or off in blocks of n consecutive inputs of one
            output, the structure LiteRT's `FULLY_CONNECTED` runs sparse
            without a `DENSIFY` op; or `(b, b)` with b > 1, e.g. `(16, 16)`:
            square blocks with *constant fan-in*, every block column (b
            outputs) of a matrix has the same number of active input blocks,
            `round((1 - sparsity) * ceil(n_in / b))`, so that the products can
            be computed from the active blocks only (`compute_path`). Sizes
            b does not divide are padded inside the layer (the last block
            row, and the last block column of each gate, are partial; the
            count is exact in blocks). Counts, pruning and growth are then
            per block. A `(b, b)` block is also b `(1, b)` blocks along the
            input, so the exported kernel runs sparse in LiteRT.
        compute_path: How the products with the sparse kernels are computed.
            `"masked_dense"`: the dense product with the masked weight (the
            mask is applied by assignment, so this is Keras's own cell).
            `"blocks"`: from the active b x b blocks only (`block=(b, b)`
            required): each sequence gathers them once and each time step
            multiplies the input's blocks by them in one batched matmul, so
            the step's cost falls with the density. The outputs and the
            gradients inside the masks are the masked-dense path's (within
            float32 rounding); the gradient outside the active blocks is
            zero (never computed), so a grow criterion that reads the
            optimizer's momentum there is refused, and RigL takes its
            gradient masked-dense. `"auto"` (default): the block path where
            it was measured faster on a 2-core CPU (`AUTO_MAX_DENSITY` in
            `keras_sparse_rnn.layers.recurrent`: constant fan-in blocks at a
            density of at most that value for their block size), else
            masked-dense. A compiled function keeps the count of active
            blocks it was traced with: a denser mask set afterwards warns
            and makes it return NaN until it is traced again.
        **kwargs: every argument of `keras.layers.LSTMCell` (`activation`,
            `recurrent_activation`, `use_bias`, the initializers,
            regularizers and constraints, `unit_forget_bias`, `dropout`,
            `recurrent_dropout`, `seed`, ...), with its meaning and default;
            `dropout` and `recurrent_dropout` must be in [0, 1). A constraint
            of yours is applied to the weights first, then the mask.

    Call arguments:
        inputs: A 2D tensor, with shape `(batch, features)`.
        states: A 2D tensor with shape `(batch, units)`, which is the state
            from the previous time step.
        training: Python boolean indicating whether the layer should behave in
            training mode or in inference mode. Only relevant when `dropout` or
            `recurrent_dropout` is used.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> rnn = keras.layers.RNN(SparseLSTMCell(4, sparsity=0.75, mask_seed=1))
    >>> output = rnn(inputs)
    >>> output.shape
    (32, 4)
    >>> [int(m.numpy().sum()) for _, m in rnn.cell.sparse_weights]
    [32, 16]
    """

    def __init__(self, units, sparsity=0.5, sparse_kernel=True,
                 sparse_recurrent_kernel=True, mask_seed=None, block=None,
                 compute_path="auto", **kwargs):
        units = check_int(units, "units", minimum=1)
        check_dropout_rates(kwargs)
        super().__init__(units, **kwargs)
        self._init_cell_sparsity(sparsity, sparse_kernel,
                                 sparse_recurrent_kernel, mask_seed, block,
                                 compute_path)

    def build(self, input_shape):
        super().build(input_shape)
        self._mask_planned_weights(4, LSTM_GATES)

    def call(self, inputs, states, training=False):
        if not self.block_path_weights(static_rows(inputs)):
            return super().call(inputs, states, training=training)
        return self._call_with_products(self._block_step, inputs, states, training)

    def _block_step(self, inputs, states, training):
        """`keras.layers.LSTMCell.call` with its products by `_product`."""
        h_tm1, c_tm1 = states[0], states[1]
        if self.implementation == 1:
            xs = gate_inputs(inputs, training, self.dropout, self.get_dropout_mask, 4)
            hs = gate_inputs(h_tm1, training, self.recurrent_dropout,
                             self.get_recurrent_dropout_mask, 4)
            u = self.units
            z = []
            for g, (x, h) in enumerate(zip(xs, hs)):
                cols = slice(g * u, (g + 1) * u)
                z_g = self._product(x, "kernel", cols) + self._product(
                    h, "recurrent_kernel", cols)
                z.append(z_g + self.bias[cols] if self.use_bias else z_g)
        else:
            x = gate_inputs(inputs, training, self.dropout, self.get_dropout_mask, 1)[0]
            z = self._product(x, "kernel") + self._product(h_tm1, "recurrent_kernel")
            if self.use_bias:
                z = z + self.bias
            z = ops.split(z, 4, axis=1)
        # `keras.layers.LSTMCell`'s gates, op for op.
        z0, z1, z2, z3 = z
        i = self.recurrent_activation(z0)
        f = self.recurrent_activation(z1)
        c = f * c_tm1 + i * self.activation(z2)
        o = self.recurrent_activation(z3)
        h = o * self.activation(c)
        return h, [h, c]
