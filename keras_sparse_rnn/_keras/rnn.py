"""Keras's RNN internals: the dropout mixin of its cells, the cuDNN test.

`keras.layers.LSTMCell` and `GRUCell` get their dropout masks from
`DropoutRNNCell`, which Keras does not export; `SparseRHNCell` uses it too,
so that `keras.layers.RNN` treats its masks the same way. The sparse cells
override its `_create_dropout_mask` (`layers/recurrent.py`) to name Philox;
`tests/test_keras_adapter.py` pins that hook's signature. `cudnn_ok` is
the test `keras.layers.LSTM` and `GRU` run to decide whether they may use
cuDNN (and so cannot be XLA-compiled).
"""

import keras
from keras.src import backend as _backend
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

__all__ = ["DropoutRNNCell", "may_use_cudnn"]


def may_use_cudnn(activation, recurrent_activation, unroll, use_bias, **options):
    """Whether Keras's LSTM / GRU of these arguments may run cuDNN (on the
    TensorFlow backend); `options`: `reset_after` for a GRU."""
    return keras.backend.backend() == "tensorflow" and _backend.cudnn_ok(
        activation, recurrent_activation, unroll, use_bias, **options)
