"""Text-classification datasets (IMDB, SST, CSV/TSV) as `tf.data` pipelines.

Readers return plain Python lists of texts and `np.int32` label arrays. The
loaders (`load_imdb`, `load_sst2`, `load_sst5`, `load_csv`) turn them into
`tf.data.Dataset`s of `(token_ids, label)`:

* text processing inside `tf.data`, with TensorFlow ops and TF Text:
  lower-casing (`tf.strings.lower`, UTF-8 aware), removing the HTML line
  breaks `<br />` of IMDB, optionally surrounding ASCII punctuation with
  spaces (`tf.strings.regex_replace`), and splitting on whitespace with
  `tensorflow_text.WhitespaceTokenizer` (non-ASCII spaces, which it
  mishandles, are first mapped to ASCII spaces: see `_text.py`);
* a vocabulary built from the training split only (after any validation
  split is taken out): id 0 is padding (`""`), id 1 is out-of-vocabulary
  (`"[UNK]"`), then words by descending count, ties by word. As for Keras'
  `TextVectorization`, `max_tokens` counts these two reserved ids, so
  `len(vocab) <= max_tokens` and `keras.layers.Embedding(len(vocab), ...)`
  fits;
* the lookup is a `tf.lookup.StaticHashTable` used inside `tf.data` (not
  `TextVectorization`, whose `supports_jit=False` would disable XLA for the
  whole model);
* each sequence is truncated and padded with 0 to `sequence_length` (or,
  with `bucket_boundaries=`, batched by length with
  `tf.data.Dataset.bucket_by_sequence_length` and padded to the longest of
  its batch);
* the training split is shuffled with `seed` (same seed, same order), the
  others keep their file order.
"""

import codecs
import csv
import dataclasses
import io
import json
import lzma

import numpy as np
import tensorflow as tf

from keras_sparse_rnn.datasets import _resolve
from keras_sparse_rnn.datasets import _text
from keras_sparse_rnn import validation as v

PAD_TOKEN = ""
OOV_TOKEN = "[UNK]"
PAD_ID = 0
OOV_ID = 1

_HTML_BREAK = r"(?i)<br\s*/?>"
_PUNCTUATION = r"([[:punct:]])"


# --------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------


def read_imdb(path=None, encoding="utf-8", errors="strict"):
    """Read the IMDB reviews (`train.jsonl.xz`, `test.jsonl.xz`).

    Each file is LZMA-compressed JSON Lines, one object a line with at least
    `"text"` (str) and `"label"` (0 negative, 1 positive). The rows of the
    reference files are sorted by label: shuffle before use (the loaders do).

    Args:
        path: optional folder holding the two files (or an `imdb/`
            sub-folder); else `$KERAS_SPARSE_RNN_DATA/imdb`, then
            `~/.keras/datasets/imdb`. There is no download (the files are a
            re-packing of the original archive).
        encoding, errors: how the files are decoded (as `bytes.decode`).

    Returns:
        Dict `{"train": (texts, labels), "test": (texts, labels)}`: `texts` a
        list of str, `labels` a 1-D `np.int32` array.

    Raises:
        FileNotFoundError: the files are not found.
        ValueError: a malformed line; the message gives the file and line.

    Example:

    >>> splits = read_imdb()  # doctest: +SKIP
    >>> len(splits["train"][0]), int(splits["train"][1].sum())  # doctest: +SKIP
    (25000, 12500)
    """
    files = _resolve.resolve_files("imdb", ["train.jsonl.xz", "test.jsonl.xz"], path)
    return {
        split: read_jsonl_xz(files[f"{split}.jsonl.xz"], num_classes=2,
                             encoding=encoding, errors=errors)
        for split in ("train", "test")
    }


def read_jsonl_xz(filename, num_classes=None, text_key="text", label_key="label",
                  encoding="utf-8", errors="strict"):
    """Read `(texts, labels)` from an LZMA-compressed JSON Lines file.

    Args:
        filename: path of the `.jsonl.xz` file.
        num_classes: if given, labels must be in `[0, num_classes)`.
        text_key: key of the text in each object.
        label_key: key of the integer label.
        encoding, errors: how the bytes are decoded (as `bytes.decode`).

    Returns:
        `(texts, labels)`: a list of str and a 1-D `np.int32` array.

    Raises:
        FileNotFoundError: no such file.
        ValueError: invalid JSON, a missing key, a non-str text or a bad
            label; the message names the file and the line.
    """
    _check_decoding(encoding, errors)
    filename = v.check_existing_file("filename", filename)
    num_classes = v.check_int("num_classes", num_classes, minimum=1, allow_none=True)
    texts, labels = [], []
    try:
        with lzma.open(filename, "rt", encoding=encoding, errors=errors) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    raise ValueError(f"{filename}, line {lineno}: empty line")
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(
                        f"{filename}, line {lineno}: invalid JSON ({e.msg})"
                    ) from None
                if not isinstance(row, dict):
                    raise ValueError(
                        f"{filename}, line {lineno}: expected a JSON object, "
                        f"got {type(row).__name__}"
                    )
                for key in (text_key, label_key):
                    if key not in row:
                        raise ValueError(
                            f"{filename}, line {lineno}: no {key!r} field "
                            f"(fields: {', '.join(map(repr, row))})"
                        )
                text, label = row[text_key], row[label_key]
                if not isinstance(text, str):
                    raise ValueError(
                        f"{filename}, line {lineno}: {text_key!r} must be a "
                        f"string, got {text!r}"
                    )
                texts.append(text)
                labels.append(_check_label(label, num_classes, filename, lineno))
    except (lzma.LZMAError, EOFError, UnicodeDecodeError) as e:
        raise ValueError(
            f"{filename} is not a valid {encoding} .xz file: {type(e).__name__}: {e}"
            " (pass encoding= or errors='replace')"
        ) from None
    return texts, np.asarray(labels, dtype=np.int32)


def _check_label(label, num_classes, filename, lineno):
    if isinstance(label, str):
        try:
            label = int(label.strip())
        except ValueError:
            raise ValueError(
                f"{filename}, line {lineno}: the label must be an integer, got "
                f"{label!r}"
            ) from None
    if isinstance(label, bool) or not isinstance(label, int):
        raise ValueError(
            f"{filename}, line {lineno}: the label must be an integer, got "
            f"{label!r}"
        )
    if label < 0 or (num_classes is not None and label >= num_classes):
        allowed = f"[0, {num_classes})" if num_classes else ">= 0"
        raise ValueError(
            f"{filename}, line {lineno}: the label must be in {allowed}, got "
            f"{label}"
        )
    return label


def _check_decoding(encoding, errors):
    """`encoding` and `errors` as `bytes.decode` takes them."""
    v.check_str("encoding", encoding)
    v.check_str("errors", errors)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"encoding={encoding!r} is not a known text encoding "
                         "(e.g. 'utf-8', 'latin-1')") from None
    try:
        codecs.lookup_error(errors)
    except LookupError:
        raise ValueError(f"errors={errors!r} is not a decoding error handler: use "
                         "'strict', 'replace' or 'ignore'") from None


def _read_text(filename, encoding, errors):
    """Decode a whole file; a decoding error names the file and the line."""
    with open(filename, "rb") as f:
        data = f.read()
    try:
        return data.decode(encoding, errors)
    except LookupError:
        raise ValueError(f"encoding={encoding!r} is not a known text encoding") from None
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ValueError(
            f"{filename}, line {line}: cannot be decoded as {encoding} "
            f"({e.reason}); pass encoding= or errors='replace'"
        ) from None


def read_labeled_lines(filename, num_classes=None, encoding="utf-8", errors="strict"):
    """Read a `<label> <text>` file (SST `stsa.*`, TREC, MR, ...).

    Each line is an integer label, one space (or any whitespace) and the
    text. Line endings `\\r\\n` are accepted.

    Args:
        filename: path of the file.
        num_classes: if given, labels must be in `[0, num_classes)`.
        encoding: text encoding (`"latin-1"` for TREC and MR).
        errors: how decoding errors are handled (`"strict"`, `"replace"`).

    Returns:
        `(texts, labels)`: a list of str and a 1-D `np.int32` array.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a line without a label and a text, or a bad label; the
            message names the file and the line.

    Example:

    >>> texts, labels = read_labeled_lines("sst/stsa.binary.dev", 2)  # doctest: +SKIP
    """
    filename = v.check_existing_file("filename", filename)
    num_classes = v.check_int("num_classes", num_classes, minimum=1, allow_none=True)
    _check_decoding(encoding, errors)
    lines = _read_text(filename, encoding, errors).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    texts, labels = [], []
    for lineno, line in enumerate(lines, 1):
        line = line.rstrip("\r")
        parts = line.split(None, 1)
        if len(parts) != 2:
            raise ValueError(
                f"{filename}, line {lineno}: expected '<label> <text>', got "
                f"{line!r}"
            )
        labels.append(_check_label(parts[0], num_classes, filename, lineno))
        texts.append(parts[1].strip())
    return texts, np.asarray(labels, dtype=np.int32)


_SST_SPLITS = {"train": "train", "valid": "dev", "test": "test"}


def read_sst(path=None, fine_grained=False, encoding="utf-8", errors="strict"):
    """Read the Stanford Sentiment Treebank, sentence level (Kim 2014 splits).

    Files `stsa.binary.{train,dev,test}` (6,920 / 872 / 1,821 sentences,
    labels 0 negative, 1 positive) or, with `fine_grained=True`,
    `stsa.fine.{train,dev,test}` (8,544 / 1,101 / 2,210, labels 0..4), each
    line `<label> <tokenized sentence>`.

    Args:
        path: optional folder holding the files (or an `sst/` sub-folder);
            else `$KERAS_SPARSE_RNN_DATA/sst`, then `~/.keras/datasets/sst`.
        fine_grained: read the 5-class files instead of the binary ones.
        encoding, errors: how the files are decoded (as `bytes.decode`).

    Returns:
        Dict `{"train": ..., "valid": ..., "test": ...}` of `(texts, labels)`
        (`"valid"` is the `dev` file).

    Raises:
        FileNotFoundError: the files are not found.
        ValueError: a malformed line (file and line in the message).
    """
    v.check_bool("fine_grained", fine_grained)
    kind = "fine" if fine_grained else "binary"
    names = {s: f"stsa.{kind}.{f}" for s, f in _SST_SPLITS.items()}
    files = _resolve.resolve_files("sst", list(names.values()), path)
    num_classes = 5 if fine_grained else 2
    return {s: read_labeled_lines(files[n], num_classes, encoding, errors)
            for s, n in names.items()}


def read_csv(
    filename,
    *,
    label_column=0,
    text_column=1,
    header=False,
    delimiter=None,
    class_names=None,
    encoding="utf-8",
    errors="strict",
):
    """Read `(texts, labels)` from a CSV or TSV file.

    Blank lines are skipped. Tab-separated files are read without quote
    processing (as the GLUE TSVs must be); comma-separated files with the
    standard `"` quoting.

    Args:
        filename: path of the file.
        label_column: column of the label, an int index, or a column name
            when `header=True`.
        text_column: column of the text, as `label_column`.
        header: whether the first row is a header (it is then skipped).
        delimiter: one character; None means `"\\t"` for `.tsv` files and
            `","` otherwise.
        class_names: optional list of the label strings in class order; the
            label of a row is then its index in this list (e.g.
            `["1", "2", "3", "4"]` for AG News). Without it labels must be
            non-negative integers.
        encoding: text encoding.
        errors: how decoding errors are handled.

    Returns:
        `(texts, labels)`: a list of str and a 1-D `np.int32` array.

    Raises:
        FileNotFoundError: no such file.
        ValueError: bad arguments, a row with too few columns or a bad label;
            the message names the file and the line.

    Example:

    >>> texts, labels = read_csv("sst2-glue/dev.tsv", header=True)  # doctest: +SKIP
    """
    filename = v.check_existing_file("filename", filename)
    v.check_bool("header", header)
    if delimiter is None:
        delimiter = "\t" if filename.lower().endswith(".tsv") else ","
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise ValueError(
            f"delimiter must be a single character or None, got {delimiter!r}"
        )
    for arg, col in (("label_column", label_column), ("text_column", text_column)):
        if isinstance(col, str):
            if not header:
                raise ValueError(
                    f"{arg} may be a column name only with header=True, got "
                    f"{arg}={col!r} and header=False"
                )
        else:
            v.check_int(arg, col, minimum=0)
    if label_column == text_column:
        raise ValueError(
            "label_column and text_column must differ, got "
            f"{label_column!r} for both"
        )
    class_index = None
    if class_names is not None:
        if isinstance(class_names, str) or not all(
            isinstance(c, str) for c in class_names
        ) or len(class_names) < 2 or len(set(class_names)) != len(class_names):
            raise ValueError(
                "class_names must be a list of at least 2 distinct str or None, "
                f"got {class_names!r}"
            )
        class_index = {c: i for i, c in enumerate(class_names)}
    _check_decoding(encoding, errors)

    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    texts, labels = [], []
    text = _read_text(filename, encoding, errors)
    with io.StringIO(text, newline="") as f:
        reader = csv.reader(f, delimiter=delimiter, quoting=quoting, strict=True)
        # cols is None until the header row has been read.
        cols = None if header else (label_column, text_column)
        width = None  # fields per row, from the first data row
        try:
            for row in reader:
                lineno = reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if cols is None:
                    cols = _header_columns(
                        row, label_column, text_column, filename, lineno
                    )
                    continue
                need = max(cols) + 1
                if len(row) < need:
                    raise ValueError(
                        f"{filename}, line {lineno}: expected at least {need} "
                        f"columns separated by {delimiter!r}, got {len(row)}"
                    )
                if width is None:
                    width = (len(row), lineno)
                    if delimiter == " " and len(row) > max(cols) + 1:
                        raise ValueError(
                            f"{filename}, line {lineno}: {len(row)} fields "
                            "separated by ' ': the text column would keep one "
                            "word. For '<label> <text>' lines use "
                            "read_labeled_lines / load_labeled_lines")
                elif len(row) != width[0]:
                    raise ValueError(
                        f"{filename}, line {lineno}: {len(row)} fields separated "
                        f"by {delimiter!r}, but line {width[1]} has {width[0]}: "
                        "a text with unquoted delimiters? Quote the texts, or "
                        "for '<label> <text>' lines use load_labeled_lines")
                raw = row[cols[0]].strip()
                if class_index is not None:
                    if raw not in class_index:
                        raise ValueError(
                            f"{filename}, line {lineno}: label {raw!r} is not one "
                            f"of class_names {class_names}"
                        )
                    labels.append(class_index[raw])
                else:
                    labels.append(_check_label(raw, None, filename, lineno))
                texts.append(row[cols[1]])
        except csv.Error as e:
            raise ValueError(
                f"{filename}, line {reader.line_num}: malformed CSV ({e})"
            ) from None
    return texts, np.asarray(labels, dtype=np.int32)


def _header_columns(row, label_column, text_column, filename, lineno):
    """Column indices from the header row (names are matched stripped)."""
    names = [c.strip() for c in row]
    cols = []
    for arg, col in (("label_column", label_column), ("text_column", text_column)):
        if isinstance(col, str):
            if col not in names:
                raise ValueError(
                    f"{filename}, line {lineno}: {arg}={col!r} is not a column "
                    f"of the header {names}"
                )
            col = names.index(col)
        cols.append(col)
    return tuple(cols)


# --------------------------------------------------------------------------
# Text processing
# --------------------------------------------------------------------------


def standardize(texts, lowercase=True, strip_html=True, split_punctuation=True):
    """Normalize texts with TensorFlow string ops (usable inside `tf.data`).

    Args:
        texts: a string tensor (any shape) or a list of str.
        lowercase: lower-case (UTF-8 aware).
        strip_html: replace HTML line breaks (`<br />`, `<br>`, `<BR/>`) by a
            space.
        split_punctuation: put spaces around each ASCII punctuation character,
            so that `"good."` gives the tokens `good` and `.`.

    Returns:
        A `tf.string` tensor of the same shape.

    Example:

    >>> standardize(["Great film.<br /><br />Loved IT!"]).numpy()[0].split()
    [b'great', b'film', b'.', b'loved', b'it', b'!']
    """
    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    if strip_html:
        texts = tf.strings.regex_replace(texts, _HTML_BREAK, " ")
    if split_punctuation:
        texts = tf.strings.regex_replace(texts, _PUNCTUATION, r" \1 ")
    return texts


class TextVectorizer:
    """Standardize, tokenize and look up texts as int32 ids, in `tf.data`.

    Tokens are split by `tensorflow_text.WhitespaceTokenizer` after
    `standardize`; ids come from a `tf.lookup.StaticHashTable` (0 padding,
    1 out-of-vocabulary). Unlike Keras' `TextVectorization`, nothing of this
    goes into the model, which stays XLA-compilable.

    Args:
        vocab: list of str, `vocab[0] == ""` (padding) and
            `vocab[1] == "[UNK]"`, then distinct words (as `build_vocabulary`
            returns).
        sequence_length: length of the output sequences, a positive int.
        lowercase, strip_html, split_punctuation: see `standardize`.
        padding: `"post"` (zeros after the tokens) or `"pre"` (before).
        truncating: `"post"` (keep the first `sequence_length` tokens) or
            `"pre"` (keep the last ones).

    Example:

    >>> vec = TextVectorizer(["", "[UNK]", "the", "cat"], sequence_length=4)
    >>> vec(["The cat sat"]).numpy().tolist()
    [[2, 3, 1, 0]]
    """

    def __init__(
        self,
        vocab,
        sequence_length,
        *,
        lowercase=True,
        strip_html=True,
        split_punctuation=True,
        padding="post",
        truncating="post",
    ):
        _check_vocab(vocab)
        self.vocab = list(vocab)
        self.sequence_length = v.check_int("sequence_length", sequence_length, minimum=1)
        self.lowercase = v.check_bool("lowercase", lowercase)
        self.strip_html = v.check_bool("strip_html", strip_html)
        self.split_punctuation = v.check_bool("split_punctuation", split_punctuation)
        self.padding = v.check_choice("padding", padding, ("post", "pre"))
        self.truncating = v.check_choice("truncating", truncating, ("post", "pre"))
        self._table = tf.lookup.StaticHashTable(
            # "" and "[UNK]" are keys too (the table cannot be empty); the
            # tokenizer never yields "", and "[UNK]" maps to OOV_ID anyway.
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(self.vocab, dtype=tf.string),
                tf.range(len(self.vocab), dtype=tf.int64),
            ),
            default_value=OOV_ID,
        )

    @property
    def vocab_size(self):
        """Number of ids, padding and OOV included."""
        return len(self.vocab)

    def tokenize(self, texts):
        """Standardized tokens: a `tf.RaggedTensor` of strings (one more dim)."""
        texts = standardize(
            texts, self.lowercase, self.strip_html, self.split_punctuation
        )
        return _text.whitespace_tokenize(texts)

    def lookup(self, tokens):
        """Ids (`tf.int32`) of a string tensor or `tf.RaggedTensor` of tokens."""
        if isinstance(tokens, tf.RaggedTensor):
            return tf.ragged.map_flat_values(self.lookup, tokens)
        return tf.cast(self._table.lookup(tokens), tf.int32)

    def encode(self, text):
        """Ids of one text (scalar string): 1-D, truncated, not padded."""
        ids = self.lookup(self.tokenize(text))
        n = self.sequence_length
        return ids[-n:] if self.truncating == "pre" else ids[:n]

    def __call__(self, texts):
        """Ids of a batch of texts: `tf.int32` of shape `(batch, sequence_length)`."""
        ids = self.lookup(self.tokenize(texts))
        n = self.sequence_length
        ids = ids[:, -n:] if self.truncating == "pre" else ids[:, :n]
        if self.padding == "pre":
            ids = tf.reverse(ids, axis=[1])
        dense = ids.to_tensor(default_value=PAD_ID, shape=[None, n])
        if self.padding == "pre":
            dense = tf.reverse(dense, axis=[1])
        return dense


def _check_vocab(vocab):
    if isinstance(vocab, str) or not isinstance(vocab, (list, tuple)):
        raise ValueError(f"vocab must be a list of str, got {type(vocab).__name__}")
    if len(vocab) < 2 or vocab[0] != PAD_TOKEN or vocab[1] != OOV_TOKEN:
        raise ValueError(
            f"vocab must start with the padding token {PAD_TOKEN!r} and the OOV "
            f"token {OOV_TOKEN!r}, got {list(vocab[:2])!r}"
        )
    if not all(isinstance(w, str) for w in vocab):
        raise ValueError("vocab must be a list of str, got non-str entries")
    if len(set(vocab)) != len(vocab):
        raise ValueError("vocab must not contain duplicate words")


def build_vocabulary(
    texts,
    max_tokens=20000,
    *,
    lowercase=True,
    strip_html=True,
    split_punctuation=True,
    chunk_size=8192,
):
    """Vocabulary of the most frequent words of `texts`.

    Words are counted after `standardize` and whitespace tokenization (TF
    Text), and sorted by descending count, ties by word.

    Args:
        texts: list of str (the training texts only).
        max_tokens: size of the vocabulary including the padding and OOV
            entries (as Keras' `TextVectorization`), an int >= 3, or None for
            all words.
        lowercase, strip_html, split_punctuation: see `standardize`.
        chunk_size: number of texts tokenized at a time.

    Returns:
        List of str: `["", "[UNK]", most frequent word, ...]`, at most
        `max_tokens` long.

    Example:

    >>> build_vocabulary(["a b b", "b c"], max_tokens=4)
    ['', '[UNK]', 'b', 'a']
    """
    texts = _check_texts("texts", texts)
    max_tokens = v.check_int("max_tokens", max_tokens, minimum=3, allow_none=True)
    chunk_size = v.check_int("chunk_size", chunk_size, minimum=1)
    counts = {}
    for start in range(0, len(texts), chunk_size):
        chunk = standardize(
            texts[start : start + chunk_size], lowercase, strip_html, split_punctuation
        )
        flat = _text.whitespace_tokenize(chunk).flat_values
        words, _, n = tf.unique_with_counts(flat)
        for w, c in zip(words.numpy().tolist(), n.numpy().tolist()):
            counts[w] = counts.get(w, 0) + c
    for reserved in (PAD_TOKEN.encode(), OOV_TOKEN.encode()):
        counts.pop(reserved, None)
    words = sorted(counts, key=lambda w: (-counts[w], w))
    if max_tokens is not None:
        words = words[: max_tokens - 2]
    return [PAD_TOKEN, OOV_TOKEN] + [w.decode("utf-8") for w in words]


def _check_texts(name, texts):
    if isinstance(texts, (str, bytes)) or not isinstance(texts, (list, tuple)):
        raise ValueError(
            f"{name} must be a list of str, got {type(texts).__name__}"
        )
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(
                f"{name} must be a list of str, got {type(t).__name__} at index {i}"
            )
    return list(texts)


def _check_labels(texts, labels, num_classes):
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(texts):
        raise ValueError(
            f"labels must be a 1-D array with one label per text ({len(texts)}), "
            f"got shape {labels.shape}"
        )
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must be in [0, {num_classes}), got values in "
            f"[{labels.min()}, {labels.max()}]"
        )
    return labels.astype(np.int32)


def _check_boundaries(bucket_boundaries, sequence_length):
    if bucket_boundaries is None:
        return None
    if isinstance(bucket_boundaries, (str, bytes)) or not isinstance(
        bucket_boundaries, (list, tuple)
    ) or not bucket_boundaries:
        raise ValueError(
            "bucket_boundaries must be None or a non-empty list of increasing "
            f"positive ints, got {bucket_boundaries!r}"
        )
    out = [v.check_int("bucket_boundaries[i]", b, minimum=1) for b in bucket_boundaries]
    if any(b >= c for b, c in zip(out, out[1:])) or out[-1] > sequence_length:
        raise ValueError(
            "bucket_boundaries must be strictly increasing positive ints not above "
            f"sequence_length={sequence_length}, got {list(bucket_boundaries)!r}"
        )
    return out


def make_dataset(
    texts,
    labels,
    vectorizer,
    batch_size=32,
    *,
    shuffle=False,
    seed=0,
    bucket_boundaries=None,
    drop_remainder=False,
    num_classes=None,
):
    """A `tf.data.Dataset` of `(token_ids, label)` batches.

    Args:
        texts: list of str.
        labels: 1-D int array-like, one label per text.
        vectorizer: a `TextVectorizer`.
        batch_size: a positive int.
        shuffle: shuffle the examples (whole-dataset buffer, reshuffled each
            epoch, seeded: same `seed`, same order).
        seed: int seed of the shuffle.
        bucket_boundaries: None to pad every sequence to
            `vectorizer.sequence_length`; else increasing lengths for
            `tf.data.Dataset.bucket_by_sequence_length`: sequences are batched
            with others of similar length and padded (at the end) to the
            longest of their batch. Needs `vectorizer.padding == "post"`.
        drop_remainder: drop the last incomplete batch, so the batch dimension
            is static (XLA compiles one program).
        num_classes: if given, labels must be in `[0, num_classes)`.

    Returns:
        A `tf.data.Dataset` of `(token_ids, labels)`: `tf.int32` of shape
        `(batch, sequence_length)` (`(batch, None)` with buckets) and
        `tf.int32` of shape `(batch,)`.
    """
    texts = _check_texts("texts", texts)
    if not isinstance(vectorizer, TextVectorizer):
        raise ValueError(
            f"vectorizer must be a TextVectorizer, got {type(vectorizer).__name__}"
        )
    labels = _check_labels(
        texts, labels, num_classes if num_classes is not None else np.iinfo(np.int32).max
    )
    batch_size = v.check_int("batch_size", batch_size, minimum=1)
    v.check_bool("shuffle", shuffle)
    seed = v.check_int("seed", seed, allow_none=True)
    v.check_bool("drop_remainder", drop_remainder)
    bucket_boundaries = _check_boundaries(bucket_boundaries, vectorizer.sequence_length)
    if bucket_boundaries is not None and vectorizer.padding != "post":
        raise ValueError(
            "bucket_boundaries pads at the end of each sequence: it needs "
            f"padding='post', got padding={vectorizer.padding!r}"
        )
    if not texts:
        raise ValueError("texts is empty: a dataset needs at least one example")

    ds = tf.data.Dataset.from_tensor_slices(
        (tf.constant(texts, dtype=tf.string), tf.constant(labels, dtype=tf.int32))
    )
    if shuffle:
        ds = ds.shuffle(len(texts), seed=seed, reshuffle_each_iteration=True)
    if bucket_boundaries is None:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        ds = ds.map(
            lambda t, y: (vectorizer(t), y),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    else:
        ds = ds.map(
            lambda t, y: (vectorizer.encode(t), y),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        ds = ds.bucket_by_sequence_length(
            element_length_func=lambda x, y: tf.shape(x)[0],
            bucket_boundaries=bucket_boundaries,
            bucket_batch_sizes=[batch_size] * (len(bucket_boundaries) + 1),
            padded_shapes=([None], []),
            padding_values=(PAD_ID, 0),
            drop_remainder=drop_remainder,
        )
        if drop_remainder:
            # group_by_window loses the static batch size: restore it.
            ds = ds.map(
                lambda x, y: (
                    tf.ensure_shape(x, [batch_size, None]),
                    tf.ensure_shape(y, [batch_size]),
                )
            )
    return ds.prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------


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


def _split_validation(texts, labels, validation_split, seed):
    n_valid = int(len(texts) * validation_split)
    if validation_split > 0 and (n_valid == 0 or n_valid == len(texts)):
        raise ValueError(
            f"validation_split={validation_split} of {len(texts)} training "
            f"examples gives {n_valid} validation examples; use a larger "
            "(or zero) validation_split"
        )
    order = np.random.default_rng(seed).permutation(len(texts))
    valid_idx, train_idx = np.sort(order[:n_valid]), np.sort(order[n_valid:])
    pick = lambda idx: ([texts[i] for i in idx], labels[idx])  # noqa: E731
    return pick(train_idx), pick(valid_idx)


def _check_options(
    *,
    max_tokens,
    sequence_length,
    batch_size,
    seed,
    validation_split,
    bucket_boundaries,
    drop_remainder,
    padding,
    truncating,
    lowercase,
    split_punctuation,
):
    """Check the loaders' options (before any file is read)."""
    v.check_int("max_tokens", max_tokens, minimum=3, allow_none=True)
    v.check_int("sequence_length", sequence_length, minimum=1)
    v.check_int("batch_size", batch_size, minimum=1)
    v.check_int("seed", seed)
    v.check_fraction("validation_split", validation_split)
    v.check_bool("drop_remainder", drop_remainder)
    _check_boundaries(bucket_boundaries, sequence_length)
    v.check_choice("padding", padding, ("post", "pre"))
    v.check_choice("truncating", truncating, ("post", "pre"))
    if bucket_boundaries is not None and padding != "post":
        raise ValueError(
            "bucket_boundaries pads at the end of each sequence: it needs "
            f"padding='post', got padding={padding!r}"
        )
    v.check_bool("lowercase", lowercase)
    v.check_bool("split_punctuation", split_punctuation)


def _build(
    splits,
    *,
    num_classes,
    class_names,
    max_tokens,
    sequence_length,
    batch_size,
    seed,
    validation_split,
    bucket_boundaries,
    drop_remainder,
    padding,
    truncating,
    lowercase,
    split_punctuation,
):
    _check_options(
        max_tokens=max_tokens,
        sequence_length=sequence_length,
        batch_size=batch_size,
        seed=seed,
        validation_split=validation_split,
        bucket_boundaries=bucket_boundaries,
        drop_remainder=drop_remainder,
        padding=padding,
        truncating=truncating,
        lowercase=lowercase,
        split_punctuation=split_punctuation,
    )
    if validation_split > 0:
        if splits.get("valid") is not None:
            raise ValueError(
                f"validation_split={validation_split} but the dataset already "
                "has a validation split; use validation_split=0"
            )
        splits = dict(splits)
        splits["train"], splits["valid"] = _split_validation(
            *splits["train"], validation_split, seed
        )
    options = dict(lowercase=lowercase, strip_html=True, split_punctuation=split_punctuation)
    vocab = build_vocabulary(splits["train"][0], max_tokens, **options)
    vectorizer = TextVectorizer(
        vocab, sequence_length, padding=padding, truncating=truncating, **options
    )
    datasets = {}
    for name in ("train", "valid", "test"):
        if splits.get(name) is None:
            datasets[name] = None
            continue
        texts, labels = splits[name]
        datasets[name] = make_dataset(
            texts,
            labels,
            vectorizer,
            batch_size,
            shuffle=name == "train",
            seed=seed,
            bucket_boundaries=bucket_boundaries,
            drop_remainder=drop_remainder,
            num_classes=num_classes,
        )
    return TextClassificationData(
        train=datasets["train"],
        valid=datasets["valid"],
        test=datasets["test"],
        vocab=vocab,
        num_classes=num_classes,
        class_names=list(class_names),
        sequence_length=sequence_length,
        num_examples={
            k: len(s[0]) for k, s in splits.items() if s is not None
        },
        vectorizer=vectorizer,
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
    options = dict(
        max_tokens=max_tokens,
        sequence_length=sequence_length,
        batch_size=batch_size,
        seed=seed,
        validation_split=validation_split,
        bucket_boundaries=bucket_boundaries,
        drop_remainder=drop_remainder,
        padding=padding,
        truncating=truncating,
        lowercase=lowercase,
        split_punctuation=split_punctuation,
    )
    _check_options(**options)
    return _build(read_imdb(path, encoding, errors), num_classes=2,
                  class_names=["neg", "pos"], **options)


def _load_sst(fine_grained, path, encoding, errors, **kwargs):
    _check_options(validation_split=0.0, **kwargs)
    splits = read_sst(path, fine_grained, encoding, errors)
    if fine_grained:
        names = ["very negative", "negative", "neutral", "positive", "very positive"]
    else:
        names = ["negative", "positive"]
    return _build(
        splits, num_classes=len(names), class_names=names, validation_split=0.0, **kwargs
    )


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
    return _load_sst(
        False,
        path,
        encoding,
        errors,
        max_tokens=max_tokens,
        sequence_length=sequence_length,
        batch_size=batch_size,
        seed=seed,
        bucket_boundaries=bucket_boundaries,
        drop_remainder=drop_remainder,
        padding=padding,
        truncating=truncating,
        lowercase=lowercase,
        split_punctuation=split_punctuation,
    )


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
    return _load_sst(
        True,
        path,
        encoding,
        errors,
        max_tokens=max_tokens,
        sequence_length=sequence_length,
        batch_size=batch_size,
        seed=seed,
        bucket_boundaries=bucket_boundaries,
        drop_remainder=drop_remainder,
        padding=padding,
        truncating=truncating,
        lowercase=lowercase,
        split_punctuation=split_punctuation,
    )


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
    read = dict(
        label_column=label_column,
        text_column=text_column,
        header=header,
        delimiter=delimiter,
        class_names=class_names,
        encoding=encoding,
        errors=errors,
    )
    options = dict(
        max_tokens=max_tokens,
        sequence_length=sequence_length,
        batch_size=batch_size,
        seed=seed,
        validation_split=validation_split,
        bucket_boundaries=bucket_boundaries,
        drop_remainder=drop_remainder,
        padding=padding,
        truncating=truncating,
        lowercase=lowercase,
        split_punctuation=split_punctuation,
    )
    _check_options(**options)
    if valid_file is not None and validation_split != 0:
        raise ValueError(
            f"pass valid_file or validation_split, not both: got valid_file="
            f"{valid_file!r} and validation_split={validation_split!r}"
        )
    splits = {"train": read_csv(train_file, **read)}
    if valid_file is not None:
        splits["valid"] = read_csv(valid_file, **read)
    if test_file is not None:
        splits["test"] = read_csv(test_file, **read)
    files = {"train": train_file, "valid": valid_file, "test": test_file}
    for name, (texts, _) in splits.items():
        if not texts:
            raise ValueError(f"The {name} file {files[name]} has no rows")
    if class_names is not None:
        num_classes = len(class_names)
    else:
        num_classes = int(max(s[1].max() for s in splits.values())) + 1
        class_names = [str(i) for i in range(num_classes)]
    return _build(
        splits, num_classes=num_classes, class_names=class_names, **options
    )


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
    from keras_sparse_rnn.datasets import splits as splits_lib

    options = dict(
        max_tokens=max_tokens, sequence_length=sequence_length,
        batch_size=batch_size, seed=seed, validation_split=validation_split,
        bucket_boundaries=bucket_boundaries, drop_remainder=drop_remainder,
        padding=padding, truncating=truncating, lowercase=lowercase,
        split_punctuation=split_punctuation,
    )
    _check_options(**options)
    _check_decoding(encoding, errors)
    if class_names is not None and (
            isinstance(class_names, str) or len(class_names) < 2
            or not all(isinstance(c, str) for c in class_names)):
        raise ValueError(f"class_names must be a list of at least 2 str or None, "
                         f"got {class_names!r}")
    made = sum(x is not None for x in (test_file, test_fraction, folds))
    if made > 1:
        raise ValueError("give one of test_file, test_fraction and folds (with "
                         f"fold), got test_file={test_file!r}, test_fraction="
                         f"{test_fraction!r}, folds={folds!r}")
    if (folds is None) != (fold is None):
        raise ValueError(f"folds and fold go together, got folds={folds!r} and "
                         f"fold={fold!r}")
    if folds is not None:
        folds = v.check_int("folds", folds, minimum=2)
        if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < folds:
            raise ValueError(f"fold must be an int in [0, {folds}), got {fold!r}")
    if valid_file is not None and validation_split != 0:
        raise ValueError(
            f"pass valid_file or validation_split, not both: got valid_file="
            f"{valid_file!r} and validation_split={validation_split!r}")
    num = len(class_names) if class_names is not None else None
    read = dict(num_classes=num, encoding=encoding, errors=errors)
    data = {"train": read_labeled_lines(train_file, **read)}
    if valid_file is not None:
        data["valid"] = read_labeled_lines(valid_file, **read)
    if test_file is not None:
        data["test"] = read_labeled_lines(test_file, **read)
    files = {"train": train_file, "valid": valid_file, "test": test_file}
    for name, (texts, _) in data.items():
        if not texts:
            raise ValueError(f"The {name} file {files[name]} has no lines")
    if folds is not None:
        data["train"], data["test"] = splits_lib.k_fold(
            *data["train"], k=folds, seed=seed)[fold]
    elif test_fraction is not None:
        data["train"], data["test"] = splits_lib.train_test_split(
            *data["train"], test_fraction=test_fraction, seed=seed)
    if class_names is None:
        num = int(max(s[1].max() for s in data.values())) + 1
        class_names = [str(i) for i in range(num)]
    return _build(data, num_classes=num, class_names=class_names, **options)
