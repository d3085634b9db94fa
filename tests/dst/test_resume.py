"""Stopping after epoch 2 and resuming to epoch 4 with BackupAndRestore gives
the masks (and weights) of 4 epochs in one run, in either callback order."""

import numpy as np
import pytest
import keras

from keras_sparse_rnn.dst import DynamicSparsity

from dst_helpers import BATCH, compile_lm, data, lm, masks_of

X, Y = data()


class Interrupt(keras.callbacks.Callback):
    """Simulates a crash at the start of epoch 2, as Keras' own
    BackupAndRestore tests do."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise RuntimeError("interrupted")


def _model(optimizer):
    return compile_lm(lm(), optimizer())


def _dst(grow):
    return DynamicSparsity(0.3, grow=grow,
                           grow_data=None if grow == "random" else (X[:8], Y[:8]))


def _fit(model, callbacks):
    model.fit(X, Y, batch_size=BATCH, epochs=4, verbose=0, shuffle=False,
              callbacks=callbacks)


CASES = {
    # SGD without momentum: the callback's own gradient average is state.
    "momentum_own_average": ("momentum", lambda: keras.optimizers.SGD(0.5)),
    "random_adam": ("random", lambda: keras.optimizers.Adam(0.02)),
}


def _check_resume(tmp_path, case, order):
    grow, optimizer = CASES[case]
    model = _model(optimizer)
    single = _dst(grow)
    _fit(model, [single])
    want_masks, want_weights = masks_of(model), [w.numpy() for w in model.weights]

    backup = str(tmp_path / "backup")

    def callbacks(dst, extra=()):
        b = keras.callbacks.BackupAndRestore(backup)
        return ([dst, b] if order == "dst_first" else [b, dst]) + list(extra)

    model = _model(optimizer)
    first = _dst(grow)
    with pytest.raises(RuntimeError, match="interrupted"):
        _fit(model, callbacks(first, [Interrupt()]))
    assert [u["step"] for u in first.updates] == [8, 16]

    model = _model(optimizer)  # a fresh process would build it anew
    second = _dst(grow)
    _fit(model, callbacks(second))
    # With BackupAndRestore first, the checkpoint of epoch 2 predates the
    # update at its end: the resumed run does it when epoch 3 begins.
    expected = [16, 24] if order == "backup_first" else [24]
    assert [u["step"] for u in second.updates] == expected
    assert [u["update"] for u in single.updates] == [0, 1, 2]
    assert second.updates[-1]["update"] == 2
    for a, b in zip(want_masks, masks_of(model)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(want_weights, [w.numpy() for w in model.weights]):
        np.testing.assert_array_equal(a, b)
    assert second.get_state()["update_count"] == 3
    # docs/dst.md, "Resuming": the count covers the whole training, the
    # records only what this callback object ran after the restore.
    assert second.update_count == 3
    assert len(second.updates) == len(expected)


@pytest.mark.parametrize("case,order", [("momentum_own_average", "dst_first"),
                                        ("random_adam", "backup_first")])
def test_resume_with_backup_and_restore(tmp_path, case, order):
    _check_resume(tmp_path, case, order)


@pytest.mark.slow
@pytest.mark.parametrize("case,order", [("momentum_own_average", "backup_first"),
                                        ("random_adam", "dst_first")])
def test_resume_with_backup_and_restore_other_orders(tmp_path, case, order):
    _check_resume(tmp_path, case, order)
