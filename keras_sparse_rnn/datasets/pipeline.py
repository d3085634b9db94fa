"""The `tf.data` pipeline of a text-classification split: `make_dataset`.

Texts and labels become a `tf.data.Dataset` of `(token_ids, label)` batches:

* the examples are shuffled when asked (seeded: same seed, same order; the
  loaders shuffle the training split only, the others keep their file order);
* each batch is vectorized by a `TextVectorizer` inside `tf.data`, and each
  sequence truncated and padded with 0 to `sequence_length`;
* or, with `bucket_boundaries=`, the sequences are batched by length with
  `tf.data.Dataset.bucket_by_sequence_length` and padded to the longest of
  their batch.
"""

import numpy as np
import tensorflow as tf

from keras_sparse_rnn.datasets import text
from keras_sparse_rnn import validation as v


def make_dataset(
    texts,
    labels,
    vectorizer,
    batch_size=32,
    *,
    shuffle=False,
    seed=0,
    bucket_boundaries=None,
    drop_remainder=False,
    num_classes=None,
):
    """A `tf.data.Dataset` of `(token_ids, label)` batches.

    Args:
        texts: list of str.
        labels: 1-D int array-like, one label per text.
        vectorizer: a `TextVectorizer`.
        batch_size: a positive int.
        shuffle: shuffle the examples (whole-dataset buffer, reshuffled each
            epoch, seeded: same `seed`, same order).
        seed: int seed of the shuffle.
        bucket_boundaries: None to pad every sequence to
            `vectorizer.sequence_length`; else increasing lengths for
            `tf.data.Dataset.bucket_by_sequence_length`: sequences are batched
            with others of similar length and padded (at the end) to the
            longest of their batch. Needs `vectorizer.padding == "post"`.
        drop_remainder: drop the last incomplete batch, so the batch dimension
            is static (XLA compiles one program).
        num_classes: if given, labels must be in `[0, num_classes)`.

    Returns:
        A `tf.data.Dataset` of `(token_ids, labels)`: `tf.int32` of shape
        `(batch, sequence_length)` (`(batch, None)` with buckets) and
        `tf.int32` of shape `(batch,)`.
    """
    texts = text.check_texts(texts, "texts")
    if not isinstance(vectorizer, text.TextVectorizer):
        raise ValueError(
            f"vectorizer must be a TextVectorizer, got {type(vectorizer).__name__}"
        )
    labels = _check_labels(
        texts, labels, num_classes if num_classes is not None else np.iinfo(np.int32).max
    )
    batch_size = v.check_int(batch_size, "batch_size", minimum=1)
    v.check_bool(shuffle, "shuffle")
    seed = v.check_int(seed, "seed", allow_none=True)
    v.check_bool(drop_remainder, "drop_remainder")
    bucket_boundaries = check_bucket_boundaries(
        bucket_boundaries, vectorizer.sequence_length
    )
    check_bucket_padding(bucket_boundaries, vectorizer.padding)
    if not texts:
        raise ValueError("texts is empty: a dataset needs at least one example")

    ds = tf.data.Dataset.from_tensor_slices(
        (tf.constant(texts, dtype=tf.string), tf.constant(labels, dtype=tf.int32))
    )
    if shuffle:
        ds = ds.shuffle(len(texts), seed=seed, reshuffle_each_iteration=True)
    if bucket_boundaries is None:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        ds = ds.map(
            lambda t, y: (vectorizer(t), y),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    else:
        ds = ds.map(
            lambda t, y: (vectorizer.encode(t), y),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        ds = ds.bucket_by_sequence_length(
            element_length_func=lambda x, y: tf.shape(x)[0],
            bucket_boundaries=bucket_boundaries,
            bucket_batch_sizes=[batch_size] * (len(bucket_boundaries) + 1),
            padded_shapes=([None], []),
            padding_values=(text.PAD_ID, 0),
            drop_remainder=drop_remainder,
        )
        if drop_remainder:
            # group_by_window loses the static batch size: restore it.
            ds = ds.map(
                lambda x, y: (
                    tf.ensure_shape(x, [batch_size, None]),
                    tf.ensure_shape(y, [batch_size]),
                )
            )
    return ds.prefetch(tf.data.AUTOTUNE)


def _check_labels(texts, labels, num_classes):
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(texts):
        raise ValueError(
            f"labels must be a 1-D array with one label per text ({len(texts)}), "
            f"got shape {labels.shape}"
        )
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must be in [0, {num_classes}), got values in "
            f"[{labels.min()}, {labels.max()}]"
        )
    return labels.astype(np.int32)


def check_bucket_boundaries(bucket_boundaries, sequence_length):
    """The boundaries as a list of ints (None stays None), or a `ValueError`."""
    if bucket_boundaries is None:
        return None
    if isinstance(bucket_boundaries, (str, bytes)) or not isinstance(
        bucket_boundaries, (list, tuple)
    ) or not bucket_boundaries:
        raise ValueError(
            "bucket_boundaries must be None or a non-empty list of increasing "
            f"positive ints, got {bucket_boundaries!r}"
        )
    out = [v.check_int(b, "bucket_boundaries[i]", minimum=1) for b in bucket_boundaries]
    if any(b >= c for b, c in zip(out, out[1:])) or out[-1] > sequence_length:
        raise ValueError(
            "bucket_boundaries must be strictly increasing positive ints not above "
            f"sequence_length={sequence_length}, got {list(bucket_boundaries)!r}"
        )
    return out


def check_bucket_padding(bucket_boundaries, padding):
    """Length buckets pad at the end: refuse them with `padding="pre"`."""
    if bucket_boundaries is not None and padding != "post":
        raise ValueError(
            "bucket_boundaries pads at the end of each sequence: it needs "
            f"padding='post', got padding={padding!r}"
        )
