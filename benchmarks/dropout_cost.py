"""What dropout costs in an XLA-compiled training step on the CPU.

The `equal` profile's PTB runs with dropout 0.5 (three `keras.layers.Dropout`
layers on 20 x 20 x 416 activations) ran their epochs far slower than those
without. This script measures where that goes: one thread, `jit_compile=True`,
the process's CPU time per `train_on_batch` step (CPU time, not wall time,
because the machine is shared), the fastest of `--rounds` rounds of `--steps`
steps, for three models:

* `softmax`: 20 x 20 inputs of width 416 -> dropout -> `Dense(10000)`;
* `lm`: the equal profile's wide language model (sparse embedding, 2 x
  `SparseLSTM(416)` in 32 x 32 blocks, sparse softmax, sparsity 0.58), with a
  dropout before each LSTM and before the softmax, as the PTB example places it;
* `cell_masks`: the same language model with the cells' own `dropout=0.5` and
  `recurrent_dropout=0.5` instead (masks drawn once a sequence): as this
  library draws them, with Philox named (`cells`), and with Keras's own mask
  hook (`cells_keras`);

and for the first two: no dropout (the baseline), `keras.layers.Dropout(0.5)`,
and `keras_sparse_rnn.PhiloxDropout(0.5)`, the same stateless dropout with
its random algorithm named (`rng_alg="philox"`). (`lm` and `cell_masks`
share their baseline model; each measures its own in the same run.)

Keras calls `stateless_dropout` without `rng_alg` (auto-select). In the HLO
that XLA dumps for that step (`XLA_FLAGS=--xla_dump_to=DIR`), the scalar ops
that derive the key and counter from the seed sit inside the per-element loop
fusion of the random bits, recomputed for every element; with the algorithm
named they do not. Prints each variant's ratio to the model's baseline and
writes `benchmarks/results/dropout_cost.json`.

    python benchmarks/dropout_cost.py [--steps 10] [--rounds 3]
"""

import argparse
import json
import os
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
VOCAB, UNITS, BATCH, STEPS = 10_000, 416, 20, 20
# The variants measured per model. "cells": the cells' own dropout, as this
# library draws its masks (Philox named); "cells_keras": the same with Keras's
# own mask hook (the algorithm auto-selected).
VARIANTS = {"softmax": ("none", "keras", "philox"),
            "lm": ("none", "keras", "philox"),
            "cell_masks": ("none", "cells", "cells_keras")}


def dropout_layer(variant, seed):
    import keras

    import keras_sparse_rnn as ksr

    layers = {"keras": keras.layers.Dropout, "philox": ksr.PhiloxDropout}
    return layers[variant](0.5, seed=seed)


def build(model_name, variant):
    import types

    import keras
    from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

    import keras_sparse_rnn as ksr

    def drop(x, seed):
        if variant == "none" or model_name == "cell_masks":
            return x
        return dropout_layer(variant, seed)(x)

    if model_name == "softmax":
        inputs = keras.Input((STEPS, UNITS), batch_size=BATCH)
        logits = keras.layers.Dense(VOCAB)(drop(inputs, 1))
    else:
        # cell_masks: the cells' own dropout on the input and the state (one
        # mask a sequence) in place of dropout layers.
        cell_dropout = 0.0 if variant == "none" or model_name != "cell_masks" else 0.5
        inputs = keras.Input((STEPS,), batch_size=BATCH, dtype="int32")
        x = ksr.SparseEmbedding(VOCAB, UNITS, sparsity=0.58)(inputs)
        for i in range(2):
            lstm = ksr.SparseLSTM(UNITS, sparsity=0.58, block=(32, 32),
                                  dropout=cell_dropout, recurrent_dropout=cell_dropout,
                                  return_sequences=True, stateful=True)
            if variant == "cells_keras":
                object.__setattr__(lstm.cell, "_create_dropout_mask", types.MethodType(
                    DropoutRNNCell._create_dropout_mask, lstm.cell))
            x = lstm(drop(x, i))
        logits = ksr.SparseDense(VOCAB, sparsity=0.58)(drop(x, 99))
    model = keras.Model(inputs, logits)
    model.compile(keras.optimizers.SGD(1.0, clipnorm=5.0),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=True)
    return model


def cpu_ms_per_step(model, x, y, steps, rounds):
    for _ in range(3):  # compile and warm up
        model.train_on_batch(x, y)
    times = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(steps):
            model.train_on_batch(x, y)
        times.append((time.process_time() - start) / steps * 1e3)
    return min(times), times


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=10, help="training steps a round")
    p.add_argument("--rounds", type=int, default=3, help="rounds; the fastest counts")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dropout_cost.json"))
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error(f"--steps must be >= 1, got {args.steps}")
    if args.rounds < 1:
        p.error(f"--rounds must be >= 1, got {args.rounds}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    rng = np.random.default_rng(0)
    targets = rng.integers(0, VOCAB, (BATCH, STEPS)).astype("int32")
    inputs = {"softmax": rng.normal(size=(BATCH, STEPS, UNITS)).astype("float32"),
              "lm": rng.integers(0, VOCAB, (BATCH, STEPS)).astype("int32")}
    results = []
    load_before = os.getloadavg()[0]  # other work on the machine, if any
    inputs["cell_masks"] = inputs["lm"]
    for model_name, variants in VARIANTS.items():
        for variant in variants:
            model = build(model_name, variant)
            best, rounds = cpu_ms_per_step(model, inputs[model_name], targets,
                                           args.steps, args.rounds)
            results.append({"model": model_name, "dropout": variant,
                            "cpu_ms_per_step": best, "rounds_ms": rounds})
        base = results[-len(variants)]["cpu_ms_per_step"]
        for r in results[-len(variants):]:
            r["ratio_to_none"] = r["cpu_ms_per_step"] / base
            print(f"{model_name:8s} dropout {r['dropout']:9s} {r['cpu_ms_per_step']:7.1f} "
                  f"CPU ms/step = {r['ratio_to_none']:.2f} x none")
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "command": " ".join(["python benchmarks/dropout_cost.py", *(argv or sys.argv[1:])]),
        "threads": 1, "jit_compile": True, "baseline": "none (no dropout), per model",
        "tensorflow": tf.__version__, "measure": "process CPU time per step, fastest round",
        # Other work on the machine (the cores are 2): the rounds' spread shows its effect.
        "load_average_1min_before_after": [load_before, os.getloadavg()[0]],
        "results": results}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
