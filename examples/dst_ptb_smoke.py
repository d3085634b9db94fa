"""Short PTB evidence run for DynamicSparsity: dense vs static vs SET vs RigL.

Zaremba et al.'s "small" word-level setting, shortened: two 200-unit LSTM
layers, batch 20, BPTT 20, SGD lr 1 with global-norm clip 5, uniform init
0.1, no dropout, states carried across batches (stateful, reset each epoch
and before validation), XLA train step. The two LSTM layers' kernels and
recurrent kernels are sparse at 0.8 (uniform, random initial masks), the
embedding and softmax are dense (the same in all four runs):

* dense: `keras.layers.LSTM`;
* static: `SparseLSTM`, masks never updated (the static sparse baseline);
* set: `DynamicSparsity(prune="set", grow="random")`;
* rigl: `DynamicSparsity(prune="magnitude", grow="gradient")`, gradient on
  the first training batch.

DST settings: drop fraction 0.3 with RigL's cosine decay, an update every
`--update-every` steps, stopping at 75% of training (RigL's end step).
By default each epoch is the first `--train-batches` batches of the
training stream (the same fixed slice every epoch; 0 = the whole 2,324
batches), and validation uses the whole validation set; validation
perplexity = exp(mean validation loss) after each epoch.

    python examples/dst_ptb_smoke.py                   # all four, 3 epochs
    python examples/dst_ptb_smoke.py --methods static,set --epochs 1

Writes `--out` (JSON, default runs/dst_ptb_smoke/results.json) and prints a
table.
"""

import argparse
import json
import math
import os
import pathlib
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The data: $KERAS_SPARSE_RNN_DATA, else ../shared/data next to the repository.
_SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
if "KERAS_SPARSE_RNN_DATA" not in os.environ and _SHARED.is_dir():
    os.environ["KERAS_SPARSE_RNN_DATA"] = str(_SHARED)

METHODS = ("dense", "static", "set", "rigl")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train-batches", type=int, default=800,
                   help="batches per epoch, from the start of the stream; 0 = all")
    p.add_argument("--units", type=int, default=200)
    p.add_argument("--sparsity", type=float, default=0.8)
    p.add_argument("--drop-fraction", type=float, default=0.3)
    p.add_argument("--update-every", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default="runs/dst_ptb_smoke/results.json")
    args = p.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        p.error(f"--methods must be a comma-separated subset of {METHODS}, got "
                f"{args.methods!r}")
    args.methods = methods
    return args


BATCH, BPTT = 20, 20


class ResetStates:
    """Builds the callback lazily (keras is imported in main)."""

    @staticmethod
    def make():
        import keras

        class _Reset(keras.callbacks.Callback):
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

        return _Reset()


def build(method, vocab, args):
    import keras
    import keras_sparse_rnn as ksr

    keras.backend.clear_session()
    keras.utils.set_random_seed(args.seed)
    init = keras.initializers.RandomUniform(-0.1, 0.1, seed=args.seed)
    layers = [keras.Input((BPTT,), batch_size=BATCH, dtype="int32"),
              keras.layers.Embedding(vocab, args.units,
                                     embeddings_initializer=init, name="embedding")]
    for i in range(2):
        common = dict(return_sequences=True, stateful=True,
                      kernel_initializer=init, recurrent_initializer=init,
                      name=f"lstm{i}")
        if method == "dense":
            layers.append(keras.layers.LSTM(args.units, **common))
        else:
            layers.append(ksr.SparseLSTM(args.units, sparsity=args.sparsity,
                                         mask_seed=args.seed + i, **common))
    layers.append(keras.layers.Dense(vocab, kernel_initializer=init,
                                     name="softmax"))
    return keras.Sequential(layers, name=f"ptb_{method}")


def run(method, args, data):
    import keras
    from keras_sparse_rnn.dst import DynamicSparsity

    train_ds, valid_ds, steps, vocab = data
    model = build(method, vocab, args)
    model.compile(keras.optimizers.SGD(1.0, global_clipnorm=5.0),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=True)
    callbacks = [ResetStates.make()]
    dst = None
    if method in ("set", "rigl"):
        prune, grow = ("set", "random") if method == "set" else ("magnitude", "gradient")
        dst = DynamicSparsity(
            args.drop_fraction, schedule="cosine", prune=prune, grow=grow,
            update_every_steps=args.update_every, stop=0.75,
            grow_data=next(iter(train_ds)) if grow == "gradient" else None,
            seed=args.seed)
        callbacks.append(dst)
    start = time.monotonic()
    history = model.fit(train_ds, validation_data=valid_ds, epochs=args.epochs,
                        callbacks=callbacks, verbose=2)
    wall = time.monotonic() - start
    h = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    active = None
    if method != "dense":
        import keras_sparse_rnn as ksr
        active = int(sum(m.numpy().sum() for _, m in ksr.sparse_weights(model)))
    return {
        "method": method,
        "val_perplexity": [math.exp(v) for v in h["val_loss"]],
        "train_perplexity": [math.exp(v) for v in h["loss"]],
        "history": h,
        "updates": len(dst.updates) if dst else 0,
        "itop_rate": dst.updates[-1]["itop_rate"] if dst and dst.updates else None,
        "lstm_active_weights": active,
        "wall_seconds": wall,
        "steps": int(model.optimizer.iterations.numpy()),
    }


def main(argv=None):
    args = parse_args(argv)
    from keras_sparse_rnn.datasets import batchify, num_batches, ptb

    train_ids, valid_ids, _, vocab = ptb.load_data(args.data_dir)
    train_ds = batchify(train_ids, BATCH, BPTT)
    steps = num_batches(len(train_ids), BATCH, BPTT)
    if args.train_batches and args.train_batches < steps:
        train_ds, steps = train_ds.take(args.train_batches), args.train_batches
    data = (train_ds.cache(), batchify(valid_ids, BATCH, BPTT).cache(), steps,
            len(vocab))
    print(f"PTB: {steps} training batches of {BATCH} x {BPTT} per epoch "
          f"({steps * BATCH * BPTT} of {len(train_ids)} training tokens), "
          f"{num_batches(len(valid_ids), BATCH, BPTT)} validation batches",
          flush=True)
    results = []
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for method in args.methods:
        print(f"== {method}", flush=True)
        results.append(run(method, args, data))
        out.write_text(json.dumps({"args": vars(args), "train_batches": steps,
                                   "results": results}, indent=1))
    print("\n| method | " + " | ".join(f"val ppl epoch {e + 1}" for e in range(args.epochs))
          + " | updates | ITOP rate | LSTM active weights | wall s |")
    print("|---" * (args.epochs + 5) + "|")
    for r in results:
        ppl = " | ".join(f"{p:.1f}" for p in r["val_perplexity"])
        itop = f"{r['itop_rate']:.3f}" if r["itop_rate"] is not None else "-"
        active = r["lstm_active_weights"] if r["lstm_active_weights"] is not None else "all"
        print(f"| {r['method']} | {ppl} | {r['updates']} | {itop} | {active} | "
              f"{r['wall_seconds']:.0f} |")
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
