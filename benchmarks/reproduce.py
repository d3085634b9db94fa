"""Reproduction benchmark: sparse-from-scratch LSTMs against dense and pruning.

Runs a grid of the example scripts, each in its own process (so tfmot's
`tf_keras` never meets Keras 3, and a partly finished grid can resume), and
writes a Markdown table, PNG plots and the bars of the issue:

    python benchmarks/reproduce.py --profile quick          # ~1 h on 2 CPU cores
    python benchmarks/reproduce.py --profile quick --dry-run
    python benchmarks/reproduce.py --profile quick --only 'ptb_*_0.9'
    python benchmarks/reproduce.py --profile quick --report-only
    python benchmarks/reproduce.py --profile full           # paper-sized, for a GPU

Profiles:

* `quick` (`QUICK_PTB`, `QUICK_IMDB`): Penn Treebank with Zaremba's small
  LSTM (2 x 200 units, BPTT 20, batch 20, SGD, clip 5, lr halved each epoch
  after the 4th), dense once and, at sparsity 0.67 and 0.9, static sparse,
  SET, RigL, gradual magnitude pruning (ours, `GradualPruning`) and tfmot's
  `prune_low_magnitude` + `PolynomialDecay` (`examples/tfmot_baseline.py`);
  every PTB run trains 6 epochs on the same fixed slice, the first 700 of
  the 2,323 training batches (280,000 tokens, 30% of the training stream),
  and is validated and tested on the whole validation and test sets. IMDB:
  dense against SET at 0.9, 3 epochs on the 20,000 training reviews (a
  seeded 80/20 split of the 25,000), tested on all 25,000 test reviews.
  Budget, measured on this project's 2-core machine: a small-LSTM step took
  47-55 ms (XLA, Keras 3; 60-75 ms for tfmot in tf_keras without XLA, its
  XLA path being far slower there), an epoch of the slice 35-45 s with its
  validation, so a PTB run 4-5 minutes with start-up, the 11 PTB runs
  about 50 minutes and the 2 IMDB runs about 4; the grid fits 75 minutes
  with margin for a shared CPU (limit: 90).
* `full`: the paper-sized grid for a GPU: the small, medium and large LSTMs
  and the RHN (depth 10 x 830 units, medium's schedule and dropout), each
  dense and at sparsity 0.5, 0.67, 0.8 and 0.9 with static, SET, RigL,
  SNFS, gradual pruning and (LSTMs) tfmot, each size's full Zaremba
  schedule (13 / 39 / 55 epochs) on the whole training set; IMDB dense and
  static, SET and RigL at 0.9. Days of GPU time: run parts with `--only`.

Outputs: one JSON per run, `<results-dir>/reproduce_<profile>/<run>.json`
(the example's `history.json` plus a `run` entry: command, time, grid
coordinates); a run whose JSON exists is skipped. Then
`<results-dir>/reproduce_<profile>.md` (tables, bars), and
`reproduce_<profile>_ppl_per_epoch.png` and `..._ppl_vs_sparsity.png`. The
runs' own folders (model files, logs) go to `--runs-dir`
(default `runs/reproduce_<profile>`).

The bars (quick profile; computed from the JSONs, per PTB model in `full`):
at sparsity 0.67 the best dynamic method (SET, RigL, SNFS) has a validation
perplexity within 5% of dense and below static sparse; at 0.9 every dynamic
method's validation perplexity is below static sparse; on IMDB, SET at 0.9
is within 1.5 test-accuracy points of dense. They are reported, not tuned for.
"""

import argparse
import dataclasses
import datetime
import fnmatch
import importlib.metadata
import json
import math
import os
import pathlib
import platform
import shlex
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# The quick profile's fixed slice, the same for every method (see the docstring).
QUICK_PTB = dict(size="small", cell="lstm", epochs=6, steps_per_epoch=700,
                 sparsities=(0.67, 0.9),
                 methods=("static", "set", "rigl", "gradual", "tfmot"))
QUICK_IMDB = dict(epochs=3, max_train_examples=None, sparsity=0.9,
                  methods=("dense", "set"))
FULL_PTB = dict(models=(("lstm", "small"), ("lstm", "medium"), ("lstm", "large"),
                        ("rhn", "medium")),
                sparsities=(0.5, 0.67, 0.8, 0.9),
                methods=("static", "set", "rigl", "snfs", "gradual", "tfmot"))
FULL_IMDB = dict(epochs=3, max_train_examples=None, sparsity=0.9,
                 methods=("dense", "static", "set", "rigl"))
PROFILES = ("quick", "full")
DYNAMIC = ("set", "rigl", "snfs")
METHOD_ORDER = ("dense", "static", "set", "rigl", "snfs", "gradual", "tfmot")
PTB_TRAIN_BATCHES = {"small": 2323, "medium": 1327, "large": 1327}  # batch 20


class UsageError(Exception):
    """A user error: printed without a traceback, exit code 2."""


@dataclasses.dataclass
class Run:
    """One point of the grid: a subprocess of an example script."""

    name: str
    kind: str  # "ptb" or "text"
    group: str  # the model the bars and plots group by, e.g. "lstm small"
    method: str
    sparsity: float
    script: str  # relative to the repository root
    argv: list

    def command(self, out_dir):
        return [sys.executable, str(ROOT / self.script), *self.argv,
                "--out-dir", str(out_dir)]


def _fmt_sparsity(s):
    return f"{s:g}"


def ptb_run(cell, size, method, sparsity, epochs=None, steps_per_epoch=None):
    slice_args = []
    if epochs is not None:
        slice_args += ["--epochs", str(epochs)]
    if steps_per_epoch is not None:
        slice_args += ["--steps-per-epoch", str(steps_per_epoch)]
    name = f"ptb_{cell}_{size}_{method}"
    if method != "dense":
        name += f"_{_fmt_sparsity(sparsity)}"
    if method == "tfmot":
        script = "examples/tfmot_baseline.py"
        argv = ["--size", size, "--sparsity", str(sparsity), *slice_args, "--no-save"]
    else:
        script = "examples/ptb_language_model.py"
        argv = ["--cell", cell, "--size", size, "--method", method,
                "--sparsity", str(sparsity), *slice_args, "--no-export"]
    return Run(name, "ptb", f"{cell} {size}", method, sparsity, script, argv)


def imdb_run(method, sparsity, epochs, max_train_examples=None):
    name = "imdb_dense" if method == "dense" else f"imdb_{method}_{_fmt_sparsity(sparsity)}"
    sparsity = 0.0 if method == "dense" else sparsity
    argv = ["--dataset", "imdb", "--method", method, "--sparsity", str(sparsity),
            "--epochs", str(epochs), "--no-save"]
    if max_train_examples is not None:
        argv += ["--max-train-examples", str(max_train_examples)]
    return Run(name, "text", "imdb", method, sparsity,
               "examples/text_classification.py", argv)


def grid(profile):
    """The runs of a profile, in the order they run."""
    runs = []
    if profile == "quick":
        q = QUICK_PTB
        runs.append(ptb_run(q["cell"], q["size"], "dense", 0.0, q["epochs"],
                            q["steps_per_epoch"]))
        for s in q["sparsities"]:
            for m in q["methods"]:
                runs.append(ptb_run(q["cell"], q["size"], m, s, q["epochs"],
                                    q["steps_per_epoch"]))
        imdb = QUICK_IMDB
    elif profile == "full":
        f = FULL_PTB
        for cell, size in f["models"]:
            runs.append(ptb_run(cell, size, "dense", 0.0))
            for s in f["sparsities"]:
                for m in f["methods"]:
                    if m == "tfmot" and cell != "lstm":
                        continue  # tfmot cannot prune an RHN
                    runs.append(ptb_run(cell, size, m, s))
        imdb = FULL_IMDB
    else:
        raise UsageError(f"--profile must be one of {PROFILES}, got {profile!r}")
    for m in imdb["methods"]:
        runs.append(imdb_run(m, imdb["sparsity"], imdb["epochs"],
                             imdb["max_train_examples"]))
    return runs


def select(runs, patterns):
    """The runs whose name matches one of `patterns` (fnmatch); all if None."""
    if not patterns:
        return runs
    unknown = [p for p in patterns if not any(fnmatch.fnmatchcase(r.name, p) for r in runs)]
    if unknown:
        raise UsageError(
            f"--only {' '.join(unknown)} matches no run of the profile; runs: "
            + ", ".join(r.name for r in runs))
    return [r for r in runs if any(fnmatch.fnmatchcase(r.name, p) for p in patterns)]


def execute(run, result_path, runs_dir, stream=sys.stdout):
    """Runs one grid point in a subprocess; writes its JSON on success."""
    out_dir = runs_dir / run.name
    out_dir.mkdir(parents=True, exist_ok=True)
    command = run.command(out_dir)
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("KERAS_BACKEND", "tensorflow")
    shared = ROOT.parent / "shared" / "data"
    if "KERAS_SPARSE_RNN_DATA" not in env and shared.is_dir():
        env["KERAS_SPARSE_RNN_DATA"] = str(shared)
    start = time.monotonic()
    with open(out_dir / "train.log", "w") as log:
        rc = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                             cwd=ROOT)
    seconds = time.monotonic() - start
    history = out_dir / "history.json"
    if rc != 0 or not history.is_file():
        print(f"  FAILED (exit code {rc}) after {seconds:.0f} s; log: "
              f"{out_dir / 'train.log'}", file=stream)
        return None
    record = json.loads(history.read_text())
    record["run"] = {
        "name": run.name, "kind": run.kind, "group": run.group,
        "method": run.method, "sparsity": run.sparsity,
        "command": shlex.join([os.path.relpath(c, ROOT) if c.startswith(str(ROOT))
                               else c for c in command[1:]]),
        "process_seconds": seconds,
        "finished": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    result_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = result_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(result_path)  # atomic: a killed run leaves no half JSON
    return record


# --------------------------------------------------------------------------
# Aggregation: tables, bars, plots (pure functions of the result JSONs)
# --------------------------------------------------------------------------


def load_results(results_dir, profile, runs):
    """`{run name: record}` for the runs whose JSON exists."""
    folder = pathlib.Path(results_dir) / f"reproduce_{profile}"
    out = {}
    for run in runs:
        path = folder / f"{run.name}.json"
        if path.is_file():
            out[run.name] = json.loads(path.read_text())
    return out


def _rows(records, runs, kind):
    """`(run, record)` of one kind, in grid order."""
    return [(r, records[r.name]) for r in runs if r.kind == kind and r.name in records]


def _find(records, runs, kind, group, method, sparsity=None):
    for run in runs:
        if (run.kind == kind and run.group == group and run.method == method
                and (sparsity is None or math.isclose(run.sparsity, sparsity))
                and run.name in records):
            return records[run.name]
    return None


def _val_ppl(record):
    return float(record["valid_perplexity"])


def check_bars(records, runs):
    """The issue's bars, from the numbers: list of dicts bar/status/detail.

    `status` is "met", "missed" or "not run" (a run it needs has no JSON).
    """
    bars = []
    groups = [g for g in dict.fromkeys(r.group for r in runs if r.kind == "ptb")]
    for group in groups:
        dense = _find(records, runs, "ptb", group, "dense")
        dynamic_methods = [m for m in DYNAMIC
                           if any(r.group == group and r.method == m for r in runs)]
        for sparsity in (0.67, 0.9):
            if not any(r.group == group and math.isclose(r.sparsity, sparsity)
                       for r in runs):
                continue
            static = _find(records, runs, "ptb", group, "static", sparsity)
            dyn = {m: _find(records, runs, "ptb", group, m, sparsity)
                   for m in dynamic_methods}
            if sparsity == 0.67:
                text = (f"PTB {group}, sparsity 0.67: the best dynamic method's "
                        "validation perplexity is within 5% of dense and below static")
                needed = [dense, static, *dyn.values()]
            else:
                text = (f"PTB {group}, sparsity 0.9: every dynamic method's "
                        "validation perplexity is below static")
                needed = [static, *dyn.values()]
            if not dyn or any(x is None for x in needed):
                bars.append(dict(bar=text, status="not run", detail="runs missing"))
                continue
            ppl = {m: _val_ppl(r) for m, r in dyn.items()}
            static_ppl = _val_ppl(static)
            if sparsity == 0.67:
                best = min(ppl, key=ppl.get)
                dense_ppl = _val_ppl(dense)
                gap = ppl[best] / dense_ppl - 1
                ok = ppl[best] <= 1.05 * dense_ppl and ppl[best] < static_ppl
                detail = (f"best dynamic {best} {ppl[best]:.2f} vs dense "
                          f"{dense_ppl:.2f} ({gap:+.1%}, limit +5.0%); static "
                          f"{static_ppl:.2f}")
            else:
                ok = all(p < static_ppl for p in ppl.values())
                detail = (", ".join(f"{m} {p:.2f}" for m, p in ppl.items())
                          + f" vs static {static_ppl:.2f}")
            bars.append(dict(bar=text, status="met" if ok else "missed", detail=detail))
    if any(r.kind == "text" for r in runs):
        text = "IMDB: SET at sparsity 0.9 within 1.5 test-accuracy points of dense"
        dense = _find(records, runs, "text", "imdb", "dense")
        set_ = _find(records, runs, "text", "imdb", "set", 0.9)
        if dense is None or set_ is None:
            bars.append(dict(bar=text, status="not run", detail="runs missing"))
        else:
            d, s = 100 * dense["test_accuracy"], 100 * set_["test_accuracy"]
            bars.append(dict(bar=text, status="met" if s >= d - 1.5 else "missed",
                             detail=f"SET {s:.2f}% vs dense {d:.2f}% "
                                    f"({s - d:+.2f} points, limit -1.50)"))
    return bars


def _int(n):
    return f"{int(n):,}"


def _slice(record):
    epochs = record.get("epochs_run", record.get("epochs"))
    steps = record.get("steps_per_epoch")
    if epochs is None or steps is None:
        return "?"
    return f"{epochs} x {steps}"


def ptb_table(records, runs):
    """Markdown table lines of the PTB runs, one table per model."""
    lines = []
    for group in dict.fromkeys(r.group for r in runs if r.kind == "ptb"):
        rows = [(r, rec) for r, rec in _rows(records, runs, "ptb") if r.group == group]
        if not rows:
            continue
        dense = _find(records, runs, "ptb", group, "dense")
        lines += [
            "", f"### Penn Treebank, {group}", "",
            "| method | sparsity | valid ppl | test ppl | valid / dense | active params "
            "| inference FLOPs/token | training FLOPs/token | wall (s) | wall / dense "
            "| epochs x steps |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for run, rec in rows:
            ratio = (f"{_val_ppl(rec) / _val_ppl(dense):.3f}" if dense else "-")
            wall_ratio = (f"{rec['wall_seconds'] / dense['wall_seconds']:.2f}"
                          if dense else "-")
            lines.append(
                f"| {run.method} | {run.sparsity:g} | {_val_ppl(rec):.2f} | "
                f"{rec['test_perplexity']:.2f} | {ratio} | {_int(rec['active_params'])} | "
                f"{_int(rec['forward_flops_per_token'])} | "
                f"{_int(rec.get('mean_training_flops_per_token', rec['training_flops_per_token']))} | "
                f"{rec['wall_seconds']:.0f} | {wall_ratio} | {_slice(rec)} |")
    return lines


def text_table(records, runs):
    rows = _rows(records, runs, "text")
    if not rows:
        return []
    dense = _find(records, runs, "text", "imdb", "dense")
    lines = [
        "", "### IMDB, embedding 128 + LSTM 128 + dense", "",
        "| method | sparsity | valid accuracy | test accuracy | test - dense (points) "
        "| active params | inference FLOPs/token | training FLOPs/token | wall (s) "
        "| epochs x steps | training examples |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run, rec in rows:
        delta = (f"{100 * (rec['test_accuracy'] - dense['test_accuracy']):+.2f}"
                 if dense else "-")
        lines.append(
            f"| {run.method} | {run.sparsity:g} | {100 * rec['valid_accuracy']:.2f}% | "
            f"{100 * rec['test_accuracy']:.2f}% | {delta} | {_int(rec['active_params'])} | "
            f"{_int(rec['forward_flops_per_token'])} | "
            f"{_int(rec.get('mean_training_flops_per_token', rec['training_flops_per_token']))} | "
            f"{rec['wall_seconds']:.0f} | {_slice(rec)} | "
            f"{_int(rec.get('num_examples', {}).get('train', 0))} |")
    return lines


def _machine():
    try:
        tf = importlib.metadata.version("tensorflow")
    except importlib.metadata.PackageNotFoundError:
        tf = "?"
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, "
            f"Python {platform.python_version()}, TensorFlow {tf}")


def profile_text(profile):
    """What every run of the profile trained on (for the table's header)."""
    if profile == "quick":
        q, i = QUICK_PTB, QUICK_IMDB
        batches = PTB_TRAIN_BATCHES[q["size"]]
        return [
            f"- Penn Treebank, every method the same: {q['epochs']} epochs, each on the "
            f"same fixed slice of the training data, the first {q['steps_per_epoch']} "
            f"of its {batches:,} batches (batch 20 x BPTT 20: "
            f"{q['steps_per_epoch'] * 400:,} tokens, "
            f"{q['steps_per_epoch'] / batches:.0%} of the training stream), "
            "Zaremba's small schedule (SGD, lr 1 per summed-over-time loss, halved "
            "each epoch after the 4th, clip 5); validation and test on the whole "
            "validation and test sets. Dynamic methods update the masks at the end "
            "of each epoch until 75% of training (drop fraction 0.3, cosine decay); "
            "gradual pruning and tfmot prune from dense on tfmot's cubic schedule "
            "(about 100 pruning steps, the last at 75% of training).",
            f"- IMDB: {i['epochs']} epochs on "
            + ("all 20,000 training reviews (seeded 80/20 split of the 25,000)"
               if i["max_train_examples"] is None else
               f"a fixed slice of {i['max_train_examples']:,} training reviews")
            + ", Adam 1e-3, batch 64, 200 tokens, vocabulary 20,000; test on all "
              "25,000 test reviews.",
        ]
    return [
        "- Penn Treebank: each size's full Zaremba schedule on the whole training "
        "set (small 13, medium 39, large 55 epochs; the RHN uses medium's); "
        "validation and test on the whole sets.",
        "- IMDB: 3 epochs on the 20,000 training reviews; test on all 25,000.",
    ]


def write_report(profile, results_dir, runs=None, records=None):
    """Writes `reproduce_<profile>.md` and the plots; returns (md path, bars)."""
    runs = grid(profile) if runs is None else runs
    results_dir = pathlib.Path(results_dir)
    if records is None:
        records = load_results(results_dir, profile, runs)
    bars = check_bars(records, runs)
    missing = [r.name for r in runs if r.name not in records]
    total = sum(rec.get("run", {}).get("process_seconds", rec["wall_seconds"])
                for rec in records.values())
    lines = [
        f"# Reproduction benchmark, profile `{profile}`", "",
        f"Produced by `python benchmarks/reproduce.py --profile {profile}` "
        f"on {_machine()}. {len(records)} of {len(runs)} runs done; their "
        f"processes took {total / 60:.1f} minutes in all.", "",
        *profile_text(profile), "",
        "Perplexity = exp(mean cross-entropy per token); `valid / dense` and "
        "`wall / dense` are ratios to the dense run of the same grid. FLOPs per "
        "token are theoretical (2 per active weight of each matrix product, the "
        "embedding lookup 0; training = 3 x forward): inference counts the final "
        "model, training is the mean over the run (gradual pruning and tfmot "
        "train denser than they end). The masked-dense kernels run at dense "
        "speed, so wall time (training with its per-epoch validation, measured "
        "on a shared machine) does not fall with sparsity. tfmot runs in tf_keras "
        "without XLA, the others in Keras 3 with XLA: their wall times are not "
        "like for like.",
    ]
    lines += ptb_table(records, runs)
    lines += text_table(records, runs)
    lines += ["", "### Bars", ""]
    for b in bars:
        lines.append(f"- **{b['status']}**: {b['bar']} ({b['detail']})")
    if missing:
        lines += ["", "Runs not done yet: " + ", ".join(missing) + "."]
    plots = write_plots(profile, results_dir, records, runs)
    if plots:
        lines += [""] + [f"![{p.stem}]({p.name})" for p in plots]
    md = results_dir / f"reproduce_{profile}.md"
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text("\n".join(lines) + "\n")
    return md, bars


def write_plots(profile, results_dir, records, runs):
    """Validation perplexity per epoch, and against sparsity; PNG paths."""
    ptb = _rows(records, runs, "ptb")
    if not ptb:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(r.group for r, _ in ptb))
    sparsities = sorted({r.sparsity for r, _ in ptb if r.method != "dense"})
    colors = {m: f"C{i}" for i, m in enumerate(METHOD_ORDER)}
    paths = []

    ncols = max(1, len(sparsities))
    fig, axes = plt.subplots(len(groups), ncols, figsize=(5 * ncols, 3.8 * len(groups)),
                             squeeze=False)
    for gi, group in enumerate(groups):
        dense = _find(records, runs, "ptb", group, "dense")
        for si in range(ncols):
            ax = axes[gi][si]
            s = sparsities[si] if sparsities else 0.0
            if dense:
                v = dense["history"].get("val_perplexity", [])
                ax.plot(range(1, len(v) + 1), v, "k--", marker="o", label="dense")
            for run, rec in ptb:
                if run.group != group or run.method == "dense" or run.sparsity != s:
                    continue
                v = rec["history"].get("val_perplexity", [])
                ax.plot(range(1, len(v) + 1), v, marker="o", color=colors[run.method],
                        label=run.method)
            ax.set_yscale("log")
            ax.set_title(f"PTB {group}, sparsity {s:g}")
            ax.set_xlabel("epoch")
            ax.set_ylabel("validation perplexity")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    path = results_dir / f"reproduce_{profile}_ppl_per_epoch.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    paths.append(path)

    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 4), squeeze=False)
    for gi, group in enumerate(groups):
        ax = axes[0][gi]
        dense = _find(records, runs, "ptb", group, "dense")
        if dense:
            ax.axhline(_val_ppl(dense), color="k", linestyle="--", label="dense")
        for method in METHOD_ORDER[1:]:
            pts = sorted((r.sparsity, _val_ppl(rec)) for r, rec in ptb
                         if r.group == group and r.method == method)
            if pts:
                ax.plot(*zip(*pts), marker="o", color=colors[method], label=method)
        ax.set_title(f"PTB {group}")
        ax.set_xlabel("sparsity")
        ax.set_ylabel("validation perplexity")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = results_dir / f"reproduce_{profile}_ppl_vs_sparsity.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    paths.append(path)
    return paths


# --------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--profile", choices=PROFILES, required=True)
    p.add_argument("--results-dir", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--runs-dir", default=None,
                   help="the runs' own folders (default: runs/reproduce_<profile>)")
    p.add_argument("--only", nargs="+", metavar="NAME",
                   help="run only these runs (names or fnmatch patterns)")
    p.add_argument("--dry-run", action="store_true",
                   help="list the grid and what is done; run nothing")
    p.add_argument("--report-only", action="store_true",
                   help="write the table, plots and bars from the JSONs; run nothing")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        runs = select(grid(args.profile), args.only)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    results_dir = pathlib.Path(args.results_dir)
    folder = results_dir / f"reproduce_{args.profile}"
    runs_dir = pathlib.Path(args.runs_dir or ROOT / "runs" / f"reproduce_{args.profile}")
    if args.dry_run:
        print(f"profile {args.profile}: {len(runs)} runs; results in {folder}")
        for run in runs:
            done = "done" if (folder / f"{run.name}.json").is_file() else "todo"
            cmd = shlex.join(["python", run.script, *run.argv])
            print(f"  [{done}] {run.name:32s} {cmd}")
        return 0
    failed = []
    if not args.report_only:
        todo = [r for r in runs if not (folder / f"{r.name}.json").is_file()]
        print(f"profile {args.profile}: {len(runs) - len(todo)} of {len(runs)} runs "
              f"done, {len(todo)} to run", flush=True)
        grid_start = time.monotonic()
        for i, run in enumerate(todo, 1):
            print(f"[{i}/{len(todo)}] {run.name} ...", flush=True)
            record = execute(run, folder / f"{run.name}.json", runs_dir)
            if record is None:
                failed.append(run.name)
                continue
            metric = (f"valid ppl {record['valid_perplexity']:.2f}, test ppl "
                      f"{record['test_perplexity']:.2f}" if run.kind == "ptb" else
                      f"valid acc {record['valid_accuracy']:.4f}, test acc "
                      f"{record['test_accuracy']:.4f}")
            print(f"  {metric}; {record['run']['process_seconds']:.0f} s "
                  f"(grid so far {(time.monotonic() - grid_start) / 60:.1f} min)",
                  flush=True)
    md, bars = write_report(args.profile, results_dir, grid(args.profile))
    print(f"wrote {md}")
    for b in bars:
        print(f"{b['status'].upper():8s} {b['bar']}: {b['detail']}")
    if failed:
        print(f"failed runs (rerun to retry): {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
