"""Which of the converted files to keep: the `Candidate` records and the rule.

The exporter converts the same model (same loop form, same quantization) in
up to three encodings, verifies each in LiteRT and keeps one:

- `"sparse"`: the converter's sparsity pass (`Optimize.EXPERIMENTAL_SPARSITY`)
  and the CSR embedding tables;
- `"csr_only"`: the CSR embedding tables, dense `FULLY_CONNECTED` weights;
- `"dense"`: no sparse encoding.

Smaller is not always as good: a quantized CSR table may be calibrated worse
than the dense one (measured on a sparse GRU classifier of TREC: verified
max |LiteRT - Keras| 8.1 against 0.18, LiteRT test accuracy 0.218 against
0.854; `tests/export/test_quantization.py` has a small case), and LiteRT's default XNNPACK delegate cannot prepare some sparse
quantized files. `choose` applies the rule that `export_tflite` documents:

1. Usable: the candidate converted and verified; with `require_xnnpack`,
   it also runs with `Interpreter(path)`'s default XNNPACK delegate (if none
   does, every usable one is considered, and the report says so).
2. `prefer="balanced"` (default): the smallest among the usable candidates
   whose error is close to the best one's: at most
   `ERROR_RATIO * best + FLOAT32_TOLERANCE * max(1, max |Keras output|)`
   (so float32 files that pass verification are all close).
   `"size"`: the smallest usable file, whatever its error.
   `"accuracy"`: the usable file with the lowest error (then the smallest).
   Without verification (`verify=False`) every error is unknown and the
   smallest usable file is kept.
"""

import dataclasses

PREFERENCES = ("balanced", "size", "accuracy")
ERROR_RATIO = 1.25

_DESCRIBED = {
    "sparse": "with sparse encoding",
    "csr_only": "with the CSR embedding tables but dense FULLY_CONNECTED "
                "weights",
    "dense": "without sparse encoding",
}


@dataclasses.dataclass
class Candidate:
    """One file the exporter converted (and verified) for the choice.

    Attributes:
        encoding: `"sparse"`, `"csr_only"` or `"dense"` (see the module).
        form: the loop form's name (`"unroll=False (WHILE loop)"`, ...).
        size_bytes: the file's size (`None` if it did not convert).
        max_abs_error: its largest |LiteRT - Keras| (`None`: not verified).
        xnnpack: whether it runs with LiteRT's default XNNPACK delegate.
        seconds: how long its tracing and conversion took.
        failure: why it cannot be used (conversion or verification error),
            else `None`.
        kept: whether it is the file written.
    """

    encoding: str
    form: str
    size_bytes: object
    max_abs_error: object
    xnnpack: object
    seconds: float
    failure: object = None
    kept: bool = False

    def __str__(self):
        if self.failure is not None:
            return (f"{self.encoding} ({self.form}): failed after "
                    f"{self.seconds:.1f} s: {str(self.failure)[:120]}")
        error = ("not verified" if self.max_abs_error is None
                 else f"max error {self.max_abs_error:.2e}")
        return (f"{self.encoding} ({self.form}): {self.size_bytes} bytes, "
                f"{error}, XNNPACK {'yes' if self.xnnpack else 'no'}, "
                f"converted in {self.seconds:.1f} s"
                + (" (kept)" if self.kept else ""))


def describe(encoding):
    """How a note names an encoding (`"without sparse encoding"`, ...)."""
    return _DESCRIBED[encoding]


def is_close(error, best, noise):
    """Whether `error` is close to the `best` error (the module's rule);
    `noise` is the float32 tolerance of the verification outputs."""
    if error is None or best is None:
        return True
    return error <= ERROR_RATIO * best + noise


def choose(candidates, prefer, require_xnnpack, noise):
    """`(index of the kept candidate, notes)`.

    Args:
        candidates: `Candidate`s in order of preference on ties (the first
            is the file asked for).
        prefer: one of `PREFERENCES`.
        require_xnnpack: keep only files the default delegate runs, if any.
        noise: `FLOAT32_TOLERANCE * max(1, max |Keras output|)`.
    """
    usable = [i for i, c in enumerate(candidates) if c.failure is None]
    if not usable:
        raise ValueError("no candidate file to choose from")
    notes = []
    pool = usable
    if require_xnnpack:
        pool = [i for i in usable if candidates[i].xnnpack]
        if not pool:
            pool = usable
            if len(usable) > 1:
                notes.append(
                    "no candidate file runs with LiteRT's default XNNPACK "
                    "delegate; kept the best one that runs with the builtin "
                    "kernels")
    errors = [candidates[i].max_abs_error for i in pool]
    known = [e for e in errors if e is not None]
    best = min(known) if known else None

    def size(i):
        return (candidates[i].size_bytes, i)

    if prefer == "accuracy" and best is not None:
        kept = min(pool, key=lambda i: (
            candidates[i].max_abs_error, candidates[i].size_bytes, i))
    elif prefer == "size":
        kept = min(pool, key=size)
    else:
        close = [i for i in pool
                 if is_close(candidates[i].max_abs_error, best, noise)]
        kept = min(close, key=size)
    candidates[kept].kept = True
    if kept != 0:
        notes.append(_why(candidates, kept, prefer, require_xnnpack, noise,
                          best))
    return kept, notes


def _why(candidates, kept, prefer, require_xnnpack, noise, best):
    """The note of a kept file other than the one asked for (the first)."""
    first, chosen = candidates[0], candidates[kept]
    what = f"stored {describe(chosen.encoding)}"
    if first.failure is not None:
        return f"{what}: the file {describe(first.encoding)} failed"
    reasons = []
    if require_xnnpack and chosen.xnnpack and not first.xnnpack:
        reasons.append(
            f"the file {describe(first.encoding)} ({first.size_bytes} bytes) "
            "needs LiteRT's builtin kernels (XNNPACK cannot prepare it; "
            "require_xnnpack=False allows it)")
    if chosen.size_bytes < first.size_bytes:
        reasons.append(
            f"that file is smaller ({chosen.size_bytes} vs "
            f"{first.size_bytes} bytes {describe(first.encoding)})")
    elif first.max_abs_error is not None and chosen.max_abs_error is not None \
            and not reasons:
        reason = ("it has the lowest error" if prefer == "accuracy" else
                  f"the file {describe(first.encoding)} is less accurate "
                  f"than the best candidate (beyond {ERROR_RATIO} x "
                  f"{best:.2e} + {noise:.1e})")
        reasons.append(
            f"{reason}: max error {chosen.max_abs_error:.2e} vs "
            f"{first.max_abs_error:.2e} ({chosen.size_bytes} vs "
            f"{first.size_bytes} bytes); prefer='size' keeps the smaller "
            "file")
    if not reasons:
        reasons.append(f"the rule of prefer={prefer!r} keeps it")
    return f"{what}: " + "; ".join(reasons)
