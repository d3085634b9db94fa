from keras_sparse_rnn._deprecation import renamed
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
from keras_sparse_rnn.layers.philox_dropout import PhiloxDropout


# The record's name before `SparseMatrix`: works for one release, and warns.
__getattr__ = renamed(__name__, {"SparseWeight": "SparseMatrix"}, globals())
