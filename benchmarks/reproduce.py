"""Reproduction benchmark: sparse-from-scratch LSTMs against dense and pruning.

Runs a grid of the example scripts, each in its own process (so tfmot's
`tf_keras` never meets Keras 3, and a partly finished grid can resume), and
writes a Markdown table, PNG plots and the bars of the issue:

    python benchmarks/reproduce.py --profile quick          # ~1 h on 2 CPU cores
    python benchmarks/reproduce.py --profile quick --dry-run
    python benchmarks/reproduce.py --profile quick --only 'ptb_*_0.9'
    python benchmarks/reproduce.py --profile quick --report-only
    python benchmarks/reproduce.py --profile cpu            # ~8 h on 2 CPU cores, resumable
    python benchmarks/reproduce.py --profile gpu            # all runs at once on one GPU
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
* `cpu` (`CPU_PTB`, `CPU_TEXT`): Zaremba's small LSTM exactly as
  published, 13 epochs over the whole training set: dense (seeds 0 and 1);
  at 0.67 static, SET, RigL (seeds 0 and 1), SNFS, gradual pruning and
  tfmot; at 0.9 static, SET, RigL and gradual. IMDB (all 25,000 / 25,000)
  and SST-2 (sentence-level splits): dense, static, SET and RigL at 0.96.
  Measured here: a PTB run took 62-90 minutes with one thread, two at a
  time, and 86-90 minutes three at a time (the 13 runs: 16.7 hours of
  process time, about 8 hours of wall time), a text run 0.5-7 minutes. Each PTB run
  checkpoints every epoch, and a killed grid started again resumes its
  unfinished runs from their last completed epoch.
* `equal` (`EQUAL_PTB`, `EQUAL_TEXT`; issue 20): wide sparse models at the
  parameter count of the cpu profile's dense ones, whose runs are the
  reference rows. PTB: 2 x 416 units at the small LSTM's 4,651,600 parameters
  (sparsity 0.58; LSTM kernels in 32 x 32 blocks at density 0.46, on the
  block path), RigL (2 seeds) and SET without dropout and with dropout 0.5,
  gradual pruning of the same model once, Zaremba's small schedule. Not 650
  units: an epoch measured 3.70 times the dense small model's at 650 units and
  2.63 times at 416 (`benchmarks/width_cost.py`: about 4.4 and 3.1 hours a
  13-epoch run as the cpu grid runs them, where one run should stay near 3);
  416 is also a width whose LSTM density falls under the block path's 0.5
  for 32 x 32 blocks. Text: LSTM 512 and embedding 512 (sparse, 32 x 32 blocks on
  the LSTM) at the dense 128 / 128 classifier's count, SET and RigL, three
  seeds, IMDB and SST-2. Its runs go two at a time with one thread
  each, as the cpu grid's (`--parallel 2 --threads 1`: about 3 hours a PTB run).
* `gpu`: Zaremba's medium LSTM (2 x 650, 39 epochs, dropout 0.5) and
  Zilly et al.'s RHN (`--size zilly`: depth 10 x 830, their PTB schedule,
  dropouts and weight decay, up to 500 epochs), dense and at 0.67 static,
  SET, RigL and SNFS, every run a process of its own, all started at once
  on one GPU (memory growth). Not yet run: no GPU has been lent to it.
* `full`: the paper-sized grid for a GPU: the small, medium and large LSTMs
  and the RHN (`zilly`), each dense and at sparsity 0.5, 0.67, 0.8 and 0.9
  with static, SET, RigL, SNFS, gradual pruning and (LSTMs) tfmot, each
  size's full schedule (13 / 39 / 55 epochs; the RHN's 500) on the whole
  training set; IMDB dense and static, SET and RigL at 0.9. Days of GPU
  time: run parts with `--only`.

Outputs: one JSON per run, `<results-dir>/reproduce_<profile>/<run>.json`
(the example's `history.json` plus a `run` entry: command, time, grid
coordinates); a run whose JSON exists is skipped. Then
`<results-dir>/reproduce_<profile>.md` (tables, bars), and
`reproduce_<profile>_ppl_per_epoch.png` and `..._ppl_vs_sparsity.png`. The
runs' own folders (model files, logs) go to `--runs-dir`
(default `runs/reproduce_<profile>`).

The bars (computed from the JSONs, per PTB model; the mean where a grid
point ran with several seeds): at sparsity 0.67 the best dynamic method
(SET, RigL, SNFS) has a validation perplexity within 5% of dense and below
static sparse; at 0.9 every dynamic method's validation perplexity is below
static sparse; on IMDB (quick profile), SET at 0.9 is within 1.5
test-accuracy points of dense. They are reported, not tuned for.
"""

import argparse
import concurrent.futures
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
# The cpu profile: Zaremba's small LSTM, his whole protocol. (method, sparsity,
# seeds), in the order they run: the dense check of the pipeline first.
CPU_PTB = dict(size="small", cell="lstm", runs=(
    ("dense", 0.0, (0, 1)),
    ("static", 0.67, (0,)), ("set", 0.67, (0,)), ("rigl", 0.67, (0, 1)),
    ("snfs", 0.67, (0,)), ("gradual", 0.67, (0,)), ("tfmot", 0.67, (0,)),
    ("static", 0.9, (0,)), ("set", 0.9, (0,)), ("rigl", 0.9, (0,)),
    ("gradual", 0.9, (0,)),
    # RigL with 8 x 8 blocks of constant fan-in on the LSTM kernels (the block
    # path's structure): what the structure costs in perplexity.
    ("rigl", 0.67, (0,), 8), ("rigl", 0.9, (0,), 8)))
# The setting of the paper's predecessor: sparse embedding and LSTM, 4% kept.
CPU_TEXT = dict(datasets=("imdb", "sst2"), epochs=3, sparsity=0.96,
                methods=("dense", "static", "set", "rigl"), seeds=(0, 1, 2))
# The equal profile's PTB width: the widest whose run fits about 3 hours here
# (see the docstring), a multiple of its 32 x 32 blocks.
EQUAL_PTB_UNITS = 416
# The equal profile: wide sparse models at the dense small models' parameter
# counts. PTB: Zaremba's small schedule at width `units` (the widest whose run
# fits about 3 hours here: see the docstring), LSTM kernels in b x b blocks of
# constant fan-in on the block path, (method, seeds, dropout) per entry;
# gradual pruning once, with the dropout the wide dense model needs.
EQUAL_PTB = dict(size="small", cell="lstm", units=EQUAL_PTB_UNITS,
                 active_params=4_651_600, block=32, runs=(
                     ("rigl", (0, 1), 0.0), ("set", (0,), 0.0),
                     ("rigl", (0, 1), 0.5), ("set", (0,), 0.5),
                     ("gradual", (0,), 0.5)))
# Text: the dense classifier (embedding 128, LSTM 128; the cpu profile's dense
# runs) against LSTM width 512, embedding 512, at its parameter count: the
# dense runs' active_params (results/reproduce_cpu/<dataset>_dense.json).
EQUAL_TEXT = dict(datasets=("imdb", "sst2"), epochs=3, units=512, embedding_dim=512,
                  block=32, methods=("set", "rigl"), seeds=(0, 1, 2),
                  active_params={"imdb": 2_691_842, "sst2": 2_030_082})
# For one GPU, every run a process of its own, all at once (--parallel).
GPU_PTB = dict(models=(("lstm", "medium"), ("rhn", "zilly")), sparsity=0.67,
               methods=("dense", "static", "set", "rigl", "snfs"))
FULL_PTB = dict(models=(("lstm", "small"), ("lstm", "medium"), ("lstm", "large"),
                        ("rhn", "zilly")),
                sparsities=(0.5, 0.67, 0.8, 0.9),
                methods=("static", "set", "rigl", "snfs", "gradual", "tfmot"))
FULL_IMDB = dict(epochs=3, max_train_examples=None, sparsity=0.9,
                 methods=("dense", "static", "set", "rigl"))
PROFILES = ("quick", "cpu", "equal", "gpu", "full")
DYNAMIC = ("set", "rigl", "snfs")
METHOD_ORDER = ("dense", "static", "set", "rigl", "snfs", "gradual", "tfmot")
PTB_TRAIN_BATCHES = {"small": 2323, "medium": 1327, "large": 1327}  # batch 20
# The published dense models, by grid group: (source, validation, test
# perplexity). Zaremba et al.'s non-regularized small and regularized medium
# LSTMs; Zilly et al.'s RHN (with tied embedding and softmax, which ours are not).
PUBLISHED = {"lstm small": ("Zaremba et al. (2014)", 120.7, 114.5),
             "lstm medium": ("Zaremba et al. (2014)", 86.2, 82.7),
             "rhn zilly": ("Zilly et al. (2017), tied", 67.9, 65.4)}
# --smoke: every entry of a profile as one real, tiny run (tests the machinery).
SMOKE_PTB = dict(size="tiny", epochs=2, steps_per_epoch=3)
SMOKE_TEXT = ["--max-train-examples", "64", "--max-eval-examples", "64",
              "--sequence-length", "16"]
# The equal profile's smoke: 64 units (32 x 32 blocks) at the tiny dense LSTM
# LM's 666,640 parameters; the text model at 40,000.
SMOKE_EQUAL = dict(units=64, ptb_active_params=666_640, text_active_params=40_000)
#: Runs at once when --parallel is not given: on this project's 2-core machine
#: two runs of one thread each finished a pair of runs sooner than one run of two
#: threads after the other (`benchmarks/parallel_runs.py`, results/parallel_runs.json).
DEFAULT_PARALLEL = 2


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
    seed: int = 0
    block: int = None  # b x b blocks of constant fan-in on the recurrent kernels
    units: int = None  # a width other than the size's (the equal profile)
    dropout: float = None  # a dropout other than the size's

    @property
    def label(self):
        """The method as the report names it (width, blocks, dropout if set)."""
        parts = [self.method]
        if self.units:
            parts.append(f"{self.units} units")
        if self.block:
            parts.append(f"{self.block}x{self.block} blocks")
        if self.dropout is not None:
            parts.append(f"dropout {self.dropout:g}")
        return ", ".join(parts)

    def command(self, out_dir, threads=None):
        extra = [] if threads is None else ["--threads", str(threads)]
        return [sys.executable, str(ROOT / self.script), *self.argv, *extra,
                "--out-dir", str(out_dir)]


def _fmt_sparsity(s):
    return f"{s:g}"


def _seed_suffix(seed):
    return "" if seed == 0 else f"_seed{seed}"


def ptb_run(cell, size, method, sparsity, epochs=None, steps_per_epoch=None, seed=0,
            group=None, block=None, units=None, active_params=None, dropout=None):
    """One PTB run. `units`, `active_params`, `dropout`: the equal profile's
    wide model at a parameter count (then `sparsity` is None: the example
    computes it) with its dropout."""
    slice_args = []
    if epochs is not None:
        slice_args += ["--epochs", str(epochs)]
    if steps_per_epoch is not None:
        slice_args += ["--steps-per-epoch", str(steps_per_epoch)]
    if seed:
        slice_args += ["--seed", str(seed)]
    name = f"ptb_{cell}_{size}_{method}"
    if units is not None:
        name = f"ptb_{cell}_{units}_{method}_equal"
        slice_args += ["--units", str(units), "--active-params", str(active_params),
                       "--dropout", str(dropout)]
    elif method != "dense":
        name += f"_{_fmt_sparsity(sparsity)}"
    if dropout:
        name += f"_drop{_fmt_sparsity(dropout)}"
    if block:
        name += f"_b{block}"
        slice_args += ["--block", str(block)]
    name += _seed_suffix(seed)
    if method == "tfmot":
        script = "examples/tfmot_baseline.py"
        argv = ["--size", size, "--sparsity", str(sparsity), *slice_args, "--no-save"]
    else:
        script = "examples/ptb_language_model.py"
        sparsity_args = [] if sparsity is None else ["--sparsity", str(sparsity)]
        argv = ["--cell", cell, "--size", size, "--method", method, *sparsity_args,
                *slice_args, "--no-export"]
    return Run(name, "ptb", group or f"{cell} {size}", method, sparsity, script, argv,
               seed, block, units, dropout)


def text_run(dataset, method, sparsity, epochs, max_train_examples=None,
             valid_fraction=None, extra=(), seed=0, units=None, embedding_dim=None,
             active_params=None, block=None):
    """One text run. `units`, `embedding_dim`, `active_params`, `block`: the
    equal profile's wide model at a parameter count (`sparsity` None)."""
    if units is not None:
        name = f"{dataset}_{units}_{method}_equal"
    elif method == "dense":
        name = f"{dataset}_dense"
    else:
        name = f"{dataset}_{method}_{_fmt_sparsity(sparsity)}"
    if block:
        name += f"_b{block}"
    name += _seed_suffix(seed)
    sparsity = 0.0 if method == "dense" else sparsity
    argv = ["--dataset", dataset, "--method", method]
    argv += (["--active-params", str(active_params)] if sparsity is None
             else ["--sparsity", str(sparsity)])
    argv += ["--epochs", str(epochs), "--no-save"]
    if seed:
        argv += ["--seed", str(seed)]
    if units is not None:
        argv += ["--units", str(units), "--embedding-dim", str(embedding_dim)]
    if block:
        argv += ["--block", str(block), "--jit-compile", "true"]
    if max_train_examples is not None:
        argv += ["--max-train-examples", str(max_train_examples)]
    if valid_fraction is not None:
        argv += ["--valid-fraction", str(valid_fraction)]
    argv += list(extra)
    return Run(name, "text", dataset, method, sparsity,
               "examples/text_classification.py", argv, seed, block, units)


def grid(profile, smoke=False):
    """The runs of a profile, in the order they run.

    `smoke`: each entry as a tiny real run (the `tiny` LSTM or RHN, 2 epochs of
    3 batches; 64 reviews or sentences), to test a profile's machinery.
    """
    def ptb(cell, size, method, sparsity, epochs=None, steps=None, seed=0, block=None,
            **wide):
        if smoke:
            if wide:  # the tiny model's own parameter count, 2 units wider
                wide = dict(wide, units=SMOKE_EQUAL["units"],
                            active_params=SMOKE_EQUAL["ptb_active_params"])
            return ptb_run(cell, SMOKE_PTB["size"], method, sparsity,
                           SMOKE_PTB["epochs"], SMOKE_PTB["steps_per_epoch"], seed,
                           group=f"{cell} {size}", block=block, **wide)
        return ptb_run(cell, size, method, sparsity, epochs, steps, seed, block=block,
                       **wide)

    def text(dataset, method, sparsity, epochs, max_train=None, valid_fraction=None,
             seed=0, **wide):
        if smoke:
            if wide:
                wide = dict(wide, units=SMOKE_EQUAL["units"],
                            embedding_dim=SMOKE_EQUAL["units"],
                            active_params=SMOKE_EQUAL["text_active_params"])
            return text_run(dataset, method, sparsity, 1, None, valid_fraction,
                            SMOKE_TEXT, seed, **wide)
        return text_run(dataset, method, sparsity, epochs, max_train, valid_fraction,
                        seed=seed, **wide)

    runs = []
    if profile == "quick":
        q = QUICK_PTB
        runs.append(ptb(q["cell"], q["size"], "dense", 0.0, q["epochs"],
                        q["steps_per_epoch"]))
        for s in q["sparsities"]:
            for m in q["methods"]:
                runs.append(ptb(q["cell"], q["size"], m, s, q["epochs"],
                                q["steps_per_epoch"]))
        imdb = QUICK_IMDB
        for m in imdb["methods"]:
            runs.append(text("imdb", m, imdb["sparsity"], imdb["epochs"],
                             imdb["max_train_examples"]))
    elif profile == "cpu":
        c = CPU_PTB
        for method, sparsity, seeds, *block in c["runs"]:
            for seed in seeds:
                runs.append(ptb(c["cell"], c["size"], method, sparsity, seed=seed,
                                block=block[0] if block else None))
        t = CPU_TEXT
        for dataset in t["datasets"]:
            for m in t["methods"]:
                for seed in t["seeds"]:
                    # IMDB on its own 25,000 / 25,000 split: no reviews held out.
                    runs.append(text(dataset, m, t["sparsity"], t["epochs"],
                                     valid_fraction=0.0 if dataset == "imdb" else None,
                                     seed=seed))
    elif profile == "equal":
        t = EQUAL_TEXT
        # The cheap runs first: SST-2, then IMDB; PTB's long runs last.
        for dataset in sorted(t["datasets"], key=lambda d: d != "sst2"):
            for m in t["methods"]:
                for seed in t["seeds"]:
                    runs.append(text(
                        dataset, m, None, t["epochs"],
                        valid_fraction=0.0 if dataset == "imdb" else None, seed=seed,
                        units=t["units"], embedding_dim=t["embedding_dim"],
                        active_params=t["active_params"][dataset], block=t["block"]))
        e = EQUAL_PTB
        for method, seeds, dropout in e["runs"]:
            for seed in seeds:
                runs.append(ptb(e["cell"], e["size"], method, None, seed=seed,
                                block=e["block"] if method != "gradual" else None,
                                units=e["units"], active_params=e["active_params"],
                                dropout=dropout))
    elif profile == "gpu":
        g = GPU_PTB
        for cell, size in g["models"]:
            for m in g["methods"]:
                runs.append(ptb(cell, size, m, 0.0 if m == "dense" else g["sparsity"]))
    elif profile == "full":
        f = FULL_PTB
        for cell, size in f["models"]:
            runs.append(ptb(cell, size, "dense", 0.0))
            for s in f["sparsities"]:
                for m in f["methods"]:
                    if m == "tfmot" and cell != "lstm":
                        continue  # tfmot cannot prune an RHN
                    runs.append(ptb(cell, size, m, s))
        imdb = FULL_IMDB
        for m in imdb["methods"]:
            runs.append(text("imdb", m, imdb["sparsity"], imdb["epochs"],
                             imdb["max_train_examples"]))
    else:
        raise UsageError(f"--profile must be one of {PROFILES}, got {profile!r}")
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


def _git_commit():
    """`(commit, dirty)` of the repository, or `(None, None)` outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, text=True,
                                capture_output=True, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=ROOT, text=True, capture_output=True,
                                check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None, None
    return commit, bool(status.strip())


def _library_version():
    try:
        return importlib.metadata.version("keras-sparse-rnn")
    except importlib.metadata.PackageNotFoundError:
        return None


def execute(run, result_path, runs_dir, stream=sys.stdout, threads=None, parallel=1):
    """Runs one grid point in a subprocess; writes its JSON on success.

    The run's folder is kept between attempts: a PTB run killed before it
    finished resumes there from its last completed epoch (the examples'
    per-epoch backup). `threads`: TensorFlow threads of the run (`--threads`).
    """
    out_dir = runs_dir / run.name
    out_dir.mkdir(parents=True, exist_ok=True)
    command = run.command(out_dir, threads)
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("KERAS_BACKEND", "tensorflow")
    # Runs that share one GPU: each takes memory as it needs it.
    env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    shared = ROOT.parent / "shared" / "data"
    if "KERAS_SPARSE_RNN_DATA" not in env and shared.is_dir():
        env["KERAS_SPARSE_RNN_DATA"] = str(shared)
    commit, dirty = _git_commit()  # the code the run starts with
    start = time.monotonic()
    with open(out_dir / "train.log", "a") as log:
        log.write(f"\n# {datetime.datetime.now().isoformat(timespec='seconds')}: "
                  f"{shlex.join(command)}\n")
        log.flush()
        rc = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                             cwd=ROOT)
    seconds = time.monotonic() - start
    history = out_dir / "history.json"
    if rc != 0 or not history.is_file():
        print(f"  {run.name} FAILED (exit code {rc}) after {seconds:.0f} s; log: "
              f"{out_dir / 'train.log'}", file=stream, flush=True)
        return None
    record = json.loads(history.read_text())
    record["run"] = {
        "name": run.name, "kind": run.kind, "group": run.group,
        "method": run.method, "sparsity": run.sparsity, "seed": run.seed,
        "command": shlex.join([os.path.relpath(c, ROOT) if c.startswith(str(ROOT))
                               else c for c in command[1:]]),
        # This attempt's process; a resumed run's wall_seconds adds up its epochs.
        "process_seconds": seconds,
        "resumed_at_epoch": record.get("resumed_at_epoch"),
        "finished": datetime.datetime.now().isoformat(timespec="seconds"),
        "git_commit": commit, "git_dirty": dirty,
        "library_version": _library_version(),
        "machine_cores": os.cpu_count(), "threads": threads, "parallel_runs": parallel,
        "machine": _machine(),
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
    """`{run name: record}` for the runs whose JSON exists (`profile`: the
    results folder's name, e.g. "cpu" or "cpu_smoke")."""
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


def _seeds(records, runs, kind, group, method, sparsity=None, block=None):
    """The records of every seed of one grid point, in grid order (the
    profile's own width and dropout: runs at another are other points)."""
    return [records[run.name] for run in runs
            if run.kind == kind and run.group == group and run.method == method
            and run.block == block and run.units is None and run.dropout is None
            and (sparsity is None or (run.sparsity is not None
                                      and math.isclose(run.sparsity, sparsity)))
            and run.name in records]


def _find(records, runs, kind, group, method, sparsity=None):
    """The first seed's record of one grid point, or None."""
    found = _seeds(records, runs, kind, group, method, sparsity)
    return found[0] if found else None


def _val_ppl(seeds):
    """The validation perplexity of a grid point: the mean over its seeds."""
    return _mean(seeds, "valid_perplexity")


def check_bars(records, runs):
    """The issue's bars, from the numbers: list of dicts bar/status/detail.

    `status` is "met", "missed" or "not run" (a run it needs has no JSON).
    """
    bars = []
    groups = [g for g in dict.fromkeys(r.group for r in runs if r.kind == "ptb")]
    for group in groups:
        dense = _seeds(records, runs, "ptb", group, "dense")
        for sparsity in (0.67, 0.9):
            # The dynamic methods the grid runs at this sparsity (the cpu
            # profile has no SNFS at 0.9).
            dynamic_methods = [m for m in DYNAMIC if any(
                r.group == group and r.method == m and r.sparsity is not None
                and r.units is None and math.isclose(r.sparsity, sparsity)
                for r in runs)]
            if not dynamic_methods:
                continue
            static = _seeds(records, runs, "ptb", group, "static", sparsity)
            dyn = {m: _seeds(records, runs, "ptb", group, m, sparsity)
                   for m in dynamic_methods}
            if sparsity == 0.67:
                text = (f"PTB {group}, sparsity 0.67: the best dynamic method's "
                        "validation perplexity is within 5% of dense and below static")
                needed = [dense, static, *dyn.values()]
            else:
                text = (f"PTB {group}, sparsity 0.9: every dynamic method's "
                        "validation perplexity is below static")
                needed = [static, *dyn.values()]
            if not all(needed):
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
    if any(r.name == "imdb_set_0.9" for r in runs):  # the quick profile's bar
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


def _log_ticks(low, high, most=8):
    """Round tick values for a log axis from `low` to `high`: at most `most`,
    spread evenly in log space (matplotlib labels none between 100 and 200)."""
    steps = (1, 1.2, 1.4, 1.6, 1.8, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 8, 9)
    ticks = [k * 10 ** e for e in range(math.floor(math.log10(low)),
                                        math.ceil(math.log10(high)) + 1)
             for k in steps if low <= k * 10 ** e <= high]
    if not ticks:  # a range between two round values: its ends
        return [float(f"{low:.3g}"), float(f"{high:.3g}")]
    if len(ticks) <= most:
        return ticks
    targets = [low * (high / low) ** ((i + 0.5) / most) for i in range(most)]
    return sorted({min(ticks, key=lambda t: abs(math.log(t / x))) for x in targets})


def _int(n):
    return f"{int(n):,}"


def _slice(record):
    epochs = record.get("epochs_run", record.get("epochs"))
    steps = record.get("steps_per_epoch")
    if epochs is None or steps is None:
        return "?"
    return f"{epochs} x {steps}"


def _seed_groups(records, runs, kind):
    """`[(first run, [records of its seeds])]`: one row per grid point, its
    seeds merged, in grid order."""
    groups = {}
    for run, rec in _rows(records, runs, kind):
        key = (run.group, run.method, run.sparsity, run.block, run.units, run.dropout)
        groups.setdefault(key, (run, []))[1].append(rec)
    return list(groups.values())


def _mean_spread(values, fmt="{:.2f}"):
    """"m" for one value, "m ± h" for several (h: half their range)."""
    mean = sum(values) / len(values)
    if len(values) == 1:
        return fmt.format(mean)
    half = (max(values) - min(values)) / 2
    return f"{fmt.format(mean)} ± {fmt.format(half)}"


def _mean(records, key):
    return sum(float(r[key]) for r in records) / len(records)


def ptb_table(records, runs, at_dense_time=False):
    """Markdown table lines of the PTB runs, one table per model; a grid point
    that ran with several seeds is one row: mean ± half the range.
    `at_dense_time`: a column of the validation perplexity each run had by the
    dense runs' training time (`_valid_by_minutes`)."""
    lines = []
    for group in dict.fromkeys(r.group for r in runs if r.kind == "ptb"):
        rows = [(r, recs) for r, recs in _seed_groups(records, runs, "ptb")
                if r.group == group]
        if not rows:
            continue
        dense = [rec for r, rec in _rows(records, runs, "ptb")
                 if r.group == group and r.method == "dense"]
        dense_valid = _mean(dense, "valid_perplexity") if dense else None
        dense_wall = _mean(dense, "wall_seconds") if dense else None
        # The longest dense run's training time: by then every dense run ended.
        budget = (max(_minutes_per_epoch(rec)[-1] for rec in dense)
                  if at_dense_time and dense else None)
        extra = "" if budget is None else f" | valid ppl by {budget:.0f} min"
        empty_cells = 7 if budget is None else 8  # after `valid / dense`
        lines += [
            "", f"### Penn Treebank, {group}", "",
            "| method | sparsity | seeds | valid ppl | test ppl | valid / dense"
            f"{extra} | active params | inference FLOPs/token | training FLOPs/token "
            "| wall per run (s) | threads x runs at once | wall / dense "
            "| epochs x steps |",
            "|---|---:|---:|---:|---:|---:" + "|---:" * empty_cells + "|",
        ]
        if group in PUBLISHED:
            source, v, t = PUBLISHED[group]
            ratio = f"{v / dense_valid:.3f}" if dense_valid else "-"
            lines.append(f"| {source}, dense | 0 | - | {v:.1f} | {t:.1f} | {ratio} "
                         + "| " * empty_cells + "|")
        for run, recs in rows:
            valid = [float(r["valid_perplexity"]) for r in recs]
            ratio = (f"{sum(valid) / len(valid) / dense_valid:.3f}" if dense else "-")
            wall = _mean(recs, "wall_seconds")
            wall_ratio = f"{wall / dense_wall:.2f}" if dense else "-"
            rec = recs[0]
            lines.append(
                f"| {run.label} | {_sparsity_of(run, rec):.3g} | {len(recs)} | "
                f"{_mean_spread(valid)} | "
                f"{_mean_spread([float(r['test_perplexity']) for r in recs])} | "
                f"{ratio} | "
                + ("" if budget is None else f"{_valid_by_minutes(recs, budget)} | ")
                + f"{_int(rec['active_params'])} | "
                f"{_int(rec['forward_flops_per_token'])} | "
                f"{_int(rec.get('mean_training_flops_per_token', rec['training_flops_per_token']))} | "
                f"{wall:.0f} | {_threads_and_runs(recs)} | {wall_ratio} | {_slice(rec)} |")
    return lines


def _threads_and_runs(records):
    """"t x p": the TensorFlow threads of each run and the runs at once on
    the machine (each distinct setup of the seeds, "-" where not recorded)."""
    setups = dict.fromkeys((r.get("run", {}).get("threads"),
                            r.get("run", {}).get("parallel_runs")) for r in records)
    return ", ".join("-" if t is None else f"{t} x {p}" for t, p in setups)


def _valid_by_minutes(records, minutes):
    """The validation perplexity of the last epoch each run (seed) had ended
    by `minutes` of training, mean ± half the range; "-" when a seed had
    ended none by then."""
    values = []
    for rec in records:
        ended = [e for e, m in enumerate(_minutes_per_epoch(rec)) if m <= minutes + 1e-9]
        if not ended:
            return "-"
        values.append(float(rec["history"]["val_perplexity"][ended[-1]]))
    return _mean_spread(values)


def _sparsity_of(run, record):
    """The run's sparsity: the grid's, or the one the example computed from
    `--active-params` (the equal profile)."""
    return run.sparsity if run.sparsity is not None else float(record["args"]["sparsity"])


def _mean_std(values, fmt="{:.2f}"):
    """"m" for one value, "m ± s" for several (s: sample standard deviation)."""
    mean = sum(values) / len(values)
    if len(values) == 1:
        return fmt.format(mean)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{fmt.format(mean)} ± {fmt.format(std)}"


def text_table(records, runs):
    """Markdown table lines of the text runs, one table per dataset; a grid
    point run with several seeds is one row: mean ± sample standard deviation
    (accuracies in percent)."""
    lines = []
    for dataset in dict.fromkeys(r.group for r in runs if r.kind == "text"):
        rows = [(r, recs) for r, recs in _seed_groups(records, runs, "text")
                if r.group == dataset]
        if not rows:
            continue
        dense = _seeds(records, runs, "text", dataset, "dense")
        dense_test = _mean(dense, "test_accuracy") if dense else None
        lines += [
            "", f"### {DATASET_TITLES.get(dataset, dataset)}, embedding 128 + LSTM 128 "
            "+ dense unless the method says its width", "",
            "| method | sparsity | seeds | valid accuracy | test accuracy "
            "| test - dense (points) | active params | inference FLOPs/token "
            "| training FLOPs/token | wall per run (s) | threads x runs at once "
            "| epochs x steps | training examples |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for run, recs in rows:
            test = [100 * float(r["test_accuracy"]) for r in recs]
            valid = [100 * float(r["valid_accuracy"]) for r in recs
                     if r.get("valid_accuracy") is not None]
            # + 0.0: a difference of zero prints "+0.00", never "-0.00"
            delta = (f"{round(sum(test) / len(test) - 100 * dense_test, 2) + 0.0:+.2f}"
                     if dense_test is not None else "-")
            rec = recs[0]
            lines.append(
                f"| {run.label} | {_sparsity_of(run, rec):.3g} | {len(recs)} | "
                f"{_mean_std(valid) + '%' if valid else '-'} | {_mean_std(test)}% | "
                f"{delta} | {_int(rec['active_params'])} | "
                f"{_int(rec['forward_flops_per_token'])} | "
                f"{_int(rec.get('mean_training_flops_per_token', rec['training_flops_per_token']))} | "
                f"{_mean(recs, 'wall_seconds'):.0f} | {_threads_and_runs(recs)} | "
                f"{_slice(rec)} | "
                f"{_int(rec.get('num_examples', {}).get('train', 0))} |")
    return lines


DATASET_TITLES = {"imdb": "IMDB", "sst2": "SST-2"}


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
    if profile == "cpu":
        return [
            "- Penn Treebank, Zaremba et al.'s small LSTM exactly as published: 2 x 200 "
            "units, BPTT 20, batch 20, 13 epochs over the whole training set (2,323 "
            "batches an epoch), uniform init 0.1, SGD at lr 1 for the loss summed over "
            "the BPTT steps (20 for Keras' mean loss) halved each epoch after the 4th, "
            "gradient-norm clip 5 (0.25 for the mean loss), no dropout, states carried "
            "across batches and reset each epoch; the whole validation set each epoch, "
            "the test set once at the end. Sparse matrices: the embedding, the LSTM "
            "kernels and the softmax. Static, SET, RigL and SNFS train sparse from "
            "the start, Erdos-Renyi over these matrices; the dynamic ones update the "
            "masks at the end of each epoch until 75% of training (drop fraction 0.3, "
            "cosine decay: the quick profile's schedule; RigL's and SNFS's gradient "
            "on the first training batch). SGD without momentum keeps no first "
            "moment, so SNFS's grow signal is the callback's moving average (decay "
            "0.9) of that gradient over the updates, restarted at grown positions: "
            "at the first update it ranks as RigL's. Gradual pruning and tfmot prune "
            "from dense on tfmot's cubic schedule, each matrix to the same sparsity "
            "(uniform; the same active count in total). Where a grid point ran with "
            "two seeds the table gives mean ± half the range.",
            f"- Text classification at sparsity {CPU_TEXT['sparsity']:g} (sparse "
            "embedding, LSTM and classifier; Erdos-Renyi): IMDB trained on all 25,000 "
            "training reviews and tested on all 25,000 test reviews (no validation "
            "split); SST-2 on its sentence-level train / dev / test splits. "
            f"{CPU_TEXT['epochs']} epochs, Adam 1e-3, batch 64, vocabulary 20,000.",
        ]
    if profile == "equal":
        e, t = EQUAL_PTB, EQUAL_TEXT
        return [
            f"- Penn Treebank at the dense small LSTM's {e['active_params']:,} parameters "
            f"(biases counted): 2 x {e['units']} units, the embedding, LSTM kernels and "
            "softmax sparse (Erdos-Renyi; the sparsity is solved from the count), the "
            f"LSTM kernels in {e['block']}x{e['block']} blocks of constant fan-in, "
            "computed from the active blocks where the automatic choice takes them "
            "(the summary's compute column); Zaremba's small schedule (13 epochs, SGD lr 1 halved after "
            "epoch 4, clip 5), uniform init 0.1 x sqrt(200 / units), without dropout "
            "and with dropout 0.5 on the non-recurrent connections "
            "(`ksr.PhiloxDropout`: Keras's Dropout doubles the XLA step on the CPU, "
            "`benchmarks/dropout_cost.py`). Gradual pruning "
            "trains the same wide model dense first and prunes it to the same count "
            "(uniform, unstructured, dropout 0.5); its training FLOPs are the mean "
            "over the run. Where a run has two seeds the table gives mean ± half "
            "the range.",
            f"- Text classification at the dense classifier's parameter count: LSTM "
            f"{t['units']}, embedding {t['embedding_dim']}, both sparse (and the "
            "classifier), Erdos-Renyi, the LSTM kernels in "
            f"{t['block']}x{t['block']} blocks (the automatic compute path) with XLA; "
            f"{t['epochs']} epochs, Adam 1e-3, batch 64, vocabulary 20,000; mean ± "
            "sample standard deviation over 3 seeds.",
        ]
    if profile == "gpu":
        return [
            "- Penn Treebank, Zaremba's medium LSTM (2 x 650, 39 epochs, dropout 0.5) "
            "and Zilly et al.'s RHN (depth 10 x 830, their PTB schedule: lr 0.2 for "
            "the summed loss divided by 1.02 each epoch after the 20th, up to 500 "
            "epochs, clip 10, weight decay 1e-7, variational dropout 0.25 on words, "
            "0.75 on the input, 0.25 on the state, 0.75 on the output; not as theirs: "
            "embedding and softmax not tied, a word's repeats in a sequence dropped "
            "independently), dense and at sparsity 0.67 with static, SET, RigL and "
            "SNFS; every run a process of its own, all at once on one GPU (memory "
            "growth on).",
        ]
    return [
        "- Penn Treebank: each LSTM size's full Zaremba schedule on the whole "
        "training set (small 13, medium 39, large 55 epochs) and Zilly et al.'s "
        "for the RHN (up to 500 epochs); "
        "validation and test on the whole sets.",
        "- IMDB: 3 epochs on the 20,000 training reviews; test on all 25,000.",
    ]


def write_report(profile, results_dir, runs=None, records=None, name=None):
    """Writes `reproduce_<name>.md` and the plots; returns (md path, bars).

    `name`: the results' name, the profile's unless given (`<profile>_smoke`).
    """
    runs = grid(profile) if runs is None else runs
    name = name or profile
    results_dir = pathlib.Path(results_dir)
    if records is None:
        records = load_results(results_dir, name, runs)
    if profile == "equal":  # the dense models it is measured against
        smoke = "_smoke" if name.endswith("_smoke") else ""
        references = [r for r in grid("cpu", bool(smoke)) if r.method == "dense"]
        records = {**load_results(results_dir, "cpu" + smoke, references), **records}
        runs = references + list(runs)
    bars = check_bars(records, runs)
    missing = [r.name for r in runs if r.name not in records]
    # The epochs' time of every run, across its resumes (`process_seconds` is
    # only the last attempt's process).
    total = sum(rec["wall_seconds"] for rec in records.values())
    lines = [
        f"# Reproduction benchmark, profile `{name}`", "",
        f"Produced by `python benchmarks/reproduce.py --profile {profile}"
        f"{' --smoke' if name.endswith('_smoke') else ''}` "
        f"on {_machine()}. {len(records)} of {len(runs)} runs done; their "
        f"training took {total / 60:.1f} minutes in all (their epochs, "
        f"across resumes).", "",
        *profile_text(profile), "",
        "Perplexity = exp(mean cross-entropy per token); `valid / dense` and "
        "`wall / dense` are ratios to the dense run of the same grid. FLOPs per "
        "token are theoretical (2 per active weight of each matrix product, the "
        "embedding lookup 0; training = 3 x forward): inference counts the final "
        "model, training is the mean over the run (gradual pruning and tfmot "
        "train denser than they end). The masked-dense kernels run at dense "
        "speed, so there wall time (training with its per-epoch validation, "
        "measured on a shared machine) does not fall with sparsity; matrices "
        "in b x b blocks of constant fan-in that the automatic choice computes "
        "from their active blocks run at their sparse cost (README, \"Sparse "
        "in cost\"). tfmot runs in tf_keras "
        "without XLA, the others in Keras 3 with XLA: their wall times are not "
        "like for like.",
    ]
    if profile == "equal":
        lines += ["", "The dense rows are the cpu profile's runs (`reproduce_cpu/`): "
                  "the models whose parameter count the wide sparse ones match. "
                  "`valid ppl by N min`: the validation perplexity of the last "
                  "epoch each run had ended within N minutes of training, the "
                  "longest dense run's time: which model is better on the dense "
                  "model's time budget (\"-\": no epoch ended by then)."]
    lines += ptb_table(records, runs, at_dense_time=profile == "equal")
    lines += text_table(records, runs)
    if bars:
        lines += ["", "### Bars", ""]
    for b in bars:
        lines.append(f"- **{b['status']}**: {b['bar']} ({b['detail']})")
    if missing:
        lines += ["", "Runs not done yet: " + ", ".join(missing) + "."]
    plots = (write_time_plot(name, results_dir, records, runs) if profile == "equal"
             else write_plots(name, results_dir, records, runs))
    if plots:
        lines += [""] + [f"![{p.stem}]({p.name})" for p in plots]
    md = results_dir / f"reproduce_{name}.md"
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text("\n".join(lines) + "\n")
    return md, bars


def _mean_curve(seeds, key):
    """The per-epoch mean of `history[key]` over the seeds (as long as the
    shortest)."""
    curves = [rec["history"].get(key, []) for rec in seeds]
    n = min(len(c) for c in curves)
    return [sum(float(c[e]) for c in curves) / len(curves) for e in range(n)]


def _seeds_label(method, seeds):
    return method if len(seeds) == 1 else f"{method} (mean of {len(seeds)} seeds)"


def write_plots(profile, results_dir, records, runs):
    """Validation perplexity per epoch, and against sparsity; PNG paths."""
    ptb = _rows(records, runs, "ptb")
    if not ptb:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    groups = list(dict.fromkeys(r.group for r, _ in ptb))
    sparsities = sorted({r.sparsity for r, _ in ptb if r.method != "dense"})
    colors = {m: f"C{i}" for i, m in enumerate(METHOD_ORDER)}
    paths = []

    ncols = max(1, len(sparsities))
    fig, axes = plt.subplots(len(groups), ncols, figsize=(5 * ncols, 3.8 * len(groups)),
                             squeeze=False)
    for gi, group in enumerate(groups):
        dense = _seeds(records, runs, "ptb", group, "dense")
        for si in range(ncols):
            ax = axes[gi][si]
            s = sparsities[si] if sparsities else 0.0
            if dense:
                v = _mean_curve(dense, "val_perplexity")
                ax.plot(range(1, len(v) + 1), v, "k--", marker="o",
                        label=_seeds_label("dense", dense))
            for method in METHOD_ORDER[1:]:
                seeds = _seeds(records, runs, "ptb", group, method, s) if s else []
                if not seeds:
                    continue
                v = _mean_curve(seeds, "val_perplexity")
                ax.plot(range(1, len(v) + 1), v, marker="o", color=colors[method],
                        label=_seeds_label(method, seeds))
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(matplotlib.ticker.FixedLocator(
                _log_ticks(*ax.get_ylim())))
            ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.0f"))
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
        dense = [rec for r, rec in ptb if r.group == group and r.method == "dense"]
        if dense:
            ax.axhline(_mean(dense, "test_perplexity"), color="k", linestyle="--",
                       label="dense (ours)")
        if group in PUBLISHED:
            source = PUBLISHED[group][0]
            ax.axhline(PUBLISHED[group][2], color="grey", linestyle=":",
                       label=f"dense, {source.split(' (')[0]}")
        for method in METHOD_ORDER[1:]:
            by_sparsity = {}
            for r, rec in ptb:
                if r.group == group and r.method == method and r.block is None:
                    by_sparsity.setdefault(r.sparsity, []).append(
                        float(rec["test_perplexity"]))
            pts = sorted((k, sum(v) / len(v)) for k, v in by_sparsity.items())
            if pts:
                ax.plot(*zip(*pts), marker="o", color=colors[method], label=method)
        ax.set_title(f"PTB {group}")
        ax.set_xlabel("sparsity")
        ax.set_ylabel("test perplexity (mean over seeds)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = results_dir / f"reproduce_{profile}_ppl_vs_sparsity.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    paths.append(path)
    return paths


def _minutes_per_epoch(record):
    """Cumulative training minutes at each epoch's end: the run's own
    `epoch_seconds`, or (runs recorded before it existed) its wall time
    spread evenly over its epochs."""
    seconds = record.get("epoch_seconds")
    if not seconds:
        n = len(record["history"]["val_perplexity"])
        seconds = [record["wall_seconds"] * (e + 1) / n for e in range(n)]
    return [s / 60 for s in seconds]


def write_time_plot(profile, results_dir, records, runs):
    """Validation perplexity against training minutes, every PTB run and the
    dense reference: which model is better at any time budget. PNG paths."""
    ptb = _rows(records, runs, "ptb")
    if not ptb:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    styles = {}
    for run, rec in ptb:
        minutes = _minutes_per_epoch(rec)
        ppl = rec["history"]["val_perplexity"][:len(minutes)]
        color = styles.setdefault(run.label, f"C{len(styles) % 10}")
        ax.plot(minutes[:len(ppl)], ppl, marker="o", markersize=3, color=color,
                linestyle="--" if run.method == "dense" else "-",
                label=run.label if run.seed == 0 else None)
    # Linear, and stopping at 1.6 x the lowest perplexity: the first epochs (up
    # to twice the final values) would squeeze the region where the runs compete.
    lowest = min(min(rec["history"]["val_perplexity"]) for _, rec in ptb)
    ax.set_ylim(top=1.6 * lowest)
    ax.set_xlabel("training minutes (each run: its threads and runs at once, as recorded)")
    ax.set_ylabel("validation perplexity (the first epochs are above the top)")
    ax.set_title("PTB at the dense small LSTM's parameter count")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = results_dir / f"reproduce_{profile}_ppl_vs_minutes.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]


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
    p.add_argument("--parallel", type=int, default=None,
                   help=f"runs at once, each with its share of the CPU cores as "
                        f"TensorFlow threads (default: {DEFAULT_PARALLEL}; the gpu "
                        "profile: all its runs)")
    p.add_argument("--threads", type=int, default=None,
                   help="TensorFlow threads per run (default: cores / --parallel)")
    p.add_argument("--smoke", action="store_true",
                   help="every entry as a tiny real run (results in "
                        "reproduce_<profile>_smoke): tests the profile's machinery")
    p.add_argument("--dry-run", action="store_true",
                   help="list the grid and what is done; run nothing")
    p.add_argument("--report-only", action="store_true",
                   help="write the table, plots and bars from the JSONs; run nothing")
    args = p.parse_args(argv)
    for name in ("parallel", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name} must be >= 1, got {value}")
    return args


def _metric(run, record):
    if run.kind == "ptb":
        return (f"valid ppl {record['valid_perplexity']:.2f}, test ppl "
                f"{record['test_perplexity']:.2f}")
    valid = record.get("valid_accuracy")
    return ((f"valid acc {valid:.4f}, " if valid is not None else "")
            + f"test acc {record['test_accuracy']:.4f}")


def run_grid(runs, folder, runs_dir, parallel, threads):
    """Runs `runs` (those without a JSON in `folder`), `parallel` at a time;
    returns the names of the failed ones."""
    todo = [r for r in runs if not (folder / f"{r.name}.json").is_file()]
    print(f"{len(runs) - len(todo)} of {len(runs)} runs done, {len(todo)} to run, "
          f"{parallel} at a time with {threads} thread{'s' if threads > 1 else ''} each",
          flush=True)
    grid_start = time.monotonic()
    failed = []

    def one(item):
        i, run = item
        print(f"[{i}/{len(todo)}] {run.name} ...", flush=True)
        record = execute(run, folder / f"{run.name}.json", runs_dir, threads=threads,
                         parallel=parallel)
        if record is None:
            failed.append(run.name)
            return
        print(f"  {run.name}: {_metric(run, record)}; "
              f"{record['run']['process_seconds']:.0f} s "
              f"(grid so far {(time.monotonic() - grid_start) / 60:.1f} min)",
              flush=True)

    with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(one, enumerate(todo, 1)))
    return failed


def main(argv=None):
    try:
        args = parse_args(argv)
        runs = select(grid(args.profile, args.smoke), args.only)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    name = f"{args.profile}_smoke" if args.smoke else args.profile
    results_dir = pathlib.Path(args.results_dir)
    folder = results_dir / f"reproduce_{name}"
    runs_dir = pathlib.Path(args.runs_dir or ROOT / "runs" / f"reproduce_{name}")
    if args.dry_run:
        print(f"profile {name}: {len(runs)} runs; results in {folder}")
        for run in runs:
            done = "done" if (folder / f"{run.name}.json").is_file() else "todo"
            cmd = shlex.join(["python", run.script, *run.argv])
            print(f"  [{done}] {run.name:32s} {cmd}")
        return 0
    failed = []
    if not args.report_only:
        parallel = args.parallel or (len(runs) if args.profile == "gpu"
                                     else DEFAULT_PARALLEL)
        threads = args.threads or max(1, (os.cpu_count() or 1) // parallel)
        print(f"profile {name}: ", end="")
        failed = run_grid(runs, folder, runs_dir, parallel, threads)
    md, bars = write_report(args.profile, results_dir, grid(args.profile, args.smoke),
                            name=name)
    print(f"wrote {md}")
    for b in bars:
        print(f"{b['status'].upper():8s} {b['bar']}: {b['detail']}")
    if failed:
        print(f"failed runs (rerun to retry): {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
