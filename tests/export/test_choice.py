"""The rule that keeps one of the candidate files (no conversion here)."""

import pytest

from keras_sparse_rnn.export.choice import Candidate, choose

NOISE = 1e-5


def _candidates(*rows):
    """`(encoding, size, error, xnnpack)` rows; a size of None: failed."""
    return [Candidate(encoding, "unroll=True", size, error, xnnpack, 1.0,
                      failure="conversion failed" if size is None else None)
            for encoding, size, error, xnnpack in rows]


def _kept(rows, prefer="balanced", require_xnnpack=True):
    candidates = _candidates(*rows)
    index, notes = choose(candidates, prefer, require_xnnpack, NOISE)
    assert [c.kept for c in candidates].count(True) == 1
    assert candidates[index].kept
    return candidates[index].encoding, notes


def test_balanced_keeps_the_smallest_close_file():
    # The int8 TREC case: the small file is far less accurate.
    rows = [("sparse", 900, 2.75, True), ("csr_only", 950, 2.75, True),
            ("dense", 1000, 0.30, True)]
    kept, notes = _kept(rows)
    assert kept == "dense"
    assert "is less accurate than the best candidate" in notes[0]
    assert "prefer='size'" in notes[0]
    assert _kept(rows, "size")[0] == "sparse"
    assert _kept(rows, "accuracy")[0] == "dense"
    # Within 1.25 x the best error (plus the float32 noise): the smaller.
    close = [("sparse", 900, 0.37, True), ("dense", 1000, 0.30, True)]
    assert _kept(close) == ("sparse", [])
    assert _kept(close, "accuracy")[0] == "dense"
    # float32 files that verify are all close: the smallest, as before.
    float32 = [("sparse", 1000, 3e-6, True), ("dense", 900, 1e-7, True)]
    kept, notes = _kept(float32)
    assert kept == "dense" and "that file is smaller" in notes[0]


def test_xnnpack_is_required_unless_asked_otherwise():
    rows = [("sparse", 800, 0.01, False), ("dense", 1000, 0.01, True)]
    kept, notes = _kept(rows)
    assert kept == "dense"
    assert "needs LiteRT's builtin kernels" in notes[0]
    assert "require_xnnpack=False" in notes[0]
    assert _kept(rows, require_xnnpack=False) == ("sparse", [])
    # None runs with the delegate: the best that runs, said in a note.
    none = [("sparse", 800, 0.01, False), ("dense", 1000, 0.01, False)]
    kept, notes = _kept(none)
    assert kept == "sparse" and "no candidate file runs with" in notes[0]


def test_failed_and_unverified_candidates():
    rows = [("sparse", 800, 0.01, True), ("dense", None, None, None)]
    assert _kept(rows) == ("sparse", [])
    kept, notes = _kept([("sparse", None, None, None),
                         ("dense", 1000, 0.01, True)])
    assert kept == "dense" and "failed" in notes[0]
    # Not verified (verify=False): every error unknown, the smallest.
    unverified = [("sparse", 1000, None, True), ("dense", 900, None, True)]
    assert _kept(unverified)[0] == "dense"
    assert _kept(unverified, "accuracy")[0] == "dense"
    with pytest.raises(ValueError, match="no candidate"):
        choose(_candidates(("dense", None, None, None)), "balanced", True,
               NOISE)
