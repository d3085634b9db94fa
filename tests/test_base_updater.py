"""BaseUpdater: the one life cycle of DynamicSparsity and GradualPruning
(set-up when built, the training's steps, attach for custom loops)."""

import keras
import numpy as np
import pytest

import keras_sparse_rnn as ksr
from keras_sparse_rnn.base_updater import BaseUpdater

X = np.random.default_rng(0).integers(0, 20, size=(8, 5)).astype("int32")
Y = np.zeros((8, 20), "float32")


class Recorder(BaseUpdater):
    """Records what the life cycle asks of a subclass, in order."""

    def __init__(self, builds_optimizer=False):
        super().__init__()
        self.builds_optimizer = builds_optimizer
        self.calls = []

    def _set_up(self, model):
        self.calls.append(("set_up", len(ksr.sparse_matrices(model))))
        self._setup_model = model

    def _resolve_steps(self, steps):
        self.calls.append(("steps", steps.total_steps, steps.steps_per_epoch))

    def _check_fit(self):
        self.calls.append(("check_fit",))

    def _begin(self):
        self.calls.append(("begin", self._iterations()))


def _model(with_input=True):
    keras.backend.clear_session()
    layers = [ksr.SparseEmbedding(20, 4, sparsity=0.5, mask_seed=0),
              keras.layers.Flatten(),
              ksr.SparseDense(20, sparsity=0.5, mask_seed=1)]
    if with_input:
        layers.insert(0, keras.Input((5,), dtype="int32"))
    model = keras.Sequential(layers, name="m")
    model.compile(keras.optimizers.SGD(0.1), "mse")
    return model


def test_both_callbacks_share_the_base():
    assert isinstance(ksr.DynamicSparsity(), BaseUpdater)
    assert isinstance(ksr.GradualPruning(0.5), BaseUpdater)
    assert ksr.DynamicSparsity.builds_optimizer is True
    assert ksr.GradualPruning.builds_optimizer is False


def test_fit_sets_up_once_resolves_the_steps_then_begins():
    model = _model()
    recorder = Recorder()
    model.fit(X, Y, batch_size=4, epochs=2, verbose=0, callbacks=[recorder])
    # 2 sparse matrices; 2 epochs of 2 steps; the first step is step 0.
    assert recorder.calls == [("set_up", 2), ("check_fit",), ("steps", 4, 2),
                              ("begin", 0)]
    recorder.calls = []
    model.fit(X, Y, batch_size=4, epochs=1, verbose=0, callbacks=[recorder])
    # The same model: no second set-up; the new fit's steps; 4 steps done.
    assert recorder.calls == [("check_fit",), ("steps", 2, 2), ("begin", 4)]


def test_an_unbuilt_model_is_set_up_after_its_first_step():
    model = _model(with_input=False)
    recorder = Recorder()
    model.fit(X, Y, batch_size=4, epochs=1, verbose=0, callbacks=[recorder])
    # Not built at the start of fit: no set-up, no begin; the first batch
    # end sets up (once).
    assert recorder.calls == [("check_fit",), ("steps", 2, 2), ("set_up", 2)]


@pytest.mark.parametrize("builds", [False, True])
def test_attach_for_a_custom_loop(builds):
    model = _model()
    optimizer = keras.optimizers.Adam(0.1)
    recorder = Recorder(builds_optimizer=builds)
    assert recorder.attach(model, optimizer, total_steps=12) is recorder
    assert recorder.calls == [("set_up", 2), ("steps", 12, None), ("begin", 0)]
    assert optimizer.built is builds
    # The attached optimizer, not the model's, counts the steps.
    assert recorder._get_optimizer() is optimizer
    optimizer.iterations.assign(7)
    assert recorder._iterations() == 7
    with pytest.raises(ValueError, match="total_steps must be a positive int or None, got 0"):
        Recorder().attach(model, optimizer, total_steps=0)
    with pytest.raises(ValueError, match="optimizer must be a keras.optimizers.Optimizer"):
        Recorder().attach(model, "sgd")


def test_attach_refuses_an_unbuilt_model():
    with pytest.raises(ValueError, match="model 'm' is not built: call it on a "
                                         "batch of data before attach"):
        Recorder().attach(_model(with_input=False), keras.optimizers.SGD())


def test_a_subclass_must_implement_set_up_and_resolve_steps():
    model = _model()
    base = BaseUpdater()
    with pytest.raises(NotImplementedError):
        base.set_model(model)  # built: it sets up
    with pytest.raises(NotImplementedError):
        base._resolve_steps(None)
