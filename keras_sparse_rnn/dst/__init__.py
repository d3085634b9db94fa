"""Dynamic sparse training (SET, RigL, SNFS, Selfish-RNN redistribution).

Organised as small, separately testable pieces, after
google-research/jaxpruner:

* `schedules`: drop-fraction schedules (constant, RigL's cosine, callables);
* `scores`: prune criteria (magnitude, SET) and grow criteria (random,
  gradient, momentum);
* `registry`: criteria by name, so a new variant is a function and a
  `register_prune` / `register_grow` call;
* `updater`: the XLA-compiled prune-and-grow of one matrix, exact counts;
* `optimizer_slots`: finding and resetting Keras 3 optimizer slots;
* `callback`: `DynamicSparsity`, the Keras callback that runs it all.
"""

from keras_sparse_rnn.dst.callback import DynamicSparsity, DynamicSparsityState
from keras_sparse_rnn.dst.registry import (
    grow_names,
    prune_names,
    register_grow,
    register_prune,
)
from keras_sparse_rnn.dst.schedules import ConstantSchedule, CosineSchedule
from keras_sparse_rnn.dst.updater import prune_and_grow

__all__ = [
    "ConstantSchedule",
    "CosineSchedule",
    "DynamicSparsity",
    "DynamicSparsityState",
    "grow_names",
    "prune_and_grow",
    "prune_names",
    "register_grow",
    "register_prune",
]
