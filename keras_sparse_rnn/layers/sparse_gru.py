import keras
from keras.src import backend
from keras.src.layers.input_spec import InputSpec

from keras_sparse_rnn.layers.base import set_layer_weights
from keras_sparse_rnn.layers.sparse_gru_cell import SparseGRUCell
from keras_sparse_rnn.validation import validate_units


@keras.saving.register_keras_serializable(package="keras_sparse_rnn")
class SparseGRU(keras.layers.GRU):
    """Gated Recurrent Unit layer with sparse kernels.

    `keras.layers.GRU` with a `SparseGRUCell`: every argument of
    `keras.layers.GRU` works with the same meaning and default, including
    `reset_after` (both conventions), `return_sequences`, `return_state`,
    `go_backwards`, `stateful`, `unroll`, `use_cudnn`, masking and an initial
    state. The sparse weights are plain variables whose inactive entries are
    exactly zero (see `SparseGRUCell`), so on a GPU the layer keeps cuDNN
    where `keras.layers.GRU` would take it, and with `sparsity=0.0` it
    computes exactly what `keras.layers.GRU` does.

    Args:
        units: Positive integer, dimensionality of the output space.
        sparsity: Fraction of zeros of each sparse matrix, in [0, 1), or a
            dict per matrix (see `SparseGRUCell`). Defaults to `0.5`.
        sparse_kernel: Whether the input kernel is sparse. Defaults to `True`.
        sparse_recurrent_kernel: Whether the recurrent kernel is sparse.
            Defaults to `True`.
        mask_seed: Integer seed of the initial masks (see `SparseGRUCell`).
        block: `None` or `(1, 4)`: block structure (see `SparseGRUCell`).
        **kwargs: every other argument of `keras.layers.GRU`.

    Call arguments:
        inputs: A 3D tensor, with shape `(batch, timesteps, feature)`.
        mask: Binary tensor of shape `(samples, timesteps)` indicating whether
            a given timestep should be masked (optional).
        training: Python boolean indicating whether the layer should behave in
            training mode or in inference mode (optional).
        initial_state: List of initial state tensors to be passed to the first
            call of the cell (optional).

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> gru = SparseGRU(4, sparsity=0.75, return_sequences=True)
    >>> gru(inputs).shape
    (32, 10, 4)
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
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        reset_after=True,
        use_cudnn="auto",
        **kwargs,
    ):
        cell = SparseGRUCell(
            validate_units(units),
            sparsity=sparsity,
            sparse_kernel=sparse_kernel,
            sparse_recurrent_kernel=sparse_recurrent_kernel,
            mask_seed=mask_seed,
            block=block,
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
            dtype=kwargs.get("dtype", None),
            trainable=kwargs.get("trainable", True),
            name="gru_cell",
            seed=seed,
            implementation=kwargs.pop("implementation", 2),
        )
        # keras.layers.GRU.__init__ builds its own GRUCell; skip to RNN's
        # and repeat the rest of GRU's set-up (input spec, cuDNN choice).
        keras.layers.RNN.__init__(
            self,
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            activity_regularizer=activity_regularizer,
            **kwargs,
        )
        self.input_spec = InputSpec(ndim=3)
        # Errors about the cell's weights name this layer, the user's.
        cell._owner_description = f"{type(self).__name__} '{self.name}'"
        if use_cudnn not in ("auto", True, False):
            raise ValueError(
                "use_cudnn must be one of 'auto', True, False, "
                f"got {use_cudnn!r}"
            )
        self.use_cudnn = use_cudnn
        if (
            backend.backend() == "tensorflow"
            and backend.cudnn_ok(
                cell.activation,
                cell.recurrent_activation,
                self.unroll,
                cell.use_bias,
                reset_after=reset_after,
            )
            and use_cudnn in (True, "auto")
        ):
            self.supports_jit = False

    @property
    def sparsity(self):
        return self.cell.sparsity

    @property
    def mask_seed(self):
        return self.cell.mask_seed

    @property
    def block(self):
        return self.cell.block

    def set_weights(self, weights):
        """As `SparseLayerMixin.set_weights`: the list of `get_weights()`, or
        the Keras counterpart's (no masks); weights outside the masks must
        be zero."""
        set_layer_weights(self, weights)

    @property
    def sparse_weights(self):
        """List of `(weight, mask)` variable pairs of the cell."""
        return self.cell.sparse_weights

    def get_config(self):
        config = super().get_config()
        config.update(self.cell._sparsity_config())
        config["sparse_kernel"] = self.cell.sparse_kernel
        config["sparse_recurrent_kernel"] = self.cell.sparse_recurrent_kernel
        return config
