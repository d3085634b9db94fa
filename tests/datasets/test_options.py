"""`LoaderOptions`: the text-classification loaders' shared options."""

import dataclasses
import inspect

import pytest

from keras_sparse_rnn import datasets
from keras_sparse_rnn.datasets.options import LoaderOptions

LOADERS = [datasets.load_imdb, datasets.load_sst2, datasets.load_sst5,
           datasets.load_csv, datasets.load_labeled_lines]
FIELDS = [field.name for field in dataclasses.fields(LoaderOptions)]


@pytest.mark.parametrize("loader", LOADERS, ids=lambda f: f.__name__)
def test_every_loader_takes_every_option(loader):
    # A loader builds its LoaderOptions from its own arguments: an option
    # missing from its signature would silently get the default.
    params = inspect.signature(loader).parameters
    missing = [name for name in FIELDS if name not in params]
    # SST has its own validation split (the dev file).
    assert missing == (["validation_split"] if "sst" in loader.__name__ else [])


def test_from_arguments_picks_the_options():
    options = LoaderOptions.from_arguments(
        dict(path="x", max_tokens=None, sequence_length=7, bucket_boundaries=[2, 5],
             encoding="latin-1"))
    assert options.max_tokens is None and options.sequence_length == 7
    assert options.bucket_boundaries == (2, 5) and options.encoding == "latin-1"
    assert options.validation_split == 0.0 and options.batch_size == 32
    assert options.standardization == dict(lowercase=True, strip_html=True,
                                           split_punctuation=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.batch_size = 1


@pytest.mark.parametrize("kwargs, message", [
    (dict(validation_split=1.0), r"validation_split must be in \[0, 1\)"),
    (dict(drop_remainder=1), "drop_remainder must be True or False"),
    (dict(padding="pre", bucket_boundaries=[4]), "needs padding='post'"),
    (dict(lowercase="no"), "lowercase must be True or False"),
    (dict(errors="bogus"), "errors='bogus' is not a decoding error handler"),
    (dict(encoding="klingon"), "encoding='klingon' is not a known text encoding"),
])
def test_options_are_checked_when_made(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LoaderOptions(**kwargs)
