"""Training steps back to back, as a training loop runs them: fastrnn at 1 and 2 BLAS threads, interleaved.

The suite (bench/run.py) waits before each 2-thread sample until every library's idle threads have
stopped spinning; a training loop does not wait. This times forward + backward + zero_grad with no gap
between calls, so whatever a call leaves spinning (OpenBLAS's threads spin ~100 ms after their work)
lands on the next call's row blocks. The table gives the median time per step at each thread count and
their ratio (the 2-thread scaling). The products computed once per call run on fastrnn's own threads at
2 threads (fastrnn/_kernels/packed.pxd, own_parts) because of what this shows.

Run from the repository root:
    python bench/back_to_back.py [--quick]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import fastrnn as fr  # noqa: E402

CONFIGS = [("LSTM", 32, 128), ("GRU", 64, 256), ("RNN", 64, 512), ("LSTM", 64, 256)]


def steps_time(layer, x, dy, steps):
    t0 = time.perf_counter()
    for _ in range(steps):
        _, _, backprop = layer.begin_update(x)
        backprop(dy)
        layer.zero_grad()
    return (time.perf_counter() - t0) / steps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two configurations, fewer repeats")
    args = ap.parse_args(argv)
    repeats, steps = (3, 3) if args.quick else (7, 5)
    print("| layer | B | T | H | 1 thread ms | 2 threads ms | scaling |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind, B, H in CONFIGS[:2] if args.quick else CONFIGS:
        layer = getattr(fr, kind)(H, H, seed=0)
        x = np.random.default_rng(0).standard_normal((100, B, H)).astype(np.float32)
        dy = np.ones((100, B, H), np.float32)
        times = {1: [], 2: []}
        for _ in range(repeats):
            for n in (1, 2):
                with threadpool_limits(n, "blas"):
                    steps_time(layer, x, dy, 1)  # warm-up at this thread count
                    times[n].append(steps_time(layer, x, dy, steps))
        t1, t2 = np.median(times[1]), np.median(times[2])
        print(f"| {kind} | {B} | 100 | {H} | {t1 * 1e3:.1f} | {t2 * 1e3:.1f} | {t1 / t2:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
