"""Products computed once per call: the packed GEMM (packing W each time) against BLAS gemm, 1 thread.

The kernels compute two products once per call, outside the time loop, through gemm_once
(fastrnn/_kernels/packed.pxd):
    fwd:  G  = X @ W_ih^T     A = X (M = T*B, I),  W_ih (gH, I)  ->  (M, gH)
    bwd:  dX = dG @ W_ih      A = dG (M, gH),      W_ih (gH, I)  ->  (M, I)
and the weight gradients through gemm_once_at:
    dW:   dW_ih += dG^T @ X   dG (K = T*B, gH),    X (K, I)      ->  (gH, I)
with I = H here, and g gates: 4 (LSTM), and for the backward products also 1 (RNN). For each shape the table gives BLAS gemm's time, the packed path's (packing + product),
their ratio (> 1: packed is faster) and which path gemm_once takes. The two are interleaved; medians
over the repeats. These are the measurements behind packed_product's rule.

Run from the repository root:
    python bench/small_gemm.py [--quick] [--dtype float64]
"""
import argparse
import sys
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.openblas_env import unpin_openblas  # noqa: E402
from fastrnn._kernels.packed_hooks import _gemm_once_at_test, _gemm_once_test, _time_at, _time_steps  # noqa: E402


def measure(dtype, trans, gates, M, H, repeats):
    rng = np.random.default_rng(M * 31 + H)
    N, K = (gates * H, H) if trans else (H, gates * H)
    A = rng.standard_normal((M, K)).astype(dtype)
    W = rng.standard_normal((N, K) if trans else (K, N)).astype(dtype)
    C = np.zeros((M, N), dtype)
    for _ in range(3):  # warm-up: caches, and the allocator's pages for the packed copy
        _time_steps(trans, False, A, W, C, 1)
        _time_steps(trans, True, A, W, C, 1)
    blas, packed = [], []
    for _ in range(repeats):
        blas.append(_time_steps(trans, False, A, W, C, 1)[1])
        packed.append(sum(_time_steps(trans, True, A, W, C, 1)))
    return (float(np.median(blas)), float(np.median(packed)), float(np.median(np.array(blas) / np.array(packed))),
            _gemm_once_test(trans, A, W, C, 0.0))


def measure_at(dtype, gates, K, H, repeats):
    """dW (gH, H) += dG^T @ X over K rows: BLAS against gemm_packed_at (which reads X in place)."""
    rng = np.random.default_rng(K * 31 + H)
    dG = rng.standard_normal((K, gates * H)).astype(dtype)
    X = rng.standard_normal((K, H)).astype(dtype)
    dW = np.zeros((gates * H, H), dtype)
    for _ in range(2):
        _time_at(False, dG, X, dW)
        _time_at(True, dG, X, dW)
    blas, packed = [], []
    for _ in range(repeats):
        blas.append(_time_at(False, dG, X, dW))
        packed.append(_time_at(True, dG, X, dW))
    return (float(np.median(blas)), float(np.median(packed)), float(np.median(np.array(blas) / np.array(packed))),
            _gemm_once_at_test(dG, X, dW, 1.0))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer shapes and repeats")
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--keep-openblas-env", action="store_true", help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE")
    args = ap.parse_args(argv)
    if not args.keep_openblas_env:
        unpin_openblas(Path(__file__).resolve(), sys.argv[1:])
    rows = (8, 50, 400) if args.quick else (8, 16, 32, 50, 100, 200, 400, 800, 3200)  # M = T * B
    hiddens = (64, 256) if args.quick else (64, 128, 256, 512)
    repeats = 5 if args.quick else 11
    dtype = np.dtype(args.dtype)
    print(f"{dtype.name}, 1 BLAS thread, {repeats} interleaved repeats")
    print("| product | gates | M | H | A KiB | BLAS us | packed us | BLAS / packed | gemm_once takes |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    with threadpool_limits(1, "blas"):
        for trans, gates in ((True, 4), (False, 4), (False, 1)):
            for M in rows:
                for H in hiddens:
                    blas, packed, ratio, took = measure(dtype, trans, gates, M, H, repeats)
                    a_kib = M * (H if trans else gates * H) * dtype.itemsize / 1024
                    print(f"| {'fwd X @ W^T' if trans else 'bwd dG @ W'} | {gates} | {M} | {H} | {a_kib:.0f} | "
                          f"{blas * 1e6:.1f} | {packed * 1e6:.1f} | {ratio:.2f} | {'packed' if took else 'BLAS'} |",
                          flush=True)
        print()
        print("| product | gates | K = T*B | H | dW KiB | BLAS us | packed us | BLAS / packed | gemm_once_at takes |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        for gates in (4, 1):
            for K in ((50, 400, 3200) if args.quick else (50, 400, 3200, 6400)):
                for H in hiddens:
                    blas, packed, ratio, took = measure_at(dtype, gates, K, H, repeats)
                    print(f"| dW dG^T @ X | {gates} | {K} | {H} | {gates * H * H * dtype.itemsize / 1024:.0f} | "
                          f"{blas * 1e6:.1f} | {packed * 1e6:.1f} | {ratio:.2f} | {'packed' if took else 'BLAS'} |",
                          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
