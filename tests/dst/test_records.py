"""`dst/records.py`: what an update did. Each update's record (its fields,
its per-matrix records and their sums), the count check that refuses an
update whose counts moved, the values an epoch adds to `fit`'s logs and the
`verbose=1` line."""

import numpy as np
import pytest
import keras
import tensorflow as tf

import keras_sparse_rnn as ksr
from keras_sparse_rnn.dst import DynamicSparsity, records

from dst_helpers import BATCH, compile_lm, data, gate_counts, lm, masks_of

X, Y = data()
RECORD_KEYS = {"update", "step", "drop_fraction", "pruned", "grown", "changed",
               "positions", "itop_rate", "gate_shares", "matrices", "mask_change"}
MATRIX_KEYS = {"path", "pruned", "grown", "changed", "gate_counts"}
PATHS = ["lm/emb/embeddings", "lm/rnn/cell/kernel", "lm/rnn/cell/recurrent_kernel",
         "lm/softmax/kernel"]


def _fit(model, callbacks, epochs=3, **kwargs):
    return model.fit(X, Y, batch_size=BATCH, epochs=epochs, verbose=0,
                     shuffle=False, callbacks=callbacks, **kwargs)


# Moved from tests/dst/test_callback.py ------------------------------------------

def test_logs_and_verbose(capsys):
    model = compile_lm(lm())
    counts = gate_counts(model)
    cb = DynamicSparsity(0.3, verbose=1, schedule="constant")
    history = _fit(model, [cb])
    h = history.history
    keys = {"dst_updates", "dst_pruned", "dst_grown", "dst_drop_fraction",
            "dst_mask_change", "dst_itop_rate", "dst_share_i", "dst_share_f",
            "dst_share_c", "dst_share_o"}
    assert keys <= set(h)
    positions = sum(m.size for m in masks_of(model))
    active = sum(m.sum() for m in masks_of(model))
    assert h["dst_drop_fraction"] == [0.3, 0.3, 0.0]
    assert h["dst_mask_change"][:2] == [2 * p / positions for p in h["dst_pruned"][:2]]
    itop = h["dst_itop_rate"]
    assert active / positions < itop[0] < itop[1] == itop[2] <= 1
    # redistribution="none": each gate keeps its count, so its share.
    lstm = counts[1:3]
    total = sum(sum(c) for c in lstm)
    for g, name in enumerate("ifco"):
        assert h[f"dst_share_{name}"] == [sum(c[g] for c in lstm) / total] * 3
    lines = [l for l in capsys.readouterr().out.splitlines()
             if l.startswith("DynamicSparsity update")]
    assert len(lines) == 2
    assert "at step 8: drop fraction 0.3000" in lines[0]
    assert "gate shares i " in lines[0]


def test_count_check_raises_on_a_corrupted_mask():
    model = compile_lm(lm())

    class Corrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            _, mask = ksr.sparse_weights(self.model)[1]
            m = mask.numpy()
            m.flat[np.flatnonzero(m == 0)[0]] = 1
            with pytest.raises(ValueError, match="the mask has 78 active weights"):
                mask.assign(m)  # refused in eager code
            # Traced code is not checked: the update's own count check
            # catches what gets through.
            tf.function(lambda: mask.assign(m))()

    cb = DynamicSparsity(0.3, update_every_steps=10)
    with pytest.raises(RuntimeError, match="cell/kernel' had 78 active weights before the update, 77 expected"):
        _fit(model, [Corrupt(), cb])


# An update's record ----------------------------------------------------------------

def test_an_updates_record_sums_its_matrices():
    model = compile_lm(lm())
    cb = DynamicSparsity(0.3, schedule="constant")
    _fit(model, [cb])
    assert [w.path for w, _ in ksr.sparse_weights(model)] == PATHS
    positions = sum(m.size for m in masks_of(model))
    assert [(u["update"], u["step"]) for u in cb.updates] == [(0, 8), (1, 16)]
    for u in cb.updates:
        assert set(u) == RECORD_KEYS
        assert [m["path"] for m in u["matrices"]] == PATHS
        assert all(set(m) == MATRIX_KEYS for m in u["matrices"])
        for key in ("pruned", "grown", "changed"):
            assert u[key] == sum(m[key] for m in u["matrices"])
        assert all(m["pruned"] == m["grown"] > 0 for m in u["matrices"])
        assert 0 < u["changed"] <= u["pruned"] + u["grown"]
        assert u["positions"] == positions
        assert u["mask_change"] == u["changed"] / positions
        assert u["drop_fraction"] == 0.3
        assert [m["gate_counts"] for m in u["matrices"]] == gate_counts(model)
    assert sorted(cb.updates[-1]["gate_shares"]) == ["c", "f", "i", "o"]
    assert sum(cb.updates[-1]["gate_shares"].values()) == pytest.approx(1.0)


def test_a_zero_update_records_nothing_changed():
    model = compile_lm(lm())
    active = sum(int(m.sum()) for m in masks_of(model))
    positions = sum(m.size for m in masks_of(model))
    cb = DynamicSparsity(schedule=lambda index, step: 0.0)
    _fit(model, [cb], epochs=2)
    [u] = cb.updates
    assert (u["pruned"], u["grown"], u["changed"], u["mask_change"]) == (0, 0, 0, 0.0)
    assert u["itop_rate"] == active / positions
    assert [m["path"] for m in u["matrices"]] == PATHS
    assert [(m["pruned"], m["grown"], m["changed"]) for m in u["matrices"]] == [(0, 0, 0)] * 4
    assert [m["gate_counts"] for m in u["matrices"]] == gate_counts(model)


# The verbose line -------------------------------------------------------------------

def test_describe_is_the_verbose_line():
    record = {"update": 2, "step": 16, "drop_fraction": 0.25, "pruned": 10,
              "grown": 10, "mask_change": 0.0125, "itop_rate": 0.5,
              "gate_shares": {"i": 0.25, "f": 0.75}}
    assert records.describe(record) == (
        "DynamicSparsity update 2 at step 16: drop fraction 0.2500, pruned 10, "
        "grown 10, mask changed 1.25%, ITOP rate 50.00%, gate shares i 25.0% f 75.0%")
    record["gate_shares"] = {}
    assert records.describe(record) == (
        "DynamicSparsity update 2 at step 16: drop fraction 0.2500, pruned 10, "
        "grown 10, mask changed 1.25%, ITOP rate 50.00%")
