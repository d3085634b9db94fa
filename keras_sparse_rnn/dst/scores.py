"""Prune and grow criteria: what a topology update removes and adds.

All functions are TensorFlow, traced inside the XLA-compiled update of
`updater.prune_and_grow`. They see one matrix through two helpers:

* `reduce(x)`: takes an element-level tensor of the weight's shape and
  returns it summed over each block (when the weight is block-sparse) and
  viewed as `[groups, n]`: one row per group of positions that keeps its own
  active count (a gate block with `redistribution="none"`, else the whole
  matrix).
* `active`: bool `[groups, n]`, the positions active before the update.

A **prune criterion** returns a list of *pools* `(eligible, importance)`,
each a pair of `[groups, n]` tensors: in each pool and group, the updater
removes the `round(drop_fraction * count(eligible))` eligible positions of
lowest importance. Pools must be disjoint subsets of `active`.

A **grow criterion** returns a `[groups, n]` float importance: the updater
grows, in each group, as many positions as it pruned there, those of highest
importance among the positions inactive before the update (positions pruned
in this same update come last: see `updater`). Its `needs` tells the
callback which element-level tensor to pass as `grow_input`: nothing,
`"gradient"` (dL/dW on the callback's `grow_data`) or `"momentum"` (a
moving average of that gradient).

Ties are broken by a seeded pseudo-random order, in the updater.
"""

import tensorflow as tf


# Prune criteria -------------------------------------------------------------

def magnitude_prune(weight, active, reduce):
    """Removes the active weights of smallest |w| (RigL, Selfish-RNN).

    With blocks, a block's magnitude is the sum of |w| over it.
    """
    return [(active, reduce(tf.abs(weight)))]


def set_prune(weight, active, reduce):
    """SET's rule: the positive and the negative weights closest to zero.

    `drop_fraction` of the active weights >= 0 (their smallest values) and,
    counted separately, `drop_fraction` of the active weights < 0 (their
    values closest to zero) are removed, as Mocanu et al. (2018) do. A
    weight exactly 0 counts as positive. With blocks, the sign and the
    distance to zero are those of the block's sum of w.
    """
    summed = reduce(weight)
    distance = tf.abs(summed)
    positive = summed >= 0
    return [
        (tf.logical_and(active, positive), distance),
        (tf.logical_and(active, tf.logical_not(positive)), distance),
    ]


# Grow criteria --------------------------------------------------------------

def random_grow(grow_input, weight, reduce, seed):
    """Uniformly random positions (SET).

    Every position draws an independent uniform number (summed over a
    block, still exchangeable), so the grown set is a uniformly random
    subset of the candidates.
    """
    del grow_input
    # alg="philox" explicitly: the default ("auto_select") compiles to
    # ThreeFry under XLA on CPU, measured 100 times slower here (1.05 s
    # against 0.011 s for 6.5M numbers).
    return reduce(tf.random.stateless_uniform(
        weight.shape, seed=seed, dtype=tf.float32, alg="philox"))


def gradient_grow(grow_input, weight, reduce, seed):
    """Largest |dL/d(W*M)| (RigL, Evci et al. 2020).

    The weights outside the mask are exactly 0, so dL/dW of the weight
    variable is dL/d(W*M). With blocks, the sum of |g| over the block.
    """
    del weight, seed
    return reduce(tf.abs(grow_input))


def momentum_grow(grow_input, weight, reduce, seed):
    """Largest |moving average of dL/d(W*M)| (SNFS, Dettmers & Zettlemoyer
    2019).

    The callback passes the moving average as `grow_input`: the optimizer's
    first-moment slot when it has one (what SNFS's code reads), else its own
    moving average of the gradient on `grow_data`.
    """
    return gradient_grow(grow_input, weight, reduce, seed)
