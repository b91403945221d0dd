"""The layers' compiled inference path against their general (validating) path, toggled in one process.

A layer's ``__call__`` sends arrays that need no conversion straight to the kernels' ``run``, one call per
layer (fastrnn/layers/recurrent.py, ``_fast_call``); everything else is validated and converted first.
This times both paths on the same layer, alternating pair by pair, at 1 BLAS thread: one step (T = 1,
B = 1) of stacked LSTM layers with the state carried, and ``LanguageModel.generate`` (one step per
character) with 2 LSTM layers, and one batched GRU call (B = 64, T = 100, H = 512: the fast path's 40 MiB
scratch, which it allocates itself, against the general path's numpy buffers). The table gives the
medians and the median paired ratio general / fast.

Run from the repository root:
    python bench/fast_path.py [--quick]
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


def stacked_step(H, layers, calls):
    """A function timing ``calls`` steps of an L-layer LSTM (T = 1, B = 1), and the layer to toggle."""
    lstm = fr.LSTM(H, H, num_layers=layers, dtype=np.float32, seed=0)
    x = np.zeros((1, 1, H), np.float32)
    state = (np.zeros((layers, 1, H), np.float32), np.zeros((layers, 1, H), np.float32))

    def run():
        s = state
        t0 = time.perf_counter()
        for _ in range(calls):
            _, s = lstm(x, s)
        return (time.perf_counter() - t0) / calls
    return run, lstm


def generation(H, chars):
    """A function timing ``LanguageModel.generate`` per character (2 LSTM layers), and the layer to toggle."""
    model = fr.LanguageModel(65, hidden_size=H, num_layers=2, seed=0)

    def run():
        t0 = time.perf_counter()
        model.generate([1, 2, 3], chars, seed=0)
        return (time.perf_counter() - t0) / chars
    return run, model.rnn


def batched_gru(B, T, H):
    """A function timing one GRU inference call over x (T, B, H), and the layer to toggle."""
    gru = fr.GRU(H, H, dtype=np.float32, seed=0)
    x = np.random.default_rng(0).standard_normal((T, B, H)).astype(np.float32)
    h0 = np.zeros((1, B, H), np.float32)

    def run():
        t0 = time.perf_counter()
        gru(x, h0)
        return time.perf_counter() - t0
    return run, gru


def paired(run, layer, pairs):
    """Median seconds on the fast path and on the general one, and the median paired ratio general / fast."""
    times = {True: [], False: []}
    run()
    for _ in range(pairs):
        for fast in (True, False):
            layer._fast = fast
            times[fast].append(run())
    layer._fast = True
    ratio = np.median(np.array(times[False]) / np.array(times[True]))
    return np.median(times[True]), np.median(times[False]), ratio


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer sizes and pairs")
    args = ap.parse_args(argv)
    pairs, sizes = (5, [128]) if args.quick else (20, [64, 128, 256])
    cases = []
    for H in sizes:
        cases += [(f"LSTM step, 1 layer, H={H}", *stacked_step(H, 1, 2000)),
                  (f"LSTM step, 2 layers, H={H}", *stacked_step(H, 2, 2000)),
                  (f"generate, 2 LSTM layers, H={H}", *generation(H, 200))]
    cases.append(("GRU inference, B=64, T=100, H=512", *batched_gru(64, 100, 512)))
    print("| case | fast path us | general path us | general / fast |")
    print("| --- | ---: | ---: | ---: |")
    with threadpool_limits(1, "blas"):
        for name, run, layer in cases:
            fast, general, ratio = paired(run, layer, pairs)
            print(f"| {name} | {fast * 1e6:.1f} | {general * 1e6:.1f} | {ratio:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
