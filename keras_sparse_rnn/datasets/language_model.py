"""Word-level language-model corpora (PTB, WikiText, ...) and BPTT batching.

A corpus is a folder with three token files, one sentence (or paragraph) a
line, already tokenized with spaces:

* `ptb.train.txt`, `ptb.valid.txt`, `ptb.test.txt` (any `<prefix>.<split>.txt`),
* `wiki.train.tokens`, `wiki.valid.tokens`, `wiki.test.tokens`
  (any `<prefix>.<split>.tokens`),
* or `train.txt`, `valid.txt`, `test.txt` (`.tokens` also accepted).

`dev` is accepted in place of `valid`.

Tokenization is that of Zaremba et al. (2014) and of the PyTorch
`word_language_model` example: every line becomes `line.split() + ["<eos>"]`.
The splitting is done by `tensorflow_text.WhitespaceTokenizer` (after mapping
the non-ASCII whitespace it mishandles to spaces, see `text.py`, so the tokens
are exactly those of Python's `str.split()`). The vocabulary is built from the
training split only and sorted by descending count, ties by word (as
TensorFlow's old `models/rnn/ptb/reader.py`), so ids are reproducible.

Empty lines: by default each line gives one `<eos>`, blank lines included.
This is the convention of the published WikiText-2 token counts
(2,088,628 / 217,646 / 245,569, the counts of Merity et al. 2016 and of the
PyTorch example, whose `data.py` adds `<eos>` to every line). With
`skip_empty_lines=True` blank lines (WikiText has one around each heading) are
dropped: 2,075,677 / 216,347 / 244,102 tokens for WikiText-2. PTB has no blank
lines, so both give 929,589 / 73,760 / 82,430 tokens.
"""

import dataclasses
import os
import re
import warnings

import numpy as np
import tensorflow as tf

from keras_sparse_rnn.datasets import sources
from keras_sparse_rnn.datasets.text import whitespace_tokenize
from keras_sparse_rnn import validation as v

_SPLITS = ("train", "valid", "test")
_SPLIT_ALIASES = {"train": ("train",), "valid": ("valid", "dev"), "test": ("test",)}
_FILE_RE = re.compile(
    r"^(?:(?P<prefix>.+)\.)?(?P<split>train|valid|dev|test)(?:\.(?:txt|tokens))?$"
)

# In-memory cache of loaded corpora, keyed by the files (path, size, mtime)
# and the options: a second load of the same corpus is free.
_CACHE = {}


@dataclasses.dataclass
class Corpus:
    """A tokenized language-model corpus.

    Attributes:
        train: 1-D `np.int32` array of token ids of the training split.
        valid: 1-D `np.int32` array of the validation split.
        test: 1-D `np.int32` array of the test split.
        vocab: list of words, `vocab[i]` is the word of id `i`.
        unk_id: id of the unknown-word token (`vocab[unk_id] == unk_token`).
        eos_id: id of the end-of-sentence token.
        unk_added: True when the training split had no `unk_token` and it
            was appended at the end of the vocabulary.
        num_oov: dict, for `"valid"` and `"test"`, of how many tokens were not
            in the vocabulary and were mapped to `unk_id`.
        files: dict from split name to the file read.
    """

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    vocab: list
    unk_id: int
    eos_id: int
    unk_added: bool
    num_oov: dict
    files: dict

    @property
    def vocab_size(self):
        """Number of words in the vocabulary."""
        return len(self.vocab)


def read_lines(filename):
    """Read a UTF-8 text file into a list of lines without line endings.

    Lines end at `\\n`, `\\r\\n` or `\\r` (as Python's text mode); a final
    line ending does not start an extra empty line.

    Raises:
        ValueError: the file is not valid UTF-8 (the message gives the line).
    """
    with open(filename, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ValueError(
            f"{filename}, line {line}: not valid UTF-8 ({e.reason} at byte "
            f"{e.start})"
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _tokenize_file(filename, eos_token, skip_empty_lines):
    """Flat `tf.string` tensor of the tokens of a file, `<eos>` after lines."""
    lines = read_lines(filename)
    tokens = whitespace_tokenize(tf.constant(lines, dtype=tf.string))
    if skip_empty_lines and lines:
        tokens = tf.ragged.boolean_mask(tokens, tokens.row_lengths() > 0)
    if int(tf.size(tokens.flat_values)) == 0:
        raise ValueError(
            f"The corpus file {filename} is empty: it has no tokens "
            f"({len(lines)} lines)"
        )
    n_lines = int(tokens.nrows())
    eos = tf.RaggedTensor.from_tensor(tf.fill([n_lines, 1], eos_token))
    return tf.concat([tokens, eos], axis=1).flat_values


def _vocab_and_ids(tokens):
    """Vocabulary sorted by (-count, word) and the ids of `tokens`."""
    words, index, counts = tf.unique_with_counts(tokens)
    words = words.numpy()
    counts = counts.numpy()
    # Sort by descending count, then by word (bytes order == code point order
    # for UTF-8, so this equals sorting the decoded str).
    order = sorted(range(len(words)), key=lambda i: (-counts[i], words[i]))
    rank = np.empty(len(words), dtype=np.int32)
    rank[np.asarray(order, dtype=np.int64)] = np.arange(len(words), dtype=np.int32)
    vocab = [words[i].decode("utf-8") for i in order]
    ids = rank[index.numpy()]
    return vocab, ids


def _lookup(tokens, vocab, default):
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(vocab, dtype=tf.string),
            tf.range(len(vocab), dtype=tf.int64),
        ),
        default_value=-1,
    )
    ids = table.lookup(tokens).numpy()
    oov = ids < 0
    ids[oov] = default
    return ids.astype(np.int32), int(oov.sum())


def _file_key(filename):
    st = os.stat(filename)
    return (os.path.abspath(filename), st.st_size, st.st_mtime_ns)


def load_files(files, *, skip_empty_lines=False, eos_token="<eos>", unk_token="<unk>"):
    """Tokenize and number the three files of a corpus.

    Args:
        files: dict with keys `"train"`, `"valid"`, `"test"` and file paths as
            values.
        skip_empty_lines: drop blank lines instead of giving them an `<eos>`.
        eos_token: token appended to every line.
        unk_token: token of unknown words (see `load_corpus`).

    Returns:
        A `Corpus`.
    """
    key = (
        tuple(_file_key(files[s]) for s in _SPLITS),
        skip_empty_lines,
        eos_token,
        unk_token,
    )
    if key not in _CACHE:
        _CACHE[key] = _load_files_uncached(files, skip_empty_lines, eos_token, unk_token)
    c = _CACHE[key]
    return dataclasses.replace(
        c,
        train=c.train.copy(),
        valid=c.valid.copy(),
        test=c.test.copy(),
        vocab=list(c.vocab),
        num_oov=dict(c.num_oov),
        files=dict(c.files),
    )


def _load_files_uncached(files, skip_empty_lines, eos_token, unk_token):
    tokens = {
        s: _tokenize_file(files[s], eos_token, skip_empty_lines) for s in _SPLITS
    }
    vocab, train = _vocab_and_ids(tokens["train"])
    unk_added = unk_token not in vocab
    if unk_added:
        vocab.append(unk_token)
    unk_id = vocab.index(unk_token)
    eos_id = vocab.index(eos_token)
    ids = {"train": train}
    num_oov = {}
    for s in ("valid", "test"):
        ids[s], num_oov[s] = _lookup(tokens[s], vocab, unk_id)
    if unk_added:
        warnings.warn(
            f"The training file {files['train']} has no {unk_token!r} token: "
            f"it was added to the vocabulary with id {unk_id}; "
            f"{num_oov['valid']} validation and {num_oov['test']} test tokens "
            "not in the vocabulary were mapped to it.",
            stacklevel=3,
        )
    return Corpus(
        train=ids["train"],
        valid=ids["valid"],
        test=ids["test"],
        vocab=vocab,
        unk_id=unk_id,
        eos_id=eos_id,
        unk_added=unk_added,
        num_oov=num_oov,
        files={s: os.path.abspath(files[s]) for s in _SPLITS},
    )


def _detect_files(folder, prefix):
    """Find the train/valid/test files of `folder`; None and a reason if not."""
    if not os.path.isdir(folder):
        return None, "no such folder"
    found = {s: [] for s in _SPLITS}
    for fname in sorted(os.listdir(folder)):
        m = _FILE_RE.match(fname)
        if not m or not os.path.isfile(os.path.join(folder, fname)):
            continue
        if prefix is not None and m.group("prefix") != prefix:
            continue
        split = "valid" if m.group("split") == "dev" else m.group("split")
        found[split].append(fname)
    missing = [s for s in _SPLITS if not found[s]]
    if missing:
        return None, f"no {'/'.join(missing)} file"
    ambiguous = {s: f for s, f in found.items() if len(f) > 1}
    if ambiguous:
        listing = "; ".join(f"{s}: {', '.join(f)}" for s, f in ambiguous.items())
        raise ValueError(
            f"The folder {folder} holds several candidate files ({listing}); "
            "pass prefix= (e.g. prefix='ptb' for ptb.train.txt) to choose"
        )
    return {s: os.path.join(folder, found[s][0]) for s in _SPLITS}, None


def load_corpus(
    path=None,
    name=None,
    *,
    prefix=None,
    skip_empty_lines=False,
    eos_token="<eos>",
    unk_token="<unk>",
):
    """Load a word-level language-model corpus as arrays of token ids.

    The folder must hold one train, one valid (or dev) and one test file
    named `<prefix>.<split>.txt`, `<prefix>.<split>.tokens`, `<split>.txt`,
    `<split>.tokens` or just `<split>` (`train`, `valid` or `dev`, `test`),
    one sentence a line, tokens separated by spaces.

    The vocabulary comes from the training file only, sorted by descending
    count then by word; every line ends with `eos_token`. Words of the
    validation and test files that are not in it map to `unk_token`: when the
    training file contains `unk_token` (PTB and WikiText do) its id is used;
    otherwise `unk_token` is appended as the last id, `Corpus.unk_added` is
    True and a `UserWarning` says so. `Corpus.num_oov` counts those tokens.

    Args:
        path: folder holding the files (or a folder with a `<name>/`
            sub-folder). When None, `name` is looked up in
            `$KERAS_SPARSE_RNN_DATA/<name>`, then `~/.keras/datasets/<name>`.
        name: dataset folder name, e.g. `"wikitext-2"`. Optional with `path`.
        prefix: file-name prefix (`"ptb"`, `"wiki"`) to choose when the folder
            holds files of several corpora; None accepts any one.
        skip_empty_lines: if True blank lines are dropped; by default each
            gives one `eos_token` (the convention of the published WikiText
            token counts, see the module docstring).
        eos_token: token appended to every line.
        unk_token: token of words missing from the vocabulary.

    Returns:
        A `Corpus` with `train`, `valid`, `test` (1-D `np.int32` arrays),
        `vocab` (list of str, index == id), `unk_id`, `eos_id`, `unk_added`,
        `num_oov` and `files`.

    Raises:
        FileNotFoundError: the folder or one of the three files is missing.
        ValueError: a bad argument, an empty corpus file (the message names
            it), ambiguous file names, or a file that is not UTF-8.

    Example:

    >>> corpus = load_corpus(name="wikitext-2")  # doctest: +SKIP
    >>> len(corpus.vocab), corpus.train.shape  # doctest: +SKIP
    (33278, (2088628,))
    """
    name = v.check_str(name, "name", allow_none=True)
    prefix = v.check_str(prefix, "prefix", allow_none=True)
    v.check_bool(skip_empty_lines, "skip_empty_lines")
    eos_token = v.check_str(eos_token, "eos_token")
    unk_token = v.check_str(unk_token, "unk_token")
    for arg, tok in (("eos_token", eos_token), ("unk_token", unk_token)):
        if len(tok.split()) != 1 or tok.split()[0] != tok:
            raise ValueError(
                f"{arg} must be a single token without whitespace, got {tok!r}"
            )
    if eos_token == unk_token:
        raise ValueError(
            f"eos_token and unk_token must differ, got {eos_token!r} for both"
        )
    if path is None and name is None:
        raise ValueError(
            "load_corpus needs path= (a folder with the corpus files) or name= "
            "(a dataset folder under $KERAS_SPARSE_RNN_DATA or the Keras "
            "cache), got path=None and name=None"
        )

    detected = {}

    def check(folder):
        files, problem = _detect_files(folder, prefix)
        if files is not None:
            detected[folder] = files
        return problem

    pattern = f"{prefix or '<prefix>'}.{{train,valid,test}}.{{txt,tokens}}"
    if prefix is None:
        pattern += " or {train,valid,test}.{txt,tokens}"
    what = f"corpus files {pattern}"
    folder, tried = sources.find_folder(name, path, check, what)
    if folder is None:
        raise FileNotFoundError(sources.not_found_message(what, tried, name))
    files = detected.get(folder) or _detect_files(folder, prefix)[0]
    return load_files(
        files,
        skip_empty_lines=skip_empty_lines,
        eos_token=eos_token,
        unk_token=unk_token,
    )


def num_batches(n_tokens, batch_size, bptt):
    """Number of `(x, y)` batches `batchify` makes from `n_tokens` tokens.

    The corpus is cut into `batch_size` streams of
    `n_tokens // batch_size` tokens; each batch takes `bptt` steps of every
    stream and the targets are one step ahead, so the count is
    `(n_tokens // batch_size - 1) // bptt` (Zaremba's `epoch_size`). It is 0
    when the corpus is too short for one batch.

    Args:
        n_tokens: number of token ids, a non-negative int.
        batch_size: number of parallel streams, a positive int.
        bptt: number of time steps of each batch, a positive int.

    Returns:
        The number of batches in one epoch (an int, possibly 0).

    Example:

    >>> num_batches(23, batch_size=2, bptt=3)
    3
    """
    n_tokens = v.check_int(n_tokens, "n_tokens", minimum=0)
    batch_size = v.check_int(batch_size, "batch_size", minimum=1)
    bptt = v.check_int(bptt, "bptt", minimum=1)
    return max(0, (n_tokens // batch_size - 1) // bptt)


def _check_ids(ids):
    if isinstance(ids, tf.Tensor):
        ids = ids.numpy()
    if isinstance(ids, (str, bytes)) or ids is None:
        raise ValueError(
            f"ids must be a 1-D array of non-negative integer token ids, got {ids!r}"
        )
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(
            "ids must be a 1-D array of non-negative integer token ids, got an "
            f"array of shape {arr.shape}"
        )
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            "ids must be a 1-D array of non-negative integer token ids, got "
            f"dtype {arr.dtype}"
        )
    if arr.size:
        lo, hi = arr.min(), arr.max()
        if lo < 0 or hi > np.iinfo(np.int32).max:
            raise ValueError(
                "ids must be non-negative integer token ids that fit in int32, "
                f"got values in [{lo}, {hi}]"
            )
    return arr.astype(np.int32)


def batchify(ids, batch_size, bptt):
    """Cut a token-id stream into `(x, y)` batches for truncated BPTT.

    As Zaremba's `ptb_producer`: the first `batch_size * (len(ids) //
    batch_size)` ids are reshaped to `(batch_size, -1)`, so row `b` is a
    contiguous stream; batch `i` is `x = data[:, i*bptt:(i+1)*bptt]` and
    `y = data[:, i*bptt+1:(i+1)*bptt+1]`. Row `b` of batch `i + 1` continues
    row `b` of batch `i`, as a stateful RNN needs. The last partial window is
    dropped so every batch has the static shape `(batch_size, bptt)` (for
    stateful layers and XLA). The dataset is not shuffled.

    Args:
        ids: 1-D array-like of non-negative int token ids (numpy, list or
            `tf.Tensor`).
        batch_size: number of parallel streams, a positive int.
        bptt: number of time steps per batch, a positive int.

    Returns:
        A `tf.data.Dataset` of `num_batches(len(ids), batch_size, bptt)`
        pairs `(x, y)`, both `tf.int32` of static shape `(batch_size, bptt)`.

    Raises:
        ValueError: bad arguments, or too few ids for one batch.

    Example:

    >>> ds = batchify(np.arange(23), batch_size=2, bptt=3)
    >>> x, y = next(iter(ds))
    >>> x.numpy().tolist(), y.numpy().tolist()
    ([[0, 1, 2], [11, 12, 13]], [[1, 2, 3], [12, 13, 14]])
    """
    batch_size = v.check_int(batch_size, "batch_size", minimum=1)
    bptt = v.check_int(bptt, "bptt", minimum=1)
    arr = _check_ids(ids)
    steps = num_batches(arr.size, batch_size, bptt)
    if steps == 0:
        raise ValueError(
            f"ids has {arr.size} tokens, too few for one batch of batch_size="
            f"{batch_size} streams and bptt={bptt} steps: at least "
            f"{batch_size * (bptt + 1)} are needed"
        )
    batch_len = arr.size // batch_size
    data = arr[: batch_size * batch_len].reshape(batch_size, batch_len)
    span = steps * bptt
    # (batch, steps, bptt) -> (steps, batch, bptt)
    x = data[:, :span].reshape(batch_size, steps, bptt).transpose(1, 0, 2)
    y = data[:, 1 : span + 1].reshape(batch_size, steps, bptt).transpose(1, 0, 2)
    return tf.data.Dataset.from_tensor_slices(
        (np.ascontiguousarray(x), np.ascontiguousarray(y))
    )
