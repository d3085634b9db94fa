"""SNT-ASGD: Selfish-RNN's sparse non-monotonically triggered averaged SGD.

Plain SGD until the validation loss stops improving (Merity et al. 2017's
non-monotonic trigger), then averaged SGD (Polyak averaging of the iterates),
with per-position averages for sparse weights: a weight grown by a topology
update restarts its average, and pruned weights' averages are zero, so the
averaged model keeps the masks of the trained one (Liu et al. 2021).
"""

import math
import numbers

import keras
import numpy as np
from keras import ops

from keras_sparse_rnn._keras import optimizer_slots
from keras_sparse_rnn.masks import MaskConstraint
from keras_sparse_rnn.optimizers import wrappers
from keras_sparse_rnn.validation import check_bool, check_int, check_number, check_verbose


@keras.saving.register_keras_serializable(package="keras_sparse_rnn")
class SNTASGD(keras.optimizers.SGD):
    """Sparse non-monotonically triggered averaged SGD (SNT-ASGD).

    Until it switches, each step is `keras.optimizers.SGD`'s, which it
    subclasses (same `learning_rate`, `momentum`, `nesterov`, clipping and
    weight decay):

    ```python
    w = w - learning_rate * g          # momentum = 0, as Selfish-RNN
    ```

    After the switch the update rule stays the same, and the optimizer also
    keeps, for every trainable weight, the running mean of its values after
    each step since the switch (ASGD, Polyak averaging), which
    `finalize_variable_values` writes into the model at the end of `fit`
    (as Keras does for `use_ema=True`).

    The switch: `record_validation(value)` (called each epoch by the
    `SNTASGDTrigger` callback) switches when `value` is higher than the best
    of the values recorded more than `nonmono` epochs before: with the
    history `h` of earlier values, when `len(h) > nonmono and value >
    min(h[:-nonmono])`, the rule of Merity et al. (2017) as in the
    AWD-LSTM and Selfish-RNN code. `switch_to_averaging()` switches now.
    The switch, the step it happened and the trigger's history are
    optimizer variables, saved and restored with it.

    Sparse weights (a variable whose constraint is a
    `keras_sparse_rnn.masks.MaskConstraint`, which every sparse layer of this
    package sets) keep one count per position: the average at a position is
    the mean of the weight's values over the steps since the later of the
    switch and the step it was last grown. After each step the average (and
    the count) are multiplied by the mask, so the averaged model is exactly
    as sparse as the trained one, whatever the order of topology updates. A
    position that was inactive restarts by itself when it becomes active
    (its count was zero); `update_sparse_topology(variable, new_mask,
    grown)`, which `DynamicSparsity` calls after each mask update, also
    restarts positions pruned and grown in the same update. Dense weights
    keep one count per matrix.

    Differences with the PyTorch code (`torch.optim.ASGD(t0=0, lambd=0)`,
    Selfish-RNN's `Sparse_ASGD`): there the first iterate after the switch
    is dropped from the average (its `mu` lags one step); here the average
    is the plain mean of every iterate since the switch. Both use the
    weights after the update (and after the mask).

    Args:
        learning_rate: A float, a
            `keras.optimizers.schedules.LearningRateSchedule` instance, or a
            callable that takes no arguments and returns the value to use.
            Defaults to `0.01`.
        momentum: float in [0, 1], SGD momentum (Selfish-RNN uses 0).
            Defaults to `0.0`.
        nesterov: boolean, Nesterov momentum. Defaults to `False`.
        nonmono: int >= 1, the number of epochs of the non-monotonic trigger
            (5 in Selfish-RNN and AWD-LSTM). Defaults to `5`.
        weight_decay, clipnorm, clipvalue, global_clipnorm, loss_scale_factor,
        gradient_accumulation_steps, name: as in `keras.optimizers.SGD`.
            `use_ema` must stay `False`: this optimizer averages itself.

    Example:

    ```python
    model.compile(optimizer=SNTASGD(learning_rate=40.0, global_clipnorm=0.25),
                  loss=...)
    model.fit(x, y, validation_data=(vx, vy), epochs=100,
              callbacks=[SNTASGDTrigger("val_loss")])
    # After fit, the model holds the averaged weights (once it switched).
    ```
    """

    def __init__(
        self,
        learning_rate=0.01,
        momentum=0.0,
        nesterov=False,
        nonmono=5,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        if use_ema:
            raise ValueError(
                "use_ema must be False for SNTASGD (it keeps its own average "
                f"of the weights), got {use_ema!r}"
            )
        momentum = check_number(momentum, "momentum", minimum=0, maximum=1)
        super().__init__(
            learning_rate=learning_rate,
            momentum=momentum,  # a float: SGD takes floats only
            nesterov=check_bool(nesterov, "nesterov"),
            name=name,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=False,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            **kwargs,
        )
        self.nonmono = check_int(nonmono, "nonmono", minimum=1)
        # Made here, not in `build`, so that a switch or a recorded
        # validation value before the first step is kept.
        self._switch_iteration = self.add_variable(
            (), initializer=keras.initializers.Constant(-1), dtype="int",
            aggregation="only_first_replica", name="switch_iteration")
        self._validation_count = self.add_variable(
            (), initializer="zeros", dtype="int",
            aggregation="only_first_replica", name="validation_count")
        self._validation_recent = self.add_variable(
            (self.nonmono,), initializer="zeros", dtype="float64",
            aggregation="only_first_replica", name="validation_recent")
        self._validation_best_old = self.add_variable(
            (), initializer=keras.initializers.Constant(math.inf),
            dtype="float64", aggregation="only_first_replica",
            name="validation_best_old")

    def build(self, variables):
        """Creates SGD's momentums (if `momentum`), the averages and counts."""
        if self.built:
            return
        super().build(variables)
        self._averages = self.add_optimizer_variables(variables, "average")
        counts = []
        for variable, average in zip(variables, self._averages):
            if average is None:
                counts.append(None)
                continue
            # One count per position for a sparse weight, one per matrix
            # otherwise.
            shape = (variable.shape
                     if isinstance(variable.constraint, MaskConstraint) else ())
            counts.append(self.add_variable(
                shape, initializer="zeros", dtype="float32",
                name=f"{variable.path.replace('/', '_')}_average_count"))
        self._average_counts = counts

    # ------------------------------------------------------------------
    # The step.

    def update_step(self, gradient, variable, learning_rate):
        """SGD's step, then the running average once switched."""
        super().update_step(gradient, variable, learning_rate)
        index = optimizer_slots.variable_index(self, variable)
        ops.cond(
            ops.greater_equal(self._switch_iteration, 0),
            lambda: self._update_average(index, variable),
            lambda: None,
        )

    def _update_average(self, index, variable):
        average = self._averages[index]
        count = self._average_counts[index]
        reference = optimizer_slots.trained_variables(self)[index]
        # The value the step leaves: `apply` applies the constraint (the
        # mask) right after this; constraints are idempotent.
        value = ops.convert_to_tensor(variable)
        constraint = reference.constraint
        if constraint is not None:
            value = constraint(value)
        new_count = ops.add(count, 1.0)
        mask = None
        if isinstance(constraint, MaskConstraint):
            mask = ops.cast(constraint.mask, variable.dtype)
            new_count = ops.multiply(new_count, ops.cast(mask, "float32"))
        divisor = ops.cast(ops.maximum(new_count, 1.0), variable.dtype)
        new_average = ops.add(
            average, ops.divide(ops.subtract(value, average), divisor))
        if mask is not None:
            new_average = ops.multiply(new_average, mask)
        self.assign(count, new_count)
        self.assign(average, new_average)

    # ------------------------------------------------------------------
    # The switch.

    @property
    def averaging(self):
        """Whether the optimizer has switched to averaged SGD."""
        return int(ops.convert_to_numpy(self._switch_iteration)) >= 0

    @property
    def switch_iteration(self):
        """`iterations` when it switched (averaging from the next step), or None."""
        value = int(ops.convert_to_numpy(self._switch_iteration))
        return value if value >= 0 else None

    @property
    def has_average_weights(self):
        """Whether averages exist: switched, and at least one step since."""
        switch = self.switch_iteration
        return (self.built and switch is not None
                and int(ops.convert_to_numpy(self.iterations)) > switch)

    def switch_to_averaging(self):
        """Starts averaging from the next step (eager; no-op if switched)."""
        if self.averaging:
            return
        if self.built:
            for average, count in zip(self._averages, self._average_counts):
                if average is not None:
                    average.assign(ops.zeros(average.shape, average.dtype))
                    count.assign(ops.zeros(count.shape, count.dtype))
        self._switch_iteration.assign(
            ops.cast(self.iterations, self._switch_iteration.dtype))

    def record_validation(self, value):
        """Records an epoch's validation value; switches on the NT rule.

        Lower must be better (a loss or a perplexity). Before the switch,
        with `h` the values recorded so far, it switches when
        `len(h) > nonmono and value > min(h[:-nonmono])`. After the switch it
        does nothing. Call it eagerly, once per epoch.

        Args:
            value: the validation loss (or perplexity) of the epoch.

        Returns:
            True if this value made it switch.
        """
        if isinstance(value, bool) or not isinstance(
                value, (numbers.Real, np.ndarray, np.generic)) or np.ndim(value):
            raise ValueError(
                f"value must be a number (a validation loss), got {value!r}"
            )
        value = float(value)
        if math.isnan(value):
            raise ValueError(f"value must be a number, not NaN, got {value}")
        if self.averaging:
            return False
        count = int(ops.convert_to_numpy(self._validation_count))
        recent = np.array(ops.convert_to_numpy(self._validation_recent))
        best_old = float(ops.convert_to_numpy(self._validation_best_old))
        # best_old is the minimum of all values but the last `nonmono`.
        switch = count > self.nonmono and value > best_old
        slot = count % self.nonmono
        if count >= self.nonmono:
            best_old = min(best_old, float(recent[slot]))
        recent[slot] = value
        self._validation_recent.assign(recent)
        self._validation_best_old.assign(best_old)
        self._validation_count.assign(count + 1)
        if switch:
            self.switch_to_averaging()
        return switch

    # ------------------------------------------------------------------
    # Sparse topology.

    def update_sparse_topology(self, variable, new_mask, grown):
        """Restarts the averages of grown weights, zeroes pruned ones.

        Called by a topology update (`DynamicSparsity`) after it changed the
        mask of `variable`: at `grown` positions the average becomes the
        weight's current value (zero: grown weights start at zero), its
        count restarts (the next step's value is its first iterate) and the
        momentum is zeroed; at positions outside `new_mask` the average and
        count are zero. Works eagerly and inside a `tf.function` (XLA).
        Does nothing before the optimizer is built.

        Args:
            variable: the sparse weight (a trainable variable of the model).
            new_mask: its new 0/1 mask, of the variable's shape.
            grown: 0/1 (or bool) of the variable's shape, the positions grown
                by this update, including any pruned and grown again.
        """
        if not self.built:
            return
        for arg, value in (("new_mask", new_mask), ("grown", grown)):
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"{arg} must have the shape of the variable "
                    f"{tuple(variable.shape)}, got {tuple(value.shape)}"
                )
        try:
            index = optimizer_slots.variable_index(self, variable)
        except KeyError:
            raise ValueError(
                f"update_sparse_topology: the variable {variable.name} is not "
                "one this optimizer was built with"
            ) from None
        average = self._averages[index]
        count = self._average_counts[index]
        if average is None:
            return
        if len(count.shape) == 0:
            raise ValueError(
                f"update_sparse_topology: the variable {variable.name} had no "
                "MaskConstraint when the optimizer was built, so its average "
                "has one count for the whole matrix; build the optimizer on "
                "the sparse layers' weights"
            )
        dtype = average.dtype
        grown = ops.cast(grown, dtype)
        keep = ops.multiply(ops.cast(new_mask, dtype), ops.subtract(1.0, grown))
        self.assign(count, ops.multiply(count, ops.cast(keep, count.dtype)))
        self.assign(average, ops.add(
            ops.multiply(average, keep),
            ops.multiply(ops.cast(variable, dtype), grown)))
        if self.momentum != 0:
            m = self.momentums[index]
            self.assign(m, ops.multiply(m, ops.subtract(1.0, grown)))

    # ------------------------------------------------------------------
    # The averaged weights.

    def _average_pairs(self, var_list):
        pairs = []
        for var in var_list:
            try:
                index = optimizer_slots.variable_index(self, var)
            except KeyError:
                raise ValueError(
                    f"The variable {var.name} is not one this optimizer was "
                    "built with"
                ) from None
            if self._averages[index] is not None:
                pairs.append((var, self._averages[index]))
        return pairs

    def finalize_variable_values(self, var_list):
        """Writes the averages into `var_list` once averaging has started.

        `fit` calls it at its end, as for `use_ema=True`: after a `fit` that
        switched, the model holds the averaged weights, and a later `fit`
        continues from them. Before the switch (or before any step after
        it) it leaves the variables as they are.
        """
        if not self.has_average_weights:
            return
        for var, average in self._average_pairs(var_list):
            var.assign(average)

    def swap_average_weights(self, var_list=None):
        """Exchanges the model's weights and their averages, exactly.

        Call it twice to come back (`SNTASGDTrigger(swap_for_validation=True)`
        does so around each validation). Eager only.

        Args:
            var_list: the variables, by default all the optimizer was built
                with.

        Raises:
            ValueError: if there are no averages yet (`has_average_weights`).
        """
        if not self.has_average_weights:
            raise ValueError(
                "swap_average_weights: there are no averaged weights yet; the "
                "optimizer switches with switch_to_averaging() or "
                "record_validation(), and averages from the next step on"
            )
        if var_list is None:
            var_list = optimizer_slots.trained_variables(self)
        for var, average in self._average_pairs(var_list):
            current = ops.convert_to_numpy(var)
            var.assign(average)
            average.assign(current)

    def get_config(self):
        config = super().get_config()
        config["nonmono"] = self.nonmono
        return config


def _sntasgd_of(model):
    optimizer = wrappers.unwrap(getattr(model, "optimizer", None))
    if not isinstance(optimizer, SNTASGD):
        raise ValueError(
            "SNTASGDTrigger needs a model compiled with "
            "keras_sparse_rnn.optimizers.SNTASGD, got "
            f"{type(optimizer).__name__}"
        )
    return optimizer


class SNTASGDTrigger(keras.callbacks.Callback):
    """Tells `SNTASGD` each epoch's validation value: the NT-ASGD trigger.

    At the end of each epoch it passes `logs[monitor]` to
    `optimizer.record_validation`, which switches to averaging when the
    value has not improved on the best of the values more than `nonmono`
    (the optimizer's argument) epochs back. Its state lives in the optimizer,
    so it survives `model.save` and loading.

    Args:
        monitor: the logged quantity, lower is better. Defaults to
            `"val_loss"` (perplexity is its exponential: same decisions).
        swap_for_validation: if True, once averages exist the model's
            weights are exchanged with them for each evaluation during `fit`
            (and back after), so the validation metrics are those of the
            averaged model, as in AWD-LSTM and Selfish-RNN. Defaults to
            `False`.
        verbose: 0 (or False) silent; 1, 2 or True print a line when it switches.

    Example:

    ```python
    model.compile(optimizer=SNTASGD(40.0, nonmono=5), loss=...)
    model.fit(x, y, validation_data=val, epochs=100,
              callbacks=[SNTASGDTrigger("val_loss", swap_for_validation=True)])
    ```
    """

    def __init__(self, monitor="val_loss", swap_for_validation=False,
                 verbose=0):
        super().__init__()
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(
                f"monitor must be the name of a logged metric, got {monitor!r}"
            )
        self.monitor = monitor
        self.swap_for_validation = check_bool(
            swap_for_validation, "swap_for_validation")
        self.verbose = check_verbose(verbose)
        self._swapped = False

    def on_train_begin(self, logs=None):
        _sntasgd_of(self.model)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        optimizer = _sntasgd_of(self.model)
        if self.monitor not in logs:
            raise ValueError(
                f"SNTASGDTrigger: monitor={self.monitor!r} is not in the logs "
                f"of epoch {epoch + 1} (available: {sorted(logs)}); pass "
                "validation data to fit or monitor another value"
            )
        if optimizer.record_validation(logs[self.monitor]) and self.verbose:
            print(f"SNTASGDTrigger: epoch {epoch + 1}: {self.monitor} "
                  f"{float(logs[self.monitor]):.4f} did not improve on the "
                  f"best before the last {optimizer.nonmono} epochs: "
                  "switching to averaged SGD at step "
                  f"{optimizer.switch_iteration}")
        logs["asgd_averaging"] = 1.0 if optimizer.averaging else 0.0

    def on_test_begin(self, logs=None):
        if not self.swap_for_validation or self._swapped:
            return
        optimizer = _sntasgd_of(self.model)
        if optimizer.has_average_weights:
            optimizer.swap_average_weights()
            self._swapped = True

    def on_test_end(self, logs=None):
        if self._swapped:
            _sntasgd_of(self.model).swap_average_weights()
            self._swapped = False
