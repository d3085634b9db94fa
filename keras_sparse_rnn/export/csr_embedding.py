"""Sparse embedding tables stored in compressed sparse row (CSR) form.

The TFLite converter stores an embedding table (`GATHER`) dense, whatever its
sparsity. `csr_tables` finds the sparse embeddings of a model whose CSR form
is smaller, `csr_embeddings` traces those layers with a lookup of builtin
ops (`GATHER` + `SCATTER_ND`, exact) that reads the CSR arrays instead of the
table, and `table_notes` says in the report how each table was stored.
"""

import contextlib
import dataclasses

import keras
import numpy as np

from keras_sparse_rnn.export.prepare import all_layers


@dataclasses.dataclass
class CsrTable:
    """An embedding table in compressed sparse row form: the non-zeros of
    all rows in order (`values`, `columns`) and where each row starts
    (`row_starts`, one more entry than rows). The arrays are padded with
    `width` entries (zeros in an extra column that the lookup drops), so
    that reading `width` entries from any row start stays in range."""

    values: np.ndarray  # (nnz + width,) float
    columns: np.ndarray  # (nnz + width,) int16 (int32 for wide tables)
    row_starts: np.ndarray  # (rows + 1,) int32
    width: int  # most non-zeros in one row
    output_dim: int

    @property
    def nbytes(self):
        return self.values.nbytes + self.columns.nbytes + \
            self.row_starts.nbytes

    @property
    def nonzeros(self):
        return int(self.row_starts[-1])


def csr_table(table, max_fraction=0.9):
    """The CSR form of `table`, or None if it is not smaller than
    `max_fraction` of the dense table."""
    rows, dim = table.shape
    nonzero = table != 0
    counts = nonzero.sum(axis=1)
    width = max(int(counts.max()), 1)
    nnz = int(counts.sum())
    index_dtype = np.int16 if dim + 1 <= np.iinfo(np.int16).max else np.int32
    size = ((nnz + width) * (table.itemsize + np.dtype(index_dtype).itemsize)
            + 4 * (rows + 1))
    if size >= max_fraction * table.nbytes:
        return None
    r, c = np.nonzero(nonzero)  # row-major order
    values = np.concatenate([table[r, c], np.zeros(width, table.dtype)])
    columns = np.concatenate([c, np.full(width, dim)]).astype(index_dtype)
    row_starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return CsrTable(values, columns, row_starts, width, dim)


def csr_lookup(layer, csr):
    """A replacement for `Embedding.call`: for each id, GATHER `width`
    entries from its row start, send those past the row's end to the extra
    column, SCATTER_ND them into a dense vector and drop that column (all
    builtin ops; exact)."""
    import tensorflow as tf

    values = tf.constant(csr.values)
    columns = tf.constant(csr.columns)
    starts = tf.constant(csr.row_starts)
    dim, width = csr.output_dim, csr.width

    def call(inputs):
        ids = tf.cast(inputs, tf.int32)
        shape = ids.shape.as_list()
        flat = tf.reshape(ids, [-1])
        n = flat.shape[0]
        begin = tf.gather(starts, flat)[:, None]
        end = tf.gather(starts, flat + 1)[:, None]
        positions = begin + tf.range(width)[None, :]  # (n, width)
        cols = tf.cast(tf.gather(columns, positions), tf.int32)
        cols = tf.where(positions < end, cols, dim)
        rows = tf.broadcast_to(tf.range(n)[:, None], (n, width))
        indices = tf.reshape(tf.stack([rows, cols], axis=-1), (n * width, 2))
        updates = tf.reshape(tf.gather(values, positions), [-1])
        dense = tf.scatter_nd(indices, updates, (n, dim + 1))[:, :dim]
        return tf.cast(tf.reshape(dense, shape + [dim]), layer.compute_dtype)

    return call


def _sparse_embeddings(model):
    """The `SparseEmbedding` layers (any sparse-masked Embedding) of `model`."""
    from keras_sparse_rnn.layers.base import SparseLayerMixin

    return [l for l in all_layers(model)
            if isinstance(l, keras.layers.Embedding)
            and isinstance(l, SparseLayerMixin)]


def csr_tables(model):
    """`{id(layer): (layer, CsrTable)}`: the CSR forms of the model's sparse
    embedding tables, where smaller (quantized tables are left alone)."""
    tables = {}
    for layer in _sparse_embeddings(model):
        if getattr(layer, "quantization_mode", None) is None:
            table = layer.embeddings.numpy()  # np.array(variable) warns
            csr = csr_table(table)
            if csr is not None:
                tables[id(layer)] = (layer, csr)
    return tables


@contextlib.contextmanager
def csr_embeddings(tables):
    """Traces the given embeddings with their CSR lookup."""
    for layer, csr in tables.values():
        object.__setattr__(layer, "call", csr_lookup(layer, csr))
    try:
        yield
    finally:
        for layer, _ in tables.values():
            layer.__dict__.pop("call", None)


def table_notes(model, tables):
    """Report notes: how each sparse embedding table is stored."""
    notes = []
    for layer, csr in tables.values():
        rows = csr.row_starts.size - 1
        dense_kb = rows * csr.output_dim * csr.values.itemsize / 1024
        notes.append(
            f"embedding '{layer.name}' is stored in CSR form "
            f"({csr.nonzeros} non-zeros, {csr.columns.dtype.name} column "
            f"indices, at most {csr.width} per row: "
            f"{csr.nbytes / 1024:.1f} KB for a dense {dense_kb:.1f} KB) "
            "and looked up with GATHER + SCATTER_ND"
        )
    dense_tables = [l.name for l in _sparse_embeddings(model)
                    if id(l) not in tables]
    if dense_tables:
        notes.append(
            f"sparse embedding table(s) {dense_tables} are stored dense: "
            "their CSR form would not be smaller"
        )
    return notes
