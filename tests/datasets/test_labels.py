"""Issue 21, items 8-11 and 13 (data): the classic corpora as distributed.

Label-only lines (CR, MPQA), AG News's labels 1-4 and two text columns, one
meaning of `class_names` in every loader (TREC's raw `DESC:manner` labels),
raw text through the returned vectorizer, and the messages of `folds` and of
a negative label. Small files in `tmp_path` reproduce each defect; the real
files are read where it is cheap.
"""

import os
import warnings

import numpy as np
import pytest

from keras_sparse_rnn import datasets
from keras_sparse_rnn.datasets import load_csv
from keras_sparse_rnn.datasets import load_labeled_lines
from keras_sparse_rnn.datasets import read_csv
from keras_sparse_rnn.datasets import read_labeled_lines


def _write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return str(path)


def _labels(dataset):
    """The labels of a (not shuffled) split, in file order."""
    return np.concatenate([y.numpy() for _, y in dataset]).tolist()


# -- 8. label-only lines -----------------------------------------------------

def test_label_only_line_is_refused_naming_the_option(tmp_path):
    f = _write(tmp_path / "cr.all", "1 good phone\n0 \n0 bad battery\n1 nice\n")
    with pytest.raises(ValueError, match=(
            r"cr.all, line 2: expected '<label> <text>', got '0 ' \(a label without "
            r"text: pass label_only_lines='skip' to leave such lines out\)")):
        load_labeled_lines(f)


def test_label_only_lines_skipped_and_counted(tmp_path):
    train = _write(tmp_path / "train", "1 good phone\n0 \n0 bad battery\n1\n1 nice\n")
    test = _write(tmp_path / "test", "0 awful\n1 great\n")
    data = load_labeled_lines(train, test, label_only_lines="skip", batch_size=8)
    assert data.num_examples == {"train": 3, "test": 2}
    assert data.skipped_lines == {"train": 2}
    assert _labels(data.test) == [0, 1]
    assert load_labeled_lines(test, test).skipped_lines == {}
    with pytest.raises(ValueError, match=r"label_only_lines must be one of 'error', "
                                         r"'skip', got 'drop'"):
        load_labeled_lines(train, label_only_lines="drop")


@pytest.mark.parametrize("folder,name,lines,skipped", [
    ("cr", "custrev.all", 3775, 4), ("mpqa", "mpqa.all", 10606, 3)])
def test_cr_and_mpqa_as_distributed(data_root, folder, name, lines, skipped):
    path = os.path.join(data_root, folder, name)
    with pytest.raises(ValueError, match="label_only_lines='skip'"):
        datasets.readers.read_labeled_texts(path)
    part = datasets.readers.read_labeled_texts(path, label_only_lines="skip")
    assert (len(part.texts) + part.skipped, part.skipped) == (lines, skipped)


# -- 9. AG News: labels 1-4, two text columns, escapes -----------------------

# As the file writes them: a space for the "&" of a reference, "\\" a break.
AG_NEWS = ('"3","Fears for pension","It #39;s over for J amp;J."\n'
           '"4","Race is On","A second\\team of rocketeers, the  #36;10 million prize"\n'
           '"1","Talks end","Negotiators left."\n'
           '"2","Win","The team won."\n'
           '"3","Stocks","Shares fell."\n')


def test_labels_1_to_4_give_4_classes_without_class_names(tmp_path):
    f = _write(tmp_path / "ag.csv", AG_NEWS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every class has an example: no warning
        data = load_csv(f, f, batch_size=8)
    assert data.num_classes == 4 and data.class_names == ["1", "2", "3", "4"]
    assert _labels(data.test) == [2, 3, 0, 1, 2]


def test_a_class_without_example_warns(tmp_path):
    f = _write(tmp_path / "ag.csv", AG_NEWS)
    with pytest.warns(UserWarning, match=(
            r"1 of the 5 classes have no example in the training split: 4 \('5'\)")):
        data = load_csv(f, class_names=["1", "2", "3", "4", "5"])
    assert data.num_classes == 5
    f = _write(tmp_path / "lines", "0 a\n2 b\n0 c\n")
    with pytest.warns(UserWarning, match=r"1 of the 3 classes .*: 1 \('1'\)"):
        assert load_labeled_lines(f).num_classes == 3


def test_text_columns_joined_and_escapes_undone(tmp_path):
    f = _write(tmp_path / "ag.csv", AG_NEWS)
    texts, y = read_csv(f, text_column=[1, 2], class_names=["1", "2", "3", "4"])
    assert texts[2] == "Talks end Negotiators left." and y.tolist() == [2, 3, 0, 1, 2]
    assert datasets.unescape_ag_news(texts[0]) == "Fears for pension It's over for J&J."
    assert datasets.unescape_ag_news(texts[1]) == (
        "Race is On A second team of rocketeers, the $10 million prize")
    assert datasets.unescape_ag_news(
        'x #151; y\\\\z  quot;q quot; &lt;B&gt;') == 'x\u2014 y z "q" <B>'
    data = load_csv(f, text_column=[1, 2], text_transform=datasets.unescape_ag_news,
                    split_punctuation=False, max_tokens=None)
    assert {"negotiators", "it's", "j&j.", "second", "$10"} <= set(data.vocab)
    assert not any("#39" in w or "\\" in w for w in data.vocab)
    with pytest.raises(ValueError, match=r"text_column must not repeat a column, got \[1, 1\]"):
        read_csv(f, text_column=[1, 1])
    with pytest.raises(ValueError, match=r"label_column and text_column must differ, got 0"):
        load_csv(f, text_column=[1, 0])
    with pytest.raises(ValueError, match="text_transform must be None or a callable"):
        load_csv(f, text_transform="html")


def test_ag_news_as_distributed(data_root):
    data = load_csv(os.path.join(data_root, "ag_news", "test.csv"), text_column=[1, 2],
                    text_transform=datasets.unescape_ag_news, max_tokens=None,
                    sequence_length=8, batch_size=512)
    assert data.num_classes == 4 and data.class_names == ["1", "2", "3", "4"]
    assert data.num_examples == {"train": 7600}
    assert not any("#39" in w or "\\" in w or w == "quot" for w in data.vocab)
    # The description is read: a word only AG News's descriptions have.
    assert "rocketeers" in data.vocab


# -- 10. one meaning of class_names; string labels everywhere -----------------

TREC_RAW = ("DESC:manner How did serfdom develop in and then leave Russia ?\n"
            "ENTY:cremat What films featured the character Popeye Doyle ?\n"
            "HUM:ind Who killed Gandhi ?\n"
            "DESC:def What is a parsec ?\n")


def test_string_labels_in_labeled_lines_fine_and_coarse(tmp_path):
    f = _write(tmp_path / "TREC.train", TREC_RAW, "latin-1")
    fine = load_labeled_lines(f, f, encoding="latin-1")
    assert fine.class_names == ["DESC:def", "DESC:manner", "ENTY:cremat", "HUM:ind"]
    assert _labels(fine.test) == [1, 2, 3, 0]
    coarse = load_labeled_lines(f, f, encoding="latin-1",
                                label_transform=lambda s: s.split(":")[0])
    assert coarse.class_names == ["DESC", "ENTY", "HUM"]
    assert _labels(coarse.test) == [0, 1, 2, 0]
    # class_names: the labels as written, in class order (as in load_csv).
    with pytest.warns(UserWarning, match=r"3 \('ABBR'\)") as caught:
        named = load_labeled_lines(f, f, class_names=["HUM", "ENTY", "DESC", "ABBR"],
                                   label_transform=lambda s: s.split(":")[0])
    assert caught[0].filename == __file__  # the line of the call
    assert _labels(named.test) == [2, 1, 0, 2]
    with pytest.raises(ValueError, match=r"TREC.train, line 3: label 'HUM' is not one "
                                         r"of class_names \['DESC', 'ENTY'\]"):
        load_labeled_lines(f, class_names=["DESC", "ENTY"],
                           label_transform=lambda s: s.split(":")[0])
    texts, y = read_labeled_lines(f, class_names=["DESC:def", "DESC:manner",
                                                  "ENTY:cremat", "HUM:ind"])
    assert y.tolist() == [1, 2, 3, 0] and texts[2] == "Who killed Gandhi ?"


def test_class_names_mean_the_same_in_both_loaders(tmp_path):
    lines = _write(tmp_path / "lines", "pos good\nneg bad\nneg awful\n")
    table = _write(tmp_path / "table.csv", "pos,good\nneg,bad\nneg,awful\n")
    for data in (load_labeled_lines(lines, lines, class_names=["neg", "pos"]),
                 load_csv(table, table, class_names=["neg", "pos"])):
        assert data.class_names == ["neg", "pos"] and _labels(data.test) == [1, 0, 0]
    for data in (load_labeled_lines(lines, lines), load_csv(table, table)):
        assert data.class_names == ["neg", "pos"] and _labels(data.test) == [1, 0, 0]
    # Backward compatible: integer labels 0..n-1 named by class_names.
    lines = _write(tmp_path / "ints", "1 good\n0 bad\n")
    table = _write(tmp_path / "ints.csv", "1,good\n0,bad\n")
    for data in (load_labeled_lines(lines, lines, class_names=["neg", "pos"]),
                 load_csv(table, table, class_names=["neg", "pos"])):
        assert data.class_names == ["neg", "pos"] and _labels(data.test) == [1, 0]


def test_trec_raw_files_coarse_and_fine(data_root):
    folder = os.path.join(data_root, "trec", "raw")
    train, test = (os.path.join(folder, f"TREC.{s}") for s in ("train", "test"))
    coarse = load_labeled_lines(train, test, encoding="latin-1",
                                label_transform=lambda s: s.split(":")[0])
    assert coarse.class_names == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    assert coarse.num_examples == {"train": 5452, "test": 500}
    from keras_sparse_rnn.datasets import labels as labels_module

    ids, names = labels_module.class_ids(
        {"train": datasets.readers.read_labeled_texts(train, "latin-1")})
    assert len(names) == 50 and names[:2] == ["ABBR:abb", "ABBR:exp"]
    assert np.bincount(ids["train"]).min() > 0


# -- 11. raw text through the returned vectorizer ----------------------------

def test_vectorizer_maps_raw_text_to_the_trained_tokens(tmp_path):
    f = _write(tmp_path / "trec", "0 What is the capital of France ?\n"
                                  "1 Who wrote Hamlet ?\n")
    data = load_labeled_lines(f)
    raw = data.vectorizer(["What is the capital of France?"]).numpy()[0]
    tokenized = data.vectorizer(["What is the capital of France ?"]).numpy()[0]
    assert raw.tolist() == tokenized.tolist()
    words = [data.vocab[i] for i in raw if i]
    assert words == ["what", "is", "the", "capital", "of", "france", "?"]
    # Keeping the file's tokens stays possible, and says what it means.
    kept = load_labeled_lines(f, split_punctuation=False)
    assert kept.vectorizer(["France?"]).numpy()[0, 0] == 1  # out of vocabulary


# -- 13. messages ------------------------------------------------------------

def test_folds_larger_than_the_file_name_folds(tmp_path):
    f = _write(tmp_path / "three", "0 a\n1 b\n0 c\n")
    with pytest.raises(ValueError, match=(
            r"^folds must be at most the number of examples of '.*three' \(3\), "
            r"got folds=10$")):
        load_labeled_lines(f, folds=10, fold=0)


def test_negative_label_message(tmp_path):
    f = _write(tmp_path / "neg", "1 good\n-1 bad\n")
    with pytest.raises(ValueError, match=(
            r"neg, line 2: the label must be a non-negative integer, got -1$")):
        read_labeled_lines(f)
    c = _write(tmp_path / "neg.csv", "1,good\n-1,bad\n")
    with pytest.raises(ValueError, match=(
            r"neg.csv, line 2: the label must be a non-negative integer, got -1$")):
        read_csv(c)
    # The loaders infer the classes: -1 and 1 are two classes.
    assert load_labeled_lines(f).class_names == ["-1", "1"]
