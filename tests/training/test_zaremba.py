"""`keras_sparse_rnn.training.zaremba`: Zaremba's batches and learning rate."""

import numpy as np
import pytest

from keras_sparse_rnn import training


def test_mean_loss_learning_rate_is_the_summed_rate_times_bptt():
    assert training.mean_loss_learning_rate(1.0, 35) == 35.0
    assert training.mean_loss_learning_rate(0.2, 35) == 0.2 * 35
    assert training.mean_loss_learning_rate(1, 1) == 1.0
    assert isinstance(training.mean_loss_learning_rate(1, 20), float)


@pytest.mark.parametrize("args,message", [
    ((0, 20), r"learning_rate must be a number > 0, got 0.0"),
    ((float("nan"), 20), r"learning_rate must be a number > 0, got nan"),
    ((1.0, 0), r"bptt must be a positive int, got 0"),
    ((1.0, 2.0), r"bptt must be a positive int, got 2.0 of type float"),
])
def test_mean_loss_learning_rate_checks_its_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        training.mean_loss_learning_rate(*args)


def _splits():
    return np.arange(101), np.arange(1000, 1061), np.arange(2000, 2041)


def test_lm_datasets_are_zaremba_batches_of_each_split():
    out = training.lm_datasets(_splits(), batch_size=4, bptt=5)
    # (n // batch - 1) // bptt batches: (25 - 1) // 5, (15 - 1) // 5, (10 - 1) // 5.
    assert [n for _, n in out] == [4, 2, 1]
    assert [len(list(ds)) for ds, _ in out] == [4, 2, 1]
    x, y = next(iter(out[0][0]))
    streams = np.arange(100).reshape(4, 25)
    np.testing.assert_array_equal(x.numpy(), streams[:, 0:5])
    np.testing.assert_array_equal(y.numpy(), streams[:, 1:6])
    x, _ = list(out[1][0])[1]
    np.testing.assert_array_equal(x.numpy(), 1000 + np.arange(60).reshape(4, 15)[:, 5:10])


def test_lm_datasets_cut_only_the_training_split():
    out = training.lm_datasets(_splits(), 4, 5, train_batches=2)
    assert [n for _, n in out] == [2, 2, 1]
    assert len(list(out[0][0])) == 2
    # A slice longer than the split leaves it whole.
    assert [n for _, n in training.lm_datasets(_splits(), 4, 5, train_batches=9)] == [4, 2, 1]


def test_lm_datasets_name_the_split_too_short_for_one_batch():
    train, valid, _ = _splits()
    with pytest.raises(ValueError, match=r"^the test split: ids has 23 tokens, too few "
                                         r"for one batch of batch_size=4 streams and "
                                         r"bptt=5 steps: at least 24 are needed$"):
        training.lm_datasets((train, valid, np.arange(23)), 4, 5)


@pytest.mark.parametrize("args,message", [
    ((_splits()[:2], 4, 5), r"splits must be the three id sequences"),
    (("abc", 4, 5), r"splits must be the three id sequences"),
    ((_splits(), 0, 5), r"batch_size must be a positive int, got 0"),
    ((_splits(), 4, None), r"bptt must be a positive int, got None"),
    ((_splits(), 4, 5, 0), r"train_batches must be a positive int or None, got 0"),
])
def test_lm_datasets_check_their_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        training.lm_datasets(*args)
