import keras

from keras_sparse_rnn.layers import guard
from keras_sparse_rnn.layers.base import SparseLayerMixin


@keras.saving.register_keras_serializable(package="keras_sparse_rnn")
class SparseEmbedding(SparseLayerMixin, keras.layers.Embedding):
    """Turns positive integers (indexes) into dense vectors from a sparse table.

    `keras.layers.Embedding` whose table keeps exactly
    `round((1 - sparsity) * input_dim * output_dim)` non-zero entries,
    chosen by a binary, non-trainable `embeddings_mask`; the entries outside
    it are zero at build time and after every optimizer step. The paper
    sparsifies the embedding of its text classifiers and language models.

    Args:
        input_dim: Integer. Size of the vocabulary.
        output_dim: Integer. Dimension of the dense embedding.
        sparsity: Fraction of zeros of the table, in [0, 1), or
            `{"embeddings": s}`. Defaults to `0.5`.
        mask_seed: Integer seed of the initial mask; `None` draws one from
            NumPy's global generator and stores it in the config.
        embeddings_initializer, embeddings_regularizer,
        embeddings_constraint, mask_zero: as in `keras.layers.Embedding`.
        weights: Optional initial table of shape `(input_dim, output_dim)`;
            its entries outside the mask are set to zero.

    LoRA and Keras quantization are not supported on the sparse table.

    Example:

    >>> layer = SparseEmbedding(100, 8, sparsity=0.9, mask_seed=0)
    >>> layer(np.array([[1, 2, 3]])).shape
    (1, 3, 8)
    >>> int(layer.embeddings_mask.numpy().sum())
    80
    """

    SPARSE_WEIGHTS = ("embeddings",)

    def __init__(self, input_dim, output_dim, sparsity=0.5, mask_seed=None,
                 weights=None, **kwargs):
        for arg in ("lora_rank", "quantization_config"):
            if kwargs.get(arg) is not None:
                raise ValueError(
                    f"SparseEmbedding does not support {arg}, got "
                    f"{kwargs[arg]!r}; leave it None"
                )
        super().__init__(input_dim, output_dim, **kwargs)
        self._init_sparsity(sparsity, mask_seed)
        if weights is not None:
            self.build()
            with guard.unchecked():  # masked here, as documented
                self._embeddings.assign(
                    keras.ops.convert_to_tensor(weights, self._embeddings.dtype)
                    * self.embeddings_mask
                )

    def build(self, input_shape=None):
        if self.built:
            return
        super().build(input_shape)
        self._add_mask("embeddings", kind="lookup",
                       initializer=self.embeddings_initializer)
        self._check_sparsity_keys()

    def quantize(self, mode=None, **kwargs):
        raise ValueError(
            f"SparseEmbedding '{self.name}' cannot be quantized by Keras; "
            "export it with keras_sparse_rnn's TFLite exporter instead."
        )

    def get_config(self):
        config = super().get_config()
        config.update(self._sparsity_config())
        del config["block"]  # rows are looked up, never multiplied: no blocks
        return config
