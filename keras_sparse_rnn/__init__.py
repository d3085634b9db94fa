"""Sparse-from-scratch training of recurrent networks for Keras 3."""

from keras_sparse_rnn._deprecation import renamed as _renamed
from keras_sparse_rnn import datasets, dst, export, optimizers
from keras_sparse_rnn.distribution import (distribute_sparsity, sparsity_for_active_params,
                                           sparsity_per_matrix)
from keras_sparse_rnn.dst import DynamicSparsity
from keras_sparse_rnn.export import ExportError, export_tflite
from keras_sparse_rnn.layers import (
    SparseDense,
    SparseEmbedding,
    SparseGRU,
    SparseGRUCell,
    SparseLSTM,
    SparseLSTMCell,
    SparseRHN,
    SparseMatrix,
    SparseRHNCell,
    PhiloxDropout,
    sparse_matrices,
)
from keras_sparse_rnn.model_utils import sparse_weight_info, sparse_weights
from keras_sparse_rnn.dst.schedules import polynomial_decay_sparsity
from keras_sparse_rnn.pruning import GradualPruning
from keras_sparse_rnn.sparsify import sparsify
from keras_sparse_rnn.summary import sparsity_summary

__version__ = "0.1.0"

# Renamed public names: the old name still works for one release, and warns.
__getattr__ = _renamed(__name__, {"plan_sparsity": "sparsity_per_matrix",
                                 "SparseWeight": "SparseMatrix"}, globals())
