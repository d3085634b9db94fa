"""`DynamicSparsity`: the callback that evolves the masks during training.

It decides when an update is due (its steps resolved once per training by
`base_updater.BaseUpdater`, the life cycle it shares with `GradualPruning`),
and at each update, for every sparse matrix, asks its grow input
(`grow_inputs`, from the registry) for the tensor the grow criterion ranks
by, runs the compiled prune-and-grow (`updater`), records and checks the
new counts (`records`), then assigns the new mask and weight through the one
write path (`SparseMatrix.replace`: the pair, the optimizer slots reset at
grown positions, the optimizer's topology hook). Its saved state is `state`. The user's
reference beyond the arguments is `docs/dst.md`.
"""

import contextlib
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_sparse_rnn import masks as masks_lib
from keras_sparse_rnn.base_updater import BaseUpdater
from keras_sparse_rnn.dst import records, registry, schedules, updater
from keras_sparse_rnn.dst.gradient_signal import GradientSignal, check_grow_data
from keras_sparse_rnn.dst.grow_inputs import GrowContext
from keras_sparse_rnn.dst.state import STATE_ATTR, DynamicSparsityState
from keras_sparse_rnn.model_utils import sparse_matrices
from keras_sparse_rnn.training_steps import (DEFAULT_EVERY_EPOCHS, check_period,
                                             check_start_stop)
from keras_sparse_rnn.validation import check_fraction, check_int, check_verbose


def _check_block_path(matrices, grow_input, grow):
    """A grow input that reads the optimizer's first moment cannot rank the
    inactive positions of a matrix on the block path (zero gradient there)."""
    on_blocks = [s.weight.path for s in matrices
                 if s.name in getattr(s.layer, "block_path_weights", list)()]
    if on_blocks and grow_input.reads_optimizer_moment():
        raise ValueError(
            f"grow={grow!r} ranks inactive weights by the optimizer's momentum, "
            f"but {on_blocks} are computed from their active blocks "
            "(compute_path), whose training gradient is zero outside them. Use "
            "compute_path='masked_dense' on those layers, or grow='gradient' "
            "(RigL: its gradient is taken masked-dense on grow_data)")


class DynamicSparsity(BaseUpdater):
    """Dynamic sparse training: evolves the masks of every sparse matrix.

    Periodically, in each sparse matrix of the model, removes a fraction of
    the active weights and activates as many inactive ones (exact counts,
    grown weights and their optimizer slots starting at 0), so the number of
    parameters stays fixed while the topology adapts: SET (`prune="set"` or
    `"magnitude"`, `grow="random"`), RigL (`grow="gradient"`), SNFS
    (`grow="momentum"`), with Selfish-RNN's cell weight redistribution
    (`redistribution="gates"`). Without the callback the masks stay static.

    Reference (one update, when updates happen, the logs, custom
    optimizers' `update_sparse_topology`, resuming and what it keeps):
    `docs/dst.md` in the package's source tree.

    Args:
        drop_fraction: Fraction `zeta_0` of each matrix's active weights
            replaced at the first update, in (0, 1). Defaults to `0.3`.
        schedule: `"cosine"` (RigL: `zeta_0 / 2 * (1 + cos(pi * t / T))`,
            `t` the step of the update and `T` the `stop` step), `"constant"`,
            or a callable `(update_index, step) -> fraction in [0, 1)`.
        prune: `"magnitude"` (smallest |w|) or `"set"` (the positive and,
            separately, the negative weights closest to zero), or a name
            registered with `keras_sparse_rnn.dst.register_prune`.
        grow: `"random"` (SET), `"gradient"` (RigL: largest |dL/d(W*M)| on
            `grow_data`), `"momentum"` (SNFS: largest |moving average of the
            gradient|: the optimizer's first moment for SGD with momentum,
            Adam, AdamW, Nadam, Adamax, Lamb and Lion, as SNFS reads it; for
            other optimizers a moving average (decay 0.9) of the gradient on
            `grow_data` taken at each update, kept by the callback), or a
            registered name.
        update_every_epochs: Update at the end of every this many epochs.
            Defaults to `1`.
        update_every_steps: Update every this many optimizer steps instead;
            give only one of the two.
        start: First step an update may happen at: an int (steps), or a
            float in [0, 1), a fraction of the planned training
            (`epochs * steps per epoch` of `fit`). Defaults to `0`.
        stop: Updates happen at steps `< stop`: None (the end of the planned
            training), an int, or a float in (0, 1]. `schedule="cosine"`
            reaches zero there.
        redistribution: `"none"`: each gate block of a packed kernel (LSTM
            i, f, c, o; RHN; GRU) keeps its own count; `"gates"`: the gates of
            a matrix are pruned and grown as one, the total is fixed and the
            gates' shares drift (Selfish-RNN's cell weight redistribution).
        grow_data: For `grow="gradient"` (required) and `"momentum"` (when
            the optimizer keeps no first moment): an `(x, y)` or
            `(x, y, sample_weight)` batch, or a `tf.data.Dataset` of batches
            whose first batch is used at each update (a dataset that
            reshuffles gives a new batch each time; for exact resumability
            use a fixed batch or an unshuffled dataset). The gradient is
            computed with `training=False` (no dropout); the states of
            stateful RNN layers are put back afterwards (the batch size must
            then be the model's). Multi-worker training: `docs/dst.md`.
        seed: Non-negative int seeding the random choices. Defaults to `0`.
        verbose: `0` (or False) silent; `1`, `2` or True print one line per
            update (Keras's callbacks take a bool or a level).

    Example:

    >>> import keras_sparse_rnn as ksr
    >>> model = keras.Sequential([
    ...     keras.Input((10,), dtype="int32"),
    ...     ksr.SparseEmbedding(100, 16, sparsity=0.9, mask_seed=0),
    ...     ksr.SparseLSTM(16, sparsity=0.8, mask_seed=1),
    ...     ksr.SparseDense(100, sparsity=0.8, mask_seed=2)])
    >>> model.compile("adam",
    ...               keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> x = np.random.randint(0, 100, (64, 10))
    >>> y = np.random.randint(0, 100, (64,))
    >>> rigl = DynamicSparsity(0.3, grow="gradient", grow_data=(x[:16], y[:16]))
    >>> history = model.fit(x, y, epochs=3, callbacks=[rigl], verbose=0)
    >>> [u["step"] for u in rigl.updates]  # after epochs 1 and 2 (2 steps each)
    [2, 4]
    >>> sorted(k for k in history.history if k.startswith("dst_share"))
    ['dst_share_c', 'dst_share_f', 'dst_share_i', 'dst_share_o']
    """

    def __init__(
        self,
        drop_fraction=0.3,
        schedule="cosine",
        prune="magnitude",
        grow="random",
        update_every_epochs=DEFAULT_EVERY_EPOCHS,
        update_every_steps=None,
        start=0,
        stop=None,
        redistribution="none",
        grow_data=None,
        seed=0,
        verbose=0,
    ):
        super().__init__()
        if keras.backend.backend() != "tensorflow":
            raise ValueError(
                "DynamicSparsity runs on the TensorFlow backend only, got "
                f"KERAS_BACKEND={keras.backend.backend()!r}"
            )
        self.drop_fraction = check_fraction(drop_fraction, "drop_fraction",
                                            include_low=False)
        self.schedule = schedules.check_schedule(schedule)
        self.prune = registry.get_prune(prune).name
        grow_method = registry.get_grow(grow)
        self.grow = grow_method.name
        self._grow_input_cls = registry.get_grow_input(grow_method.needs)
        self.update_every_epochs, self.update_every_steps = check_period(
            update_every_epochs, update_every_steps)
        self.start, self.stop = check_start_stop(start, stop)
        self.redistribution = registry.check_redistribution(redistribution)
        grow_data = check_grow_data(grow_data)
        if not self._grow_input_cls.uses_gradient and grow_data is not None:
            raise ValueError(
                f"grow_data is used only by grow='gradient' or 'momentum' (or "
                f"a grow criterion whose grow input reads the gradient), got "
                f"grow={grow!r} with grow_data: remove it"
            )
        self.grow_data = grow_data
        self.seed = check_int(seed, "seed", minimum=0)
        self.verbose = check_verbose(verbose)
        self.updates = []  # the records of the updates this object ran
        # Set by `_set_up` for one model (`BaseUpdater`):
        self._matrices = None
        self._state = None
        self._grow_input = None
        self._signal = None
        self._expected = []  # per matrix: the active count of each gate
        # Set by `_resolve_steps` at the start of each training:
        self._window = None
        self._schedule_fn = None
        self._epoch_records = []

    # Set-up (the life cycle is `BaseUpdater`'s) -------------------------

    builds_optimizer = True  # `attach` builds it: updates read its slots

    def _set_up(self, model):
        """Finds the sparse matrices and attaches the state to the model."""
        matrices = [s for s in sparse_matrices(model) if s.weight.trainable]
        if not matrices:
            raise ValueError(
                f"model '{model.name}' has sparse weights, but none is "
                "trainable: DynamicSparsity has nothing to update"
            )
        for matrix in matrices:
            updater.check_shape(matrix.weight.shape, matrix.gates, matrix.block_shape,
                                self.redistribution,
                                where=f"Sparse weight '{matrix.weight.path}'")
        grow_input = self._grow_input_cls(self._get_optimizer())
        _check_block_path(matrices, grow_input, self.grow)
        strategy = getattr(model, "distribute_strategy", None)
        if (isinstance(self.grow_data, tf.data.Dataset)
                and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)):
            raise ValueError(
                "grow_data is a tf.data.Dataset under MultiWorkerMirroredStrategy: "
                "each worker reads its own copy of it (shuffled or sharded "
                "differently), and workers that rank positions on different "
                "batches grow different weights. Give one fixed (x, y) batch of "
                "arrays, the same on every worker")
        scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
        with scope:
            state = DynamicSparsityState(matrices, grow_input.state_name)
        object.__setattr__(model, STATE_ATTR, state)
        self._setup_model = model
        self._matrices = matrices
        self._state = state
        self._grow_input = grow_input
        self._signal = GradientSignal(self.grow_data, model, matrices)
        self._expected = [masks_lib.gate_counts(s.mask.numpy(), s.gates)
                          for s in matrices]

    def _check_fit(self):
        if self.model.optimizer is None:
            raise RuntimeError(
                "DynamicSparsity in fit needs a compiled model; in a custom "
                "training loop call attach(model, optimizer) instead")
        # In fit, grow_data is the only gradient signal there is.
        grow_input = self._grow_input_cls(self.model.optimizer)
        if grow_input.needs_gradient() and self.grow_data is None:
            raise ValueError(grow_input.missing_gradient_message(self.grow))

    def _resolve_steps(self, steps):
        """Resolves start, stop and the period in steps for this training."""
        self._window = steps.window(self.start, self.stop,
                                    self.update_every_steps,
                                    self.update_every_epochs)
        self._set_schedule(self._window.stop)
        spe = getattr(self.model, "steps_per_execution", 1) or 1
        if self.update_every_steps is not None and spe > self.update_every_steps:
            warnings.warn(
                f"steps_per_execution={spe} is larger than update_every_steps="
                f"{self.update_every_steps}: batch callbacks fire once per "
                f"{spe} steps, so at most one update happens per {spe} steps "
                "(at the first chunk end after each due step)",
                stacklevel=2)

    def _set_schedule(self, decay_steps):
        """The one place the drop-fraction schedule is built: at the start
        of each training, decaying at its resolved stop; or, for an update
        before any training, at `stop` given in steps (`_drop_fraction`)."""
        self._schedule_fn = schedules.get(
            self.schedule, self.drop_fraction, decay_steps=decay_steps)

    # When to update ---------------------------------------------------------

    def _maybe_update(self, completed_epochs=None):
        window = self._window
        step = self._iterations()
        if window.period is not None:
            point = step // window.period
        elif completed_epochs is None:
            return
        else:
            point = completed_epochs // self.update_every_epochs
        last, count = self._state.progress()
        if point < last:
            # The step count went back (a new optimizer): start over from it.
            self._state.set_progress(point, count)
            return
        due = None  # the step the point fell due at, when steps are known
        if window.period is not None:
            if window.stop is not None:
                # A chunk end (steps_per_execution) past stop still does the
                # update due before stop; none is due at stop itself.
                point = min(point, (window.stop - 1) // window.period)
            due = point * window.period
        elif window.stop is not None and step >= window.stop:
            return
        if point <= last or point < 1:
            return
        self._state.set_progress(point, count)
        if (due if due is not None else step) < window.start:
            return
        return self.update_topology(step)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_records = []
        if not self._is_set_up():
            return  # an unbuilt model: set up after its first step
        # Catches up an update that a restored checkpoint has not done yet.
        self._maybe_update(completed_epochs=epoch)

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)  # sets up an unbuilt model
        if self.update_every_steps is not None:
            self._maybe_update()

    def on_epoch_end(self, epoch, logs=None):
        self._ensure_set_up()
        if self.update_every_steps is None:
            self._maybe_update(completed_epochs=epoch + 1)
        if logs is not None:
            logs.update(records.epoch_logs(
                self._epoch_records, self._matrices, self._state.ever_active))
        self._epoch_records = []

    # Custom training loops ----------------------------------------------

    def step_end(self, loss_fn=None, batch=None, gradients=None):
        """Call after each optimizer step of a custom loop (see `attach`).

        Runs the topology update when one is due (`update_every_steps`,
        counted with the optimizer's `iterations`, between `start` and
        `stop`). For `grow="gradient"` (and `"momentum"` with an optimizer
        without a first moment) give the gradient signal: `loss_fn` (a Keras
        loss or `fn(y_true, y_pred)`) and a `batch` `(x, y)` or
        `(x, y, sample_weight)`, or `gradients`, the list aligned with
        `model.trainable_variables` that `tape.gradient` returned; else
        `grow_data` of the constructor is used.

        Returns:
            The update's record, or `None` when no update was due.
        """
        self._check_attached("step_end")
        if self.update_every_steps is None:
            raise ValueError(
                "step_end updates by steps: build the callback with "
                "update_every_steps=N, or call epoch_end(epoch) at the end of "
                "each epoch")
        with self._signal.given(loss_fn, batch, gradients):
            return self._maybe_update()

    def epoch_end(self, epoch, loss_fn=None, batch=None, gradients=None):
        """Call at the end of epoch `epoch` (0-based) of a custom loop; runs
        the update of `update_every_epochs` when due. Arguments and return
        value as `step_end`."""
        self._check_attached("epoch_end")
        if self.update_every_steps is not None:
            raise ValueError(
                "epoch_end updates by epochs, but the callback has "
                f"update_every_steps={self.update_every_steps}: call step_end "
                "after each step instead")
        epoch = check_int(epoch, "epoch", minimum=0)
        with self._signal.given(loss_fn, batch, gradients):
            self._epoch_records = []
            return self._maybe_update(completed_epochs=epoch + 1)

    def _check_attached(self, name):
        if self.model is None or self._setup_model is None:
            raise RuntimeError(
                f"{name} needs a model: call attach(model, optimizer) first "
                "(in model.fit the callback runs by itself)")

    # The update -------------------------------------------------------------

    def _seed(self, update_index, i):
        """The stream of matrix `i` at an update: from `seed`, the update
        index and what stays the same when the same model is built twice in
        one process (not the auto-generated layer names): the matrix's
        position among the model's sparse weights, its layer's `mask_seed`
        and its attribute name."""
        matrix = self._matrices[i]
        return tf.constant(
            [self.seed, masks_lib.stable_seed(
                "dst", update_index, i, matrix.layer.mask_seed, matrix.name)],
            dtype=tf.int64)

    def _drop_fraction(self, index, step, drop_fraction):
        if drop_fraction is not None:
            return check_fraction(drop_fraction, "drop_fraction")
        if self._schedule_fn is None:  # called before any training
            self._set_schedule(self.stop if isinstance(self.stop, int) else None)
        return check_fraction(self._schedule_fn(index, step), "schedule",
                              verb="return")

    def update_topology(self, step=None, drop_fraction=None, loss_fn=None,
                        batch=None, gradients=None):
        """Runs one update of every sparse matrix now, due or not.

        The callback calls it at the scheduled steps; call it yourself outside
        `fit` (a custom loop after `attach`, or to measure it). The model must
        be compiled (or attached) and its optimizer built.

        Args:
            step: the step passed to the schedule; defaults to the
                optimizer's `iterations`.
            drop_fraction: use this fraction instead of the schedule's.
            loss_fn, batch, gradients: the gradient signal, as in `step_end`.

        Returns:
            The update's record (also appended to `self.updates`; its
            `"update"` is the index among all the training's updates,
            `update_count` before this one).
        """
        if self.model is None:
            raise RuntimeError("update_topology needs a model: call "
                               "attach(model, optimizer) first")
        self._ensure_set_up()
        if not self._signal.is_given and (
                loss_fn is not None or batch is not None or gradients is not None):
            with self._signal.given(loss_fn, batch, gradients):
                return self.update_topology(step, drop_fraction)
        if step is None:
            step = self._iterations()
        last_point, index = self._state.progress()
        fraction = self._drop_fraction(index, step, drop_fraction)
        if fraction > 0:
            per_matrix = self._prune_and_grow(index, fraction)
        else:
            per_matrix = [records.unchanged_record(matrix, expected)
                          for matrix, expected in zip(self._matrices, self._expected)]
        self._state.set_progress(last_point, index + 1)
        record = records.update_record(index, step, fraction, per_matrix,
                                       self._matrices, self._state.ever_active)
        self.updates.append(record)
        self._epoch_records.append(record)
        if self.verbose:
            print(records.describe(record))
        return record

    def _prune_and_grow(self, index, fraction):
        """Updates every matrix; returns their records."""
        optimizer = self._get_optimizer()
        context = GrowContext(self._matrices, optimizer,
                              lambda: self._signal.gradients(self.grow),
                              self._state.grow_state)
        inputs = self._grow_input.prepare(context)
        zeta = tf.constant(fraction, tf.float64)
        per_matrix = []
        for i, (matrix, grow_input) in enumerate(zip(self._matrices, inputs)):
            out = updater.prune_and_grow(
                tf.convert_to_tensor(matrix.weight),
                tf.convert_to_tensor(matrix.mask),
                grow_input, zeta, self._seed(index, i),
                gates=matrix.gates, block_shape=matrix.block_shape,
                prune=self.prune, grow=self.grow,
                redistribution=self.redistribution)
            per_matrix.append(records.matrix_record(
                matrix, out, self._expected[i], self.redistribution))
            if self.redistribution == "gates":
                self._expected[i] = np.asarray(per_matrix[-1]["gate_counts"])
            new_mask, grown = out["mask"], out["grown"]
            # The one write path: the pair, the optimizer's slots at grown
            # positions and its topology hook.
            matrix.replace(new_mask, out["weight"], grown, optimizer)
            ever = self._state.ever_active[i]
            ever.assign(tf.maximum(tf.convert_to_tensor(ever), new_mask))
            self._grow_input.on_grown(i, grown, context)
        return per_matrix

    # State ------------------------------------------------------------------

    @property
    def state(self):
        """The `DynamicSparsityState` layer holding the callback's variables
        (after `set_model`, `attach` or `fit`): checkpoint it with the model
        and optimizer, e.g. `tf.train.Checkpoint(model=model,
        optimizer=optimizer, topology=callback.state)`, to resume a custom
        loop."""
        if self._state is None:
            raise ValueError("The callback has no model yet: call attach, "
                             "set_model or fit first")
        return self._state

    @property
    def update_count(self):
        """The number of updates of the whole training, those a resumed run
        restored with `state` included (0 before `set_model`, `attach` or
        `fit`). `updates` holds the records of the updates this callback
        object ran only: after a resume it starts empty, and its records'
        `"update"` indices continue from the restored count (`docs/dst.md`,
        "Resuming")."""
        return 0 if self._state is None else self._state.progress()[1]

    def get_state(self):
        """The callback's state as NumPy values (a dict)."""
        if self._state is None:
            raise ValueError("The callback has no model yet: call set_model "
                             "or fit first")
        return self._state.to_numpy()

    def set_state(self, state):
        """Restores what `get_state` returned (for the same model)."""
        if self._state is None:
            raise ValueError("The callback has no model yet: call set_model "
                             "first")
        self._state.from_numpy(state)
