"""What computing an LSTM's input projection once per sequence would save.

Keras's `LSTM` (and our cells, on either compute path) multiplies each time
step's input by the kernel inside the recurrence: `T` products of `batch`
rows forward, and as many small weight-gradient products in the backward
pass. The input does not depend on the recurrence, so `x @ kernel` can be one
product over all `batch x T` rows before the loop, leaving only `h @
recurrent_kernel` inside it (what cuDNN does). This script measures that
change on a dense LSTM language model before anyone builds it into the
layers:

* baseline `keras`: Embedding, 2 x `keras.layers.LSTM(units)`, Dense(10,000);
* case `hoisted`: the same weights, each LSTM's `x @ kernel` computed for the
  whole sequence first, the cell adding `h @ recurrent_kernel` and the bias.

Both trained with `fit(jit_compile=True)`, SGD, batch 20, BPTT 35, one thread,
timed alternately in `--repeats` rounds of one fit of 8 steps each. The
machine is shared, so two ratios are kept: the fastest case over the fastest
baseline (`ratio`) and the median over the rounds of each round's case /
baseline (`median_round_ratio`). Prints the outputs' largest difference (the
same weights give the same function) and both ratios per width, and writes
`benchmarks/results/input_projection.json`.

    python benchmarks/input_projection.py [--units 200 650] [--repeats 5]
"""

import argparse
import json
import os
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
VOCAB, BATCH, STEPS, BATCHES = 10_000, 20, 35, 8


def make_model(kind, units):
    import keras

    class ProjectedLSTMCell(keras.layers.LSTMCell):
        """`keras.layers.LSTMCell` whose input is already `x @ kernel`."""

        def build(self, input_shape):
            super().build((input_shape[0], self.input_features))

        def call(self, inputs, states, training=False):
            h, c = states
            z = inputs + keras.ops.matmul(h, self.recurrent_kernel) + self.bias
            z0, z1, z2, z3 = keras.ops.split(z, 4, axis=1)
            i = self.recurrent_activation(z0)
            f = self.recurrent_activation(z1)
            c = f * c + i * self.activation(z2)
            o = self.recurrent_activation(z3)
            h = o * self.activation(c)
            return h, [h, c]

    class HoistedLSTM(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.cell = ProjectedLSTMCell(units)
            self.rnn = keras.layers.RNN(self.cell, return_sequences=True)

        def build(self, input_shape):
            self.cell.input_features = input_shape[-1]
            self.cell.build(input_shape)
            self.rnn.build((*input_shape[:-1], 4 * self.cell.units))

        def call(self, x):
            return self.rnn(keras.ops.matmul(x, self.cell.kernel))

    def lstm():
        if kind == "keras":
            return keras.layers.LSTM(units, return_sequences=True)
        return HoistedLSTM(units)

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((STEPS,), batch_size=BATCH, dtype="int32"),
        keras.layers.Embedding(VOCAB, units), lstm(), lstm(), keras.layers.Dense(VOCAB)])
    model.compile(keras.optimizers.SGD(1.0),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=True)
    return model


def measure(units, repeats):
    import numpy as np

    x = np.random.default_rng(0).integers(0, VOCAB, (BATCH * BATCHES, STEPS))
    models = {kind: make_model(kind, units) for kind in ("keras", "hoisted")}
    models["hoisted"].set_weights(models["keras"].get_weights())
    diff = float(np.abs(models["keras"].predict(x[:BATCH], verbose=0)
                        - models["hoisted"].predict(x[:BATCH], verbose=0)).max())
    for model in models.values():  # compile
        model.fit(x, x, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
    times = {kind: [] for kind in models}
    for _ in range(repeats):
        for kind, model in models.items():
            start = time.perf_counter()
            model.fit(x, x, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
            times[kind].append(1e3 * (time.perf_counter() - start) / BATCHES)
    base, case = min(times["keras"]), min(times["hoisted"])
    rounds = sorted(c / b for b, c in zip(times["keras"], times["hoisted"]))
    return {"units": units, "max_abs_output_difference": diff,
            "baseline_ms": base, "case_ms": case, "ratio": case / base,
            "median_round_ratio": rounds[len(rounds) // 2],
            "baseline_ms_all": times["keras"], "case_ms_all": times["hoisted"]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--units", type=int, nargs="+", default=[200, 650])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"
                                        / "input_projection.json"))
    args = p.parse_args(argv)
    if any(u < 1 for u in args.units):
        p.error(f"--units must be >= 1, got {args.units}")
    if args.repeats < 1:
        p.error(f"--repeats must be >= 1, got {args.repeats}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from keras_sparse_rnn import training

    training.set_threads(1)
    results = []
    for units in args.units:
        r = measure(units, args.repeats)
        results.append(r)
        print(f"{units:5d} units: hoisted / keras = {r['ratio']:.3f} "
              f"({r['case_ms']:.0f} / {r['baseline_ms']:.0f} ms a step; median of "
              f"the rounds {r['median_round_ratio']:.3f}), outputs "
              f"differ by {r['max_abs_output_difference']:.1e}", flush=True)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "command": " ".join(["python benchmarks/input_projection.py", *(argv or sys.argv[1:])]),
        "baseline": "keras", "threads": 1, "batch": BATCH, "bptt": STEPS,
        "vocab": VOCAB, "note": "beside whatever else ran on the machine",
        "results": results}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
