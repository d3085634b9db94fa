"""LiteRT file size and latency of sparse recurrent models against dense.

Models (random initial weights: size and latency do not depend on training):
- `lm`: a PTB-sized LSTM language model, `SparseEmbedding(10000, 656)`, two
  `SparseLSTM(656, return_sequences=True)`, `SparseDense(10000)` (Zaremba et
  al.'s "medium" has 650 units; 656 is the nearest multiple of 16, so that
  blocks of 1x4 and 1x16 tile every kernel). 19.9M weights.
- `classifier`: a text classifier, `SparseEmbedding(10000, 128)`,
  `SparseLSTM(256)`, `Dense(2)` softmax (the small head stays dense).

Variants: dense (every matrix dense, the same layers at sparsity 0) and
sparsity 0.5, 0.8, 0.9 of every sparse matrix (embedding included, as the
paper's), with random masks and with blocks of 1x4 along the input
dimension (`block=(1, 4)`); for int8 also blocks of 1x16 (what LiteRT's int8
`FULLY_CONNECTED` runs sparse). Each is exported with
`export_tflite(..., sparse_encoding=True)` in float32 (`WHILE` loop) and int8
(full integer, unrolled, calibrated on random token sequences), as a whole
sequence (batch 1, 35 steps) and as a streaming step (one token, states in
and out). Every file is verified against Keras by the exporter.

Latency: `Interpreter.invoke()` time with 1 thread, measured twice per file:
with LiteRT's default XNNPACK delegate (what an app gets) and with the
builtin kernels only (`BUILTIN_WITHOUT_DEFAULT_DELEGATES`); a file the
delegate cannot prepare has no XNNPACK figure. The files of one model and
quantization are timed in interleaved rounds (each round runs every file
`invokes` times), so that load from other processes hits all variants alike;
a figure is the median over all its runs. Ratios are to the dense model of
the same quantization, measured in the same run.

Targets (issue 5): file size <= 1.2 x density x dense size; at sparsity 0.9
with blocks, sequence latency <= 0.5 x dense.

    python benchmarks/tflite_inference.py          # results/tflite_inference.{json,md}
    python benchmarks/tflite_inference.py --quick  # small sizes, smoke test
"""

import argparse
import datetime
import gc
import json
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_sparse_rnn import SparseDense, SparseEmbedding, SparseLSTM  # noqa: E402
from keras_sparse_rnn.export import export_tflite  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results"

FULL = dict(vocab=10000, lm_units=656, cls_embedding=128, cls_units=256,
            steps=35, sparsities=(0.5, 0.8, 0.9), rounds=5, invokes=6,
            step_invokes=60, calibration=8)
QUICK = dict(vocab=2000, lm_units=128, cls_embedding=64, cls_units=128,
             steps=35, sparsities=(0.9,), rounds=3, invokes=3,
             step_invokes=20, calibration=4)


def build(kind, cfg, sparsity, block):
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None,), dtype="int32", name="tokens")
    if kind == "lm":
        units = cfg["lm_units"]
        x = SparseEmbedding(cfg["vocab"], units, sparsity=sparsity,
                            mask_seed=1, name="embedding")(inputs)
        for i in range(2):
            x = SparseLSTM(units, sparsity=sparsity, block=block,
                           mask_seed=2 + i, return_sequences=True,
                           name=f"lstm_{i + 1}")(x)
        outputs = SparseDense(cfg["vocab"], sparsity=sparsity, block=block,
                              mask_seed=5, name="softmax")(x)
    else:
        x = SparseEmbedding(cfg["vocab"], cfg["cls_embedding"],
                            sparsity=sparsity, mask_seed=1,
                            name="embedding")(inputs)
        x = SparseLSTM(cfg["cls_units"], sparsity=sparsity, block=block,
                       mask_seed=2, name="lstm")(x)
        outputs = keras.layers.Dense(2, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name=kind)


def variants(cfg, quantization):
    out = [("dense", 0.0, None)]
    for s in cfg["sparsities"]:
        out.append(("random", s, None))
        out.append(("block1x4", s, (1, 4)))
        if quantization == "int8":
            out.append(("block1x16", s, (1, 16)))
    return out


class Timed:
    """An interpreter of one file, with its inputs set once."""

    def __init__(self, path, xnnpack):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        kwargs = {"num_threads": 1}
        if not xnnpack:
            kwargs["experimental_op_resolver_type"] = (
                OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        self.interpreter = Interpreter(model_path=str(path), **kwargs)
        self.interpreter.allocate_tensors()
        rng = np.random.default_rng(0)
        for d in self.interpreter.get_input_details():
            if np.issubdtype(d["dtype"], np.integer):
                value = rng.integers(0, 100, d["shape"]).astype(d["dtype"])
            else:
                value = rng.normal(0, 0.1, d["shape"]).astype(d["dtype"])
            self.interpreter.set_tensor(d["index"], value)
        self.interpreter.invoke()  # warm-up (DENSIFY runs on the first one)
        self.interpreter.invoke()
        self.times = []

    def run(self, invokes):
        for _ in range(invokes):
            start = time.perf_counter()
            self.interpreter.invoke()
            self.times.append(time.perf_counter() - start)

    @property
    def median_ms(self):
        return 1e3 * statistics.median(self.times)


def open_timed(path, xnnpack):
    try:
        return Timed(path, xnnpack)
    except (RuntimeError, ValueError):
        return None


def time_group(files, rounds, invokes):
    """Interleaved timing of several files: {key: (xnnpack_ms, builtin_ms)}."""
    timed = {}
    for key, path in files.items():
        timed[key] = (open_timed(path, True), open_timed(path, False))
    for _ in range(rounds):
        for pair in timed.values():
            for t in pair:
                if t is not None:
                    t.run(invokes)
    result = {k: tuple(None if t is None else round(t.median_ms, 4)
                       for t in pair) for k, pair in timed.items()}
    del timed
    gc.collect()
    return result


def export_group(kind, cfg, quantization, folder, log):
    """Exports every variant of one model and quantization."""
    rng = np.random.default_rng(1)
    calibration = rng.integers(0, cfg["vocab"],
                               (cfg["calibration"], cfg["steps"]))
    rows = []
    for structure, sparsity, block in variants(cfg, quantization):
        model = build(kind, cfg, sparsity, block)
        row = dict(model=kind, structure=structure, sparsity=sparsity,
                   density=round(1 - sparsity, 4),
                   quantization=quantization or "float32",
                   parameters=int(sum(np.prod(w.shape)
                                      for w in model.trainable_weights)))
        for form in ("sequence", "step"):
            path = folder / f"{kind}_{structure}_{sparsity}_{quantization}" \
                f"_{form}.tflite"
            start = time.perf_counter()
            report = export_tflite(
                model, path, sequence_length=cfg["steps"],
                quantization=quantization,
                representative_data=calibration if quantization else None,
                streaming=form == "step", compare_dense=True,
                # the smallest encoding, as measured before issue 21 (the
                # default now keeps only files that XNNPACK runs, close to
                # the best error): the latencies of both delegates are timed
                prefer="size", require_xnnpack=False)
            row[f"{form}_export_s"] = round(time.perf_counter() - start, 1)
            row[f"{form}_path"] = str(path)
            row[f"{form}_size_bytes"] = report.size_bytes
            row[f"{form}_densify"] = report.densify
            row[f"{form}_sparse_tensors"] = report.sparse_tensors
            row[f"{form}_xnnpack_ok"] = report.xnnpack
            row[f"{form}_max_abs_error"] = report.max_abs_error
            row[f"{form}_unroll"] = report.unroll
            row[f"{form}_padded_embedding"] = any(
                "padded rows" in n for n in report.notes)
            log(f"  {kind} {structure} {sparsity} {row['quantization']} "
                f"{form}: {report.size_bytes / 1e6:.2f} MB, "
                f"DENSIFY={report.densify}, XNNPACK={report.xnnpack}, "
                f"err={report.max_abs_error:.2e}, "
                f"{row[f'{form}_export_s']} s")
        rows.append(row)
        del model
        gc.collect()
    return rows


def add_timing(rows, cfg):
    for form, invokes in (("sequence", cfg["invokes"]),
                          ("step", cfg["step_invokes"])):
        files = {i: row[f"{form}_path"] for i, row in enumerate(rows)}
        timing = time_group(files, cfg["rounds"], invokes)
        for i, row in enumerate(rows):
            row[f"{form}_ms_xnnpack"], row[f"{form}_ms_builtin"] = timing[i]


def add_ratios(rows):
    dense = {(r["model"], r["quantization"]): r for r in rows
             if r["structure"] == "dense"}
    for r in rows:
        base = dense[r["model"], r["quantization"]]
        r["size_ratio"] = round(r["sequence_size_bytes"]
                                / base["sequence_size_bytes"], 4)
        r["size_target"] = round(1.2 * r["density"], 4)
        r["size_target_met"] = r["size_ratio"] <= r["size_target"]
        for form in ("sequence", "step"):
            for runtime in ("xnnpack", "builtin"):
                key = f"{form}_ms_{runtime}"
                if r[key] is None or base[key] is None:
                    r[f"{key}_ratio"] = None
                else:
                    r[f"{key}_ratio"] = round(r[key] / base[key], 4)
        if r["structure"].startswith("block") and r["sparsity"] == 0.9:
            ratio = r["sequence_ms_xnnpack_ratio"]
            r["latency_target"] = 0.5
            r["latency_target_met_xnnpack"] = (
                None if ratio is None else ratio <= 0.5)
            ratio = r["sequence_ms_builtin_ratio"]
            r["latency_target_met_builtin"] = (
                None if ratio is None else ratio <= 0.5)


def fmt(v, digits=2):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return f"{v:.{digits}f}"


def markdown(result):
    rows = result["rows"]
    lines = [
        "# LiteRT inference: sparse vs dense",
        "",
        f"Measured {result['date']} on {result['machine']} "
        f"({result['cpus']} CPUs, shared), TensorFlow {result['tensorflow']},"
        f" LiteRT {result['litert']}, 1 interpreter thread; "
        f"{'QUICK (small sizes) ' if result['quick'] else ''}"
        f"models: {result['models']}.",
        "Size: whole-sequence file (batch 1, "
        f"{result['config']['steps']} steps). Latency: median ms of one "
        "`invoke()`, with the default XNNPACK delegate / builtin kernels "
        "only; ratios to the dense model of the same quantization, same run. "
        "`-`: the XNNPACK delegate cannot prepare the file.",
        "",
        "| model | quant | structure | sparsity | size MB | size/dense "
        "| target 1.2d | met | seq ms XNNPACK | ratio | seq ms builtin "
        "| ratio | step ms XNNPACK | ratio | step ms builtin | ratio "
        "| DENSIFY | max err |",
        "|" + "---|" * 18,
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['quantization']} | {r['structure']} "
            f"| {r['sparsity']} | {r['sequence_size_bytes'] / 1e6:.2f} "
            f"| {fmt(r['size_ratio'], 3)} | {fmt(r['size_target'], 2)} "
            f"| {fmt(r['size_target_met'])} "
            f"| {fmt(r['sequence_ms_xnnpack'])} "
            f"| {fmt(r['sequence_ms_xnnpack_ratio'])} "
            f"| {fmt(r['sequence_ms_builtin'])} "
            f"| {fmt(r['sequence_ms_builtin_ratio'])} "
            f"| {fmt(r['step_ms_xnnpack'], 3)} "
            f"| {fmt(r['step_ms_xnnpack_ratio'])} "
            f"| {fmt(r['step_ms_builtin'], 3)} "
            f"| {fmt(r['step_ms_builtin_ratio'])} "
            f"| {fmt(r['sequence_densify'])} "
            f"| {r['sequence_max_abs_error']:.1e} |")
    lines += ["", "## Targets", ""]
    for r in rows:
        if "latency_target" in r:
            lines.append(
                f"- {r['model']} {r['quantization']} {r['structure']} at 0.9:"
                f" sequence latency ratio {fmt(r['sequence_ms_xnnpack_ratio'])}"
                f" (XNNPACK) / {fmt(r['sequence_ms_builtin_ratio'])} (builtin)"
                f", target <= 0.5: "
                f"{fmt(r['latency_target_met_xnnpack'])} / "
                f"{fmt(r['latency_target_met_builtin'])}; size ratio "
                f"{fmt(r['size_ratio'], 3)}, target <= "
                f"{fmt(r['size_target'], 2)}: {fmt(r['size_target_met'])}")
    met = sum(r["size_target_met"] for r in rows if r["structure"] != "dense")
    total = sum(1 for r in rows if r["structure"] != "dense")
    lines.append(f"- size target met by {met} of {total} sparse files")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small models, sparsity 0.9 only (smoke test)")
    parser.add_argument("--models", default="lm,classifier",
                        help="comma-separated subset of lm,classifier")
    parser.add_argument("--quantizations", default="float32,int8",
                        help="comma-separated subset of float32,int8")
    parser.add_argument("--output", default=None,
                        help="JSON path (default results/tflite_inference"
                        "[_quick].json; the .md is written next to it)")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    models = args.models.split(",")
    quantizations = [None if q == "float32" else q
                     for q in args.quantizations.split(",")]
    for m in models:
        if m not in ("lm", "classifier"):
            parser.error(f"--models: unknown model {m!r}")
    for q in quantizations:
        if q not in (None, "int8"):
            parser.error(f"--quantizations: unknown {q!r}")
    name = "tflite_inference" + ("_quick" if args.quick else "")
    out = pathlib.Path(args.output) if args.output else RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)

    import ai_edge_litert
    import tensorflow as tf

    def log(text):
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    result = dict(
        benchmark="tflite_inference", quick=args.quick,
        date=datetime.datetime.now().isoformat(timespec="seconds"),
        machine=platform.processor() or platform.machine(),
        cpus=os.cpu_count(), python=sys.version.split()[0],
        tensorflow=tf.__version__,
        litert=getattr(ai_edge_litert, "__version__", "unknown"),
        keras=keras.__version__, threads=1, config=cfg, models=models,
        rows=[],
    )
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tflite_bench_") as tmp:
        folder = pathlib.Path(tmp)
        for kind in models:
            for quantization in quantizations:
                log(f"{kind} {quantization or 'float32'}: exporting")
                rows = export_group(kind, cfg, quantization, folder, log)
                log(f"{kind} {quantization or 'float32'}: timing")
                add_timing(rows, cfg)
                for row in rows:
                    for form in ("sequence", "step"):
                        os.remove(row.pop(f"{form}_path"))
                result["rows"] += rows
                add_ratios(result["rows"])
                result["seconds"] = round(time.perf_counter() - start, 1)
                out.write_text(json.dumps(result, indent=1))
                out.with_suffix(".md").write_text(markdown(result))
                for r in rows:
                    log(f"  {r['structure']} {r['sparsity']}: size ratio "
                        f"{r['size_ratio']} (target {r['size_target']}), "
                        f"seq {r['sequence_ms_xnnpack']} ms XNNPACK "
                        f"(x{r['sequence_ms_xnnpack_ratio']}), "
                        f"{r['sequence_ms_builtin']} ms builtin "
                        f"(x{r['sequence_ms_builtin_ratio']}), step "
                        f"{r['step_ms_xnnpack']} / {r['step_ms_builtin']} ms")
    print(markdown(result))
    log(f"wrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
