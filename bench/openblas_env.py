"""Run a benchmark script with OpenBLAS free to choose its kernels for this processor.

Some machines pin OpenBLAS to an older kernel family (OPENBLAS_CORETYPE, e.g. Haswell on an AVX-512
processor, and OPENBLAS_L2_SIZE) to protect old OpenBLAS builds; that halves the SGEMM ceiling of a
current numpy/scipy and would understate every BLAS-bound contender. Benchmarks re-run themselves
without the pins (each offers --keep-openblas-env to keep them).
"""
from __future__ import annotations

import os
import sys

OPENBLAS_PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def unpin_openblas(script, argv, log=print):
    """Replace this process by ``python script *argv`` without the OpenBLAS pins; return if none are set."""
    pinned = {k: os.environ[k] for k in OPENBLAS_PINS if k in os.environ}
    if not pinned:
        return
    log(f"re-running without {', '.join(f'{k}={v}' for k, v in pinned.items())} (use --keep-openblas-env to keep them)")
    sys.stdout.flush()
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_PINS}
    os.execve(sys.executable, [sys.executable, str(script), *argv], env)
