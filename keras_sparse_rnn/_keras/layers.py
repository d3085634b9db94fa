"""A Keras layer's tracked sub-layers and own variables.

Keras 3 has no public recursive walk over sub-layers (RNN cells,
`Bidirectional`'s directions, `TimeDistributed`, nested models) and no
public list of a layer's own variables (without its sub-layers'), which
`keras.layers.Layer.save_own_variables` stores by position.
"""

import keras


def flatten_layers(layer, include_self=True):
    """Every layer tracked under `layer`, depth first (itself first when
    `include_self`), each once."""
    return list(layer._flatten_layers(include_self=include_self, recursive=True))


def own_variables(layer):
    """The variables `keras.layers.Layer.save_own_variables` stores for
    `layer`, in its order (trainable first)."""
    return list(layer._trainable_variables) + list(layer._non_trainable_variables)


def own_trainable_variables(layer):
    """`layer`'s own trainable variables (not its sub-layers')."""
    return list(layer._trainable_variables)


def check_load_own_variables(layer, store):
    """Keras's check that `store` holds as many variables as `layer` has
    (with its message for a layer that was never built)."""
    keras.layers.Layer._check_load_own_variables(layer, store)
