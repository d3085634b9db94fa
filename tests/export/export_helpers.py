"""Tiny models and LiteRT runners shared by the export tests."""

import numpy as np
import keras

from keras_sparse_rnn import (
    SparseDense,
    SparseEmbedding,
    SparseLSTM,
)

VOCAB = 50
STEPS = 6


def lm(block=None, units=16, sparsity=0.75, seed=0, mask_zero=False,
       embedding_sparsity=0.5, embedding_dim=8):
    """SparseEmbedding -> 2 stacked SparseLSTM -> SparseDense: a tiny LM."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None,), dtype="int32", name="tokens")
    x = SparseEmbedding(VOCAB, embedding_dim, sparsity=embedding_sparsity,
                        mask_seed=seed + 1,
                        mask_zero=mask_zero, name="embedding")(inputs)
    x = SparseLSTM(units, sparsity=sparsity, block=block, name="lstm_1",
                   return_sequences=True, mask_seed=seed + 2)(x)
    x = SparseLSTM(units, sparsity=sparsity, block=block, name="lstm_2",
                   return_sequences=True, mask_seed=seed + 3)(x)
    outputs = SparseDense(VOCAB, sparsity=sparsity, block=block,
                          mask_seed=seed + 4, name="softmax")(x)
    model = keras.Model(inputs, outputs, name="tiny_lm")
    randomize_biases(model)
    return model


def randomize_biases(model):
    """Non-zero biases, so that a dropped bias would show in a comparison."""
    rng = np.random.default_rng(0)
    for v in model.weights:
        if v.path.endswith("bias"):
            v.assign(rng.normal(0, 0.5, v.shape).astype("float32"))


def tokens(shape, seed=0, low=0):
    return np.random.default_rng(seed).integers(low, VOCAB, shape).astype(
        "int32")


def run_tflite(path, xnnpack=True, **feeds):
    """Runs the file's `serving_default` signature in LiteRT."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kwargs = {}
    if not xnnpack:
        kwargs["experimental_op_resolver_type"] = (
            OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    runner = Interpreter(model_path=str(path), **kwargs).get_signature_runner(
        "serving_default")
    return runner(**feeds)


def stream_tflite(path, info_inputs, state_shapes, sequences):
    """Steps a streaming file through whole sequences from zero states.

    Returns the list of per-step output dicts.
    """
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner(
        "serving_default")
    states = {n: np.zeros(s, "float32") for n, s in state_shapes.items()}
    steps = []
    for t in range(sequences[0].shape[1]):
        feeds = {n: a[:, t:t + 1] for n, a in zip(info_inputs, sequences)}
        got = runner(**feeds, **states)
        states = {n: got[n] for n in state_shapes}
        steps.append(got)
    return steps


