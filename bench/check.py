"""The correctness gate: a contender is timed only if its outputs match the reference's.

The reference is PyTorch when it is importable, else the NumPy implementation. Each output
(y, final state, and for training dx, dstate0 and every parameter gradient) is compared by
its error scaled to its size, ``max|a - b| / max(1, max|b|)``, which must not exceed ``atol``
(1e-4 for float32). A contender that misses an output the reference has fails the check.
"""
from __future__ import annotations

import numpy as np

ATOL = 1e-4


def compare(outputs, reference, atol=ATOL):
    """Return (ok, worst_error, message) for one contender's outputs against the reference's."""
    worst, bad = 0.0, []
    for key, ref in reference.items():
        if key not in outputs:
            bad.append(f"{key}: missing")
            continue
        got = np.asarray(outputs[key], dtype=np.float64)
        ref = np.asarray(ref, dtype=np.float64)
        if got.shape != ref.shape:
            if got.size == ref.size:
                got = got.reshape(ref.shape)
            else:
                bad.append(f"{key}: shape {got.shape}, expected {ref.shape}")
                continue
        if not np.all(np.isfinite(got)):
            bad.append(f"{key}: non-finite values")
            worst = np.inf
            continue
        err = float(np.max(np.abs(got - ref)) / max(1.0, float(np.max(np.abs(ref)))) if ref.size else 0.0)
        worst = max(worst, err)
        if err > atol:
            bad.append(f"{key}: scaled error {err:.2e} > {atol:.0e}")
    return (not bad), worst, "; ".join(bad) if bad else f"max scaled error {worst:.1e}"
