"""Every use of Keras (3.15) and Python internals, one small module per concern.

The rest of the library uses public APIs only; where none serves, it calls a
function here. `tests/test_keras_adapter.py` checks each function against the
pinned Keras, so that a Keras that changes one of these fails there, naming
the module to update:

- `callers`: what Keras code is calling us (the only stack-frame reads):
  `Layer.set_weights` in progress, the `CallbackList` running a callback, an
  optimizer's update;
- `layers`: a layer's tracked sub-layers and own variables, the load check;
- `variables`: a Keras variable subclass whose `assign` is checked first;
- `optimizer_slots`: the per-weight slots of Keras optimizers;
- `multi_optimizer`: a `MultiOptimizer`'s inner optimizers and which one
  trains a variable (used by `optimizers.wrappers`);
- `rnn`: Keras's dropout mixin for RNN cells and its cuDNN test;
- `functional`: running a functional model's graph op by op;
- `training`: the model's compiled loss;
- `backup`: `BackupAndRestore` with its own checkpoint writer
  (`training.runs.epoch_backup`).
"""
