"""Binary masks with an exact active count, drawn reproducibly.

Everything here is NumPy and runs once per mask draw (at build time, or when
`distribute_sparsity` re-draws); nothing runs per training step except
`MaskConstraint`, which the optimizer applies after each update.
"""

import zlib

import keras
import numpy as np


def active_count(size, sparsity):
    """Number of ones of a mask of `size` entries at `sparsity`."""
    return int(round((1.0 - sparsity) * size))


def sparsity_of_count(size, count):
    """The sparsity whose `active_count` over `size` entries is `count`, or
    None where none is (count 0, or lost to rounding)."""
    sparsity = 1.0 - count / size
    if count < 1 or active_count(size, sparsity) != count:
        return None
    return sparsity


def gate_slices(shape, gates):
    """Column slices of the `gates` equal gate blocks of a packed kernel."""
    columns = shape[-1]
    if columns % gates:
        raise ValueError(
            f"A weight of shape {tuple(shape)} cannot be split into {gates} "
            f"gates along its last axis ({columns} is not a multiple of {gates})"
        )
    width = columns // gates
    return [slice(g * width, (g + 1) * width) for g in range(gates)]


def gate_counts(mask, gates):
    """Active count of each of the `gates` column blocks of a 0/1 mask (a
    NumPy array or a tensor), as an int64 NumPy array."""
    mask = np.asarray(mask)
    per_gate = mask.reshape(-1, gates, mask.shape[-1] // gates)
    return np.count_nonzero(per_gate, axis=(0, 2)).astype(np.int64)


def block_grid(shape, block_shape):
    """Shape of the grid of blocks: `shape` divided by `block_shape`.

    `block_shape` is in the weight's own axes: (4, 1) for TFLite's 1x4 blocks
    of a Keras kernel of shape (input_dim, units). `None` means (1, 1).
    """
    shape = tuple(int(d) for d in shape)
    if block_shape is None:
        return shape
    if len(block_shape) != len(shape) or any(
            d % b for d, b in zip(shape, block_shape)):
        raise ValueError(
            f"A weight of shape {shape} cannot be cut into blocks of "
            f"{tuple(block_shape)}: each dimension must be a multiple of the "
            "block's"
        )
    return tuple(d // b for d, b in zip(shape, block_shape))


def expand_blocks(grid_values, block_shape):
    """Repeats each entry of a block grid over its block."""
    if block_shape is None:
        return grid_values
    out = grid_values
    for axis, b in enumerate(block_shape):
        out = np.repeat(out, b, axis=axis)
    return out


def block_reduce(values, block_shape):
    """Sums `values` (a NumPy array) over each block: the grid's view."""
    if block_shape is None:
        return values
    grid = block_grid(values.shape, block_shape)
    split = []
    for g, b in zip(grid, block_shape):
        split += [g, b]
    return values.reshape(split).sum(axis=tuple(range(1, 2 * len(grid), 2)))


def is_constant_fan_in(block_shape):
    """Whether blocks of `block_shape` (in the weight's axes) have constant
    fan-in: square b x b blocks, b > 1, with the same number of active
    input blocks in every block column (b outputs) of the matrix."""
    return (block_shape is not None and len(block_shape) == 2
            and block_shape[0] == block_shape[1] and block_shape[0] > 1)


def fan_in(sparsity, grid_rows):
    """Active blocks of each block column of a constant fan-in matrix whose
    grid has `grid_rows` block rows: `round((1 - sparsity) * grid_rows)`."""
    if isinstance(sparsity, (list, tuple)):
        check_fan_in_sparsity(sparsity)
        sparsity = sparsity[0]  # one value for all gates
    return active_count(grid_rows, sparsity)


def check_fan_in_sparsity(sparsity, where="weight"):
    """Constant fan-in gives every block column the same number of active
    blocks: a per-gate list must hold one value."""
    if isinstance(sparsity, (list, tuple)) and len(set(sparsity)) > 1:
        raise ValueError(
            f"{where}: blocks of constant fan-in give every block column the "
            f"same number of active blocks, so the gates cannot have "
            f"different sparsities; got {list(sparsity)}. Give one sparsity "
            "(a float, or the same value for every gate)")


def fan_in_grid_shape(shape, block, gates=1):
    """`(block rows, block columns)` of a constant fan-in matrix of `shape`
    (its rows are inputs, its `gates` equal column groups outputs) in b x b
    blocks. A size b does not divide is padded inside the layer: its last
    block row and the last block column of each gate are partial."""
    rows, cols = int(np.prod(shape[:-1])), int(shape[-1])
    width = cols // gates
    return -(-rows // block), gates * -(-width // block)


def pad_blocks(x, block, gates=1):
    """`x` `[R, C]` zero-padded to whole blocks: rows to a multiple of
    `block`, each gate's columns too (so no block straddles two gates)."""
    x = np.asarray(x)
    rows, cols = x.shape
    width = cols // gates
    pad_r, pad_c = -rows % block, -width % block
    if not pad_r and not pad_c:
        return x
    x = np.pad(x.reshape(rows, gates, width), [(0, pad_r), (0, 0), (0, pad_c)])
    return x.reshape(rows + pad_r, gates * (width + pad_c))


def unpad_blocks(x, shape, gates=1):
    """The inverse of `pad_blocks`: the `shape` part of a padded `x`."""
    rows, cols = int(shape[0]), int(shape[-1])
    if tuple(x.shape) == (rows, cols):
        return x
    width = cols // gates
    return x.reshape(x.shape[0], gates, -1)[:rows, :, :width].reshape(rows, cols)


def fan_in_grid(mask, block, gates=1):
    """The 0/1 grid `[block rows, block columns]` of a constant fan-in mask
    (a block's state is its first element's)."""
    return pad_blocks(np.asarray(mask), block, gates)[::block, ::block]


def fan_in_block_sums(values, block, gates=1):
    """`values` summed over each (padded) block, and the number of real
    (not padding) entries of each block: two `[Rg, Cg]` arrays."""
    ones = np.ones(np.shape(values), np.float64)
    return (block_reduce(pad_blocks(np.asarray(values, np.float64), block, gates),
                         (block, block)),
            block_reduce(pad_blocks(ones, block, gates), (block, block)))


def fan_in_counts(mask, block_shape, gates=1):
    """Active blocks of each block column of a 0/1 mask (int64 array)."""
    grid = fan_in_grid(mask, block_shape[0], gates)
    return np.count_nonzero(grid, axis=0).astype(np.int64)


def expand_fan_in_grid(grid, shape, block, gates=1):
    """A constant fan-in grid expanded to a mask of `shape`."""
    return unpad_blocks(expand_blocks(grid, (block, block)), shape, gates)


def expected_active_count(shape, sparsity, gates=1, block_shape=None):
    """Active count of a mask: one sparsity for the matrix or one per gate.

    With blocks, the count of active blocks is exact, times the block size;
    with constant fan-in blocks, `fan_in` blocks in each block column (when
    blocks are padded, the count of weights depends on which are active:
    ValueError).
    """
    if is_constant_fan_in(block_shape):
        b = block_shape[0]
        rows, cols = fan_in_grid_shape(shape, b, gates)
        if rows * b != int(np.prod(shape[:-1])) or cols * b != int(shape[-1]):
            raise ValueError(
                f"A weight of shape {tuple(shape)} in padded blocks of "
                f"{tuple(block_shape)} has no fixed count of weights, only of "
                "blocks: fan_in(sparsity, block rows) in every block column")
        return b * b * cols * fan_in(sparsity, rows)
    grid = block_grid(shape, block_shape)
    block_size = int(np.prod(block_shape)) if block_shape else 1
    size = int(np.prod(grid))
    if isinstance(sparsity, (list, tuple)):
        gate_size = size // gates
        return block_size * sum(active_count(gate_size, s) for s in sparsity)
    return block_size * active_count(size, sparsity)


def stable_seed(*parts):
    """A 31-bit seed from ints and strings, the same in every process.

    Python's `hash` of a string changes per process; crc32 does not.
    """
    text = "/".join(str(p) for p in parts)
    return zlib.crc32(text.encode("utf-8")) & 0x7FFFFFFF


def _draw(size, count, rng):
    flat = np.zeros(size, dtype=np.float32)
    flat[rng.choice(size, size=count, replace=False)] = 1.0
    return flat


def check_not_empty(shape, sparsity, gates=1, block_shape=None, where="weight"):
    """Raises ValueError if `sparsity` leaves the matrix (or one of its gates)
    of `shape` with no active weight: it would train as a constant."""
    if is_constant_fan_in(block_shape):
        grid = fan_in_grid_shape(shape, block_shape[0], gates)
        check_fan_in_sparsity(sparsity, where)
        s = sparsity[0] if isinstance(sparsity, (list, tuple)) else sparsity
        if fan_in(s, grid[0]) == 0:
            raise ValueError(
                f"{where}: sparsity {s} leaves 0 of the {grid[0]} input blocks "
                f"of each block column active (shape "
                f"{tuple(int(d) for d in shape)}, blocks {tuple(block_shape)}); "
                f"it must keep at least one: use a sparsity below "
                f"{1 - 0.5 / grid[0]:.6g}")
        return
    grid = block_grid(shape, block_shape)
    size = int(np.prod(grid))
    parts = ([(sparsity, size, "")] if not isinstance(sparsity, (list, tuple))
             else [(s, size // gates, f" gate {g}") for g, s in enumerate(sparsity)])
    for s, n, gate in parts:
        if active_count(n, s) == 0:
            unit = "blocks" if block_shape else "weights"
            raise ValueError(
                f"{where}{gate}: sparsity {s} leaves 0 of its {n} {unit} active "
                f"(shape {tuple(int(d) for d in shape)}); it must keep at least "
                f"one: use a sparsity below {1 - 0.5 / n:.6g}"
            )


def top_k_mask(scores, k):
    """The package's one top-k of NumPy scores: a float32 0/1 array of
    `scores`' shape with ones at its `k` largest entries, exactly `k` (all,
    when `k` is larger than the array), ties taken in the order of their
    position (a stable sort), so the result is the same on every run.

    `magnitude_mask` and `GradualPruning` choose with it (the in-graph DST
    update, `dst.updater`, has its own, seeded tie-breaking).
    """
    k = int(k)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    scores = np.asarray(scores)
    flat = scores.reshape(-1)
    order = np.argsort(-flat, kind="stable")
    out = np.zeros(flat.size, np.float32)
    out[order[:k]] = 1.0
    return out.reshape(scores.shape)


def magnitude_mask(values, sparsity, gates=1, block_shape=None):
    """The 0/1 mask keeping the largest |values| with an exact count.

    The count is `random_mask`'s (`expected_active_count`): one sparsity for
    the matrix, or one per gate block; with blocks, the blocks of largest
    mean |value| are kept whole.
    """
    values = np.asarray(values)
    if is_constant_fan_in(block_shape):
        b = block_shape[0]  # a block's score: its mean |value| (padding aside)
        sums, sizes = fan_in_block_sums(np.abs(values), b, gates)
        scores = sums / sizes
        k = fan_in(sparsity, scores.shape[0])
        grid_mask = np.stack([top_k_mask(column, k) for column in scores.T], axis=1)
        return expand_fan_in_grid(grid_mask, values.shape, b, gates)
    scores = block_reduce(np.abs(values).astype(np.float64), block_shape)
    if not isinstance(sparsity, (list, tuple)):
        grid_mask = top_k_mask(scores, active_count(scores.size, sparsity))
    else:
        if len(sparsity) != gates:
            raise ValueError(f"Expected one sparsity per gate ({gates}), got "
                             f"{len(sparsity)}: {list(sparsity)}")
        grid_mask = np.zeros(scores.shape, np.float32)
        for s, cols in zip(sparsity, gate_slices(scores.shape, gates)):
            part = scores[..., cols]
            grid_mask[..., cols] = top_k_mask(part, active_count(part.size, s))
    return expand_blocks(grid_mask, block_shape)


def random_mask(shape, sparsity, seed, gates=1, block_shape=None):
    """A float32 0/1 mask of `shape` with an exact number of ones.

    Args:
        shape: the weight's shape.
        sparsity: a float in [0, 1) for the whole matrix, or a list of
            `gates` floats, one per gate block of a packed kernel (the last
            axis split into `gates` equal blocks): each block then has exactly
            `round((1 - s_g) * block_size)` ones.
        seed: int; the same seed gives the same mask.
        gates: number of gate blocks along the last axis.
        block_shape: if given, whole blocks of this shape (in the weight's
            axes) are on or off, and the counts above are counts of blocks.
            Square blocks (b, b), b > 1, have constant fan-in: every block
            column gets exactly `fan_in(sparsity, grid_rows)` active blocks
            (sizes b does not divide are padded: see `fan_in_grid_shape`).
    """
    rng = np.random.default_rng(seed)
    if is_constant_fan_in(block_shape):
        b = block_shape[0]
        grid = fan_in_grid_shape(shape, b, gates)
        k = fan_in(sparsity, grid[0])
        mask = np.stack([_draw(grid[0], k, rng) for _ in range(grid[1])], axis=1)
        return expand_fan_in_grid(mask, shape, b, gates).astype(np.float32)
    grid = block_grid(shape, block_shape)
    if not isinstance(sparsity, (list, tuple)):
        size = int(np.prod(grid))
        mask = _draw(size, active_count(size, sparsity), rng).reshape(grid)
        return expand_blocks(mask, block_shape)
    if len(sparsity) != gates:
        raise ValueError(
            f"Expected one sparsity per gate ({gates}), got {len(sparsity)}: "
            f"{list(sparsity)}"
        )
    mask = np.zeros(grid, dtype=np.float32)
    for s, cols in zip(sparsity, gate_slices(grid, gates)):
        sub_shape = mask[..., cols].shape
        size = int(np.prod(sub_shape))
        mask[..., cols] = _draw(size, active_count(size, s), rng).reshape(
            sub_shape
        )
    return expand_blocks(mask, block_shape)


class MaskConstraint(keras.constraints.Constraint):
    """Zeroes the weights outside a mask after each optimizer update.

    Keras optimizers apply a variable's constraint right after its update,
    inside the (XLA-)compiled train step. Masking by assignment there keeps
    inactive weights exactly zero whatever the optimizer's state, at no cost
    per time step of an RNN. A user's own constraint runs first.
    """

    def __init__(self, mask, inner=None):
        self.mask = mask
        self.inner = inner

    def __call__(self, w):
        if self.inner is not None:
            w = self.inner(w)
        return w * keras.ops.cast(self.mask, w.dtype)

    def get_config(self):
        # Attached to variables only; layers serialize the user's constraint.
        return {}
