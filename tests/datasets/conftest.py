"""Fixtures of the dataset tests.

The data are found through `$KERAS_SPARSE_RNN_DATA` (the top-level
`tests/conftest.py` sets it to `<repo>/../shared/data` when unset; the same
default is applied here so that this folder also runs alone). Missing data
make the tests fail, never skip.
"""

import os

import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault(
    "KERAS_SPARSE_RNN_DATA", os.path.join(os.path.dirname(_REPO), "shared", "data")
)


@pytest.fixture(scope="session")
def data_root():
    """The folder of the reference datasets; fails (not skips) when absent."""
    root = os.environ.get("KERAS_SPARSE_RNN_DATA")
    if not root or not os.path.isdir(root):
        pytest.fail(
            f"KERAS_SPARSE_RNN_DATA={root!r} is not a folder: the dataset tests "
            "need the reference data (see shared/data/README.md)"
        )
    return root


@pytest.fixture(autouse=True)
def _isolated_keras_cache(tmp_path, monkeypatch):
    """An empty Keras cache for every test, and no network.

    `keras.utils.get_file` downloads with `urlretrieve`; it is replaced so
    that a test can never download (tests of the download path replace it
    again, or replace `get_file`).
    """
    from keras.src.utils import file_utils

    def no_network(url, *args, **kwargs):
        raise OSError(f"network access is disabled in the tests (tried {url})")

    monkeypatch.setattr(file_utils, "urlretrieve", no_network)
    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home
