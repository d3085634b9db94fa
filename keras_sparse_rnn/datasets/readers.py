"""Readers of the text-classification file formats, as Python lists.

Each reader returns `(texts, labels)`: a list of str and a 1-D `np.int32`
array (or a dict of them, one per split). A malformed file fails with a
`ValueError` that names the file and the line.

* `read_jsonl_xz`: LZMA-compressed JSON Lines, one `{"text", "label"}` object a
  line; `read_imdb` finds IMDB's `train.jsonl.xz` and `test.jsonl.xz`.
* `read_labeled_lines`: `<label> <text>` lines (SST `stsa.*`, TREC, MR, ...);
  `read_sst` finds SST's `stsa.binary.*` or `stsa.fine.*` files.
* `read_csv`: CSV or TSV files, label and text columns by index or name.

Every reader takes `encoding` and `errors` as `bytes.decode` does
(`check_decoding` checks them).
"""

import codecs
import csv
import io
import json
import lzma

import numpy as np

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
                labels.append(_check_label(label, num_classes, filename, lineno))
    except (lzma.LZMAError, EOFError, UnicodeDecodeError) as e:
        raise ValueError(
            f"{filename} is not a valid {encoding} .xz file: {type(e).__name__}: {e}"
            " (pass encoding= or errors='replace')"
        ) from None
    return texts, np.asarray(labels, dtype=np.int32)


def _check_label(label, num_classes, filename, lineno):
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
        allowed = f"[0, {num_classes})" if num_classes else ">= 0"
        raise ValueError(
            f"{filename}, line {lineno}: the label must be in {allowed}, got "
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


def _read_text(filename, encoding, errors):
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


def read_labeled_lines(filename, num_classes=None, encoding="utf-8", errors="strict"):
    """Read a `<label> <text>` file (SST `stsa.*`, TREC, MR, ...).

    Each line is an integer label, one space (or any whitespace) and the
    text. Line endings `\\r\\n` are accepted.

    Args:
        filename: path of the file.
        num_classes: if given, labels must be in `[0, num_classes)`.
        encoding: text encoding (`"latin-1"` for TREC and MR).
        errors: how decoding errors are handled (`"strict"`, `"replace"`).

    Returns:
        `(texts, labels)`: a list of str and a 1-D `np.int32` array.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a line without a label and a text, or a bad label; the
            message names the file and the line.

    Example:

    >>> texts, labels = read_labeled_lines("sst/stsa.binary.dev", 2)  # doctest: +SKIP
    """
    filename = v.check_existing_file(filename, "filename")
    num_classes = v.check_int(num_classes, "num_classes", minimum=1, allow_none=True)
    check_decoding(encoding, errors)
    lines = _read_text(filename, encoding, errors).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    texts, labels = [], []
    for lineno, line in enumerate(lines, 1):
        line = line.rstrip("\r")
        parts = line.split(None, 1)
        if len(parts) != 2:
            raise ValueError(
                f"{filename}, line {lineno}: expected '<label> <text>', got "
                f"{line!r}"
            )
        labels.append(_check_label(parts[0], num_classes, filename, lineno))
        texts.append(parts[1].strip())
    return texts, np.asarray(labels, dtype=np.int32)


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


def read_csv(
    filename,
    *,
    label_column=0,
    text_column=1,
    header=False,
    delimiter=None,
    class_names=None,
    encoding="utf-8",
    errors="strict",
):
    """Read `(texts, labels)` from a CSV or TSV file.

    Blank lines are skipped. Tab-separated files are read without quote
    processing (as the GLUE TSVs must be); comma-separated files with the
    standard `"` quoting.

    Args:
        filename: path of the file.
        label_column: column of the label, an int index, or a column name
            when `header=True`.
        text_column: column of the text, as `label_column`.
        header: whether the first row is a header (it is then skipped).
        delimiter: one character; None means `"\\t"` for `.tsv` files and
            `","` otherwise.
        class_names: optional list of the label strings in class order; the
            label of a row is then its index in this list (e.g.
            `["1", "2", "3", "4"]` for AG News). Without it labels must be
            non-negative integers.
        encoding: text encoding.
        errors: how decoding errors are handled.

    Returns:
        `(texts, labels)`: a list of str and a 1-D `np.int32` array.

    Raises:
        FileNotFoundError: no such file.
        ValueError: bad arguments, a row with too few columns or a bad label;
            the message names the file and the line.

    Example:

    >>> texts, labels = read_csv("sst2-glue/dev.tsv", header=True)  # doctest: +SKIP
    """
    filename = v.check_existing_file(filename, "filename")
    v.check_bool(header, "header")
    if delimiter is None:
        delimiter = "\t" if filename.lower().endswith(".tsv") else ","
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise ValueError(
            f"delimiter must be a single character or None, got {delimiter!r}"
        )
    for arg, col in (("label_column", label_column), ("text_column", text_column)):
        if isinstance(col, str):
            if not header:
                raise ValueError(
                    f"{arg} may be a column name only with header=True, got "
                    f"{arg}={col!r} and header=False"
                )
        else:
            v.check_int(col, arg, minimum=0)
    if label_column == text_column:
        raise ValueError(
            "label_column and text_column must differ, got "
            f"{label_column!r} for both"
        )
    class_index = None
    if class_names is not None:
        if isinstance(class_names, str) or not all(
            isinstance(c, str) for c in class_names
        ) or len(class_names) < 2 or len(set(class_names)) != len(class_names):
            raise ValueError(
                "class_names must be a list of at least 2 distinct str or None, "
                f"got {class_names!r}"
            )
        class_index = {c: i for i, c in enumerate(class_names)}
    check_decoding(encoding, errors)

    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    texts, labels = [], []
    text = _read_text(filename, encoding, errors)
    with io.StringIO(text, newline="") as f:
        reader = csv.reader(f, delimiter=delimiter, quoting=quoting, strict=True)
        # cols is None until the header row has been read.
        cols = None if header else (label_column, text_column)
        width = None  # fields per row, from the first data row
        try:
            for row in reader:
                lineno = reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if cols is None:
                    cols = _header_columns(
                        row, label_column, text_column, filename, lineno
                    )
                    continue
                need = max(cols) + 1
                if len(row) < need:
                    raise ValueError(
                        f"{filename}, line {lineno}: expected at least {need} "
                        f"columns separated by {delimiter!r}, got {len(row)}"
                    )
                if width is None:
                    width = (len(row), lineno)
                    if delimiter == " " and len(row) > max(cols) + 1:
                        raise ValueError(
                            f"{filename}, line {lineno}: {len(row)} fields "
                            "separated by ' ': the text column would keep one "
                            "word. For '<label> <text>' lines use "
                            "read_labeled_lines / load_labeled_lines")
                elif len(row) != width[0]:
                    raise ValueError(
                        f"{filename}, line {lineno}: {len(row)} fields separated "
                        f"by {delimiter!r}, but line {width[1]} has {width[0]}: "
                        "a text with unquoted delimiters? Quote the texts, or "
                        "for '<label> <text>' lines use load_labeled_lines")
                raw = row[cols[0]].strip()
                if class_index is not None:
                    if raw not in class_index:
                        raise ValueError(
                            f"{filename}, line {lineno}: label {raw!r} is not one "
                            f"of class_names {class_names}"
                        )
                    labels.append(class_index[raw])
                else:
                    labels.append(_check_label(raw, None, filename, lineno))
                texts.append(row[cols[1]])
        except csv.Error as e:
            raise ValueError(
                f"{filename}, line {reader.line_num}: malformed CSV ({e})"
            ) from None
    return texts, np.asarray(labels, dtype=np.int32)


def _header_columns(row, label_column, text_column, filename, lineno):
    """Column indices from the header row (names are matched stripped)."""
    names = [c.strip() for c in row]
    cols = []
    for arg, col in (("label_column", label_column), ("text_column", text_column)):
        if isinstance(col, str):
            if col not in names:
                raise ValueError(
                    f"{filename}, line {lineno}: {arg}={col!r} is not a column "
                    f"of the header {names}"
                )
            col = names.index(col)
        cols.append(col)
    return tuple(cols)
