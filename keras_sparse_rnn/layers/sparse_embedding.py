import keras

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
        weights: Optional initial weights, as `keras.layers.Embedding`
            takes them: the table `(input_dim, output_dim)` or a list of it
            (`[table]`), or the list of `get_weights()` (`[table, mask]`).
            They are set with `set_weights`, under its rule: the table must
            be zero outside the mask it ends with (the layer's own mask, or
            the one given), else ValueError. A dense table loads as it is
            with `sparsity=0`; for a trained dense table use
            `keras_sparse_rnn.sparsify`, which keeps its largest entries.

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
            # As keras.layers.Embedding: an array, or a list of arrays.
            self.build()
            try:
                self.set_weights(list(weights) if isinstance(
                    weights, (list, tuple)) else [weights])
            except ValueError as e:
                raise ValueError(f"weights (set as by set_weights): {e}") from e

    def build(self, input_shape=None):
        if self.built:
            return
        super().build(input_shape)
        self._add_mask("embeddings", kind="lookup",
                       initializer=self.embeddings_initializer)
        self._check_sparsity_keys()

    def quantize(self, mode=None, **kwargs):
        # NotImplementedError, as Keras's layers that cannot be quantized:
        # `Model.quantize` warns with this message and quantizes the others.
        raise NotImplementedError(
            f"SparseEmbedding '{self.name}' cannot be quantized by Keras; "
            "export it with keras_sparse_rnn's TFLite exporter instead."
        )

    def get_config(self):
        config = super().get_config()
        config.update(self._sparsity_config())
        del config["block"]  # rows are looked up, never multiplied: no blocks
        return config
