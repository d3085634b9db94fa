import os
import time

import numpy as np

from keras_sparse_rnn.datasets import ptb


def test_counts_and_vocab():
    start = time.perf_counter()
    train, valid, test, vocab = ptb.load_data()
    assert time.perf_counter() - start < 30  # about 1 s here; generous for CI
    assert (train.shape, valid.shape, test.shape) == ((929589,), (73760,), (82430,))
    for ids in (train, valid, test):
        assert ids.dtype == np.int32 and ids.ndim == 1
        assert ids.min() >= 0 and ids.max() < 10000
    assert len(vocab) == 10000 == len(set(vocab))
    assert all(isinstance(w, str) for w in vocab)


def test_vocab_order_matches_tensorflow_reader():
    train, _, _, vocab = ptb.load_data()
    # The most frequent words, as the ids of TensorFlow's ptb/reader.py.
    assert vocab[:4] == ["the", "<unk>", "<eos>", "N"]
    # reader_test/tutorial: the training data starts with these ids.
    assert train[:5].tolist() == [9970, 9971, 9972, 9974, 9975]
    counts = np.bincount(train, minlength=len(vocab))
    # Descending count, ties broken by the word.
    keys = [(-counts[i], vocab[i]) for i in range(len(vocab))]
    assert keys == sorted(keys)


def test_ids_decode_to_the_file_tokens(data_root):
    _, valid, _, vocab = ptb.load_data()
    with open(os.path.join(data_root, "ptb", "ptb.valid.txt")) as f:
        expected = [w for line in f for w in line.split() + ["<eos>"]]
    assert [vocab[i] for i in valid] == expected


def test_explicit_path_and_memory_cache(data_root):
    a = ptb.load_data(path=os.path.join(data_root, "ptb"))
    start = time.perf_counter()
    b = ptb.load_data()
    assert time.perf_counter() - start < 1.0  # served from the memory cache
    for x, y in zip(a[:3], b[:3]):
        np.testing.assert_array_equal(x, y)
    assert a[3] == b[3]
    # Results are copies: changing one does not change the cache.
    b[0][:10] = 0
    b[3][0] = "changed"
    c = ptb.load_data()
    np.testing.assert_array_equal(c[0][:5], [9970, 9971, 9972, 9974, 9975])
    assert c[3][0] == "the"
