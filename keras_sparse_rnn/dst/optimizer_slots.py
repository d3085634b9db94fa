"""Finding and resetting Keras 3 optimizer slots: see
`keras_sparse_rnn._keras.optimizer_slots`, where it lives (below the layers,
whose one write path, `SparseMatrix.replace`, resets slots at grown
positions)."""

from keras_sparse_rnn._keras.optimizer_slots import (  # noqa: F401
    first_moment,
    has_first_moment,
    owner,
    reset_slots,
    slot_variables,
)
