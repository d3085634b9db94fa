"""SNTASGD: SGD, then averaged SGD with per-position restarts for sparse weights."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_sparse_rnn import SparseDense, SparseEmbedding, SparseLSTM, sparse_weights
from keras_sparse_rnn.masks import MaskConstraint
from keras_sparse_rnn.optimizers import SNTASGD, SNTASGDTrigger


def _lm(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((5,), batch_size=4, dtype="int32"),
        SparseEmbedding(20, 8, sparsity=0.5, mask_seed=1),
        SparseLSTM(8, sparsity=0.6, mask_seed=2, return_sequences=True),
        SparseDense(20, sparsity=0.5, mask_seed=3),
    ])


def _data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 20, size=(n, 5)).astype("int32")
    return x, np.roll(x, -1, axis=1)


_LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


# --------------------------------------------------------------------------
# Before the switch: keras SGD, step for step.


@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("kwargs", [
    dict(learning_rate=0.5),
    dict(learning_rate=0.3, momentum=0.9, nesterov=True, global_clipnorm=0.25),
])
def test_equals_sgd_before_switch(jit_compile, kwargs):
    x, y = _data()
    models = []
    for optimizer in (keras.optimizers.SGD(**kwargs), SNTASGD(**kwargs)):
        model = _lm()
        model.compile(optimizer, _LOSS, jit_compile=jit_compile)
        assert model.jit_compile is jit_compile
        models.append(model)
    for _ in range(2):
        for model in models:
            model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
        for a, b in zip(models[0].weights, models[1].weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not models[1].optimizer.averaging
    assert int(models[1].optimizer.iterations.numpy()) == 8


# --------------------------------------------------------------------------
# After the switch: the mean of the iterates, by hand.


def test_average_is_mean_of_iterates_since_switch():
    w = keras.Variable(np.array([3.0, -1.0], "float32"))
    opt = SNTASGD(learning_rate=0.5)
    grad = np.array([1.0, 2.0], "float32")
    opt.apply([grad], [w])
    opt.apply([grad], [w])
    np.testing.assert_array_equal(w.numpy(), [2.0, -3.0])
    assert not opt.has_average_weights
    opt.finalize_variable_values([w])  # nothing to average yet
    np.testing.assert_array_equal(w.numpy(), [2.0, -3.0])
    opt.switch_to_averaging()
    assert opt.averaging and opt.switch_iteration == 2
    for _ in range(3):
        opt.apply([grad], [w])
    # Iterates since the switch: [1.5, -4], [1, -5], [0.5, -6].
    np.testing.assert_array_equal(w.numpy(), [0.5, -6.0])
    np.testing.assert_array_equal(opt._averages[0].numpy(), [1.0, -5.0])
    assert float(opt._average_counts[0].numpy()) == 3.0
    # Exchange and back, exactly.
    opt.swap_average_weights()
    np.testing.assert_array_equal(w.numpy(), [1.0, -5.0])
    opt.swap_average_weights()
    np.testing.assert_array_equal(w.numpy(), [0.5, -6.0])
    opt.finalize_variable_values([w])
    np.testing.assert_array_equal(w.numpy(), [1.0, -5.0])


def _masked_variable():
    mask = keras.Variable(np.array([1.0, 1.0, 1.0, 0.0], "float32"),
                          trainable=False)
    w = keras.Variable(np.array([4.0, 4.0, 4.0, 0.0], "float32"))
    w.constraint = MaskConstraint(mask)
    return w, mask


@pytest.mark.parametrize("mode", ["eager", "xla"])
def test_update_sparse_topology_restarts_grown_and_zeroes_pruned(mode):
    w, mask = _masked_variable()
    opt = SNTASGD(learning_rate=1.0, momentum=0.5)
    opt.build([w])
    opt.switch_to_averaging()
    ones = np.ones(4, "float32")
    opt.apply([ones], [w])
    opt.apply([ones], [w])
    # m = -1, -1.5; w = 4 - 1 = 3, 3 - 1.5 = 1.5 (position 3 masked).
    np.testing.assert_array_equal(w.numpy(), [1.5, 1.5, 1.5, 0.0])
    np.testing.assert_array_equal(opt._averages[0].numpy(), [2.25, 2.25, 2.25, 0.0])
    np.testing.assert_array_equal(opt._average_counts[0].numpy(), [2, 2, 2, 0])
    # A topology update: 0 pruned, 3 grown, 1 pruned and grown again.
    new_mask = np.array([0.0, 1.0, 1.0, 1.0], "float32")
    grown = np.array([0.0, 1.0, 0.0, 1.0], "float32")
    mask.assign(new_mask)
    w.assign(w.numpy() * new_mask * (1 - grown))  # grown weights start at 0

    def update():
        opt.update_sparse_topology(w, new_mask, grown)

    if mode == "xla":
        tf.function(update, jit_compile=True)()
    else:
        update()
    np.testing.assert_array_equal(opt._averages[0].numpy(), [0.0, 0.0, 2.25, 0.0])
    np.testing.assert_array_equal(opt._average_counts[0].numpy(), [0, 0, 2, 0])
    np.testing.assert_array_equal(opt.momentums[0].numpy(), [-1.5, 0.0, -1.5, 0.0])
    _plain_steps(opt, w, 2)
    # m = 0.5 m - 1: [-1.75, -1, -1.75, -1], then [-1.875, -1.5, -1.875, -1.5];
    # w = [0, -1, -0.25, -1], then [0, -2.5, -2.125, -2.5].
    np.testing.assert_array_equal(w.numpy(), [0.0, -2.5, -2.125, -2.5])
    # Grown positions average their 2 iterates since growth; position 2 all
    # 4 since the switch; position 0 (pruned) is zero.
    np.testing.assert_allclose(
        opt._averages[0].numpy(),
        [0.0, np.mean([-1.0, -2.5]), np.mean([3.0, 1.5, -0.25, -2.125]),
         np.mean([-1.0, -2.5])], rtol=1e-6)
    np.testing.assert_array_equal(opt._average_counts[0].numpy(), [0, 2, 4, 2])


def _plain_steps(opt, w, n):
    for _ in range(n):
        opt.apply([np.ones(4, "float32")], [w])


def test_masked_averages_stay_sparse_without_topology_call():
    w, mask = _masked_variable()
    opt = SNTASGD(learning_rate=1.0)
    opt.build([w])
    opt.switch_to_averaging()
    _plain_steps(opt, w, 2)
    np.testing.assert_array_equal(opt._averages[0].numpy(), [2.5, 2.5, 2.5, 0.0])
    # The mask changes behind the optimizer's back: 0 pruned, 3 grown.
    mask.assign([0.0, 1.0, 1.0, 1.0])
    w.assign(w.numpy() * mask.numpy())
    _plain_steps(opt, w, 2)
    # Position 0's average is zero; position 3 restarted by itself (its
    # count was 0): mean of its iterates -1, -2.
    np.testing.assert_array_equal(w.numpy(), [0.0, 0.0, 0.0, -2.0])
    np.testing.assert_array_equal(
        opt._averages[0].numpy(), [0.0, np.mean([3, 2, 1, 0]),
                                   np.mean([3, 2, 1, 0]), -1.5])
    opt.finalize_variable_values([w])
    assert np.all(w.numpy()[mask.numpy() == 0] == 0)


def test_update_sparse_topology_bad_input():
    w, _ = _masked_variable()
    dense = keras.Variable(np.zeros(4, "float32"))
    opt = SNTASGD(1.0)
    # Not built yet: nothing to reset.
    opt.update_sparse_topology(w, np.ones(4), np.zeros(4))
    opt.build([w, dense])
    with pytest.raises(ValueError, match=r"new_mask must have the shape of the variable \(4,\), got \(3,\)"):
        opt.update_sparse_topology(w, np.ones(3), np.zeros(4))
    with pytest.raises(ValueError, match="had no MaskConstraint"):
        opt.update_sparse_topology(dense, np.ones(4), np.zeros(4))
    with pytest.raises(ValueError, match="not one this optimizer was built with"):
        opt.update_sparse_topology(keras.Variable(np.zeros(4, "float32")),
                                   np.ones(4), np.zeros(4))


# --------------------------------------------------------------------------
# The non-monotonic trigger.


def _merity_switch_epoch(values, nonmono):
    """AWD-LSTM / Selfish-RNN main.py, literally (1-based epoch, or None)."""
    best_val_loss = []
    for epoch, val_loss in enumerate(values, start=1):
        if len(best_val_loss) > nonmono and val_loss > min(best_val_loss[:-nonmono]):
            return epoch
        best_val_loss.append(val_loss)
    return None


def test_trigger_switches_at_the_exact_epoch():
    values = [5.0, 4.0, 3.0, 3.5, 3.2, 2.9, 3.1, 2.0]
    # By hand, nonmono=2: epoch 7's 3.1 > min(5, 4, 3, 3.5) = 3.
    assert _merity_switch_epoch(values, 2) == 7
    model = _lm()
    model.compile(SNTASGD(0.1, nonmono=2), _LOSS)
    trigger = SNTASGDTrigger("val_loss")
    trigger.set_model(model)
    switched = []
    for epoch, value in enumerate(values):
        logs = {"val_loss": value}
        trigger.on_epoch_end(epoch, logs)
        switched.append(logs["asgd_averaging"])
    assert switched == [0.0] * 6 + [1.0, 1.0]


@pytest.mark.parametrize("nonmono", [1, 2, 5])
def test_trigger_matches_merity_rule_on_random_sequences(nonmono):
    rng = np.random.default_rng(nonmono)
    for _ in range(100):
        values = list(np.round(3 + rng.normal(size=25).cumsum() * 0.1, 2))
        opt = SNTASGD(0.1, nonmono=nonmono)
        epoch = None
        for i, v in enumerate(values, start=1):
            if opt.record_validation(v):
                epoch = i
                break
        assert epoch == _merity_switch_epoch(values, nonmono), values


class _SyntheticValLoss(keras.callbacks.Callback):
    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.values[epoch]


class _Iterates(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.iterates = []

    def on_train_batch_end(self, batch, logs=None):
        self.iterates.append([w.numpy().copy() for w in self.model.trainable_weights])


@pytest.mark.parametrize("jit_compile", [True, False])
def test_fit_switches_averages_and_saves(jit_compile, tmp_path):
    x, y = _data()
    model = _lm()
    model.compile(SNTASGD(0.5, nonmono=1), _LOSS, jit_compile=jit_compile)
    assert model.jit_compile is jit_compile
    iterates = _Iterates()
    # nonmono=1: epoch 3's 4.0 > min(3.0) switches, after step 12.
    model.fit(x, y, batch_size=4, epochs=5, verbose=0, shuffle=False,
              callbacks=[_SyntheticValLoss([3.0, 2.0, 4.0, 9.0, 9.0]),
                         SNTASGDTrigger(), iterates])
    opt = model.optimizer
    assert opt.switch_iteration == 12
    assert len(iterates.iterates) == 20
    # finalize_variable_values wrote the mean of the iterates of steps 13-20.
    for i, w in enumerate(model.trainable_weights):
        expected = np.mean([it[i] for it in iterates.iterates[12:]], axis=0)
        np.testing.assert_allclose(w.numpy(), expected, rtol=1e-5, atol=1e-7)
    for w, m in sparse_weights(model):
        assert np.all(w.numpy()[m.numpy() == 0] == 0)
    path = tmp_path / "asgd.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    lopt = loaded.optimizer
    assert isinstance(lopt, SNTASGD) and lopt.nonmono == 1
    assert lopt.switch_iteration == 12
    for a, b in zip(opt.variables, lopt.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    loaded.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert int(lopt.iterations.numpy()) == 24


def test_swap_for_validation_uses_averages():
    x, y = _data()
    model = _lm()
    model.compile(SNTASGD(0.5), _LOSS)
    model.optimizer.build(model.trainable_variables)
    model.optimizer.switch_to_averaging()

    class Probe(keras.callbacks.Callback):
        def on_test_begin(self, logs=None):
            self.during = [w.numpy().copy() for w in self.model.trainable_weights]

        def on_epoch_end(self, epoch, logs=None):
            self.after = [w.numpy().copy() for w in self.model.trainable_weights]

    probe = Probe()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, validation_data=(x, y),
              callbacks=[SNTASGDTrigger(swap_for_validation=True), probe])
    opt = model.optimizer
    # During validation the model held the averages (and they the weights).
    for during, average in zip(probe.during, opt._averages):
        np.testing.assert_array_equal(during, average.numpy())
    # Back after it; at the end of fit, finalize wrote the averages.
    for during, after, w in zip(probe.during, probe.after, model.trainable_weights):
        assert not np.array_equal(during, after)
        np.testing.assert_array_equal(w.numpy(), during)


# --------------------------------------------------------------------------
# Config and bad input.


def test_config_round_trip():
    opt = SNTASGD(learning_rate=2.0, momentum=0.5, nesterov=True, nonmono=3,
                  global_clipnorm=0.25)
    config = opt.get_config()
    assert (config["momentum"], config["nesterov"], config["nonmono"]) == (0.5, True, 3)
    clone = SNTASGD.from_config(config)
    assert clone.get_config() == config
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert isinstance(restored, SNTASGD) and restored.nonmono == 3


@pytest.mark.parametrize("kwargs, message", [
    (dict(momentum=1.5), "momentum must be a number in [0, 1], got 1.5"),
    (dict(nonmono=0), "nonmono must be a positive int, got 0"),
    (dict(nesterov="yes"), "nesterov must be True or False, got 'yes'"),
    (dict(use_ema=True), "use_ema must be False for SNTASGD"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError) as info:
        SNTASGD(**kwargs)
    assert message in str(info.value)


def test_bad_validation_values_and_trigger_use():
    opt = SNTASGD(0.1)
    with pytest.raises(ValueError, match="value must be a number, not NaN"):
        opt.record_validation(float("nan"))
    with pytest.raises(ValueError, match="value must be a number"):
        opt.record_validation("low")
    with pytest.raises(ValueError, match="swap_average_weights: there are no averaged weights"):
        opt.swap_average_weights()
    with pytest.raises(ValueError, match=r"verbose must be a bool or an int >= 0 \(0: silent\), got -1"):
        SNTASGDTrigger(verbose=-1)
    with pytest.raises(ValueError, match=r"verbose must be a bool or an int >= 0 \(0: silent\), got 'on'"):
        SNTASGDTrigger(verbose="on")
    x, y = _data()
    model = _lm()
    model.compile(keras.optimizers.SGD(0.1), _LOSS)
    with pytest.raises(ValueError, match="needs a model compiled with keras_sparse_rnn.optimizers.SNTASGD, got SGD"):
        model.fit(x, y, verbose=0, callbacks=[SNTASGDTrigger()])
    model = _lm()
    model.compile(SNTASGD(0.1), _LOSS)
    with pytest.raises(ValueError, match="monitor='val_loss' is not in the logs of epoch 1"):
        model.fit(x, y, verbose=0, callbacks=[SNTASGDTrigger()])
