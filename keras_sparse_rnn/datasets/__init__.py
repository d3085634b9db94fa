"""Datasets for word-level language modelling and text classification.

Data folders are found in the `path=` argument, then in
`$KERAS_SPARSE_RNN_DATA/<name>`, then in the Keras cache
(`~/.keras/datasets/<name>`); the Penn Treebank is downloaded (sha256
checked) when it is found nowhere.

Language modelling:

* `ptb.load_data(path=None)` -> `(train, valid, test, vocab)`
* `load_corpus(path=None, name=None, ...)` -> `Corpus` (WikiText, any
  `*.train.txt` / `*.train.tokens` folder)
* `batchify(ids, batch_size, bptt)` -> `tf.data.Dataset` of `(x, y)`, and
  `num_batches(n_tokens, batch_size, bptt)`

Text classification (`tf.data` of `(token_ids, label)`):

* `load_imdb`, `load_sst2`, `load_sst5`, `load_csv`, `load_labeled_lines`
  -> `TextClassificationData`; `k_fold`, `train_test_split` for corpora
  without a split
* readers `read_imdb`, `read_sst`, `read_csv`, `read_labeled_lines`,
  `read_jsonl_xz`; processing `standardize`, `build_vocabulary`,
  `TextVectorizer`, `make_dataset`; `unescape_ag_news` (a `text_transform`
  for the AG News files).

Modules: `sources` (finding, downloading and checking the files), `readers`
and `csv_reader` (file formats), `labels` (class ids from the labels of the
files: the one meaning of `class_names`), `text` (standardization,
tokenization, vocabulary, ids), `pipeline` (`make_dataset`), `options` (the
loaders' shared options, checked once), `classification_data`
(`TextClassificationData`), `text_classification` (IMDB and SST loaders) and
`labeled_files` (`load_csv`, `load_labeled_lines`), `splits`,
`language_model`, `ptb`.
"""

from keras_sparse_rnn.datasets import language_model
from keras_sparse_rnn.datasets import ptb
from keras_sparse_rnn.datasets import splits
from keras_sparse_rnn.datasets import text_classification
from keras_sparse_rnn.datasets.language_model import Corpus
from keras_sparse_rnn.datasets.language_model import batchify
from keras_sparse_rnn.datasets.language_model import load_corpus
from keras_sparse_rnn.datasets.language_model import num_batches
from keras_sparse_rnn.datasets.pipeline import make_dataset
from keras_sparse_rnn.datasets.csv_reader import read_csv
from keras_sparse_rnn.datasets.csv_reader import unescape_ag_news
from keras_sparse_rnn.datasets.readers import read_imdb
from keras_sparse_rnn.datasets.readers import read_jsonl_xz
from keras_sparse_rnn.datasets.readers import read_labeled_lines
from keras_sparse_rnn.datasets.readers import read_sst
from keras_sparse_rnn.datasets.sources import DATA_ENV_VAR
from keras_sparse_rnn.datasets.sources import resolve_files
from keras_sparse_rnn.datasets.splits import k_fold
from keras_sparse_rnn.datasets.splits import train_test_split
from keras_sparse_rnn.datasets.text import TextVectorizer
from keras_sparse_rnn.datasets.text import build_vocabulary
from keras_sparse_rnn.datasets.text import standardize
from keras_sparse_rnn.datasets.text_classification import TextClassificationData
from keras_sparse_rnn.datasets.text_classification import load_csv
from keras_sparse_rnn.datasets.text_classification import load_imdb
from keras_sparse_rnn.datasets.text_classification import load_labeled_lines
from keras_sparse_rnn.datasets.text_classification import load_sst2
from keras_sparse_rnn.datasets.text_classification import load_sst5

__all__ = [
    "Corpus",
    "DATA_ENV_VAR",
    "TextClassificationData",
    "TextVectorizer",
    "batchify",
    "build_vocabulary",
    "k_fold",
    "language_model",
    "load_corpus",
    "load_csv",
    "load_imdb",
    "load_labeled_lines",
    "load_sst2",
    "load_sst5",
    "make_dataset",
    "num_batches",
    "ptb",
    "read_csv",
    "read_imdb",
    "read_jsonl_xz",
    "read_labeled_lines",
    "read_sst",
    "resolve_files",
    "splits",
    "standardize",
    "text_classification",
    "train_test_split",
    "unescape_ag_news",
]
