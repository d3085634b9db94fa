"""Grow inputs: the element-level tensor a grow criterion ranks by.

A grow criterion (see `scores`) is registered with the name of the grow
input it reads (`register_grow(name, fn, needs=...)`); the callback makes
one instance of that input's class per model and, at each update, calls
`prepare` for the tensors (one per sparse matrix, or `None`) and, after the
matrix's update, `on_grown` with the positions grown, so that any state the
input keeps can restart there. Three kinds are registered:

* `None` (`NoGrowInput`): nothing (SET's random growth);
* `"gradient"` (`GradientGrowInput`): dL/dW (RigL);
* `"momentum"` (`MomentumGrowInput`): a moving average of dL/dW (SNFS), the
  optimizer's first moment or, without one, its own average.

A new kind of grow signal is one subclass and one
`registry.register_grow_input` call, e.g. the squared gradient:

    class SquaredGradientInput(GrowInput):
        uses_gradient = True

        def prepare(self, context):
            return [g * g for g in context.gradients()]

    register_grow_input("squared_gradient", SquaredGradientInput)
    register_grow("fisher", scores.gradient_grow, needs="squared_gradient")
"""

import warnings

import tensorflow as tf

from keras_sparse_rnn._keras import optimizer_slots

#: Decay of the callback's own moving average of the gradient (SNFS's
#: momentum 0.9), used when the optimizer keeps no first moment.
EMA_DECAY = 0.9


class GrowContext:
    """What `GrowInput.prepare` may read at an update.

    Attributes:
        matrices: the `SparseMatrix` objects, one per matrix, in update order.
        optimizer: the optimizer of the training.
        gradients: a callable returning dL/dW of every matrix (from the custom
            loop's signal or `grow_data`; it raises if there is none).
        state: the input's own per-matrix variables (`state_name`), or `[]`.
    """

    def __init__(self, matrices, optimizer, gradients, state):
        self.matrices = matrices
        self.optimizer = optimizer
        self.gradients = gradients
        self.state = state

    @property
    def specs(self):
        """Deprecated name of `matrices`."""
        warnings.warn("GrowContext.specs is deprecated: use GrowContext.matrices",
                      DeprecationWarning, stacklevel=2)
        return self.matrices


class GrowInput:
    """Base class: a grow input that provides nothing.

    Class attributes a subclass sets:
        uses_gradient: whether `prepare` may call `context.gradients()`, so
            that `grow_data` makes sense for this input.
    """

    uses_gradient = False

    def __init__(self, optimizer):
        self.optimizer = optimizer

    @property
    def state_name(self):
        """The name of the per-matrix state the input keeps (saved with the
        callback's state), or `None` for no state."""
        return None

    def reads_optimizer_moment(self):
        """Whether `prepare` reads the optimizer's first moment, a moving
        average of the training gradients: on the block path those are zero
        outside the active blocks, so such a grow input cannot rank them."""
        return False

    def needs_gradient(self):
        """Whether `prepare` will call `context.gradients()` with this
        optimizer: `fit` then requires `grow_data`. By default, whether it
        reads the gradient at all (`uses_gradient`)."""
        return self.uses_gradient

    def missing_gradient_message(self, grow):
        """The error when `fit` has no `grow_data` to take the gradient on."""
        return (f"grow={grow!r} ranks positions by the gradient of the loss: "
                "give grow_data, an (x, y) batch or a tf.data.Dataset")

    def prepare(self, context):
        """The grow input of each matrix: a list aligned with
        `context.matrices` of tensors of the weights' shapes, or of `None`."""
        return [None] * len(context.matrices)

    def on_grown(self, i, grown, context):
        """Called after matrix `i` grew at the 0/1 positions `grown`."""


class NoGrowInput(GrowInput):
    """Nothing: the criterion ignores `grow_input` (SET's random growth)."""


class GradientGrowInput(GrowInput):
    """dL/dW of each matrix on the gradient signal (RigL)."""

    uses_gradient = True

    def prepare(self, context):
        return context.gradients()


class MomentumGrowInput(GrowInput):
    """A moving average of dL/dW (SNFS): the optimizer's first moment (SGD
    with momentum, Adam, AdamW, Nadam, Adamax, Lamb, Lion) or, when it keeps
    none, the callback's own average (decay `EMA_DECAY`) of the gradient at
    each update, restarted at 0 at grown positions."""

    uses_gradient = True

    def __init__(self, optimizer):
        super().__init__(optimizer)
        self.own_average = not optimizer_slots.has_first_moment(optimizer)

    @property
    def state_name(self):
        return "momentum" if self.own_average else None

    def needs_gradient(self):
        return self.own_average

    def reads_optimizer_moment(self):
        return not self.own_average

    def missing_gradient_message(self, grow):
        return (
            f"grow={grow!r} needs a moving average of the gradient; "
            f"the optimizer {type(self.optimizer).__name__} keeps none "
            "(SGD with momentum, Adam, AdamW, Nadam, Adamax, Lamb and Lion "
            "do), so give grow_data: the callback then averages the "
            "gradient on it at each update")

    def prepare(self, context):
        if self.own_average:
            inputs = []
            for ema, g in zip(context.state, context.gradients()):
                ema.assign(EMA_DECAY * ema + (1.0 - EMA_DECAY) * g)
                inputs.append(tf.convert_to_tensor(ema))
            return inputs
        inputs = []
        for matrix in context.matrices:
            slot = optimizer_slots.first_moment(context.optimizer, matrix.weight)
            if slot is None:
                raise RuntimeError(
                    f"grow='momentum': the optimizer has no first moment for "
                    f"'{matrix.weight.path}' (is it built?)")
            inputs.append(tf.convert_to_tensor(slot))
        return inputs

    def on_grown(self, i, grown, context):
        if self.own_average:
            ema = context.state[i]
            ema.assign(tf.convert_to_tensor(ema) * (1 - grown))
