import os

import numpy as np
import pytest
import tensorflow as tf

from keras_sparse_rnn.datasets import batchify
from keras_sparse_rnn.datasets import load_corpus
from keras_sparse_rnn.datasets import num_batches
from keras_sparse_rnn.datasets import ptb
from keras_sparse_rnn.datasets.text import whitespace_tokenize


def _write(folder, files):
    os.makedirs(folder, exist_ok=True)
    for name, text in files.items():
        mode = "wb" if isinstance(text, bytes) else "w"
        with open(os.path.join(folder, name), mode) as f:
            f.write(text)
    return str(folder)


# ---------------------------------------------------------------- WikiText-2


def test_wikitext2_counts_keep_empty_lines():
    corpus = load_corpus(name="wikitext-2")
    assert len(corpus.vocab) == 33278
    assert (len(corpus.train), len(corpus.valid), len(corpus.test)) == (
        2088628, 217646, 245569,
    )
    assert corpus.vocab[corpus.unk_id] == "<unk>" and not corpus.unk_added
    assert corpus.vocab[corpus.eos_id] == "<eos>"
    assert corpus.num_oov == {"valid": 0, "test": 0}
    assert corpus.train.dtype == np.int32
    assert corpus.files["train"].endswith("wiki.train.tokens")


def test_wikitext2_skip_empty_lines(data_root):
    corpus = load_corpus(os.path.join(data_root, "wikitext-2"), skip_empty_lines=True)
    assert (len(corpus.train), len(corpus.valid), len(corpus.test)) == (
        2075677, 216347, 244102,
    )
    assert len(corpus.vocab) == 33278
    # No two <eos> in a row once blank lines are dropped.
    eos = corpus.valid == corpus.eos_id
    assert not np.any(eos[1:] & eos[:-1])


def test_ptb_through_load_corpus_equals_load_data(data_root):
    corpus = load_corpus(data_root, name="ptb", prefix="ptb")
    train, valid, test, vocab = ptb.load_data()
    np.testing.assert_array_equal(corpus.train, train)
    np.testing.assert_array_equal(corpus.test, test)
    assert corpus.vocab == vocab


# ---------------------------------------------------------------- small corpora


def test_unk_is_added_when_missing_and_said(tmp_path):
    folder = _write(tmp_path / "c", {
        "train.txt": "b a b\nc b\n",
        "valid.txt": "a zz\n",
        "test.txt": "yy b\n",
    })
    with pytest.warns(UserWarning, match=r"has no '<unk>' token: it was added .* id 4"):
        corpus = load_corpus(folder)
    # counts: b 3, <eos> 2, a 1, c 1 -> ties by word.
    assert corpus.vocab == ["b", "<eos>", "a", "c", "<unk>"]
    assert corpus.unk_added and corpus.unk_id == 4
    assert corpus.train.tolist() == [0, 2, 0, 1, 3, 0, 1]
    assert corpus.valid.tolist() == [2, 4, 1]
    assert corpus.test.tolist() == [4, 0, 1]
    assert corpus.num_oov == {"valid": 1, "test": 1}


def test_existing_unk_is_used(tmp_path):
    folder = _write(tmp_path / "c", {
        "x.train.tokens": "<unk> a\n",
        "x.dev.tokens": "new a\n",
        "x.test.tokens": "a\n",
    })
    corpus = load_corpus(folder)
    assert not corpus.unk_added
    assert corpus.valid.tolist() == [corpus.unk_id, corpus.vocab.index("a"), corpus.eos_id]


def test_file_name_styles_and_prefix(tmp_path):
    files = {f"{p}.{s}.txt": "a <unk>\n" for p in ("one", "two") for s in ("train", "valid", "test")}
    folder = _write(tmp_path / "c", files)
    with pytest.raises(ValueError, match="several candidate files.*prefix="):
        load_corpus(folder)
    corpus = load_corpus(folder, prefix="two")
    assert corpus.files["valid"].endswith("two.valid.txt")


def test_bare_split_file_names(tmp_path):
    folder = _write(tmp_path / "bare", {"train": "a b a\n", "dev": "b c\n",
                                        "test": "a\n"})
    corpus = load_corpus(folder)
    assert corpus.vocab[:3] == ["a", "<eos>", "b"]
    assert corpus.files["valid"].endswith("dev")
    # "c" is not in train: <unk>, appended after the training words.
    assert corpus.valid.tolist() == [2, corpus.unk_id, 1]


def test_missing_split_file(tmp_path):
    folder = _write(tmp_path / "c", {"train.txt": "a\n", "valid.txt": "a\n"})
    with pytest.raises(FileNotFoundError, match=r"no test file"):
        load_corpus(folder)


@pytest.mark.parametrize("content", ["", "\n  \n\t\n"])
def test_empty_corpus_file_names_the_file(tmp_path, content):
    folder = _write(tmp_path / "c", {
        "train.txt": "a b\n", "valid.txt": content, "test.txt": "a\n",
    })
    with pytest.raises(ValueError, match=r"corpus file .*valid\.txt is empty"):
        load_corpus(folder)


def test_not_utf8_names_file_and_line(tmp_path):
    folder = _write(tmp_path / "c", {
        "train.txt": b"a b\nc \xff d\n", "valid.txt": "a\n", "test.txt": "a\n",
    })
    with pytest.raises(ValueError, match=r"train\.txt, line 2: not valid UTF-8"):
        load_corpus(folder)


def test_load_corpus_arguments(tmp_path):
    with pytest.raises(ValueError, match="path= .* or name="):
        load_corpus()
    with pytest.raises(ValueError, match="skip_empty_lines must be True or False, got 1"):
        load_corpus(tmp_path, skip_empty_lines=1)
    with pytest.raises(ValueError, match="eos_token must be a single token"):
        load_corpus(tmp_path, eos_token="<e o s>")
    with pytest.raises(FileNotFoundError, match="not an existing folder"):
        load_corpus(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="KERAS_SPARSE_RNN_DATA"):
        load_corpus(name="no-such-corpus")


def test_whitespace_tokenize_equals_str_split():
    # TF Text's WhitespaceTokenizer alone splits U+00A0 etc. inside UTF-8
    # characters; the wrapper must give exactly str.split().
    seps = [" ", "\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1f", "\x85", "\xa0",
            "\u1680", "\u2003", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"]
    text = "é" + "x".join(seps) + "x\u200bz caf\u00e9"
    got = [t.decode("utf-8") for t in whitespace_tokenize([text]).flat_values.numpy()]
    assert got == text.split()


# ---------------------------------------------------------------- batchify


def test_batchify_exact_values():
    ds = batchify(np.arange(23), batch_size=2, bptt=3)
    batches = [(x.numpy().tolist(), y.numpy().tolist()) for x, y in ds]
    assert num_batches(23, 2, 3) == 3 == len(batches) == int(ds.cardinality())
    assert batches[0] == ([[0, 1, 2], [11, 12, 13]], [[1, 2, 3], [12, 13, 14]])
    assert batches[1] == ([[3, 4, 5], [14, 15, 16]], [[4, 5, 6], [15, 16, 17]])
    assert batches[2] == ([[6, 7, 8], [17, 18, 19]], [[7, 8, 9], [18, 19, 20]])
    spec = ds.element_spec
    assert spec[0].shape == (2, 3) and spec[0].dtype == tf.int32
    assert spec[1].shape == (2, 3) and spec[1].dtype == tf.int32


def test_batchify_exact_fit_drops_nothing_needed():
    # 2 streams of 7: windows of 3 need 3 targets ahead, so 2 batches.
    ds = batchify(list(range(14)), 2, 3)
    assert num_batches(14, 2, 3) == 2 == len(list(ds))
    assert num_batches(13, 2, 3) == 1
    assert num_batches(0, 4, 5) == 0


def test_batchify_ptb_streams_are_contiguous():
    train = ptb.load_data()[0]
    ds = batchify(train, batch_size=20, bptt=35)
    assert int(ds.cardinality()) == num_batches(len(train), 20, 35) == 1327
    batch_len = len(train) // 20
    (x0, y0), (x1, _) = list(ds.take(2))
    np.testing.assert_array_equal(x0.numpy()[:, 1:], y0.numpy()[:, :-1])
    np.testing.assert_array_equal(x1.numpy()[:, 0], y0.numpy()[:, -1])
    np.testing.assert_array_equal(x0.numpy()[:, 0], train[np.arange(20) * batch_len])


def test_batchify_accepts_tensors_and_lists():
    a = [x.numpy() for x, _ in batchify(tf.range(23), 2, 3)]
    b = [x.numpy() for x, _ in batchify(list(range(23)), 2, 3)]
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=0), "batch_size must be a positive int, got 0"),
    (dict(batch_size=2.0), "batch_size must be a positive int, got 2.0 of type float"),
    (dict(batch_size=True), "batch_size must be a positive int, got True"),
    (dict(bptt=-1), "bptt must be a positive int, got -1"),
    (dict(ids=np.zeros((2, 5), int)), r"ids must be a 1-D array .* shape \(2, 5\)"),
    (dict(ids=np.arange(23.0)), "ids must be a 1-D array .* dtype float64"),
    (dict(ids=np.array([1, -2, 3] * 10)), r"got values in \[-2, 3\]"),
    (dict(ids=np.arange(7)), "ids has 7 tokens, too few .* at least 8 are needed"),
    (dict(ids="abc"), "ids must be a 1-D array"),
])
def test_batchify_errors(kwargs, message):
    args = dict(ids=np.arange(23), batch_size=2, bptt=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        batchify(**args)


def test_num_batches_errors():
    with pytest.raises(ValueError, match="n_tokens must be a non-negative int, got -1"):
        num_batches(-1, 2, 3)
    with pytest.raises(ValueError, match="bptt must be a positive int, got 0"):
        num_batches(10, 2, 0)
