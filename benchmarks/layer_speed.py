"""Training speed of the sparse recurrent layers against their dense baselines.

Each row trains two models that differ only in the recurrent layer (sparse vs
its dense counterpart) with one SGD step per batch (mean squared error against
random targets, the recurrent layer's whole output sequence: nothing else in
the model), and reports training steps per second and the ratio
`sparse step time / dense step time` (1.0 = the same speed; the sparse layers
run masked-dense kernels, so their theoretical FLOP saving is not a wall-time
saving, and the mask constraint adds one multiply per weight per step).

Measurement: both models are built and compiled, warmed up (the first step
traces / compiles), then 9 rounds (5 for the 830 x 10 RHN) each time 10
steps (5 for that RHN) of the sparse model and of the dense model,
alternating which goes first, so a load change on a shared machine hits
both. The reported figure is the median over the rounds; the per-round
ratios (their min and max) and the load average show the noise.

Rows (full run; `--quick` uses tiny sizes for a smoke test):
- `RNN(SparseLSTMCell)` vs `RNN(keras.layers.LSTMCell)` and `SparseLSTM` vs
  `keras.layers.LSTM`: batch 20, 35 steps, 650 units, sparsity 0.67
  (Zaremba's medium PTB LSTM, Selfish-RNN's density 0.33);
- `SparseRHN` depth 10, 830 units, sparsity 0.53 (the PTB RHN, Selfish-RNN's
  density 0.47) and a small one (depth 3, 200 units) vs the same layer at
  sparsity 0 (Keras has no RHN);
- `SparseGRU` vs `keras.layers.GRU` (650 units, sparsity 0.67);
each with `jit_compile=True` and `False`.

Usage:
    python benchmarks/layer_speed.py            # full, writes
                                                # benchmarks/results/layer_speed.json
    python benchmarks/layer_speed.py --quick    # smoke test, writes
                                                # benchmarks/results/layer_speed_quick.json
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_sparse_rnn import SparseLSTM, SparseLSTMCell  # noqa: E402
from keras_sparse_rnn.layers import SparseGRU, SparseRHN  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results"

FULL = {
    "batch": 20, "timesteps": 35, "lstm_units": 650, "lstm_sparsity": 0.67,
    "rhn_big": (10, 830), "rhn_small": (3, 200), "rhn_sparsity": 0.53,
    "gru_units": 650, "gru_sparsity": 0.67,
    "steps": 10, "repeats": 9, "warmup": 2,
    # The 830 x 10 RHN step is slow on CPU (about 0.7 s on 2 cores): fewer
    # steps per round. The whole full run takes about 5 minutes there.
    "steps_rhn_big": 5, "repeats_rhn_big": 5,
}
QUICK = {
    "batch": 4, "timesteps": 6, "lstm_units": 16, "lstm_sparsity": 0.67,
    "rhn_big": (3, 16), "rhn_small": (2, 8), "rhn_sparsity": 0.53,
    "gru_units": 16, "gru_sparsity": 0.67,
    "steps": 2, "repeats": 2, "warmup": 1,
    "steps_rhn_big": 2, "repeats_rhn_big": 2,
}


def _rows(cfg):
    """(name, sparse layer factory, dense layer factory, input dim, units, kind)."""
    lu, ls = cfg["lstm_units"], cfg["lstm_sparsity"]
    gu, gs = cfg["gru_units"], cfg["gru_sparsity"]
    rs = cfg["rhn_sparsity"]
    rows = [
        ("RNN(SparseLSTMCell) vs RNN(LSTMCell)",
         lambda: keras.layers.RNN(SparseLSTMCell(lu, sparsity=ls, mask_seed=0),
                                  return_sequences=True),
         lambda: keras.layers.RNN(keras.layers.LSTMCell(lu), return_sequences=True),
         lu, lu, "lstm", ls),
        ("SparseLSTM vs LSTM",
         lambda: SparseLSTM(lu, sparsity=ls, mask_seed=0, return_sequences=True),
         lambda: keras.layers.LSTM(lu, return_sequences=True),
         lu, lu, "lstm", ls),
        ("SparseGRU vs GRU",
         lambda: SparseGRU(gu, sparsity=gs, mask_seed=0, return_sequences=True),
         lambda: keras.layers.GRU(gu, return_sequences=True),
         gu, gu, "gru", gs),
    ]
    for label, (depth, units) in (("small", cfg["rhn_small"]),
                                  ("big", cfg["rhn_big"])):
        rows.append((
            f"SparseRHN depth {depth} x {units} vs sparsity 0",
            lambda d=depth, u=units: SparseRHN(u, depth=d, sparsity=rs,
                                               mask_seed=0, return_sequences=True),
            lambda d=depth, u=units: SparseRHN(u, depth=d, sparsity=0.0,
                                               mask_seed=0, return_sequences=True),
            units, units, f"rhn_{label}", rs,
        ))
    return rows


def _model(layer, batch, timesteps, input_dim, jit_compile):
    model = keras.Sequential([keras.Input((timesteps, input_dim), batch_size=batch),
                              layer])
    model.compile(keras.optimizers.SGD(0.01), "mse", jit_compile=jit_compile)
    if model.jit_compile is not jit_compile:
        raise RuntimeError(
            f"asked for jit_compile={jit_compile}, Keras set {model.jit_compile}"
        )
    return model


def _time_steps(model, x, y, steps):
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)  # returns NumPy logs: waits for the step
    return (time.perf_counter() - start) / steps


def measure_row(row, cfg, jit_compile):
    name, make_sparse, make_dense, input_dim, units, kind, sparsity = row
    big = kind == "rhn_big"
    steps = cfg["steps_rhn_big"] if big else cfg["steps"]
    repeats = cfg["repeats_rhn_big"] if big else cfg["repeats"]
    rng = np.random.default_rng(0)
    batch, timesteps = cfg["batch"], cfg["timesteps"]
    x = rng.normal(size=(batch, timesteps, input_dim)).astype("float32")
    y = rng.normal(size=(batch, timesteps, units)).astype("float32") * 0.1
    keras.utils.set_random_seed(0)
    models = {"sparse": _model(make_sparse(), batch, timesteps, input_dim, jit_compile),
              "dense": _model(make_dense(), batch, timesteps, input_dim, jit_compile)}
    load_before = os.getloadavg()
    warm = {}
    for key, model in models.items():
        start = time.perf_counter()
        for _ in range(cfg["warmup"]):
            model.train_on_batch(x, y)
        warm[key] = time.perf_counter() - start
    times = {"sparse": [], "dense": []}
    for r in range(repeats):
        order = ("sparse", "dense") if r % 2 == 0 else ("dense", "sparse")
        for key in order:
            times[key].append(_time_steps(models[key], x, y, steps))
    ratios = [s / d for s, d in zip(times["sparse"], times["dense"])]
    med = {k: statistics.median(v) for k, v in times.items()}
    sparse_layer = models["sparse"].layers[0]
    masks = [m for _, m in sparse_layer.cell.sparse_weights]
    density = (sum(float(np.asarray(m.numpy()).sum()) for m in masks)
               / sum(int(np.prod(m.shape)) for m in masks))
    result = {
        "name": name,
        "jit_compile": jit_compile,
        "sparsity": sparsity,
        "measured_density": density,
        "steps_per_round": steps,
        "rounds": repeats,
        "warmup_seconds": warm,
        "sparse_step_seconds": times["sparse"],
        "dense_step_seconds": times["dense"],
        "sparse_steps_per_second": 1.0 / med["sparse"],
        "dense_steps_per_second": 1.0 / med["dense"],
        "time_ratio_sparse_over_dense": med["sparse"] / med["dense"],
        "round_ratios": ratios,
        "round_ratio_min": min(ratios),
        "round_ratio_max": max(ratios),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }
    del models
    keras.backend.clear_session()
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and few steps (smoke test)")
    parser.add_argument("--rows", default=None,
                        help="only rows whose name contains this text")
    parser.add_argument("--jit", choices=("both", "true", "false"), default="both",
                        help="which jit_compile settings to measure")
    parser.add_argument("--output", default=None,
                        help="JSON path (default benchmarks/results/"
                             "layer_speed[_quick].json)")
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    output = pathlib.Path(args.output) if args.output else RESULTS / (
        "layer_speed_quick.json" if args.quick else "layer_speed.json")
    jits = {"both": (False, True), "true": (True,), "false": (False,)}[args.jit]
    rows = [r for r in _rows(cfg) if args.rows is None or args.rows in r[0]]
    if not rows:
        parser.error(f"--rows {args.rows!r} matches no row")

    started = time.time()
    results = []
    print(f"{'row':<42} {'jit':<5} {'sparse st/s':>11} {'dense st/s':>10} "
          f"{'ratio':>6}  per-round ratios min..max", flush=True)
    for row in rows:
        for jit in jits:
            res = measure_row(row, cfg, jit)
            results.append(res)
            print(f"{res['name']:<42} {str(jit):<5} "
                  f"{res['sparse_steps_per_second']:>11.3f} "
                  f"{res['dense_steps_per_second']:>10.3f} "
                  f"{res['time_ratio_sparse_over_dense']:>6.3f}  "
                  f"{res['round_ratio_min']:.3f}..{res['round_ratio_max']:.3f}",
                  flush=True)
    report = {
        "benchmark": "layer_speed",
        "mode": "quick" if args.quick else "full",
        "ratio": "time_ratio_sparse_over_dense = median sparse step time / "
                 "median dense step time (below 1: sparse faster)",
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
        "machine": {
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "keras": keras.__version__,
            "backend": keras.backend.backend(),
            "cpu_count": os.cpu_count(),
        },
        "wall_seconds": time.time() - started,
        "rows": results,
    }
    try:
        import tensorflow as tf
        report["machine"]["tensorflow"] = tf.__version__
        report["machine"]["gpus"] = len(tf.config.list_physical_devices("GPU"))
    except ImportError:
        pass
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))
    print(f"wrote {output} ({report['wall_seconds']:.0f} s)")
    return report


if __name__ == "__main__":
    main()
