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
    """Point the Keras cache at an empty temporary folder for every test."""
    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home
