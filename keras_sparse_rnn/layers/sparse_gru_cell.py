import keras

from keras_sparse_rnn.layers.base import SparseLayerMixin
from keras_sparse_rnn.validation import validate_bool, validate_rate, validate_units

GRU_GATES = ("z", "r", "h")


@keras.saving.register_keras_serializable(package="keras_sparse_rnn")
class SparseGRUCell(SparseLayerMixin, keras.layers.GRUCell):
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
        block: `None`, or `(1, 4)`: weights on or off in blocks of 4
            consecutive inputs of one output (see `SparseLSTMCell`).
        activation, recurrent_activation, use_bias, kernel_initializer,
        recurrent_initializer, bias_initializer, kernel_regularizer,
        recurrent_regularizer, bias_regularizer, kernel_constraint,
        recurrent_constraint, bias_constraint, dropout, recurrent_dropout,
        reset_after, seed: as in `keras.layers.GRUCell`. A constraint of
            yours is applied to the weights first, then the mask.

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

    def __init__(
        self,
        units,
        sparsity=0.5,
        sparse_kernel=True,
        sparse_recurrent_kernel=True,
        mask_seed=None,
        block=None,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        reset_after=True,
        seed=None,
        **kwargs,
    ):
        units = validate_units(units)
        validate_rate(dropout, "dropout")
        validate_rate(recurrent_dropout, "recurrent_dropout")
        validate_bool(reset_after, "reset_after")
        super().__init__(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            reset_after=reset_after,
            seed=seed,
            **kwargs,
        )
        self.sparse_kernel = validate_bool(sparse_kernel, "sparse_kernel")
        self.sparse_recurrent_kernel = validate_bool(
            sparse_recurrent_kernel, "sparse_recurrent_kernel"
        )
        self._init_sparsity(sparsity, mask_seed, block)

    def _planned_sparse_weights(self):
        return ((["kernel"] if self.sparse_kernel else [])
                + (["recurrent_kernel"] if self.sparse_recurrent_kernel else []))

    def build(self, input_shape):
        super().build(input_shape)
        if self.sparse_kernel:
            self._add_mask("kernel", 3, GRU_GATES,
                           initializer=self.kernel_initializer)
        if self.sparse_recurrent_kernel:
            self._add_mask("recurrent_kernel", 3, GRU_GATES,
                           initializer=self.recurrent_initializer)
        self._check_sparsity_keys()

    def get_config(self):
        config = super().get_config()
        config.update(self._sparsity_config())
        config["sparse_kernel"] = self.sparse_kernel
        config["sparse_recurrent_kernel"] = self.sparse_recurrent_kernel
        return config
