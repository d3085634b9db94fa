"""Readers of the text-classification file formats, as Python lists.

Each reader returns `(texts, labels)`: a list of str and a 1-D `np.int32`
array (or a dict of them, one per split). A malformed file fails with a
`ValueError` that names the file and the line.

* `read_jsonl_xz`: LZMA-compressed JSON Lines, one `{"text", "label"}` object a
  line; `read_imdb` finds IMDB's `train.jsonl.xz` and `test.jsonl.xz`.
* `read_labeled_lines`: `<label> <text>` lines (SST `stsa.*`, TREC, MR, ...);
  `read_sst` finds SST's `stsa.binary.*` or `stsa.fine.*` files.
* `read_labeled_texts`: the same lines with their labels as strings (a
  `labels.LabeledTexts`), as the loaders read them.

`read_csv` (CSV and TSV files) is in `csv_reader.py`.

Every reader takes `encoding` and `errors` as `bytes.decode` does
(`check_decoding` checks them).
"""

import codecs
import csv
import io
import json
import lzma

import numpy as np

from keras_sparse_rnn.datasets import labels as labels_module
from keras_sparse_rnn.datasets import sources
from keras_sparse_rnn import validation as v


def read_imdb(path=None, encoding="utf-8", errors="strict"):
    """Read the IMDB reviews (`train.jsonl.xz`, `test.jsonl.xz`).

    Each file is LZMA-compressed JSON Lines, one object a line with at least
    `"text"` (str) and `"label"` (0 negative, 1 positive). The rows of the
    reference files are sorted by label: shuffle before use (the loaders do).

    Args:
        path: optional folder holding the two files (or an `imdb/`
            sub-folder); else `$KERAS_SPARSE_RNN_DATA/imdb`, then
            `~/.keras/datasets/imdb`. There is no download (the files are a
            re-packing of the original archive).
        encoding, errors: how the files are decoded (as `bytes.decode`).

    Returns:
        Dict `{"train": (texts, labels), "test": (texts, labels)}`: `texts` a
        list of str, `labels` a 1-D `np.int32` array.

    Raises:
        FileNotFoundError: the files are not found.
        ValueError: a malformed line; the message gives the file and line.

    Example:

    >>> splits = read_imdb()  # doctest: +SKIP
    >>> len(splits["train"][0]), int(splits["train"][1].sum())  # doctest: +SKIP
    (25000, 12500)
    """
    files = sources.resolve_files("imdb", ["train.jsonl.xz", "test.jsonl.xz"], path)
    return {
        split: read_jsonl_xz(files[f"{split}.jsonl.xz"], num_classes=2,
                             encoding=encoding, errors=errors)
        for split in ("train", "test")
    }


def read_jsonl_xz(filename, num_classes=None, text_key="text", label_key="label",
                  encoding="utf-8", errors="strict"):
    """Read `(texts, labels)` from an LZMA-compressed JSON Lines file.

    Args:
        filename: path of the `.jsonl.xz` file.
        num_classes: if given, labels must be in `[0, num_classes)`.
        text_key: key of the text in each object.
        label_key: key of the integer label.
        encoding, errors: how the bytes are decoded (as `bytes.decode`).

    Returns:
        `(texts, labels)`: a list of str and a 1-D `np.int32` array.

    Raises:
        FileNotFoundError: no such file.
        ValueError: invalid JSON, a missing key, a non-str text or a bad
            label; the message names the file and the line.
    """
    check_decoding(encoding, errors)
    filename = v.check_existing_file(filename, "filename")
    num_classes = v.check_int(num_classes, "num_classes", minimum=1, allow_none=True)
    texts, labels = [], []
    try:
        with lzma.open(filename, "rt", encoding=encoding, errors=errors) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    raise ValueError(f"{filename}, line {lineno}: empty line")
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(
                        f"{filename}, line {lineno}: invalid JSON ({e.msg})"
                    ) from None
                if not isinstance(row, dict):
                    raise ValueError(
                        f"{filename}, line {lineno}: expected a JSON object, "
                        f"got {type(row).__name__}"
                    )
                for key in (text_key, label_key):
                    if key not in row:
                        raise ValueError(
                            f"{filename}, line {lineno}: no {key!r} field "
                            f"(fields: {', '.join(map(repr, row))})"
                        )
                text, label = row[text_key], row[label_key]
                if not isinstance(text, str):
                    raise ValueError(
                        f"{filename}, line {lineno}: {text_key!r} must be a "
                        f"string, got {text!r}"
                    )
                texts.append(text)
                labels.append(check_label(label, num_classes, filename, lineno))
    except (lzma.LZMAError, EOFError, UnicodeDecodeError) as e:
        raise ValueError(
            f"{filename} is not a valid {encoding} .xz file: {type(e).__name__}: {e}"
            " (pass encoding= or errors='replace')"
        ) from None
    return texts, np.asarray(labels, dtype=np.int32)


def check_label(label, num_classes, filename, lineno):
    """An integer label (int or str) in `[0, num_classes)` (`>= 0` without
    `num_classes`), or a `ValueError` naming the file and the line."""
    if isinstance(label, str):
        try:
            label = int(label.strip())
        except ValueError:
            raise ValueError(
                f"{filename}, line {lineno}: the label must be an integer, got "
                f"{label!r}"
            ) from None
    if isinstance(label, bool) or not isinstance(label, int):
        raise ValueError(
            f"{filename}, line {lineno}: the label must be an integer, got "
            f"{label!r}"
        )
    if label < 0 or (num_classes is not None and label >= num_classes):
        allowed = (f"in [0, {num_classes})" if num_classes
                   else "a non-negative integer")
        raise ValueError(
            f"{filename}, line {lineno}: the label must be {allowed}, got "
            f"{label}"
        )
    return label


def check_decoding(encoding, errors):
    """Check `encoding` and `errors` as `bytes.decode` takes them."""
    v.check_str(encoding, "encoding")
    v.check_str(errors, "errors")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"encoding={encoding!r} is not a known text encoding "
                         "(e.g. 'utf-8', 'latin-1')") from None
    try:
        codecs.lookup_error(errors)
    except LookupError:
        raise ValueError(f"errors={errors!r} is not a decoding error handler: use "
                         "'strict', 'replace' or 'ignore'") from None


def read_text(filename, encoding, errors):
    """Decode a whole file; a decoding error names the file and the line."""
    with open(filename, "rb") as f:
        data = f.read()
    try:
        return data.decode(encoding, errors)
    except LookupError:
        raise ValueError(f"encoding={encoding!r} is not a known text encoding") from None
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ValueError(
            f"{filename}, line {line}: cannot be decoded as {encoding} "
            f"({e.reason}); pass encoding= or errors='replace'"
        ) from None


def read_labeled_lines(filename, num_classes=None, encoding="utf-8", errors="strict",
                       *, class_names=None, label_only_lines="error"):
    """Read a `<label> <text>` file (SST `stsa.*`, TREC, MR, ...).

    Each line is a label, one space (or any whitespace) and the text. Line
    endings `\\r\\n` are accepted.

    Args:
        filename: path of the file.
        num_classes: if given, integer labels must be in `[0, num_classes)`.
        encoding: text encoding (`"latin-1"` for TREC and MR).
        errors: how decoding errors are handled (`"strict"`, `"replace"`).
        class_names: optional list of the label strings in class order; a
            label's id is then its index (TREC's raw files: `["DESC:def",
            ...]`; see `labels.class_ids`). Without it labels must be
            non-negative integers (`load_labeled_lines` also infers the
            classes of string labels).
        label_only_lines: `"error"` (the default) refuses a line with a label
            and no text; `"skip"` leaves it out (CR's `custrev.all` and MPQA's
            `mpqa.all` have such lines; `read_labeled_texts` counts them).

    Returns:
        `(texts, labels)`: a list of str and a 1-D `np.int32` array.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a line without a label and a text, or a bad label; the
            message names the file and the line.

    Example:

    >>> texts, labels = read_labeled_lines("sst/stsa.binary.dev", 2)  # doctest: +SKIP
    """
    num_classes = v.check_int(num_classes, "num_classes", minimum=1, allow_none=True)
    part = read_labeled_texts(filename, encoding, errors, label_only_lines)
    if class_names is not None:
        if num_classes is not None:
            raise ValueError(f"give num_classes or class_names, not both: got "
                             f"num_classes={num_classes} and class_names={class_names!r}")
        ids, _ = labels_module.class_ids({"file": part}, class_names)
        return part.texts, ids["file"]
    ids = [check_label(label, num_classes, part.filename, line)
           for label, line in zip(part.labels, part.lines)]
    return part.texts, np.asarray(ids, dtype=np.int32)


def read_labeled_texts(filename, encoding="utf-8", errors="strict",
                       label_only_lines="error"):
    """The lines of a `<label> <text>` file with their labels as strings.

    Args:
        filename, encoding, errors, label_only_lines: as `read_labeled_lines`.

    Returns:
        A `labels.LabeledTexts` (`skipped` counts the label-only lines left
        out).
    """
    filename = v.check_existing_file(filename, "filename")
    check_decoding(encoding, errors)
    v.check_choice(label_only_lines, "label_only_lines", ("error", "skip"))
    lines = read_text(filename, encoding, errors).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    texts, labels, numbers, skipped = [], [], [], 0
    for lineno, line in enumerate(lines, 1):
        line = line.rstrip("\r")
        parts = line.split(None, 1)
        if len(parts) == 1 and label_only_lines == "skip":
            skipped += 1
            continue
        if len(parts) != 2:
            hint = (" (a label without text: pass label_only_lines='skip' to leave "
                    "such lines out)" if len(parts) == 1 else "")
            raise ValueError(
                f"{filename}, line {lineno}: expected '<label> <text>', got "
                f"{line!r}{hint}"
            )
        labels.append(parts[0])
        texts.append(parts[1].strip())
        numbers.append(lineno)
    return labels_module.LabeledTexts(texts, labels, numbers, filename, skipped)


_SST_SPLITS = {"train": "train", "valid": "dev", "test": "test"}


def read_sst(path=None, fine_grained=False, encoding="utf-8", errors="strict"):
    """Read the Stanford Sentiment Treebank, sentence level (Kim 2014 splits).

    Files `stsa.binary.{train,dev,test}` (6,920 / 872 / 1,821 sentences,
    labels 0 negative, 1 positive) or, with `fine_grained=True`,
    `stsa.fine.{train,dev,test}` (8,544 / 1,101 / 2,210, labels 0..4), each
    line `<label> <tokenized sentence>`.

    Args:
        path: optional folder holding the files (or an `sst/` sub-folder);
            else `$KERAS_SPARSE_RNN_DATA/sst`, then `~/.keras/datasets/sst`.
        fine_grained: read the 5-class files instead of the binary ones.
        encoding, errors: how the files are decoded (as `bytes.decode`).

    Returns:
        Dict `{"train": ..., "valid": ..., "test": ...}` of `(texts, labels)`
        (`"valid"` is the `dev` file).

    Raises:
        FileNotFoundError: the files are not found.
        ValueError: a malformed line (file and line in the message).
    """
    v.check_bool(fine_grained, "fine_grained")
    kind = "fine" if fine_grained else "binary"
    names = {s: f"stsa.{kind}.{f}" for s, f in _SST_SPLITS.items()}
    files = sources.resolve_files("sst", list(names.values()), path)
    num_classes = 5 if fine_grained else 2
    return {s: read_labeled_lines(files[n], num_classes, encoding, errors)
            for s, n in names.items()}
