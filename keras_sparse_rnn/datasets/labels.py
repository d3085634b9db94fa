"""Class ids from the labels written in the files: one meaning of `class_names`.

The readers keep each label as the string the file holds (`LabeledTexts`);
`class_ids` turns the labels of all the files of a dataset into class ids,
with the same rule in every loader:

* `class_names` given: the label strings in class order; a label's class id
  is its index in the list (`["1", "2", "3", "4"]` for AG News,
  `["DESC", "ENTY", ...]` for TREC). For backward compatibility, when some
  label is not in the list but every label is an integer in
  `[0, len(class_names))`, the integers are the class ids and `class_names`
  only names them (`["neg", "pos"]` for a file of 0 and 1 labels).
* no `class_names`: the classes are the distinct labels present. Integer
  labels that include 0 are class ids `0..max` (names `"0"`, `"1"`, ...;
  a class in that range without any example gets a warning when the
  loaders build the training split); other integer labels (AG News's 1-4)
  are taken in numeric order; any other labels in sorted string order.

`label_transform` and `text_transform` are the loaders' hooks applied to
each label and text as read (`lambda s: s.split(":")[0]` makes TREC's fine
labels `DESC:manner` coarse).
"""

import dataclasses
import warnings

import numpy as np


@dataclasses.dataclass
class LabeledTexts:
    """The examples of one file as read: texts and label strings.

    Attributes:
        texts: list of str.
        labels: list of str, one per text, stripped.
        lines: list of int, the line of each example (for messages).
        filename: the file they come from.
        skipped: number of lines skipped (label-only lines with
            `label_only_lines="skip"`).
    """

    texts: list
    labels: list
    lines: list
    filename: str
    skipped: int = 0

    def transformed(self, text_transform=None, label_transform=None):
        """A copy with the hooks applied (each must return a str)."""
        texts, labels = self.texts, self.labels
        if text_transform is not None:
            texts = [_apply(text_transform, "text_transform", t, self.filename, n)
                     for t, n in zip(texts, self.lines)]
        if label_transform is not None:
            labels = [_apply(label_transform, "label_transform", l, self.filename, n).strip()
                      for l, n in zip(labels, self.lines)]
        return dataclasses.replace(self, texts=texts, labels=labels)


def _apply(fn, name, value, filename, line):
    out = fn(value)
    if not isinstance(out, str):
        raise ValueError(f"{filename}, line {line}: {name} must return a str, got "
                         f"{out!r} of type {type(out).__name__} for {value!r}")
    return out


def check_transform(value, name):
    """None or a callable (a loader's `text_transform` / `label_transform`)."""
    if value is not None and not callable(value):
        raise ValueError(f"{name} must be None or a callable taking and returning "
                         f"a str, got {value!r}")
    return value


def check_class_names(class_names):
    """`class_names` as a list of at least 2 distinct str, or None."""
    if class_names is None:
        return None
    if (isinstance(class_names, str) or not isinstance(class_names, (list, tuple))
            or len(class_names) < 2 or not all(isinstance(c, str) for c in class_names)
            or len(set(class_names)) != len(class_names)):
        raise ValueError("class_names must be a list of at least 2 distinct str "
                         f"(the labels as the files write them, in class order) or "
                         f"None, got {class_names!r}")
    return list(class_names)


def as_int(label):
    """The int a label string writes (`"3"`, `"-1"`), else None."""
    try:
        return int(label)
    except ValueError:
        return None


def class_ids(parts, class_names=None):
    """Class ids of the labels of `parts` (`{name: LabeledTexts}`).

    Returns:
        `({name: 1-D np.int32 array}, class_names)`: the ids of each part and
        the name of each class (the `class_names` given, else the labels).

    Raises:
        ValueError: a label not in `class_names` (file and line named).
    """
    class_names = check_class_names(class_names)
    everything = [(label, part.filename, line) for part in parts.values()
                  for label, line in zip(part.labels, part.lines)]
    ints = [as_int(label) for label, _, _ in everything]
    all_int = all(i is not None for i in ints)
    if class_names is not None:
        index = {c: i for i, c in enumerate(class_names)}
        if all_int and any(label not in index for label, _, _ in everything) and all(
                0 <= i < len(class_names) for i in ints):
            lookup = int  # integer class ids, named by class_names
        else:
            for label, filename, line in everything:
                if label not in index:
                    raise ValueError(f"{filename}, line {line}: label {label!r} is not "
                                     f"one of class_names {class_names}")
            lookup = index.__getitem__
    elif all_int and ints and min(ints) == 0:
        class_names = [str(i) for i in range(max(ints) + 1)]
        lookup = int
    elif all_int:
        values = sorted(set(ints))
        class_names = [str(i) for i in values]
        rank = {value: i for i, value in enumerate(values)}
        lookup = lambda label: rank[int(label)]  # noqa: E731
    else:
        class_names = sorted({label for label, _, _ in everything})
        lookup = {c: i for i, c in enumerate(class_names)}.__getitem__
    ids = {name: np.asarray([lookup(label) for label in part.labels], np.int32)
           for name, part in parts.items()}
    return ids, class_names


def warn_empty_classes(labels, class_names, split="training", stacklevel=2):
    """Warn about each class without any example in `labels` (`stacklevel` as
    `warnings.warn`'s, counted from the caller of this function)."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=len(class_names))
    empty = [f"{i} ({class_names[i]!r})" for i in np.flatnonzero(counts == 0)]
    if empty:
        warnings.warn(
            f"{len(empty)} of the {len(class_names)} classes have no example in the "
            f"{split} split: {', '.join(empty)}. A model learns nothing of them: "
            "check that class_names lists the labels as the files write them, "
            "or use a larger training split", stacklevel=stacklevel + 1)
