"""Does sparsity pay? Training-step time of sparse recurrent models on the
block path (`compute_path="blocks"`) against a named baseline in the same run.

Each case trains with `model.fit` and `jit_compile=True` (batch 20, BPTT 35,
random tokens: time does not depend on the data) and reports
`ms/step (case) / ms/step (baseline)`, the minimum over `--repeats` timed
fits of `--steps` steps each, after one warm-up fit that compiles. Cases:

* `lm_*`: a 2-layer LSTM (or GRU) language model, 10,000 words, embedding and
  softmax as a user builds them (dense `Embedding`/`Dense`, or
  `SparseEmbedding`/`SparseDense` at the same density), against the same
  model of `keras.layers.LSTM` / `GRU` (`baseline: keras`).
* `rnn_*`: the recurrent layers alone (float inputs, mean-squared error on
  their outputs), against the Keras layers.
* `rhn_*`: RHN depth 10, against the same RHN on the masked-dense path.
* `curve_*`: one LSTM LM per (block, density), the step-time ratio curve.
* `predict_*`: one-step inference (`predict`, batch 1, one token).
* `product_*`: one product `x @ W` and its gradients, W 640 x 10,000 as the
  output layer's, 700 rows (all time steps of a batch at once) or 20 (one
  time step), from the active blocks against masked-dense.
* `--profile CASE --path P`: where that case's step spends its time, by XLA
  instruction (`profile`), in `benchmarks/results/profile_step.json`.
* peak memory: the process's peak RSS (ru_maxrss) after the baseline's first
  fit and after the case's, reported (the case's includes the baseline's).

The baseline and the case are timed alternately (see `run_one`).

Most widths are multiples of 32 (640 for Zaremba's 650, 1504 for his 1500, 832
for Zilly's 830), so they measure the structure without padding;
`lm_650_0.1_padded` measures Zaremba's own width, its blocks padded.

    python benchmarks/sparse_speed.py [--threads 2] [--only lm_0.1 ...]
    python benchmarks/sparse_speed.py --report     # the README's tables

Writes `benchmarks/results/sparse_speed.json` (`--out` to change), merging
with the cases already there (one entry per case and thread count).
"""

import argparse
import collections
import glob
import json
import os
import pathlib
import re
import resource
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
VOCAB, BATCH, BPTT = 10000, 20, 35
PRODUCT_ROWS, PRODUCT_DENSITIES = (20, 140, 700), (0.05, 0.1, 0.2, 0.33)


def cases():
    """name -> dict(kind, cell, units, density, block, sparse_ends, baseline)."""
    out = {}

    def add(name, **kw):
        out[name] = {**dict(kind="lm", cell="lstm", units=640, block=32,
                            sparse_ends=False, baseline="keras", layers=2), **kw}

    add("lm_0.1", density=0.1)
    add("lm_0.1_sparse_ends", density=0.1, sparse_ends=True)
    add("lm_0.33", density=0.33)
    add("lm_0.33_sparse_ends", density=0.33, sparse_ends=True)
    add("lm_1504_0.33", density=0.33, units=1504)
    add("lm_650_0.1_padded", density=0.1, units=650)  # Zaremba's width: padded blocks
    add("gru_0.1", density=0.1, cell="gru")
    add("gru_0.1_sparse_ends", density=0.1, cell="gru", sparse_ends=True)
    for name in ("lm_0.1", "lm_0.33", "lm_1504_0.33", "gru_0.1"):  # recurrent part
        out["rnn_" + name.removeprefix("lm_")] = dict(out[name], kind="rnn")
    out["rhn_0.47"] = dict(kind="lm", cell="rhn", units=832, block=32, density=0.47,
                           sparse_ends=False, baseline="masked_dense", layers=1)
    for path in ("auto", "blocks"):  # Zaremba's small LSTM at sparsity 0.67
        add(f"zaremba_small_0.67_{path}", density=0.33, units=200, block=8,
            baseline="masked_dense", compute_path=path)
    add("zaremba_small_0.1_blocks", density=0.1, units=200, block=8,
        baseline="masked_dense")
    for block in (8, 16, 32):
        for density in (0.05, 0.1, 0.2, 0.33, 0.5, 0.75, 1.0):
            if block == 32 and density in (0.1, 0.33):
                continue  # lm_0.1 and lm_0.33
            add(f"curve_b{block}_{density}", density=density, block=block)
    for density in (0.1, 0.33):
        out[f"predict_{density}"] = dict(out[f"lm_{density}"], kind="predict")
        out[f"predict_{density}_auto"] = dict(out[f"lm_{density}"], kind="predict",
                                              compute_path="auto")
    # One product x @ W with its gradients, W 640 x 10,000 (the output layer):
    # 700 rows (batch x BPTT: all time steps at once), 140 or 20 (one time
    # step): the curve `SparseDense`'s automatic choice is set from.
    for block in (16, 32):
        for rows in PRODUCT_ROWS:
            for density in PRODUCT_DENSITIES:
                out[f"product_b{block}_{rows}_{density}"] = dict(
                    kind="product", rows=rows, units=640, outputs=VOCAB,
                    block=block, density=density, baseline="masked_dense")
    return out


def build(case, path):
    """The case's model on `path` ("keras", "masked_dense", "blocks", "auto")."""
    import keras

    import keras_sparse_rnn as ksr

    units, sparsity = case["units"], 1.0 - case["density"]
    block = (case["block"], case["block"])

    def recurrent():
        if path == "keras":
            cls = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[case["cell"]]
            return cls(units, return_sequences=True)
        kw = dict(sparsity=round(sparsity, 6), block=block, compute_path=path,
                  mask_seed=1, return_sequences=True)
        if case["cell"] == "rhn":
            return ksr.SparseRHN(units, depth=10, **kw)
        return {"lstm": ksr.SparseLSTM, "gru": ksr.SparseGRU}[case["cell"]](units, **kw)

    sparse_ends = case["sparse_ends"] and path != "keras"
    batch = 1 if case["kind"] == "predict" else BATCH
    steps = 1 if case["kind"] == "predict" else BPTT
    if case["kind"] == "rnn":
        layers = [keras.Input((steps, units), batch_size=batch)]
    else:
        layers = [keras.Input((steps,), batch_size=batch, dtype="int32"),
                  ksr.SparseEmbedding(VOCAB, units, sparsity=sparsity, mask_seed=2)
                  if sparse_ends else keras.layers.Embedding(VOCAB, units)]
    layers += [recurrent() for _ in range(case["layers"])]
    if case["kind"] != "rnn":
        # The softmax in the recurrent layers' blocks, its path left to
        # "auto" (the product curve's rule), as a user would build it.
        layers.append(ksr.SparseDense(VOCAB, sparsity=sparsity, mask_seed=3, block=block)
                      if sparse_ends else keras.layers.Dense(VOCAB))
    model = keras.Sequential(layers)
    loss = ("mse" if case["kind"] == "rnn"
            else keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.compile(keras.optimizers.SGD(1.0), loss, jit_compile=True)
    if not model.jit_compile:
        raise SystemExit(f"{path}: jit_compile fell back to False")
    return model


def product_timers(case, steps):
    """Timers of one product and its gradients, masked-dense and from the
    active blocks (`keras_sparse_rnn.layers.block_path`), XLA-compiled."""
    import numpy as np
    import tensorflow as tf

    from keras_sparse_rnn import masks
    from keras_sparse_rnn.layers import block_path

    b, n_in, n_out = case["block"], case["units"], case["outputs"]
    mask = masks.random_mask((n_in, n_out), 1 - case["density"], 0, 1, (b, b))
    k = masks.fan_in(1 - case["density"], n_in // b)
    rng = np.random.default_rng(0)
    w = tf.Variable(rng.normal(size=(n_in, n_out)).astype("float32") * mask)
    m = tf.constant(mask)
    x = tf.constant(rng.normal(size=(case["rows"], n_in)).astype("float32"))

    @tf.function(jit_compile=True)
    def dense():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.matmul(x, w)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, [x, w])

    @tf.function(jit_compile=True)
    def blocks():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = block_path.BlockProduct(w, m, b, k, tf.float32)(x)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, [x, w])

    def timer(fn):
        fn()

        def once():
            start = time.perf_counter()
            for _ in range(steps):
                out = fn()
            out[1].numpy()
            return (time.perf_counter() - start) / steps
        return once
    return timer(dense), timer(blocks)


def parts(units=640, density=0.1, block=32, rows=20, steps=35, repeats=5):
    """Where a time step's product goes on the block path: ms per step (35
    steps in one XLA-compiled loop, forward only) of `h @ W` (W units x 4 *
    units) masked-dense, of the gather of the input's blocks alone, of the
    batched matmul alone (its input gathered once, outside the loop) and of
    the whole block product, and the bytes each moves per step."""
    import numpy as np
    import tensorflow as tf

    from keras_sparse_rnn import masks
    from keras_sparse_rnn.layers import block_path

    n_in, n_out = units, 4 * units
    mask = masks.random_mask((n_in, n_out), 1 - density, 0, 1, (block, block))
    k = masks.fan_in(1 - density, n_in // block)
    rng = np.random.default_rng(0)
    w = tf.constant(rng.normal(size=(n_in, n_out)).astype("float32") * mask)
    product = block_path.BlockProduct(w, tf.constant(mask), block, k, tf.float32)
    cg = n_out // block
    h0 = tf.constant(rng.normal(size=(rows, n_in)).astype("float32") * 0.01)

    def gather_x(x):
        xb = tf.transpose(tf.reshape(x, [rows, n_in // block, block]), [1, 0, 2])
        g = tf.gather(xb, product.idx)
        return tf.reshape(tf.transpose(g, [0, 2, 1, 3]), [cg, rows, k * block])

    g0 = gather_x(h0)
    variants = {
        "masked_dense": lambda h: tf.matmul(h, w)[:, :n_in],
        "gather_only": lambda h: tf.reshape(gather_x(h), [rows, -1])[:, :n_in],
        "matmul_only": lambda h: tf.reshape(
            tf.transpose(tf.matmul(g0 + h[0, 0], product.values), [1, 0, 2]),
            [rows, n_out])[:, :n_in],
        "blocks": lambda h: product(h)[:, :n_in],
    }
    out = {}
    for name, fn in variants.items():
        @tf.function(jit_compile=True)
        def loop(h, fn=fn):
            return tf.while_loop(lambda i, h: i < steps,
                                 lambda i, h: (i + 1, tf.tanh(fn(h))), (0, h))[1]
        loop(h0).numpy()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            loop(h0).numpy()
            times.append((time.perf_counter() - start) / steps)
        out[name + "_ms"] = 1e3 * min(times)
    f = 4  # bytes per float32
    out["bytes_per_step"] = {
        "dense_weight": f * n_in * n_out, "active_weight": f * k * block * n_out,
        "gathered_input": f * rows * k * block * cg, "input": f * rows * n_in}
    return out


def data(case, steps):
    import numpy as np

    rng = np.random.default_rng(0)
    if case["kind"] == "predict":
        return rng.integers(0, VOCAB, (64, 1)), None
    n = BATCH * steps
    if case["kind"] == "rnn":
        return (rng.normal(size=(n, BPTT, case["units"])).astype("float32"),
                rng.normal(size=(n, BPTT, case["units"])).astype("float32"))
    return rng.integers(0, VOCAB, (n, BPTT)), rng.integers(0, VOCAB, (n, BPTT))


def timer(case, model, steps):
    """A function that times one fit (or predict) of `model`: seconds/step."""
    x, y = data(case, steps)
    if case["kind"] == "predict":
        model.predict(x[:2], batch_size=1, verbose=0)

        def once():
            start = time.perf_counter()
            model.predict(x, batch_size=1, verbose=0)
            return (time.perf_counter() - start) / len(x)
        return once
    model.fit(x[:2 * BATCH], y[:2 * BATCH], batch_size=BATCH, epochs=1, verbose=0,
              shuffle=False)

    def once():
        start = time.perf_counter()
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
        return (time.perf_counter() - start) / steps
    return once


def run_one(name, args):
    """One case in this process (a fresh process per case). The baseline and
    the case are timed alternately, `repeats` times each, and each keeps its
    fastest: a load that comes and goes on this shared machine then slows
    both alike, not whichever ran while it lasted."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    case = cases()[name]
    path = case.get("compute_path", "blocks")
    if case["kind"] == "product":
        base, timed = product_timers(case, 10 * args.steps)
        base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        on_blocks = [["W"]]
    else:
        base_model = build(case, case["baseline"])
        base = timer(case, base_model, args.steps)
        base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        model = build(case, path)
        on_blocks = [getattr(layer, "cell", layer).block_path_weights()
                     for layer in model.layers
                     if hasattr(getattr(layer, "cell", layer), "block_path_weights")]
        timed = timer(case, model, args.steps)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    base_times, case_times = [], []
    for _ in range(args.repeats):
        base_times.append(base())
        case_times.append(timed())
    base_s, case_s = min(base_times), min(case_times)
    return {**case, "name": name, "path": path, "threads": args.threads,
            "steps": args.steps, "repeats": args.repeats,
            "baseline_ms": 1e3 * base_s, "case_ms": 1e3 * case_s,
            "ratio": case_s / base_s, "on_block_path": on_blocks,
            "baseline_ms_all": [1e3 * t for t in base_times],
            "case_ms_all": [1e3 * t for t in case_times],
            "peak_rss_mib_after_baseline": base_rss / 1024,
            "peak_rss_mib_after_case": rss / 1024,
            "git_commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                         cwd=ROOT, capture_output=True,
                                         text=True).stdout.strip(),
            "git_dirty": bool(subprocess.run(["git", "status", "--porcelain",
                                              "keras_sparse_rnn"], cwd=ROOT,
                                             capture_output=True, text=True).stdout)}


INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+) = (\S+(?:\{[^}]*\})?) ([\w\-]+)\(")


def hlo_instructions(dump_dir):
    """`{name: (opcode, shape, batched)}` of every instruction of the
    optimized HLO modules in `dump_dir` (`batched`: a dot with batch
    dimensions)."""
    out = {}
    for path in glob.glob(os.path.join(dump_dir, "*after_optimizations.txt")):
        for line in open(path):
            m = INSTRUCTION.match(line)
            if m:
                name, shape, opcode = m.groups()
                out[name] = (opcode, shape, "lhs_batch_dims=" in line)
    return out


def category(opcode, batched, name):
    """`block product`: a dot with batch dimensions (the block path's
    batched matmuls and their gradients); `dense product`: any other dot;
    `gather`, `scatter`, `loop state` (dynamic-slice / -update-slice: a time
    step of an XLA loop), `copy / transpose`, `elementwise fusion`,
    `other`."""
    if opcode == "dot":
        return "block product" if batched else "dense product"
    if opcode == "fusion":
        # XLA names a fusion after its root and its kind (`..._fusion`).
        for key, cat in (("dynamic-update-slice", "loop state"),
                         ("dynamic-slice", "loop state"), ("gather", "gather"),
                         ("scatter", "scatter"), ("transpose", "copy / transpose"),
                         ("copy", "copy / transpose")):
            if key in name:
                return cat
        return "elementwise fusion"
    return {"gather": "gather", "scatter": "scatter",
            "dynamic-slice": "loop state", "dynamic-update-slice": "loop state",
            "copy": "copy / transpose", "transpose": "copy / transpose"}.get(opcode, "other")


def profile(case_name, path, threads, steps):
    """Where one case's training step spends its time, by XLA instruction
    (`--profile`): the TensorFlow profiler, with XLA's CPU runtime tracing
    each HLO instruction it executes (`--xla_cpu_enable_xprof_traceme`), and
    the optimized HLO dumped (`--xla_dump_to`) to look each one up. Its time
    goes to a category (`category`) and to its kind (opcode and output
    shape: the same product at each time step adds up). Times are summed
    over the instructions' executions on all threads, per training step.
    TensorFlow must not be imported before (the flags are read then)."""
    dump = tempfile.mkdtemp(prefix="hlo_")
    logdir = tempfile.mkdtemp(prefix="prof_")
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_cpu_enable_xprof_traceme=true --xla_dump_to={dump}"
                               " --xla_dump_hlo_as_text").strip()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    case = cases()[case_name]
    model = build(case, path)
    x, y = data(case, steps)
    fit = dict(batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
    model.fit(x, y, **fit)  # compiles
    tf.profiler.experimental.start(logdir)
    model.fit(x, y, **fit)
    tf.profiler.experimental.stop()

    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    instructions = hlo_instructions(dump)
    space = xplane_pb2.XSpace()
    space.ParseFromString(pathlib.Path(sorted(glob.glob(
        f"{logdir}/**/*.xplane.pb", recursive=True))[-1]).read_bytes())
    by_category, by_instruction = collections.Counter(), collections.Counter()
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if name not in instructions:
                    continue
                opcode, shape, batched = instructions[name]
                ms = event.duration_ps / 1e9 / steps
                by_category[category(opcode, batched, name)] += ms
                by_instruction[f"{opcode} {shape}"] += ms
    total = sum(by_category.values())
    return {"case": case_name, "path": path, "threads": threads, "steps": steps,
            "ms_per_step": total,
            "categories": {k: round(v, 3) for k, v in by_category.most_common()},
            "top_kinds": {k: round(v, 3) for k, v in by_instruction.most_common(12)}}


def print_profile(result, out):
    """Prints a `profile` and adds it to the JSON file `out`."""
    if not result["categories"]:
        raise SystemExit("no XLA instruction was traced: is the step XLA-compiled?")
    print(f"{result['case']}, {result['path']}, {result['threads']} threads: "
          f"{result['ms_per_step']:.1f} ms of XLA instructions per step")
    for k, v in result["categories"].items():
        print(f"  {k:20s} {v:9.2f} ms  {100 * v / result['ms_per_step']:5.1f}%")
    print("largest instruction kinds (opcode, output shape; ms per step):")
    for k, v in result["top_kinds"].items():
        print(f"  {v:9.2f}  {k}")
    results = json.loads(out.read_text()) if out.exists() else {}
    results[f"{result['case']}/{result['path']}@{result['threads']}"] = result
    out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")


#: The issue's targets (ratio at most), by case.
TARGETS = {"lm_0.1": 0.40, "lm_0.1_sparse_ends": 0.40, "rnn_0.1": 0.30,
           "lm_0.33": 0.70, "lm_0.33_sparse_ends": 0.70, "lm_1504_0.33": 0.60,
           "gru_0.1": 0.40, "gru_0.1_sparse_ends": 0.40, "rhn_0.47": 0.75, "zaremba_small_0.67_auto": 1.02}
REPORT_ORDER = ["lm_0.1", "lm_0.1_sparse_ends", "rnn_0.1", "lm_650_0.1_padded", "lm_0.33",
                "lm_0.33_sparse_ends", "rnn_0.33", "lm_1504_0.33", "rnn_1504_0.33",
                "gru_0.1", "gru_0.1_sparse_ends", "rnn_gru_0.1", "rhn_0.47", "zaremba_small_0.67_auto",
                "zaremba_small_0.67_blocks", "zaremba_small_0.1_blocks",
                "predict_0.1", "predict_0.1_auto", "predict_0.33", "predict_0.33_auto"]


def describe(r):
    if r["kind"] == "product":
        return f"one product {r['rows']} x {r['units']} x {r['outputs']}"
    model = {"lm": "LM", "rnn": "recurrent layers", "predict": "LM predict, batch 1"}[r["kind"]]
    cell = {"lstm": "LSTM", "gru": "GRU", "rhn": "RHN depth 10"}[r["cell"]]
    ends = ", sparse embedding and softmax" if r.get("sparse_ends") else ""
    return f"{r['layers']} x {r['units']} {cell} {model}{ends}"


def report(results):
    """Markdown tables of `results` (the JSON), the targets beside them."""
    def row(name):
        cells = []
        for threads in (2, 1):
            r = results.get(f"{name}@{threads}")
            cells.append("" if r is None else
                         f"{r['ratio']:.3f} ({r['case_ms']:.0f} / {r['baseline_ms']:.0f} ms)")
        r = results.get(f"{name}@2") or results.get(f"{name}@1")
        target = TARGETS.get(name)
        worst = max(results[f"{name}@{t}"]["ratio"] for t in (1, 2)
                    if f"{name}@{t}" in results)  # met: at every thread count
        met = "" if target is None else ("met" if worst <= target else "missed")
        path = r.get("compute_path", "blocks")
        return (f"| {describe(r)} | {r['density']:g} | {r['block']} | {path} vs "
                f"{r['baseline']} | {cells[0]} | {cells[1]} | "
                f"{'' if target is None else f'<= {target:.2f}'} | {met} |")

    lines = ["| case | density | b | path vs baseline | 2 threads: ratio (ms) "
             "| 1 thread | target | |", "|---|---:|---:|---|---:|---:|---:|---|"]
    lines += [row(n) for n in REPORT_ORDER if any(f"{n}@{t}" in results for t in (1, 2))]
    lines += ["", "| b | " + " | ".join(f"{d:g}" for d in (0.05, 0.1, 0.2, 0.33, 0.5, 0.75, 1.0))
              + " |", "|---:|" + "---:|" * 7]
    for b in (8, 16, 32):
        cells = []
        for d in (0.05, 0.1, 0.2, 0.33, 0.5, 0.75, 1.0):
            name = ({0.1: "lm_0.1", 0.33: "lm_0.33"}.get(d) if b == 32
                    else None) or f"curve_b{b}_{d}"
            r = results.get(f"{name}@2")
            cells.append("" if r is None else f"{r['ratio']:.2f}")
        lines.append(f"| {b} | " + " | ".join(cells) + " |")
    lines += ["", "| b | rows | " + " | ".join(f"{d:g}" for d in PRODUCT_DENSITIES)
              + " |", "|---:|---:|" + "---:|" * len(PRODUCT_DENSITIES)]
    for b in (16, 32):
        for rows in PRODUCT_ROWS:
            cells = [results.get(f"product_b{b}_{rows}_{d}@2") for d in PRODUCT_DENSITIES]
            if any(cells):
                lines.append(f"| {b} | {rows} | " + " | ".join(
                    "" if r is None else f"{r['ratio']:.2f}" for r in cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=sorted(cases()), default=None)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                             "sparse_speed.json"))
    parser.add_argument("--parts", action="store_true",
                        help="time the parts of one block product (see `parts`) "
                             "at densities 0.1 and 0.47, b 8 and 32; print JSON")
    parser.add_argument("--profile", metavar="CASE", choices=sorted(cases()),
                        help="profile one case's training step by XLA instruction "
                             "(see `profile`) on --path; print it and add it to "
                             "results/profile_step.json")
    parser.add_argument("--path", default="blocks",
                        choices=("blocks", "masked_dense", "auto", "keras"),
                        help="the compute path --profile runs")
    parser.add_argument("--report", action="store_true",
                        help="print the JSON's tables (markdown); run nothing")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.report:
        print(report(json.loads(pathlib.Path(args.out).read_text())))
        return
    if args.profile:
        if cases()[args.profile]["kind"] not in ("lm", "rnn"):
            parser.error(f"--profile profiles a training step: {args.profile} is a "
                         f"{cases()[args.profile]['kind']} case")
        print_profile(profile(args.profile, args.path, args.threads, args.steps),
                      pathlib.Path(args.out).with_name("profile_step.json"))
        return
    if args.parts:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        out = pathlib.Path(args.out)
        results = json.loads(out.read_text()) if out.exists() else {}
        for units, density, block in ((640, 0.1, 32), (640, 0.1, 8), (832, 0.47, 32),
                                      (640, 0.33, 32)):
            key = f"parts_{units}_{density}_b{block}@{args.threads}"
            results[key] = parts(units, density, block)
            print(key, json.dumps(results[key]), flush=True)
        out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        return
    if args.one:
        print(json.dumps(run_one(args.one, args)))
        return
    out = pathlib.Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    for name in args.only or sorted(cases()):
        proc = subprocess.run(
            [sys.executable, __file__, "--one", name, "--threads", str(args.threads),
             "--steps", str(args.steps), "--repeats", str(args.repeats)],
            env=env, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode:
            print(f"{name}: failed\n{proc.stderr[-3000:]}", file=sys.stderr)
            continue
        record = json.loads(proc.stdout.strip().splitlines()[-1])
        results[f"{name}@{args.threads}"] = record
        print(f"{name:28s} threads {args.threads}: {record['case_ms']:8.1f} ms against "
              f"{record['baseline']} {record['baseline_ms']:8.1f} ms = "
              f"{record['ratio']:.2f}x  (peak RSS {record['peak_rss_mib_after_case']:.0f} MiB)",
              flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
