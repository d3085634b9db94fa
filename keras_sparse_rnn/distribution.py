"""How a model's sparsity budget is spread over its sparse matrices."""

import math

import numpy as np

from keras_sparse_rnn.masks import (active_count, block_grid, fan_in_grid_shape,
                                    is_constant_fan_in)
from keras_sparse_rnn.layers.sparse_matrix import sparse_matrices
from keras_sparse_rnn.validation import check_bool, check_fraction

DISTRIBUTIONS = ("erdos_renyi", "uniform")


def uniform_densities(shapes, sparsity):
    """Every matrix at density `1 - sparsity`."""
    return [1.0 - sparsity for _ in shapes]


def erdos_renyi_densities(shapes, sparsity):
    """Erdos-Renyi densities (Mocanu et al. 2018), as RigL computes them.

    The density of a matrix of shape (n_in, n_out) is proportional to
    (n_in + n_out) / (n_in * n_out); one factor is chosen so the expected
    number of active weights equals uniform's. A matrix whose density would
    exceed 1 is made dense and the factor is solved again for the rest.
    """
    sizes = [int(np.prod(s)) for s in shapes]
    raw = [sum(s) / np.prod(s) for s in shapes]
    dense = set()
    while True:
        rhs = 0.0
        divisor = 0.0
        for i, size in enumerate(sizes):
            if i in dense:
                rhs -= size * sparsity
            else:
                rhs += size * (1.0 - sparsity)
                divisor += raw[i] * size
        eps = rhs / divisor
        free = [i for i in range(len(sizes)) if i not in dense]
        max_raw = max(raw[i] for i in free)
        if max_raw * eps <= 1.0:
            break
        dense.update(i for i in free if raw[i] == max_raw)
    return [1.0 if i in dense else eps * raw[i] for i in range(len(sizes))]


_DENSITY_FUNCTIONS = {
    "erdos_renyi": erdos_renyi_densities,
    "uniform": uniform_densities,
}


def exact_counts(sizes, densities, total_active):
    """Integer active counts near `density * size` that sum to `total_active`.

    Largest-remainder rounding: floors first, then one more weight to the
    matrices with the largest fractional parts that still have room.
    """
    ideal = [d * s for d, s in zip(densities, sizes)]
    counts = [min(int(math.floor(x)), s) for x, s in zip(ideal, sizes)]
    order = sorted(range(len(sizes)), key=lambda i: (-(ideal[i] - counts[i]), i))
    remainder = total_active - sum(counts)
    for i in order:
        if remainder <= 0:
            break
        if counts[i] < sizes[i]:
            counts[i] += 1
            remainder -= 1
    if remainder:
        raise ValueError(
            f"Cannot place {total_active} active weights in matrices of sizes "
            f"{sizes}"
        )
    return counts


def _counts(sizes, block_sizes, densities, sparsity):
    """Active counts (in blocks, or weights) near `density * size`.

    With one block size for all (1 when there are no blocks) the total is
    exact: `round((1 - sparsity) * total)`, in that unit. With matrices of
    different block sizes (block-sparse kernels beside an unblocked
    embedding), each block-sparse matrix gets its nearest whole number of
    blocks and the unblocked ones share what remains of the exact total in
    weights.
    """
    if len(set(block_sizes)) == 1:
        return exact_counts(sizes, densities, active_count(sum(sizes), sparsity))
    counts = [None] * len(sizes)
    weights = [n * b for n, b in zip(sizes, block_sizes)]
    left = active_count(sum(weights), sparsity)
    free = []
    for i, (n, b, d) in enumerate(zip(sizes, block_sizes, densities)):
        if b == 1:
            free.append(i)
        else:
            counts[i] = min(n, max(1, int(round(d * n))))
            left -= counts[i] * b
    if not free:  # every matrix blocked: each its nearest whole count
        return counts
    # The unblocked ones share the rest in proportion to their densities; one
    # that would exceed density 1 is made dense and the rest re-scaled (as
    # erdos_renyi_densities does), so a small output layer cannot strand
    # weights that no other matrix takes.
    full = set()
    while True:
        rest = [i for i in free if i not in full]
        ideal = sum(densities[i] * sizes[i] for i in rest)
        scale = (left - sum(sizes[i] for i in full)) / ideal if ideal else 0.0
        over = {i for i in rest if densities[i] * scale > 1.0}
        if not over:
            break
        full |= over
    free_counts = exact_counts(
        [sizes[i] for i in free],
        [1.0 if i in full else densities[i] * scale for i in free], left)
    for i, c in zip(free, free_counts):
        counts[i] = c
    return counts


def distribute_sparsity(model, sparsity, method="erdos_renyi", per_gate=False):
    """Re-draws the masks of a built model under one global sparsity.

    Its sparse matrices together then hold exactly
    `round((1 - sparsity) * total)` active weights, spread as `method` says
    (when every matrix is block-sparse with one block shape, `total` and the
    counts are in blocks; block-sparse matrices beside unblocked ones get
    whole blocks and the unblocked ones the rest of the exact total; a matrix
    of constant fan-in blocks gets the nearest whole number of active blocks
    per block column, the same in every column. The total is then exact up to
    that rounding, and, with blocks padded where b does not divide, up to the
    partial blocks, whose weights count less than whole ones; with no
    unblocked matrix to take the rest, each matrix keeps its nearest count).
    The sparse weights are re-initialized from their initializers and masked:
    call it after building the model and before training.

    Args:
        model: a built `keras.Model` (or layer) with sparse layers.
        sparsity: global fraction of zeros over all sparse matrices, in [0, 1).
        method: `"erdos_renyi"` (density proportional to
            (n_in + n_out) / (n_in * n_out), dense where that exceeds 1) or
            `"uniform"` (every matrix at `sparsity`).
        per_gate: if True, the gate blocks of a packed kernel (an LSTM's four
            (n_in, units) blocks of its (n_in, 4 * units) kernel) are matrices
            of their own, each with its exact count; if False a packed kernel
            is one matrix. A kernel of constant fan-in blocks has one count
            per block column, so its gates always share one sparsity.

    Returns:
        A dict mapping each sparse weight's path to its new sparsity: a float,
        or a list of floats per gate when `per_gate` is True.

    Example:

    >>> model = keras.Sequential([keras.Input((None, 8)), SparseLSTM(16)])
    >>> sparsities = distribute_sparsity(model, 0.9, "erdos_renyi")
    """
    result = sparsity_per_matrix(model, sparsity, method, per_gate)
    for matrix in sparse_matrices(model):
        matrix.layer.set_matrix_sparsity(matrix.name, result[matrix.weight.path])
    return result


def sparsity_per_matrix(model, sparsity, method="erdos_renyi", per_gate=False):
    """The per-matrix sparsities `distribute_sparsity` would set, without
    setting them: `{weight path: sparsity (float, or list per gate)}`.
    `keras_sparse_rnn.sparsify` applies them by magnitude instead.

    (Named `plan_sparsity` before: `keras_sparse_rnn.plan_sparsity` is a
    deprecated alias of it, kept for one release.)"""
    sparsity = check_fraction(sparsity, "sparsity")
    if method not in DISTRIBUTIONS:
        raise ValueError(
            f"method must be one of {DISTRIBUTIONS}, got {method!r}"
        )
    check_bool(per_gate, "per_gate")
    found = sparse_matrices(model)

    # Densities come from the matrices' own shapes; a block-sparse matrix's
    # count is a whole number of blocks, counted on its grid of blocks.
    units = []  # (matrix, gate index or None, weight shape, grid shape)
    for matrix in found:
        shape = tuple(matrix.weight.shape)
        if is_constant_fan_in(matrix.block_shape):
            # Counted per block column: its count of active input blocks,
            # the same in every column and so in every gate (one unit per
            # matrix, each weighing a row of blocks).
            rows, _ = fan_in_grid_shape(shape, matrix.block_shape[0], matrix.gates)
            units.append((matrix, None, shape, (rows, 1)))
            continue
        grid = block_grid(matrix.weight.shape, matrix.block_shape)
        if per_gate and matrix.gates > 1:
            split = lambda s: s[:-1] + (s[-1] // matrix.gates,)  # noqa: E731
            units += [(matrix, g, split(shape), split(grid))
                      for g in range(matrix.gates)]
        else:
            units.append((matrix, None, shape, grid))
    densities = _DENSITY_FUNCTIONS[method]([u[2] for u in units], sparsity)
    sizes = [int(np.prod(u[3])) for u in units]  # in blocks, or weights
    block_sizes = [int(np.prod(u[2])) // n for u, n in zip(units, sizes)]
    counts = _counts(sizes, block_sizes, densities, sparsity)

    result = {}
    for (matrix, gate, _, _), size, count in zip(units, sizes, counts):
        if count == 0:
            raise ValueError(
                f"sparsity {sparsity} leaves no active weight in "
                f"'{matrix.weight.path}'; use a lower sparsity"
            )
        value = 1.0 - count / size
        key = matrix.weight.path
        if gate is None and per_gate and matrix.gates > 1:  # constant fan-in
            result[key] = [value] * matrix.gates
        elif gate is None:
            result[key] = value
        else:
            result.setdefault(key, []).append(value)
    return result


def sparsity_for_active_params(model, active_params):
    """The global sparsity at which `model` trains `active_params` parameters.

    For comparisons at equal parameters (a wide sparse model against a
    narrow dense one): the parameters are counted as `sparsity_summary`'s
    `total_params` counts them, the active weights of the sparse matrices
    plus every other trainable weight and bias whole. Pass the result to
    `distribute_sparsity`, which then keeps exactly
    `round((1 - sparsity) * total)` active sparse weights (up to the block
    rounding it describes), so the model's count lands on `active_params`.

    Args:
        model: a built `keras.Model` (or layer) with sparse layers.
        active_params: the parameter count wanted, an int above the model's
            parameters outside its sparse matrices and at most its dense count.

    Returns:
        A float in [0, 1).

    Example:

    >>> sparsity = sparsity_for_active_params(wide_model, 4_651_600)
    >>> distribute_sparsity(wide_model, sparsity, "erdos_renyi")
    """
    if isinstance(active_params, bool) or not isinstance(active_params, (int, np.integer)):
        raise ValueError(f"active_params must be an int, got {active_params!r}")
    matrices = sparse_matrices(model)  # raises if the model has none
    sparse_ids = {id(m.weight) for m in matrices}
    sparse_total = sum(int(np.prod(m.weight.shape)) for m in matrices)
    fixed = sum(int(np.prod(v.shape)) for v in model.trainable_weights
                if id(v) not in sparse_ids)
    if not fixed < active_params <= fixed + sparse_total:
        raise ValueError(
            f"active_params must be in ({fixed:,}, {fixed + sparse_total:,}] for this "
            f"model ({fixed:,} parameters outside its sparse matrices, "
            f"{sparse_total:,} in them), got {int(active_params):,}")
    return 1.0 - (int(active_params) - fixed) / sparse_total

