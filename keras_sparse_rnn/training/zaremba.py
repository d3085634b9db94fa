"""Zaremba et al. (2014)'s word-level language-model training, for Keras.

Their setting (`batch` contiguous streams, windows of `bptt` steps, a loss
summed over the steps) needs two conversions in Keras: the batches of the
train, valid and test splits (`lm_datasets`, over `datasets.batchify`) and
the learning rate of Keras' mean loss (`mean_loss_learning_rate`). The
sparse PTB example and its tfmot baseline use both, so that they train the
same way.
"""

from keras_sparse_rnn import validation

SPLITS = ("train", "valid", "test")


def mean_loss_learning_rate(learning_rate, bptt):
    """The learning rate for Keras' mean loss equal to `learning_rate` for
    the loss summed over the BPTT steps: `learning_rate * bptt`.

    Zaremba et al. sum the cross-entropy over the BPTT steps (averaging it
    over the batch only); Keras' loss is the mean over both, `bptt` times
    smaller, and so is its gradient. The same SGD update therefore needs
    `lr * bptt`, and the same gradient clipping a global norm of
    `clip / bptt` (Selfish-RNN's lr 40 and clip 0.25 with BPTT 35 are this
    conversion). The reported losses stay per token: perplexity = exp(loss).

    Args:
        learning_rate: the learning rate of the summed loss, a number > 0.
        bptt: the number of time steps of a batch, an int >= 1.
    """
    learning_rate = validation.check_number(learning_rate, "learning_rate",
                                            minimum=0, exclusive_minimum=True)
    bptt = validation.check_int(bptt, "bptt", minimum=1)
    return learning_rate * bptt


def lm_datasets(splits, batch_size, bptt, train_batches=None):
    """`[(dataset, batches)]` of the train, valid and test token ids.

    Zaremba's batches (`datasets.batchify`: `batch_size` contiguous streams,
    windows of `bptt`), prefetched; the training set is cut to its first
    `train_batches` batches when given (a fixed slice for short runs).
    `batches` is the number of batches of each dataset.

    Args:
        splits: the three id sequences `(train, valid, test)`.
        batch_size: the number of streams, an int >= 1.
        bptt: the number of time steps of a batch, an int >= 1.
        train_batches: None, or an int >= 1.

    Raises:
        ValueError: an argument is invalid, or a split is too short for one
            batch (the message names the split).
    """
    from keras_sparse_rnn.datasets import batchify, num_batches

    if not isinstance(splits, (tuple, list)) or len(splits) != len(SPLITS):
        raise ValueError("splits must be the three id sequences (train, valid, "
                         f"test), got {splits!r:.100}")
    batch_size = validation.check_int(batch_size, "batch_size", minimum=1)
    bptt = validation.check_int(bptt, "bptt", minimum=1)
    train_batches = validation.check_int(train_batches, "train_batches",
                                         minimum=1, allow_none=True)
    out = []
    for name, ids, limit in zip(SPLITS, splits, (train_batches, None, None),
                                strict=True):
        try:
            ds = batchify(ids, batch_size, bptt)
        except ValueError as e:  # a split too short for one batch
            raise ValueError(f"the {name} split: {e}") from None
        n = num_batches(len(ids), batch_size, bptt)
        if limit is not None and limit < n:
            ds, n = ds.take(limit), limit
        out.append((ds.prefetch(2), n))
    return out
