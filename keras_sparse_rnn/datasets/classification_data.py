"""`TextClassificationData` and how every loader builds it from its splits.

`build_data` takes the splits as lists (`{name: (texts, labels)}`), holds out
the validation split asked for, builds the vocabulary from the training split
only, and makes one `tf.data.Dataset` per split (`pipeline.make_dataset`)
with one `TextVectorizer`, which the result also returns for new texts.
"""

import dataclasses

import tensorflow as tf

from keras_sparse_rnn.datasets.labels import warn_empty_classes
from keras_sparse_rnn.datasets.pipeline import make_dataset
from keras_sparse_rnn.datasets.splits import train_test_split
from keras_sparse_rnn.datasets.text import TextVectorizer
from keras_sparse_rnn.datasets.text import build_vocabulary

_SPLITS = ("train", "valid", "test")


@dataclasses.dataclass
class TextClassificationData:
    """Batched splits of a text-classification dataset and their vocabulary.

    Attributes:
        train: `tf.data.Dataset` of `(token_ids int32 (batch, seq_len),
            label int32 (batch,))`, shuffled with the loader's seed.
        valid: the same for the validation split, or None when there is none.
        test: the same for the test split, or None when there is none.
        vocab: list of str, `vocab[id]`; 0 is padding `""`, 1 is `"[UNK]"`.
        num_classes: number of classes; labels are in `[0, num_classes)`.
        class_names: list of `num_classes` names.
        sequence_length: length of the padded sequences.
        num_examples: dict from split name to its number of examples.
        vectorizer: the `TextVectorizer` that turns new texts into ids,
            standardized and tokenized as the training texts were (so
            `vectorizer(["What is the capital of France?"])` gives the id of
            `france`, then that of `?`, with `split_punctuation=True`).
        skipped_lines: dict from the role of a file (`"train"`, `"valid"`,
            `"test"`) to the number of its lines left out
            (`load_labeled_lines(..., label_only_lines="skip")`); empty when
            none was.
    """

    train: tf.data.Dataset
    valid: object
    test: object
    vocab: list
    num_classes: int
    class_names: list
    sequence_length: int
    num_examples: dict
    vectorizer: TextVectorizer
    skipped_lines: dict = dataclasses.field(default_factory=dict)

    @property
    def vocab_size(self):
        """Number of ids, padding and OOV included."""
        return len(self.vocab)


def build_data(splits, class_names, options, skipped_lines=None):
    """The `TextClassificationData` of `splits` (`{name: (texts, labels)}`).

    Warns when a class has no example in the training split.
    """
    if options.validation_split > 0:
        if splits.get("valid") is not None:
            raise ValueError(
                f"validation_split={options.validation_split} but the dataset "
                "already has a validation split; use validation_split=0"
            )
        splits = dict(splits)
        splits["train"], splits["valid"] = _split_validation(
            *splits["train"], options.validation_split, options.seed
        )
    # Reported at the line of the user's call of the loader.
    warn_empty_classes(splits["train"][1], class_names, stacklevel=3)
    vocab = build_vocabulary(
        splits["train"][0], options.max_tokens, **options.standardization
    )
    vectorizer = TextVectorizer(
        vocab,
        options.sequence_length,
        padding=options.padding,
        truncating=options.truncating,
        **options.standardization,
    )
    datasets = {}
    for name in _SPLITS:
        split = splits.get(name)
        datasets[name] = None if split is None else make_dataset(
            *split,
            vectorizer,
            options.batch_size,
            shuffle=name == "train",
            seed=options.seed,
            bucket_boundaries=options.bucket_boundaries,
            drop_remainder=options.drop_remainder,
            num_classes=len(class_names),
        )
    return TextClassificationData(
        **datasets,
        vocab=vocab,
        num_classes=len(class_names),
        class_names=list(class_names),
        sequence_length=options.sequence_length,
        num_examples={
            k: len(s[0]) for k, s in splits.items() if s is not None
        },
        vectorizer=vectorizer,
        skipped_lines=dict(skipped_lines or {}),
    )


def _split_validation(texts, labels, validation_split, seed):
    """`(train, valid)`: `int(validation_split * n)` random examples held out."""
    n_valid = int(len(texts) * validation_split)
    if n_valid == 0 or n_valid == len(texts):
        raise ValueError(
            f"validation_split={validation_split} of {len(texts)} training "
            f"examples gives {n_valid} validation examples; use a larger "
            "(or zero) validation_split"
        )
    # train_test_split holds out round(test_fraction * n) examples: this
    # fraction gives exactly n_valid (the loaders round down).
    return train_test_split(
        texts, labels, test_fraction=n_valid / len(texts), seed=seed, stratify=False
    )
