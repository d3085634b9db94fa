"""The input data an export feeds through Keras and LiteRT.

`prepare_batches` gives the verification batches (random inputs, with token
ids inside the embeddings' vocabulary, or the user's `verify=` data) and the
int8 calibration samples (`representative_data`, stepped through the Keras
step model when streaming, so that the states are calibrated too). User data
comes as an array, a list of arrays or a dict by input name, and is cut into
batches of the file's batch size. `keras_outputs` and `keras_step_through`
run the Keras model on such batches, for calibration and for verification.
"""

import keras
import numpy as np

from keras_sparse_rnn.export.prepare import all_layers

MAX_CALIBRATION_BATCHES = 200


def prepare_batches(plan, verify, quantization, representative_data):
    """`(verification batches, representative dataset or None)` of a plan."""
    if isinstance(verify, bool):
        verify_batches = random_inputs(plan.model, plan.data_shapes, 2) \
            if verify else []
    else:
        verify_batches = as_batches(plan.model, verify, plan.batch_size,
                                    "verify")
        if not plan.streaming:
            check_batch_shapes(verify_batches, plan.shapes, "verify")
    representative = None
    if quantization == "int8":
        representative = _calibration_data(plan, representative_data)
    return verify_batches, representative


def _calibration_data(plan, representative_data):
    """The converter's `representative_dataset`: a generator function of
    feeds `{input name: array}`."""
    batches = as_batches(plan.model, representative_data, plan.batch_size,
                         "representative_data")
    batches = batches[:MAX_CALIBRATION_BATCHES]
    if plan.streaming:
        samples = _stream_samples(plan.target, plan.info, batches)
    else:
        check_batch_shapes(batches, plan.shapes, "representative_data")
        samples = [dict(zip(plan.input_names, batch)) for batch in batches]

    def representative():
        yield from samples

    return representative


def _stream_samples(step, info, batches):
    """Calibration samples of a step model: each step of each sequence, with
    the states Keras computes along the way."""
    samples = []
    names = info.input_names + info.state_names
    for batch in batches:
        for feeds, states, _ in keras_step_through(step, info, batch):
            samples.append(dict(zip(names, feeds + states)))
        if len(samples) >= MAX_CALIBRATION_BATCHES:
            break
    return samples[:MAX_CALIBRATION_BATCHES]


def _token_range(model):
    vocab, low = None, 0
    for layer in all_layers(model):
        if isinstance(layer, keras.layers.Embedding):
            vocab = layer.input_dim if vocab is None else min(
                vocab, layer.input_dim)
            if layer.mask_zero:
                low = 1
    return low, (vocab if vocab is not None else 2)


def random_inputs(model, shapes, count, seed=0):
    """`count` batches of random inputs of `shapes` (token ids within the
    embeddings' vocabulary, above 0 with `mask_zero`)."""
    rng = np.random.default_rng(seed)
    low, high = _token_range(model)
    batches = []
    for _ in range(count):
        batch = []
        for x, shape in zip(model.inputs, shapes):
            dtype = keras.backend.standardize_dtype(x.dtype)
            if "int" in dtype:
                batch.append(rng.integers(low, high, size=shape).astype(dtype))
            elif dtype == "bool":
                batch.append(rng.integers(0, 2, size=shape).astype(bool))
            else:
                batch.append(rng.uniform(-1, 1, size=shape).astype(dtype))
        batches.append(batch)
    return batches


def _as_arrays(model, data, what):
    """User data (array, list of arrays, dict) -> one array per input."""
    names = [x.name for x in model.inputs]
    if isinstance(data, dict):
        missing = sorted(set(names) - set(data))
        if missing:
            raise ValueError(
                f"{what} is a dict without the model inputs {missing}; "
                f"its keys: {sorted(data)}"
            )
        arrays = [np.asarray(data[n]) for n in names]
    elif isinstance(data, (list, tuple)):
        arrays = [np.asarray(a) for a in data]
    else:
        arrays = [np.asarray(data)]
    if len(arrays) != len(names):
        raise ValueError(
            f"{what} must hold one array per model input ({len(names)}: "
            f"{names}), got {len(arrays)}"
        )
    return arrays


def as_batches(model, data, batch_size, what):
    """User data (array, list of arrays, dict) -> list of per-batch lists."""
    arrays = _as_arrays(model, data, what)
    n = arrays[0].shape[0] if arrays[0].ndim else 0
    if any(a.ndim < 2 or a.shape[0] != n for a in arrays):
        raise ValueError(
            f"{what} must be arrays of shape (samples, time, ...) with the "
            f"same number of samples, got shapes {[a.shape for a in arrays]}"
        )
    if n < batch_size or n % batch_size:
        raise ValueError(
            f"{what} has {n} samples; it must be a positive multiple of "
            f"batch_size={batch_size}"
        )
    batches = []
    for start in range(0, n, batch_size):
        batch = []
        for x, a in zip(model.inputs, arrays):
            dtype = keras.backend.standardize_dtype(x.dtype)
            batch.append(a[start:start + batch_size].astype(dtype))
        batches.append(batch)
    return batches


def check_batch_shapes(batches, shapes, what):
    """ValueError if a batch does not have the exported input shapes."""
    for batch in batches:
        for a, shape in zip(batch, shapes):
            if tuple(a.shape) != tuple(shape):
                raise ValueError(
                    f"{what}: a batch has shape {a.shape}, the exported input "
                    f"is {shape}"
                )


def keras_outputs(model, batch):
    """The flat list of `model`'s outputs on `batch` (NumPy arrays)."""
    inputs = batch[0] if len(batch) == 1 else list(batch)
    out = model(inputs, training=False)
    return [keras.ops.convert_to_numpy(o) for o in keras.tree.flatten(out)]


def zero_states(info):
    """`{state name: zeros}`: the states of a step model before a sequence."""
    return {n: np.zeros(info.state_shapes[n], info.state_dtypes[n])
            for n in info.state_names}


def keras_step_through(step, info, batch):
    """Steps the Keras step model through whole sequences from zero states:
    yields, per time step, `(feeds, states, outputs)`: the step's inputs,
    the states before it and the model outputs (states excluded)."""
    states = list(zero_states(info).values())
    n_out = len(info.output_names)
    for t in range(batch[0].shape[1]):
        feeds = [a[:, t:t + 1] for a in batch]
        outs = keras_outputs(step, feeds + states)
        yield feeds, states, outs[:n_out]
        states = outs[n_out:]
