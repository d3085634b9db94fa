import keras

from keras_sparse_rnn.layers.base import SparseLayerMixin
from keras_sparse_rnn.validation import check_int


@keras.saving.register_keras_serializable(package="keras_sparse_rnn")
class SparseDense(SparseLayerMixin, keras.layers.Dense):
    """Densely-connected layer with a sparse kernel.

    `keras.layers.Dense` whose kernel keeps exactly
    `round((1 - sparsity) * size)` non-zero weights, chosen by a binary,
    non-trainable `kernel_mask`; the weights outside it are zero at build
    time and after every optimizer step. The bias is dense. The sparse
    softmax layer of a language model is a `SparseDense`.

    Args:
        units: Positive integer, dimensionality of the output space.
        sparsity: Fraction of zeros of the kernel, in [0, 1), or
            `{"kernel": s}`. Defaults to `0.5`.
        mask_seed: Integer seed of the initial mask; `None` draws one from
            NumPy's global generator and stores it in the config.
        block: `None`, `(1, n)` (weights on or off in blocks of n
            consecutive inputs of one output) or `(b, b)` (square blocks of
            constant fan-in, padded where b does not divide): see
            `SparseLSTMCell`. The product is masked-dense either way: the
            output layer's product over all time steps at once is
            compute-bound, where the dense GEMM is hard to beat.
        activation, use_bias, kernel_initializer, bias_initializer,
        kernel_regularizer, bias_regularizer, activity_regularizer,
        kernel_constraint, bias_constraint: as in `keras.layers.Dense`.
            A constraint of yours is applied first, then the mask.

    LoRA and Keras quantization are not supported on the sparse kernel.

    Example:

    >>> layer = SparseDense(8, sparsity=0.75, mask_seed=0)
    >>> layer(np.ones((2, 16))).shape
    (2, 8)
    >>> int(layer.kernel_mask.numpy().sum())
    32
    """

    SPARSE_WEIGHTS = ("kernel",)

    def __init__(self, units, sparsity=0.5, mask_seed=None, block=None,
                 **kwargs):
        for arg in ("lora_rank", "quantization_config"):
            if kwargs.get(arg) is not None:
                raise ValueError(
                    f"SparseDense does not support {arg}, got {kwargs[arg]!r}; "
                    "leave it None"
                )
        super().__init__(check_int(units, "units", minimum=1), **kwargs)
        self._init_sparsity(sparsity, mask_seed, block)

    def build(self, input_shape):
        super().build(input_shape)
        self._add_mask("kernel", initializer=self.kernel_initializer)
        self._check_sparsity_keys()

    def quantize(self, mode=None, **kwargs):
        raise ValueError(
            f"SparseDense '{self.name}' cannot be quantized by Keras; export it "
            "with keras_sparse_rnn's TFLite exporter, which quantizes the "
            "sparse weights."
        )

    def get_config(self):
        config = super().get_config()
        config.update(self._sparsity_config())
        return config
