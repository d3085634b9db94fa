"""The sparse GRU cell: `keras.layers.GRUCell` with masked kernels."""

import keras
from keras import ops

from keras_sparse_rnn.layers.recurrent import (SparseCellMixin, check_dropout_rates,
                                               gate_inputs, static_rows)
from keras_sparse_rnn.validation import check_bool, check_int

GRU_GATES = ("z", "r", "h")


@keras.saving.register_keras_serializable(package="keras_sparse_rnn")
class SparseGRUCell(SparseCellMixin, keras.layers.GRUCell):
    """Cell class for a sparse GRU layer.

    A drop-in for `keras.layers.GRUCell` whose kernel `(input_dim, 3 * units)`
    and recurrent kernel `(units, 3 * units)` hold a fixed number of non-zero
    weights. Each sparse weight has a binary, non-trainable mask
    (`kernel_mask`, `recurrent_kernel_mask`) with exactly
    `round((1 - sparsity) * size)` ones; the weights outside it are zero at
    build time and stay exactly zero after every optimizer step (the mask is
    applied by the weight's constraint, inside the compiled train step), so
    the per-time-step computation is the dense cell's, unchanged, for both
    `reset_after` conventions. Biases are dense. The gate blocks (z, r, h) of
    the packed kernels are the gates `DynamicSparsity(redistribution="gates")`
    and `distribute_sparsity(..., per_gate=True)` see. Use it in
    `keras.layers.RNN`, `keras.layers.StackedRNNCells` or
    `keras.layers.Bidirectional(keras.layers.RNN(...))`; `SparseGRU` is the
    whole-sequence layer.

    Args:
        units: Positive integer, dimensionality of the output space.
        sparsity: Fraction of zeros of each sparse matrix, in [0, 1).
            A dict `{"kernel": s, "recurrent_kernel": s}` gives each its own;
            a value may be a list of 3 floats, one per gate (z, r, h).
            Defaults to `0.5`.
        sparse_kernel: Whether the input kernel is sparse. Defaults to `True`.
        sparse_recurrent_kernel: Whether the recurrent kernel is sparse.
            Defaults to `True`.
        mask_seed: Integer seed of the initial masks; each matrix draws from
            it and its own name, so the same seed gives the same masks.
            `None` draws one from NumPy's global generator (which
            `keras.utils.set_random_seed` seeds) and stores it in the config.
        block: `None`, `(1, n)` (blocks of n consecutive inputs of one
            output, for LiteRT) or `(b, b)` (square blocks of constant
            fan-in, padded where b does not divide): see `SparseLSTMCell`.
        compute_path: `"auto"` (default), `"masked_dense"` or `"blocks"`:
            whether the products are computed from the active b x b blocks
            only; see `SparseLSTMCell`. Both `reset_after` conventions and
            both `implementation`s have a block path.
        **kwargs: every argument of `keras.layers.GRUCell` (`activation`,
            `recurrent_activation`, `use_bias`, the initializers,
            regularizers and constraints, `dropout`, `recurrent_dropout`,
            `reset_after`, `seed`, ...), with its meaning and default;
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
    >>> rnn = keras.layers.RNN(SparseGRUCell(4, sparsity=0.75, mask_seed=1))
    >>> output = rnn(inputs)
    >>> output.shape
    (32, 4)
    >>> [int(m.numpy().sum()) for _, m in rnn.cell.sparse_weights]
    [24, 12]
    """

    def __init__(self, units, sparsity=0.5, sparse_kernel=True,
                 sparse_recurrent_kernel=True, mask_seed=None, block=None,
                 compute_path="auto", **kwargs):
        units = check_int(units, "units", minimum=1)
        check_dropout_rates(kwargs)
        check_bool(kwargs.get("reset_after", True), "reset_after")
        super().__init__(units, **kwargs)
        self._init_cell_sparsity(sparsity, sparse_kernel,
                                 sparse_recurrent_kernel, mask_seed, block,
                                 compute_path)

    def build(self, input_shape):
        super().build(input_shape)
        self._mask_planned_weights(3, GRU_GATES)

    def call(self, inputs, states, training=False):
        if not self.block_path_weights(static_rows(inputs)):
            return super().call(inputs, states, training=training)
        return self._call_with_products(self._block_step, inputs, states, training)

    def _block_step(self, inputs, states, training):
        """`keras.layers.GRUCell.call` with its products by `_product`."""
        nested = keras.tree.is_nested(states)
        h_tm1 = states[0] if nested else states
        u = self.units
        gates = [slice(g * u, (g + 1) * u) for g in range(3)]
        xs = gate_inputs(inputs, training, self.dropout, self.get_dropout_mask, 3)
        hs = gate_inputs(h_tm1, training, self.recurrent_dropout,
                         self.get_recurrent_dropout_mask, 3)
        input_bias = recurrent_bias = None
        if self.use_bias:
            input_bias = self.bias[0] if self.reset_after else self.bias
            recurrent_bias = self.bias[1] if self.reset_after else None

        def projected(x, name, cols, bias):
            y = self._product(x, name, cols)
            return y if bias is None else y + bias[cols]

        if self.implementation == 2:  # the gates' products fused
            x_z, x_r, x_h = ops.split(
                projected(xs[0], "kernel", slice(0, 3 * u), input_bias), 3, axis=-1)
            if self.reset_after:
                rec_z, rec_r, rec_h = ops.split(projected(
                    hs[0], "recurrent_kernel", slice(0, 3 * u), recurrent_bias),
                    3, axis=-1)
            else:
                rec_z, rec_r = ops.split(projected(
                    hs[0], "recurrent_kernel", slice(0, 2 * u), None), 2, axis=-1)
        else:
            x_z, x_r, x_h = (projected(xs[g], "kernel", gates[g], input_bias)
                             for g in range(3))
            rec_z, rec_r = (projected(hs[g], "recurrent_kernel", gates[g],
                                      recurrent_bias) for g in range(2))
            if self.reset_after:
                rec_h = projected(hs[2], "recurrent_kernel", gates[2], recurrent_bias)
        z = self.recurrent_activation(x_z + rec_z)
        r = self.recurrent_activation(x_r + rec_r)
        if self.reset_after:
            rec_h = r * rec_h
        else:
            rec_h = projected(r * hs[-1], "recurrent_kernel", gates[2], None)
        hh = self.activation(x_h + rec_h)
        h = z * h_tm1 + (1 - z) * hh
        return h, ([h] if nested else h)
