"""Where a training step's time goes, by XLA operation: the profile behind
the block path's missed targets (issue 19).

Runs one case of `benchmarks/sparse_speed.py` (a model, a compute path) in
`model.fit` with `jit_compile=True` under the TensorFlow profiler, with XLA's
CPU runtime tracing each HLO instruction it executes
(`--xla_cpu_enable_xprof_traceme`) and the optimized HLO dumped
(`--xla_dump_to`). Each traced instruction is looked up in the dump and its
time added to a category:

* `block product`: a `dot` with batch dimensions (the block path's batched
  matmul of the gathered inputs and blocks, and its gradients);
* `dense product`: any other `dot` (masked-dense products, embedding and
  softmax, the block path's gradient into a dense weight);
* `gather`, `scatter`, `loop state` (dynamic-slice / dynamic-update-slice:
  reading and writing a time step of an XLA loop), `copy / transpose`,
  `elementwise fusion` (activations, gates, optimizer updates), `other`.

    python benchmarks/profile_step.py rhn_0.47 --path blocks
    python benchmarks/profile_step.py rhn_0.47 --path masked_dense

prints milliseconds per step by category and by instruction kind (opcode and
output shape: the same product at each time step adds up), and
writes `benchmarks/results/profile_step.json` (one entry per case, path and
thread count). Times are the sum over the instructions' executions on all
threads, per training step: with 2 threads two instructions may overlap, so
the total can exceed the wall time of a step.
"""

import argparse
import collections
import glob
import json
import os
import pathlib
import re
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
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
    dump = tempfile.mkdtemp(prefix="hlo_")
    logdir = tempfile.mkdtemp(prefix="prof_")
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_cpu_enable_xprof_traceme=true --xla_dump_to={dump}"
                               " --xla_dump_hlo_as_text").strip()
    import tensorflow as tf

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import sparse_speed

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    case = sparse_speed.cases()[case_name]
    model = sparse_speed.build(case, path)
    x, y = sparse_speed.data(case, steps)
    fit = dict(batch_size=sparse_speed.BATCH, epochs=1, verbose=0, shuffle=False)
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("case", help="a case name of benchmarks/sparse_speed.py")
    parser.add_argument("--path", default="blocks",
                        choices=("blocks", "masked_dense", "auto", "keras"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                             "profile_step.json"))
    args = parser.parse_args()
    if args.threads < 1 or args.steps < 1:
        parser.error(f"--threads and --steps must be >= 1, got {args.threads}, {args.steps}")
    result = profile(args.case, args.path, args.threads, args.steps)
    if not result["categories"]:
        raise SystemExit("no XLA instruction was traced: is the step XLA-compiled?")
    print(f"{args.case}, {args.path}, {args.threads} threads: "
          f"{result['ms_per_step']:.1f} ms of XLA instructions per step")
    for k, v in result["categories"].items():
        print(f"  {k:20s} {v:9.2f} ms  {100 * v / result['ms_per_step']:5.1f}%")
    print("largest instruction kinds (opcode, output shape; ms per step):")
    for k, v in result["top_kinds"].items():
        print(f"  {v:9.2f}  {k}")
    out = pathlib.Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    results[f"{args.case}/{args.path}@{args.threads}"] = result
    out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
