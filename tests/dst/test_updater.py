import itertools
import re

import numpy as np
import pytest
import tensorflow as tf

from keras_sparse_rnn import masks
from keras_sparse_rnn.dst import updater

SEED = tf.constant([3, 4], tf.int64)


def _run(w, m, g=None, fraction=0.3, seed=SEED, **kw):
    out = updater.prune_and_grow(
        tf.constant(w), tf.constant(m), None if g is None else tf.constant(g),
        tf.constant(fraction, tf.float64), seed, **kw)
    return {k: v.numpy() for k, v in out.items()}


def test_update_is_compiled_with_xla():
    # The whole prune-and-grow of a matrix lowers to one XLA computation
    # (HLO): the weight, mask, grow input, fraction and seed in, the eight
    # results out, no op left to the TensorFlow runtime (a custom call) and
    # no sort (the k best are found by a binary search of the k-th key).
    # Compiled, it computes what the same function computes eagerly.
    w = np.random.default_rng(0).normal(size=(8, 12)).astype(np.float32)
    m = masks.random_mask(w.shape, 0.5, seed=1)
    args = (tf.constant(w), tf.constant(m), tf.constant(w),
            tf.constant(0.3, tf.float64), SEED)
    options = dict(gates=1, block_shape=None, prune="magnitude",
                   grow="gradient", redistribution="none")
    hlo = updater.prune_and_grow.experimental_get_compiler_ir(
        *args, **options)(stage="hlo")
    entry = next(line for line in hlo.splitlines() if line.startswith("ENTRY"))
    params, results = re.fullmatch(r"ENTRY \S+ \((.*)\) -> \((.*)\) \{",
                                   entry).groups()
    shape = r"[a-z]\d+\[[\d,]*\]"
    assert re.findall(shape, params) == ["f32[8,12]"] * 3 + ["f64[]", "s64[2]"]
    ops = set(re.findall(r"= \S+ ([a-z][\w-]*)\(", hlo))
    assert "custom-call" not in ops and "sort" not in ops
    # The new weight: the weight times the new mask (and 1 - grown).
    assert re.search(r"f32\[8,12\]\S* multiply\(f32\[8,12\]", hlo)

    compiled = updater.prune_and_grow(*args, **options)
    eager = updater.prune_and_grow.python_function(*args, **options)
    assert sorted(compiled) == sorted(eager)
    # The results come out in the order of their sorted keys.
    assert re.findall(shape, results) == [
        f"{'f32' if v.dtype == tf.float32 else 's64'}"
        f"[{','.join(str(d) for d in v.shape)}]"
        for _, v in sorted(compiled.items())]
    for key in compiled:
        np.testing.assert_array_equal(compiled[key], eager[key], err_msg=key)
    new_mask, grown = compiled["mask"].numpy(), compiled["grown"].numpy()
    assert compiled["pruned"] == compiled["grown_count"] == 14  # 0.3 * 48
    assert new_mask.sum() == m.sum() and compiled["changed"] > 0
    np.testing.assert_array_equal(compiled["weight"], w * new_mask * (1 - grown))


def test_select_top_k_matches_sorting():
    rng = np.random.default_rng(0)
    keys = rng.choice(2 ** 62, size=(3, 500), replace=False).astype(np.int64)
    k = np.array([0, 137, 500], np.int64)
    got = updater.select_top_k(tf.constant(keys), tf.constant(k)).numpy()
    for row in range(3):
        expected = np.zeros(500, bool)
        expected[np.argsort(-keys[row])[:k[row]]] = True
        np.testing.assert_array_equal(got[row], expected)


def test_select_top_k_with_ties_in_tier_and_score():
    # Many keys share their (tier, score) part: the tie-break bits decide.
    rng = np.random.default_rng(1)
    tier = rng.integers(0, 3, (2, 400))
    score = rng.choice([0.0, 0.5, 1.0], size=(2, 400)).astype(np.float32)
    tie = np.stack([rng.permutation(400), rng.permutation(400)]).astype(np.int64)
    keys = updater.make_keys(tf.constant(tier), tf.constant(score),
                             tf.constant(tie)).numpy()
    assert len(np.unique(keys[0])) == 400
    for k in ([0, 400], [1, 399], [57, 203], [133, 134]):
        got = updater.select_top_k(tf.constant(keys), tf.constant(k)).numpy()
        for row in range(2):
            expected = np.zeros(400, bool)
            expected[np.argsort(-keys[row])[:k[row]]] = True
            np.testing.assert_array_equal(got[row], expected)


def test_ordered_bits_preserve_float_order():
    values = np.array([-np.inf, -3.5, -1e-30, -0.0, 0.0, 1e-30, 0.25, 7.0,
                       np.inf], np.float32)
    bits = updater.ordered_bits(tf.constant(values)).numpy()
    assert np.all(np.diff(bits) > 0)
    assert bits.min() >= 0 and bits.max() < 2 ** 32


def test_tiebreak_is_a_seeded_bijection():
    a = updater.tiebreak_order(5000, SEED).numpy()
    b = updater.tiebreak_order(5000, tf.constant([3, 5], tf.int64)).numpy()
    assert len(np.unique(a)) == 5000 and len(np.unique(b)) == 5000
    assert a.min() >= 0 and a.max() < 2 ** 29
    assert not np.array_equal(np.argsort(a), np.argsort(b))
    np.testing.assert_array_equal(a, updater.tiebreak_order(5000, SEED).numpy())


def test_group_views_round_trip():
    x = tf.reshape(tf.range(24), [2, 12])
    g = updater.to_groups(x, 4)
    np.testing.assert_array_equal(g.numpy()[1], [3, 4, 5, 15, 16, 17])
    np.testing.assert_array_equal(updater.from_groups(g, (2, 12), 4), x)
    blocks = updater.block_reduce(tf.reshape(tf.range(16.0), [4, 4]), (2, 1))
    np.testing.assert_array_equal(blocks, [[4, 6, 8, 10], [20, 22, 24, 26]])
    np.testing.assert_array_equal(
        updater.expand_blocks(tf.constant([[1, 2]]), (2, 1)), [[1, 2], [1, 2]])


def test_magnitude_random_exact_example():
    w = np.array([[0.5, -0.1, 0.0, 2.0],
                  [-3.0, 0.2, -0.05, 0.0],
                  [0.0, 0.0, 1.0, -1.5],
                  [0.3, 0.0, 0.0, -0.4]], np.float32)
    m = (w != 0).astype(np.float32)
    out = _run(w, m, fraction=0.25)  # 10 active: prune round(2.5) = 3
    pruned = (m == 1) & (out["mask"] == 0)
    np.testing.assert_array_equal(np.sort(np.abs(w[pruned])),
                                  np.float32([0.05, 0.1, 0.2]))
    assert out["pruned"] == out["grown_count"] == 3
    grown = out["grown"] == 1
    assert grown.sum() == 3 and np.all(m[grown] == 0)
    assert out["mask"].sum() == 10 and out["changed"] == 6
    np.testing.assert_array_equal(out["weight"], w * out["mask"])
    assert np.all(out["weight"][grown] == 0)


def test_gradient_grow_exact_example():
    w = np.array([[1.0, 2.0, 0.0], [0.0, 3.0, 0.0]], np.float32)
    m = (w != 0).astype(np.float32)
    g = np.array([[9.0, 9.0, 0.1], [-5.0, 9.0, 4.0]], np.float32)
    out = _run(w, m, g, fraction=0.34, grow="gradient")  # prune 1 of 3
    np.testing.assert_array_equal(out["mask"], [[0, 1, 0], [1, 1, 0]])
    np.testing.assert_array_equal(out["grown"], [[0, 0, 0], [1, 0, 0]])
    np.testing.assert_array_equal(out["weight"], [[0, 2, 0], [0, 3, 0]])


def test_set_prune_counts_each_sign_separately():
    # 6 positive (one is 0.0) and 4 negative active weights.
    w = np.array([[0.0, 0.1, 0.2, 0.3, 0.4, 0.5,
                   -0.1, -0.2, -0.3, -0.4, 0.0, 0.0]], np.float32)
    m = np.array([[1] * 10 + [0, 0]], np.float32)
    out = _run(w, m, fraction=0.5, prune="set")
    pruned = (m == 1) & (out["mask"] == 0) | ((m == 1) & (out["grown"] == 1))
    # 3 of 6 positives (0.0, 0.1, 0.2) and 2 of 4 negatives (-0.1, -0.2).
    np.testing.assert_array_equal(
        np.where(pruned[0])[0], [0, 1, 2, 6, 7])
    assert out["pruned"] == 5 and out["mask"].sum() == 10


def test_pruned_positions_regrow_only_when_necessary():
    # 15 of 16 active, drop 8: only 1 inactive candidate, so 7 of the 8
    # just-pruned positions are grown again: treated as grown (weight 0).
    rng = np.random.default_rng(1)
    w = rng.normal(size=(4, 4)).astype(np.float32)
    m = np.ones((4, 4), np.float32)
    m[2, 3] = 0
    w *= m
    out = _run(w, m, fraction=0.5)
    assert out["mask"].sum() == 15 and out["grown"].sum() == 8
    assert out["grown"][2, 3] == 1
    assert np.all(out["weight"][out["grown"] == 1] == 0)
    kept = (out["mask"] == 1) & (out["grown"] == 0)
    assert kept.sum() == 7
    np.testing.assert_array_equal(out["weight"][kept], w[kept])


COMBOS = list(itertools.product(
    ["magnitude", "set"], ["random", "gradient", "momentum"], ["none", "gates"],
    [None, (4, 1)]))


@pytest.mark.parametrize("prune,grow,redistribution,block", COMBOS)
def test_exact_counts_every_combination(prune, grow, redistribution, block):
    rng = np.random.default_rng(7)
    shape, gates = (16, 24), 4
    sparsity = [0.6, 0.7, 0.8, 0.5]
    m = masks.random_mask(shape, sparsity, 5, gates=gates, block_shape=block)
    w = (rng.normal(size=shape) * m).astype(np.float32)
    g = None if grow == "random" else rng.normal(size=shape).astype(np.float32)
    out = _run(w, m, g, fraction=0.3, prune=prune, grow=grow, gates=gates,
               block_shape=block, redistribution=redistribution)
    new, grown = out["mask"], out["grown"]
    assert set(np.unique(new)) <= {0.0, 1.0}
    assert new.sum() == m.sum()
    before = m.reshape(16, gates, 6).sum(axis=(0, 2))
    after = new.reshape(16, gates, 6).sum(axis=(0, 2))
    np.testing.assert_array_equal(out["gate_counts_before"], before)
    np.testing.assert_array_equal(out["gate_counts_after"], after)
    if redistribution == "none":
        np.testing.assert_array_equal(after, before)
    # Plenty of inactive positions: nothing pruned is grown again.
    assert np.all(m[grown == 1] == 0)
    np.testing.assert_array_equal(grown, (new == 1) & (m == 0))
    assert out["pruned"] == out["grown_count"] == grown.sum() > 0
    assert out["changed"] == 2 * grown.sum()
    np.testing.assert_array_equal(out["weight"], w * new)
    if block is not None:
        for x in (new, grown):
            np.testing.assert_array_equal(x[0::4], x[1::4])
            np.testing.assert_array_equal(x[0::4], x[3::4])
    # Exact number pruned, per group and pool (round half up).
    groups = gates if redistribution == "none" else 1
    b0 = block[0] if block else 1
    grid_w = w.reshape(16 // b0, b0, 24).sum(axis=1)
    grid_m = m[::b0]
    expected = 0
    for cols in np.array_split(np.arange(24), groups):
        active = grid_m[:, cols] == 1
        vals = grid_w[:, cols][active]
        pools = [vals] if prune == "magnitude" else [vals[vals >= 0], vals[vals < 0]]
        expected += sum(int(np.floor(0.3 * len(p) + 0.5)) for p in pools)
    assert out["pruned"] == expected * b0
    # The pruned are the smallest (magnitude) and the grown the largest |g|.
    if prune == "magnitude" and block is None:
        for cols in np.array_split(np.arange(24), groups):
            old, nw = m[:, cols] == 1, new[:, cols] == 1
            dropped = np.abs(w[:, cols][old & ~nw])
            kept = np.abs(w[:, cols][old & nw])
            assert dropped.max() <= kept.min()
    if grow != "random" and block is None:
        for cols in np.array_split(np.arange(24), groups):
            cand = (m[:, cols] == 0)
            chosen = grown[:, cols] == 1
            assert np.abs(g[:, cols][chosen]).min() >= np.abs(
                g[:, cols][cand & ~chosen]).max()


def test_same_seed_same_masks_other_seed_other_masks():
    rng = np.random.default_rng(2)
    m = masks.random_mask((20, 20), 0.8, 1)
    w = (rng.normal(size=(20, 20)) * m).astype(np.float32)
    a = _run(w, m)["mask"]
    np.testing.assert_array_equal(a, _run(w, m)["mask"])
    assert not np.array_equal(a, _run(w, m, seed=tf.constant([3, 5], tf.int64))["mask"])


def test_zero_fraction_changes_nothing():
    m = masks.random_mask((8, 8), 0.5, 1)
    w = (np.ones((8, 8)) * m).astype(np.float32)
    out = _run(w, m, fraction=0.0)
    np.testing.assert_array_equal(out["mask"], m)
    assert out["pruned"] == 0 and out["changed"] == 0


def test_random_ties_are_broken_at_random():
    # All |g| are 0: RigL's choice falls to the seeded tie-break, which must
    # not pick the lowest indices.
    m = np.zeros((1, 1000), np.float32)
    m[0, 500:600] = 1
    w = m.copy()
    out = _run(w, m, np.zeros_like(w), fraction=0.5, grow="gradient")
    grown = np.where(out["grown"][0] == 1)[0]
    assert len(grown) == 50
    assert grown.max() > 600 and grown.min() < 450


def test_bad_static_arguments():
    m = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match="prune must be one of"):
        _run(m, m, prune="smallest")
    with pytest.raises(ValueError, match="redistribution must be one of"):
        _run(m, m, redistribution="cells")
    with pytest.raises(ValueError, match="rank >= 2"):
        _run(np.ones(4, np.float32), np.ones(4, np.float32))


def test_check_shape_refuses_what_the_update_cannot_do():
    # Only shapes are looked at: nothing of this size is allocated.
    big = (2 ** 15, 2 ** 15)  # 2**30 positions
    with pytest.raises(ValueError, match=r"Sparse weight 'w' of shape \(32768, 32768\) is too "
                                         r"large for the update \(more than 536870912"):
        updater.check_shape(big, where="Sparse weight 'w'")
    updater.check_shape(big, gates=4)  # four groups of 2**28 each
    with pytest.raises(ValueError, match="too large"):
        updater.check_shape(big, gates=4, redistribution="gates")
    with pytest.raises(ValueError, match="rank >= 2"):
        updater.check_shape((8,))
    with pytest.raises(ValueError, match="cannot be cut into blocks"):
        updater.check_shape((8, 6), block_shape=(3, 1))
    # Square blocks of constant fan-in are padded where they do not divide.
    updater.check_shape((8, 6), block_shape=(4, 4))
    with pytest.raises(ValueError, match="cannot be split into 4 gates"):
        updater.check_shape((8, 6), gates=4)
