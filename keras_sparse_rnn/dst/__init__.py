"""Dynamic sparse training (SET, RigL, SNFS, Selfish-RNN redistribution).

Organised as small, separately testable pieces, after
google-research/jaxpruner:

* `schedules`: drop-fraction schedules (constant, RigL's cosine, callables);
* `scores`: prune criteria (magnitude, SET) and grow criteria (random,
  gradient, momentum);
* `grow_inputs`: what a grow criterion ranks by (nothing, the gradient, a
  moving average of it), each a class with its own preparation;
* `gradient_signal`: where the gradient comes from (`grow_data`, or what a
  custom loop passes);
* `registry`: criteria and grow inputs by name, so a new variant is a
  function and a `register_prune` / `register_grow` call, a new grow signal
  a class and a `register_grow_input` call;
* `updater`: the XLA-compiled prune-and-grow of one matrix, exact counts;
* `optimizer_slots`: finding and resetting Keras 3 optimizer slots (an alias
  of `keras_sparse_rnn._keras.optimizer_slots`, below the layers);
* `records`: the checked counts and statistics of each update;
* `state`: the callback's saved state;
* `callback`: `DynamicSparsity`, the Keras callback that runs it all (its
  life cycle is `keras_sparse_rnn.base_updater.BaseUpdater`'s, shared with
  `GradualPruning`; its steps come from `keras_sparse_rnn.training_steps`;
  its reference beyond the arguments is `docs/dst.md`).
"""

from keras_sparse_rnn.dst.callback import DynamicSparsity
from keras_sparse_rnn.dst.grow_inputs import GrowInput
from keras_sparse_rnn.dst.registry import (
    grow_names,
    prune_names,
    register_grow,
    register_grow_input,
    register_prune,
)
from keras_sparse_rnn.dst.state import DynamicSparsityState
from keras_sparse_rnn.dst.schedules import ConstantSchedule, CosineSchedule
from keras_sparse_rnn.dst.updater import prune_and_grow

__all__ = [
    "ConstantSchedule",
    "CosineSchedule",
    "DynamicSparsity",
    "DynamicSparsityState",
    "GrowInput",
    "grow_names",
    "prune_and_grow",
    "prune_names",
    "register_grow",
    "register_grow_input",
    "register_prune",
]
