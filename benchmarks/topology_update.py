"""Cost of one DynamicSparsity topology update against one training epoch.

Model: Zaremba et al.'s PTB "medium" LSTM language model, sparse from
scratch: `SparseEmbedding(10000, 650)`, two `RNN(SparseLSTMCell(650))`
layers, `SparseDense(10000)` softmax, every matrix at sparsity 0.67 (about
19.8M weights in the sparse matrices, 6.6M of them active); batch 20, BPTT 35,
plain SGD (lr 1, global norm clip 5) as Zaremba.

Epoch time: the median time of `--steps` measured training steps (after
warm-up steps that trace and compile), times the 1327 steps of a PTB epoch
(929,589 training tokens / (20 x 35)). Measured for the non-XLA and the XLA
train step; the ratio uses the faster one (the smaller epoch, so the larger
ratio). The tokens are random ids: step time does not depend on the data.

Update time: `DynamicSparsity.update_topology` with drop fraction 0.3 on all
5 sparse matrices (prune, grow, assign masks and weights, reset the
optimizer's slots, update the ever-active masks), for each grow mode:
`random` (SET), `gradient` (RigL: one forward and backward pass on a 20 x 35
batch) and `momentum` (SNFS; plain SGD has no first moment, so the
callback's own moving average of that gradient). The first call compiles the
XLA update for each matrix shape (reported apart); the reported update time
is the median of `--repeats` later calls.

Target (issue 3): an update costs under 1% of an epoch.

    python benchmarks/topology_update.py       # writes benchmarks/results/topology_update.json
    python benchmarks/topology_update.py --quick   # small sizes, smoke test
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
import tensorflow as tf  # noqa: E402

import keras_sparse_rnn as ksr  # noqa: E402
from keras_sparse_rnn.dst import DynamicSparsity  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
PTB_TRAIN_TOKENS = 929_589

FULL = dict(vocab=10000, units=650, layers=2, batch=20, bptt=35, sparsity=0.67,
            steps=20, warmup=3, repeats=3)
QUICK = dict(vocab=500, units=32, layers=2, batch=4, bptt=10, sparsity=0.67,
             steps=5, warmup=2, repeats=2)


def build(cfg):
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    layers = [keras.Input((cfg["bptt"],), batch_size=cfg["batch"], dtype="int32"),
              ksr.SparseEmbedding(cfg["vocab"], cfg["units"],
                                  sparsity=cfg["sparsity"], mask_seed=1,
                                  name="embedding")]
    for i in range(cfg["layers"]):
        layers.append(keras.layers.RNN(
            ksr.SparseLSTMCell(cfg["units"], sparsity=cfg["sparsity"],
                               mask_seed=10 + i, name=f"cell{i}"),
            return_sequences=True, name=f"lstm{i}"))
    layers.append(ksr.SparseDense(cfg["vocab"], sparsity=cfg["sparsity"],
                                  mask_seed=2, name="softmax"))
    return keras.Sequential(layers, name="ptb_medium")


def compile_model(model, jit_compile):
    model.compile(keras.optimizers.SGD(1.0, global_clipnorm=5.0),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit_compile)


class StepTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self._t = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        # The loss is fetched so the step has really finished.
        float(logs["loss"]) if logs and "loss" in logs else None
        self.times.append(time.perf_counter() - self._t)


def measure_steps(model, cfg, data):
    timer = StepTimer()
    x, y = data
    n = cfg["warmup"] + cfg["steps"]
    model.fit(x[:n * cfg["batch"]], y[:n * cfg["batch"]], batch_size=cfg["batch"],
              epochs=1, shuffle=False, verbose=0, callbacks=[timer])
    return timer.times[:cfg["warmup"]], timer.times[cfg["warmup"]:]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--output", default=None)
    args = p.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    out_path = pathlib.Path(args.output) if args.output else RESULTS / (
        "topology_update_quick.json" if args.quick else "topology_update.json")
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    n = (cfg["warmup"] + cfg["steps"]) * cfg["batch"]
    x = rng.integers(0, cfg["vocab"], (n, cfg["bptt"])).astype("int32")
    y = rng.integers(0, cfg["vocab"], (n, cfg["bptt"])).astype("int32")
    epoch_steps = PTB_TRAIN_TOKENS // (cfg["batch"] * cfg["bptt"])

    steps = {}
    model = None
    for jit in (False, True):
        model = build(cfg)
        compile_model(model, jit)
        assert model.jit_compile is jit
        warm, timed = measure_steps(model, cfg, (x, y))
        steps["xla" if jit else "no_xla"] = {
            "warmup_seconds": warm, "step_seconds": timed,
            "median_step_seconds": statistics.median(timed),
        }
        print(f"train step ({'XLA' if jit else 'no XLA'}): median "
              f"{statistics.median(timed):.3f} s over {len(timed)} steps",
              flush=True)
    fastest = min(steps, key=lambda k: steps[k]["median_step_seconds"])
    epoch_seconds = steps[fastest]["median_step_seconds"] * epoch_steps

    # The last model (XLA) has a built optimizer: time updates on it.
    matrices = ksr.sparse_matrices(model)
    positions = sum(int(np.prod(m.weight.shape)) for m in matrices)
    active = sum(int(m.mask.numpy().sum()) for m in matrices)
    updates = {}
    grow_data = (x[:cfg["batch"]], y[:cfg["batch"]])
    for grow in ("random", "gradient", "momentum"):
        cb = DynamicSparsity(0.3, grow=grow,
                             grow_data=None if grow == "random" else grow_data)
        cb.set_model(model)
        t = time.perf_counter()
        first = cb.update_topology(drop_fraction=0.3)
        first_seconds = time.perf_counter() - t
        times = []
        for _ in range(cfg["repeats"]):
            t = time.perf_counter()
            record = cb.update_topology(drop_fraction=0.3)
            times.append(time.perf_counter() - t)
        median = statistics.median(times)
        updates[grow] = {
            "first_call_seconds_with_compilation": first_seconds,
            "update_seconds": times,
            "median_update_seconds": median,
            "ratio_update_over_epoch": median / epoch_seconds,
            "pruned_per_update": record["pruned"],
            "first_pruned": first["pruned"],
        }
        print(f"update grow={grow}: median {median:.2f} s (first call "
              f"{first_seconds:.2f} s with XLA compilation), "
              f"{100 * median / epoch_seconds:.3f}% of an estimated epoch",
              flush=True)

    result = {
        "benchmark": "topology_update",
        "mode": "quick" if args.quick else "full",
        "ratio": ("ratio_update_over_epoch = median update time / estimated "
                  "epoch time; epoch = median measured step time (faster of "
                  "XLA / no XLA) x PTB steps per epoch"),
        "epoch_estimate": {
            "method": (f"extrapolated from {cfg['steps']} measured training "
                       f"steps to {epoch_steps} steps ({PTB_TRAIN_TOKENS} "
                       f"tokens / ({cfg['batch']} x {cfg['bptt']}))"),
            "steps_per_epoch": epoch_steps,
            "train_path": fastest,
            "epoch_seconds": epoch_seconds,
        },
        "config": cfg,
        "sparse_positions": positions,
        "active_weights": active,
        "train_steps": steps,
        "updates": updates,
        "target": "update under 1% of an epoch",
        "machine": {
            "platform": platform.platform(), "python": platform.python_version(),
            "tensorflow": tf.__version__, "keras": keras.__version__,
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg(),
        },
        "wall_seconds": time.perf_counter() - start,
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"estimated epoch: {epoch_seconds:.0f} s ({fastest} train step "
          f"x {epoch_steps} steps, extrapolated from {cfg['steps']} measured steps)")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    sys.exit(main())
