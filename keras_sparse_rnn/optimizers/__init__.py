"""Optimizers for sparse recurrent networks."""

from keras_sparse_rnn.optimizers.snt_asgd import SNTASGD, SNTASGDTrigger

__all__ = ["SNTASGD", "SNTASGDTrigger"]
