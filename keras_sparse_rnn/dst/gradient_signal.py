"""The gradient a grow criterion ranks positions by: where it comes from.

RigL's growth (and SNFS's, when the optimizer keeps no first moment) needs
dL/dW of every sparse matrix at the update. `GradientSignal` gives it from,
in this order: the gradients a custom loop passed to `step_end`, the loss
and batch it passed, or the callback's `grow_data`; the loss is computed
with `training=False` in a compiled function, and the states of stateful RNN
layers are put back afterwards.
"""

import contextlib

import keras
import tensorflow as tf

from keras_sparse_rnn._keras import training as keras_training
from keras_sparse_rnn._keras.layers import flatten_layers
from keras_sparse_rnn.layers import block_path


def check_grow_data(grow_data):
    """`grow_data` of `DynamicSparsity`: None, one batch or a dataset."""
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
    for layer in flatten_layers(model, include_self=False):
        if getattr(layer, "stateful", False) and getattr(layer, "states", None):
            variables.extend(tf.nest.flatten(layer.states))
    return variables


def _check_not_per_replica(name, value):
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


class GradientSignal:
    """dL/dW of the sparse matrices of one model, on demand.

    Args:
        grow_data: the callback's `grow_data` (checked by `check_grow_data`).
        model: the model.
        matrices: the `SparseMatrix` objects of the matrices, in update order.
    """

    def __init__(self, grow_data, model, matrices):
        self.grow_data = grow_data
        self.model = model
        self.matrices = matrices
        self._given = None  # ("gradients", list) or ("loss", (loss_fn, batch))
        self._compiled_loss_fn = None
        self._user_loss_fns = {}
        self._grow_batch = None

    @contextlib.contextmanager
    def given(self, loss_fn=None, batch=None, gradients=None):
        """Within the block, `gradients()` uses what a custom loop passed:
        `gradients` (aligned with `model.trainable_variables`, or
        `(gradient, variable)` pairs), or a `loss_fn` and a `batch`."""
        if gradients is not None and (loss_fn is not None or batch is not None):
            raise ValueError("give gradients, or loss_fn and batch, not both")
        if (loss_fn is None) != (batch is None):
            raise ValueError("loss_fn and batch go together: give both or "
                             "neither")
        if loss_fn is not None and not callable(loss_fn):
            raise ValueError(f"loss_fn must be callable, got {loss_fn!r:.100}")
        _check_not_per_replica("batch", batch)
        _check_not_per_replica("gradients", gradients)
        if gradients is not None:
            self._given = ("gradients", self._align(gradients))
        elif loss_fn is not None:
            self._given = ("loss", (loss_fn, batch))
        try:
            yield
        finally:
            self._given = None

    @property
    def is_given(self):
        """Whether a `given` block with a signal is open."""
        return self._given is not None

    def gradients(self, grow):
        """dL/dW of every sparse matrix (`grow` names the criterion in the
        error raised when there is no source)."""
        if self._given is not None and self._given[0] == "gradients":
            return self._given[1]
        if self._given is not None:
            loss_fn, batch = self._given[1]
            return self._run(self._user_loss_gradient_fn(loss_fn), batch)
        if self.grow_data is None:
            raise ValueError(
                f"grow={grow!r} needs a gradient: give grow_data to the "
                "callback, or loss_fn and batch (or gradients) to step_end / "
                "epoch_end / update_topology")
        return self._run(self._compiled_loss_gradient_fn(), None)

    def _align(self, gradients):
        """`gradients` as one tensor per sparse matrix."""
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
        for matrix in self.matrices:
            g = by_id.get(id(matrix.weight))
            if g is None:
                raise ValueError(
                    f"gradients has none for the sparse weight "
                    f"'{matrix.weight.path}'")
            out.append(tf.convert_to_tensor(g, matrix.weight.dtype))
        return out

    def _compile(self, loss):
        """A compiled `(x, y, sample_weight) -> grads` of `loss(x, y,
        y_pred, sample_weight)` (XLA when the model is)."""
        model = self.model
        weights = [s.weight for s in self.matrices]

        def grads(x, y, sample_weight):
            with tf.GradientTape() as tape:
                y_pred = model(x, training=False)
                value = loss(x, y, y_pred, sample_weight)
            return _dense_grads(tape.gradient(value, weights), weights)

        return tf.function(
            grads, jit_compile=bool(getattr(model, "jit_compile", False)))

    def _user_loss_gradient_fn(self, loss_fn):
        entry = self._user_loss_fns.get(id(loss_fn))
        if entry is None:
            takes_weight = isinstance(loss_fn, keras.losses.Loss)

            def loss(x, y, y_pred, sample_weight):
                if takes_weight:
                    return loss_fn(y, y_pred, sample_weight=sample_weight)
                return loss_fn(y, y_pred)

            entry = (self._compile(loss), loss_fn)  # keeps loss_fn alive
            self._user_loss_fns[id(loss_fn)] = entry
        return entry[0]

    def _compiled_loss_gradient_fn(self):
        if self._compiled_loss_fn is None:
            model = self.model

            def loss(x, y, y_pred, sample_weight):
                return keras_training.compiled_loss(model, x, y, y_pred,
                                                    sample_weight)

            self._compiled_loss_fn = self._compile(loss)
        return self._compiled_loss_fn

    def _run(self, fn, batch):
        """`fn` on `batch` (or `grow_data`), the stateful RNN states kept."""
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
        states = _stateful_variables(self.model)
        saved = [v.numpy() for v in states]
        with block_path.masked_dense():  # the dense gradient, also inactive
            grads = fn(x, y, sample_weight)
        for variable, value in zip(states, saved):
            variable.assign(value)
        return grads
