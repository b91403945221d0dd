"""One row times W^T, the batch-1 step's product: fastrnn's kernel (fastrnn/_kernels/gemv.h) against
BLAS's GEMV (scipy's OpenBLAS), W (4H, H) float32, 1 BLAS thread. W starts on a 64-byte boundary, as
the layers' parameter buffers do (fastrnn/_params.py); --offset B shifts it by B bytes. The last
columns give the time to only read W once (gemv.h's gemv_read: its sum with four accumulators), the
floor of any one-row product over W, and the bandwidth that is: W of 64-256 KiB stays in L2 between
products, 1 MiB is L2's size, 4 MiB comes from L3.

The two are interleaved, each sample repeating the product on the same W and x; the table gives the
median time per product and the median of the paired ratios (BLAS / gemv.h, so > 1 means gemv.h is
faster). These are the figures quoted in gemv.h.

Run from the repository root:
    python bench/one_row.py [--quick]
"""
import argparse
import sys
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.openblas_env import unpin_openblas  # noqa: E402
from fastrnn._kernels.blas import _time_one_row, _time_read  # noqa: E402


def aligned(shape, offset_bytes=0):
    """A float32 array of `shape` whose data starts `offset_bytes` past a 64-byte boundary."""
    n = int(np.prod(shape))
    raw = np.empty(n + 32, np.float32)
    start = (-raw.ctypes.data % 64 + offset_bytes) // 4
    return raw[start:start + n].reshape(shape)


def measure(H, samples, sample_s=0.02, offset_bytes=0):
    rng = np.random.default_rng(H)
    W = aligned((4 * H, H), offset_bytes)
    W[...] = rng.standard_normal((4 * H, H))
    x = rng.standard_normal(H).astype(np.float32)
    y = np.empty(4 * H, np.float32)
    one = _time_one_row(True, W, x, y, 100) / 100
    repeats = max(10, int(sample_s / one))
    ours, blas, read = [], [], []
    for _ in range(samples):
        ours.append(_time_one_row(True, W, x, y, repeats) / repeats)
        blas.append(_time_one_row(False, W, x, y, repeats) / repeats)
        read.append(_time_read(W, repeats)[0] / repeats)
    return (np.median(ours), np.median(blas), np.median(np.array(blas) / np.array(ours)), np.median(read))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer samples")
    ap.add_argument("--offset", type=int, default=0, choices=(0, 16, 32, 48), help="bytes past a 64-byte boundary")
    ap.add_argument("--keep-openblas-env", action="store_true", help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE")
    args = ap.parse_args(argv)
    if not args.keep_openblas_env:
        unpin_openblas(Path(__file__).resolve(), sys.argv[1:])
    print("| H | W (4H x H) | gemv.h us | BLAS GEMV us | BLAS / gemv.h | read W us | read GB/s | gemv.h / read |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    with threadpool_limits(1, "blas"):
        for H in (64, 128, 256, 512):
            ours, blas, ratio, read = measure(H, 5 if args.quick else 21, offset_bytes=args.offset)
            nbytes = 16 * H * H
            print(f"| {H} | {nbytes // 1024} KiB | {ours * 1e6:.2f} | {blas * 1e6:.2f} | {ratio:.2f} | {read * 1e6:.2f} | "
                  f"{nbytes / read / 1e9:.0f} | {ours / read:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
