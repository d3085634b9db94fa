"""What a training script needs around `model.fit`: run helpers.

The examples (`examples/ptb_language_model.py`, `text_classification.py`,
`tfmot_baseline.py`) and the benchmarks share these; a script of one's own
imports them the same way (`from keras_sparse_rnn.training import ...`).

- `runs`: TensorFlow's threads, a wall-time budget, a run log that survives
  interruptions, per-epoch backups written atomically, atomic JSON files.
- `zaremba`: Zaremba et al.'s word-level language-model training: the
  batches of the three splits and the learning rate for Keras' mean loss.

The callbacks take the callback class to subclass (`callback_base`), so that
a `tf_keras` script (the tfmot baseline) uses them too; the default is
`keras.callbacks.Callback`.
"""

from keras_sparse_rnn.training.runs import (
    KILL_AFTER_EPOCH_VARIABLE,
    epoch_backup,
    kill_after_epoch_for_tests,
    run_log,
    set_threads,
    time_budget,
    write_json_atomic,
)
from keras_sparse_rnn.training.zaremba import lm_datasets, mean_loss_learning_rate

__all__ = [
    "KILL_AFTER_EPOCH_VARIABLE",
    "epoch_backup",
    "kill_after_epoch_for_tests",
    "lm_datasets",
    "mean_loss_learning_rate",
    "run_log",
    "set_threads",
    "time_budget",
    "write_json_atomic",
]
