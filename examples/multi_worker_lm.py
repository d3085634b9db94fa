"""Train the sparse PTB language model on several machines (multi-worker).

`tf.distribute.MultiWorkerMirroredStrategy` with `TF_CONFIG` from the
environment, and a custom training loop: `model.fit` fails under that strategy
in this Keras (keras-team/keras#20585), so the loop is `strategy.run` with the
optimizer's `apply_gradients` (gradients all-reduced across the workers), and
the topology updates run from it with `DynamicSparsity.attach` /
`step_end` (or `GradualPruning`). Every worker computes the very same update
(the same weights, the same seeds, the same grow batch), so the replicas stay
identical; `--dump-dir` writes each worker's masks, weights and optimizer
slots after every update, which the tests compare bit for bit.

    # machine 1 (chief) and machine 2, the same command but the task index:
    TF_CONFIG='{"cluster": {"worker": ["host1:2222", "host2:2222"]},
                "task": {"type": "worker", "index": 0}}' \\
        python examples/multi_worker_lm.py --method rigl --out-dir /shared/run
    TF_CONFIG='{... "task": {"type": "worker", "index": 1}}' \\
        python examples/multi_worker_lm.py --method rigl --out-dir /shared/run

Without `TF_CONFIG` it trains on this machine alone (the same loop).

Fault tolerance: at each epoch end every worker writes a checkpoint (model,
optimizer, topology-update state; `tf.train.Checkpoint`) to its own folder
under `--out-dir` (the chief's is `checkpoints/`), first to a temporary folder
that is renamed only when complete. If a worker dies, start the cluster again
with the same commands: every worker restores the last completed epoch and the
run ends as an uninterrupted one would.

Batches: `--batch-size` is the global batch; each of the N workers computes
`batch / N` examples a step (its shard) and the gradients are summed across
them, so the step is that of one machine with the global batch (the learning
rate needs no change). The grow batch for `--method rigl` is one fixed batch of
the training data, read by every worker in full (not sharded): workers that
saw different grow batches would grow different weights.
"""

import argparse
import json
import os
import pathlib
import shutil
import sys

# Zaremba's small LSTM and a toy size for tests; no state carried between
# batches (each batch starts from zero states), so the data can be sharded.
SIZES = {
    "tiny": dict(units=16, bptt=8, lr=0.5),
    "small": dict(units=200, bptt=20, lr=1.0),
}
METHODS = ("static", "set", "rigl", "snfs", "gradual")
GROW = {"set": ("set", "random"), "rigl": ("magnitude", "gradient"),
        "snfs": ("magnitude", "momentum")}


class UsageError(Exception):
    """A user error: printed without a traceback, exit code 2."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--method", choices=METHODS, default="set")
    p.add_argument("--sparsity", type=float, default=0.67)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--steps-per-epoch", type=int, default=None,
                   help="use the first N batches of each epoch (default: all)")
    p.add_argument("--batch-size", type=int, default=20, help="the global batch")
    p.add_argument("--vocab", type=int, default=None,
                   help="keep the N most frequent words (default: all of PTB's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="folder with ptb.*.txt")
    p.add_argument("--out-dir", default="runs/multi_worker")
    p.add_argument("--fit", action="store_true",
                   help="train with model.fit instead of the custom loop (one "
                        "worker only: fit fails under MultiWorkerMirroredStrategy)")
    p.add_argument("--dump-dir", default=None,
                   help="write this worker's arrays after every update (tests)")
    args = p.parse_args(argv)
    if not 0.0 < args.sparsity < 1.0:
        raise UsageError(f"--sparsity must be in (0, 1), got {args.sparsity}")
    if args.fit and os.environ.get("TF_CONFIG"):
        raise UsageError("--fit runs on one machine: unset TF_CONFIG (model.fit "
                         "fails under MultiWorkerMirroredStrategy, keras-team/keras#20585)")
    for name in ("epochs", "steps_per_epoch", "batch_size", "vocab"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    return args


def make_strategy():
    """MultiWorkerMirroredStrategy under TF_CONFIG, else the default one."""
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def worker_index(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    return int(resolver.task_id) if resolver is not None and resolver.task_id else 0


def load_windows(args, config):
    """`(x, y)` int32 windows of the training stream and the vocabulary size."""
    import numpy as np
    from keras_sparse_rnn.datasets import ptb

    try:
        train_ids, _, _, vocab = ptb.load_data(args.data_dir)
    except (FileNotFoundError, ValueError) as e:
        raise UsageError(str(e)) from None
    ids = np.asarray(train_ids, np.int32)
    size = len(vocab)
    if args.vocab is not None and args.vocab < size:
        ids = np.minimum(ids, args.vocab - 1)  # the rarest words share one id
        size = args.vocab
    n = (len(ids) - 1) // config["bptt"]
    x = ids[:n * config["bptt"]].reshape(n, config["bptt"])
    y = ids[1:n * config["bptt"] + 1].reshape(n, config["bptt"])
    return x, y, size


def build(args, config, vocab_size):
    import keras
    import keras_sparse_rnn as ksr

    sparse = 0.0 if args.method == "gradual" else args.sparsity
    init = lambda k: keras.initializers.RandomUniform(-0.1, 0.1, seed=args.seed + k)  # noqa: E731
    model = keras.Sequential([
        keras.Input((config["bptt"],), dtype="int32"),
        ksr.SparseEmbedding(vocab_size, config["units"], sparsity=sparse,
                            mask_seed=args.seed, embeddings_initializer=init(1),
                            name="embedding"),
        ksr.SparseLSTM(config["units"], sparsity=sparse, mask_seed=args.seed + 1,
                       kernel_initializer=init(2), recurrent_initializer=init(3),
                       return_sequences=True, name="lstm", use_cudnn=False),
        ksr.SparseDense(vocab_size, sparsity=sparse, mask_seed=args.seed + 2,
                        kernel_initializer=init(4), name="softmax"),
    ], name="multi_worker_lm")
    if args.method != "gradual":
        ksr.distribute_sparsity(model, args.sparsity, "erdos_renyi")
    return model


class EpochCheckpoint:
    """`tf.train.Checkpoint` of the model, optimizer and topology state, one
    folder per epoch, renamed into place only when complete."""

    def __init__(self, folder, **objects):
        import tensorflow as tf

        self.folder = pathlib.Path(folder)
        self.checkpoint = tf.train.Checkpoint(**objects)

    def latest(self):
        pointer = self.folder / "latest.json"
        return json.loads(pointer.read_text())["epoch"] if pointer.is_file() else 0

    def restore(self):
        epoch = self.latest()
        if epoch:
            # (`write` keeps no save counter: only that one may go unmatched.)
            self.checkpoint.restore(str(self.folder / f"epoch-{epoch}" / "ckpt")
                                    ).assert_nontrivial_match()
        for leftover in self.folder.glob("tmp-*"):  # an interrupted save
            shutil.rmtree(leftover)
        return epoch

    def save(self, epoch):
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f"tmp-epoch-{epoch}"
        if tmp.exists():
            shutil.rmtree(tmp)
        self.checkpoint.write(str(tmp / "ckpt"))
        os.replace(tmp, self.folder / f"epoch-{epoch}")
        pointer = self.folder / "latest.json.tmp"
        pointer.write_text(json.dumps({"epoch": epoch}))
        os.replace(pointer, self.folder / "latest.json")
        for old in self.folder.glob("epoch-*"):
            if old.name != f"epoch-{epoch}":
                shutil.rmtree(old)


def dump(path, model, optimizer):
    """This worker's masks, weights and optimizer variables (tests)."""
    import numpy as np

    arrays = {f"w{i}:{v.path}": np.asarray(v.numpy()) for i, v in enumerate(model.weights)}
    arrays.update({f"o{i}:{v.path}": np.asarray(v.numpy())
                   for i, v in enumerate(optimizer.variables)})
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)


def train(args):
    import keras
    import numpy as np
    import tensorflow as tf
    import keras_sparse_rnn as ksr

    strategy = make_strategy()
    workers = strategy.num_replicas_in_sync
    if args.batch_size % workers:
        raise UsageError(f"--batch-size {args.batch_size} must be a multiple of the "
                         f"{workers} workers")
    index = worker_index(strategy)
    config = SIZES[args.size]
    keras.utils.set_random_seed(args.seed)
    x, y, vocab_size = load_windows(args, config)
    steps = len(x) // args.batch_size
    if args.steps_per_epoch is not None:
        steps = min(steps, args.steps_per_epoch)
    total = steps * args.epochs
    x, y = x[:steps * args.batch_size], y[:steps * args.batch_size]
    # One fixed grow batch, the same on every worker (not sharded).
    grow_batch = (x[:args.batch_size], y[:args.batch_size])

    with strategy.scope():
        model = build(args, config, vocab_size)
        optimizer = keras.optimizers.SGD(config["lr"] * config["bptt"], momentum=0.9,
                                         global_clipnorm=5.0 / config["bptt"])
        optimizer.build(model.trainable_variables)
        callback = None
        if args.method in GROW:
            prune, grow = GROW[args.method]
            callback = ksr.DynamicSparsity(
                0.3, prune=prune, grow=grow, update_every_steps=steps,
                schedule="cosine", seed=args.seed,
                grow_data=grow_batch if args.fit and grow != "random" else None)
        elif args.method == "gradual":
            frequency, end_step = ksr.dst.schedules.gradual_schedule(total)
            callback = ksr.GradualPruning(args.sparsity, end_step=end_step,
                                          frequency=frequency)
    if args.fit:
        return fit(args, model, optimizer, callback, x, y, steps)
    if isinstance(callback, ksr.DynamicSparsity):
        callback.attach(model, optimizer, total)
    elif callback is not None:
        callback.attach(model, optimizer)
    objects = dict(model=model, optimizer=optimizer)
    if isinstance(callback, ksr.DynamicSparsity):
        objects["topology"] = callback.state
    out = pathlib.Path(args.out_dir)
    folder = out / ("checkpoints" if index == 0 else f"checkpoints_worker{index}")
    checkpoint = EpochCheckpoint(folder, **objects)
    first_epoch = checkpoint.restore()

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                         reduction=None)

    def replica_step(xb, yb):
        with tf.GradientTape() as tape:
            per_example = tf.reduce_mean(loss_fn(yb, model(xb, training=True)), axis=1)
            loss = tf.nn.compute_average_loss(per_example,
                                              global_batch_size=args.batch_size)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    @tf.function
    def train_step(iterator):
        losses = strategy.run(replica_step, args=next(iterator))
        return strategy.reduce("SUM", losses, axis=None)

    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(args.batch_size)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    dataset = dataset.with_options(options)
    loss_fn_mean = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    history = []
    updates = 0
    for epoch in range(first_epoch, args.epochs):
        iterator = iter(strategy.experimental_distribute_dataset(dataset))
        losses = []
        for _ in range(steps):
            losses.append(float(train_step(iterator)))
            if isinstance(callback, ksr.DynamicSparsity):
                grad = {"loss_fn": loss_fn_mean, "batch": grow_batch} \
                    if callback.grow != "random" else {}
                record = callback.step_end(**grad)
                done = record is not None
            elif callback is not None:
                done = callback.step_end() is not None
            else:
                done = False
            if done and args.dump_dir:
                updates += 1
                step = int(optimizer.iterations.numpy())
                dump(pathlib.Path(args.dump_dir) / f"worker{index}" / f"step{step}.npz",
                     model, optimizer)
        history.append(float(np.mean(losses)))
        checkpoint.save(epoch + 1)
        print(f"worker {index}: epoch {epoch + 1}/{args.epochs}, loss {history[-1]:.4f}",
              flush=True)
        kill = os.environ.get("KSR_TEST_KILL_AFTER_EPOCH")
        if kill and int(kill) == epoch + 1:
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
    if args.dump_dir:
        dump(pathlib.Path(args.dump_dir) / f"worker{index}" / "final.npz", model, optimizer)
    return model, index, history, first_epoch


def fit(args, model, optimizer, callback, x, y, steps):
    """The single-machine `model.fit` path of the same training (tests: on
    one worker the custom loop gives the same result)."""
    import keras
    import tensorflow as tf

    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    dumps = []

    class Dump(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            # After each topology update, as the custom loop dumps.
            if args.dump_dir and len(getattr(callback, "updates", ())) > len(dumps):
                step = int(optimizer.iterations.numpy())
                dumps.append(step)
                dump(pathlib.Path(args.dump_dir) / "worker0" / f"step{step}.npz",
                     model, optimizer)

    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(args.batch_size)
    history = model.fit(dataset, epochs=args.epochs, verbose=0, shuffle=False,
                        callbacks=[c for c in (callback, Dump()) if c is not None])
    if args.dump_dir:
        dump(pathlib.Path(args.dump_dir) / "worker0" / "final.npz", model, optimizer)
    return model, 0, [float(v) for v in history.history["loss"]], 0


def main(argv=None):
    try:
        args = parse_args(argv)
        model, index, history, first_epoch = train(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if index == 0:
        out = pathlib.Path(args.out_dir)
        (out / "history.json").write_text(json.dumps(
            {"args": vars(args), "loss": history, "resumed_at_epoch": first_epoch or None},
            indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
