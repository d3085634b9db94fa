"""The sparse GRU layer: `keras.layers.GRU` over a `SparseGRUCell`."""

import keras

from keras_sparse_rnn.layers.recurrent import SparseRNNMixin, cell_arguments
from keras_sparse_rnn.layers.sparse_gru_cell import SparseGRUCell
from keras_sparse_rnn.validation import check_int


@keras.saving.register_keras_serializable(package="keras_sparse_rnn")
class SparseGRU(SparseRNNMixin, keras.layers.GRU):
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
        block: `None`, `(1, n)` or `(b, b)`: block structure (see `SparseGRUCell`).
        compute_path: `"auto"`, `"masked_dense"` or `"blocks"`: how the
            products are computed (see `SparseLSTMCell`).
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

    def __init__(self, units, sparsity=0.5, sparse_kernel=True,
                 sparse_recurrent_kernel=True, mask_seed=None, block=None,
                 compute_path="auto", **kwargs):
        cell = SparseGRUCell(
            check_int(units, "units", minimum=1),
            sparsity=sparsity,
            sparse_kernel=sparse_kernel,
            sparse_recurrent_kernel=sparse_recurrent_kernel,
            mask_seed=mask_seed,
            block=block,
            compute_path=compute_path,
            name="gru_cell",
            **cell_arguments(keras.layers.GRUCell, kwargs),
        )
        use_cudnn = kwargs.pop("use_cudnn", "auto")
        # Not keras.layers.GRU.__init__, which would build a GRUCell of
        # its own: why, in SparseRNNMixin._init_rnn.
        self._init_rnn(cell, kwargs)
        self._init_cudnn(use_cudnn, reset_after=cell.reset_after)
