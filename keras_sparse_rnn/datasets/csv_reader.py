"""The CSV / TSV reader: label and text columns by index or name.

`read_csv` returns `(texts, labels)` as the other readers; `read_csv_texts`
keeps the labels as the strings of the file (a `labels.LabeledTexts`), as the
loaders read them. Several text columns are joined with a space (AG News:
title and description). `unescape_ag_news` undoes the escapes of the AG News
files.
"""

import csv
import html
import io
import re

import numpy as np

from keras_sparse_rnn.datasets import labels as labels_module
from keras_sparse_rnn.datasets.readers import check_decoding
from keras_sparse_rnn.datasets.readers import check_label
from keras_sparse_rnn.datasets.readers import read_text
from keras_sparse_rnn import validation as v

# AG News writes HTML character references with a space for their "&"
# (`It #39;s`, `the  #36;10`, `J amp;J`, ` quot;`; numbers 128-159 are
# Windows-1252, as browsers read them), some references whole (`&lt;`), and a
# line break as a backslash (`\` alone, sometimes `\\`).
_AG_NEWS_ENTITY = re.compile(r" (#\d{1,5}|quot|amp|lt|gt|apos);")
_AG_NEWS_BREAK = re.compile(r"\\+")


def unescape_ag_news(text):
    r"""AG News text with its escapes undone: ` #39;` -> `'`, `\` -> a space.

    The AG News CSVs (Zhang et al. 2015) write character references with a
    space in place of their `&` (`It #39;s`, `the  #36;10`, `J amp;J`,
    ` quot;`; `#151;` is a dash in Windows-1252, as browsers read it), some
    whole (`&lt;`), and line breaks as a backslash. Pass it as
    `text_transform=unescape_ag_news` to `load_csv`.

    Example:

    >>> print(unescape_ag_news(r"It #39;s over.\The  #36;10 J amp;J  quot;prize quot;"))
    It's over. The $10 J&J "prize"
    """
    text = _AG_NEWS_ENTITY.sub(lambda m: html.unescape(f"&{m.group(1)};"), text)
    return _AG_NEWS_BREAK.sub(" ", html.unescape(text))


def _check_columns(label_column, text_column, header):
    """`text_column` as a tuple of columns; names only with a header."""
    texts = (tuple(text_column) if isinstance(text_column, (list, tuple))
             else (text_column,))
    if not texts:
        raise ValueError("text_column must be a column or a non-empty list of "
                         "columns, got []")
    for arg, col in [("label_column", label_column)] + [("text_column", c) for c in texts]:
        if isinstance(col, str):
            if not header:
                raise ValueError(
                    f"{arg} may be a column name only with header=True, got "
                    f"{arg}={col!r} and header=False"
                )
        else:
            v.check_int(col, arg, minimum=0)
    if label_column in texts:
        raise ValueError(
            "label_column and text_column must differ, got "
            f"{label_column!r} for both"
        )
    if len(set(texts)) != len(texts):
        raise ValueError(f"text_column must not repeat a column, got {list(texts)!r}")
    return texts


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
        text_column: column of the text, as `label_column`, or a list of
            columns whose texts are joined with a space (AG News: `[1, 2]`,
            title and description).
        header: whether the first row is a header (it is then skipped).
        delimiter: one character; None means `"\\t"` for `.tsv` files and
            `","` otherwise.
        class_names: optional list of the label strings in class order; the
            label of a row is then its index in this list (e.g.
            `["1", "2", "3", "4"]` for AG News; see `labels.class_ids`).
            Without it labels must be non-negative integers (`load_csv`
            also infers the classes of other labels).
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
    class_names = labels_module.check_class_names(class_names)
    part = read_csv_texts(filename, label_column=label_column, text_column=text_column,
                          header=header, delimiter=delimiter, encoding=encoding,
                          errors=errors)
    if class_names is None:
        ids = [check_label(label, None, part.filename, line)
               for label, line in zip(part.labels, part.lines)]
        return part.texts, np.asarray(ids, dtype=np.int32)
    ids, _ = labels_module.class_ids({"file": part}, class_names)
    return part.texts, ids["file"]


def read_csv_texts(filename, *, label_column=0, text_column=1, header=False,
                   delimiter=None, encoding="utf-8", errors="strict"):
    """The rows of a CSV / TSV file with their labels as strings.

    Args: as `read_csv`.

    Returns:
        A `labels.LabeledTexts`.
    """
    filename = v.check_existing_file(filename, "filename")
    v.check_bool(header, "header")
    if delimiter is None:
        delimiter = "\t" if filename.lower().endswith(".tsv") else ","
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise ValueError(
            f"delimiter must be a single character or None, got {delimiter!r}"
        )
    text_columns = _check_columns(label_column, text_column, header)
    check_decoding(encoding, errors)

    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    texts, labels, lines = [], [], []
    text = read_text(filename, encoding, errors)
    with io.StringIO(text, newline="") as f:
        reader = csv.reader(f, delimiter=delimiter, quoting=quoting, strict=True)
        # cols is None until the header row has been read.
        cols = None if header else (label_column, *text_columns)
        width = None  # fields per row, from the first data row
        try:
            for row in reader:
                lineno = reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if cols is None:
                    cols = _header_columns(
                        row, label_column, text_columns, filename, lineno
                    )
                    continue
                _check_width(row, cols, width, delimiter, filename, lineno)
                if width is None:
                    width = (len(row), lineno)
                labels.append(row[cols[0]].strip())
                texts.append(" ".join(row[c] for c in cols[1:]))
                lines.append(lineno)
        except csv.Error as e:
            raise ValueError(
                f"{filename}, line {reader.line_num}: malformed CSV ({e})"
            ) from None
    return labels_module.LabeledTexts(texts, labels, lines, filename)


def _check_width(row, cols, width, delimiter, filename, lineno):
    """A row has the columns asked for, and as many fields as the first row."""
    need = max(cols) + 1
    if len(row) < need:
        raise ValueError(
            f"{filename}, line {lineno}: expected at least {need} "
            f"columns separated by {delimiter!r}, got {len(row)}"
        )
    if width is None:
        if delimiter == " " and len(row) > need:
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


def _header_columns(row, label_column, text_columns, filename, lineno):
    """Column indices from the header row (names are matched stripped)."""
    names = [c.strip() for c in row]
    cols = []
    for arg, col in [("label_column", label_column)] + [
            ("text_column", c) for c in text_columns]:
        if isinstance(col, str):
            if col not in names:
                raise ValueError(
                    f"{filename}, line {lineno}: {arg}={col!r} is not a column "
                    f"of the header {names}"
                )
            col = names.index(col)
        cols.append(col)
    if cols[0] in cols[1:]:
        raise ValueError(f"{filename}, line {lineno}: label_column and text_column "
                         f"name the same column {names[cols[0]]!r}")
    return tuple(cols)
