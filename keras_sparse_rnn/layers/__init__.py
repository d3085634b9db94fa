import warnings

from keras_sparse_rnn.layers.base import SparseLayerMixin
from keras_sparse_rnn.layers.sparse_matrix import SparseMatrix, sparse_matrices
from keras_sparse_rnn.layers.sparse_dense import SparseDense
from keras_sparse_rnn.layers.sparse_embedding import SparseEmbedding
from keras_sparse_rnn.layers.sparse_lstm import SparseLSTM
from keras_sparse_rnn.layers.sparse_lstm_cell import SparseLSTMCell
from keras_sparse_rnn.layers.sparse_gru import SparseGRU
from keras_sparse_rnn.layers.sparse_gru_cell import SparseGRUCell
from keras_sparse_rnn.layers.sparse_rhn import SparseRHN
from keras_sparse_rnn.layers.sparse_rhn_cell import SparseRHNCell


def __getattr__(name):
    if name == "SparseWeight":  # the record's name before `SparseMatrix`
        warnings.warn("keras_sparse_rnn.layers.SparseWeight is deprecated: use "
                      "keras_sparse_rnn.SparseMatrix", DeprecationWarning,
                      stacklevel=2)
        return SparseMatrix
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
