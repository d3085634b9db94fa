"""`BaseUpdater`: the life cycle `DynamicSparsity` and `GradualPruning` share.

After jaxpruner's `BaseUpdater` (`jaxpruner/base_updater.py`), a mask
updater is three steps: a *schedule* (when to update and by how much: a
drop fraction, a target sparsity), *scores* (what ranks the positions of
each sparse matrix) and *masks* (the best positions kept, with exact counts:
`masks.top_k_mask`, or the compiled `dst.updater` for DST). The two
callbacks of this package differ in those steps; this base holds what they
do alike around them, once:

* `set_model` finds the model's sparse matrices (`_set_up`) as soon as the
  sparse layers are built (else the first `on_train_batch_end` does);
* `on_train_begin` (in `fit`) and `attach` (a custom loop) learn how many
  steps the training will run (`TrainingSteps`) and resolve the schedule
  against them (`_resolve_steps`), set up on the model if not done yet, and
  give the subclass its start (`_begin`); `on_train_begin` also moves the
  callback before the loggers, so the values it adds to `logs` reach them;
* the optimizer is the one `attach` was given, else the model's, and its
  `iterations` are the steps the schedule counts (`_iterations`).

A subclass implements `_set_up(model)` and `_resolve_steps(steps)`, and may
override `_check_fit()` (before anything at the start of `fit`) and
`_begin()`.
"""

import keras

from keras_sparse_rnn import callback_order, model_utils
from keras_sparse_rnn.training_steps import TrainingSteps


class BaseUpdater(keras.callbacks.Callback):
    """Base of the callbacks that update the masks of a model's sparse
    matrices during training (see the module docstring for the life cycle).

    Attributes:
        builds_optimizer: class attribute; when True, `attach` builds an
            unbuilt optimizer on the model's trainable variables (the DST
            callback reads and resets its slots from the first update).
    """

    builds_optimizer = False

    def __init__(self):
        super().__init__()
        self._setup_model = None  # the model `_set_up` last ran for
        self._optimizer = None    # given to `attach` (custom loops)

    # What a subclass implements --------------------------------------------

    def _set_up(self, model):
        """Finds the sparse matrices of the built `model`; must end by
        setting `self._setup_model = model`."""
        raise NotImplementedError

    def _resolve_steps(self, steps):
        """Resolves the schedule's arguments against `steps`, the
        `TrainingSteps` of the training about to run."""
        raise NotImplementedError

    def _check_fit(self):
        """Checks at the start of `fit`, before anything else."""

    def _begin(self):
        """Runs once the steps are resolved and the model is set up (when
        built) at the start of a training: in `fit` and in `attach`."""

    # The life cycle --------------------------------------------------------

    def _is_set_up(self):
        return self.model is not None and self._setup_model is self.model

    def _set_up_if_built(self):
        """Sets up on `self.model` unless done already or its sparse layers
        are not built yet (a subclassed or Sequential model without `Input`
        is built by its first train step: the batch hooks set up then)."""
        if (not self._is_set_up()
                and model_utils.sparse_layers_built(self.model)):
            self._set_up(self.model)

    def _ensure_set_up(self):
        """Sets up on `self.model` now (its layers must be built)."""
        if not self._is_set_up():
            self._set_up(self.model)

    def set_model(self, model):
        super().set_model(model)
        self._set_up_if_built()

    def on_train_batch_end(self, batch, logs=None):
        self._ensure_set_up()  # an unbuilt model is built by its first step

    def on_train_begin(self, logs=None):
        self._check_fit()
        steps = TrainingSteps.of_fit(self.params)
        # Log values reach TensorBoard, CSVLogger, EarlyStopping... whatever
        # the order the user listed the callbacks in.
        callback_order.move_before_log_consumers(self)
        self._set_up_if_built()
        self._resolve_steps(steps)
        if self._is_set_up():
            self._begin()

    def attach(self, model, optimizer, total_steps=None):
        """Sets the callback up for a custom training loop (no `compile`):
        call its `step_end` after each optimizer step then.

        Call it once the model is built (called on data) and before the
        first `step_end` (`DynamicSparsity`: `epoch_end`, `update_topology`).

        Args:
            model: the built model.
            optimizer: the Keras optimizer (built or not) your loop applies
                gradients with: its `iterations` count the steps of the
                schedule (`DynamicSparsity` also resets its slots at grown
                positions at each update).
            total_steps: the planned number of optimizer steps; needed where
                the schedule runs to "the end of training" (`stop=None`,
                `end_step=None`) or takes fractions of it (`start`, `stop`
                as floats). `None` with steps given as ints.

        Returns:
            `self`.
        """
        total_steps = model_utils.check_attach(model, optimizer, total_steps)
        self._optimizer = optimizer
        if self.builds_optimizer and not optimizer.built:
            optimizer.build(model.trainable_variables)
        self.set_model(model)
        self._ensure_set_up()
        self._resolve_steps(TrainingSteps.of_attach(total_steps))
        self._begin()
        return self

    # The optimizer and its steps -------------------------------------------

    def _get_optimizer(self):
        """The optimizer given to `attach`, else the model's (or `None`)."""
        if self._optimizer is not None:
            return self._optimizer
        return getattr(self.model, "optimizer", None)

    def _iterations(self):
        """The optimizer steps done so far (the schedules' step count)."""
        if hasattr(self.model, "jax_state_sync"):
            self.model.jax_state_sync()
        return int(keras.ops.convert_to_numpy(
            self._get_optimizer().iterations))
