import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

_SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "KERAS_SPARSE_RNN_DATA" not in os.environ and _SHARED_DATA.is_dir():
    os.environ["KERAS_SPARSE_RNN_DATA"] = str(_SHARED_DATA)
