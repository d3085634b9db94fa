"""Matrix products computed from the active blocks only.

A matrix of square b x b blocks with constant fan-in (`block=(b, b)`) has the
same number k of active input blocks in every block column (b outputs). So
`x @ W` can be computed as one batched matmul over the block columns: gather
the k input blocks each column reads, multiply by the k stacked weight
blocks, with static shapes under XLA. With the few rows of an RNN time step
the product is bound by reading weights, and this reads only the active
ones.

The mask stays the one source of truth: the block indices are read from it
(`tf.math.top_k` of each block column; ties, i.e. inactive blocks when k
exceeds the active count, go to the lower index) and the weight blocks are
gathered from the dense weight, once per sequence (see
`SparseCellMixin.get_dropout_mask`), so a topology update, `set_weights` or
a load is read by the next step. The gradient of the gathered blocks is
accumulated over the time steps in their compact form and scattered into
the dense weight's gradient once.
"""

import contextlib
import warnings

import tensorflow as tf

from keras_sparse_rnn.validation import check_choice

#: The values of a layer's `compute_path` argument.
COMPUTE_PATHS = ("auto", "masked_dense", "blocks")

_masked_dense_depth = [0]


@contextlib.contextmanager
def masked_dense():
    """Cells traced inside this context compute every product masked-dense,
    whatever their `compute_path`.

    The block path's gradient is zero outside the active blocks (it never
    reads them); a grow criterion that ranks inactive positions by their
    gradient (RigL) computes it in this context, where it is the dense one.
    Use it too when you compute such a gradient yourself (custom loops that
    pass `gradients=` to `DynamicSparsity`).
    """
    _masked_dense_depth[0] += 1
    try:
        yield
    finally:
        _masked_dense_depth[0] -= 1


def forced_masked_dense():
    """Whether a `masked_dense()` context is open."""
    return _masked_dense_depth[0] > 0


def pad_blocks(x, block, gates=1):
    """`x` `[R, C]` zero-padded to whole blocks, each gate's columns on its
    own (the in-graph twin of `masks.pad_blocks`)."""
    rows, cols = x.shape
    width = cols // gates
    pad_r, pad_c = -rows % block, -width % block
    if not pad_r and not pad_c:
        return x
    x = tf.pad(tf.reshape(x, [rows, gates, width]), [[0, pad_r], [0, 0], [0, pad_c]])
    return tf.reshape(x, [rows + pad_r, gates * (width + pad_c)])


def unpad_columns(y, cols, gates=1):
    """The first `cols // gates` columns of each gate of a padded `[..., C']`
    tensor: `[..., cols]`."""
    if y.shape[-1] == cols:
        return y
    width = cols // gates
    lead = tf.shape(y)[:-1]
    y = tf.reshape(y, tf.concat([lead, [gates, y.shape[-1] // gates]], 0))[..., :width]
    return tf.reshape(y, tf.concat([lead, [cols]], 0))


def unpad_blocks(x, rows, cols, gates=1):
    """The inverse of `pad_blocks`: `[rows, cols]`."""
    return unpad_columns(x[:rows], cols, gates)


def active_block_indices(mask, block, k):
    """`[Cg, k]` int32: the active input blocks of each block column of a
    `[R, C]` constant fan-in mask (sorted by block row), and a bool scalar,
    True when a column has more than k active blocks (a count the traced
    shapes cannot hold)."""
    grid = tf.transpose(mask[::block, ::block])  # [Cg, Rg], 1 where active
    _, idx = tf.math.top_k(grid, k, sorted=True)
    idx = tf.sort(idx, axis=-1)
    overflow = tf.reduce_any(tf.reduce_sum(grid, axis=-1) > k)
    return idx, overflow


def gather_blocks(weight, idx, block):
    """The weight blocks `idx` selects: `[Cg, k * b, b]`, column c's stacked
    `[k * b, b]` slab of input rows."""
    rows, cols = weight.shape
    cg, k = idx.shape
    w4 = tf.reshape(weight, [rows // block, block, cols // block, block])
    w4 = tf.transpose(w4, [2, 0, 1, 3])  # [Cg, Rg, b, b]
    values = tf.gather(w4, idx, batch_dims=1)  # [Cg, k, b, b]
    return tf.reshape(values, [cg, k * block, block])


def block_matmul(x, values, idx, block, overflow=None):
    """`x @ W` from the active blocks: `x` `[n, R]`, `values` and `idx` as
    `gather_blocks` and `active_block_indices` give them; returns `[n, C]`.
    With `overflow` True (the mask has gained blocks since the shapes were
    traced) the result is NaN rather than silently short of those blocks."""
    n = tf.shape(x)[0]
    cg, k = idx.shape
    xb = tf.transpose(tf.reshape(x, [n, x.shape[-1] // block, block]), [1, 0, 2])
    g = tf.gather(xb, idx)  # [Cg, k, n, b]
    g = tf.reshape(tf.transpose(g, [0, 2, 1, 3]), [cg, n, k * block])
    y = tf.matmul(g, values)  # [Cg, n, b]
    y = tf.reshape(tf.transpose(y, [1, 0, 2]), [n, cg * block])
    if overflow is not None:
        y = y + tf.where(overflow, tf.constant(float("nan"), y.dtype),
                         tf.constant(0, y.dtype))
    return y


class BlockProduct:
    """One matrix's operands for `block_matmul`, gathered for a sequence.

    A size the block does not divide is padded inside: the weight and mask
    to whole blocks (each of the `gates` column groups on its own), the
    input with zeros, and the padded outputs are dropped.
    """

    def __init__(self, weight, mask, block, k, dtype, gates=1):
        self.block, self.gates = block, gates
        self.rows, self.cols = weight.shape
        self.idx, self.overflow = active_block_indices(
            pad_blocks(mask, block, gates), block, k)
        self.values = tf.cast(
            gather_blocks(pad_blocks(weight, block, gates), self.idx, block), dtype)

    def __call__(self, x, columns=None):
        """`x @ W`, or `x @ W[:, columns]` for `columns` a slice of whole
        gates."""
        values, idx, gates = self.values, self.idx, self.gates
        width = self.cols // gates
        if columns is not None and (columns.start, columns.stop) != (0, self.cols):
            if columns.start % width or columns.stop % width:
                raise ValueError(f"columns {columns} are not whole gates of "
                                 f"{width} columns")
            per_gate = idx.shape[0] // gates
            start, stop = columns.start // width, columns.stop // width
            values = values[start * per_gate:stop * per_gate]
            idx = idx[start * per_gate:stop * per_gate]
            gates = stop - start
        pad = -self.rows % self.block
        if pad:
            x = tf.pad(x, [[0, 0], [0, pad]])
        y = block_matmul(x, values, idx, self.block, self.overflow)
        return unpad_columns(y, gates * width, gates)


class BlockPathMixin:
    """`compute_path` of a sparse layer (a `SparseLayerMixin`): which of its
    matrices of b x b blocks of constant fan-in are computed from their
    active blocks.

    A layer calls `_init_compute_path` after `_init_sparsity`, gets its
    products from `_block_products` and says where `"auto"` takes the block
    path with `_auto_max_density`.
    """

    def _init_compute_path(self, compute_path):
        self.compute_path = check_choice(compute_path, "compute_path", COMPUTE_PATHS)
        if compute_path == "blocks" and not (
                self.block and self.block[0] > 1 and self._planned_sparse_weights()):
            raise ValueError(
                f"{self._description()}: compute_path='blocks' computes from the "
                "active blocks of square blocks of constant fan-in: it needs "
                f"block=(b, b) (e.g. (16, 16)) and a sparse weight, got block="
                f"{self.block} and sparse weights "
                f"{self._planned_sparse_weights()}; use compute_path='auto' or "
                "'masked_dense'")
        # A plain attribute (Keras would track a dict): the active blocks per
        # column that traced functions hold, by weight.
        object.__setattr__(self, "_traced_fan_in", {})

    def _auto_max_density(self, matrix, rows):
        """The largest density at which `"auto"` computes `matrix` from its
        active blocks, for products of `rows` rows (None: unknown)."""
        raise NotImplementedError

    def block_path_weights(self, rows=None):
        """Names of the sparse weights whose products this layer computes
        from the active blocks, as `compute_path` and the current sparsity
        decide (and, for `"auto"` in a layer whose rule depends on it, the
        number of `rows` of the product)."""
        if (self.compute_path == "masked_dense" or not self.built
                or forced_masked_dense()):
            return []
        names = []
        for matrix in self.get_sparse_weight_info():
            if not matrix.constant_fan_in:
                continue
            k, block_rows = matrix.fan_in()
            if (self.compute_path == "blocks"
                    or k / block_rows <= self._auto_max_density(matrix, rows)):
                names.append(matrix.name)
        return names

    def _block_products(self, dtype, rows=None):
        """`{name: BlockProduct}` of the weights on the block path, read
        from the weights and masks as they are now."""
        products = {}
        for name in self.block_path_weights(rows):
            matrix = self.sparse_matrix(name)
            k, _ = matrix.fan_in()
            if not tf.executing_eagerly():  # shapes a compiled function keeps
                self._traced_fan_in[name] = max(k, self._traced_fan_in.get(name, 0))
            products[name] = BlockProduct(
                matrix.weight.value, matrix.mask.value, matrix.block_shape[0], k,
                dtype, matrix.gates)
        return products

    def set_configured_sparsity(self, name, sparsity):
        super().set_configured_sparsity(name, sparsity)
        traced = self._traced_fan_in.get(name)
        if traced is None:
            return
        k, _ = self.fan_in(name)
        if k > traced:
            warnings.warn(
                f"{self._description()}: '{name}' now has {k} active blocks per "
                f"block column, more than the {traced} that functions traced "
                "before on the block path hold: those (a compiled fit, predict "
                "or tf.function) give NaN until traced again. Call "
                "model.compile(...) again, or make a new tf.function",
                stacklevel=2)
