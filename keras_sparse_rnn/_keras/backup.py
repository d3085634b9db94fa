"""`keras.callbacks.BackupAndRestore` with its own checkpoint writer.

Keras 3.15's private hooks: the callback's `_load_model` / `_save_model`,
`_training_metadata_path`, `_current_epoch`, `_last_batch_seen`, and the
model's `_initial_epoch`, which `fit` reads to resume.
"""

import json
import os
import pathlib

import keras


def atomic_backup_and_restore(backup_dir, write_json_atomic, delete_checkpoint):
    """A `BackupAndRestore` that writes each epoch's weights to their own file
    and then, atomically (`write_json_atomic(path, value)`), the metadata that
    names it; see `keras_sparse_rnn.training.epoch_backup`."""

    class EpochBackup(keras.callbacks.BackupAndRestore):
        def _load_model(self):
            meta_path = pathlib.Path(self._training_metadata_path)
            if not meta_path.is_file():
                return
            meta = json.loads(meta_path.read_text())
            optimizer = self.model.optimizer
            if optimizer is not None and not optimizer.built:
                optimizer.build(self.model.trainable_variables)
            self.model.load_weights(str(pathlib.Path(self.backup_dir) / meta["weights"]))
            self.model._initial_epoch = meta["epoch"]

        def _save_model(self):
            folder = pathlib.Path(self.backup_dir)
            folder.mkdir(parents=True, exist_ok=True)
            name = f"epoch-{self._current_epoch}.weights.h5"
            # Keras wants the ".weights.h5" ending, so the temporary name keeps it.
            tmp = folder / f"tmp-{name}"
            self.model.save_weights(str(tmp), overwrite=True)
            os.replace(tmp, folder / name)
            write_json_atomic(self._training_metadata_path, {
                "epoch": self._current_epoch, "batch": self._last_batch_seen,
                "weights": name})
            for old in folder.glob("*.weights.h5"):
                if old.name != name:
                    old.unlink()

    return EpochBackup(backup_dir, delete_checkpoint=delete_checkpoint)
