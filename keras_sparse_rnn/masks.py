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


def expected_active_count(shape, sparsity, gates=1):
    """Active count of a mask: one sparsity for the matrix or one per gate."""
    size = int(np.prod(shape))
    if isinstance(sparsity, (list, tuple)):
        gate_size = size // gates
        return sum(active_count(gate_size, s) for s in sparsity)
    return active_count(size, sparsity)


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


def random_mask(shape, sparsity, seed, gates=1):
    """A float32 0/1 mask of `shape` with an exact number of ones.

    Args:
        shape: the weight's shape.
        sparsity: a float in [0, 1) for the whole matrix, or a list of
            `gates` floats, one per gate block of a packed kernel (the last
            axis split into `gates` equal blocks): each block then has exactly
            `round((1 - s_g) * block_size)` ones.
        seed: int; the same seed gives the same mask.
        gates: number of gate blocks along the last axis.
    """
    shape = tuple(int(d) for d in shape)
    rng = np.random.default_rng(seed)
    if not isinstance(sparsity, (list, tuple)):
        size = int(np.prod(shape))
        return _draw(size, active_count(size, sparsity), rng).reshape(shape)
    if len(sparsity) != gates:
        raise ValueError(
            f"Expected one sparsity per gate ({gates}), got {len(sparsity)}: "
            f"{list(sparsity)}"
        )
    mask = np.zeros(shape, dtype=np.float32)
    for s, cols in zip(sparsity, gate_slices(shape, gates)):
        block_shape = mask[..., cols].shape
        size = int(np.prod(block_shape))
        mask[..., cols] = _draw(size, active_count(size, s), rng).reshape(
            block_shape
        )
    return mask


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
