"""Whitespace tokenization with TF Text, made equal to Python's `str.split()`.

`tensorflow_text.WhitespaceTokenizer` (TF Text 2.21.1) mishandles non-ASCII
whitespace: `"ab\\u00a0cd"` gives the tokens `b"ab\\xc2"` and `b"cd"`, the
first one ending in half a UTF-8 character (same for U+0085, U+1680,
U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000; IMDB has U+0085 and
U+00A0). It also keeps the separators U+001C..U+001F inside tokens, where
`str.split()` splits. These characters are replaced by an ASCII space before
tokenizing, so the tokens are exactly those of `str.split()`.
"""

import tensorflow as tf

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
