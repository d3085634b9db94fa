"""Grow inputs: the registry of grow signals, and a new one as one class."""

import numpy as np
import pytest
import keras
import tensorflow as tf

from keras_sparse_rnn.dst import DynamicSparsity, registry, scores
from keras_sparse_rnn.dst.grow_inputs import (GradientGrowInput, GrowContext,
                                              GrowInput, MomentumGrowInput,
                                              NoGrowInput)

from dst_helpers import BATCH, compile_lm, data, lm, masks_of

X, Y = data()
GROW_DATA = (X[:8], Y[:8])


def _fit(model, callbacks, epochs=3):
    return model.fit(X, Y, batch_size=BATCH, epochs=epochs, verbose=0,
                     shuffle=False, callbacks=callbacks)


def test_builtin_grow_inputs():
    assert registry.grow_input_names()[:1] == [None]
    assert {"gradient", "momentum"} <= set(registry.grow_input_names())
    assert registry.get_grow_input(None) is NoGrowInput
    assert registry.get_grow_input("gradient") is GradientGrowInput
    assert registry.get_grow_input("momentum") is MomentumGrowInput


def test_register_grow_input_errors():
    with pytest.raises(ValueError, match="cls must be a subclass of .*GrowInput, got 3"):
        registry.register_grow_input("x_test", 3)
    with pytest.raises(ValueError, match="cls must be a subclass"):
        registry.register_grow_input("x_test", dict)
    with pytest.raises(ValueError, match="A grow input named 'gradient' is already registered"):
        registry.register_grow_input("gradient", GradientGrowInput)
    with pytest.raises(ValueError, match="A grow input name must be a non-empty str, got ''"):
        registry.register_grow_input("", GradientGrowInput)
    with pytest.raises(ValueError, match=r"needs must be one of \[None, .*'gradient'.*got 'hessian'"):
        registry.register_grow("x_test", scores.gradient_grow, needs="hessian")


def test_momentum_input_keeps_its_own_average_only_without_a_first_moment():
    sgd = MomentumGrowInput(keras.optimizers.SGD(0.1))
    assert (sgd.own_average, sgd.state_name, sgd.needs_gradient()) == (True, "momentum", True)
    adam = MomentumGrowInput(keras.optimizers.Adam())
    assert (adam.own_average, adam.state_name, adam.needs_gradient()) == (False, None, False)
    assert "the optimizer SGD keeps none" in sgd.missing_gradient_message("momentum")
    # The average restarts at 0 where weights grew, and only there.
    state = [tf.Variable(np.full((2, 3), 0.5, np.float32))]
    context = GrowContext([None], None, None, state)
    grown = tf.constant([[1, 0, 0], [0, 0, 1]], tf.float32)
    sgd.on_grown(0, grown, context)
    np.testing.assert_array_equal(state[0].numpy(), [[0, 0.5, 0.5], [0.5, 0.5, 0]])


def test_gradient_input_passes_the_signal_through():
    context = GrowContext([None, None], None, lambda: ["g0", "g1"], [])
    assert GradientGrowInput(None).prepare(context) == ["g0", "g1"]
    assert NoGrowInput(None).prepare(context) == [None, None]
    assert not NoGrowInput(None).needs_gradient()


class SquaredGradientInput(GrowInput):
    """The worked example of `grow_inputs` and ARCHITECTURE.md."""

    uses_gradient = True

    def prepare(self, context):
        return [g * g for g in context.gradients()]


def test_a_new_grow_signal_is_one_class():
    registry.register_grow_input("squared_gradient_test", SquaredGradientInput,
                                 overwrite=True)
    registry.register_grow("fisher_test", scores.gradient_grow,
                           needs="squared_gradient_test", overwrite=True)
    # g * g ranks positions as |g| does: the masks equal RigL's, update for
    # update, and differ from SET's random growth.
    results = {}
    for grow in ["fisher_test", "gradient", "random"]:
        model = compile_lm(lm())
        kwargs = {} if grow == "random" else {"grow_data": GROW_DATA}
        cb = DynamicSparsity(0.3, grow=grow, **kwargs)
        _fit(model, [cb])
        assert len(cb.updates) == 2 and cb.updates[0]["grown"] > 0
        results[grow] = masks_of(model)
    for a, b in zip(results["fisher_test"], results["gradient"]):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b)
               for a, b in zip(results["fisher_test"], results["random"]))
    # fit needs grow_data for it, as for RigL.
    model = compile_lm(lm())
    with pytest.raises(ValueError, match="grow='fisher_test' ranks positions by the gradient"):
        _fit(model, [DynamicSparsity(grow="fisher_test")], epochs=1)
