"""The PTB language model pruned with TensorFlow Model Optimization (tfmot).

The baseline the sparse-from-scratch runs of `ptb_language_model.py` are
compared with, like for like: the same LSTM model (Zaremba et al.'s sizes,
same initialization, stateful over contiguous streams), the same data
pipeline (`keras_sparse_rnn.datasets.ptb` and `batchify`: the same ids and
batches), the same learning-rate schedule, gradient clipping and fixed
training slice, and the same pruning schedule as `--method gradual` there:
tfmot's `prune_low_magnitude` with `PolynomialDecay(0 -> --sparsity, cubic,
about 100 pruning steps, the last at 75% of training)` and the
`UpdatePruningStep` callback; `strip_pruning` at the end.

tfmot 0.8 works with `tf_keras` (Keras 2) only, so this script sets
`TF_USE_LEGACY_KERAS=1` before TensorFlow is imported and must run in its own
process (`python examples/tfmot_baseline.py ...`), never imported into a
Keras 3 program. What tfmot prunes here (checked: see `PRUNED`): the
embedding table, the LSTM kernels and recurrent kernels, and the softmax
kernel, each matrix to the same sparsity (biases stay dense): the matrices
`ptb_language_model.py` makes sparse. tfmot has no pruning for GRU or RHN
cells of Keras 3, so `--cell lstm` only.

    python examples/tfmot_baseline.py --size small --sparsity 0.9 \
        --epochs 13 --out-dir runs/ptb_tfmot

Writes to `--out-dir`: `history.json` with the keys of
`ptb_language_model.py` (`history` with `val_perplexity` per epoch,
`valid_perplexity`, `test_perplexity`, `wall_seconds`, `active_params`,
FLOPs per token, ...), `summary.txt` (the pruned matrices) and the stripped
`tf_keras` model `model.keras`. Like `ptb_language_model.py`, a run backs
itself up at each epoch end (tf_keras's `BackupAndRestore`, a
`tf.train.CheckpointManager` over the model with tfmot's masks and pruning
step and the optimizer, in `<out-dir>/backup`) and the same command resumes
it after a kill (`--no-backup` turns this off); the backup is deleted once
the results are written.
"""

import os

# Before TensorFlow is imported: tf.keras must be tf_keras (Keras 2).
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import pathlib  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402

# Zaremba et al.'s LSTM sizes: `SIZES` of `ptb_language_model.py`, whose
# sparse runs this baseline is compared with (tests/examples check that the
# two tables are equal). `tiny` is for smoke tests only.
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

# The weights tfmot prunes in this model: layer name -> weight names.
PRUNED = {
    "embedding": ("embeddings",),
    "lstm": ("kernel", "recurrent_kernel"),
    "softmax": ("kernel",),
}


class UsageError(Exception):
    """A user error: printed without a traceback, exit code 2."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--cell", choices=("lstm",), default="lstm",
                   help="tfmot prunes tf_keras LSTMs; it has no RHN or GRU here")
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--sparsity", type=float, default=0.67,
                   help="final fraction of zeros of every pruned matrix, in (0, 1)")
    p.add_argument("--epochs", type=int, default=None,
                   help="default: the size's number of epochs")
    p.add_argument("--steps-per-epoch", type=int, default=None,
                   help="use only the first N batches of each training epoch")
    p.add_argument("--time-budget", type=float, default=None,
                   help="stop training after this many minutes")
    p.add_argument("--learning-rate", type=float, default=None,
                   help="Zaremba's learning rate (see ptb_language_model.py)")
    p.add_argument("--jit-compile", choices=("auto", "true", "false"), default="false",
                   help="XLA for tf_keras's train step; on a 2-core CPU it ran "
                        "far slower here (small: about 2 s/step against 0.08)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None,
                   help="TensorFlow's intra- and inter-op threads (default: all cores)")
    p.add_argument("--no-backup", action="store_true",
                   help="no per-epoch backup in <out-dir>/backup (no resume)")
    p.add_argument("--data-dir", default=None, help="folder with ptb.*.txt")
    p.add_argument("--out-dir", default="runs/ptb_tfmot")
    p.add_argument("--no-save", action="store_true", help="skip model.keras")
    p.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    args = p.parse_args(argv)
    if not 0.0 < args.sparsity < 1.0:
        raise UsageError(f"--sparsity must be in (0, 1), got {args.sparsity}")
    for name in ("epochs", "steps_per_epoch"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.learning_rate is not None and not args.learning_rate > 0:
        raise UsageError(f"--learning-rate must be > 0, got {args.learning_rate}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    if args.time_budget is not None and args.time_budget <= 0:
        raise UsageError(f"--time-budget must be > 0 minutes, got {args.time_budget}")
    if args.data_dir is not None and not os.path.isdir(args.data_dir):
        raise UsageError(f"--data-dir {args.data_dir!r} is not a folder")
    args.method = "tfmot"  # recorded in the JSON, like ptb_language_model's
    args.distribution = "uniform"
    return args


def build_model(tf_keras, args, config, vocab_size):
    """The model of `ptb_language_model.build_model`, in tf_keras, dense."""
    layers = tf_keras.layers

    def init(k):  # the seeds of ptb_language_model.build_model
        return tf_keras.initializers.RandomUniform(
            -config["init"], config["init"], seed=args.seed + 1000 * k)

    inputs = tf_keras.Input((config["bptt"],), batch_size=config["batch"],
                            dtype="int32")
    x = layers.Embedding(vocab_size, config["units"], embeddings_initializer=init(1),
                         name="embedding")(inputs)
    for i in range(config["layers"]):
        if config["dropout"]:
            x = layers.Dropout(config["dropout"], seed=args.seed + i)(x)
        x = layers.LSTM(config["units"], return_sequences=True, stateful=True,
                        unit_forget_bias=False, kernel_initializer=init(2 + 2 * i),
                        recurrent_initializer=init(3 + 2 * i), name=f"lstm_{i}")(x)
    if config["dropout"]:
        x = layers.Dropout(config["dropout"], seed=args.seed + 99)(x)
    logits = layers.Dense(vocab_size, kernel_initializer=init(99), name="softmax")(x)
    return tf_keras.Model(inputs, logits, name=f"ptb_lstm_{args.size}_tfmot")


def _pruned_weights(model):
    """`(layer name, weight name, variable)` of the matrices in `PRUNED`."""
    out = []
    for layer in model.layers:
        kind = "lstm" if layer.name.startswith("lstm_") else layer.name
        for name in PRUNED.get(kind, ()):
            holder = layer.cell if kind == "lstm" else layer
            out.append((layer.name, name, getattr(holder, name)))
    return out


def sparsity_report(model):
    """Counts and FLOPs per token of the stripped model, as `sparsity_summary`.

    2 FLOPs per nonzero weight of each matrix product per token (the
    embedding is a lookup: 0), training = 3 x forward; parameters are the
    nonzero pruned weights plus every other weight.
    """
    import numpy as np

    pruned = _pruned_weights(model)
    pruned_ids = {id(v) for _, _, v in pruned}
    matrices = []
    fwd = dense_fwd = 0
    for layer_name, name, v in pruned:
        values = v.numpy()
        active = int(np.count_nonzero(values))
        matrices.append({"layer": layer_name, "name": name, "shape": list(values.shape),
                         "size": int(values.size), "active": active,
                         "density": active / values.size})
        if name != "embeddings":
            fwd += 2 * active
            dense_fwd += 2 * int(values.size)
    other = sum(int(np.prod(v.shape)) for v in model.trainable_weights
                if id(v) not in pruned_ids)
    return {
        "matrices": matrices,
        "total_params": sum(m["active"] for m in matrices) + other,
        "dense_params": sum(m["size"] for m in matrices) + other,
        "forward_flops": fwd,
        "dense_forward_flops": dense_fwd,
        "training_flops": 3 * fwd,
        "dense_training_flops": 3 * dense_fwd,
    }


def train(args):
    import numpy as np
    import tensorflow as tf
    import tf_keras
    import tensorflow_model_optimization as tfmot

    if not tf.keras.__name__.startswith("tf_keras"):
        raise RuntimeError(
            "tf.keras is not tf_keras: run this script in its own process "
            "(TF_USE_LEGACY_KERAS=1 must be set before TensorFlow is imported)")
    # The data module imports keras_sparse_rnn and so Keras 3; Keras 3 and
    # tf_keras live side by side, tf.keras stays tf_keras (checked above).
    from keras_sparse_rnn import training
    from keras_sparse_rnn.datasets import ptb
    from keras_sparse_rnn.dst.schedules import gradual_schedule

    training.set_threads(args.threads)
    tf_keras.utils.set_random_seed(args.seed)
    config = dict(SIZES[args.size])
    epochs = args.epochs or config["epochs"]
    try:
        train_ids, valid_ids, test_ids, vocab = ptb.load_data(args.data_dir)
    except (FileNotFoundError, ValueError) as e:
        raise UsageError(str(e)) from None

    try:
        (train_ds, steps_per_epoch), (valid_ds, _), (test_ds, _) = training.lm_datasets(
            (train_ids, valid_ids, test_ids), config["batch"], config["bptt"],
            args.steps_per_epoch)
    except ValueError as e:  # a split too short for one batch
        raise UsageError(str(e)) from None

    model = build_model(tf_keras, args, config, len(vocab))
    frequency, end_step = gradual_schedule(steps_per_epoch * epochs)
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=args.sparsity, begin_step=0,
        end_step=end_step, power=3, frequency=frequency)
    prune = tfmot.sparsity.keras.prune_low_magnitude

    def wrap(layer):  # prune only the matrices of PRUNED (all of this model)
        if isinstance(layer, (tf_keras.layers.Embedding, tf_keras.layers.LSTM,
                              tf_keras.layers.Dense)):
            return prune(layer, pruning_schedule=schedule)
        return layer

    model = tf_keras.models.clone_model(model, clone_function=wrap)
    # Zaremba's learning rate for tf_keras's mean loss (as ptb_language_model.py).
    lr = training.mean_loss_learning_rate(args.learning_rate or config["lr"],
                                          config["bptt"])
    optimizer = tf_keras.optimizers.SGD(learning_rate=lr,
                                        global_clipnorm=config["clip"] / config["bptt"])
    jit = {"auto": None, "true": True, "false": False}[args.jit_compile]
    model.compile(optimizer,
                  tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit)

    def reset_states():
        for layer in model.layers:
            inner = getattr(layer, "layer", layer)  # the pruning wrapper
            if getattr(inner, "stateful", False):
                inner.reset_states()

    class ResetStates(tf_keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            reset_states()

        def on_test_begin(self, logs=None):
            reset_states()

        def on_test_end(self, logs=None):
            reset_states()

    class Schedule(tf_keras.callbacks.Callback):
        """Zaremba's decay, as `ptb_language_model.ZarembaSchedule`."""

        def on_epoch_begin(self, epoch, logs=None):
            value = lr * config["decay"] ** max(0, epoch + 1 - config["decay_after"])
            self.model.optimizer.learning_rate.assign(value)

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["learning_rate"] = float(self.model.optimizer.learning_rate.numpy())
                masks = [m for layer in self.model.layers
                         for _, m, _ in getattr(layer, "pruning_vars", ())]
                logs["pruning_sparsity"] = 1.0 - (
                    sum(float(np.sum(m.numpy())) for m in masks)
                    / sum(int(np.prod(m.shape)) for m in masks))

    callbacks = [ResetStates(), Schedule(), tfmot.sparsity.keras.UpdatePruningStep()]
    if args.time_budget:
        callbacks.append(training.time_budget(args.time_budget,
                                              tf_keras.callbacks.Callback))
    out = pathlib.Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = training.run_log(out / "epochs.json", tf_keras.callbacks.Callback)
    callbacks.append(log)
    if not args.no_backup:
        # A CheckpointManager's checkpoint index is replaced atomically: a
        # kill mid-save leaves the previous epoch's checkpoint in use.
        # Kept after `fit` until the results are written (`main`'s end).
        callbacks.append(tf_keras.callbacks.BackupAndRestore(str(out / "backup"),
                                                             delete_checkpoint=False))
    callbacks += training.kill_after_epoch_for_tests(tf_keras.callbacks.Callback)
    model.fit(train_ds, validation_data=valid_ds, epochs=epochs,
              callbacks=callbacks, verbose=args.verbose)
    reset_states()
    test_loss = model.evaluate(test_ds, verbose=0)
    reset_states()
    valid_loss = model.evaluate(valid_ds, verbose=0)
    steps = int(optimizer.iterations.numpy())
    stripped = tfmot.sparsity.keras.strip_pruning(model)
    hist = log.history()
    hist["val_perplexity"] = [math.exp(v) for v in hist.get("val_loss", [])]
    hist["perplexity"] = [math.exp(v) for v in hist.get("loss", [])]
    return stripped, dict(
        history=hist, valid_perplexity=math.exp(valid_loss),
        test_perplexity=math.exp(test_loss), wall_seconds=log.seconds(),
        train_steps=steps, epochs=epochs, steps_per_epoch=steps_per_epoch,
        epochs_run=len(hist.get("loss", [])), resumed_at_epoch=log.resumed_at)


def main(argv=None):
    try:
        args = parse_args(argv)
        model, result = train(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from keras_sparse_rnn.dst.schedules import mean_density

    out = pathlib.Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = sparsity_report(model)
    lines = [f"{m['layer']:10s} {m['name']:17s} {'x'.join(map(str, m['shape'])):>11s} "
             f"active {m['active']:>9,d}  density {m['density']:.4f}"
             for m in report["matrices"]]
    lines.append(f"parameters: {report['total_params']:,} trained of "
                 f"{report['dense_params']:,} dense; forward FLOPs/token "
                 f"{report['forward_flops']:,} (dense {report['dense_forward_flops']:,})")
    (out / "summary.txt").write_text("\n".join(lines) + "\n")
    if not args.no_save:
        model.save(out / "model.keras")
    density = mean_density(
        args.sparsity, result["epochs"] * result["steps_per_epoch"],
        result["train_steps"])
    record = {
        "args": vars(args),
        **result,
        "active_params": report["total_params"],
        "dense_params": report["dense_params"],
        "forward_flops_per_token": report["forward_flops"],
        "training_flops_per_token": report["training_flops"],
        "dense_training_flops_per_token": report["dense_training_flops"],
        "mean_training_flops_per_token": round(report["dense_training_flops"] * density),
        "pruned_matrices": report["matrices"],
    }
    (out / "history.json").write_text(json.dumps(record, indent=1))
    print("\n".join(lines))
    print(f"validation perplexity {result['valid_perplexity']:.2f}, "
          f"test perplexity {result['test_perplexity']:.2f} "
          f"({result['train_steps']} steps, {result['wall_seconds']:.0f} s)")
    # Kept until now, so that a kill after `fit` does not train again.
    shutil.rmtree(out / "backup", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
