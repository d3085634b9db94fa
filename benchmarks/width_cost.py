"""What a wider sparse LSTM at the dense small model's parameter count costs.

The `equal` profile of `reproduce.py` trains 2 x W LSTMs sparse at the dense
small model's 4,651,600 parameters. Its width W had to keep one 13-epoch run
near 3 hours here; this script measures why 650 does not. For each width it
runs `examples/ptb_language_model.py` (Zaremba's small schedule) for 2 epochs
of `--steps` batches, each epoch followed by the whole validation set, one
thread, the widths one after another:

* baseline `dense_200`: the dense small LSTM (`--method dense`);
* `rigl_W`: RigL at `--active-params 4651600`, the LSTM kernels in 32 x 32
  blocks (as the `equal` profile runs them), for each `--widths` W.

The second epoch (compiled; its topology update included) is timed from the
example's `epoch_seconds`. Prints each width's ratio to the baseline and the
13-epoch time it implies from the baseline's measured full run, and writes
`benchmarks/results/width_cost.json`.

    python benchmarks/width_cost.py [--steps 400] [--widths 416 650]
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
ACTIVE_PARAMS = 4_651_600
# The dense small model's full 13-epoch run in the cpu grid (one thread, two
# runs at once): the time the ratios are applied to.
DENSE_RUN = ROOT / "benchmarks" / "results" / "reproduce_cpu" / "ptb_lstm_small_dense.json"


def command(out_dir, width, steps):
    method = (["--method", "dense"] if width is None else
              ["--method", "rigl", "--units", str(width), "--active-params",
               str(ACTIVE_PARAMS), "--block", "32"])
    return [sys.executable, str(ROOT / "examples" / "ptb_language_model.py"),
            "--size", "small", *method, "--epochs", "2", "--steps-per-epoch", str(steps),
            "--threads", "1", "--no-export", "--no-backup", "--verbose", "0",
            "--out-dir", str(out_dir)]


def second_epoch_seconds(out_dir, width, steps):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    env.setdefault("KERAS_SPARSE_RNN_DATA", str(ROOT.parent / "shared" / "data"))
    done = subprocess.run(command(out_dir, width, steps), env=env, cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"the {width or 'dense'} run failed:\n{done.stderr[-3000:]}")
    record = json.loads((out_dir / "history.json").read_text())
    first, second = record["epoch_seconds"]
    return second - first, record


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=400, help="training batches per epoch")
    p.add_argument("--widths", type=int, nargs="+", default=[416, 650])
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "width_cost.json"))
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error(f"--steps must be >= 1, got {args.steps}")
    if any(w < 1 for w in args.widths):
        p.error(f"--widths must be >= 1, got {args.widths}")
    dense_run = json.loads(DENSE_RUN.read_text())
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for width in [None, *args.widths]:
            name = "dense_200" if width is None else f"rigl_{width}"
            seconds, record = second_epoch_seconds(pathlib.Path(tmp) / name, width,
                                                   args.steps)
            results.append({"name": name, "units": record["config"]["units"],
                            "active_params": record["active_params"],
                            "sparsity": record["args"]["sparsity"],
                            "second_epoch_seconds": seconds})
    base = results[0]["second_epoch_seconds"]
    for r in results:
        r["ratio"] = r["second_epoch_seconds"] / base
        r["implied_run_hours"] = r["ratio"] * dense_run["wall_seconds"] / 3600
        print(f"{r['name']:10s} {r['units']:4d} units, {r['active_params']:,} params, "
              f"epoch of {args.steps} steps + validation {r['second_epoch_seconds']:6.1f} s"
              f" = {r['ratio']:.2f} x dense_200; a 13-epoch run ~ "
              f"{r['implied_run_hours']:.1f} h")
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "command": " ".join(["python benchmarks/width_cost.py", *(argv or sys.argv[1:])]),
        "steps": args.steps, "threads": 1, "baseline": "dense_200",
        "dense_run_seconds": dense_run["wall_seconds"],
        "note": "one run at a time, beside whatever else ran on the machine",
        "results": results}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
