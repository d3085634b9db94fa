import itertools
import math

import numpy as np
import pytest
import keras

import keras_sparse_rnn as ksr
from keras_sparse_rnn import masks as masks_lib
from keras_sparse_rnn.dst import DynamicSparsity

from dst_helpers import (BATCH, SEQ, VOCAB, TopologyChecker, compile_lm, data,
                         gate_counts, lm, masks_of)

X, Y = data()
GROW_DATA = (X[:8], Y[:8])


def _fit(model, callbacks, epochs=3, **kwargs):
    return model.fit(X, Y, batch_size=BATCH, epochs=epochs, verbose=0,
                     shuffle=False, callbacks=callbacks, **kwargs)


# Bad input ------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,message", [
    ({"drop_fraction": 1.2}, r"drop_fraction must be in \(0, 1\), got 1.2"),
    ({"drop_fraction": 0}, r"drop_fraction must be in \(0, 1\), got 0.0"),
    ({"schedule": "linear"}, r"schedule must be one of \['constant', 'cosine'\] or a callable"),
    ({"prune": "random"}, r"prune must be one of \['magnitude', 'set'\], got 'random'"),
    ({"grow": "magnitude"}, r"grow must be one of .*'gradient'.*got 'magnitude'"),
    ({"update_every_epochs": 2, "update_every_steps": 10},
     r"update_every_epochs and update_every_steps cannot both be given"),
    ({"update_every_epochs": 1, "update_every_steps": 10},
     r"update_every_epochs and update_every_steps cannot both be given"),
    ({"update_every_epochs": None}, r"both None"),
    ({"update_every_epochs": 0}, r"update_every_epochs must be a positive int, got 0"),
    ({"update_every_steps": 2.5}, r"update_every_steps must be a positive int, got 2.5"),
    ({"redistribution": "cells"}, r"redistribution must be one of \['none', 'gates'\], got 'cells'"),
    ({"start": -1}, r"start must be an int >= 0"),
    ({"start": 1.5}, r"start as a fraction of training must be in \[0, 1\), got 1.5"),
    ({"stop": 0}, r"stop must be None, an int >= 1"),
    ({"stop": 1.5}, r"stop as a fraction of training must be in \(0, 1\], got 1.5"),
    ({"start": 100, "stop": 50}, r"start must be smaller than stop"),
    ({"grow_data": GROW_DATA}, r"grow_data is used only by grow='gradient' or 'momentum'"),
    ({"grow": "gradient", "grow_data": X}, r"grow_data must be an \(x, y\)"),
    ({"seed": -1}, r"seed must be a non-negative int, got -1"),
    ({"verbose": -1}, r"verbose must be a bool or an int >= 0 \(0: silent\), got -1"),
    ({"verbose": "on"}, r"verbose must be a bool or an int >= 0 \(0: silent\), got 'on'"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DynamicSparsity(**kwargs)


def test_model_without_sparse_weights():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="has no sparse layer"):
        model.fit(np.zeros((4, 4)), np.zeros((4, 2)), verbose=0,
                  callbacks=[DynamicSparsity()])


def test_momentum_without_first_moment_needs_grow_data():
    model = compile_lm(lm(), keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match="grow='momentum' needs .*give grow_data"):
        _fit(model, [DynamicSparsity(grow="momentum")], epochs=1)


def test_gradient_growth_in_fit_needs_grow_data():
    # Custom loops give the gradient to step_end instead; fit must have it.
    model = compile_lm(lm())
    with pytest.raises(ValueError, match=r"grow='gradient' .*give grow_data"):
        _fit(model, [DynamicSparsity(grow="gradient")], epochs=1)


def test_bad_callable_schedule_output():
    model = compile_lm(lm())
    cb = DynamicSparsity(schedule=lambda index, step: 1.5)
    with pytest.raises(ValueError, match=r"schedule must return a number in \[0, 1\), got 1.5"):
        _fit(model, [cb], epochs=2)


# Exact counts, zeros and reset slots, for every combination --------------

COMBOS = list(itertools.product(["magnitude", "set"],
                                ["random", "gradient", "momentum"],
                                ["none", "gates"]))


@pytest.mark.parametrize("prune,grow,redistribution", COMBOS)
def test_every_combination_keeps_counts(prune, grow, redistribution):
    # The update is XLA-compiled whatever the train step; the XLA train step
    # is tested below (its compilation costs seconds a model). The packed
    # LSTM kernels are the matrices with gates; the embedding and softmax
    # (one gate) are updated in the other tests.
    model = compile_lm(lm(sparse_ends=False), jit_compile=False)
    cb = DynamicSparsity(0.4, schedule="constant", prune=prune, grow=grow,
                         redistribution=redistribution, seed=1,
                         grow_data=None if grow == "random" else GROW_DATA)
    checker = TopologyChecker(per_gate=redistribution == "none")
    before = masks_of(model)
    history = _fit(model, [cb, checker])
    assert [u["step"] for u in cb.updates] == [8, 16]
    assert checker.newly_active > 0
    assert any(not np.array_equal(a, b) for a, b in zip(before, masks_of(model)))
    # Epochs 1 and 2 updated, each exchanging round(0.4 * count) weights per
    # gate (a 0 == 0 in epoch 3, which has no update, proves nothing).
    assert history.history["dst_updates"] == [1, 1, 0]
    if prune == "magnitude":  # one pool: per gate, or per matrix with "gates"
        groups = 4 if redistribution == "none" else 1
        expected = sum(int(np.floor(0.4 * c + 0.5))
                       for m in before for c in masks_lib.gate_counts(m, groups))
        assert history.history["dst_pruned"][:2] == [expected, expected]
    assert all(p > 0 for p in history.history["dst_pruned"][:2])
    assert history.history["dst_pruned"] == history.history["dst_grown"]
    assert history.history["dst_pruned"][2] == 0


def test_under_xla_train_step():
    # The gradient on grow_data is then XLA-compiled as well.
    model = compile_lm(lm(), jit_compile=True)
    assert model.jit_compile is True
    cb = DynamicSparsity(0.4, grow="gradient", prune="set", schedule="constant",
                         grow_data=GROW_DATA)
    checker = TopologyChecker()
    _fit(model, [cb, checker])
    assert [u["step"] for u in cb.updates] == [8, 16]
    assert checker.newly_active == sum(u["grown"] for u in cb.updates)


def test_block_sparse_weights_move_whole_blocks():
    model = compile_lm(lm(block=(1, 4)))
    cb = DynamicSparsity(0.4, grow="gradient", grow_data=GROW_DATA,
                         redistribution="gates", schedule="constant")
    _fit(model, [cb, TopologyChecker(per_gate=False)])
    blocked = [s.block_shape is not None for s in ksr.sparse_matrices(model)]
    assert blocked == [False, True, True, True]
    for spec in ksr.sparse_matrices(model)[1:]:
        m = spec.mask.numpy()
        np.testing.assert_array_equal(m[0::4], m[3::4])
    for record in cb.updates[-1]["matrices"][1:]:
        assert record["pruned"] % 4 == 0 and record["pruned"] > 0


def test_without_xla_and_own_momentum_average():
    model = compile_lm(lm(), keras.optimizers.SGD(0.5), jit_compile=False)
    assert model.jit_compile is False
    cb = DynamicSparsity(0.3, grow="momentum", grow_data=GROW_DATA)

    class MasksBeforeLastUpdate(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):  # epoch 2 ends at step 16
            if epoch == 1:
                self.masks = masks_of(self.model)

    before = MasksBeforeLastUpdate()
    _fit(model, [before, cb, TopologyChecker()])
    assert [u["step"] for u in cb.updates] == [8, 16]
    state = cb.get_state()
    assert len(state["momentum"]) == 4
    assert all(np.count_nonzero(m) > 0 for m in state["momentum"])
    # The average restarts (is 0) at the positions grown by the last update,
    # and is kept elsewhere.
    for old, new, ema in zip(before.masks, masks_of(model), state["momentum"]):
        grown = (new == 1) & (old == 0)
        assert grown.any()
        assert np.all(ema[grown] == 0)
        assert np.count_nonzero(ema[~grown]) > 0


# When updates happen ---------------------------------------------------------

@pytest.mark.parametrize("jit_compile", [False, True])
def test_steps_per_execution_counts_optimizer_steps(jit_compile):
    model = compile_lm(lm(), steps_per_execution=3, jit_compile=jit_compile)
    assert model.jit_compile is jit_compile
    cb = DynamicSparsity(update_every_steps=4, schedule="constant")

    class AfterEveryChunk(TopologyChecker):
        # The updates happen mid-epoch: check right after each chunk instead.
        def on_train_batch_end(self, batch, logs=None):
            TopologyChecker.on_epoch_end(self, None)

        def on_epoch_end(self, epoch, logs=None):
            pass

    checker = AfterEveryChunk()
    _fit(model, [cb, checker], epochs=2)
    assert checker.newly_active == sum(u["grown"] for u in cb.updates) > 0
    # 8 steps an epoch in chunks of 3: batch callbacks after steps 3, 6, 8,
    # 11, 14, 16; points every 4 steps; none at the last step (16).
    assert [u["step"] for u in cb.updates] == [6, 8, 14]
    assert [u["update"] for u in cb.updates] == [0, 1, 2]


def test_start_stop_in_steps_and_fractions():
    model = compile_lm(lm())
    cb = DynamicSparsity(update_every_steps=3, start=4, stop=10,
                         schedule="constant")
    _fit(model, [cb], epochs=2)
    assert [u["step"] for u in cb.updates] == [6, 9]
    model = compile_lm(lm())
    cb = DynamicSparsity(update_every_steps=2, start=0.25, stop=0.75,
                         schedule="constant")
    _fit(model, [cb], epochs=2)
    assert [u["step"] for u in cb.updates] == [4, 6, 8, 10]


def test_update_every_two_epochs():
    model = compile_lm(lm())
    cb = DynamicSparsity(update_every_epochs=2)
    history = _fit(model, [cb], epochs=5)
    assert [u["step"] for u in cb.updates] == [16, 32]
    assert history.history["dst_updates"] == [0, 1, 0, 1, 0]


def test_cosine_and_callable_schedules():
    model = compile_lm(lm())
    cb = DynamicSparsity(0.5)  # cosine to the end of training: 4 x 8 steps
    _fit(model, [cb], epochs=4)
    expected = [0.25 * (1 + math.cos(math.pi * t / 32)) for t in (8, 16, 24)]
    assert [u["drop_fraction"] for u in cb.updates] == pytest.approx(expected)
    calls = []

    def schedule(index, step):
        calls.append((index, step))
        return 0.1

    model = compile_lm(lm())
    _fit(model, [DynamicSparsity(schedule=schedule)], epochs=3)
    assert calls == [(0, 8), (1, 16)]


# Logs -------------------------------------------------------------------------

@pytest.mark.parametrize("redistribution", ["none", "gates"])
def test_redistribution_fixes_or_frees_the_gate_counts(redistribution):
    # Equal gate counts at the start (a sparsity per gate): "none" keeps each
    # gate's count, "gates" keeps only the matrix's total and lets them drift.
    model = compile_lm(lm(sparsity={"kernel": [0.5] * 4, "recurrent_kernel": [0.5] * 4},
                          sparse_ends=False))
    start = gate_counts(model)
    assert all(len(set(c)) == 1 for c in start)
    cb = DynamicSparsity(0.5, grow="gradient", grow_data=GROW_DATA,
                         redistribution=redistribution, schedule="constant")
    history = _fit(model, [cb, TopologyChecker(per_gate=redistribution == "none")])
    end = gate_counts(model)
    assert [sum(c) for c in end] == [sum(c) for c in start]
    shares = [history.history[f"dst_share_{g}"] for g in "ifco"]
    assert sum(s[-1] for s in shares) == pytest.approx(1.0)
    if redistribution == "none":
        assert end == start
        assert all(s == [0.25] * 3 for s in shares)
    else:
        assert end != start
        assert any(s[-1] != 0.25 for s in shares)


def _rnn_model(kind):
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    if kind == "gru":
        rnn = ksr.SparseGRU(8, sparsity=0.5, mask_seed=2, return_sequences=True,
                            name="rnn")
    else:
        rnn = ksr.SparseRHN(8, depth=2, sparsity=0.5, mask_seed=2,
                            return_sequences=True, name="rnn")
    return keras.Sequential([
        keras.Input((SEQ,), dtype="int32"),
        keras.layers.Embedding(VOCAB, 8, name="emb"), rnn,
        keras.layers.Dense(VOCAB, name="softmax")])


@pytest.mark.parametrize("kind,gates", [("gru", "zrh"), ("rhn", "HT")])
def test_gru_and_rhn_gates(kind, gates):
    model = compile_lm(_rnn_model(kind), jit_compile=True)
    assert model.jit_compile is True
    start = gate_counts(model)
    cb = DynamicSparsity(0.5, grow="gradient", grow_data=GROW_DATA,
                         redistribution="gates", schedule="constant")
    checker = TopologyChecker(per_gate=False)
    history = _fit(model, [cb, checker])
    assert [u["step"] for u in cb.updates] == [8, 16]
    assert checker.newly_active > 0
    assert [sum(c) for c in gate_counts(model)] == [sum(c) for c in start]
    shares = {g: history.history[f"dst_share_{g}"] for g in gates}
    assert sum(s[-1] for s in shares.values()) == pytest.approx(1.0)
    assert not any(k.startswith("dst_share_") and k[10:] not in gates
                   for k in history.history)


def test_sntasgd_averages_follow_the_topology():
    from keras_sparse_rnn.optimizers import SNTASGD

    class SwitchAtFirstBatch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if not self.model.optimizer.averaging:
                self.model.optimizer.switch_to_averaging()

    class MasksBeforeUpdate(keras.callbacks.Callback):
        # Before DynamicSparsity in the list: the masks before its last
        # update, at the end of the second epoch (step 16).
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.masks = masks_of(self.model)

    model = compile_lm(lm(), SNTASGD(0.5), jit_compile=True)
    before = MasksBeforeUpdate()
    cb = DynamicSparsity(0.4, grow="random", schedule="constant")
    _fit(model, [SwitchAtFirstBatch(), before, cb, TopologyChecker()])
    assert [u["step"] for u in cb.updates] == [8, 16]
    optimizer = model.optimizer
    for (w, m), old in zip(ksr.sparse_weights(model), before.masks):
        mask = m.numpy()
        index = optimizer._get_variable_index(w)
        average = optimizer._averages[index].numpy()
        count = optimizer._average_counts[index].numpy()
        # The averaged (finalized) weights and the averages are as sparse as
        # the masks; weights grown at step 16 are averaged over the 8 steps
        # since, the others over the 23 since the switch after step 1.
        assert np.all(w.numpy()[mask == 0] == 0)
        assert np.all(average[mask == 0] == 0) and np.all(count[mask == 0] == 0)
        np.testing.assert_array_equal(w.numpy(), average)
        grown = (mask == 1) & (old == 0)
        assert grown.any()
        assert np.all(count[grown] == 8)
        assert count.max() == 23


# Reproducibility -----------------------------------------------------------

def _run(seed, grow="random"):
    model = compile_lm(lm())
    cb = DynamicSparsity(0.3, grow=grow, seed=seed,
                         grow_data=None if grow == "random" else GROW_DATA)
    _fit(model, [cb])
    return masks_of(model)


def test_same_seed_same_masks_two_fresh_runs():
    a, b, c = _run(0), _run(0), _run(1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert any(not np.array_equal(x, z) for x, z in zip(a, c))


# The optimizer protocol -------------------------------------------------------

class RecordingSGD(keras.optimizers.SGD):
    """An optimizer implementing `update_sparse_topology`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.topology_calls = []

    def update_sparse_topology(self, variable, new_mask, grown):
        self.topology_calls.append(
            (variable, np.array(new_mask), np.array(grown),
             variable.numpy().copy()))


def test_optimizer_protocol_is_called_per_matrix():
    optimizer = RecordingSGD(0.1, momentum=0.9)
    model = compile_lm(lm(), optimizer)
    cb = DynamicSparsity(0.3)
    _fit(model, [cb], epochs=2)
    calls = optimizer.topology_calls
    weights = [w for w, _ in ksr.sparse_weights(model)]
    assert [c[0] for c in calls] == weights  # one update, every matrix
    for (variable, new_mask, grown, value), mask in zip(calls, masks_of(model)):
        np.testing.assert_array_equal(new_mask, mask)
        assert grown.sum() > 0 and np.all(new_mask[grown == 1] == 1)
        assert np.all(value[grown == 1] == 0)


# A zero drop fraction (the count check and the records: tests/dst/test_records.py) --

def test_zero_fraction_is_a_no_op():
    model = compile_lm(lm())
    before = masks_of(model)
    cb = DynamicSparsity(schedule=lambda index, step: 0.0)
    _fit(model, [cb], epochs=2)
    assert len(cb.updates) == 1 and cb.updates[0]["pruned"] == 0
    assert all(np.array_equal(a, b) for a, b in zip(before, masks_of(model)))


# Unknown steps per epoch (the state: tests/dst/test_state.py; grow_data forms:
# tests/dst/test_gradient_signal.py) ---------------------------------------------

@pytest.mark.filterwarnings("ignore:Your input ran out of data")
def test_unknown_steps_per_epoch_counts_epochs():
    import tensorflow as tf

    ds = (tf.data.Dataset.from_tensor_slices((X, Y)).batch(BATCH)
          .filter(lambda x, y: True))  # unknown cardinality
    model = compile_lm(lm())
    with pytest.raises(ValueError, match="schedule='cosine' decays to zero at `stop`"):
        model.fit(ds, epochs=1, verbose=0, shuffle=False,
                  callbacks=[DynamicSparsity()])
    with pytest.raises(ValueError, match=r"start=0.5 is a fraction of the planned training"):
        model.fit(ds, epochs=1, verbose=0, shuffle=False,
                  callbacks=[DynamicSparsity(schedule="constant", start=0.5)])
    cb = DynamicSparsity(schedule="constant")
    ends = []

    class Steps(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            ends.append(int(self.model.optimizer.iterations.numpy()))

    model.fit(ds, epochs=3, verbose=0, shuffle=False, callbacks=[cb, Steps()])
    # No planned end: an update after each epoch, the last one included.
    assert [u["step"] for u in cb.updates] == ends
    assert len(ends) == 3 and ends[0] > 0


# Resuming: what is kept ------------------------------------------------------

def test_after_a_resume_update_count_counts_all_and_updates_this_run(tmp_path):
    """docs/dst.md, "Resuming": the count is state (restored); `updates` are
    the records this callback object made (statistics, not restored), and
    their indices continue the count."""
    assert DynamicSparsity().update_count == 0  # no model yet
    model = compile_lm(lm())
    first = DynamicSparsity(0.3, schedule="constant")
    _fit(model, [first], epochs=3)  # updates after epochs 1 and 2
    assert [u["update"] for u in first.updates] == [0, 1]
    assert first.update_count == 2
    assert first.state.progress() == (2, 2)  # (last update point, count)
    path = str(tmp_path / "run.weights.h5")
    model.save_weights(path)

    model = compile_lm(lm())
    second = DynamicSparsity(0.3, schedule="constant")
    second.set_model(model)  # attaches the state, then the file fills it
    model.load_weights(path)
    assert second.update_count == 2
    assert second.updates == []
    assert second.get_state()["update_count"] == 2
    record = second.update_topology(drop_fraction=0.1)
    assert record["update"] == 2
    assert [u["update"] for u in second.updates] == [2]
    assert second.update_count == 3
    assert second.state.progress() == (2, 3)
