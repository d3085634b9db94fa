"""One sparse matrix: its variables, structure, check and one write path.

A sparse layer or cell (`SparseLayerMixin`) makes one `SparseMatrix` for each
weight it makes sparse (in `build`, `_add_mask`). The object holds:

- the weight and its 0/1 mask (variables of the layer), the gates the last
  axis packs, the block structure (`block_shape`: free, `(n, 1)` blocks along
  the input, or b x b blocks of constant fan-in), and how errors name its
  owner (`description`);
- `check(weight, mask)`: THE check of a weight and mask pair (the mask 0/1
  with the layer's exact active count, or constant fan-in; the weight zero
  outside it), used by the layers (`set_weights`, saving, loading), the guard
  (`layers/guard.py`) and the export (`export/checks.py`);
- `replace(mask, weight, grown, optimizer)`: the one write path. Every change
  of a mask goes through it: DST, `GradualPruning`, `set_matrix_sparsity`,
  `set_mask_by_magnitude`, `set_weights`, loading and so `sparsify`. It
  assigns the pair, resets the optimizer's slots at the grown positions and
  calls the optimizer's topology hook (`update_sparse_topology`, SNT-ASGD's).

`sparse_matrices(model)` finds every matrix of a model, in any nesting.
"""

import keras
import numpy as np

from keras_sparse_rnn import masks as masks_lib
from keras_sparse_rnn._keras import optimizer_slots
from keras_sparse_rnn._keras.layers import flatten_layers
from keras_sparse_rnn.layers import guard
from keras_sparse_rnn.optimizers.wrappers import topology_hook

# How an outside-the-mask error reads, by who checks: the layers
# (`set_weights`, saving, loading), the guard (an eager assignment) and the
# exporter.
_OUTSIDE = {
    "check": (
        "{where}: {outside} weights of '{weight_name}' outside the mask are "
        "non-zero; weights outside the mask must be 0 (multiply them by the "
        "mask, or make a trained dense model sparse with "
        "keras_sparse_rnn.sparsify, which sets the masks by magnitude)"),
    "assign": (
        "{description}: this assignment would leave {outside} weights of "
        "'{name}' non-zero outside its mask ('{name}_mask', {active} of "
        "{size} active); a sparse weight must be zero there. Multiply the "
        "values by the mask first (`layer.{name}_mask`), give the weights and "
        "their masks together (`set_weights` with the list of "
        "`get_weights()`), or turn a trained dense model into a sparse one "
        "with `keras_sparse_rnn.sparsify(model, sparsity)`, which chooses "
        "the masks by magnitude"),
    "export": (
        "Layer '{layer_name}': {outside} weights of '{weight_path}' outside "
        "its mask are non-zero; the exporter folds the masks into the "
        "weights, so they must be zero there (they are after every optimizer "
        "step; a manual assign broke it). Apply the mask: "
        "weight.assign(weight * mask)."),
}


def _numpy(value):
    if isinstance(value, keras.Variable):
        return np.asarray(value.numpy())  # np.asarray(variable) warns (NumPy 2)
    return np.asarray(keras.ops.convert_to_numpy(value))


class SparseMatrix:
    """One sparse matrix of a layer (made by the layer's `build`).

    Attributes:
        layer: the layer or cell owning it.
        name: the weight's attribute name ("kernel", "recurrent_kernel", ...).
        weight, mask: the variables; the mask is 0/1, non-trainable.
        gates: how many gate blocks the last axis packs (4 for an LSTM kernel).
        gate_names: their names, e.g. ("i", "f", "c", "o"), or None.
        kind: "matmul" (used in a matrix product each token) or "lookup"
            (an embedding table: one row read per token, no FLOPs).
        block_shape: None, or the shape (in the weight's axes) of the blocks
            that are on or off together: (4, 1) for `block=(1, 4)` on a
            kernel of shape (input_dim, units); (b, b) blocks keep a constant
            fan-in (`constant_fan_in`). Counts, pruning and growth are per
            block.
        initializer: the weight's initializer (`set_matrix_sparsity`
            re-initializes from it), or None.
    """

    def __init__(self, layer, name, weight, mask, gates=1, gate_names=None,
                 kind="matmul", block_shape=None, initializer=None,
                 describe=None):
        self.layer = layer
        self.name = name
        self.weight = weight
        self.mask = mask
        self.gates = gates
        self.gate_names = gate_names
        self.kind = kind
        self.block_shape = block_shape
        self.initializer = initializer
        self._describe = describe

    def __repr__(self):
        return (f"SparseMatrix({self.description}, '{self.name}', shape="
                f"{tuple(self.weight.shape)}, gates={self.gates}, "
                f"block_shape={self.block_shape})")

    # What the matrix is -----------------------------------------------------

    @property
    def description(self):
        """How errors name the owner: the user's layer for a wrapped cell."""
        if self._describe is not None:
            return self._describe()
        return f"{type(self.layer).__name__} '{self.layer.name}'"

    @property
    def constant_fan_in(self):
        """Whether its blocks are b x b of constant fan-in."""
        return masks_lib.is_constant_fan_in(self.block_shape)

    @property
    def sparsity(self):
        """The configured sparsity: a float, or a list of one per gate."""
        return self.layer.matrix_sparsity(self.name)

    def expected_count(self):
        """The active count the configured sparsity gives."""
        return masks_lib.expected_active_count(
            self.weight.shape, self.sparsity, self.gates, self.block_shape)

    def fan_in(self):
        """`(k, block rows)` of a constant fan-in matrix: the active blocks
        each block column has at the configured sparsity."""
        rows, _ = masks_lib.fan_in_grid_shape(self.weight.shape,
                                              self.block_shape[0], self.gates)
        return masks_lib.fan_in(self.sparsity, rows), rows

    def gate_counts(self, mask=None):
        """Active weights per gate of `mask` (default: the current mask)."""
        mask = _numpy(self.mask if mask is None else mask)
        return masks_lib.gate_counts(mask, self.gates)

    def sparsity_of(self, mask):
        """The whole-matrix sparsity that `mask`'s active count (of blocks,
        or per block column) is, as pruning records it; None where no
        sparsity gives it (the check then says what is wrong)."""
        mask = _numpy(mask)
        if self.constant_fan_in:
            counts = masks_lib.fan_in_counts(mask, self.block_shape, self.gates)
            if len(set(counts.tolist())) != 1:
                return None
            rows, _ = masks_lib.fan_in_grid_shape(mask.shape, self.block_shape[0],
                                                  self.gates)
            return masks_lib.sparsity_of_count(rows, int(counts[0]))
        grid = masks_lib.block_reduce(mask, self.block_shape)
        return masks_lib.sparsity_of_count(grid.size, int(np.count_nonzero(grid)))

    # The one check ----------------------------------------------------------

    def check(self, weight=None, mask=None, *, counts=True, context="check"):
        """Raises ValueError unless `weight` and `mask` are a valid pair.

        The one check of a sparse matrix: the mask holds only 0 and 1 with
        exactly the configured active count (for constant fan-in: whole
        blocks, the same count in every block column), and the weight is
        zero outside it.

        Args:
            weight, mask: arrays (or tensors, variables) of the weight's
                shape; None: the current value.
            counts: check the mask's values and count (False: only that the
                weight is zero outside the mask).
            context: who checks, for the error's wording: "check" (the
                layer: `set_weights`, saving, loading), "assign" (the guard
                of an eager assignment) or "export".
        """
        weight = _numpy(self.weight if weight is None else weight)
        mask = _numpy(self.mask if mask is None else mask)
        if counts:
            self._check_mask(mask)
        outside = int(np.count_nonzero(weight[mask == 0]))
        if outside:
            raise ValueError(_OUTSIDE[context].format(
                where=self._where(), outside=outside, name=self.name,
                weight_name=self.weight.name, weight_path=self.weight.path,
                description=self.description, layer_name=self.layer.name,
                active=int(mask.sum()), size=mask.size))

    def _where(self):
        return f"{self.description}, mask '{self.mask.name}'"

    def _check_mask(self, mask):
        """A mask is 0/1 with exactly the layer's active count."""
        where = self._where()
        if not np.all((mask == 0) | (mask == 1)):
            raise ValueError(f"{where}: a mask must hold only 0 and 1")
        if self.constant_fan_in:
            # Exact in blocks: the count of weights follows from it (and,
            # with padded blocks, from which blocks are active).
            self._check_fan_in(mask, where)
            return
        expected = self.expected_count()
        count = int(mask.sum())
        if count != expected:
            raise ValueError(
                f"{where}: the mask has {count} active weights, but the "
                f"layer's sparsity {self.sparsity} requires exactly "
                f"{expected} for a weight of shape {tuple(self.weight.shape)}"
            )

    def _check_fan_in(self, mask, where):
        """Constant fan-in: whole blocks, the same count in every block
        column, the count the sparsity gives."""
        b = self.block_shape[0]
        sums, sizes = masks_lib.fan_in_block_sums(mask, b, self.gates)
        if not np.all((sums == 0) | (sums == sizes)):
            raise ValueError(f"{where}: blocks of {tuple(self.block_shape)} must "
                             "be wholly active or wholly inactive")
        counts = masks_lib.fan_in_counts(mask, self.block_shape, self.gates)
        sparsity = self.sparsity
        expected = masks_lib.fan_in(sparsity, sums.shape[0])
        wrong = np.flatnonzero(counts != expected)
        if wrong.size:
            raise ValueError(
                f"{where}: every block column must have exactly {expected} "
                f"active blocks (constant fan-in at sparsity {sparsity}), but "
                f"block column {int(wrong[0])} has {int(counts[wrong[0]])}")

    # The one write path -----------------------------------------------------

    def replace(self, mask, weight, grown=None, optimizer=None):
        """Assigns a new mask and weight together: the one write path.

        The caller gives a consistent pair (the weight zero outside the
        mask): library code computes one, values from outside are checked
        first (`check`). Nothing is checked here, so that a topology update
        costs no copy to NumPy.

        Args:
            mask: the new 0/1 mask (array or tensor of the weight's shape).
            weight: the new weight.
            grown: 0/1 of the weight's shape, the positions this change
                activated (a topology update's, pruned and grown again
                included); None: none.
            optimizer: the model's optimizer, when the change happens during
                training: its slots at `grown` (momentum, Adam moments, ...)
                are reset to 0 and its topology hook
                (`update_sparse_topology(weight, mask, grown)`, SNT-ASGD's,
                found through wrappers by `optimizers.wrappers.topology_hook`)
                is called. None: no optimizer is told (before training,
                loading, pruning).
        """
        with guard.unchecked():  # a new pair, consistent together
            self.mask.assign(mask)
            self.weight.assign(weight)
        if optimizer is None:
            return
        if grown is None:
            grown = keras.ops.zeros(self.weight.shape, self.weight.dtype)
        else:
            optimizer_slots.reset_slots(optimizer, self.weight, grown)
        hook = topology_hook(optimizer)
        if hook is not None:
            hook(self.weight, mask, grown)


class SparseMatrixOwner:
    """Base of the layers and cells that own `SparseMatrix` objects
    (`SparseLayerMixin`): what `sparse_layers` finds."""

    def get_sparse_weight_info(self):
        """The layer's `SparseMatrix` objects, in the order `build` made
        them (empty before `build`)."""
        raise NotImplementedError


def sparse_layers(model):
    """The sparse layers and cells of `model` (itself included), nested or
    not: in RNN layers, `StackedRNNCells`, `Bidirectional`,
    `TimeDistributed` and nested models."""
    if not isinstance(model, keras.layers.Layer):
        raise ValueError(
            "model must be a keras.Model or keras.layers.Layer, got "
            f"{type(model).__name__}"
        )
    return [layer for layer in flatten_layers(model, include_self=True)
            if isinstance(layer, SparseMatrixOwner)]


def sparse_matrices(model):
    """Every `SparseMatrix` of `model` (a model or layer), in any nesting.

    Raises:
        ValueError: if the model has no built sparse layer.
    """
    layers = sparse_layers(model)
    matrices = [m for layer in layers for m in layer.get_sparse_weight_info()]
    if not matrices:
        if layers:
            raise ValueError(
                f"model '{model.name}' has sparse layers "
                f"({[l.name for l in layers]}) that are not built yet: call "
                "the model on data or build it first"
            )
        raise ValueError(
            f"model '{model.name}' has no sparse layer: use SparseLSTMCell, "
            "SparseLSTM, SparseRHN, SparseGRU, SparseDense or SparseEmbedding"
        )
    return matrices
