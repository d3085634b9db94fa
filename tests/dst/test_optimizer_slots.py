"""One test per Keras 3 optimizer: the adapter finds every per-position slot
(cross-checked with the names Keras gives slots: `<weight path>_<slot>`),
resets exactly the given positions, and finds the first moment."""

import numpy as np
import pytest
import keras

from keras_sparse_rnn.dst import optimizer_slots

O = keras.optimizers

OPTIMIZERS = {
    # name: (factory, slot attributes expected, first-moment attribute)
    "sgd_momentum": (lambda: O.SGD(0.1, momentum=0.9), ["momentums"], "momentums"),
    "sgd_plain": (lambda: O.SGD(0.1), [], None),
    "adam": (lambda: O.Adam(0.1), ["_momentums", "_velocities"], "_momentums"),
    "adam_amsgrad": (lambda: O.Adam(0.1, amsgrad=True),
                     ["_momentums", "_velocities", "_velocity_hats"], "_momentums"),
    "adamw": (lambda: O.AdamW(0.1), ["_momentums", "_velocities"], "_momentums"),
    "nadam": (lambda: O.Nadam(0.1), ["_momentums", "_velocities"], "_momentums"),
    "adamax": (lambda: O.Adamax(0.1), ["_m", "_u"], "_m"),
    "rmsprop": (lambda: O.RMSprop(0.1), ["_velocities"], None),
    "rmsprop_centered_momentum": (
        lambda: O.RMSprop(0.1, momentum=0.5, centered=True),
        ["_velocities", "_momentums", "_average_gradients"], None),
    "adagrad": (lambda: O.Adagrad(0.1), ["_accumulators"], None),
    "adadelta": (lambda: O.Adadelta(0.1),
                 ["_accumulated_grads", "_accumulated_delta_vars"], None),
    "ftrl": (lambda: O.Ftrl(0.1), ["_accumulators", "_linears"], None),
    "lamb": (lambda: O.Lamb(0.1), ["_momentums", "_velocities"], "_momentums"),
    "lion": (lambda: O.Lion(0.1), ["_momentums"], "_momentums"),
    # Adafactor factors a matrix's second moment into a row and a column
    # vector (not per position, left alone); its `_v` is per position.
    "adafactor": (lambda: O.Adafactor(0.1), ["_v"], None),
    "muon": (lambda: O.Muon(0.1), ["momentums"], None),
    "schedule_free_adamw": (lambda: O.ScheduleFreeAdamW(0.1),
                            ["_momentums", "_velocities"], None),
    "adam_ema": (lambda: O.Adam(0.1, use_ema=True),
                 ["_momentums", "_velocities", "_model_variables_moving_average"],
                 "_momentums"),
    "sgd_accumulation": (
        lambda: O.SGD(0.1, momentum=0.9, gradient_accumulation_steps=2),
        ["momentums", "_accumulated_gradients"], "momentums"),
}


def _trained(optimizer, steps=3):
    rng = np.random.default_rng(0)
    kernel = keras.Variable(rng.normal(size=(6, 4)).astype("float32"),
                            name="kernel")
    bias = keras.Variable(np.zeros(4, "float32"), name="bias")
    for _ in range(steps):
        grads = [rng.normal(size=(6, 4)).astype("float32"),
                 rng.normal(size=4).astype("float32")]
        optimizer.apply(grads, [kernel, bias])
    return kernel, bias


def _by_name(optimizer, variable):
    """Slots as Keras names them: `<path with _>_<slot>`, same shape."""
    prefix = variable.path.replace("/", "_") + "_"
    return {id(v) for v in optimizer.variables
            if v.name.startswith(prefix) and tuple(v.shape) == tuple(variable.shape)}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_slots_found_reset_and_first_moment(name):
    factory, attrs, first = OPTIMIZERS[name]
    optimizer = factory()
    kernel, bias = _trained(optimizer)
    found = optimizer_slots.slot_variables(optimizer, kernel)
    assert [a for a, _ in found] == attrs
    assert {id(s) for _, s in found} == _by_name(optimizer, kernel)
    positions = np.zeros((6, 4), "float32")
    positions[[0, 2, 5], [1, 3, 0]] = 1
    before = [s.numpy().copy() for _, s in found]
    assert all(np.count_nonzero(b) > 0 for b in before)
    assert optimizer_slots.reset_slots(optimizer, kernel, positions) == attrs
    for (_, slot), old in zip(found, before):
        np.testing.assert_array_equal(slot.numpy(), old * (1 - positions))
    moment = optimizer_slots.first_moment(optimizer, kernel)
    if first is None:
        assert moment is None
        assert optimizer_slots.has_first_moment(optimizer) is False
    else:
        assert moment is getattr(optimizer, first)[optimizer._get_variable_index(kernel)]
        assert optimizer_slots.has_first_moment(optimizer) is True


def test_loss_scale_optimizer_uses_the_inner_slots():
    inner = O.Adam(0.1)
    optimizer = O.LossScaleOptimizer(inner)
    kernel, _ = _trained(optimizer)
    found = optimizer_slots.slot_variables(optimizer, kernel)
    assert [a for a, _ in found] == ["_momentums", "_velocities"]
    assert found[0][1] is inner._momentums[inner._get_variable_index(kernel)]
    assert optimizer_slots.first_moment(optimizer, kernel) is found[0][1]


def test_multi_optimizer_finds_the_owner():
    from keras.src.optimizers.multi_optimizer import OptimizerMap

    adam, sgd = O.Adam(0.1), O.SGD(0.1, momentum=0.9)
    optimizer = O.MultiOptimizer(OptimizerMap(default_optimizer=sgd,
                                              optimizer_map={"kernel": adam}))
    kernel, bias = _trained(optimizer)
    assert [a for a, _ in optimizer_slots.slot_variables(optimizer, kernel)] == [
        "_momentums", "_velocities"]
    assert [a for a, _ in optimizer_slots.slot_variables(optimizer, bias)] == [
        "momentums"]


class _Traced(O.Optimizer):
    """An optimizer the adapter does not know: a gradient trace per weight."""

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._traces = self.add_optimizer_variables(variables, "trace")

    def update_step(self, gradient, variable, learning_rate):
        trace = self._traces[self._get_variable_index(variable)]
        self.assign(trace, 0.5 * trace + gradient)
        self.assign_sub(variable, learning_rate * trace)


def test_unknown_optimizer_falls_back_to_slot_lists():
    optimizer = _Traced(learning_rate=0.1)
    kernel, _ = _trained(optimizer)
    found = optimizer_slots.slot_variables(optimizer, kernel)
    assert [a for a, _ in found] == ["_traces"]
    assert optimizer_slots.first_moment(optimizer, kernel) is None


def test_unbuilt_optimizer_and_untrained_variable_have_no_slots():
    optimizer = O.Adam(0.1)
    kernel = keras.Variable(np.zeros((2, 2), "float32"), name="k")
    assert optimizer_slots.slot_variables(optimizer, kernel) == []
    _trained(optimizer)
    assert optimizer_slots.slot_variables(optimizer, kernel) == []
    assert optimizer_slots.first_moment(optimizer, kernel) is None


def test_sntasgd_is_seen_as_the_sgd_it_extends():
    # SNT-ASGD subclasses SGD: with momentum it keeps SGD's first moment, which
    # grow="momentum" then reads (no grow_data needed); without, it keeps none.
    from keras_sparse_rnn.optimizers import SNTASGD

    assert optimizer_slots.has_first_moment(SNTASGD(0.1, momentum=0.9))
    assert not optimizer_slots.has_first_moment(SNTASGD(0.1))
