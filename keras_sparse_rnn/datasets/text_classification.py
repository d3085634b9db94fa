"""Text-classification datasets (IMDB, SST, CSV/TSV, `<label> <text>` files).

The loaders (`load_imdb`, `load_sst2`, `load_sst5` here; `load_csv`,
`load_labeled_lines` in `labeled_files.py`) read the files (`readers.py`,
`csv_reader.py`), hold out the splits asked for, and turn every split into
a `tf.data.Dataset` of `(token_ids, label)` (`classification_data.py`):

* text processing inside `tf.data`, with TensorFlow ops and TF Text
  (`text.py`): lower-casing, removing IMDB's `<br />`, optionally splitting
  off ASCII punctuation, whitespace tokenization;
* a vocabulary built from the training split only (after any validation
  split is taken out): id 0 is padding (`""`), id 1 is out-of-vocabulary
  (`"[UNK]"`), `len(vocab) <= max_tokens`;
* each sequence truncated and padded with 0 to `sequence_length` (or, with
  `bucket_boundaries=`, batched by length and padded to the longest of its
  batch, `pipeline.py`);
* the training split is shuffled with `seed` (same seed, same order), the
  others keep their file order.

The options the loaders share are checked once, as one `LoaderOptions`
(`options.py`). The readers and the text-processing names stay importable
from this module.
"""

from keras_sparse_rnn.datasets.classification_data import TextClassificationData
from keras_sparse_rnn.datasets.classification_data import build_data
from keras_sparse_rnn.datasets.csv_reader import read_csv  # noqa: F401  (re-exported)
from keras_sparse_rnn.datasets.labeled_files import load_csv
from keras_sparse_rnn.datasets.labeled_files import load_labeled_lines
from keras_sparse_rnn.datasets.options import LoaderOptions
from keras_sparse_rnn.datasets.readers import read_imdb
from keras_sparse_rnn.datasets.readers import read_labeled_lines  # noqa: F401
from keras_sparse_rnn.datasets.readers import read_sst

__all__ = [
    "TextClassificationData",
    "load_csv",
    "load_imdb",
    "load_labeled_lines",
    "load_sst2",
    "load_sst5",
]

_SST2_CLASSES = ["negative", "positive"]
_SST5_CLASSES = ["very negative", "negative", "neutral", "positive", "very positive"]


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
    options = LoaderOptions.from_arguments(locals())
    splits = read_imdb(path, options.encoding, options.errors)
    return build_data(splits, ["neg", "pos"], options)


def _load_sst(fine_grained, path, options):
    splits = read_sst(path, fine_grained, options.encoding, options.errors)
    return build_data(splits, _SST5_CLASSES if fine_grained else _SST2_CLASSES, options)


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
    punctuation is not split by default (`split_punctuation=False`: `n't`
    and `-lrb-` stay tokens); the longest has 56 tokens, hence
    `sequence_length=64`. Raw text given to the returned `vectorizer` must
    then be tokenized the same way (`"France ?"`, not `"France?"`, whose
    `france?` is out of vocabulary); or load with `split_punctuation=True`,
    which splits punctuation off in the files and in raw text alike.

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
    return _load_sst(False, path, LoaderOptions.from_arguments(locals()))


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
    return _load_sst(True, path, LoaderOptions.from_arguments(locals()))
