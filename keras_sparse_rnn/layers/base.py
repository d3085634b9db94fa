"""What every sparse layer and cell shares: masks, their invariants, saving."""

import copy

import keras
import numpy as np

from keras_sparse_rnn import masks as masks_lib
from keras_sparse_rnn._deprecation import renamed
from keras_sparse_rnn._keras import layers as keras_layers
from keras_sparse_rnn.layers import guard
from keras_sparse_rnn.layers.sparse_matrix import (SparseMatrix, SparseMatrixOwner,
                                                   sparse_matrices)
from keras_sparse_rnn.validation import (check_block, check_bool, check_fraction,
                                         check_seed)

# The record's name before `SparseMatrix`: works for one release, and warns.
__getattr__ = renamed(__name__, {"SparseWeight": "SparseMatrix"}, globals())


def set_layer_weights(layer, weights):
    """`layer.set_weights` for a layer holding sparse weights (itself, or a
    `SparseLSTM`'s cell): see `SparseLayerMixin.set_weights`."""
    variables = layer.weights
    matrices = sparse_matrices(layer)
    mask_ids = {id(m.mask) for m in matrices}
    weights = list(weights)
    if len(weights) == len(variables):
        targets = variables
    elif len(weights) == len(variables) - len(mask_ids):
        targets = [v for v in variables if id(v) not in mask_ids]
    else:
        without = [v.name for v in variables if id(v) not in mask_ids]
        raise ValueError(
            f"{type(layer).__name__} '{layer.name}': set_weights takes the "
            f"{len(variables)} arrays of get_weights() "
            f"({[v.name for v in variables]}) or the {len(without)} arrays of "
            f"its Keras counterpart, without the masks ({without}); got "
            f"{len(weights)}"
        )
    values = {}
    for variable, value in zip(targets, weights):
        value = np.asarray(value)
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(
                f"{type(layer).__name__} '{layer.name}': cannot set "
                f"'{variable.path}' of shape {tuple(variable.shape)} from an "
                f"array of shape {value.shape}"
            )
        values[id(variable)] = value
    _assign_checked(targets, matrices, values)


def _assign_checked(variables, matrices, values):
    """Assigns `values` (`{id(variable): array}`) to `variables`, each
    sparse pair checked first (nothing is assigned if one fails) and written
    through `SparseMatrix.replace`."""
    pairs = []
    for matrix in matrices:
        weight = values.get(id(matrix.weight))
        mask = values.get(id(matrix.mask))
        weight = np.asarray(matrix.weight.numpy()) if weight is None else weight
        mask = np.asarray(matrix.mask.numpy()) if mask is None else mask
        matrix.check(weight, mask)
        pairs.append((matrix, mask, weight))
    paired = {id(v) for m, _, _ in pairs for v in (m.weight, m.mask)}
    for matrix, mask, weight in pairs:
        matrix.replace(mask, weight)
    for variable in variables:
        if id(variable) not in paired:
            variable.assign(values[id(variable)])


def _check_block_fits(shape, block_shape, gates, where):
    """Blocks along the input must divide the weight; b x b blocks of
    constant fan-in are padded inside the layer where b does not divide."""
    if masks_lib.is_constant_fan_in(block_shape):
        return
    try:
        masks_lib.block_grid(shape, block_shape)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def _matrix_sparsity(value, name="sparsity"):
    """One matrix's sparsity: a float, or a list of one float per gate."""
    if isinstance(value, (list, tuple)):
        return [check_fraction(v, name) for v in value]
    return check_fraction(value, name)


class SparseLayerMixin(SparseMatrixOwner):
    """Adds masks to the weights of a Keras layer.

    A subclass calls `_init_sparsity` in `__init__` and `_add_mask` in `build`
    for each weight that is sparse. The mask is a non-trainable variable named
    `<weight>_mask`; the weight's constraint becomes a `MaskConstraint`, so the
    optimizer zeroes inactive weights after each step and the forward pass
    uses the weight as it is (no `weight * mask` per time step).
    """

    #: The weights a layer makes sparse (see `_planned_sparse_weights`).
    SPARSE_WEIGHTS = ()

    def _init_sparsity(self, sparsity, mask_seed, block=None):
        if isinstance(sparsity, dict):
            sparsity = {
                key: _matrix_sparsity(value, f"sparsity[{key!r}]")
                for key, value in sparsity.items()
            }
        else:
            sparsity = check_fraction(sparsity, "sparsity")
        # Plain attributes: Keras would wrap dicts to track sub-layers, and a
        # record that points back at this layer would make it its own child.
        object.__setattr__(self, "sparsity", sparsity)
        mask_seed = check_seed(mask_seed)
        if mask_seed is None:
            # NumPy's global generator follows keras.utils.set_random_seed; the
            # drawn seed goes into the config, so clones draw the same masks.
            mask_seed = int(np.random.randint(0, 2**31 - 1))
        self.mask_seed = mask_seed
        self.block = check_block(block)
        # Not tracked by Keras (which walks a layer's dicts for sub-layers):
        # each `SparseMatrix` points back at this layer.
        object.__setattr__(self, "_sparse_matrices", {})

    def matrix_sparsity(self, name):
        """The sparsity (float, or list per gate) of the weight `name`."""
        if isinstance(self.sparsity, dict):
            if name not in self.sparsity:
                raise ValueError(
                    f"{self._description()}: `sparsity` is a dict without an "
                    f"entry for the sparse weight '{name}'. Give one for each "
                    f"of its sparse weights {self._planned_sparse_weights()}, "
                    f"got keys {sorted(self.sparsity)}"
                )
            return self.sparsity[name]
        return self.sparsity

    def _planned_sparse_weights(self):
        """Names of the weights this layer makes sparse, known before `build`
        (a subclass with more than `SPARSE_WEIGHTS` overrides it)."""
        return list(self.SPARSE_WEIGHTS)

    def _sparsity_keys(self):
        """The keys a `sparsity` dict may have."""
        return self._planned_sparse_weights()

    def _description(self):
        """How errors name the layer: the user's layer for a wrapped cell
        (`SparseLSTM` sets `_owner_description` on its cell)."""
        owner = getattr(self, "_owner_description", None)
        return owner or f"{type(self).__name__} '{self.name}'"

    def _check_sparsity_keys(self):
        """A dict `sparsity` names only sparse weights (checked at `build`)."""
        if isinstance(self.sparsity, dict):
            allowed = self._sparsity_keys()
            unknown = sorted(set(self.sparsity) - set(allowed))
            if unknown:
                raise ValueError(
                    f"{self._description()}: `sparsity` names {unknown}, which "
                    f"are not sparse weights of this layer; its sparse weights "
                    f"(the allowed keys) are {allowed}"
                )

    def _add_mask(self, name, gates=1, gate_names=None, kind="matmul",
                  initializer=None):
        """Makes `getattr(self, name)` sparse: mask variable and constraint."""
        if not self._sparse_matrices:
            self._check_sparsity_keys()  # before any weight reads the dict
        weight = getattr(self, name)
        sparsity = self.matrix_sparsity(name)
        if isinstance(sparsity, list) and len(sparsity) != gates:
            raise ValueError(
                f"Layer '{self.name}': sparsity[{name!r}] must be one float or "
                f"a list of {gates} floats (one per gate), got {sparsity}"
            )
        # `block` is (output, input) as TFLite names it; a Keras kernel is
        # (input, output). An embedding table's rows are tokens: no blocks.
        block_shape = None
        if self.block is not None and kind == "matmul":
            block_shape = (self.block[1], self.block[0])
            _check_block_fits(weight.shape, block_shape, gates,
                              f"{self._description()}, weight '{name}'")
        masks_lib.check_not_empty(weight.shape, sparsity, gates, block_shape,
                                  f"{self._description()}, weight '{name}'")
        values = masks_lib.random_mask(
            weight.shape, sparsity, self._mask_stream_seed(weight, name),
            gates, block_shape,
        )
        mask = self.add_weight(
            name=f"{name}_mask",
            shape=weight.shape,
            initializer=lambda shape, dtype=None: values,
            trainable=False,
            dtype=weight.dtype,
        )
        setattr(self, f"{name}_mask", mask)
        weight.assign(weight * mask)
        weight.constraint = masks_lib.MaskConstraint(mask, weight.constraint)
        matrix = SparseMatrix(self, name, weight, mask, gates, gate_names, kind,
                              block_shape, initializer, describe=self._description)
        self._sparse_matrices[name] = matrix
        guard.guard(matrix)

    def _mask_stream_seed(self, weight, name):
        """The seed of a weight's initial mask: `mask_seed` and its name.

        `Bidirectional` builds its backward layer from the forward layer's
        config (the same `mask_seed`) under the name `backward_<name>`: that
        direction draws its own masks, else both directions would share
        their connectivity.
        """
        parts = weight.path.split("/")[:-1]
        if any(p.startswith("backward_") for p in parts):
            return masks_lib.stable_seed(self.mask_seed, "backward", name)
        return masks_lib.stable_seed(self.mask_seed, name)

    @property
    def sparse_weights(self):
        """List of `(weight, mask)` variable pairs of this layer."""
        return [(m.weight, m.mask) for m in self._sparse_matrices.values()]

    def get_sparse_weight_info(self):
        """List of this layer's `SparseMatrix` objects (weight, mask, gates,
        ...), in the order `build` made them."""
        return list(self._sparse_matrices.values())

    def sparse_matrix(self, name):
        """The `SparseMatrix` of weight `name`."""
        if name not in self._sparse_matrices:
            raise ValueError(
                f"{self._description()}: '{name}' is not a sparse weight of "
                f"this layer; its sparse weights are "
                f"{list(self._sparse_matrices)}"
            )
        return self._sparse_matrices[name]

    def set_configured_sparsity(self, name, sparsity):
        """Sets the sparsity the config gives weight `name`, mask untouched.

        For code that changes a mask itself (pruning): the config, and the
        checks on load, then expect the mask's new count. `sparsity` is a
        float, or a list of one float per gate. A float `self.sparsity`
        becomes a dict with one entry per sparse weight.
        """
        self.sparse_matrix(name)  # says which names there are
        sparsity = _matrix_sparsity(sparsity)
        if not isinstance(self.sparsity, dict):
            object.__setattr__(
                self, "sparsity",
                {n: self.sparsity for n in self._sparse_matrices},
            )
        self.sparsity[name] = sparsity

    def take_sparsity_from_loaded_masks(self, enabled=True):
        """For code whose pruning changes the masks' active counts: loading
        weights (`load_weights`, `BackupAndRestore`) then sets the sparsity
        of each sparse weight from the mask it loads, as
        `set_configured_sparsity` does, instead of refusing a count that
        differs from the configured one. Masks must still be 0/1 with the
        weights zero outside them. `GradualPruning` enables it on the
        layers of its model, so that a pruning run killed mid-training
        resumes into a freshly built model."""
        object.__setattr__(self, "_sparsity_from_loaded_masks",
                           check_bool(enabled, "enabled"))

    def _reconfigure(self, name, sparsity):
        """Checks a new `sparsity` of weight `name` (it must leave the
        weight some active weights) and configures it; returns the
        weight's `SparseMatrix` and the checked sparsity."""
        matrix = self.sparse_matrix(name)
        sparsity = _matrix_sparsity(sparsity)
        masks_lib.check_not_empty(matrix.weight.shape, sparsity, matrix.gates,
                                  matrix.block_shape,
                                  f"{self._description()}, weight '{name}'")
        self.set_configured_sparsity(name, sparsity)
        return matrix, sparsity

    def set_matrix_sparsity(self, name, sparsity, reinitialize=True):
        """Re-draws the mask of weight `name` at `sparsity`.

        The weight is re-initialized from its initializer (when known and
        `reinitialize`), then masked: call it before training. It updates
        `self.sparsity`, so the config and later loads expect the new count.
        """
        matrix, sparsity = self._reconfigure(name, sparsity)
        weight = matrix.weight
        mask = masks_lib.random_mask(
            weight.shape, sparsity, self._mask_stream_seed(weight, name),
            matrix.gates, matrix.block_shape,
        ).astype(weight.dtype)
        init = matrix.initializer
        values = np.asarray(weight.numpy())
        if reinitialize and init is not None:
            values = keras.ops.convert_to_numpy(init(weight.shape, weight.dtype))
        matrix.replace(mask, values * mask)

    def set_mask_by_magnitude(self, name, sparsity):
        """Keeps the largest-|w| weights of `name` at `sparsity` (exact count;
        per gate for a list, whole blocks for a block-sparse weight), zeroes
        the others and sets the configured sparsity: how a trained dense
        weight becomes a sparse one (`keras_sparse_rnn.sparsify`)."""
        matrix, sparsity = self._reconfigure(name, sparsity)
        weight = np.asarray(matrix.weight.numpy())
        mask = masks_lib.magnitude_mask(weight, sparsity, matrix.gates,
                                        matrix.block_shape).astype(weight.dtype)
        matrix.replace(mask, weight * mask)

    def fan_in(self, name):
        """`(k, block rows)` of the constant fan-in weight `name`: the active
        blocks each of its block columns has at the configured sparsity."""
        return self.sparse_matrix(name).fan_in()

    def expected_active_count(self, name):
        return self.sparse_matrix(name).expected_count()

    # Saving: every variable by position, as `keras.layers.Layer` does (Dense
    # and Embedding save only their kernel and bias), with the masks checked
    # before anything is assigned.
    def save_own_variables(self, store):
        # A file that `load_model` would refuse is never written: the
        # same checks as loading, before anything is stored.
        for matrix in self._sparse_matrices.values():
            matrix.check()
        for i, v in enumerate(keras_layers.own_variables(self)):
            store[f"{i}"] = v

    def load_own_variables(self, store):
        keras_layers.check_load_own_variables(self, store)
        all_vars = keras_layers.own_variables(self)
        values = {id(v): np.asarray(store[f"{i}"]) for i, v in enumerate(all_vars)}
        for v in all_vars:
            if values[id(v)].shape != tuple(v.shape):
                raise ValueError(
                    f"Layer '{self.name}': cannot load '{v.name}': the file "
                    f"has shape {values[id(v)].shape}, the layer expects "
                    f"{tuple(v.shape)}"
                )
        configured = copy.deepcopy(self.sparsity)
        try:
            if getattr(self, "_sparsity_from_loaded_masks", False):
                for matrix in self._sparse_matrices.values():
                    sparsity = matrix.sparsity_of(values[id(matrix.mask)])
                    if sparsity is not None:  # else the check says what is wrong
                        self.set_configured_sparsity(matrix.name, sparsity)
            _assign_checked(all_vars, self.get_sparse_weight_info(), values)
        except ValueError:
            object.__setattr__(self, "sparsity", configured)  # a refused file changes nothing
            raise

    def set_weights(self, weights):
        """Sets the weights from NumPy arrays: the list of `get_weights()`
        (weights and masks), or the list the Keras counterpart layer takes
        (`keras.layers.Dense`, `LSTM`, ...: the weights without the masks,
        which keep their values). Either way the weights must be zero outside
        the masks they end with, else ValueError and nothing is assigned;
        for a trained dense model use `keras_sparse_rnn.sparsify`."""
        set_layer_weights(self, weights)

    def enable_lora(self, rank, *args, **kwargs):
        raise ValueError(
            f"{self._description()}: LoRA is not supported on sparse weights "
            "(its low-rank update would be dense outside the mask); train the "
            "sparse layer itself, or use the dense Keras layer for LoRA"
        )

    def _sparsity_config(self):
        return {"sparsity": self.sparsity, "mask_seed": self.mask_seed,
                "block": list(self.block) if self.block else None}
