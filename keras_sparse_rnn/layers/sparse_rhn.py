"""The sparse Recurrent Highway Network layer: `keras.layers.RNN` over a
`SparseRHNCell`."""

import keras

from keras_sparse_rnn.layers.recurrent import SparseRNNMixin, cell_arguments
from keras_sparse_rnn.layers.sparse_rhn_cell import SparseRHNCell


@keras.saving.register_keras_serializable(package="keras_sparse_rnn")
class SparseRHN(SparseRNNMixin, keras.layers.RNN):
    """Recurrent Highway Network layer with sparse kernels (Zilly et al. 2017).

    `keras.layers.RNN` over a `SparseRHNCell`, with the arguments users know
    from `keras.layers.LSTM`: `return_sequences`, `return_state`,
    `go_backwards`, `stateful`, `unroll`, masking and an initial state. The
    state is one tensor of shape `(batch, units)` (the last micro-layer's
    output). Dropout is variational: one input mask and one state mask per
    sequence, shared by every time step and micro-layer.

    Args:
        units: Positive integer, dimensionality of the output space.
        depth: Recurrence depth (micro-layers per time step), an int >= 1.
        sparsity: Fraction of zeros of each sparse matrix, in [0, 1), or a
            dict per matrix (see `SparseRHNCell`). Defaults to `0.5`.
        coupled: If True (default) the carry gate is `1 - t`; if False it has
            its own weights.
        transform_bias: Initial transform-gate bias. Defaults to `-2.0`.
        activation: Activation of the candidate. Defaults to `"tanh"`.
        dropout: Float in [0, 1): variational dropout of the inputs.
        recurrent_dropout: Float in [0, 1): variational dropout of the state.
        kernel_initializer, recurrent_initializer, bias_initializer,
        kernel_regularizer, recurrent_regularizer, bias_regularizer,
        kernel_constraint, recurrent_constraint, bias_constraint, seed:
            as in `SparseRHNCell`.
        activity_regularizer: Regularizer function applied to the output of
            the layer. Defaults to `None`.
        sparse_kernel: Whether the input kernel is sparse. Defaults to `True`.
        sparse_recurrent_kernel: Whether the recurrent kernels are sparse.
            Defaults to `True`.
        mask_seed: Integer seed of the initial masks (see `SparseRHNCell`).
        block: `None`, `(1, n)` or `(b, b)`: block structure (see `SparseRHNCell`).
        compute_path: `"auto"`, `"masked_dense"` or `"blocks"`: how the
            products are computed (see `SparseLSTMCell`).
        return_sequences: Boolean. Whether to return the last output in the
            output sequence, or the full sequence. Defaults to `False`.
        return_state: Boolean. Whether to return the last state in addition
            to the output. Defaults to `False`.
        go_backwards: Boolean. If `True`, process the input sequence
            backwards and return the reversed sequence. Defaults to `False`.
        stateful: Boolean. If `True`, the last state of each sample of a
            batch is the initial state of the same sample in the next batch.
            Defaults to `False`.
        unroll: Boolean. If `True`, the time loop is unrolled. Defaults to
            `False`.
        **kwargs: other arguments of `keras.layers.RNN` (`name`, `dtype`,
            `zero_output_for_mask`, ...).

    Call arguments:
        inputs: A 3D tensor, with shape `(batch, timesteps, feature)`.
        initial_state: List of one initial state tensor of shape
            `(batch, units)` (optional; zeros by default).
        mask: Binary tensor of shape `(samples, timesteps)` indicating whether
            a given timestep should be masked (optional).
        training: Python boolean indicating whether the layer should behave in
            training mode or in inference mode (optional).

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> rhn = SparseRHN(4, depth=3, sparsity=0.5, return_sequences=True,
    ...                 return_state=True)
    >>> sequence, state = rhn(inputs)
    >>> sequence.shape, state.shape
    ((32, 10, 4), (32, 4))
    """

    def __init__(self, units, depth, sparsity=0.5, **kwargs):
        cell = SparseRHNCell(
            units,
            depth=depth,
            sparsity=sparsity,
            name="rhn_cell",
            **cell_arguments(SparseRHNCell, kwargs),
        )
        self._init_rnn(cell, kwargs)

    def call(self, sequences, initial_state=None, mask=None, training=False):
        return super().call(
            sequences, mask=mask, training=training, initial_state=initial_state
        )

    @property
    def units(self):
        return self.cell.units

    @property
    def depth(self):
        return self.cell.depth

    @property
    def coupled(self):
        return self.cell.coupled

    @property
    def transform_bias(self):
        return self.cell.transform_bias

    @property
    def activation(self):
        return self.cell.activation

    @property
    def dropout(self):
        return self.cell.dropout

    @property
    def recurrent_dropout(self):
        return self.cell.recurrent_dropout

    def get_config(self):
        config = super().get_config()
        del config["cell"]
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        config.update(cell_config)
        config["activity_regularizer"] = keras.regularizers.serialize(
            self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
