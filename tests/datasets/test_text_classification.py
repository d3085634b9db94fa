import lzma
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_sparse_rnn.datasets import TextVectorizer
from keras_sparse_rnn.datasets import build_vocabulary
from keras_sparse_rnn.datasets import load_csv
from keras_sparse_rnn.datasets import load_imdb
from keras_sparse_rnn.datasets import load_sst2
from keras_sparse_rnn.datasets import load_sst5
from keras_sparse_rnn.datasets import make_dataset
from keras_sparse_rnn.datasets import read_csv
from keras_sparse_rnn.datasets import read_imdb
from keras_sparse_rnn.datasets import read_jsonl_xz
from keras_sparse_rnn.datasets import read_labeled_lines
from keras_sparse_rnn.datasets import read_sst
from keras_sparse_rnn.datasets import standardize


# ---------------------------------------------------------------- IMDB
# One read-only pass and one full load, shared by the tests of this module.


@pytest.fixture(scope="module")
def imdb_splits():
    return read_imdb()


@pytest.fixture(scope="module")
def imdb_data():
    return load_imdb(sequence_length=120, batch_size=64)


def test_imdb_counts(imdb_splits):
    for split in ("train", "test"):
        texts, labels = imdb_splits[split]
        assert len(texts) == len(labels) == 25000
        assert labels.dtype == np.int32
        assert int(labels.sum()) == 12500 and set(labels.tolist()) == {0, 1}
    assert "<br />" in imdb_splits["train"][0][0] + "".join(imdb_splits["train"][0][:50])


def test_imdb_loader(imdb_data):
    data = imdb_data
    assert data.num_examples == {"train": 20000, "valid": 5000, "test": 25000}
    assert data.num_classes == 2 and data.class_names == ["neg", "pos"]
    assert len(data.vocab) == 20000 == data.vocab_size
    assert data.vocab[:2] == ["", "[UNK]"] and data.vocab[2] == "the"
    # <br /> is removed before tokenizing, so no trace of it in the vocabulary.
    assert "br" not in data.vocab and "<br" not in data.vocab
    for ds in (data.train, data.valid, data.test):
        x_spec, y_spec = ds.element_spec
        assert x_spec.shape.as_list() == [None, 120] and x_spec.dtype == tf.int32
        assert y_spec.shape.as_list() == [None] and y_spec.dtype == tf.int32
    x, y = next(iter(data.train))
    assert x.shape == (64, 120) and y.shape == (64,)
    assert 0 < int(tf.reduce_sum(y)) < 64  # shuffled: both classes in a batch
    assert int(tf.reduce_max(x)) < 20000


def test_imdb_pipeline_on_a_slice(imdb_splits, imdb_data):
    texts, labels = imdb_splits["test"]
    texts, labels = texts[:100], labels[:100]
    ds = make_dataset(texts, labels, imdb_data.vectorizer, batch_size=100)
    x, y = next(iter(ds))
    np.testing.assert_array_equal(y.numpy(), labels)
    # Same ids as the loader's (unshuffled) test split.
    x_test, _ = next(iter(imdb_data.test))
    np.testing.assert_array_equal(x.numpy()[:64], x_test.numpy())
    # Row 0, decoded, is the beginning of the standardized review.
    words = standardize([texts[0]]).numpy()[0].decode().split()[:120]
    vocab = imdb_data.vocab
    expected = [vocab.index(w) if w in vocab else 1 for w in words]
    expected += [0] * (120 - len(expected))
    assert x.numpy()[0].tolist() == expected


def test_vocabulary_comes_from_train_only(tmp_path):
    train = tmp_path / "train.csv"
    test = tmp_path / "test.csv"
    train.write_text("0,good film\n1,bad film\n")
    test.write_text("0,unseen film\n")
    data = load_csv(str(train), str(test), max_tokens=10, sequence_length=3)
    assert data.vocab == ["", "[UNK]", "film", "bad", "good"]
    x, _ = next(iter(data.test))
    assert x.numpy().tolist() == [[1, 2, 0]]


# ---------------------------------------------------------------- processing


def test_standardize():
    out = standardize(["Great FILM.<br /><br />Loved it!<BR>Ça va", "a<br/>b"]).numpy()
    assert out[0].decode().split() == ["great", "film", ".", "loved", "it", "!", "ça", "va"]
    assert out[1].decode().split() == ["a", "b"]
    raw = standardize(["Good.<br />"], lowercase=False, strip_html=False,
                      split_punctuation=False).numpy()[0]
    assert raw == b"Good.<br />"


def test_known_sentence_known_ids():
    vocab = build_vocabulary(
        ["The cat sat on the mat.", "the dog sat", "A cat!"], max_tokens=6
    )
    # counts: the 3, cat 2, sat 2, . / ! / a / dog / mat / on 1
    assert vocab == ["", "[UNK]", "the", "cat", "sat", "!"]
    vec = TextVectorizer(vocab, sequence_length=8)
    ids = vec(["The cat sat on a mat!", "cat"]).numpy()
    assert ids.dtype == np.int32
    assert ids.tolist() == [[2, 3, 4, 1, 1, 1, 5, 0], [3, 0, 0, 0, 0, 0, 0, 0]]


def test_padding_and_truncation_sides():
    vocab = ["", "[UNK]", "a", "b", "c", "d", "e"]
    texts = ["a b c d e", "a", ""]
    post = TextVectorizer(vocab, 3)(texts).numpy().tolist()
    assert post == [[2, 3, 4], [2, 0, 0], [0, 0, 0]]
    pre = TextVectorizer(vocab, 3, padding="pre", truncating="pre")(texts).numpy().tolist()
    assert pre == [[4, 5, 6], [0, 0, 2], [0, 0, 0]]


def test_max_tokens_counts_reserved_ids():
    vocab = build_vocabulary(["x y y z z z"], max_tokens=3)
    assert vocab == ["", "[UNK]", "z"]
    assert len(build_vocabulary(["x y y z z z"], max_tokens=None)) == 5


# ---------------------------------------------------------------- SST


def test_sst_counts():
    sst = read_sst()
    assert {k: len(v[0]) for k, v in sst.items()} == {"train": 6920, "valid": 872, "test": 1821}
    assert {k: int(v[1].sum()) for k, v in sst.items()} == {"train": 3610, "valid": 444, "test": 909}
    fine = read_sst(fine_grained=True)
    assert {k: len(v[0]) for k, v in fine.items()} == {"train": 8544, "valid": 1101, "test": 2210}
    assert np.bincount(fine["train"][1]).tolist() == [1092, 2218, 1624, 2322, 1288]


def test_sst2_loader_and_seeds():
    data = load_sst2(batch_size=16)
    assert data.num_examples == {"train": 6920, "valid": 872, "test": 1821}
    assert data.num_classes == 2 and data.sequence_length == 64
    # Already tokenized text: "n't" stays one token.
    assert "n't" in data.vocab

    def first_batches(d, n=3):
        return [x.numpy() for x, _ in d.train.take(n)]

    same = load_sst2(batch_size=16)
    other = load_sst2(batch_size=16, seed=1)
    a, b, c = first_batches(data), first_batches(same), first_batches(other)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    # valid and test keep the file order and are not shuffled.
    texts, labels = read_sst()["valid"]
    y = np.concatenate([y.numpy() for _, y in data.valid])
    np.testing.assert_array_equal(y, labels)


def test_sst5_loader():
    data = load_sst5(batch_size=64)
    assert data.num_classes == 5 and len(data.class_names) == 5
    assert data.num_examples == {"train": 8544, "valid": 1101, "test": 2210}


def test_bucketing_and_static_batches():
    data = load_sst2(batch_size=8, bucket_boundaries=[8, 16, 32], drop_remainder=True)
    assert data.train.element_spec[0].shape.as_list() == [8, None]
    lengths = set()
    for x, y in data.valid:
        assert x.shape[0] == 8 and y.shape == (8,)
        lengths.add(x.shape[1])
        # Padding is 0, at the end, and every row has a token.
        x = x.numpy()
        assert np.all(x[:, 0] > 0)
        nonzero = x > 0
        assert np.all(nonzero[:, :-1] | ~nonzero[:, 1:])
    assert len(lengths) > 1 and max(lengths) <= 64
    fixed = load_sst2(batch_size=8, drop_remainder=True)
    assert fixed.train.element_spec[0].shape.as_list() == [8, 64]


def test_xla_model_trains_on_the_pipeline():
    # The lookup happens in tf.data, so the model itself stays jit-compilable.
    vocab = build_vocabulary(["good film", "bad film", "good", "bad"])
    vec = TextVectorizer(vocab, sequence_length=4)
    ds = make_dataset(["good film", "bad film"] * 8, [1, 0] * 8, vec, batch_size=4,
                      shuffle=True, drop_remainder=True)
    model = keras.Sequential([
        keras.Input((4,), dtype="int32"),
        keras.layers.Embedding(len(vocab), 4),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(1),
    ])
    model.compile("sgd", keras.losses.BinaryCrossentropy(from_logits=True),
                  jit_compile=True)
    model.fit(ds, epochs=1, verbose=0, shuffle=False)
    assert model.jit_compile is True


# ---------------------------------------------------------------- CSV / TSV


def test_glue_sst2_tsv(data_root):
    folder = os.path.join(data_root, "sst2-glue")
    texts, labels = read_csv(os.path.join(folder, "train.tsv"), header=True)
    assert len(texts) == 67349 and not any("\r" in t for t in texts[:100])
    data = load_csv(
        os.path.join(folder, "train.tsv"),
        os.path.join(folder, "test.tsv"),
        os.path.join(folder, "dev.tsv"),
        header=True,
        max_tokens=5000,
        sequence_length=32,
    )
    assert data.num_examples == {"train": 67349, "valid": 872, "test": 1821}
    assert data.num_classes == 2 and data.class_names == ["0", "1"]


def test_csv_class_names_and_column_names(tmp_path, data_root):
    texts, labels = read_csv(os.path.join(data_root, "ag_news", "test.csv"),
                             text_column=2, class_names=["1", "2", "3", "4"])
    assert len(texts) == 7600 and np.bincount(labels).tolist() == [1900] * 4
    f = tmp_path / "x.csv"
    f.write_text('text,label\n"hello, world",pos\n\nbye,neg\n')
    texts, labels = read_csv(str(f), header=True, label_column="label",
                             text_column="text", class_names=["neg", "pos"])
    assert texts == ["hello, world", "bye"] and labels.tolist() == [1, 0]


def test_load_csv_validation_split(tmp_path):
    f = tmp_path / "d.tsv"
    f.write_text("".join(f"{i % 3}\tword{i} common\n" for i in range(50)))
    data = load_csv(str(f), validation_split=0.2, batch_size=5, seed=3)
    assert data.num_examples == {"train": 40, "valid": 10}
    assert data.test is None and data.num_classes == 3
    with pytest.raises(ValueError, match="pass valid_file or validation_split"):
        load_csv(str(f), valid_file=str(f), validation_split=0.1)


# ---------------------------------------------------------------- errors


def test_malformed_label_line_names_file_and_line(tmp_path):
    f = tmp_path / "stsa.binary.train"
    f.write_text("1 good movie\n0 bad movie\nx what\n")
    with pytest.raises(ValueError, match=rf"{f}, line 3: the label must be an integer, got 'x'"):
        read_labeled_lines(str(f), num_classes=2)
    f.write_text("1 good movie\n\n")
    with pytest.raises(ValueError, match=rf"{f}, line 2: expected '<label> <text>'"):
        read_labeled_lines(str(f))
    f.write_text("1 good\n2 too positive\n")
    with pytest.raises(ValueError, match=r"line 2: the label must be in \[0, 2\), got 2"):
        read_labeled_lines(str(f), num_classes=2)
    f.write_bytes(b"1 good\n0 caf\xe9\n")
    with pytest.raises(ValueError, match=r"line 2: cannot be decoded as utf-8"):
        read_labeled_lines(str(f))
    assert read_labeled_lines(str(f), encoding="latin-1")[0][1] == "café"


def test_malformed_sst_folder(tmp_path):
    for split in ("train", "dev", "test"):
        (tmp_path / f"stsa.binary.{split}").write_text("1 fine\n")
    (tmp_path / "stsa.binary.dev").write_text("1 fine\n0\n")
    with pytest.raises(ValueError, match=r"stsa\.binary\.dev, line 2"):
        load_sst2(path=str(tmp_path))


def test_malformed_jsonl_names_file_and_line(tmp_path):
    f = tmp_path / "train.jsonl.xz"
    with lzma.open(f, "wt", encoding="utf-8") as out:
        out.write('{"text": "fine", "label": 1}\n{"text": "broken", "label": 1\n')
    with pytest.raises(ValueError, match=rf"{f}, line 2: invalid JSON"):
        read_jsonl_xz(str(f))
    with lzma.open(f, "wt", encoding="utf-8") as out:
        out.write('{"text": "fine", "label": 1}\n{"text": "no label"}\n')
    with pytest.raises(ValueError, match=r"line 2: no 'label' field"):
        read_jsonl_xz(str(f))
    with lzma.open(f, "wt", encoding="utf-8") as out:
        out.write('{"text": "fine", "label": 3}\n')
    with pytest.raises(ValueError, match=r"line 1: the label must be in \[0, 2\), got 3"):
        read_jsonl_xz(str(f), num_classes=2)
    f.write_bytes(b"not xz at all")
    with pytest.raises(ValueError, match="is not a valid utf-8 .xz file"):
        read_jsonl_xz(str(f))


def test_malformed_csv_names_file_and_line(tmp_path):
    f = tmp_path / "d.tsv"
    f.write_text("label\tsentence\n1\tok\n0 missing tab\n")
    with pytest.raises(ValueError, match=rf"{f}, line 3: expected at least 2 columns"):
        read_csv(str(f), header=True)
    f.write_text("1\tok\nneutral\tmeh\n")
    with pytest.raises(ValueError, match=r"line 2: the label must be an integer, got 'neutral'"):
        read_csv(str(f))
    with pytest.raises(ValueError, match=r"line 2: label 'neutral' is not one of class_names"):
        read_csv(str(f), class_names=["0", "1"])
    with pytest.raises(ValueError, match="may be a column name only with header=True"):
        read_csv(str(f), label_column="label")
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_csv(str(tmp_path / "missing.csv"))


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=0), "batch_size must be a positive int, got 0"),
    (dict(max_tokens=2), r"max_tokens must be an int >= 3 or None, got 2"),
    (dict(sequence_length=-5), "sequence_length must be a positive int, got -5"),
    (dict(seed="a"), "seed must be an int, got 'a'"),
    (dict(padding="middle"), "padding must be one of 'post', 'pre', got 'middle'"),
    (dict(truncating=None), "truncating must be one of 'post', 'pre', got None"),
    (dict(bucket_boundaries=[10, 5]), "bucket_boundaries must be strictly increasing"),
    (dict(bucket_boundaries=[10, 100]), "not above sequence_length=64"),
    (dict(split_punctuation="yes"), "split_punctuation must be True or False, got 'yes'"),
])
def test_loader_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_sst2(**kwargs)


def test_validation_split_errors(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("0,a\n1,b\n")
    with pytest.raises(ValueError, match=r"validation_split must be in \[0, 1\), got 1.0"):
        load_csv(str(f), validation_split=1.0)
    with pytest.raises(ValueError, match="gives 0 validation examples"):
        load_csv(str(f), validation_split=0.1)


def test_vectorizer_and_dataset_argument_errors():
    with pytest.raises(ValueError, match="vocab must start with the padding token"):
        TextVectorizer(["a", "b"], 4)
    vec = TextVectorizer(["", "[UNK]", "a"], 4)
    with pytest.raises(ValueError, match=r"labels must be a 1-D array with one label per text \(2\)"):
        make_dataset(["a", "b"], [0], vec)
    with pytest.raises(ValueError, match="texts must be a list of str, got str"):
        make_dataset("a b", [0], vec)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\), got values in \[0, 5\]"):
        make_dataset(["a", "b"], [0, 5], vec, num_classes=2)
    with pytest.raises(ValueError, match="needs padding='post'"):
        make_dataset(["a"], [0], TextVectorizer(["", "[UNK]"], 4, padding="pre"),
                     bucket_boundaries=[2])
