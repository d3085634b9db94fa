"""Train a sparse LSTM text classifier from scratch, on any corpus the loaders read.

The embedding, the LSTM (optionally bidirectional) and the output layer are
sparse layers, as in SET-LSTM (Liu et al. 2019, "Intrinsically sparse LSTM
networks"): `--method` picks how their connectivity evolves (`dense`,
`static`, `set`, `rigl`, `snfs`, or `gradual` dense-to-sparse pruning),
`--sparsity` and `--distribution` how sparse they are. Tokenization runs in
`tf.data` with TF Text (`keras_sparse_rnn.datasets`), outside the model.

    python examples/text_classification.py --dataset imdb --method set \
        --sparsity 0.9 --epochs 3 --out-dir runs/imdb_set
    python examples/text_classification.py --dataset mr --folds 10 --fold 0
    python examples/text_classification.py --dataset csv --train-file my.csv \
        --header --label-column label --text-column title,body --test-fraction 0.1

`--dataset`: `imdb`, `sst2`, `sst5`, `trec` (6 classes), `trec_fine` (the 50
fine classes of the raw files, labels such as `DESC:manner`), `mr`, `subj`,
`cr`, `mpqa` (their label-only lines skipped), `ag_news` (the official
`test.csv`, title and description, escapes undone), or your own files:
`csv` (CSV / TSV, `--label-column`, `--text-column`, `--header`) and `lines`
(`<label> <text>` lines), with `--train-file`, `--test-file`,
`--valid-file`. Labels may be integers or strings; the classes are the
labels present. A corpus without a test file is tested on fold `--fold` of a
seeded, stratified `--folds`-fold cross-validation (default 10 and 0), or on
a `--test-fraction` hold-out; one without a validation file holds out
`--valid-fraction` (seeded) of its training examples.

IMDB: 25,000 training reviews, 20% of them (seeded) held out for
validation, 25,000 test reviews; `--max-train-examples N` trains on a fixed
slice (the first N of a seeded shuffle of the training split) for short runs,
and the vocabulary is built from the examples trained on. SST-2: Kim (2014)'s
6,920 / 872 / 1,821 sentences. Padding is masked (`mask_zero`).

Writes to `--out-dir`: `history.json` (per-epoch `history`, `test_accuracy`,
`valid_accuracy`, `wall_seconds`, `active_params`, FLOPs per token, ...),
`summary.txt` / `summary.json` (the sparsity report) and `model.keras`. A run
survives interruption: each epoch end writes `<out-dir>/backup` (model,
optimizer, topology-update state, epoch logs; `--no-backup` turns it off), and
the same command started again resumes from the last completed epoch (the
backup is deleted once the results are written).
Data: `--data-dir`, else `$KERAS_SPARSE_RNN_DATA/<folder>` (`trec/` for
`trec_fine`), else the Keras cache. Bad flags or data: a message and exit code 2.
"""

import argparse
import dataclasses
import json
import os
import pathlib
import shutil
import sys

METHODS = ("dense", "static", "set", "rigl", "snfs", "gradual")
# Every corpus the loaders read: its folder under --data-dir or
# $KERAS_SPARSE_RNN_DATA, its files ("train" only: no split, then --folds /
# --fold or --test-fraction make the test split), how they are read, the
# sequence length and whether punctuation is split off words (SST-2 keeps its
# tokens, as the published runs did; the others split, as load_labeled_lines
# does by default, so that raw text maps to the tokens trained on).
DATASETS = {
    "imdb": dict(sequence_length=200, split_punctuation=True),
    "sst2": dict(sequence_length=64, split_punctuation=False),
    "sst5": dict(sequence_length=64, split_punctuation=False),
    "trec": dict(folder="trec", format="lines", train="TREC.train.all",
                 test="TREC.test.all", read=dict(encoding="latin-1")),
    # TREC's 50 fine classes, from the raw files (labels such as DESC:manner).
    "trec_fine": dict(folder="trec", format="lines", train="raw/TREC.train",
                      test="raw/TREC.test", read=dict(encoding="latin-1")),
    "mr": dict(folder="mr", format="lines", train="rt-polarity.all",
               read=dict(encoding="latin-1")),
    "subj": dict(folder="subj", format="lines", train="subj.all",
                 read=dict(errors="replace")),
    "cr": dict(folder="cr", format="lines", train="custrev.all",
               read=dict(label_only_lines="skip")),
    "mpqa": dict(folder="mpqa", format="lines", train="mpqa.all",
                 read=dict(label_only_lines="skip")),
    # The official test.csv only (labels 1-4; title and description joined).
    "ag_news": dict(folder="ag_news", format="csv", train="test.csv",
                    read=dict(text_column=[1, 2]), clean_ag_news=True,
                    sequence_length=100),
    # One's own files: --train-file [--test-file] [--valid-file].
    "csv": dict(format="csv"),
    "lines": dict(format="lines"),
}
for _options in DATASETS.values():
    _options.setdefault("sequence_length", 64)
    _options.setdefault("split_punctuation", True)


class UsageError(Exception):
    """A user error: printed without a traceback, exit code 2."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", choices=sorted(DATASETS), default="imdb",
                   help="a corpus, or 'csv' / 'lines' for your own files "
                        "(--train-file ...)")
    p.add_argument("--train-file", default=None,
                   help="--dataset csv|lines: the training (or only) file")
    p.add_argument("--test-file", default=None,
                   help="--dataset csv|lines: the test file (else --folds / "
                        "--test-fraction)")
    p.add_argument("--valid-file", default=None,
                   help="--dataset csv|lines: the validation file (else "
                        "--valid-fraction)")
    p.add_argument("--label-column", default="0",
                   help="--dataset csv: column of the label (index or name)")
    p.add_argument("--text-column", default="1",
                   help="--dataset csv: column(s) of the text, comma-separated "
                        "(joined with a space), indices or names")
    p.add_argument("--header", action="store_true",
                   help="--dataset csv: the first row names the columns")
    p.add_argument("--encoding", default=None,
                   help="how the files are decoded (default: the corpus's)")
    p.add_argument("--label-only-lines", choices=("error", "skip"), default=None,
                   help="--dataset lines: lines with a label and no text "
                        "(default: skip for CR and MPQA, else error)")
    p.add_argument("--folds", type=int, default=10,
                   help="a corpus without a test file: k of the seeded, "
                        "stratified k-fold cross-validation")
    p.add_argument("--fold", type=int, default=0,
                   help="which of the --folds folds is the test split")
    p.add_argument("--test-fraction", type=float, default=None,
                   help="a corpus without a test file: hold out this fraction "
                        "(seeded, stratified) instead of a fold")
    p.add_argument("--method", choices=METHODS, default="set")
    p.add_argument("--sparsity", type=float, default=None,
                   help="global fraction of zeros of the sparse matrices, in [0, 1) "
                        "(default: 0.9)")
    p.add_argument("--active-params", type=int, default=None,
                   help="instead of --sparsity: the sparsity at which the model "
                        "trains this many parameters (biases and dense weights "
                        "counted), e.g. a wide sparse model at a narrow dense "
                        "one's count")
    p.add_argument("--distribution", choices=("erdos_renyi", "uniform"),
                   default=None,
                   help="how the sparsity is spread over the matrices; default "
                        "erdos_renyi (gradual pruning: uniform only)")
    p.add_argument("--drop-fraction", type=float, default=0.3,
                   help="initial fraction of active weights replaced per update")
    p.add_argument("--update-every-steps", type=int, default=None,
                   help="topology update every N steps (default: every epoch)")
    p.add_argument("--block", type=int, default=None,
                   help="square blocks of B x B weights with constant fan-in on the "
                        "LSTM's kernels")
    p.add_argument("--compute-path", choices=("auto", "masked_dense", "blocks"),
                   default="auto",
                   help="how the LSTM computes its products: from the active "
                        "blocks ('blocks', needs --block), masked-dense, or 'auto' "
                        "(the layer's measured rule)")
    p.add_argument("--bidirectional", action="store_true")
    p.add_argument("--units", type=int, default=128)
    p.add_argument("--embedding-dim", type=int, default=128)
    p.add_argument("--max-tokens", type=int, default=20000,
                   help="vocabulary size, padding and OOV included")
    p.add_argument("--sequence-length", type=int, default=None,
                   help="default: 200 for IMDB, 100 for AG News, else 64")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--max-train-examples", type=int, default=None,
                   help="train on the first N examples of a seeded shuffle of "
                        "the training split (a fixed slice, for short runs)")
    p.add_argument("--max-eval-examples", type=int, default=None,
                   help="validate and test on the first N examples of a seeded "
                        "shuffle of each split (default: all)")
    p.add_argument("--time-budget", type=float, default=None,
                   help="stop training after this many minutes (the same command "
                        "started again resumes with a fresh budget)")
    p.add_argument("--jit-compile", choices=("auto", "true", "false"), default="auto",
                   help="XLA for the train step ('auto' is False on a CPU)")
    p.add_argument("--valid-fraction", type=float, default=0.2,
                   help="the fraction of the training examples held out "
                        "(seeded) for validation when the corpus has no "
                        "validation file (SST has its dev split); 0 "
                        "validates on none")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None,
                   help="TensorFlow's intra- and inter-op threads (default: all cores)")
    p.add_argument("--data-dir", default=None,
                   help="folder with the dataset's files")
    p.add_argument("--out-dir", default="runs/text_classification")
    p.add_argument("--no-save", action="store_true", help="skip model.keras")
    p.add_argument("--no-backup", action="store_true",
                   help="no per-epoch backup in <out-dir>/backup (no resume)")
    p.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    args = p.parse_args(argv)
    if args.active_params is not None:
        if args.sparsity is not None:
            raise UsageError("give --sparsity or --active-params, not both")
        if args.method == "dense":
            raise UsageError("--active-params sets a sparse model's sparsity: "
                             "not with --method dense")
        if args.active_params < 1:
            raise UsageError(f"--active-params must be >= 1, got {args.active_params}")
    elif args.sparsity is None:
        args.sparsity = 0.9
    if args.sparsity is not None and not 0.0 <= args.sparsity < 1.0:
        raise UsageError(f"--sparsity must be in [0, 1), got {args.sparsity}")
    if args.method == "dense":
        args.sparsity = 0.0  # dense means no zeros; say so in the outputs
    elif args.sparsity == 0.0:
        raise UsageError(f"--method {args.method} needs --sparsity > 0")
    if args.block is not None and args.block < 2:
        raise UsageError(f"--block must be an int >= 2 (B x B blocks), got {args.block}")
    if args.compute_path == "blocks" and args.block is None:
        raise UsageError("--compute-path blocks computes from B x B blocks: give --block")
    resolve_distribution(args)
    if not 0.0 < args.drop_fraction < 1.0:
        raise UsageError(f"--drop-fraction must be in (0, 1), got {args.drop_fraction}")
    for name, minimum in (("update_every_steps", 1), ("units", 1), ("embedding_dim", 1),
                          ("max_tokens", 3), ("sequence_length", 1), ("batch_size", 1),
                          ("epochs", 1), ("max_train_examples", 1),
                          ("max_eval_examples", 1), ("seed", 0), ("threads", 1)):
        value = getattr(args, name)
        if value is not None and value < minimum:
            raise UsageError(f"--{name.replace('_', '-')} must be >= {minimum}, "
                             f"got {value}")
    if not args.learning_rate > 0:
        raise UsageError(f"--learning-rate must be > 0, got {args.learning_rate}")
    if not 0.0 <= args.valid_fraction < 1.0:
        raise UsageError(f"--valid-fraction must be in [0, 1), got {args.valid_fraction}")
    if args.time_budget is not None and not args.time_budget > 0:
        raise UsageError(f"--time-budget must be > 0 minutes, got {args.time_budget}")
    if args.data_dir is not None and not os.path.isdir(args.data_dir):
        raise UsageError(f"--data-dir {args.data_dir!r} is not a folder")
    _check_corpus_flags(args)
    if args.sequence_length is None:
        args.sequence_length = DATASETS[args.dataset]["sequence_length"]
    return args


def resolve_distribution(args):
    """Sets `args.distribution` to the one that runs, as the outputs record it
    (as `ptb_language_model.py` does): none for dense, uniform for gradual
    pruning (it prunes each matrix to the same sparsity, as tfmot),
    Erdos-Renyi by default for the sparse methods."""
    if args.method == "gradual":
        if args.distribution == "erdos_renyi":
            raise UsageError("--method gradual prunes each matrix to the same "
                             "sparsity: give --distribution uniform or leave it out")
        args.distribution = "uniform"
    elif args.method == "dense":
        args.distribution = None
    elif args.distribution is None:
        args.distribution = "erdos_renyi"


def _check_corpus_flags(args):
    own = args.dataset in ("csv", "lines")
    if own and args.train_file is None:
        raise UsageError(f"--dataset {args.dataset} needs --train-file")
    for flag in ("train_file", "test_file", "valid_file"):
        path = getattr(args, flag)
        if path is not None and not own:
            raise UsageError(f"--{flag.replace('_', '-')} is for --dataset csv or "
                             f"lines, got --dataset {args.dataset}")
        if path is not None and not os.path.isfile(path):
            raise UsageError(f"--{flag.replace('_', '-')} {path!r} is not a file")
    if args.folds < 2:
        raise UsageError(f"--folds must be >= 2, got {args.folds}")
    if not 0 <= args.fold < args.folds:
        raise UsageError(f"--fold must be in [0, {args.folds - 1}] (--folds "
                         f"{args.folds}), got {args.fold}")
    if args.test_fraction is not None and not 0.0 < args.test_fraction < 1.0:
        raise UsageError(f"--test-fraction must be in (0, 1), got {args.test_fraction}")
    args.text_column = [_column(c) for c in args.text_column.split(",")]
    args.label_column = _column(args.label_column)


def _column(text):
    """A column index ("2") or name ("title")."""
    text = text.strip()
    return int(text) if text.isdigit() else text


@dataclasses.dataclass
class Data:
    train: object
    valid: object
    test: object
    vocab: list
    num_classes: int
    num_examples: dict
    class_names: list


def _take(texts, labels, n, seed):
    """The first `n` examples of a seeded shuffle (all of them, shuffled, if None)."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(texts))
    if n is not None:
        order = order[:n]
    return [texts[i] for i in order], np.asarray(labels)[order]


def _read_corpus_files(args, corpus):
    """`({split: (texts, labels)}, class_names)` of a corpus read from files."""
    from keras_sparse_rnn import datasets
    from keras_sparse_rnn.datasets import csv_reader, labels, readers

    if "folder" in corpus:
        names = [corpus[k] for k in ("train", "test") if k in corpus]
        found = datasets.resolve_files(corpus["folder"], names, args.data_dir)
        files = {k: found[corpus[k]] for k in ("train", "test") if k in corpus}
    else:
        files = {k: getattr(args, f"{k}_file") for k in ("train", "valid", "test")
                 if getattr(args, f"{k}_file") is not None}
    options = dict(corpus.get("read", {}))
    if args.encoding is not None:
        options["encoding"] = args.encoding
    if corpus["format"] == "csv":
        options.setdefault("label_column", args.label_column)
        options.setdefault("text_column", args.text_column)
        options.setdefault("header", args.header)
        read = csv_reader.read_csv_texts
    else:
        if args.label_only_lines is not None:
            options["label_only_lines"] = args.label_only_lines
        read = readers.read_labeled_texts
    clean = csv_reader.unescape_ag_news if corpus.get("clean_ag_news") else None
    parts = {k: read(f, **options).transformed(clean) for k, f in files.items()}
    for k, part in parts.items():
        if part.skipped:
            print(f"{files[k]}: skipped {part.skipped} label-only lines")
    ids, class_names = labels.class_ids(parts)
    splits = {k: (part.texts, ids[k]) for k, part in parts.items()}
    if "test" not in splits:  # one file: a fold or a hold-out is the test split
        texts, y = splits["train"]
        if args.test_fraction is not None:
            splits["train"], splits["test"] = datasets.train_test_split(
                texts, y, test_fraction=args.test_fraction, seed=args.seed)
        else:
            if args.folds > len(texts):
                raise UsageError(f"--folds must be at most the number of examples "
                                 f"({len(texts)}), got {args.folds}")
            splits["train"], splits["test"] = datasets.k_fold(
                texts, y, k=args.folds, seed=args.seed)[args.fold]
    return splits, class_names


def load_data(args):
    """Splits as `tf.data` of `(ids, label)`; the vocabulary from the slice."""
    from keras_sparse_rnn import datasets
    from keras_sparse_rnn.datasets import labels

    corpus = DATASETS[args.dataset]
    try:
        if args.dataset == "imdb":
            splits, class_names = datasets.read_imdb(args.data_dir), ["neg", "pos"]
        elif args.dataset in ("sst2", "sst5"):
            fine = args.dataset == "sst5"
            splits = datasets.read_sst(args.data_dir, fine_grained=fine)
            class_names = [str(i) for i in range(5 if fine else 2)]
        else:
            splits, class_names = _read_corpus_files(args, corpus)
    except (FileNotFoundError, ValueError) as e:  # missing or malformed files
        raise UsageError(str(e)) from None
    if "valid" not in splits:
        # Hold out a fraction of the training examples (seeded) for validation.
        texts, y = _take(*splits["train"], None, args.seed)
        n_valid = int(len(texts) * args.valid_fraction)
        splits = {"train": (texts[n_valid:], y[n_valid:]),
                  "valid": (texts[:n_valid], y[:n_valid]), "test": splits["test"]}
    if not splits["valid"][0]:
        del splits["valid"]  # --valid-fraction 0
    for name, (texts, _) in splits.items():
        if not texts:
            raise UsageError(f"the {args.dataset} {name} split is empty")
    limits = {"train": args.max_train_examples, "valid": args.max_eval_examples,
              "test": args.max_eval_examples}
    splits = {k: _take(*s, limits[k], args.seed + i)
              for i, (k, s) in enumerate(splits.items())}
    labels.warn_empty_classes(splits["train"][1], class_names)
    options = dict(lowercase=True, strip_html=True,
                   split_punctuation=corpus["split_punctuation"])
    vocab = datasets.build_vocabulary(splits["train"][0], args.max_tokens, **options)
    vectorizer = datasets.TextVectorizer(vocab, args.sequence_length, padding="post",
                                         truncating="post", **options)
    ds = {k: datasets.make_dataset(*s, vectorizer, args.batch_size,
                                   shuffle=k == "train", seed=args.seed,
                                   num_classes=len(class_names))
          for k, s in splits.items()}
    return Data(ds["train"], ds.get("valid"), ds["test"], vocab, len(class_names),
                {k: len(s[0]) for k, s in splits.items()}, class_names)


def build_model(args, vocab_size, num_classes):
    import keras
    import keras_sparse_rnn as ksr

    # Gradual pruning starts dense; the others start at the target sparsity
    # (re-distributed over the matrices below). With --active-params the
    # sparsity comes from the built model's counts (below).
    if args.method == "gradual":
        sparse = 0.0
    else:  # any sparsity for now when --active-params sets it below
        sparse = 0.5 if args.sparsity is None else args.sparsity
    blocks = {} if args.block is None else dict(block=(args.block, args.block))
    inputs = keras.Input((args.sequence_length,), dtype="int32", name="token_ids")
    x = ksr.SparseEmbedding(vocab_size, args.embedding_dim, sparsity=sparse,
                            mask_zero=True, mask_seed=args.seed, name="embedding")(inputs)
    lstm = ksr.SparseLSTM(args.units, sparsity=sparse, mask_seed=args.seed + 1,
                          compute_path=args.compute_path, **blocks, name="lstm")
    if args.bidirectional:
        lstm = keras.layers.Bidirectional(lstm, name="bidirectional")
    x = lstm(x)
    logits = ksr.SparseDense(num_classes, sparsity=sparse, mask_seed=args.seed + 2,
                             name="classifier")(x)
    model = keras.Model(inputs, logits, name=f"{args.dataset}_lstm")
    if args.active_params is not None:
        args.sparsity = ksr.sparsity_for_active_params(model, args.active_params)
    if args.method not in ("dense", "gradual"):
        ksr.distribute_sparsity(model, args.sparsity, args.distribution)
    return model


def make_callbacks(args, steps_per_epoch, grow_data):
    import keras_sparse_rnn as ksr
    from keras_sparse_rnn import training

    callbacks = []
    total = steps_per_epoch * args.epochs
    if args.method in ("set", "rigl", "snfs"):
        from keras_sparse_rnn.dst import DynamicSparsity

        prune, grow = {"set": ("set", "random"), "rigl": ("magnitude", "gradient"),
                       "snfs": ("magnitude", "momentum")}[args.method]
        every = ({"update_every_steps": args.update_every_steps}
                 if args.update_every_steps else {})
        callbacks.append(DynamicSparsity(
            drop_fraction=args.drop_fraction, schedule="cosine", prune=prune,
            grow=grow, stop=0.75 if total > 1 else None,
            grow_data=grow_data if grow == "gradient" else None, seed=args.seed,
            verbose=1 if args.verbose else 0, **every))
    elif args.method == "gradual":
        frequency, end_step = ksr.dst.schedules.gradual_schedule(total)
        callbacks.append(ksr.GradualPruning(
            final_sparsity=args.sparsity, initial_sparsity=0.0, begin_step=0,
            end_step=end_step, frequency=frequency))
    if args.time_budget:
        callbacks.append(training.time_budget(args.time_budget))
    return callbacks


def _float(value):
    return None if value is None else float(value)


def train(args):
    import keras
    from keras_sparse_rnn import training

    training.set_threads(args.threads)
    keras.utils.set_random_seed(args.seed)
    data = load_data(args)
    try:
        model = build_model(args, len(data.vocab), data.num_classes)
    except ValueError as e:  # e.g. a sparsity that leaves a matrix empty
        raise UsageError(str(e)) from None
    optimizer = keras.optimizers.Adam(args.learning_rate)
    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    model.compile(optimizer,
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=jit)
    steps_per_epoch = -(-data.num_examples["train"] // args.batch_size)
    grow_data = next(iter(data.train))
    callbacks = make_callbacks(args, steps_per_epoch, grow_data)
    out = pathlib.Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # The epoch logs and wall time across a resume, and the per-epoch backup
    # that a resumed run starts from (as in ptb_language_model.py).
    log = training.run_log(out / "epochs.json")
    callbacks.append(log)
    if not args.no_backup:
        # Kept after `fit` until the results are written (`main`'s end): a
        # kill during the evaluation resumes with no epoch left to train.
        callbacks.append(training.epoch_backup(out / "backup", delete_checkpoint=False))
    callbacks += training.kill_after_epoch_for_tests()
    # shuffle=False: the dataset shuffles itself (seeded, in tf.data); fit's
    # default shuffle=True would only warn that it ignores a tf.data.Dataset.
    model.fit(data.train, validation_data=data.valid, epochs=args.epochs,
              callbacks=callbacks, verbose=args.verbose, shuffle=False)
    valid = (model.evaluate(data.valid, verbose=0, return_dict=True)
             if data.valid is not None else {"accuracy": None, "loss": None})
    test = model.evaluate(data.test, verbose=0, return_dict=True)
    hist = {k: [float(v) for v in vals] for k, vals in log.history().items()}
    return model, data, dict(
        history=hist,
        valid_accuracy=_float(valid["accuracy"]), valid_loss=_float(valid["loss"]),
        test_accuracy=float(test["accuracy"]), test_loss=float(test["loss"]),
        wall_seconds=log.seconds(), resumed_at_epoch=log.resumed_at,
        epoch_seconds=[e["seconds"] for e in log.entries], train_steps=int(optimizer.iterations.numpy()),
        epochs=args.epochs, steps_per_epoch=steps_per_epoch,
        epochs_run=len(hist.get("loss", [])))


def main(argv=None):
    try:
        args = parse_args(argv)
        model, data, result = train(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import keras_sparse_rnn as ksr

    out = pathlib.Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = ksr.sparsity_summary(model, print_fn=None)
    (out / "summary.txt").write_text(str(summary) + "\n")
    (out / "summary.json").write_text(json.dumps(dataclasses.asdict(summary), indent=1))
    if not args.no_save:
        model.save(out / "model.keras")
    mean_flops = summary.training_flops
    if args.method == "gradual":
        mean_flops = round(summary.dense_training_flops * ksr.dst.schedules.mean_density(
            args.sparsity, result["epochs"] * result["steps_per_epoch"],
            result["train_steps"]))
    record = {
        "args": vars(args),
        **result,
        "num_examples": data.num_examples,
        "class_names": data.class_names,
        "vocab_size": len(data.vocab),
        "active_params": summary.total_params,
        "dense_params": summary.dense_params,
        "forward_flops_per_token": summary.forward_flops,
        "training_flops_per_token": summary.training_flops,
        "dense_training_flops_per_token": summary.dense_training_flops,
        "mean_training_flops_per_token": mean_flops,
    }
    (out / "history.json").write_text(json.dumps(record, indent=1))
    valid = ("no validation split" if result["valid_accuracy"] is None
             else f"validation accuracy {result['valid_accuracy']:.4f}")
    print(f"{args.dataset} {args.method} sparsity {args.sparsity}: "
          f"{valid}, test accuracy "
          f"{result['test_accuracy']:.4f} ({result['train_steps']} steps, "
          f"{result['wall_seconds']:.0f} s, {summary.total_params:,} parameters)")
    # Kept until now, so that a kill after `fit` does not train again.
    shutil.rmtree(out / "backup", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
