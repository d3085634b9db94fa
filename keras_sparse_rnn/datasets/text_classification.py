"""Text-classification datasets (IMDB, SST, CSV/TSV, `<label> <text>` files).

The loaders (`load_imdb`, `load_sst2`, `load_sst5`, `load_csv`,
`load_labeled_lines`) read the files (`readers.py`), hold out the splits asked
for, and turn every split into a `tf.data.Dataset` of `(token_ids, label)`:

* text processing inside `tf.data`, with TensorFlow ops and TF Text
  (`text.py`): lower-casing, removing IMDB's `<br />`, optionally splitting
  off ASCII punctuation, whitespace tokenization;
* a vocabulary built from the training split only (after any validation
  split is taken out): id 0 is padding (`""`), id 1 is out-of-vocabulary
  (`"[UNK]"`), `len(vocab) <= max_tokens`;
* each sequence truncated and padded with 0 to `sequence_length` (or, with
  `bucket_boundaries=`, batched by length and padded to the longest of its
  batch, `pipeline.py`);
* the training split is shuffled with `seed` (same seed, same order), the
  others keep their file order.

The options the loaders share are checked once, as one `LoaderOptions`
(`options.py`). The readers and the text-processing names stay importable
from this module.
"""

import dataclasses
import functools

import tensorflow as tf

from keras_sparse_rnn.datasets.options import LoaderOptions
from keras_sparse_rnn.datasets.pipeline import make_dataset
from keras_sparse_rnn.datasets.readers import read_csv
from keras_sparse_rnn.datasets.readers import read_imdb
from keras_sparse_rnn.datasets.readers import read_labeled_lines
from keras_sparse_rnn.datasets.readers import read_sst
from keras_sparse_rnn.datasets.splits import k_fold
from keras_sparse_rnn.datasets.splits import train_test_split
from keras_sparse_rnn.datasets.text import TextVectorizer
from keras_sparse_rnn.datasets.text import build_vocabulary
from keras_sparse_rnn import validation as v

__all__ = [
    "TextClassificationData",
    "load_csv",
    "load_imdb",
    "load_labeled_lines",
    "load_sst2",
    "load_sst5",
]

_SPLITS = ("train", "valid", "test")
_SST2_CLASSES = ["negative", "positive"]
_SST5_CLASSES = ["very negative", "negative", "neutral", "positive", "very positive"]


@dataclasses.dataclass
class TextClassificationData:
    """Batched splits of a text-classification dataset and their vocabulary.

    Attributes:
        train: `tf.data.Dataset` of `(token_ids int32 (batch, seq_len),
            label int32 (batch,))`, shuffled with the loader's seed.
        valid: the same for the validation split, or None when there is none.
        test: the same for the test split, or None when there is none.
        vocab: list of str, `vocab[id]`; 0 is padding `""`, 1 is `"[UNK]"`.
        num_classes: number of classes; labels are in `[0, num_classes)`.
        class_names: list of `num_classes` names.
        sequence_length: length of the padded sequences.
        num_examples: dict from split name to its number of examples.
        vectorizer: the `TextVectorizer` that turns new texts into ids.
    """

    train: tf.data.Dataset
    valid: object
    test: object
    vocab: list
    num_classes: int
    class_names: list
    sequence_length: int
    num_examples: dict
    vectorizer: TextVectorizer

    @property
    def vocab_size(self):
        """Number of ids, padding and OOV included."""
        return len(self.vocab)


def _build(splits, class_names, options):
    """The `TextClassificationData` of `splits` (`{name: (texts, labels)}`)."""
    if options.validation_split > 0:
        if splits.get("valid") is not None:
            raise ValueError(
                f"validation_split={options.validation_split} but the dataset "
                "already has a validation split; use validation_split=0"
            )
        splits = dict(splits)
        splits["train"], splits["valid"] = _split_validation(
            *splits["train"], options.validation_split, options.seed
        )
    vocab = build_vocabulary(
        splits["train"][0], options.max_tokens, **options.standardization
    )
    vectorizer = TextVectorizer(
        vocab,
        options.sequence_length,
        padding=options.padding,
        truncating=options.truncating,
        **options.standardization,
    )
    datasets = {}
    for name in _SPLITS:
        split = splits.get(name)
        datasets[name] = None if split is None else make_dataset(
            *split,
            vectorizer,
            options.batch_size,
            shuffle=name == "train",
            seed=options.seed,
            bucket_boundaries=options.bucket_boundaries,
            drop_remainder=options.drop_remainder,
            num_classes=len(class_names),
        )
    return TextClassificationData(
        **datasets,
        vocab=vocab,
        num_classes=len(class_names),
        class_names=list(class_names),
        sequence_length=options.sequence_length,
        num_examples={
            k: len(s[0]) for k, s in splits.items() if s is not None
        },
        vectorizer=vectorizer,
    )


def _split_validation(texts, labels, validation_split, seed):
    """`(train, valid)`: `int(validation_split * n)` random examples held out."""
    n_valid = int(len(texts) * validation_split)
    if n_valid == 0 or n_valid == len(texts):
        raise ValueError(
            f"validation_split={validation_split} of {len(texts)} training "
            f"examples gives {n_valid} validation examples; use a larger "
            "(or zero) validation_split"
        )
    # train_test_split holds out round(test_fraction * n) examples: this
    # fraction gives exactly n_valid (the loaders round down).
    return train_test_split(
        texts, labels, test_fraction=n_valid / len(texts), seed=seed, stratify=False
    )


def _read_files(read, files, unit):
    """`{split: read(file)}` for the files given; an empty one is an error."""
    splits = {name: read(f) for name, f in files.items() if f is not None}
    for name, (texts, _) in splits.items():
        if not texts:
            raise ValueError(f"The {name} file {files[name]} has no {unit}")
    return splits


def _class_names(class_names, splits):
    """`class_names`, or `["0", "1", ...]` up to the largest label read."""
    if class_names is not None:
        return class_names
    num_classes = int(max(labels.max() for _, labels in splits.values())) + 1
    return [str(i) for i in range(num_classes)]


def _check_valid_file(valid_file, validation_split):
    if valid_file is not None and validation_split != 0:
        raise ValueError(
            f"pass valid_file or validation_split, not both: got valid_file="
            f"{valid_file!r} and validation_split={validation_split!r}"
        )


def load_imdb(
    path=None,
    max_tokens=20000,
    sequence_length=200,
    batch_size=32,
    seed=0,
    validation_split=0.2,
    *,
    bucket_boundaries=None,
    drop_remainder=False,
    padding="post",
    truncating="post",
    lowercase=True,
    split_punctuation=True,
    encoding="utf-8",
    errors="strict",
):
    """IMDB movie reviews (Maas et al. 2011), binary sentiment, as `tf.data`.

    25,000 training and 25,000 test reviews, half positive. A random
    `validation_split` of the training reviews (chosen with `seed`) becomes
    the validation split; the vocabulary comes from the remaining training
    reviews. Texts are lower-cased, `<br />` removed, punctuation split off.

    Args:
        path: folder with `train.jsonl.xz` and `test.jsonl.xz` (see
            `read_imdb`).
        max_tokens: vocabulary size including padding (0) and OOV (1), or
            None for all training words.
        sequence_length: sequences are truncated / padded to this length.
        batch_size: examples per batch.
        seed: seed of the validation split and of the training shuffle.
        validation_split: fraction of the training reviews held out, in
            [0, 1); 0 gives `valid=None`.
        bucket_boundaries: optional length buckets (see `make_dataset`).
        drop_remainder: drop the last incomplete batch of each split.
        padding: `"post"` or `"pre"`.
        truncating: `"post"` (keep the beginning) or `"pre"` (keep the end).
        lowercase: lower-case the texts.
        split_punctuation: separate ASCII punctuation from words.
        encoding, errors: how the files are decoded (as `bytes.decode`;
            `errors="replace"` reads a file with a few bad bytes).

    Returns:
        A `TextClassificationData` with `train`, `valid`, `test`, `vocab`,
        `num_classes=2`, `class_names=["neg", "pos"]`.

    Example:

    >>> data = load_imdb(batch_size=64)  # doctest: +SKIP
    >>> model.fit(data.train, validation_data=data.valid)  # doctest: +SKIP
    """
    options = LoaderOptions.from_arguments(locals())
    splits = read_imdb(path, options.encoding, options.errors)
    return _build(splits, ["neg", "pos"], options)


def _load_sst(fine_grained, path, options):
    splits = read_sst(path, fine_grained, options.encoding, options.errors)
    return _build(splits, _SST5_CLASSES if fine_grained else _SST2_CLASSES, options)


def load_sst2(
    path=None,
    max_tokens=20000,
    sequence_length=64,
    batch_size=32,
    seed=0,
    *,
    bucket_boundaries=None,
    drop_remainder=False,
    padding="post",
    truncating="post",
    lowercase=True,
    split_punctuation=False,
    encoding="utf-8",
    errors="strict",
):
    """SST-2: Stanford Sentiment Treebank, binary, sentence level, as `tf.data`.

    Kim (2014) splits of `stsa.binary.{train,dev,test}`: 6,920 / 872 / 1,821
    sentences (neutral ones removed). The sentences are already tokenized, so
    punctuation is not split by default (`split_punctuation=False`); the
    longest has 56 tokens, hence `sequence_length=64`.

    Args:
        path: folder with the `stsa.binary.*` files (see `read_sst`).
        max_tokens, sequence_length, batch_size, seed, bucket_boundaries,
        drop_remainder, padding, truncating, lowercase, split_punctuation,
        encoding, errors: as in `load_imdb`.

    Returns:
        A `TextClassificationData` (`valid` is the dev split),
        `num_classes=2`, `class_names=["negative", "positive"]`.

    Example:

    >>> data = load_sst2()  # doctest: +SKIP
    >>> data.num_examples  # doctest: +SKIP
    {'train': 6920, 'valid': 872, 'test': 1821}
    """
    return _load_sst(False, path, LoaderOptions.from_arguments(locals()))


def load_sst5(
    path=None,
    max_tokens=20000,
    sequence_length=64,
    batch_size=32,
    seed=0,
    *,
    bucket_boundaries=None,
    drop_remainder=False,
    padding="post",
    truncating="post",
    lowercase=True,
    split_punctuation=False,
    encoding="utf-8",
    errors="strict",
):
    """SST-5: the fine-grained (5 classes) SST, `stsa.fine.*` files.

    8,544 / 1,101 / 2,210 sentences, labels 0 (very negative) to 4 (very
    positive). Arguments and result as `load_sst2`, with `num_classes=5`.
    """
    return _load_sst(True, path, LoaderOptions.from_arguments(locals()))


def load_csv(
    train_file,
    test_file=None,
    valid_file=None,
    *,
    label_column=0,
    text_column=1,
    header=False,
    delimiter=None,
    class_names=None,
    encoding="utf-8",
    errors="strict",
    max_tokens=20000,
    sequence_length=200,
    batch_size=32,
    seed=0,
    validation_split=0.0,
    bucket_boundaries=None,
    drop_remainder=False,
    padding="post",
    truncating="post",
    lowercase=True,
    split_punctuation=True,
):
    """Any `(label, text)` CSV/TSV files as a text-classification dataset.

    Args:
        train_file: path of the training file.
        test_file: optional path of the test file.
        valid_file: optional path of the validation file (exclusive with
            `validation_split`).
        label_column, text_column, header, delimiter, class_names, encoding,
        errors: as in `read_csv`, for all files.
        max_tokens, sequence_length, batch_size, seed, validation_split,
        bucket_boundaries, drop_remainder, padding, truncating, lowercase,
        split_punctuation: as in `load_imdb` (`validation_split` defaults to
            0 here).

    Returns:
        A `TextClassificationData`. `num_classes` is `len(class_names)` when
        given, else `max label + 1` over all files; `class_names` defaults to
        `["0", "1", ...]`.

    Example:

    >>> data = load_csv("glue/train.tsv", "glue/test.tsv", "glue/dev.tsv",
    ...                 header=True)  # doctest: +SKIP
    """
    options = LoaderOptions.from_arguments(locals())
    _check_valid_file(valid_file, validation_split)
    read = functools.partial(
        read_csv,
        label_column=label_column,
        text_column=text_column,
        header=header,
        delimiter=delimiter,
        class_names=class_names,
        encoding=encoding,
        errors=errors,
    )
    files = {"train": train_file, "valid": valid_file, "test": test_file}
    splits = _read_files(read, files, "rows")
    return _build(splits, _class_names(class_names, splits), options)


def load_labeled_lines(
    train_file,
    test_file=None,
    valid_file=None,
    *,
    class_names=None,
    test_fraction=None,
    folds=None,
    fold=None,
    encoding="utf-8",
    errors="strict",
    max_tokens=20000,
    sequence_length=64,
    batch_size=32,
    seed=0,
    validation_split=0.0,
    bucket_boundaries=None,
    drop_remainder=False,
    padding="post",
    truncating="post",
    lowercase=True,
    split_punctuation=False,
):
    """Files of `<label> <text>` lines as a text-classification dataset.

    The format of SST's `stsa.*` files, TREC, and the classic sentence corpora
    (MR, CR, SUBJ, MPQA), some of which come as one file without a split:
    then give `test_fraction` (a seeded, stratified hold-out) or `folds` and
    `fold` (fold `fold` of a seeded, stratified `folds`-fold
    cross-validation, see `k_fold`) to make the test split. The vocabulary
    comes from the training split only.

    Args:
        train_file: path of the (training, or only) file.
        test_file, valid_file: optional paths of the test and validation files.
        class_names: optional names of the classes 0, 1, ...; default
            `["0", "1", ...]` up to the largest label.
        test_fraction: without `test_file`: the fraction of `train_file` held
            out for testing, in (0, 1).
        folds, fold: without `test_file`: test on fold `fold` (0-based) of
            `folds`.
        encoding, errors: how the files are decoded (`"latin-1"` for TREC
            and MR).
        max_tokens, sequence_length, batch_size, seed, validation_split,
        bucket_boundaries, drop_remainder, padding, truncating, lowercase,
        split_punctuation: as in `load_imdb` (`seed` also seeds the splits).

    Returns:
        A `TextClassificationData`.

    Example:

    >>> data = load_labeled_lines("mr/rt-polarity.all", folds=10, fold=0,
    ...                           encoding="latin-1")  # doctest: +SKIP
    """
    options = LoaderOptions.from_arguments(locals())
    if class_names is not None and (
            isinstance(class_names, str) or len(class_names) < 2
            or not all(isinstance(c, str) for c in class_names)):
        raise ValueError(f"class_names must be a list of at least 2 str or None, "
                         f"got {class_names!r}")
    folds = _check_test_split(test_file, test_fraction, folds, fold)
    _check_valid_file(valid_file, validation_split)
    read = functools.partial(
        read_labeled_lines,
        num_classes=len(class_names) if class_names is not None else None,
        encoding=encoding,
        errors=errors,
    )
    files = {"train": train_file, "valid": valid_file, "test": test_file}
    splits = _read_files(read, files, "lines")
    if folds is not None:
        splits["train"], splits["test"] = k_fold(*splits["train"], k=folds, seed=seed)[fold]
    elif test_fraction is not None:
        splits["train"], splits["test"] = train_test_split(
            *splits["train"], test_fraction=test_fraction, seed=seed)
    return _build(splits, _class_names(class_names, splits), options)


def _check_test_split(test_file, test_fraction, folds, fold):
    """At most one way to make the test split; `folds` as an int (or None)."""
    made = sum(x is not None for x in (test_file, test_fraction, folds))
    if made > 1:
        raise ValueError("give one of test_file, test_fraction and folds (with "
                         f"fold), got test_file={test_file!r}, test_fraction="
                         f"{test_fraction!r}, folds={folds!r}")
    if (folds is None) != (fold is None):
        raise ValueError(f"folds and fold go together, got folds={folds!r} and "
                         f"fold={fold!r}")
    if folds is not None:
        folds = v.check_int(folds, "folds", minimum=2)
        v.check_int(fold, "fold", minimum=0, maximum=folds - 1)
    return folds
