"""Seeded train/test splits and k folds, for corpora that come without a split
(MR, CR, SUBJ, MPQA: one file of `<label> <text>` lines, evaluated by 10-fold
cross-validation in the literature)."""

import numpy as np

from keras_sparse_rnn.validation import check_fraction, check_int


def _check(texts, labels, seed):
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(texts) != len(labels):
        raise ValueError(f"texts and labels must have one entry per example, got "
                         f"{len(texts)} texts and labels of shape {labels.shape}")
    if len(texts) < 2:
        raise ValueError(f"need at least 2 examples to split, got {len(texts)}")
    check_int(seed, "seed", minimum=0)
    return labels


def _fold_of(labels, k, seed, stratify):
    """Fold index of each example: a seeded permutation dealt round-robin
    (per class when `stratify`), so folds differ in size by at most one per
    class and keep the class shares."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), np.int64)
    groups = ([np.flatnonzero(labels == c) for c in np.unique(labels)]
              if stratify else [np.arange(len(labels))])
    offset = 0
    for members in groups:
        members = rng.permutation(members)
        fold[members] = (np.arange(len(members)) + offset) % k
        offset += len(members)  # the next class starts where this one ended
    return fold


def _take(texts, labels, index):
    index = np.sort(index)
    return [texts[i] for i in index], labels[index]


def k_fold(texts, labels, k=10, seed=0, stratify=True):
    """The `k` seeded `(train, test)` splits of k-fold cross-validation.

    Every example is in exactly one test fold; with `stratify` each fold
    keeps the class shares (to one example per class). The same seed gives
    the same folds.

    Args:
        texts: list of str.
        labels: 1-D int array-like, one per text.
        k: number of folds, 2 <= k <= number of examples.
        seed: int >= 0.
        stratify: deal each class over the folds separately.

    Returns:
        A list of `k` pairs `((train_texts, train_labels), (test_texts,
        test_labels))`, examples in their original order within each part.

    Example:

    >>> folds = k_fold([f"t{i}" for i in range(10)], [0, 1] * 5, k=5)
    >>> [len(test[0]) for _, test in folds]
    [2, 2, 2, 2, 2]
    """
    labels = _check(texts, labels, seed)
    # At most one fold per example.
    k = check_int(k, "k", minimum=2, maximum=len(texts))
    fold = _fold_of(labels, k, seed, stratify)
    return [(_take(texts, labels, np.flatnonzero(fold != i)),
             _take(texts, labels, np.flatnonzero(fold == i))) for i in range(k)]


def train_test_split(texts, labels, test_fraction=0.1, seed=0, stratify=True):
    """A seeded `(train, test)` split holding out `test_fraction` of the examples.

    With `stratify`, `round(test_fraction * n_c)` examples of each class `c`
    go to the test part.

    Returns:
        `((train_texts, train_labels), (test_texts, test_labels))`.
    """
    labels = _check(texts, labels, seed)
    test_fraction = check_fraction(test_fraction, "test_fraction", include_low=False)
    rng = np.random.default_rng(seed)
    groups = ([np.flatnonzero(labels == c) for c in np.unique(labels)]
              if stratify else [np.arange(len(labels))])
    test = []
    for members in groups:
        members = rng.permutation(members)
        test.extend(members[:int(round(test_fraction * len(members)))])
    test = np.asarray(test, np.int64)
    if len(test) == 0 or len(test) == len(texts):
        raise ValueError(f"test_fraction={test_fraction} of {len(texts)} examples "
                         f"leaves {len(test)} in the test part; use another fraction")
    train = np.setdiff1d(np.arange(len(texts)), test)
    return _take(texts, labels, train), _take(texts, labels, test)
