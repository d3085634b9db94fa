"""Train a sparse recurrent language model on the Penn Treebank and export it.

Zaremba et al. (2014)'s word-level setting: SGD with gradient-norm clipping,
a learning rate that decays each epoch after a few, states carried across
batches (stateful RNN over contiguous streams), perplexity = exp(loss).
Sparse from scratch: the embedding, the recurrent layers and the softmax are
sparse layers; `--method` picks how their connectivity evolves.

    python examples/ptb_language_model.py --size small --sparsity 0.67 \
        --method set --epochs 13 --out-dir runs/ptb_set

`--cell rhn` trains Zilly et al. (2017)'s PTB RHN instead (`--size zilly`,
see `RHN_SIZES`), `--cell gru` a GRU of the LSTM's sizes.

Writes to `--out-dir`: `model.keras`, `history.json` (per-epoch losses,
perplexities and topology-update logs), `summary.txt` and `summary.json`
(the sparsity report), and `model.tflite` unless `--no-export`.

A run survives interruption: at each epoch end the model, the optimizer and
the topology-update state go to `<out-dir>/backup` (written atomically) with
the epoch logs so far (`keras_sparse_rnn.training`'s `epoch_backup` and
`run_log`, the run helpers the examples share); the same command started
again after a kill resumes from the last completed epoch and ends as an
uninterrupted run would (`--no-backup` turns this off). The backup is
deleted once the results are written: a kill after the training resumes
with no epoch left to run, and goes on to evaluate and write them.
Data: `--data-dir`, else `$KERAS_SPARSE_RNN_DATA/ptb`, else the Keras cache
(downloaded with a sha256 check when online); or `--corpus DIR`, any corpus
in PTB's format (e.g. `$KERAS_SPARSE_RNN_DATA/wikitext-2`: train, valid and
test token files, one sentence a line, vocabulary built from train).
"""

import argparse
import dataclasses
import json
import math
import os
import pathlib
import shutil
import sys

# Zaremba's settings. `tiny` is for smoke tests only.
SIZES = {
    "tiny": dict(units=32, layers=2, bptt=10, batch=20, dropout=0.0, init=0.1,
                 lr=1.0, decay=0.5, decay_after=4, epochs=1, clip=5.0),
    "small": dict(units=200, layers=2, bptt=20, batch=20, dropout=0.0, init=0.1,
                  lr=1.0, decay=0.5, decay_after=4, epochs=13, clip=5.0),
    "medium": dict(units=650, layers=2, bptt=35, batch=20, dropout=0.5, init=0.05,
                   lr=1.0, decay=1 / 1.2, decay_after=6, epochs=39, clip=5.0),
    "large": dict(units=1500, layers=2, bptt=35, batch=20, dropout=0.65, init=0.04,
                  lr=1.0, decay=1 / 1.15, decay_after=14, epochs=55, clip=10.0),
}
# The RHN's sizes: `zilly` is Zilly et al. (2017)'s PTB setting (their
# `ptb_sota`): one layer of depth 10 and 830 units, transform-gate bias -2,
# uniform init 0.04, BPTT 35, SGD lr 0.2 for the summed loss divided by 1.02
# each epoch after the 20th, up to 500 epochs, clip 10, L2 weight decay 1e-7,
# and variational dropout (one mask per sequence) on the embedded words (whole
# words), the input, the state and the output. `tiny` has the same dropouts
# and weight decay on a small model (smoke tests). Not as Zilly: the embedding
# and the softmax are not tied (each sparse with its own mask), and a word's
# repeats in a sequence get draws of their own.
ZILLY_REGULARIZATION = dict(dropout=0.0, word_dropout=0.25, input_dropout=0.75,
                            state_dropout=0.25, output_dropout=0.75, weight_decay=1e-7)
RHN_SIZES = {
    "tiny": dict(units=32, depth=2, layers=1, bptt=10, batch=20, init=0.1,
                 lr=1.0, decay=0.5, decay_after=4, epochs=1, clip=5.0,
                 **ZILLY_REGULARIZATION),
    "zilly": dict(units=830, depth=10, layers=1, bptt=35, batch=20, init=0.04,
                  lr=0.2, decay=1 / 1.02, decay_after=20, epochs=500, clip=10.0,
                  **ZILLY_REGULARIZATION),
}
METHODS = ("dense", "static", "set", "rigl", "snfs", "gradual")
CELLS = ("lstm", "rhn", "gru")


class UsageError(Exception):
    """A user error: printed without a traceback, exit code 2."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--cell", choices=CELLS, default="lstm")
    p.add_argument("--size", choices=sorted({*SIZES, *RHN_SIZES}), default=None,
                   help="small, medium or large (Zaremba's LSTMs; GRU too) or zilly "
                        "(the RHN); tiny for smoke tests (default: small, for "
                        "the RHN zilly)")
    p.add_argument("--sparsity", type=float, default=None,
                   help="global fraction of zeros of the sparse matrices, in [0, 1) "
                        "(default: 0.67)")
    p.add_argument("--active-params", type=int, default=None,
                   help="instead of --sparsity: the sparsity at which the model "
                        "trains this many parameters (biases counted), e.g. a wide "
                        "sparse model at the dense small model's 4,651,600")
    p.add_argument("--units", type=int, default=None,
                   help="the recurrent layers' width instead of the size's; the "
                        "uniform init range is scaled by sqrt(size's units / units) "
                        "(Zaremba's 0.1 at 200 gives 0.055 at 650, his medium's 0.05)")
    p.add_argument("--dropout", type=float, default=None,
                   help="dropout on the non-recurrent connections instead of the "
                        "size's (Zaremba's regularization: 0.5 for his medium LSTM)")
    p.add_argument("--distribution", choices=("erdos_renyi", "uniform"),
                   default=None,
                   help="how the sparsity is spread over the matrices; default "
                        "erdos_renyi (gradual pruning prunes each to the same "
                        "sparsity, as tfmot: uniform only)")
    p.add_argument("--method", choices=METHODS, default="set")
    p.add_argument("--block", type=int, default=None,
                   help="square blocks of B x B weights with constant fan-in on the "
                        "recurrent layers' kernels (units and inputs multiples of B)")
    p.add_argument("--compute-path", choices=("auto", "masked_dense", "blocks"),
                   default="auto",
                   help="how the recurrent layers compute their products: from the "
                        "active blocks ('blocks', needs --block), masked-dense, or "
                        "'auto' (the layers' measured rule)")
    p.add_argument("--optimizer", choices=("sgd", "sntasgd"), default="sgd")
    p.add_argument("--drop-fraction", type=float, default=0.3,
                   help="initial fraction of active weights replaced per update")
    p.add_argument("--epochs", type=int, default=None,
                   help="default: the size's number of epochs")
    p.add_argument("--steps-per-epoch", type=int, default=None,
                   help="use only the first N batches of each training epoch "
                        "(a fixed slice of the data, for short runs)")
    p.add_argument("--time-budget", type=float, default=None,
                   help="stop training after this many minutes (the same command "
                        "started again resumes with a fresh budget)")
    p.add_argument("--learning-rate", type=float, default=None,
                   help="the learning rate for the loss summed over the BPTT "
                        "steps, as Zaremba's and Zilly's (default: the size's); "
                        "the Keras optimizer gets it times the BPTT length, as "
                        "its loss is the mean")
    p.add_argument("--jit-compile", choices=("auto", "true", "false"), default="true",
                   help="XLA for the train step ('auto' is False on a CPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None,
                   help="TensorFlow's intra- and inter-op threads (default: all cores)")
    p.add_argument("--no-backup", action="store_true",
                   help="no per-epoch backup in <out-dir>/backup (no resume)")
    p.add_argument("--data-dir", default=None, help="folder with ptb.*.txt")
    p.add_argument("--corpus", default=None,
                   help="train on another corpus in PTB's format instead: a folder "
                        "with train/valid/test token files (e.g. wikitext-2)")
    p.add_argument("--out-dir", default="runs/ptb")
    p.add_argument("--no-export", action="store_true", help="skip the .tflite export")
    p.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    args = p.parse_args(argv)
    sizes = sizes_of(args.cell)
    if args.size is None:
        args.size = "zilly" if args.cell == "rhn" else "small"
    elif args.size not in sizes:
        raise UsageError(f"--cell {args.cell} has the sizes {', '.join(sorted(sizes))}, "
                         f"got --size {args.size}")
    if args.active_params is not None:
        if args.sparsity is not None:
            raise UsageError("give --sparsity or --active-params, not both")
        if args.method == "dense":
            raise UsageError("--active-params sets a sparse model's sparsity: "
                             "not with --method dense")
        if args.active_params < 1:
            raise UsageError(f"--active-params must be >= 1, got {args.active_params}")
    elif args.sparsity is None:
        args.sparsity = 0.67
    if args.sparsity is not None and not 0.0 <= args.sparsity < 1.0:
        raise UsageError(f"--sparsity must be in [0, 1), got {args.sparsity}")
    if args.units is not None and args.units < 1:
        raise UsageError(f"--units must be >= 1, got {args.units}")
    if args.dropout is not None and not 0.0 <= args.dropout < 1.0:
        raise UsageError(f"--dropout must be in [0, 1), got {args.dropout}")
    if args.method == "dense" and args.sparsity != 0.0:
        args.sparsity = 0.0  # dense means no zeros; say so in the outputs
    if args.method != "dense" and args.sparsity == 0.0:
        raise UsageError(f"--method {args.method} needs --sparsity > 0")
    resolve_distribution(args)
    if not 0.0 < args.drop_fraction < 1.0:
        raise UsageError(f"--drop-fraction must be in (0, 1), got {args.drop_fraction}")
    for name in ("epochs", "steps_per_epoch"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    if args.block is not None and args.block < 2:
        raise UsageError(f"--block must be an int >= 2 (B x B blocks), got {args.block}")
    if args.compute_path == "blocks" and args.block is None:
        raise UsageError("--compute-path blocks computes from B x B blocks: give --block")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    if args.learning_rate is not None and not args.learning_rate > 0:
        raise UsageError(f"--learning-rate must be > 0, got {args.learning_rate}")
    if args.time_budget is not None and args.time_budget <= 0:
        raise UsageError(f"--time-budget must be > 0 minutes, got {args.time_budget}")
    for flag, folder in (("--data-dir", args.data_dir), ("--corpus", args.corpus)):
        if folder is not None and not os.path.isdir(folder):
            raise UsageError(f"{flag} {folder!r} is not a folder")
    if args.data_dir is not None and args.corpus is not None:
        raise UsageError("give --data-dir (PTB) or --corpus, not both")
    return args


def resolve_distribution(args):
    """Sets `args.distribution` to the one that runs, as the outputs record it:
    none for dense, uniform for gradual pruning (it prunes each matrix to the
    same sparsity, as tfmot), Erdos-Renyi by default for the sparse methods."""
    if args.method == "gradual":
        if args.distribution == "erdos_renyi":
            raise UsageError("--method gradual prunes each matrix to the same "
                             "sparsity: give --distribution uniform or leave it out")
        args.distribution = "uniform"
    elif args.method == "dense":
        args.distribution = None
    elif args.distribution is None:
        args.distribution = "erdos_renyi"


def build_model(args, config, vocab_size):
    import keras
    import keras_sparse_rnn as ksr

    # Gradual pruning starts dense; the others start at the target sparsity
    # (the per-matrix value is re-set by distribute_sparsity; with
    # --active-params the sparsity comes from the built model, below).
    if args.method == "gradual":
        sparse = 0.0
    else:
        sparse = 0.5 if args.sparsity is None else args.sparsity

    def init(k, per_call=False):
        # One initializer (one seed) per weight: a Keras initializer seeded
        # with an int draws the same values at every call, which would make
        # every weight of the same shape (both LSTM kernels, each kernel and
        # its recurrent kernel) start equal. `per_call`: new values at each
        # call, for a layer that draws several weights from one initializer
        # (the RHN's recurrent kernel of each micro-layer).
        seed = args.seed + 1000 * k
        return keras.initializers.RandomUniform(
            -config["init"], config["init"],
            seed=keras.random.SeedGenerator(seed) if per_call else seed)

    def sequence_dropout(key, noise_shape, seed):
        # One draw per sequence (and feature) for all its time steps, or one
        # per token for all its features: Gal's variational dropout.
        return ksr.PhiloxDropout(config[key], noise_shape=noise_shape,
                                    seed=args.seed + seed, name=key)

    inputs = keras.Input((config["bptt"],), batch_size=config["batch"], dtype="int32")
    x = ksr.SparseEmbedding(vocab_size, config["units"], sparsity=sparse,
                            embeddings_initializer=init(1), mask_seed=args.seed,
                            name="embedding")(inputs)
    if config.get("word_dropout"):
        x = sequence_dropout("word_dropout", (None, None, 1), 97)(x)
    for i in range(config["layers"]):
        if config["dropout"]:
            # Not keras.layers.Dropout: under XLA on the CPU it doubles the
            # training step (see PhiloxDropout).
            x = ksr.PhiloxDropout(config["dropout"], seed=args.seed + i)(x)
        blocks = {} if args.block is None else dict(block=(args.block, args.block))
        common = dict(sparsity=sparse, mask_seed=args.seed + 1 + i,
                      compute_path=args.compute_path, **blocks,
                      kernel_initializer=init(2 + 2 * i),
                      recurrent_initializer=init(3 + 2 * i, per_call=args.cell == "rhn"),
                      return_sequences=True, stateful=True, name=f"{args.cell}_{i}")
        if args.cell == "lstm":
            layer = ksr.SparseLSTM(config["units"], unit_forget_bias=False, **common)
        elif args.cell == "gru":
            layer = ksr.SparseGRU(config["units"], **common)
        else:
            layer = ksr.SparseRHN(config["units"], depth=config["depth"],
                                  dropout=config.get("input_dropout", 0.0),
                                  recurrent_dropout=config.get("state_dropout", 0.0),
                                  seed=args.seed + 98, **common)
        x = layer(x)
    if config["dropout"]:
        x = ksr.PhiloxDropout(config["dropout"], seed=args.seed + 99)(x)
    if config.get("output_dropout"):
        x = sequence_dropout("output_dropout", (None, 1, config["units"]), 96)(x)
    logits = ksr.SparseDense(vocab_size, sparsity=sparse, kernel_initializer=init(99),
                             mask_seed=args.seed + 50, name="softmax")(x)
    model = keras.Model(inputs, logits, name=f"ptb_{args.cell}_{args.size}")
    if args.active_params is not None:
        args.sparsity = ksr.sparsity_for_active_params(model, args.active_params)
    if args.method not in ("dense", "gradual"):
        ksr.distribute_sparsity(model, args.sparsity, args.distribution)
    return model


def sizes_of(cell):
    """The sizes a cell has: the RHN its own, the LSTM and GRU Zaremba's."""
    return RHN_SIZES if cell == "rhn" else SIZES


def size_config(args):
    """The settings of `args.size` for `args.cell` (a copy), with `--units`
    (the init range scaled by sqrt(size's units / units)) and `--dropout`."""
    config = dict(sizes_of(args.cell)[args.size])
    if getattr(args, "units", None) is not None and args.units != config["units"]:
        config["init"] *= math.sqrt(config["units"] / args.units)
        config["units"] = args.units
    if getattr(args, "dropout", None) is not None:
        config["dropout"] = args.dropout
    return config


def keras_learning_rate(args, config):
    """Zaremba's learning rate for Keras' mean loss: the summed loss's
    (`--learning-rate`, else the size's) times the BPTT length (see
    `keras_sparse_rnn.training.mean_loss_learning_rate`)."""
    from keras_sparse_rnn.training import mean_loss_learning_rate

    return mean_loss_learning_rate(args.learning_rate or config["lr"], config["bptt"])


def make_optimizer(args, config):
    """SGD (or SNT-ASGD) with the size's learning rate, clipping and weight
    decay, each converted for Keras' mean loss (see `keras_learning_rate`).

    The L2 term `weight_decay * sum(w ** 2) / 2` added to the summed loss
    moves each weight by `lr * weight_decay * w`; Keras' decoupled
    `weight_decay` moves it by `lr * bptt * keras_decay * w`, so the same
    step is `keras_decay = weight_decay / bptt` (Keras clips the gradient
    alone, the summed loss's clipping includes the L2 term: negligible at
    1e-7). A weight outside the mask stays zero under it.
    """
    import keras
    import keras_sparse_rnn as ksr

    kwargs = dict(learning_rate=keras_learning_rate(args, config),
                  global_clipnorm=config["clip"] / config["bptt"])
    if config.get("weight_decay"):
        kwargs["weight_decay"] = config["weight_decay"] / config["bptt"]
    if args.optimizer == "sntasgd":
        return ksr.optimizers.SNTASGD(nonmono=5, **kwargs)
    return keras.optimizers.SGD(**kwargs)


class ZarembaSchedule:
    """lr_e = lr * decay ** max(0, e - decay_after): as a Keras callback."""

    def __new__(cls, lr, decay, decay_after):
        import keras

        class _Schedule(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                value = lr * decay ** max(0, epoch + 1 - decay_after)
                self.model.optimizer.learning_rate.assign(value)

            def on_epoch_end(self, epoch, logs=None):
                if logs is not None:
                    logs["learning_rate"] = float(
                        self.model.optimizer.learning_rate.numpy())

        return _Schedule()


def make_callbacks(args, config, steps_per_epoch, epochs, grow_data):
    import keras
    import keras_sparse_rnn as ksr
    from keras_sparse_rnn import training

    class ResetStates(keras.callbacks.Callback):
        """Each epoch and each evaluation starts from zero states."""

        def _reset(self):
            for layer in self.model.layers:
                if getattr(layer, "stateful", False):
                    layer.reset_state()

        def on_epoch_begin(self, epoch, logs=None):
            self._reset()

        def on_test_begin(self, logs=None):
            self._reset()

        def on_test_end(self, logs=None):
            self._reset()

    callbacks = [ResetStates(), ZarembaSchedule(
        keras_learning_rate(args, config), config["decay"], config["decay_after"])]
    if args.method in ("set", "rigl", "snfs"):
        prune, grow = {"set": ("set", "random"), "rigl": ("magnitude", "gradient"),
                       "snfs": ("magnitude", "momentum")}[args.method]
        from keras_sparse_rnn.dst import DynamicSparsity

        callbacks.append(DynamicSparsity(
            drop_fraction=args.drop_fraction, schedule="cosine", prune=prune,
            grow=grow, update_every_epochs=1, stop=0.75 if epochs > 1 else None,
            grow_data=grow_data if grow != "random" else None, seed=args.seed,
            verbose=1 if args.verbose else 0))
    elif args.method == "gradual":
        frequency, end_step = ksr.dst.schedules.gradual_schedule(steps_per_epoch * epochs)
        callbacks.append(ksr.GradualPruning(
            final_sparsity=args.sparsity, initial_sparsity=0.0, begin_step=0,
            end_step=end_step, frequency=frequency))
    if args.optimizer == "sntasgd":
        callbacks.append(ksr.optimizers.SNTASGDTrigger(monitor="val_loss"))
    if args.time_budget:
        callbacks.append(training.time_budget(args.time_budget))
    return callbacks


@dataclasses.dataclass
class RunResult:
    history: dict
    valid_perplexity: float
    test_perplexity: float
    wall_seconds: float
    train_steps: int
    epochs: int
    steps_per_epoch: int
    resumed_at_epoch: object = None  # the epoch a resumed run began with
    epoch_seconds: list = None  # training seconds of the run at each epoch's end


def train(args):
    import keras
    from keras_sparse_rnn import training
    from keras_sparse_rnn.datasets import load_corpus, ptb

    training.set_threads(args.threads)
    keras.utils.set_random_seed(args.seed)
    config = size_config(args)
    epochs = args.epochs or config["epochs"]
    try:
        if args.corpus is not None:
            corpus = load_corpus(args.corpus)
            train_ids, valid_ids, test_ids, vocab = (
                corpus.train, corpus.valid, corpus.test, corpus.vocab)
        else:
            train_ids, valid_ids, test_ids, vocab = ptb.load_data(args.data_dir)
    except (FileNotFoundError, ValueError) as e:  # missing, empty or malformed
        raise UsageError(str(e)) from None

    try:
        (train_ds, steps_per_epoch), (valid_ds, _), (test_ds, _) = training.lm_datasets(
            (train_ids, valid_ids, test_ids), config["batch"], config["bptt"],
            args.steps_per_epoch)
    except ValueError as e:  # a split too short for one batch
        raise UsageError(str(e)) from None
    try:
        model = build_model(args, config, len(vocab))
    except ValueError as e:  # e.g. a sparsity that leaves a matrix empty
        raise UsageError(str(e)) from None
    optimizer = make_optimizer(args, config)
    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    model.compile(optimizer,
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit)
    grow_data = next(iter(train_ds))
    callbacks = make_callbacks(args, config, steps_per_epoch, epochs, grow_data)
    out = pathlib.Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = training.run_log(out / "epochs.json")
    callbacks.append(log)
    if not args.no_backup:
        # Kept after `fit` until the results are written (`main`'s end): a
        # kill during the evaluation resumes with no epoch left to train.
        callbacks.append(training.epoch_backup(out / "backup", delete_checkpoint=False))
    callbacks += training.kill_after_epoch_for_tests()
    # shuffle=False: the batches are consecutive text (stateless BPTT windows
    # in order); fit's default shuffle=True would only warn that it ignores a
    # tf.data.Dataset, on every call.
    model.fit(train_ds, validation_data=valid_ds, epochs=epochs,
              callbacks=callbacks, verbose=args.verbose, shuffle=False)
    # SNTASGD writes its averages into the model at the end of `fit`.
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()
    test_loss = model.evaluate(test_ds, verbose=0)
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()
    valid_loss = model.evaluate(valid_ds, verbose=0)
    hist = log.history()
    hist["val_perplexity"] = [math.exp(v) for v in hist.get("val_loss", [])]
    hist["perplexity"] = [math.exp(v) for v in hist.get("loss", [])]
    steps = int(optimizer.iterations.numpy())
    return model, vocab, RunResult(hist, math.exp(valid_loss), math.exp(test_loss),
                                   log.seconds(), steps, epochs, steps_per_epoch,
                                   log.resumed_at, [e["seconds"] for e in log.entries])


def main(argv=None):
    try:
        args = parse_args(argv)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        model, vocab, result = train(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    code = write_results(args, model, vocab, result)
    shutil.rmtree(pathlib.Path(args.out_dir) / "backup", ignore_errors=True)
    return code


def write_results(args, model, vocab, result):
    """The model, `history.json`, the summaries and the export; the exit code."""
    import keras_sparse_rnn as ksr

    out = pathlib.Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = ksr.sparsity_summary(model)
    (out / "summary.txt").write_text(str(summary) + "\n")
    (out / "summary.json").write_text(json.dumps(dataclasses.asdict(summary), indent=1))
    model.save(out / "model.keras")
    record = {
        "args": vars(args),
        "config": size_config(args),  # the size's settings as run (--units, --dropout)
        "history": result.history,
        "valid_perplexity": result.valid_perplexity,
        "test_perplexity": result.test_perplexity,
        "wall_seconds": result.wall_seconds,
        "train_steps": result.train_steps,
        "active_params": summary.total_params,
        "dense_params": summary.dense_params,
        "forward_flops_per_token": summary.forward_flops,
        "training_flops_per_token": summary.training_flops,
        "dense_training_flops_per_token": summary.dense_training_flops,
        # Gradual pruning trains denser than it ends: its mean over the run.
        "mean_training_flops_per_token": (
            round(summary.dense_training_flops * ksr.dst.schedules.mean_density(
                args.sparsity, result.epochs * result.steps_per_epoch,
                result.train_steps))
            if args.method == "gradual" else summary.training_flops),
        "epochs": result.epochs,
        # Fewer than planned when --time-budget stopped the training.
        "epochs_run": len(result.history.get("loss", [])),
        "steps_per_epoch": result.steps_per_epoch,
        "resumed_at_epoch": result.resumed_at_epoch,
        "epoch_seconds": result.epoch_seconds,
    }
    print(f"validation perplexity {result.valid_perplexity:.2f}, "
          f"test perplexity {result.test_perplexity:.2f} "
          f"({result.train_steps} steps, {result.wall_seconds:.0f} s)")
    (out / "history.json").write_text(json.dumps(record, indent=1))
    if not args.no_export:
        from keras_sparse_rnn.export import ExportError, export_tflite

        # The trained model is stateful with a static batch of 20: export the
        # one-time-step model (batch 1, the LSTM states as inputs and outputs),
        # which is how a language model runs on a device; the sequence length
        # is only that of the verification sequences.
        try:
            report = export_tflite(model, out / "model.tflite", streaming=True,
                                   batch_size=1, sequence_length=size_config(args)["bptt"])
        except ExportError as e:
            print(f"error: the TFLite export failed: {e}", file=sys.stderr)
            record["tflite"] = {"error": str(e)}
            (out / "history.json").write_text(json.dumps(record, indent=1))
            return 1
        print(report)
        record["tflite"] = {
            "path": str(report.path), "size_bytes": int(report.size_bytes),
            "dense_size_bytes": report.dense_size_bytes,
            "ops": sorted(report.ops), "streaming": bool(report.streaming),
            "max_abs_error": (None if report.max_abs_error is None
                              else float(report.max_abs_error)),
            "notes": [str(n) for n in report.notes]}
        (out / "history.json").write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
