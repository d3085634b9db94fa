"""`DynamicSparsityState`: the variables a `DynamicSparsity` callback saves.

The callback's progress (the last update point and the number of updates),
the ever-active masks behind the in-time over-parameterization rate, and the
per-matrix state of its grow input (SNFS's moving average of the gradient
when the optimizer keeps no first moment) live in variables of a layer
attached to the model, so that `model.save_weights`, `model.save` and
`keras.callbacks.BackupAndRestore` save and restore them with the model.
"""

import warnings

import keras
import numpy as np

#: Attribute of the model holding the callback's state layer. It is set with
#: `object.__setattr__`, so Keras does not track it as a sub-layer (the
#: model's layers, weights and outputs are unchanged), but Keras' saving
#: walks every attribute of the model, so `model.save_weights`,
#: `model.save` and `BackupAndRestore` checkpoints include it.
STATE_ATTR = "_keras_sparse_rnn_dst_state"


class DynamicSparsityState(keras.layers.Layer):
    """The variables a `DynamicSparsity` callback must keep across restarts.

    Not part of the model's computation: the callback attaches it to the
    model untracked (see `STATE_ATTR`), so it is saved and restored with the
    model's weights (`save_weights`, `BackupAndRestore`) without changing the
    model's layers, weights or outputs.

    Variables: `counters` (int64: the last update point processed and the
    number of updates done), one `ever_active` 0/1 mask per sparse matrix
    (for the in-time over-parameterization rate), and, when the grow input
    keeps state (`grow_state_name`, e.g. `"momentum"` for `grow="momentum"`
    with an optimizer that has no first moment), one variable per matrix in
    `grow_state`.

    Args:
        matrices: the `SparseMatrix` objects the callback updates.
        grow_state_name: `None`, or the name of the grow input's per-matrix
            state (its checkpoint keys are `<name>_<i>`).
    """

    def __init__(self, matrices, grow_state_name=None,
                 name="dynamic_sparsity_state", **kwargs):
        super().__init__(name=name, trainable=False, **kwargs)
        self.grow_state_name = grow_state_name
        self.counters = self.add_weight(
            name="counters", shape=(2,), dtype="int64", trainable=False,
            initializer=lambda shape, dtype=None: np.array([-1, 0], np.int64),
        )
        self.ever_active = []
        self.grow_state = []
        for i, matrix in enumerate(matrices):
            values = np.asarray(matrix.mask.numpy())
            self.ever_active.append(self.add_weight(
                name=f"ever_active_{i}", shape=values.shape,
                dtype=matrix.mask.dtype, trainable=False,
                initializer=lambda shape, dtype=None, v=values: v,
            ))
            if grow_state_name:
                self.grow_state.append(self.add_weight(
                    name=f"{grow_state_name}_{i}", shape=values.shape,
                    dtype=matrix.weight.dtype, trainable=False,
                    initializer="zeros",
                ))
        self.built = True

    def _named_variables(self):
        named = [("counters", self.counters)]
        named += [(f"ever_active_{i}", v) for i, v in enumerate(self.ever_active)]
        named += [(f"{self.grow_state_name}_{i}", v)
                  for i, v in enumerate(self.grow_state)]
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

    # The progress counters: decoded and encoded here only -------------------

    def progress(self):
        """`(last_point, update_count)`: the last update point the callback
        processed (-1 before any) and the number of updates done, as ints."""
        last_point, update_count = (int(v) for v in self.counters.numpy())
        return last_point, update_count

    def set_progress(self, last_point, update_count):
        """Stores `(last_point, update_count)` (see `progress`)."""
        self.counters.assign(np.array([last_point, update_count], np.int64))

    # The callback's `get_state` / `set_state` -------------------------------

    def to_numpy(self):
        """The state as NumPy values: a dict whose `"momentum"` entry holds
        the grow input's per-matrix state (SNFS's moving averages, the one
        grow input that keeps any; the key is kept so saved dicts load)."""
        last, count = self.progress()
        return {
            "last_point": last,
            "update_count": count,
            "ever_active": [v.numpy() for v in self.ever_active],
            "momentum": [v.numpy() for v in self.grow_state],
        }

    def from_numpy(self, state):
        """Restores what `to_numpy` returned (for the same model)."""
        keys = {"last_point", "update_count", "ever_active", "momentum"}
        if not isinstance(state, dict) or set(state) != keys:
            raise ValueError(f"state must be a dict with keys {sorted(keys)}, "
                             f"got {state!r:.200}")
        if (len(state["ever_active"]) != len(self.ever_active)
                or len(state["momentum"]) != len(self.grow_state)):
            raise ValueError(
                f"state has {len(state['ever_active'])} ever-active masks and "
                f"{len(state['momentum'])} moving averages; this model needs "
                f"{len(self.ever_active)} and {len(self.grow_state)}")
        pairs = (list(zip(self.ever_active, state["ever_active"]))
                 + list(zip(self.grow_state, state["momentum"])))
        for variable, value in pairs:
            value = np.asarray(value)
            if value.shape != tuple(variable.shape):
                raise ValueError(f"state entry of shape {value.shape} does not "
                                 f"fit {tuple(variable.shape)}")
        for variable, value in pairs:
            variable.assign(value)
        self.set_progress(state["last_point"], state["update_count"])
