"""Two grid runs at once with one thread each, or one after the other with two?

Measures, on this machine, the time to finish a pair of identical PTB runs
(`examples/ptb_language_model.py`, Zaremba's small LSTM, dense, a fixed slice
of `--steps` batches and the whole validation set) in two ways:

* sequential: run A with `--threads <cores>`, then run B the same;
* parallel: A and B at once, each with `--threads <cores / 2>`.

Prints the ratio parallel / sequential (below 1: parallel is faster) and writes
`benchmarks/results/parallel_runs.json`. `benchmarks/reproduce.py` runs
`DEFAULT_PARALLEL` grid points at once by this result.

    python benchmarks/parallel_runs.py [--steps 300]
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def command(out_dir, threads, steps):
    return [sys.executable, str(ROOT / "examples" / "ptb_language_model.py"),
            "--size", "small", "--method", "dense", "--epochs", "1",
            "--steps-per-epoch", str(steps), "--threads", str(threads),
            "--no-export", "--no-backup", "--verbose", "0", "--out-dir", str(out_dir)]


def run_pair(tmp, label, threads, steps, parallel):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    shared = ROOT.parent / "shared" / "data"
    env.setdefault("KERAS_SPARSE_RNN_DATA", str(shared))
    outs = [pathlib.Path(tmp) / f"{label}_{i}" for i in range(2)]
    start = time.monotonic()
    if parallel:
        procs = [subprocess.Popen(command(o, threads, steps), env=env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
                 for o in outs]
        codes = [p.wait() for p in procs]
    else:
        codes = [subprocess.call(command(o, threads, steps), env=env, cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
                 for o in outs]
    total = time.monotonic() - start
    if any(codes):
        raise SystemExit(f"{label}: a run failed (exit codes {codes})")
    records = [json.loads((o / "history.json").read_text()) for o in outs]
    return {"threads_per_run": threads, "runs_at_once": 2 if parallel else 1,
            "pair_seconds": total,
            "epoch_seconds": [r["wall_seconds"] for r in records],
            "ms_per_step_incl_validation": [1000 * r["wall_seconds"] / r["train_steps"]
                                            for r in records]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=300, help="training batches per run")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                        "parallel_runs.json"))
    args = p.parse_args(argv)
    if args.steps < 1:
        print(f"error: --steps must be >= 1, got {args.steps}", file=sys.stderr)
        return 2
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        sequential = run_pair(tmp, "sequential", cores, args.steps, parallel=False)
        parallel = run_pair(tmp, "parallel", max(1, cores // 2), args.steps,
                            parallel=True)
    ratio = parallel["pair_seconds"] / sequential["pair_seconds"]
    result = {"cores": cores, "steps_per_run": args.steps,
              "sequential": sequential, "parallel": parallel,
              "ratio_parallel_over_sequential": ratio,
              "faster": "parallel" if ratio < 1 else "sequential"}
    print(f"pair of runs ({args.steps} steps + validation each): sequential with "
          f"{cores} threads {sequential['pair_seconds']:.1f} s, 2 at once with "
          f"{max(1, cores // 2)} thread(s) {parallel['pair_seconds']:.1f} s; "
          f"ratio parallel / sequential {ratio:.3f}")
    pathlib.Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
