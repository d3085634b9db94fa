"""Text processing: standardization, tokenization, vocabulary and ids.

Everything here runs with TensorFlow ops, so it can sit inside `tf.data`:

* `standardize`: lower-casing (`tf.strings.lower`, UTF-8 aware), removing the
  HTML line breaks `<br />` of IMDB, optionally surrounding ASCII punctuation
  with spaces (`tf.strings.regex_replace`);
* `whitespace_tokenize`: `tensorflow_text.WhitespaceTokenizer`, made equal to
  Python's `str.split()`. TF Text 2.21.1 mishandles non-ASCII whitespace:
  `"ab\\u00a0cd"` gives the tokens `b"ab\\xc2"` and `b"cd"`, the first one
  ending in half a UTF-8 character (same for U+0085, U+1680, U+2000..U+200A,
  U+2028, U+2029, U+202F, U+205F, U+3000; IMDB has U+0085 and U+00A0). It also
  keeps the separators U+001C..U+001F inside tokens, where `str.split()`
  splits. These characters are replaced by an ASCII space before tokenizing;
* `build_vocabulary`: id 0 is padding (`""`), id 1 is out-of-vocabulary
  (`"[UNK]"`), then words by descending count, ties by word. As for Keras'
  `TextVectorization`, `max_tokens` counts these two reserved ids, so
  `len(vocab) <= max_tokens` and `keras.layers.Embedding(len(vocab), ...)`
  fits;
* `TextVectorizer`: the lookup is a `tf.lookup.StaticHashTable` used inside
  `tf.data` (not `TextVectorization`, whose `supports_jit=False` would disable
  XLA for the whole model), then truncation and padding.
"""

import tensorflow as tf

from keras_sparse_rnn import validation as v

PAD_TOKEN = ""
OOV_TOKEN = "[UNK]"
PAD_ID = 0
OOV_ID = 1

_HTML_BREAK = r"(?i)<br\s*/?>"
_PUNCTUATION = r"([[:punct:]])"

# Every character str.split() treats as whitespace, beyond ASCII \t\n\v\f\r
# and space: U+001C..U+001F, U+0085 and the Unicode space separators (Z).
_EXTRA_WHITESPACE = r"[\x{1c}-\x{1f}\x{85}\p{Z}]"

_TOKENIZER = None


def whitespace_tokenizer():
    """The shared `tensorflow_text.WhitespaceTokenizer` (created lazily)."""
    global _TOKENIZER
    if _TOKENIZER is None:
        import tensorflow_text

        _TOKENIZER = tensorflow_text.WhitespaceTokenizer()
    return _TOKENIZER


def whitespace_tokenize(texts):
    """Split UTF-8 strings on whitespace, as Python's `str.split()`.

    Args:
        texts: `tf.string` tensor (or list of str) of any rank.

    Returns:
        A `tf.RaggedTensor` of `tf.string` tokens with one more dimension.
    """
    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    texts = tf.strings.regex_replace(texts, _EXTRA_WHITESPACE, " ")
    return whitespace_tokenizer().tokenize(texts)


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
        self.sequence_length = v.check_int(sequence_length, "sequence_length", minimum=1)
        self.lowercase = v.check_bool(lowercase, "lowercase")
        self.strip_html = v.check_bool(strip_html, "strip_html")
        self.split_punctuation = v.check_bool(split_punctuation, "split_punctuation")
        self.padding = v.check_choice(padding, "padding", ("post", "pre"))
        self.truncating = v.check_choice(truncating, "truncating", ("post", "pre"))
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
        return whitespace_tokenize(texts)

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
    texts = check_texts(texts, "texts")
    max_tokens = v.check_int(max_tokens, "max_tokens", minimum=3, allow_none=True)
    chunk_size = v.check_int(chunk_size, "chunk_size", minimum=1)
    counts = {}
    for start in range(0, len(texts), chunk_size):
        chunk = standardize(
            texts[start : start + chunk_size], lowercase, strip_html, split_punctuation
        )
        flat = whitespace_tokenize(chunk).flat_values
        words, _, n = tf.unique_with_counts(flat)
        for w, c in zip(words.numpy().tolist(), n.numpy().tolist()):
            counts[w] = counts.get(w, 0) + c
    for reserved in (PAD_TOKEN.encode(), OOV_TOKEN.encode()):
        counts.pop(reserved, None)
    words = sorted(counts, key=lambda w: (-counts[w], w))
    if max_tokens is not None:
        words = words[: max_tokens - 2]
    return [PAD_TOKEN, OOV_TOKEN] + [w.decode("utf-8") for w in words]


def check_texts(texts, name):
    """`texts` as a new list, or a `ValueError` unless it is a list of str."""
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
