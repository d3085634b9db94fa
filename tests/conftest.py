import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

_SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "KERAS_SPARSE_RNN_DATA" not in os.environ and _SHARED_DATA.is_dir():
    os.environ["KERAS_SPARSE_RNN_DATA"] = str(_SHARED_DATA)


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _registries_as_they_were():
    """Criteria and grow inputs a test (or a document it runs) registers
    are gone after it: the registries are global, and tests check them."""
    from keras_sparse_rnn.dst import registry

    tables = (registry._PRUNE, registry._GROW, registry._GROW_INPUTS)
    saved = [dict(t) for t in tables]
    yield
    for table, before in zip(tables, saved):
        table.clear()
        table.update(before)
