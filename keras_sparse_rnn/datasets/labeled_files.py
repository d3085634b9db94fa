"""Loaders of one's own files: `load_csv` (CSV / TSV) and `load_labeled_lines`
(`<label> <text>` lines: SST, TREC, MR, SUBJ, CR, MPQA).

Both read the labels as the strings the files hold and turn them into class
ids with one rule (`labels.class_ids`): `class_names` lists the labels in
class order; without it the classes are the labels present. Both take a
`text_transform` and a `label_transform` hook, applied to each text and
label as read.
"""

import functools

from keras_sparse_rnn.datasets import labels as labels_module
from keras_sparse_rnn.datasets.classification_data import build_data
from keras_sparse_rnn.datasets.csv_reader import read_csv_texts
from keras_sparse_rnn.datasets.options import LoaderOptions
from keras_sparse_rnn.datasets.readers import read_labeled_texts
from keras_sparse_rnn.datasets.splits import k_fold
from keras_sparse_rnn.datasets.splits import train_test_split
from keras_sparse_rnn import validation as v

__all__ = ["load_csv", "load_labeled_lines"]


def _read_parts(read, files, unit, text_transform, label_transform):
    """`{split: LabeledTexts}` for the files given; an empty one is an error."""
    parts = {name: read(f).transformed(text_transform, label_transform)
             for name, f in files.items() if f is not None}
    for name, part in parts.items():
        if not part.texts:
            raise ValueError(f"The {name} file {files[name]} has no {unit}")
    return parts


def _splits(parts, class_names):
    """`({split: (texts, ids)}, class_names)` of the parts read."""
    ids, class_names = labels_module.class_ids(parts, class_names)
    return {name: (part.texts, ids[name]) for name, part in parts.items()}, class_names


def _check_valid_file(valid_file, validation_split):
    if valid_file is not None and validation_split != 0:
        raise ValueError(
            f"pass valid_file or validation_split, not both: got valid_file="
            f"{valid_file!r} and validation_split={validation_split!r}"
        )


def _check_hooks(class_names, text_transform, label_transform):
    labels_module.check_class_names(class_names)
    labels_module.check_transform(text_transform, "text_transform")
    labels_module.check_transform(label_transform, "label_transform")


_LABELS_DOC = """class_names: optional list of the labels as the files write them, in
            class order; a label's class id is its index in the list
            (`["1", "2", "3", "4"]` for AG News). Without it the classes are
            the labels present: integer labels with a 0 are the class ids
            `0..max`, other integer labels (1-4) and string labels
            (`DESC:manner`) are taken in order. For compatibility, integer
            labels `0..n-1` that are not in `class_names` stay class ids and
            `class_names` names them (`["neg", "pos"]`). A class without
            any training example gets a warning."""


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
    text_transform=None,
    label_transform=None,
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
        label_column, text_column, header, delimiter, encoding, errors: as
            in `read_csv`, for all files (`text_column=[1, 2]` joins two
            columns with a space).
        {labels}
        text_transform: optional callable `str -> str` applied to each text
            as read, e.g. `unescape_ag_news` (AG News writes `#39;` for an
            apostrophe and `\\` for a line break).
        label_transform: optional callable `str -> str` applied to each
            label as read (before `class_names` is looked up).
        max_tokens, sequence_length, batch_size, seed, validation_split,
        bucket_boundaries, drop_remainder, padding, truncating, lowercase,
        split_punctuation: as in `load_imdb` (`validation_split` defaults to
            0 here).

    Returns:
        A `TextClassificationData`; `class_names` as given, else the labels
        as strings.

    Example:

    >>> data = load_csv("ag_news/test.csv", text_column=[1, 2],
    ...                 text_transform=unescape_ag_news)  # doctest: +SKIP
    >>> data.class_names  # doctest: +SKIP
    ['1', '2', '3', '4']
    """
    options = LoaderOptions.from_arguments(locals())
    _check_valid_file(valid_file, validation_split)
    _check_hooks(class_names, text_transform, label_transform)
    read = functools.partial(
        read_csv_texts,
        label_column=label_column,
        text_column=text_column,
        header=header,
        delimiter=delimiter,
        encoding=encoding,
        errors=errors,
    )
    files = {"train": train_file, "valid": valid_file, "test": test_file}
    parts = _read_parts(read, files, "rows", text_transform, label_transform)
    splits, class_names = _splits(parts, class_names)
    return build_data(splits, class_names, options)


load_csv.__doc__ = load_csv.__doc__.replace("{labels}", _LABELS_DOC)


def load_labeled_lines(
    train_file,
    test_file=None,
    valid_file=None,
    *,
    class_names=None,
    label_only_lines="error",
    text_transform=None,
    label_transform=None,
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
    split_punctuation=True,
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
        {labels}
        label_only_lines: `"error"` (default) refuses a line with a label and
            no text; `"skip"` leaves such lines out and counts them in the
            result's `skipped_lines` (CR's `custrev.all` and MPQA's
            `mpqa.all` have some).
        text_transform: optional callable `str -> str` applied to each text
            as read.
        label_transform: optional callable `str -> str` applied to each label
            as read: `lambda s: s.split(":")[0]` makes TREC's fine labels
            (`DESC:manner`, raw files) coarse (`DESC`).
        test_fraction: without `test_file`: the fraction of `train_file` held
            out for testing, in (0, 1).
        folds, fold: without `test_file`: test on fold `fold` (0-based) of
            `folds`, at most the number of examples.
        encoding, errors: how the files are decoded (`"latin-1"` for TREC
            and MR).
        max_tokens, sequence_length, batch_size, seed, validation_split,
        bucket_boundaries, drop_remainder, padding, truncating, lowercase,
        split_punctuation: as in `load_imdb` (`seed` also seeds the splits).
            The files usually come tokenized (TREC: `France ?`);
            `split_punctuation=True` (the default; it was False before)
            splits punctuation off in the files and in new raw text alike,
            so that `data.vectorizer(["... France?"])` finds `france`.

    Returns:
        A `TextClassificationData`.

    Example:

    >>> data = load_labeled_lines("mr/rt-polarity.all", folds=10, fold=0,
    ...                           encoding="latin-1")  # doctest: +SKIP
    """
    options = LoaderOptions.from_arguments(locals())
    _check_hooks(class_names, text_transform, label_transform)
    v.check_choice(label_only_lines, "label_only_lines", ("error", "skip"))
    folds = _check_test_split(test_file, test_fraction, folds, fold)
    _check_valid_file(valid_file, validation_split)
    read = functools.partial(read_labeled_texts, encoding=encoding, errors=errors,
                             label_only_lines=label_only_lines)
    files = {"train": train_file, "valid": valid_file, "test": test_file}
    parts = _read_parts(read, files, "lines", text_transform, label_transform)
    skipped = {name: part.skipped for name, part in parts.items() if part.skipped}
    splits, class_names = _splits(parts, class_names)
    if folds is not None:
        n = len(splits["train"][0])
        if folds > n:
            raise ValueError(f"folds must be at most the number of examples of "
                             f"{train_file!r} ({n}), got folds={folds}")
        splits["train"], splits["test"] = k_fold(*splits["train"], k=folds,
                                                 seed=seed)[fold]
    elif test_fraction is not None:
        splits["train"], splits["test"] = train_test_split(
            *splits["train"], test_fraction=test_fraction, seed=seed)
    return build_data(splits, class_names, options, skipped)


load_labeled_lines.__doc__ = load_labeled_lines.__doc__.replace("{labels}", _LABELS_DOC)


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
