"""The model the exporter converts: the user's, or a float32 copy of it at
the batch size asked for.

Two things a trained model may have that a TFLite file cannot take as they are:

- a static batch size of its own (`keras.Input(..., batch_size=20)` for a
  stateful language model) other than the file's `batch_size`;
- a mixed-precision policy (`mixed_float16`, `mixed_bfloat16`): the converter
  fails on its casts inside the RNN loop (`TensorListReserve`), and LiteRT
  runs float32 (quantization is the exporter's own option).

For either, the model is cloned with float32 layers (and new inputs at the
batch size), and its weights, masks included, are copied: the variables of a
mixed-precision model are float32 already, so nothing is rounded.

The module also answers the questions the other export steps ask about the
model's layers (`all_layers`, `has_rnn`, `stateful_layers`).
"""

import keras

from keras_sparse_rnn._keras.layers import flatten_layers

MIXED_DTYPES = ("float16", "bfloat16")


def all_layers(model):
    """Every layer inside `model`, nested models' layers included."""
    return flatten_layers(model, include_self=False)


def has_rnn(model):
    """Whether `model` holds a `keras.layers.RNN` (it has a time loop)."""
    return any(isinstance(l, keras.layers.RNN) for l in all_layers(model))


def stateful_layers(model):
    """Names of the `stateful=True` RNN layers of `model`."""
    return [l.name for l in all_layers(model)
            if isinstance(l, keras.layers.RNN) and l.stateful]


def compute_dtypes(model):
    """The non-float32 compute dtypes of the model's layers (sorted)."""
    found = set()
    for layer in all_layers(model):
        policy = getattr(layer, "dtype_policy", None)
        dtype = getattr(policy, "compute_dtype", None)
        if dtype in MIXED_DTYPES:
            found.add(f"{policy.name}")
    return sorted(found)


def _float32_config(value):
    """`value` (a layer config) with every mixed or half dtype policy float32."""
    if isinstance(value, dict):
        if value.get("class_name") == "DTypePolicy" and isinstance(
                value.get("config"), dict):
            name = value["config"].get("name", "")
            if name.startswith("mixed_") or name in MIXED_DTYPES:
                return {**value, "config": {**value["config"], "name": "float32"}}
        return {k: _float32_config(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_float32_config(v) for v in value]
    if isinstance(value, str) and value.startswith("mixed_"):
        return "float32"
    return value


def export_model(model, batch_size):
    """`(model to convert, notes)`: `model` itself when it has float32
    compute and its inputs take `batch_size` (None: keep the model's), else
    a float32 copy at that batch size."""
    mixed = compute_dtypes(model)
    batches = {x.shape[0] for x in model.inputs}
    rebatch = batch_size is not None and any(b is not None and b != batch_size
                                             for b in batches)
    if not mixed and not rebatch:
        return model, []
    notes = []
    if mixed:
        notes.append(
            f"the model computes in {', '.join(mixed)}: a float32 copy of its "
            "weights was exported (LiteRT runs float32; use quantization= for "
            "a smaller file) and verified against the float32 copy")
    if rebatch:
        notes.append(
            f"the model was built with batch size {sorted(b for b in batches if b)}"
            f": it was rebuilt at batch size {batch_size} for the file")
    inputs = None
    if rebatch:
        inputs = [keras.Input(batch_shape=(batch_size, *x.shape[1:]), dtype=x.dtype,
                              name=x.name) for x in model.inputs]
        if len(inputs) == 1:
            inputs = inputs[0]

    def clone(layer):
        return layer.__class__.from_config(_float32_config(layer.get_config()))

    copy = keras.models.clone_model(model, input_tensors=inputs, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy, notes
