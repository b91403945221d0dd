"""Concurrency (reliability.md case 38, property 4): the time loops run without the GIL, so several
threads may run inference on one model at once, and separate layers may train at once.

- 4 threads lined up by a Barrier give bitwise the results of sequential runs, with BLAS limited to
  one thread and at its default (OpenBLAS races show up only under concurrency);
- a Python thread keeps running while a long (T=20000) forward is inside the kernel;
- two threads training separate layers give the gradients of sequential training;
- the threads of a call's row blocks start on another CPU than the caller's.
"""
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import fastrnn as fr

N_THREADS = 4
VARIANTS = [
    ("LSTM", dict(num_layers=2, bidirectional=True)),
    ("LSTM", dict(proj_size=16)),
    ("GRU", dict(num_layers=2)),
    ("GRU", dict(reset_after=False, bidirectional=True)),
    ("RNN", dict(nonlinearity="relu", bidirectional=True)),
]
LAYERS = {"RNN": fr.RNN, "LSTM": fr.LSTM, "GRU": fr.GRU}


def run_threads(fn, args_list):
    """Run fn(*args) in one thread per entry, lined up by a Barrier; return results in order; re-raise."""
    barrier = threading.Barrier(len(args_list))
    results, errors = [None] * len(args_list), []

    def work(k, args):
        try:
            barrier.wait(timeout=30)
            results[k] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k, a)) for k, a in enumerate(args_list)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive(), "a worker thread hung"
    if errors:
        raise errors[0]
    return results


def flat(result):
    """The arrays of a call result (y, h) or (y, (h, c)), as bytes."""
    y, s = result
    parts = (y,) + (s if isinstance(s, tuple) else (s,))
    return [a.tobytes() for a in parts]


def blas_limits(limit):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    return threadpoolctl.threadpool_limits(limits=limit, user_api="blas")


@pytest.mark.parametrize("blas_threads", [1, None], ids=["blas=1", "blas=default"])
@pytest.mark.parametrize("mode,opts", VARIANTS, ids=[f"{m}-{'-'.join(o)}" for m, o in VARIANTS])
def test_concurrent_inference_on_one_model_is_bitwise_sequential(mode, opts, blas_threads):
    dtype = np.float32 if mode != "GRU" else np.float64
    layer = LAYERS[mode](32, 48, dtype=dtype, seed=0, **opts)
    rng = np.random.default_rng(1)
    LD = layer.num_layers * layer.num_directions
    jobs = []
    for k in range(N_THREADS):
        B = 1 if k == 0 else 3 + k  # different shapes per thread, and one batch-1 (GEMV) job
        x = rng.standard_normal((40, B, 32)).astype(dtype)
        h0 = rng.standard_normal((LD, B, layer.h_out)).astype(dtype)
        state = (h0, rng.standard_normal((LD, B, 48)).astype(dtype)) if mode == "LSTM" else h0
        lengths = rng.integers(1, 41, B) if k % 2 else None
        jobs.append((x, state, lengths))
    params_before = layer.param_set.data.tobytes()
    with blas_limits(blas_threads):
        expected = [flat(layer(*job)) for job in jobs]
        for _ in range(3):
            got = run_threads(lambda *job: flat(layer(*job)), jobs)
            assert got == expected
        # the same input from every thread at once
        same = run_threads(lambda *job: flat(layer(*job)), [jobs[1]] * N_THREADS)
        assert all(g == expected[1] for g in same)
    assert layer.param_set.data.tobytes() == params_before


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_concurrent_cell_steps_on_one_cell_are_bitwise_sequential(mode):
    cell = {"RNN": fr.RNNCell, "LSTM": fr.LSTMCell, "GRU": fr.GRUCell}[mode](16, 32, seed=0)
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((200, 1, 16)).astype(np.float32) for _ in range(N_THREADS)]

    def stream(x):
        h = None
        out = []
        for t in range(x.shape[0]):
            h = cell(x[t], h)
            out.append(h[0] if mode == "LSTM" else h)
        return np.stack(out).tobytes()

    expected = [stream(x) for x in xs]
    assert run_threads(stream, [(x,) for x in xs]) == expected


def test_the_gil_is_released_during_a_long_forward():
    """While the main thread is inside a T=20000 forward, a Python counter thread keeps advancing: its
    longest pause during the forward is a small part of the forward's duration."""
    layer = fr.LSTM(16, 64, seed=0)
    x = np.random.default_rng(3).standard_normal((20000, 2, 16)).astype(np.float32)
    stop = threading.Event()
    started = threading.Event()
    pauses = []  # (start, end) of every pause of the counter longer than 2 ms
    count = [0]

    def counter():
        last = time.perf_counter()
        started.set()
        while not stop.is_set():
            now = time.perf_counter()
            if now - last > 2e-3:
                pauses.append((last, now))
            last = now
            count[0] += 1

    thread = threading.Thread(target=counter)
    thread.start()
    started.wait(10)
    with blas_limits(1):
        c0 = count[0]
        t0 = time.perf_counter()
        layer(x)
        t1 = time.perf_counter()
        c1 = count[0]
    stop.set()
    thread.join(10)
    duration = t1 - t0
    overlapping = [e - s for s, e in pauses if e > t0 and s < t1]
    longest = max(overlapping, default=0.0)
    assert duration > 0.02, "the forward was too short to tell"
    assert c1 - c0 > 1000, f"the counter advanced only {c1 - c0} times during a {duration:.3f} s forward"
    assert longest < 0.5 * duration, f"the counter paused {longest:.3f} s of a {duration:.3f} s forward"


@pytest.mark.parametrize("mode,opts", VARIANTS[:3], ids=["LSTM-2-bidir", "LSTM-proj", "GRU-2"])
def test_two_threads_training_separate_layers_match_sequential(mode, opts):
    def make(seed):
        return LAYERS[mode](32, 48, dtype=np.float64, seed=seed, **opts)

    rng = np.random.default_rng(4)
    xs = [rng.standard_normal((30, 4, 32)) for _ in range(2)]
    lengths = [None, np.array([30, 7, 19, 1])]

    def train(layer, x, lengths):
        for _ in range(3):  # gradients accumulate over three steps
            y, _, backprop = layer.begin_update(x, None, lengths)
            dx, _ = backprop(np.cos(y))
        return dx.tobytes(), layer.param_set.grad.tobytes()

    for limit in (1, None):
        with blas_limits(limit):
            expected = [train(make(k), xs[k], lengths[k]) for k in range(2)]
            got = run_threads(train, [(make(k), xs[k], lengths[k]) for k in range(2)])
        assert got == expected


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs Linux and at least two CPUs")
def test_row_blocks_start_on_another_cpu_than_the_caller():
    """parts.h starts the threads of a call's row blocks off the caller's CPU. Without that, a CPU another
    process has just used looks busy to the scheduler, and the new thread lands on the caller's CPU (9 of
    10 calls here when the check was written); so the other CPUs are kept busy for 50 ms before each call."""
    from fastrnn._kernels.packed_hooks import _part_cpus

    allowed = os.sched_getaffinity(0)
    same = 0
    for _ in range(10):
        here = _part_cpus(1)[0]
        others = allowed - {here}
        spin = "import time\nt = time.perf_counter()\nwhile time.perf_counter() - t < 0.05:\n    pass\n"
        subprocess.run([sys.executable, "-c", spin], check=True, preexec_fn=lambda: os.sched_setaffinity(0, others))
        cpus = _part_cpus(2)
        assert all(c in allowed for c in cpus)
        same += cpus[0] == cpus[1]
    assert same <= 1, f"both row blocks ran on one CPU in {same} of 10 calls"
    with pytest.raises(ValueError, match="parts must be in"):
        _part_cpus(0)
