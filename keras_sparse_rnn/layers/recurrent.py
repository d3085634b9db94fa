"""What the sparse recurrent cells and whole-sequence layers share.

`SparseCellMixin` is the sparse part of a recurrent cell: its input kernel
and recurrent kernel(s), each sparse or not (`sparse_kernel`,
`sparse_recurrent_kernel`), masked at `build` and saved in the config.
`SparseRNNMixin` is the sparse part of a `keras.layers.RNN` subclass over
such a cell (`SparseLSTM`, `SparseGRU`, `SparseRHN`): the cell holds the
weights and masks, the layer forwards `sparsity`, `mask_seed`, `block` and
`sparse_weights` to it and adds the cell's sparse settings to its config.
"""

import inspect

import keras
import tensorflow as tf

from keras_sparse_rnn._keras import rnn as keras_rnn
from keras_sparse_rnn.layers import block_path
from keras_sparse_rnn.layers.base import SparseLayerMixin, set_layer_weights
from keras_sparse_rnn.layers.philox_dropout import philox_dropout
from keras_sparse_rnn.validation import check_bool, check_fraction

#: `compute_path="auto"` takes the block path for a matrix of b x b blocks of
#: constant fan-in whose density is at most `AUTO_MAX_DENSITY[b]` (other block
#: sizes: never). Measured on the 2-core CPU with `benchmarks/sparse_speed.py`
#: (`curve_*`: a 2 x 640 LSTM language model, batch 20, BPTT 35, XLA, 2
#: threads; step time on the block path / Keras's LSTM): the largest density
#: measured faster. b = 8: 0.45 at 0.05, 0.78 at 0.1, 1.07 at 0.2; b = 16:
#: 0.49 at 0.1, 0.66 at 0.2, 1.01 at 0.33; b = 32: 0.40 at 0.1, 0.70 at 0.33,
#: 0.87 at 0.5, 1.15 at 0.75. Zaremba's small LSTM (200 units, b = 8): 0.96
#: at 0.1 and 1.28 at 0.33 against the masked-dense path.
AUTO_MAX_DENSITY = {8: 0.1, 16: 0.2, 32: 0.5}

#: A step of fewer rows than `FEW_ROWS` (a static batch below 20: one-token
#: inference with `keras.Input(..., batch_size=1)` or a stateful model) takes
#: the block path only up to `FEW_ROWS_MAX_DENSITY[b]`: one-token `predict`
#: (batch 1) of the same language model measured 0.82 of Keras at density 0.1
#: and 1.68 at 0.33 (b = 32). An unknown batch follows `AUTO_MAX_DENSITY`.
FEW_ROWS, FEW_ROWS_MAX_DENSITY = 20, {32: 0.1}


def static_rows(x):
    """The rows of a time step's product with `x` `[batch, ...]`: its static
    batch size, or None."""
    return None if x.shape[0] is None else int(x.shape[0])


def check_dropout_rates(kwargs):
    """`dropout` and `recurrent_dropout` of a cell's arguments are in [0, 1)
    (Keras's cells clip them to [0, 1] instead)."""
    for name in ("dropout", "recurrent_dropout"):
        check_fraction(kwargs.get(name, 0.0), name)


def cell_arguments(cell_class, kwargs):
    """Takes out of a layer's `kwargs` the arguments its cell gets.

    As `keras.layers.LSTM` passes them to its `LSTMCell`: the named
    arguments of `cell_class.__init__` and of its parents' (so that an
    argument Keras adds to its cell reaches ours without an edit here),
    `implementation`, and a copy of `dtype` and `trainable`, which the layer
    keeps too. The rest stays in `kwargs`, for `keras.layers.RNN`.
    """
    names = set()
    for klass in inspect.getmro(cell_class):
        if klass is keras.layers.Layer:
            break
        if "__init__" in vars(klass):
            names.update(
                name for name, p in
                inspect.signature(klass.__init__).parameters.items()
                if p.kind is p.POSITIONAL_OR_KEYWORD)
    names.difference_update(("self", "units"))
    names.add("implementation")
    arguments = {name: kwargs.pop(name) for name in sorted(names & set(kwargs))}
    for shared in ("dtype", "trainable"):
        if shared in kwargs:
            arguments[shared] = kwargs[shared]
    return arguments


def gate_inputs(x, training, rate, mask_fn, gates):
    """`x` as each of `gates` gates reads it: with dropout (training, rate in
    (0, 1)) times that gate's mask (`mask_fn(x)`: one mask, or a list of
    one per gate, as Keras's cells make them for `implementation=1`)."""
    if not (training and 0.0 < rate < 1.0):
        return [x] * gates
    masks = mask_fn(x)
    if not isinstance(masks, (list, tuple)):
        return [x * masks] * gates  # one mask: one product, shared
    return [x * m for m in masks]


class SparseCellMixin(block_path.BlockPathMixin, SparseLayerMixin):
    """Sparse input and recurrent kernels of a recurrent cell.

    A cell calls `_init_cell_sparsity` in `__init__` and
    `_mask_planned_weights` at the end of `build`; its config gets the
    sparse settings. The sparse weights are
    `kernel` (if `sparse_kernel`) and the recurrent kernels (if
    `sparse_recurrent_kernel`): `recurrent_kernel`, or the names a cell's
    `_planned_sparse_weights` gives (one per micro-layer of an RHN).
    """

    def _init_cell_sparsity(self, sparsity, sparse_kernel,
                            sparse_recurrent_kernel, mask_seed, block,
                            compute_path="auto"):
        self.sparse_kernel = check_bool(sparse_kernel, "sparse_kernel")
        self.sparse_recurrent_kernel = check_bool(
            sparse_recurrent_kernel, "sparse_recurrent_kernel"
        )
        self._init_sparsity(sparsity, mask_seed, block)
        self._init_compute_path(compute_path)
        # Plain attributes (Keras would track a dict): the products gathered
        # before an RNN's loop, and those a call is using.
        object.__setattr__(self, "_block_cache", None)
        object.__setattr__(self, "_step_products", {})
        object.__setattr__(self, "_in_call", False)

    def _auto_max_density(self, matrix, rows):
        # `rows`: the static batch of a time step, None if unknown.
        if rows is not None and rows < FEW_ROWS:
            return FEW_ROWS_MAX_DENSITY.get(matrix.block_shape[0], 0.0)
        return AUTO_MAX_DENSITY.get(matrix.block_shape[0], 0.0)

    def get_dropout_mask(self, step_input):
        # `keras.layers.RNN` calls this once before its loop over the time
        # steps (and `reset_dropout_mask` after it): the weight blocks are
        # gathered there, once a sequence, outside the loop, so their
        # gradient is summed over the steps in compact form.
        if not self._in_call:  # a fresh gather for each sequence
            object.__setattr__(self, "_block_cache", self._block_products(
                step_input.dtype, static_rows(step_input)))
        return super().get_dropout_mask(step_input)

    def reset_dropout_mask(self):
        object.__setattr__(self, "_block_cache", None)
        super().reset_dropout_mask()

    def _create_dropout_mask(self, step_input, dropout_rate):
        # Keras's masks (the same bits on the CPU), with Philox named: with
        # the algorithm auto-selected, XLA recomputes the seed scramble for
        # every element (see PhiloxDropout).
        count = getattr(self, "dropout_mask_count", None)
        ones = tf.ones_like(step_input)
        masks = [philox_dropout(ones, dropout_rate, self.seed_generator)
                 for _ in range(count or 1)]
        return masks if count is not None else masks[0]

    def _product(self, x, name, columns=None):
        """`x @ weight` (or its `columns`, a slice of whole gates), from the
        active blocks when the weight is on the block path, else the
        masked-dense product."""
        product = self._step_products.get(name)
        if product is not None:
            return product(x, columns)
        weight = getattr(self, name)
        return keras.ops.matmul(x, weight if columns is None else weight[:, columns])

    def _call_with_products(self, fn, inputs, states, training):
        """Runs a cell's `call` body `fn`, whose products go through
        `_product`: with the blocks gathered before the RNN's loop, or
        gathered now (a cell called on its own)."""
        products = self._block_cache
        if products is None:
            products = self._block_products(inputs.dtype, static_rows(inputs))
        object.__setattr__(self, "_step_products", products)
        object.__setattr__(self, "_in_call", True)
        try:
            return fn(inputs, states, training)
        finally:
            object.__setattr__(self, "_step_products", {})
            object.__setattr__(self, "_in_call", False)

    def _planned_sparse_weights(self):
        return ((["kernel"] if self.sparse_kernel else [])
                + (["recurrent_kernel"] if self.sparse_recurrent_kernel
                   else []))

    def _mask_planned_weights(self, gates, gate_names):
        """Masks every planned sparse weight; each weight's initializer
        is kept for `set_matrix_sparsity`."""
        for name in self._planned_sparse_weights():
            initializer = (self.kernel_initializer if name == "kernel"
                           else self.recurrent_initializer)
            self._add_mask(name, gates, gate_names, initializer=initializer)
        self._check_sparsity_keys()

    def _sparse_cell_config(self):
        return {**self._sparsity_config(),
                "sparse_kernel": self.sparse_kernel,
                "sparse_recurrent_kernel": self.sparse_recurrent_kernel,
                "compute_path": self.compute_path}

    def get_config(self):
        config = super().get_config()
        config.update(self._sparse_cell_config())
        return config


class SparseRNNMixin:
    """The sparse part of a `keras.layers.RNN` over a `SparseCellMixin` cell.

    Not a `SparseLayerMixin`: the masks are the cell's, and the model tools
    (`sparse_weights(model)`, ...) find them there, once.
    """

    def _init_rnn(self, cell, kwargs):
        """`keras.layers.RNN.__init__`, then what `keras.layers.LSTM` and
        `GRU` set after it (with `_init_cudnn`).

        `SparseLSTM` and `SparseGRU` cannot call `keras.layers.LSTM.__init__`
        / `GRU.__init__`: those build a `keras.layers.LSTMCell` / `GRUCell`
        of their own, with no way to pass another cell class. That spare
        cell would draw the seeds its initializers and dropout are not given
        from Python's global generator (and make a variable): after the same
        `keras.utils.set_random_seed`, the sparse layer would no longer get
        the initial weights and dropout masks of the Keras layer. So they
        call this and `_init_cudnn`, which tests/layers/test_keras_parity.py
        compares with the Keras layer of the same arguments.
        """
        keras.layers.RNN.__init__(self, cell, **kwargs)
        self.input_spec = keras.InputSpec(ndim=3)
        # Errors about the cell's weights name this layer, the user's.
        cell._owner_description = f"{type(self).__name__} '{self.name}'"

    def _init_cudnn(self, use_cudnn, **cudnn_options):
        """`use_cudnn` as `keras.layers.LSTM` and `GRU` check and use it: on
        TensorFlow, a layer that may run cuDNN cannot be XLA-compiled.
        `cudnn_options`: `reset_after` for a GRU."""
        if use_cudnn not in ("auto", True, False):
            raise ValueError(
                "use_cudnn must be one of 'auto', True, False, "
                f"got {use_cudnn!r}"
            )
        self.use_cudnn = use_cudnn
        cell = self.cell
        if use_cudnn in (True, "auto") and keras_rnn.may_use_cudnn(
                cell.activation, cell.recurrent_activation, self.unroll,
                cell.use_bias, **cudnn_options):
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

    @property
    def compute_path(self):
        return self.cell.compute_path

    @property
    def sparse_weights(self):
        """List of `(weight, mask)` variable pairs of the cell."""
        return self.cell.sparse_weights

    def set_weights(self, weights):
        """As `SparseLayerMixin.set_weights`: the list of `get_weights()`, or
        the Keras counterpart's (no masks); weights outside the masks must
        be zero."""
        set_layer_weights(self, weights)

    def get_config(self):
        config = super().get_config()
        config.update(self.cell._sparse_cell_config())
        return config
