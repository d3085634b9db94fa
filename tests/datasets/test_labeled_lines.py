"""`<label> <text>` files (SST, TREC, MR, ...): the loader, seeded splits and
k folds for corpora without a split, and encoding options on every loader."""

import os

import numpy as np
import pytest

from keras_sparse_rnn import datasets
from keras_sparse_rnn.datasets import k_fold, load_labeled_lines, train_test_split

DATA = os.environ.get("KERAS_SPARSE_RNN_DATA")


def _corpus(tmp_path, n=40):
    lines = [f"{i % 2} {'good' if i % 2 else 'bad'} film number w{i}" for i in range(n)]
    path = tmp_path / "corpus.all"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_k_fold_covers_every_example_once_stratified_and_seeded():
    texts = [f"t{i}" for i in range(23)]
    labels = np.array([0] * 15 + [1] * 8)
    folds = k_fold(texts, labels, k=5, seed=3)
    tests = [t for _, (t, _) in folds]
    assert sorted(sum(tests, [])) == sorted(texts)
    assert [len(t) for t in tests] == [5, 5, 5, 4, 4]
    # Stratified: the 15 negatives 3 a fold, the 8 positives 2 or 1.
    assert [int((l == 0).sum()) for _, (_, l) in folds] == [3, 3, 3, 3, 3]
    assert sorted(int((l == 1).sum()) for _, (_, l) in folds) == [1, 1, 2, 2, 2]
    for (train, _), (test, test_labels) in folds:
        assert not set(train) & set(test) and len(train) + len(test) == 23
        assert [int(t[1:]) for t in test] == sorted(int(t[1:]) for t in test)
    again = k_fold(texts, labels, k=5, seed=3)
    assert all(a[1][0] == b[1][0] for a, b in zip(folds, again))
    assert any(a[1][0] != b[1][0] for a, b in zip(folds, k_fold(texts, labels, k=5, seed=4)))
    with pytest.raises(ValueError, match=r"k must be an int in \[2, 23\]"):
        k_fold(texts, labels, k=30)


def test_train_test_split_is_stratified_and_seeded():
    texts = [f"t{i}" for i in range(100)]
    labels = np.array([0] * 70 + [1] * 30)
    (train, train_labels), (test, test_labels) = train_test_split(
        texts, labels, test_fraction=0.2, seed=1)
    assert len(test) == 20 and (test_labels == 1).sum() == 6
    assert sorted(train + test) == sorted(texts)
    assert train_test_split(texts, labels, 0.2, seed=1)[1][0] == test
    with pytest.raises(ValueError, match=r"test_fraction must be in \(0, 1\), got 1.0"):
        train_test_split(texts, labels, 1.0)


def test_load_labeled_lines_with_folds_and_hold_out(tmp_path):
    path = _corpus(tmp_path)
    data = load_labeled_lines(str(path), folds=4, fold=1, batch_size=8,
                              sequence_length=6, seed=0)
    assert data.num_examples == {"train": 30, "test": 10}
    assert data.num_classes == 2 and data.class_names == ["0", "1"]
    # The vocabulary comes from the training folds only.
    test_words = set()
    for texts in k_fold([l.split(" ", 1)[1] for l in path.read_text().splitlines()],
                        [int(l[0]) for l in path.read_text().splitlines()],
                        k=4, seed=0)[1][1][0]:
        test_words.update(texts.split())
    only_in_test = {w for w in test_words if w.startswith("w")}
    assert only_in_test and not only_in_test & set(data.vocab)
    x, y = next(iter(data.train))
    assert x.shape == (8, 6) and set(np.asarray(y)) <= {0, 1}
    held = load_labeled_lines(str(path), test_fraction=0.25, class_names=["neg", "pos"],
                              validation_split=0.2, seed=2)
    assert held.num_examples == {"train": 24, "valid": 6, "test": 10}
    assert held.class_names == ["neg", "pos"]
    with pytest.raises(ValueError, match="give one of test_file, test_fraction and folds"):
        load_labeled_lines(str(path), test_fraction=0.1, folds=10, fold=0)
    with pytest.raises(ValueError, match="folds and fold go together"):
        load_labeled_lines(str(path), folds=10)
    with pytest.raises(ValueError, match=r"fold must be an int in \[0, 3\], got 4"):
        load_labeled_lines(str(path), folds=4, fold=4)


def test_every_loader_takes_encoding_and_errors(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes(b"1 caf\xe9 good\n0 bad film\n1 nice\n0 awful\n")
    with pytest.raises(ValueError, match=r"line 1: cannot be decoded as utf-8 .*errors='replace'"):
        load_labeled_lines(str(path), test_fraction=0.5)
    latin = load_labeled_lines(str(path), test_file=str(path), encoding="latin-1")
    assert "café" in latin.vocab and latin.num_examples == {"train": 4, "test": 4}
    replaced = load_labeled_lines(str(path), test_fraction=0.5, errors="replace", seed=0)
    assert replaced.num_examples["train"] + replaced.num_examples["test"] == 4
    csv_path = tmp_path / "d.csv"
    csv_path.write_bytes(b"1,caf\xe9\n0,bad\n")
    assert datasets.load_csv(str(csv_path), errors="replace").num_examples == {"train": 2}
    with pytest.raises(ValueError, match=r"errors='bogus' is not a decoding error handler"):
        datasets.load_csv(str(csv_path), errors="bogus")
    with pytest.raises(ValueError, match=r"encoding='klingon' is not a known text encoding"):
        load_labeled_lines(str(path), encoding="klingon")
    import inspect

    for loader in (datasets.load_imdb, datasets.load_sst2, datasets.load_sst5,
                   datasets.load_csv, datasets.load_labeled_lines):
        params = inspect.signature(loader).parameters
        assert params["encoding"].default == "utf-8", loader.__name__
        assert params["errors"].default == "strict", loader.__name__


def test_space_delimited_csv_is_refused_not_cut_to_one_word(tmp_path):
    path = tmp_path / "sst.txt"
    path.write_text("1 a fine movie\n0 a bad one\n")
    with pytest.raises(ValueError, match=r"line 1: 4 fields separated by ' ': the text "
                                         "column would keep one word.*load_labeled_lines"):
        datasets.read_csv(str(path), delimiter=" ")
    unquoted = tmp_path / "u.csv"
    unquoted.write_text("1,fine\n0,bad, really bad\n")
    with pytest.raises(ValueError, match=r"line 2: 3 fields separated by ',', but line 1 "
                                         "has 2: a text with unquoted delimiters"):
        datasets.read_csv(str(unquoted))


@pytest.mark.skipif(not DATA or not os.path.isdir(os.path.join(DATA or "", "mr")),
                    reason="needs the MR corpus in $KERAS_SPARSE_RNN_DATA/mr")
def test_movie_review_corpus_ten_folds():
    path = os.path.join(DATA, "mr", "rt-polarity.all")
    data = load_labeled_lines(path, folds=10, fold=0, encoding="latin-1")
    assert data.num_examples["train"] + data.num_examples["test"] == 10662
    assert abs(data.num_examples["test"] - 1066) <= 1
