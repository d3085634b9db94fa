import keras
import tensorflow as tf

from keras_sparse_rnn.layers.base import SparseLayerMixin
from keras_sparse_rnn.layers.block_path import BlockPathMixin
from keras_sparse_rnn.validation import check_int

#: `compute_path="auto"` computes a `SparseDense` product from the active
#: blocks when its b x b blocks of constant fan-in are at a density of at most
#: `PRODUCT_MAX_DENSITY[b]` and the product has at least `PRODUCT_MIN_ROWS`
#: rows (other block sizes, fewer rows or rows not known: masked-dense).
#: Measured on the 2-core CPU with `benchmarks/sparse_speed.py` (`product_*`:
#: one product x @ W and its gradients, W 640 x 10,000 as a language model's
#: softmax, XLA, 2 threads, from the active blocks / masked-dense), at
#: densities 0.05 / 0.1 / 0.2: b = 16, 140 rows 0.39 / 0.65 / 1.13, 700 rows
#: 0.34 / 0.64 / 0.97; b = 32, 140 rows 0.54 / 0.71 / 1.28, 700 rows 0.34 /
#: 0.55; 20 rows (one time step) 0.91 / 1.24 (b = 16) and 1.68 / 1.82 (b = 32).
PRODUCT_MAX_DENSITY = {16: 0.1, 32: 0.1}
PRODUCT_MIN_ROWS = 140


@keras.saving.register_keras_serializable(package="keras_sparse_rnn")
class SparseDense(BlockPathMixin, SparseLayerMixin, keras.layers.Dense):
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
            `SparseLSTMCell`.
        compute_path: `"masked_dense"`: the dense product with the masked
            kernel (Keras's own `Dense`). `"blocks"`: from the active b x b
            blocks only (`block=(b, b)` required), with the masked-dense
            outputs and gradients inside the mask (the gradient outside it
            is zero, never computed). `"auto"` (default): the block path
            where it was measured faster on a 2-core CPU, else
            masked-dense: blocks of `PRODUCT_MAX_DENSITY` (b = 16 or 32 at
            a density of at most 0.1) and a product of at least
            `PRODUCT_MIN_ROWS` rows (140; a language model's softmax over
            all time steps has batch x steps rows). The rows are the
            input's static shape, a dimension it leaves unknown (the batch
            in `fit`) taken from the shape the layer was built with
            (`keras.Input(..., batch_size=20)`); unknown rows give
            masked-dense. With few rows (20, one time step) the block
            product measured slower (1.2x to 1.8x at density 0.1).
            `block_path_weights()` says what a call of the built shape
            takes. As in the recurrent cells, a compiled function keeps the
            count of active blocks it was traced with: a denser mask set
            afterwards warns.
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
                 compute_path="auto", **kwargs):
        for arg in ("lora_rank", "quantization_config"):
            if kwargs.get(arg) is not None:
                raise ValueError(
                    f"SparseDense does not support {arg}, got {kwargs[arg]!r}; "
                    "leave it None"
                )
        super().__init__(check_int(units, "units", minimum=1), **kwargs)
        self._init_sparsity(sparsity, mask_seed, block)
        self._init_compute_path(compute_path)
        # Plain attribute: the leading dimensions the layer was built with
        # (see `compute_path`).
        object.__setattr__(self, "_built_rows_shape", None)

    def build(self, input_shape):
        super().build(input_shape)
        self._add_mask("kernel", initializer=self.kernel_initializer)
        self._check_sparsity_keys()
        object.__setattr__(self, "_built_rows_shape", tuple(input_shape)[:-1])

    def call(self, inputs, training=None):
        product = self._block_products(
            inputs.dtype, self._static_rows(inputs.shape)).get("kernel")
        if product is None:
            return super().call(inputs, training=training)
        flat = tf.reshape(inputs, [-1, inputs.shape[-1]])
        x = tf.reshape(product(flat),
                       tf.concat([tf.shape(inputs)[:-1], [self.units]], 0))
        if self.bias is not None:
            x = keras.ops.add(x, self.bias)
        if self.activation is not None:
            x = self.activation(x)
        return x

    def _static_rows(self, shape):
        """The rows of a product with an input of `shape`: its leading
        dimensions, an unknown one taken from the built shape; None if
        still unknown."""
        built = self._built_rows_shape or ()
        rows = 1
        for i, dim in enumerate(tuple(shape)[:-1]):
            if dim is None and i < len(built):
                dim = built[i]
            if dim is None:
                return None
            rows *= int(dim)
        return rows

    def _auto_max_density(self, matrix, rows):
        if rows is None and self._built_rows_shape is not None:
            rows = self._static_rows(self._built_rows_shape + (None,))
        if rows is None or rows < PRODUCT_MIN_ROWS:
            return 0.0
        return PRODUCT_MAX_DENSITY.get(matrix.block_shape[0], 0.0)

    def quantize(self, mode=None, **kwargs):
        # NotImplementedError, as Keras's layers that cannot be quantized:
        # `Model.quantize` warns with this message and quantizes the others.
        raise NotImplementedError(
            f"SparseDense '{self.name}' cannot be quantized by Keras; export it "
            "with keras_sparse_rnn's TFLite exporter, which quantizes the "
            "sparse weights."
        )

    def get_config(self):
        config = super().get_config()
        config.update(self._sparsity_config())
        config["compute_path"] = self.compute_path
        return config
