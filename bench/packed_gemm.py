"""Per-step recurrent product: packed-weight GEMM (fastrnn/_kernels/packed.h) vs BLAS gemm, 1 thread.

Times `C += A @ op(W)` repeated like the steps of a sequence, without the GIL (the hook
fastrnn._kernels.packed_hooks._time_steps), for
    fwd:  g += h_prev @ W_hh^T    A (B, H),  W (4H, H)  ->  C (B, 4H)
    bwd:  dh_prev = dG @ W_hh     A (B, 4H), W (4H, H)  ->  C (B, H)
The 'blas' path is fastrnn's gemm door, so a one-row forward product (B = 1, fwd) goes to gemv.h
there, not to BLAS (bench/one_row.py compares those two). The packed path packs W once per sample;
the table shows the step time without it, the packing time (beside the time numpy takes to copy the
same W, the memory-bound floor of any repacking), and the speed-up of a T-step sequence (default
T = 100) that packs once: T blas / (pack + T packed).
The two paths are interleaved; medians over the repeats, ratios are medians of paired ratios.

Run from the repository root, with OpenBLAS free to pick its best kernels on this machine:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/packed_gemm.py [--quick]
"""
import argparse
import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fastrnn.arg_types import finite, int_at_least  # noqa: E402
from fastrnn._kernels.packed_hooks import _time_steps  # noqa: E402


def measure(dtype, B, H, trans, T, repeats, sample_s):
    rng = np.random.default_rng(B * 7919 + H)
    N, K = (4 * H, H) if trans else (H, 4 * H)
    A = rng.standard_normal((B, K)).astype(dtype)
    W = (rng.standard_normal((N, K) if trans else (K, N)) / np.sqrt(K)).astype(dtype)
    C = np.zeros((B, N), dtype)
    # calibrate: a sample of `steps` steps lasts about sample_s (warm-up for both paths too)
    _time_steps(trans, False, A, W, C, 3)
    one = _time_steps(trans, True, A, W, C, 3)[1] / 3
    steps = max(3, int(sample_s / max(one, 1e-7)))
    blas, pk, pack, seq, copy = [], [], [], [], []
    W_copy = np.empty_like(W)
    for _ in range(repeats):
        C[...] = 0
        tb = _time_steps(trans, False, A, W, C, steps)[1] / steps
        C[...] = 0
        tp = _time_steps(trans, True, A, W, C, steps)[1] / steps
        # packing, and numpy copying the same W, each the best of 5 (warm caches, the allocator's pages reused)
        tpack = min(_time_steps(trans, True, A, W, C, 0)[0] for _ in range(5))
        tcopy = []
        for _ in range(5):
            t0 = time.perf_counter()
            np.copyto(W_copy, W)
            tcopy.append(time.perf_counter() - t0)
        blas.append(tb)
        pk.append(tp)
        pack.append(tpack)
        copy.append(min(tcopy))
        seq.append(T * tb / (tpack + T * tp))
    return {"blas": float(np.median(blas)), "packed": float(np.median(pk)), "pack": float(np.median(pack)),
            "copy": float(np.median(copy)),
            "step_ratio": float(np.median(np.array(blas) / np.array(pk))), "seq_ratio": float(np.median(seq)),
            "flops": 2.0 * B * N * K}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer shapes and repeats")
    ap.add_argument("--repeats", type=int_at_least(1), default=7)
    ap.add_argument("--sample-s", type=finite(0, inclusive=False), default=0.05)
    ap.add_argument("-T", type=int_at_least(1), default=100, help="sequence length for the amortized speed-up")
    args = ap.parse_args()
    batches = [1, 8, 32, 64]
    hiddens = [64, 128, 256, 512, 1024]
    dtypes = [np.float32, np.float64]
    if args.quick:
        batches, hiddens, args.repeats = [8, 32, 64], [128, 512], 3
    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, 1 thread, "
          f"{args.repeats} interleaved repeats")
    print(f"{'dtype':8} {'B':>3} {'H':>5} {'dir':4} {'blas us':>9} {'GF/s':>5} {'packed us':>10} {'GF/s':>5} "
          f"{'step x':>7} {'pack us':>9} {'copy us':>9} {f'T={args.T} x':>8}")
    with threadpool_limits(1):
        for dtype in dtypes:
            for B in batches:
                for H in hiddens:
                    for trans in (True, False):
                        r = measure(dtype, B, H, trans, args.T, args.repeats, args.sample_s)
                        print(f"{np.dtype(dtype).name:8} {B:3d} {H:5d} {'fwd' if trans else 'bwd':4} "
                              f"{r['blas'] * 1e6:9.1f} {r['flops'] / r['blas'] / 1e9:5.0f} "
                              f"{r['packed'] * 1e6:10.1f} {r['flops'] / r['packed'] / 1e9:5.0f} "
                              f"{r['step_ratio']:7.2f} {r['pack'] * 1e6:9.1f} {r['copy'] * 1e6:9.1f} {r['seq_ratio']:8.2f}",
                              flush=True)


if __name__ == "__main__":
    main()
