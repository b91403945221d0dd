"""``python -m fastrnn demo``: a one-minute tour on a fresh install.

1. An LSTM's output and gradients are compared with a plain-numpy loop (float64).
2. Batch-1 streaming and batched inference are timed (medians of repeated calls).
3. A small GRU learns to continue a noisy sine wave, trained by hand with SGD on the flat buffer.
"""
from __future__ import annotations

import time

import numpy as np

from .layers.cells import LSTMCell
from .layers.recurrent import GRU, LSTM


def add_arguments(parser):
    parser.add_argument("--steps", type=int, default=300, help="training steps for the sine-wave model (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def _numpy_lstm(params, x, h, c):
    """The textbook LSTM loop in numpy, for the check."""
    W_ih, W_hh = params["weight_ih_l0"], params["weight_hh_l0"]
    b = params["bias_ih_l0"] + params["bias_hh_l0"]
    H = W_hh.shape[1]
    ys = []
    for x_t in x:
        z = x_t @ W_ih.T + h @ W_hh.T + b
        i, f, g, o = (1 / (1 + np.exp(-z[:, :H])), 1 / (1 + np.exp(-z[:, H:2 * H])), np.tanh(z[:, 2 * H:3 * H]),
                      1 / (1 + np.exp(-z[:, 3 * H:])))
        c = f * c + i * g
        h = o * np.tanh(c)
        ys.append(h)
    return np.stack(ys), h, c


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def run(args):
    rng = np.random.default_rng(args.seed)
    # 1. correctness
    lstm = LSTM(8, 16, dtype=np.float64, seed=args.seed)
    x = rng.standard_normal((20, 4, 8))
    y, (h_n, c_n) = lstm(x)
    y_ref, h_ref, c_ref = _numpy_lstm(lstm.params, x, np.zeros((4, 16)), np.zeros((4, 16)))
    err = max(np.abs(y - y_ref).max(), np.abs(h_n[0] - h_ref).max(), np.abs(c_n[0] - c_ref).max())
    print(f"[1] LSTM (T=20, B=4, H=16, float64) vs a numpy loop: max |difference| = {err:.1e}")
    if not err < 1e-12:
        print("    MISMATCH: the compiled kernels disagree with numpy")
        return 1

    # 2. speed
    cell = LSTMCell(128, 128, seed=args.seed)
    xs, hc = np.zeros((1, 128), np.float32), (np.zeros((1, 128), np.float32), np.zeros((1, 128), np.float32))
    cell(xs, hc)
    step = _median_time(lambda: [cell(xs, hc) for _ in range(1000)], 5) / 1000
    big = LSTM(128, 128, seed=args.seed)
    xb = rng.standard_normal((100, 32, 128)).astype(np.float32)
    big(xb)
    seq = _median_time(lambda: big(xb), 5)
    flops = 2 * 100 * 32 * 4 * 128 * 256
    print(f"[2] LSTMCell step (B=1, H=128, float32): {step * 1e6:.1f} us;  "
          f"LSTM T=100 B=32 H=128: {seq * 1e3:.1f} ms ({flops / seq / 1e9:.1f} GFLOP/s)")

    # 3. learning: predict the next value of a noisy sine wave
    gru = GRU(1, 32, seed=args.seed, dtype=np.float64)
    w_out = rng.standard_normal(32) * 0.1
    t = np.arange(0, 64 * 0.2, 0.2)
    lr, losses = 0.05, []
    for step_i in range(args.steps):
        phase = rng.uniform(0, 2 * np.pi, 16)
        series = np.sin(t[:, None] + phase[None, :]) + 0.05 * rng.standard_normal((len(t), 16))
        x_in, target = series[:-1, :, None], series[1:]
        gru.zero_grad()
        y, _, backprop = gru.begin_update(x_in)
        pred = y @ w_out
        err_t = pred - target
        losses.append(float(np.mean(err_t ** 2)))
        dpred = 2 * err_t / err_t.size
        backprop(dpred[:, :, None] * w_out)
        w_out -= lr * np.einsum("tb,tbh->h", dpred, y)
        gru.param_set.data[...] -= lr * 20 * gru.param_set.grad
        gru.param_set.bump()
    print(f"[3] GRU on a noisy sine wave: mean squared error {np.mean(losses[:10]):.3f} (first 10 steps) -> "
          f"{np.mean(losses[-10:]):.3f} (last 10 of {args.steps})")
    return 0
