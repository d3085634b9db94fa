"""`DynamicSparsity`: the callback that evolves the masks during training."""

import contextlib
import numbers
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_sparse_rnn import callback_order
from keras_sparse_rnn import masks as masks_lib
from keras_sparse_rnn.dst import optimizer_slots
from keras_sparse_rnn.dst import registry
from keras_sparse_rnn.dst import schedules
from keras_sparse_rnn.dst import updater
from keras_sparse_rnn import model_utils
from keras_sparse_rnn.layers import guard
from keras_sparse_rnn.model_utils import sparse_weight_info
from keras_sparse_rnn.validation import validate_fraction

#: Attribute of the model holding the callback's state layer. It is set with
#: `object.__setattr__`, so Keras does not track it as a sub-layer (the
#: model's layers, weights and outputs are unchanged), but Keras' saving
#: walks every attribute of the model, so `model.save_weights`,
#: `model.save` and `BackupAndRestore` checkpoints include it.
STATE_ATTR = "_keras_sparse_rnn_dst_state"

#: Decay of the callback's own moving average of the gradient (SNFS's
#: momentum 0.9), used when the optimizer keeps no first moment.
EMA_DECAY = 0.9


class _EveryEpoch(int):
    """The default `update_every_epochs=1`, told apart from an explicit 1."""

    def __repr__(self):
        return "1"


_DEFAULT_EVERY_EPOCHS = _EveryEpoch(1)


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _validate_start(value):
    if isinstance(value, bool):
        raise ValueError(f"start must be an int >= 0 (a step) or a float in "
                         f"[0, 1) (a fraction of training), got {value!r}")
    if isinstance(value, numbers.Integral):
        if value < 0:
            raise ValueError(f"start must be an int >= 0 (a step) or a float "
                             f"in [0, 1), got {value}")
        return int(value)
    if isinstance(value, numbers.Real):
        return validate_fraction(value, "start as a fraction of training")
    raise ValueError(f"start must be an int >= 0 (a step) or a float in "
                     f"[0, 1) (a fraction of training), got {value!r}")


def _validate_stop(value):
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"stop must be None, an int >= 1 (a step) or a float "
                         f"in (0, 1] (a fraction of training), got {value!r}")
    if isinstance(value, numbers.Integral):
        if value < 1:
            raise ValueError(f"stop must be None, an int >= 1 (a step) or a "
                             f"float in (0, 1], got {value}")
        return int(value)
    if isinstance(value, numbers.Real):
        return validate_fraction(value, "stop as a fraction of training",
                                 include_low=False, include_high=True)
    raise ValueError(f"stop must be None, an int >= 1 (a step) or a float in "
                     f"(0, 1] (a fraction of training), got {value!r}")


def _validate_grow_data(grow_data):
    if grow_data is None or isinstance(grow_data, tf.data.Dataset):
        return grow_data
    if isinstance(grow_data, (tuple, list)) and 1 <= len(grow_data) <= 3:
        return tuple(grow_data)
    raise ValueError(
        "grow_data must be an (x, y) or (x, y, sample_weight) tuple of one "
        f"batch, or a tf.data.Dataset of such batches, got {grow_data!r:.200}"
    )


def _dense_grads(result, weights):
    return [tf.zeros(w.shape, w.dtype) if g is None else tf.convert_to_tensor(g)
            for g, w in zip(result, weights)]


def _stateful_variables(model):
    """The state variables of the model's stateful RNN layers."""
    variables = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if getattr(layer, "stateful", False) and getattr(layer, "states", None):
            variables.extend(tf.nest.flatten(layer.states))
    return variables


class DynamicSparsityState(keras.layers.Layer):
    """The variables a `DynamicSparsity` callback must keep across restarts.

    Not part of the model's computation: the callback attaches it to the
    model untracked (see `STATE_ATTR`), so it is saved and restored with the
    model's weights (`save_weights`, `BackupAndRestore`) without changing the
    model's layers, weights or outputs.

    Variables: `counters` (int64: the last update point processed and the
    number of updates done), one `ever_active` 0/1 mask per sparse matrix
    (for the in-time over-parameterization rate), and, for `grow="momentum"`
    with an optimizer that has no first moment, one moving average of the
    gradient per matrix.
    """

    def __init__(self, specs, momentum, name="dynamic_sparsity_state", **kwargs):
        super().__init__(name=name, trainable=False, **kwargs)
        self.counters = self.add_weight(
            name="counters", shape=(2,), dtype="int64", trainable=False,
            initializer=lambda shape, dtype=None: np.array([-1, 0], np.int64),
        )
        self.ever_active = []
        self.momentum = []
        for i, spec in enumerate(specs):
            values = np.asarray(spec.mask.numpy())
            self.ever_active.append(self.add_weight(
                name=f"ever_active_{i}", shape=values.shape,
                dtype=spec.mask.dtype, trainable=False,
                initializer=lambda shape, dtype=None, v=values: v,
            ))
            if momentum:
                self.momentum.append(self.add_weight(
                    name=f"momentum_{i}", shape=values.shape,
                    dtype=spec.weight.dtype, trainable=False,
                    initializer="zeros",
                ))
        self.built = True

    def _named_variables(self):
        named = [("counters", self.counters)]
        named += [(f"ever_active_{i}", v) for i, v in enumerate(self.ever_active)]
        named += [(f"momentum_{i}", v) for i, v in enumerate(self.momentum)]
        return named

    def save_own_variables(self, store):
        for key, variable in self._named_variables():
            store[key] = variable

    def load_own_variables(self, store):
        """Loads what the file has; a file saved without the callback loads
        nothing (with a warning if it has some entries but not all)."""
        keys = set(store.keys())
        if not keys:
            return
        missing = []
        for key, variable in self._named_variables():
            if key not in keys:
                missing.append(key)
                continue
            value = np.asarray(store[key])
            if value.shape != tuple(variable.shape):
                raise ValueError(
                    f"Cannot restore the DynamicSparsity state '{key}': the "
                    f"file has shape {value.shape}, the model's sparse matrix "
                    f"needs {tuple(variable.shape)}"
                )
            variable.assign(value)
        if missing:
            warnings.warn(
                f"The DynamicSparsity state in the file lacks {missing}; "
                "they keep their current values", stacklevel=2)


class DynamicSparsity(keras.callbacks.Callback):
    """Dynamic sparse training: evolves the masks of every sparse matrix.

    Periodically, in each sparse matrix of the model (every `SparseWeight`
    of `keras_sparse_rnn.sparse_weight_info(model)`), removes a fraction of
    the active weights and activates as many inactive ones, so the number of
    parameters and the FLOPs stay fixed while the topology adapts: SET
    (`prune="set"` or `"magnitude"`, `grow="random"`), RigL
    (`grow="gradient"`), SNFS (`grow="momentum"`), with Selfish-RNN's cell
    weight redistribution (`redistribution="gates"`).

    The static sparse baseline is the same model without this callback: the
    sparse layers keep their random initial masks for the whole training.

    Each update, for each matrix (see `keras_sparse_rnn.dst.updater`):
    prune `round(zeta * n)` active weights by the `prune` criterion, then
    grow exactly as many inactive positions by the `grow` criterion
    (positions pruned in the same update are taken only when too few others
    remain). Grown weights start at exactly 0, pruned weights become exactly
    0, and every optimizer slot at a grown position (momentum, Adam moments,
    RMS and Adagrad accumulators, FTRL terms, the EMA of `use_ema`) is reset
    to 0. Every matrix keeps exactly its active count (each gate block its
    own with `redistribution="none"`); the callback checks the counts after
    each update and raises `RuntimeError` if one differs. The selection runs
    in-graph, compiled with XLA, with stateless random numbers seeded from
    `seed`, the update index and a crc32 of the weight's path: the same seed
    and data give the same masks, run after run (the path holds the layer
    names: name your layers, or call `keras.backend.clear_session()`, when
    you compare two models built in one process). Non-trainable (frozen)
    sparse weights are left alone.

    When: updates happen at the end of every `update_every_epochs`-th epoch
    or after every `update_every_steps` optimizer steps (counted with
    `model.optimizer.iterations`, so `steps_per_execution > 1` is handled:
    batch callbacks then fire once per chunk, and an update happens at the
    first chunk end at or after its step), at steps `start <= t < stop`.
    No update happens at the end of the last planned step.

    Custom optimizers: after updating a variable's mask, the callback calls
    `optimizer.update_sparse_topology(variable, new_mask, grown)` when the
    optimizer (or the optimizer a `LossScaleOptimizer` wraps) has such a
    method; `new_mask` and `grown` are 0/1 tensors of the variable's shape,
    `grown` marking the positions grown in this update. Slots the optimizer
    keeps in attributes the callback does not know (see
    `keras_sparse_rnn.dst.optimizer_slots`) are its own to reset there:
    `keras_sparse_rnn.optimizers.SNTASGD` restarts its running averages so.

    Logs: at the end of each epoch the callback adds to `logs` (so to the
    `History`): `dst_updates` (updates this epoch), `dst_pruned` and
    `dst_grown` (weights), `dst_drop_fraction` (of the last update),
    `dst_mask_change` (positions whose mask flipped this epoch / all sparse
    positions), `dst_itop_rate` (in-time over-parameterization: the
    fraction of all sparse positions that have ever been active, Liu et al.
    2021) and, for packed cells, `dst_share_<gate>`: the share of the
    active weights of each gate (LSTM i, f, c, o; RHN H, T (C); GRU z, r, h)
    over the matrices with those gates. `callback.updates` lists one dict
    per update with per-matrix counts. `verbose=1` prints a line per update.

    Resuming: the callback's state (update count, last update point, the
    ever-active masks, its own gradient moving averages) lives in variables
    attached to the model (see `DynamicSparsityState`), which
    `keras.callbacks.BackupAndRestore` and `model.save_weights` save and
    restore; an update that a restored run has not done yet (whatever the
    order of the callbacks) is done at the start of the next epoch. So an
    interrupted run resumed with `BackupAndRestore` ends with the masks of
    an uninterrupted one. To resume from a `model.save_weights` file
    instead, attach the state before loading: `callback.set_model(model)`,
    then `model.load_weights(path)`, then `fit` (loading first would leave
    the new callback with a fresh state). `keras.models.load_model` returns
    a model without the state: move it by hand with `get_state()` /
    `set_state()`. With `stop=None` (or fractions) the plan of the current
    `fit` call is used: when you split one training over several `fit`
    calls, give `stop` (and `start`) in steps.

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
            then be the model's). Under a multi-worker strategy every worker
            must rank on the same batch: give a fixed batch of arrays (a
            dataset is refused there), or in a custom loop pass `step_end` a
            batch every worker holds in full (per-replica values are
            refused) or gradients reduced across the replicas.
        seed: Non-negative int seeding the random choices. Defaults to `0`.
        verbose: `0` or `1` (one line per update).

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
        update_every_epochs=_DEFAULT_EVERY_EPOCHS,
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
        self.drop_fraction = schedules.validate_drop_fraction(drop_fraction)
        self.schedule = schedules.validate_schedule(schedule)
        self.prune = registry.get_prune(prune).name
        self._grow_method = registry.get_grow(grow)
        self.grow = self._grow_method.name
        if update_every_steps is not None:
            if (update_every_epochs is not None
                    and update_every_epochs is not _DEFAULT_EVERY_EPOCHS):
                raise ValueError(
                    "update_every_epochs and update_every_steps cannot both "
                    f"be given, got update_every_epochs={update_every_epochs!r} "
                    f"and update_every_steps={update_every_steps!r}: give one "
                    "of them"
                )
            self.update_every_steps = _positive_int(
                update_every_steps, "update_every_steps")
            self.update_every_epochs = None
        else:
            if update_every_epochs is None:
                raise ValueError(
                    "update_every_epochs and update_every_steps are both None:"
                    " give one of them (a positive int)"
                )
            self.update_every_epochs = _positive_int(
                update_every_epochs, "update_every_epochs")
            self.update_every_steps = None
        self.start = _validate_start(start)
        self.stop = _validate_stop(stop)
        if (isinstance(self.stop, type(self.start))
                and self.stop is not None and self.start >= self.stop):
            raise ValueError(
                f"start must be smaller than stop, got start={self.start!r} "
                f"and stop={self.stop!r}"
            )
        self.redistribution = registry.validate_redistribution(redistribution)
        grow_data = _validate_grow_data(grow_data)
        needs = self._grow_method.needs
        if needs is None and grow_data is not None:
            raise ValueError(
                f"grow_data is used only by grow='gradient' or 'momentum', "
                f"got grow={grow!r} with grow_data: remove it"
            )
        self.grow_data = grow_data
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.seed = int(seed)
        if verbose not in (0, 1) or isinstance(verbose, bool):
            raise ValueError(f"verbose must be 0 or 1, got {verbose!r}")
        self.verbose = verbose
        self.updates = []
        self._specs = None
        self._state = None
        self._setup_model = None
        self._schedule_fn = None
        self._grad_fn = None
        self._grow_batch = None
        self._epoch_records = []
        self._start_step = self.start if isinstance(self.start, int) else None
        self._stop_step = self.stop if isinstance(self.stop, int) else None
        self._period_steps = self.update_every_steps
        self._optimizer = None  # given to `attach` (custom loops)
        self._grad_source = None  # (loss_fn, batch) or gradients of this update
        self._loss_fns = {}

    # Set-up --------------------------------------------------------------

    def set_model(self, model):
        super().set_model(model)
        if model is not self._setup_model and model_utils.sparse_layers_built(model):
            self._setup(model)

    def _get_optimizer(self):
        if self._optimizer is not None:
            return self._optimizer
        return getattr(self.model, "optimizer", None)

    def _setup(self, model):
        """Finds the sparse matrices and attaches the state to the model."""
        specs = [s for s in sparse_weight_info(model) if s.weight.trainable]
        if not specs:
            raise ValueError(
                f"model '{model.name}' has sparse weights, but none is "
                "trainable: DynamicSparsity has nothing to update"
            )
        for spec in specs:
            rows, cols = updater._as_2d_shape(spec.weight.shape)
            grid = masks_lib.block_grid((rows, cols), spec.block_shape)
            groups = spec.gates if self.redistribution == "none" else 1
            if grid[0] * grid[1] // groups > updater.MAX_GROUP_SIZE:
                raise ValueError(
                    f"Sparse weight '{spec.weight.path}' of shape "
                    f"{tuple(spec.weight.shape)} is too large for the update "
                    f"(more than {updater.MAX_GROUP_SIZE} positions a group)"
                )
        optimizer = self._get_optimizer()
        own_momentum = (self._grow_method.needs == "momentum"
                        and not optimizer_slots.has_first_moment(optimizer))
        if own_momentum and self.grow_data is None and self._optimizer is None:
            raise ValueError(
                f"grow={self.grow!r} needs a moving average of the gradient; "
                f"the optimizer {type(optimizer).__name__} keeps none "
                "(SGD with momentum, Adam, AdamW, Nadam, Adamax, Lamb and Lion "
                "do), so give grow_data: the callback then averages the "
                "gradient on it at each update"
            )
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
            state = DynamicSparsityState(specs, own_momentum)
        object.__setattr__(model, STATE_ATTR, state)
        self._specs = specs
        self._state = state
        self._setup_model = model
        self._grad_fn = None
        self._expected = []
        for spec in specs:
            counts = self._gate_counts(spec)
            self._expected.append(counts)

    @staticmethod
    def _gate_counts(spec):
        mask = tf.convert_to_tensor(spec.mask)
        cols = mask.shape[-1]
        per_gate = tf.reshape(mask, [-1, spec.gates, cols // spec.gates])
        return tf.cast(tf.reduce_sum(per_gate, axis=[0, 2]), tf.int64).numpy()

    def on_train_begin(self, logs=None):
        model = self.model
        if model.optimizer is None:
            raise RuntimeError(
                "DynamicSparsity in fit needs a compiled model; in a custom "
                "training loop call attach(model, optimizer) instead")
        if self._grow_method.needs == "gradient" and self.grow_data is None:
            raise ValueError(
                f"grow={self.grow!r} ranks positions by the gradient of the "
                "loss: give grow_data, an (x, y) batch or a tf.data.Dataset")
        # Log values reach TensorBoard, CSVLogger, EarlyStopping... whatever
        # the order the user listed the callbacks in.
        callback_order.move_before_log_consumers(self)
        # An unbuilt model (subclassed, or Sequential without Input) is
        # built by its first train step: set up after it.
        if model is not self._setup_model and model_utils.sparse_layers_built(model):
            self._setup(model)
        epochs = self.params.get("epochs") if self.params else None
        steps = self.params.get("steps") if self.params else None
        self._plan(epochs * steps if epochs and steps else None, steps)

    def attach(self, model, optimizer, total_steps=None):
        """Sets the callback up for a custom training loop (no `compile`).

        Call it once the model is built (called on data) and before the first
        `step_end`, `epoch_end` or `update_topology`. `optimizer` is the one
        your loop applies gradients with: its slots at grown positions are
        reset at each update, its `iterations` count the steps.

        Args:
            model: the built model.
            optimizer: a Keras optimizer (built or not).
            total_steps: the planned number of optimizer steps; needed for
                `stop=None` (updates until the end) and for `start`/`stop`
                given as fractions. `None` with integer `start`/`stop`.

        Returns:
            `self`.
        """
        total_steps = model_utils.check_attach(model, optimizer, total_steps)
        self._optimizer = optimizer
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        self.set_model(model)
        if self._setup_model is not model:
            self._setup(model)
        self._plan(total_steps, None)
        return self

    def _plan(self, planned, steps_per_epoch):
        """Resolves start, stop and the period in steps for this training."""
        model = self.model

        def resolve(value, name):
            if value is None or isinstance(value, int):
                return value
            if planned is None:
                raise ValueError(
                    f"{name}={value} is a fraction of the planned training, "
                    "but the planned number of steps is unknown: give "
                    f"{name} in steps (an int), or steps_per_epoch to fit "
                    "(total_steps to attach)"
                )
            return int(round(value * planned))

        self._start_step = resolve(self.start, "start")
        stop = resolve(self.stop, "stop")
        self._stop_step = planned if stop is None else stop
        if (self._stop_step is not None
                and self._start_step >= self._stop_step):
            raise ValueError(
                f"start ({self._start_step} steps) must be before stop "
                f"({self._stop_step} steps): no update would happen"
            )
        self._schedule_fn = schedules.get(
            self.schedule, self.drop_fraction, decay_steps=self._stop_step)
        if self.update_every_steps is not None:
            self._period_steps = self.update_every_steps
        elif steps_per_epoch:
            self._period_steps = self.update_every_epochs * steps_per_epoch
        else:
            self._period_steps = None  # count epochs
        spe = getattr(model, "steps_per_execution", 1) or 1
        if self.update_every_steps is not None and spe > self.update_every_steps:
            warnings.warn(
                f"steps_per_execution={spe} is larger than update_every_steps="
                f"{self.update_every_steps}: batch callbacks fire once per "
                f"{spe} steps, so at most one update happens per {spe} steps "
                "(at the first chunk end after each due step)",
                stacklevel=2)

    # When to update ---------------------------------------------------------

    def _iterations(self):
        return int(self._get_optimizer().iterations.numpy())

    def _point(self, step, completed_epochs):
        if self._period_steps is not None:
            return step // self._period_steps
        if completed_epochs is None:
            return None
        return completed_epochs // self.update_every_epochs

    def _maybe_update(self, completed_epochs=None):
        step = self._iterations()
        point = self._point(step, completed_epochs)
        if point is None:
            return
        last, count = (int(v) for v in self._state.counters.numpy())
        if point < last:
            # The step count went back (a new optimizer): start over from it.
            self._state.counters.assign(np.array([point, count], np.int64))
            return
        due = None  # the step the point fell due at, when steps are known
        if self._period_steps is not None:
            if self._stop_step is not None:
                # A chunk end (steps_per_execution) past stop still does the
                # update due before stop; none is due at stop itself.
                point = min(point, (self._stop_step - 1) // self._period_steps)
            due = point * self._period_steps
        elif self._stop_step is not None and step >= self._stop_step:
            return
        if point <= last or point < 1:
            return
        self._state.counters.assign(np.array([point, count], np.int64))
        if (due if due is not None else step) < self._start_step:
            return
        return self.update_topology(step)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_records = []
        if self._setup_model is not self.model:
            return  # an unbuilt model: set up after its first step
        # Catches up an update that a restored checkpoint has not done yet.
        self._maybe_update(completed_epochs=epoch)

    def on_train_batch_end(self, batch, logs=None):
        if self._setup_model is not self.model:
            self._setup(self.model)
        if self.update_every_steps is not None:
            self._maybe_update()

    def on_epoch_end(self, epoch, logs=None):
        if self._setup_model is not self.model:
            self._setup(self.model)
        if self.update_every_steps is None:
            self._maybe_update(completed_epochs=epoch + 1)
        if logs is not None:
            logs.update(self._epoch_logs())
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
        with self._grow_signal(loss_fn, batch, gradients):
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
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
            raise ValueError(f"epoch must be an int >= 0, got {epoch!r}")
        with self._grow_signal(loss_fn, batch, gradients):
            self._epoch_records = []
            return self._maybe_update(completed_epochs=int(epoch) + 1)

    def _check_attached(self, name):
        if self._setup_model is None or self.model is None:
            raise RuntimeError(
                f"{name} needs a model: call attach(model, optimizer) first "
                "(in model.fit the callback runs by itself)")

    @contextlib.contextmanager
    def _grow_signal(self, loss_fn, batch, gradients):
        if gradients is not None and (loss_fn is not None or batch is not None):
            raise ValueError("give gradients, or loss_fn and batch, not both")
        if (loss_fn is None) != (batch is None):
            raise ValueError("loss_fn and batch go together: give both or "
                             "neither")
        if loss_fn is not None and not callable(loss_fn):
            raise ValueError(f"loss_fn must be callable, got {loss_fn!r:.100}")
        for name, value in (("batch", batch), ("gradients", gradients)):
            if value is not None and any(
                    isinstance(v, tf.distribute.DistributedValues)
                    for v in tf.nest.flatten(value)):
                raise ValueError(
                    f"{name} holds per-replica values (from strategy.run or a "
                    "distributed dataset): each worker's would be its own shard "
                    "and the workers would grow different weights. Pass a batch "
                    "every worker holds the same (e.g. one fixed batch read in "
                    "full by every worker), or gradients reduced across the "
                    "replicas (strategy.reduce)")
        if gradients is not None:
            self._grad_source = ("gradients", self._align_gradients(gradients))
        elif loss_fn is not None:
            self._grad_source = ("loss", (loss_fn, batch))
        try:
            yield
        finally:
            self._grad_source = None

    def _align_gradients(self, gradients):
        """`gradients` (aligned with `model.trainable_variables`, or
        `(gradient, variable)` pairs) as one tensor per sparse matrix."""
        gradients = list(gradients)
        variables = self.model.trainable_variables
        if gradients and all(isinstance(g, (tuple, list)) and len(g) == 2
                             for g in gradients):
            by_id = {id(v): g for g, v in gradients}
        elif len(gradients) == len(variables):
            by_id = {id(v): g for g, v in zip(gradients, variables)}
        else:
            raise ValueError(
                f"gradients must be aligned with model.trainable_variables "
                f"({len(variables)} variables) or be (gradient, variable) "
                f"pairs, got a list of {len(gradients)}")
        out = []
        for spec in self._specs:
            g = by_id.get(id(spec.weight))
            if g is None:
                raise ValueError(
                    f"gradients has none for the sparse weight "
                    f"'{spec.weight.path}'")
            out.append(tf.convert_to_tensor(g, spec.weight.dtype))
        return out

    # The update -------------------------------------------------------------

    def _gradients(self):
        """dL/dW of every sparse weight: the gradients given to `step_end`,
        or on the batch given there or `grow_data` (training=False)."""
        source = self._grad_source
        if source is not None and source[0] == "gradients":
            return source[1]
        if source is not None:
            loss_fn, batch = source[1]
            return self._run_gradients(self._loss_gradient_fn(loss_fn), batch)
        if self.grow_data is None:
            raise ValueError(
                f"grow={self.grow!r} needs a gradient: give grow_data to the "
                "callback, or loss_fn and batch (or gradients) to step_end / "
                "epoch_end / update_topology")
        return self._run_gradients(self._compiled_loss_gradient_fn(), None)

    def _loss_gradient_fn(self, loss_fn):
        """A compiled `(x, y, sample_weight) -> grads` for a user's loss."""
        fn = self._loss_fns.get(id(loss_fn))
        if fn is None:
            model = self.model
            weights = [s.weight for s in self._specs]
            takes_weight = isinstance(loss_fn, keras.losses.Loss)

            def grads(x, y, sample_weight):
                with tf.GradientTape() as tape:
                    y_pred = model(x, training=False)
                    if takes_weight:
                        loss = loss_fn(y, y_pred, sample_weight=sample_weight)
                    else:
                        loss = loss_fn(y, y_pred)
                return _dense_grads(tape.gradient(loss, weights), weights)

            fn = tf.function(grads, jit_compile=bool(getattr(model, "jit_compile", False)))
            self._loss_fns[id(loss_fn)] = (fn, loss_fn)  # keep loss_fn alive
            return fn
        return fn[0]

    def _compiled_loss_gradient_fn(self):
        model = self.model
        if self._grad_fn is None:
            weights = [s.weight for s in self._specs]

            def grads(x, y, sample_weight):
                with tf.GradientTape() as tape:
                    y_pred = model(x, training=False)
                    loss = model._compute_loss(
                        x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                        training=False)
                return _dense_grads(tape.gradient(loss, weights), weights)

            self._grad_fn = tf.function(
                grads, jit_compile=bool(getattr(model, "jit_compile", False)))
        return self._grad_fn

    def _run_gradients(self, fn, batch):
        """`fn` on `batch` (or `grow_data`), the stateful RNN states kept."""
        model = self.model
        if batch is None:
            if isinstance(self.grow_data, tf.data.Dataset):
                batch = next(iter(self.grow_data.take(1)))
            else:
                if self._grow_batch is None:
                    self._grow_batch = tf.nest.map_structure(
                        tf.convert_to_tensor, self.grow_data)
                batch = self._grow_batch
        elif not isinstance(batch, (tuple, list)) or not 2 <= len(batch) <= 3:
            raise ValueError("batch must be (x, y) or (x, y, sample_weight), "
                             f"got {batch!r:.100}")
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(tuple(batch))
        # A stateful RNN writes its states when called: keep the training
        # streams' states as they were.
        states = _stateful_variables(model)
        saved = [v.numpy() for v in states]
        grads = fn(x, y, sample_weight)
        for variable, value in zip(states, saved):
            variable.assign(value)
        return grads

    def _grow_inputs(self):
        needs = self._grow_method.needs
        if needs is None:
            return [None] * len(self._specs)
        if needs == "gradient":
            return self._gradients()
        # "momentum": the optimizer's first moment, else our own average.
        optimizer = self._get_optimizer()
        if self._state.momentum:
            grads = self._gradients()
            inputs = []
            for ema, g in zip(self._state.momentum, grads):
                ema.assign(EMA_DECAY * ema + (1.0 - EMA_DECAY) * g)
                inputs.append(tf.convert_to_tensor(ema))
            return inputs
        inputs = []
        for spec in self._specs:
            slot = optimizer_slots.first_moment(optimizer, spec.weight)
            if slot is None:
                raise RuntimeError(
                    f"grow='momentum': the optimizer has no first moment for "
                    f"'{spec.weight.path}' (is it built?)"
                )
            inputs.append(tf.convert_to_tensor(slot))
        return inputs

    def _seed(self, update_index, i):
        """The stream of matrix `i` at an update: from `seed`, the update
        index and what stays the same when the same model is built twice in
        one process (not the auto-generated layer names): the matrix's
        position among the model's sparse weights, its layer's `mask_seed`
        and its attribute name."""
        spec = self._specs[i]
        return tf.constant(
            [self.seed, masks_lib.stable_seed(
                "dst", update_index, i, spec.layer.mask_seed, spec.name)],
            dtype=tf.int64)

    def _topology_hook(self):
        optimizer = self._get_optimizer()
        while optimizer is not None:
            if hasattr(optimizer, "update_sparse_topology"):
                return optimizer.update_sparse_topology
            optimizer = getattr(optimizer, "inner_optimizer", None)
        return None

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
            The update's record (also appended to `self.updates`).
        """
        if self.model is None:
            raise RuntimeError("update_topology needs a model: call "
                               "attach(model, optimizer) first")
        if self.model is not self._setup_model:
            self._setup(self.model)
        if self._grad_source is None and (
                loss_fn is not None or batch is not None or gradients is not None):
            with self._grow_signal(loss_fn, batch, gradients):
                return self.update_topology(step, drop_fraction)
        if step is None:
            step = self._iterations()
        counters = self._state.counters.numpy()
        index = int(counters[1])
        if drop_fraction is None:
            if self._schedule_fn is None:
                self._schedule_fn = schedules.get(
                    self.schedule, self.drop_fraction,
                    decay_steps=self._stop_step)
            fraction = schedules.check_fraction(
                self._schedule_fn(index, step), "schedule")
        else:
            fraction = schedules.check_fraction(drop_fraction, "drop_fraction")
        matrices = []
        if fraction > 0:
            optimizer = self._get_optimizer()
            hook = self._topology_hook()
            inputs = self._grow_inputs()
            zeta = tf.constant(fraction, tf.float64)
            for i, (spec, grow_input) in enumerate(zip(self._specs, inputs)):
                out = updater.prune_and_grow(
                    tf.convert_to_tensor(spec.weight),
                    tf.convert_to_tensor(spec.mask),
                    grow_input, zeta, self._seed(index, i),
                    gates=spec.gates, block_shape=spec.block_shape,
                    prune=self.prune, grow=self.grow,
                    redistribution=self.redistribution)
                record = self._check_counts(i, spec, out)
                new_mask, grown = out["mask"], out["grown"]
                with guard.unchecked():  # a new pair, consistent together
                    spec.mask.assign(new_mask)
                    spec.weight.assign(out["weight"])
                ever = self._state.ever_active[i]
                ever.assign(tf.maximum(tf.convert_to_tensor(ever), new_mask))
                if self._state.momentum:
                    ema = self._state.momentum[i]
                    ema.assign(tf.convert_to_tensor(ema) * (1 - grown))
                optimizer_slots.reset_slots(optimizer, spec.weight, grown)
                if hook is not None:
                    hook(spec.weight, new_mask, grown)
                matrices.append(record)
        else:
            for i, spec in enumerate(self._specs):
                matrices.append({
                    "path": spec.weight.path, "pruned": 0, "grown": 0,
                    "changed": 0, "gate_counts": self._expected[i].tolist(),
                })
        self._state.counters.assign(
            np.array([counters[0], index + 1], np.int64))
        record = {
            "update": index,
            "step": int(step),
            "drop_fraction": fraction,
            "pruned": sum(m["pruned"] for m in matrices),
            "grown": sum(m["grown"] for m in matrices),
            "changed": sum(m["changed"] for m in matrices),
            "positions": self._positions(),
            "itop_rate": self._itop_rate(),
            "gate_shares": self._gate_shares(),
            "matrices": matrices,
        }
        record["mask_change"] = record["changed"] / record["positions"]
        self.updates.append(record)
        self._epoch_records.append(record)
        if self.verbose:
            shares = " ".join(f"{g} {s:.1%}" for g, s in record["gate_shares"].items())
            print(
                f"DynamicSparsity update {index} at step {step}: drop fraction "
                f"{fraction:.4f}, pruned {record['pruned']}, grown "
                f"{record['grown']}, mask changed {record['mask_change']:.2%}, "
                f"ITOP rate {record['itop_rate']:.2%}"
                + (f", gate shares {shares}" if shares else "")
            )
        return record

    def _check_counts(self, i, spec, out):
        before = out["gate_counts_before"].numpy()
        after = out["gate_counts_after"].numpy()
        pruned = int(out["pruned"].numpy())
        grown = int(out["grown_count"].numpy())
        expected = self._expected[i]
        problem = None
        if int(before.sum()) != int(expected.sum()):
            problem = (f"had {int(before.sum())} active weights before the "
                       f"update, {int(expected.sum())} expected")
        elif int(after.sum()) != int(expected.sum()) or pruned != grown:
            problem = (f"has {int(after.sum())} active weights after the "
                       f"update (pruned {pruned}, grew {grown}), "
                       f"{int(expected.sum())} expected")
        elif self.redistribution == "none" and not np.array_equal(after, expected):
            problem = (f"has per-gate counts {after.tolist()} after the "
                       f"update, {expected.tolist()} expected")
        if problem:
            raise RuntimeError(
                f"DynamicSparsity: sparse weight '{spec.weight.path}' "
                f"{problem}: the parameter count must stay fixed"
            )
        if self.redistribution == "gates":
            self._expected[i] = after
        return {"path": spec.weight.path, "pruned": pruned, "grown": grown,
                "changed": int(out["changed"].numpy()),
                "gate_counts": after.tolist()}

    # Statistics -------------------------------------------------------------

    def _positions(self):
        return int(sum(int(np.prod(s.weight.shape)) for s in self._specs))

    def _itop_rate(self):
        ever = sum(float(tf.reduce_sum(tf.convert_to_tensor(v)))
                   for v in self._state.ever_active)
        return ever / self._positions()

    def _gate_shares(self):
        """Share of the active weights of each gate, per gate family."""
        totals = {}
        for spec in self._specs:
            if spec.gates < 2 or not spec.gate_names:
                continue
            counts = self._gate_counts(spec)
            family = totals.setdefault(tuple(spec.gate_names),
                                       np.zeros(spec.gates, np.int64))
            family += counts
        shares = {}
        for names, counts in totals.items():
            total = counts.sum()
            for name, count in zip(names, counts):
                shares[name] = float(count / total) if total else 0.0
        return shares

    def _epoch_logs(self):
        records = self._epoch_records
        logs = {
            "dst_updates": len(records),
            "dst_pruned": sum(r["pruned"] for r in records),
            "dst_grown": sum(r["grown"] for r in records),
            "dst_drop_fraction": records[-1]["drop_fraction"] if records else 0.0,
            "dst_mask_change": (sum(r["changed"] for r in records)
                                / self._positions()),
            "dst_itop_rate": self._itop_rate(),
        }
        for gate, share in self._gate_shares().items():
            logs[f"dst_share_{gate}"] = share
        return logs

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

    def get_state(self):
        """The callback's state as NumPy values (a dict)."""
        if self._state is None:
            raise ValueError("The callback has no model yet: call set_model "
                             "or fit first")
        last, count = (int(v) for v in self._state.counters.numpy())
        return {
            "last_point": last,
            "update_count": count,
            "ever_active": [v.numpy() for v in self._state.ever_active],
            "momentum": [v.numpy() for v in self._state.momentum],
        }

    def set_state(self, state):
        """Restores what `get_state` returned (for the same model)."""
        if self._state is None:
            raise ValueError("The callback has no model yet: call set_model "
                             "first")
        keys = {"last_point", "update_count", "ever_active", "momentum"}
        if not isinstance(state, dict) or set(state) != keys:
            raise ValueError(f"state must be a dict with keys {sorted(keys)}, "
                             f"got {state!r:.200}")
        pairs = (list(zip(self._state.ever_active, state["ever_active"]))
                 + list(zip(self._state.momentum, state["momentum"])))
        if (len(state["ever_active"]) != len(self._state.ever_active)
                or len(state["momentum"]) != len(self._state.momentum)):
            raise ValueError(
                f"state has {len(state['ever_active'])} ever-active masks and "
                f"{len(state['momentum'])} moving averages; this model needs "
                f"{len(self._state.ever_active)} and "
                f"{len(self._state.momentum)}")
        for variable, value in pairs:
            value = np.asarray(value)
            if value.shape != tuple(variable.shape):
                raise ValueError(f"state entry of shape {value.shape} does not "
                                 f"fit {tuple(variable.shape)}")
        for variable, value in pairs:
            variable.assign(value)
        self._state.counters.assign(np.array(
            [state["last_point"], state["update_count"]], np.int64))
