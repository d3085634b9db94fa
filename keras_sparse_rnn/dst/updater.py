"""One topology update of one matrix: prune, then grow as many, in-graph.

`prune_and_grow` is a pure function compiled with XLA
(`tf.function(jit_compile=True)`): it reads the weight, its mask and (for
RigL / SNFS) a gradient-like tensor, and returns the new mask, the grown
positions, the new weight and counts. The callback assigns them. Shapes are
static, so one compilation serves every update of matrices of one shape and
configuration; the drop fraction and the seed are tensors.

How positions are chosen, exactly and reproducibly:

* Every choice is "the k best of a set", with k a tensor (it depends on the
  drop fraction and the current counts). Each position gets a unique int64
  key `tier << 61 | score << 29 | tiebreak`: `tier` puts whole classes of
  positions first (eligible before not eligible), `score` is the float32
  importance mapped to an order-preserving 32-bit integer, and `tiebreak` a
  seeded pseudo-random bijection of the position index (29 bits), so ties
  are broken at random, yet reproducibly, and keys never collide. The k
  largest keys of a row are found by a bitwise binary search of the k-th key
  (34 passes of compare-and-count over the row for the tier and score, 29
  more only when scores tie at the boundary) instead of a sort: exact for
  any k, static shapes, and several times faster than a full-size
  `tf.math.top_k` on CPU for matrices of millions of entries (measured
  here: 0.7 s for the 63-pass search against 3.5 s for `top_k` on 6.5M
  int64 keys).
* Prune: in each pool of the prune criterion (see `scores`) and each group,
  the `round(drop_fraction * count)` eligible active positions of lowest
  importance (round half up).
* Grow: in each group, as many positions as were pruned there, the best by
  the grow criterion among the positions inactive before the update; the
  positions pruned in this same update come after all of those (they are
  taken only when too few inactive positions remain, e.g. a matrix close to
  dense), and one pruned and grown again is treated as grown: its weight
  restarts at zero and its optimizer slots are reset, as RigL treats it.
* Groups: with `redistribution="none"` each gate block (the `gates` equal
  column blocks of a packed kernel) is its own group and keeps its own
  count; with `"gates"` the whole matrix is one group (Selfish-RNN's cell
  weight redistribution): the total is fixed, the gates' shares drift.
* Blocks: a block-sparse weight is updated on its grid of blocks; a block's
  score is the sum of the element scores over it, and the chosen blocks are
  expanded back to whole blocks of the mask. Square blocks of constant
  fan-in make every block column a group of its own: each prunes and grows
  as many blocks, so every column keeps its count (`"gates"` is refused).
"""

import numpy as np
import tensorflow as tf

from keras_sparse_rnn import masks
from keras_sparse_rnn.dst import registry
from keras_sparse_rnn.layers import block_path

_TIER_SHIFT = 61
_SCORE_SHIFT = 29
_TIE_BITS = 29
#: Largest number of positions of one group (the tie-break's range).
MAX_GROUP_SIZE = 2 ** _TIE_BITS


def _as_2d_shape(shape):
    shape = [int(d) for d in shape]
    if len(shape) < 2:
        raise ValueError(f"A sparse weight must have rank >= 2, got shape "
                         f"{tuple(shape)}")
    return int(np.prod(shape[:-1])), shape[-1]


def _block(block_shape, rank):
    if block_shape is None:
        return (1, 1)
    block_shape = tuple(int(b) for b in block_shape)
    if rank != 2 or len(block_shape) != 2:
        raise ValueError(f"Blocks are supported on 2-D weights only, got "
                         f"block_shape {block_shape} for rank {rank}")
    return block_shape


def _layout(shape, gates, block_shape, redistribution):
    """`(grid_shape, groups, n)`: the block grid of a weight viewed as 2-D,
    the number of groups keeping their own count, positions per group."""
    rows, cols = _as_2d_shape(shape)
    _block(block_shape, len(shape))
    if masks.is_constant_fan_in(block_shape):  # padded where b does not divide
        grid_shape = masks.fan_in_grid_shape((rows, cols), block_shape[0], gates)
    else:
        grid_shape = masks.block_grid((rows, cols), block_shape)
    if grid_shape[1] % gates:
        raise ValueError(f"{grid_shape[1]} block columns cannot be split into "
                         f"{gates} gates")
    if masks.is_constant_fan_in(block_shape):
        if redistribution != "none":
            raise ValueError(
                f"redistribution={redistribution!r} moves active weights between "
                "the columns of a matrix, but blocks of constant fan-in "
                f"{tuple(block_shape)} keep the same count in every block "
                "column; use redistribution='none' for such weights")
        groups = grid_shape[1]  # every block column keeps its count
    else:
        groups = gates if redistribution == "none" else 1
    return grid_shape, groups, grid_shape[0] * grid_shape[1] // groups


def check_shape(shape, gates=1, block_shape=None, redistribution="none",
                where="Sparse weight"):
    """Raises a `ValueError` if a weight of `shape` cannot be updated: rank
    below 2, blocks on a weight that is not 2-D, gates that do not divide
    the block columns, or more than `MAX_GROUP_SIZE` positions a group."""
    _, _, n = _layout(shape, gates, block_shape, redistribution)
    if n > MAX_GROUP_SIZE:
        raise ValueError(
            f"{where} of shape {tuple(int(d) for d in shape)} is too large "
            f"for the update (more than {MAX_GROUP_SIZE} positions a group)")


def block_reduce(x, block):
    """Sums a `[R, C]` tensor over blocks of `block`: `[R/b0, C/b1]` (the
    in-graph twin of `masks.block_reduce`)."""
    b0, b1 = block
    if (b0, b1) == (1, 1):
        return x
    r, c = x.shape
    return tf.reduce_sum(tf.reshape(x, [r // b0, b0, c // b1, b1]), axis=[1, 3])


def expand_blocks(grid, block):
    """Repeats each entry of a `[Rg, Cg]` grid over its block (the in-graph
    twin of `masks.expand_blocks`)."""
    b0, b1 = block
    if (b0, b1) == (1, 1):
        return grid
    rg, cg = grid.shape
    out = tf.broadcast_to(grid[:, None, :, None], [rg, b0, cg, b1])
    return tf.reshape(out, [rg * b0, cg * b1])


def to_groups(grid, groups):
    """`[Rg, Cg]` to `[groups, n]`: row g holds column block g."""
    if groups == 1:
        return tf.reshape(grid, [1, -1])
    rg, cg = grid.shape
    x = tf.reshape(grid, [rg, groups, cg // groups])
    return tf.reshape(tf.transpose(x, [1, 0, 2]), [groups, -1])


def from_groups(x, grid_shape, groups):
    """Inverse of `to_groups`."""
    rg, cg = grid_shape
    if groups == 1:
        return tf.reshape(x, [rg, cg])
    x = tf.reshape(x, [groups, rg, cg // groups])
    return tf.reshape(tf.transpose(x, [1, 0, 2]), [rg, cg])


def ordered_bits(score):
    """Maps float32 to int64 in [0, 2**32), preserving the order."""
    bits = tf.cast(tf.bitcast(tf.cast(score, tf.float32), tf.int32), tf.int64)
    return tf.where(bits >= 0, bits + 2 ** 31,
                    2 ** 31 - 1 - tf.bitwise.bitwise_and(bits, 0x7FFFFFFF))


def tiebreak_order(n, seed):
    """A seeded pseudo-random bijection of `range(n)` into [0, 2**29).

    Built from a multiply-add and xor-shifts modulo 2**29, each a
    bijection, so distinct positions always get distinct values.
    """
    if n > MAX_GROUP_SIZE:
        raise ValueError(f"A group of {n} positions is larger than the "
                         f"{MAX_GROUP_SIZE} the update supports")
    low = (1 << _TIE_BITS) - 1
    r = tf.random.stateless_uniform([3], seed=seed, minval=0,
                                    maxval=1 << _TIE_BITS, dtype=tf.int64,
                                    alg="philox")
    a = tf.bitwise.bitwise_or(r[0], 1)
    c = tf.bitwise.bitwise_or(r[2], 1)
    x = tf.range(n, dtype=tf.int64)
    x = tf.bitwise.bitwise_and(x * a + r[1], low)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 15))
    x = tf.bitwise.bitwise_and(x * c, low)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 13))


def make_keys(tier, score, tiebreak):
    """Unique int64 keys ordered by (tier, score, tiebreak)."""
    return (tf.bitwise.left_shift(tf.cast(tier, tf.int64), _TIER_SHIFT)
            + tf.bitwise.left_shift(ordered_bits(score), _SCORE_SHIFT)
            + tiebreak)


def _threshold(values, k, bits, eligible=None):
    """Per row, the largest `t` with at least `k` eligible values `>= t`.

    Built bit by bit from bit `bits - 1` down: one compare-and-count pass
    over the row per bit. Values must be in [0, 2**bits).
    """

    def count(t):
        hit = values >= t[:, None]
        if eligible is not None:
            hit = tf.logical_and(hit, eligible)
        return tf.reduce_sum(tf.cast(hit, tf.int64), axis=1)

    def body(bit, t):
        cand = tf.bitwise.bitwise_or(
            t, tf.bitwise.left_shift(tf.constant(1, values.dtype), bit))
        return bit - 1, tf.where(count(cand) >= k, cand, t)

    _, t = tf.while_loop(
        lambda bit, t: bit >= 0, body,
        (tf.constant(bits - 1, values.dtype), tf.zeros_like(k, values.dtype)))
    return t


def select_top_k(keys, k):
    """Bool mask of the `k[i]` largest keys of each row `keys[i]`.

    Keys must be unique and non-negative (as `make_keys` makes them);
    `0 <= k[i] <= row length`. First the k-th largest (tier, score) part
    (34 bits) is searched; only when several keys share it at the boundary
    are they told apart by their tie-break bits (29 more passes).
    """
    k = tf.cast(k, tf.int64)
    high = tf.bitwise.right_shift(keys, _SCORE_SHIFT)
    t_high = _threshold(high, k, 64 - 1 - _SCORE_SHIFT)[:, None]
    above = high > t_high
    at = tf.equal(high, t_high)
    need = k - _count(above, axis=1)

    def exact():
        return tf.logical_or(above, at)

    def split_ties():
        low = tf.cast(tf.bitwise.bitwise_and(keys, (1 << _TIE_BITS) - 1),
                      tf.int32)
        t_low = _threshold(low, tf.cast(need, tf.int64), _TIE_BITS,
                           eligible=at)[:, None]
        return tf.logical_or(above, tf.logical_and(at, low >= t_low))

    selected = tf.cond(tf.reduce_all(tf.equal(_count(at, axis=1), need)),
                       exact, split_ties)
    return tf.logical_and(selected, k[:, None] > 0)


def round_half_up(fraction, counts):
    """`floor(fraction * counts + 0.5)` as int64, computed in float64."""
    x = tf.cast(fraction, tf.float64) * tf.cast(counts, tf.float64)
    return tf.cast(tf.floor(x + 0.5), tf.int64)


def _count(x, axis=None):
    return tf.reduce_sum(tf.cast(x, tf.int64), axis=axis)


def _prune_and_grow(weight, mask, grow_input, drop_fraction, seed, gates=1,
                    block_shape=None, prune="magnitude", grow="random",
                    redistribution="none"):
    prune_method = registry.get_prune(prune)
    grow_method = registry.get_grow(grow)
    registry.check_redistribution(redistribution)
    shape = weight.shape
    rows, cols = _as_2d_shape(shape)
    block = _block(block_shape, len(shape))
    block_size = block[0] * block[1]
    grid_shape, groups, n = _layout(shape, gates, block_shape, redistribution)
    seed = tf.cast(seed, tf.int64)
    seeds = [tf.random.experimental.stateless_fold_in(seed, i)
             for i in range(3)]

    # Constant fan-in blocks a size does not divide are padded (each gate's
    # columns on its own); other layouts pad nothing.
    fan_in = masks.is_constant_fan_in(block_shape)
    pad_gates = gates if fan_in else 1

    def pad(x):
        x = tf.reshape(x, [rows, cols])
        return block_path.pad_blocks(x, block[0], pad_gates) if fan_in else x

    # A block's score is its sum, scaled as if it were whole: a partial
    # block competes by its mean like the others.
    scale = None
    if fan_in:
        _, sizes = masks.fan_in_block_sums(np.ones((rows, cols)), block[0], pad_gates)
        if not np.all(sizes == block_size):
            scale = tf.constant(block_size / sizes, tf.float32)

    def reduce(x):
        grid = block_reduce(pad(x), block)
        if scale is not None:
            grid = grid * tf.cast(scale, grid.dtype)
        return to_groups(grid, groups)

    active_grid = pad(mask)[::block[0], ::block[1]] > 0.5
    active = to_groups(active_grid, groups)

    # Prune: the lowest importance of each pool, per group.
    pools = prune_method.fn(weight, active, reduce)
    eligible = tf.concat(
        [tf.logical_and(e, active) for e, _ in pools], axis=0)
    importance = tf.concat(
        [tf.cast(s, tf.float32) for _, s in pools], axis=0)
    k_prune = round_half_up(drop_fraction, _count(eligible, axis=1))
    keys = make_keys(eligible, -importance, tiebreak_order(n, seeds[0]))
    dropped = select_top_k(keys, k_prune)
    dropped = tf.reduce_any(tf.reshape(dropped, [len(pools), groups, n]),
                            axis=0)
    k_grow = _count(dropped, axis=1)
    kept = tf.logical_and(active, tf.logical_not(dropped))

    # Grow as many: inactive positions first, those just pruned after.
    score = grow_method.fn(grow_input, weight, reduce, seeds[1])
    tier = tf.where(active, tf.where(dropped, 1, 0), 2)
    grown = select_top_k(make_keys(tier, score, tiebreak_order(n, seeds[2])),
                         k_grow)
    new_active = tf.logical_or(kept, grown)

    def to_elements(x):
        grid = from_groups(tf.cast(x, weight.dtype), grid_shape, groups)
        elements = expand_blocks(grid, block)
        if fan_in:
            elements = block_path.unpad_blocks(elements, rows, cols, pad_gates)
        return tf.reshape(elements, shape)

    new_mask = to_elements(new_active)
    grown_elements = to_elements(grown)
    new_weight = weight * new_mask * (1 - grown_elements)

    def gate_counts(elements):
        per_gate = tf.reshape(tf.cast(elements > 0.5, tf.int64), [rows, gates, -1])
        return tf.reduce_sum(per_gate, axis=[0, 2])

    return {
        "mask": new_mask,
        "grown": grown_elements,
        "weight": new_weight,
        "pruned": _count(to_elements(dropped) > 0.5),
        "grown_count": _count(grown_elements > 0.5),
        "pruned_blocks": _count(dropped),
        "grown_blocks": _count(grown),
        "gate_counts_before": gate_counts(mask),
        "gate_counts_after": gate_counts(new_mask),
        "group_counts_after": _count(new_active, axis=1),
        "changed": _count(tf.not_equal(new_mask, mask)),
    }


prune_and_grow = tf.function(_prune_and_grow, jit_compile=True, autograph=False)
prune_and_grow.__doc__ = """Prunes and regrows one matrix (XLA-compiled).

Args:
    weight: the weight, a float tensor of rank >= 2.
    mask: its 0/1 mask, same shape and dtype.
    grow_input: `None`, or the element-level tensor the grow criterion
        needs (the gradient for `"gradient"`, its moving average for
        `"momentum"`), same shape.
    drop_fraction: float64 scalar tensor in [0, 1).
    seed: int64 tensor of shape `[2]`, the stateless seed of this update
        and matrix.
    gates: number of gate blocks packed along the last axis (Python int).
    block_shape: `None` or the block shape (Python tuple).
    prune, grow: registered criterion names (Python str).
    redistribution: `"none"` or `"gates"`.

Returns:
    A dict of tensors: `mask` (new mask), `grown` (0/1, the positions grown
    in this update, including any pruned and grown again), `weight` (the
    weight with pruned and grown positions at exactly 0), `pruned` and
    `grown_count` (int64 element counts), `pruned_blocks` and
    `grown_blocks` (the same in positions of the block grid),
    `gate_counts_before` and `gate_counts_after` (int64 `[gates]` active
    element counts), `group_counts_after` (int64, active positions of each
    group: of each block column with constant fan-in), `changed` (int64,
    elements whose mask value flipped).
"""
