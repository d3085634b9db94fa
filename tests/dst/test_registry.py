import numpy as np
import pytest
import tensorflow as tf

from keras_sparse_rnn.dst import registry
from keras_sparse_rnn.dst import updater


def test_builtin_names():
    assert registry.prune_names() == ["magnitude", "set"]
    assert {"random", "gradient", "momentum"} <= set(registry.grow_names())
    assert registry.get_grow("gradient").needs == "gradient"
    assert registry.get_grow("momentum").needs == "momentum"
    assert registry.get_grow("random").needs is None


def test_unknown_names_list_the_allowed_ones():
    with pytest.raises(ValueError, match=r"prune must be one of \['magnitude', 'set'\], got 'l1'"):
        registry.get_prune("l1")
    with pytest.raises(ValueError, match=r"grow must be one of .*got 'hebbian'"):
        registry.get_grow("hebbian")
    with pytest.raises(ValueError, match=r"redistribution must be one of \['none', 'gates'\]"):
        registry.check_redistribution("layers")


def test_register_errors():
    with pytest.raises(ValueError, match="already registered"):
        registry.register_prune("magnitude", lambda w, a, r: [])
    with pytest.raises(ValueError, match="needs must be one of"):
        registry.register_grow("x_test", lambda *a: None, needs="hessian")
    with pytest.raises(ValueError, match="fn must be callable"):
        registry.register_grow("x_test", 3)


def test_a_new_variant_is_a_function_and_a_call():
    # Prune the weights with the largest magnitude (a deliberately odd rule,
    # to see that the updater follows the registered criterion).
    def largest(weight, active, reduce):
        return [(active, -reduce(tf.abs(weight)))]

    registry.register_prune("largest_test", largest, overwrite=True)
    w = np.array([[0.1, 0.2, 0.3, 0.4, 0.0, 0.0]], np.float32)
    m = (w != 0).astype(np.float32)
    out = updater.prune_and_grow(
        tf.constant(w), tf.constant(m), None, tf.constant(0.5, tf.float64),
        tf.constant([0, 1], tf.int64), prune="largest_test")
    kept = (m == 1) & (out["mask"].numpy() == 1) & (out["grown"].numpy() == 0)
    np.testing.assert_array_equal(np.where(kept[0])[0], [0, 1])
    assert out["mask"].numpy().sum() == 4
