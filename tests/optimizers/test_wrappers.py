"""optimizers.wrappers: the one place that looks through LossScaleOptimizer."""

import keras

from keras_sparse_rnn.dst import optimizer_slots
from keras_sparse_rnn.optimizers import SNTASGD, wrappers


class Hooked(keras.optimizers.SGD):
    def update_sparse_topology(self, variable, new_mask, grown):
        pass


def test_chain_and_unwrap():
    inner = keras.optimizers.SGD(0.1)
    outer = keras.optimizers.LossScaleOptimizer(inner)
    assert wrappers.wrapper_chain(outer) == [outer, inner]
    assert wrappers.wrapper_chain(inner) == [inner]
    assert wrappers.wrapper_chain(None) == []
    assert wrappers.unwrap(outer) is inner
    assert wrappers.unwrap(inner) is inner
    assert wrappers.unwrap(None) is None


def test_topology_hook_is_the_first_in_the_chain():
    assert wrappers.topology_hook(keras.optimizers.SGD()) is None
    assert wrappers.topology_hook(None) is None
    inner = Hooked()
    hook = wrappers.topology_hook(keras.optimizers.LossScaleOptimizer(inner))
    assert hook.__self__ is inner and hook.__func__ is Hooked.update_sparse_topology
    averaging = SNTASGD(1.0)
    assert wrappers.topology_hook(averaging).__self__ is averaging


def test_the_slot_lookup_unwraps_through_it():
    assert optimizer_slots.has_first_moment(
        keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam()))
    assert not optimizer_slots.has_first_moment(
        keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD()))
    inner = keras.optimizers.SGD()
    variable = keras.Variable([[1.0]])
    assert optimizer_slots.owner(keras.optimizers.LossScaleOptimizer(inner),
                                 variable) is inner


def test_multi_optimizer_owner_and_working_optimizers():
    from keras.src.optimizers.multi_optimizer import OptimizerMap

    adam, sgd = keras.optimizers.Adam(0.1), keras.optimizers.SGD(0.1, momentum=0.9)
    multi = keras.optimizers.MultiOptimizer(OptimizerMap(
        default_optimizer=sgd, optimizer_map={"kernel": adam}))
    wrapped = keras.optimizers.LossScaleOptimizer(multi)
    assert wrappers.working_optimizers(wrapped) == [adam, sgd]
    assert wrappers.working_optimizers(None) == []
    kernel = keras.Variable([[1.0]], name="kernel")  # the map matches paths
    bias = keras.Variable([0.0], name="bias")
    assert wrappers.owner(wrapped, kernel) is None  # not built yet
    multi.build([kernel, bias])
    assert wrappers.owner(wrapped, kernel) is adam
    assert wrappers.owner(wrapped, bias) is sgd
    assert optimizer_slots.has_first_moment(wrapped)  # both keep one
