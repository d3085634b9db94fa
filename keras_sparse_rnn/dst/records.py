"""What an update did: the per-matrix record, checked counts, epoch logs.

The callback keeps every matrix's active count fixed; `matrix_record` checks
the updater's counts against the expected ones and raises if they differ.
`update_record` sums an update over the matrices, `epoch_logs` the updates
of an epoch into the values `fit` logs, and `describe` is the `verbose=1`
line.
"""

import numpy as np
import tensorflow as tf


def matrix_record(matrix, out, expected, redistribution):
    """The record of one matrix's update (`updater.prune_and_grow`'s output
    `out`), after checking its counts against `expected` (per gate)."""
    before = out["gate_counts_before"].numpy()
    after = out["gate_counts_after"].numpy()
    pruned = int(out["pruned"].numpy())
    grown = int(out["grown_count"].numpy())
    problem = None
    if matrix.constant_fan_in:
        # Exact in blocks: the same count in every block column (with padded
        # blocks the count of weights moves with which blocks are active).
        problem = _fan_in_problem(matrix, out)
    elif int(before.sum()) != int(expected.sum()):
        problem = (f"had {int(before.sum())} active weights before the "
                   f"update, {int(expected.sum())} expected")
    elif int(after.sum()) != int(expected.sum()) or pruned != grown:
        problem = (f"has {int(after.sum())} active weights after the "
                   f"update (pruned {pruned}, grew {grown}), "
                   f"{int(expected.sum())} expected")
    elif redistribution == "none" and not np.array_equal(after, expected):
        problem = (f"has per-gate counts {after.tolist()} after the "
                   f"update, {expected.tolist()} expected")
    if problem:
        raise RuntimeError(
            f"DynamicSparsity: sparse weight '{matrix.weight.path}' "
            f"{problem}: the parameter count must stay fixed"
        )
    return {"path": matrix.weight.path, "pruned": pruned, "grown": grown,
            "changed": int(out["changed"].numpy()),
            "gate_counts": after.tolist()}


def _fan_in_problem(matrix, out):
    """What is wrong with a constant fan-in matrix's update, or None."""
    k, _ = matrix.layer.fan_in(matrix.name)
    counts = out["group_counts_after"].numpy()
    pruned, grown = int(out["pruned_blocks"].numpy()), int(out["grown_blocks"].numpy())
    if pruned != grown or np.any(counts != k):
        return (f"has block columns of {sorted(set(counts.tolist()))} active "
                f"blocks after the update (pruned {pruned} blocks, grew "
                f"{grown}), {k} expected in every one")
    return None


def unchanged_record(matrix, expected):
    """The record of a matrix an update with drop fraction 0 left alone."""
    return {"path": matrix.weight.path, "pruned": 0, "grown": 0, "changed": 0,
            "gate_counts": expected.tolist()}


def positions(sparse_matrices):
    """All sparse positions (active or not) of the matrices."""
    return int(sum(int(np.prod(s.weight.shape)) for s in sparse_matrices))


def itop_rate(sparse_matrices, ever_active):
    """In-time over-parameterization: the fraction of all sparse positions
    that have ever been active (Liu et al. 2021)."""
    ever = sum(float(tf.reduce_sum(tf.convert_to_tensor(v)))
               for v in ever_active)
    return ever / positions(sparse_matrices)


def gate_shares(sparse_matrices):
    """Share of the active weights of each gate, per gate family (the
    matrices with the same gate names)."""
    totals = {}
    for matrix in sparse_matrices:
        if matrix.gates < 2 or not matrix.gate_names:
            continue
        counts = matrix.gate_counts()
        family = totals.setdefault(tuple(matrix.gate_names),
                                   np.zeros(matrix.gates, np.int64))
        family += counts
    shares = {}
    for names, counts in totals.items():
        total = counts.sum()
        for name, count in zip(names, counts):
            shares[name] = float(count / total) if total else 0.0
    return shares


def update_record(index, step, fraction, matrices, sparse_matrices, ever_active):
    """One update summed over its matrices' records."""
    record = {
        "update": index,
        "step": int(step),
        "drop_fraction": fraction,
        "pruned": sum(m["pruned"] for m in matrices),
        "grown": sum(m["grown"] for m in matrices),
        "changed": sum(m["changed"] for m in matrices),
        "positions": positions(sparse_matrices),
        "itop_rate": itop_rate(sparse_matrices, ever_active),
        "gate_shares": gate_shares(sparse_matrices),
        "matrices": matrices,
    }
    record["mask_change"] = record["changed"] / record["positions"]
    return record


def describe(record):
    """The `verbose=1` line of an update."""
    shares = " ".join(f"{g} {s:.1%}" for g, s in record["gate_shares"].items())
    return (
        f"DynamicSparsity update {record['update']} at step {record['step']}: "
        f"drop fraction {record['drop_fraction']:.4f}, pruned "
        f"{record['pruned']}, grown {record['grown']}, mask changed "
        f"{record['mask_change']:.2%}, ITOP rate {record['itop_rate']:.2%}"
        + (f", gate shares {shares}" if shares else "")
    )


def epoch_logs(records, sparse_matrices, ever_active):
    """The values an epoch's updates add to `fit`'s logs."""
    logs = {
        "dst_updates": len(records),
        "dst_pruned": sum(r["pruned"] for r in records),
        "dst_grown": sum(r["grown"] for r in records),
        "dst_drop_fraction": records[-1]["drop_fraction"] if records else 0.0,
        "dst_mask_change": (sum(r["changed"] for r in records)
                            / positions(sparse_matrices)),
        "dst_itop_rate": itop_rate(sparse_matrices, ever_active),
    }
    for gate, share in gate_shares(sparse_matrices).items():
        logs[f"dst_share_{gate}"] = share
    return logs
