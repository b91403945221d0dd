"""Timing method: warm-up, calibration, interleaved repeats, robust statistics, paired ratios.

- Warm-up: each runner's first calls (the correctness check, then one calibration batch) are not
  timed into the results.
- Calibration: a sample is n calls in a tight loop, with n chosen so that a sample lasts about
  ``sample_s`` (so that timer resolution and loop overhead do not matter); a call longer than that
  is one sample by itself.
- Interleaving: repeat r times the contenders in a fixed order A B C D A B C D ..., so that slow
  drifts of the machine (other processes, frequency) hit every contender alike.
- Statistics: the median time per call and the interquartile range (IQR, q75 - q25) over the repeats.
- Ratios are paired: for each repeat r, time_other[r] / time_fastrnn[r] (neighbours in time); the
  reported ratio is the median of those, with its own IQR. Higher is better for fastrnn.
"""
from __future__ import annotations

import math
import threading
import time

import numpy as np


def stats(values):
    """Median, quartiles and IQR of a list of numbers (None when the list is empty)."""
    if len(values) == 0:
        return None
    a = np.asarray(values, dtype=np.float64)
    q25, med, q75 = np.percentile(a, [25, 50, 75])
    return {"median": float(med), "q25": float(q25), "q75": float(q75), "iqr": float(q75 - q25),
            "min": float(a.min()), "n": int(a.size)}


def paired_ratios(other, base):
    """Per-repeat ratios other[r] / base[r] and their statistics."""
    k = min(len(other), len(base))
    ratios = [other[i] / base[i] for i in range(k) if base[i] > 0]
    return ratios, stats(ratios)


def _elapsed(fn, n):
    """Seconds of ``fn(n)``: measured here, or as returned by ``fn`` when it is self-timed.

    A self-timed ``fn`` (``fn.self_timed`` true) runs the calls elsewhere (a contender's worker
    process, bench/contenders/worker.py) and returns the seconds measured there around the same tight
    loop, so that the pipe round trip is not counted.
    """
    if getattr(fn, "self_timed", False):
        return float(fn(n))
    t0 = time.perf_counter()
    fn(n)
    return time.perf_counter() - t0


def calibrate(run, sample_s):
    """Calls per sample so that one sample lasts about ``sample_s``; also warms the runner up.

    Returns (n, seconds_per_call_estimate).
    """
    n = 1
    t = _elapsed(run, 1)  # a warm-up call (the correctness check ran one before it)
    if t >= sample_s:
        return 1, t  # a slow call is one sample by itself; no need to spend more calls here
    while True:
        t = _elapsed(run, n)
        if t >= sample_s / 4 or n >= 1 << 20:
            break
        n *= 4 if t < sample_s / 64 else 2
    per_call = t / n
    n = max(1, int(math.ceil(sample_s / per_call))) if per_call < sample_s else 1
    return n, per_call


def choose_repeats(per_sample_s, budget_s, min_repeats, max_repeats):
    """As many repeats as fit the block's time budget, within [min_repeats, max_repeats]."""
    total = sum(per_sample_s)
    if total <= 0:
        return max_repeats
    return int(min(max_repeats, max(min_repeats, int(budget_s / total + 1e-9))))


def interleaved(runs, counts, repeats, errors=None, before_sample=None):
    """Time ``runs[name](counts[name])`` interleaved; return {name: [seconds per call, ...]}.

    With an ``errors`` dict, a contender whose run raises is dropped (its samples too) and the
    exception stored as ``errors[name]``; the others go on. Without it, the exception propagates.
    ``before_sample()``, when given, is called before each sample (outside the timed region): a pause,
    or a wait until the other contenders' idle threads stop spinning.
    """
    samples = {name: [] for name in runs}
    live = list(runs)
    for _ in range(repeats):
        for name in list(live):
            n = counts[name]
            if before_sample is not None:
                before_sample()
            try:
                samples[name].append(_elapsed(runs[name], n) / n)
            except Exception as exc:
                if errors is None:
                    raise
                errors[name] = exc
                live.remove(name)
                samples.pop(name)
    return samples


def concurrent_wall(workers, k):
    """Run each worker (its own state) in its own Python thread for k calls; return the wall time."""
    barrier = threading.Barrier(len(workers) + 1)
    errors = []

    def body(work):
        barrier.wait()
        try:
            work(k)
        except BaseException as exc:  # report in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(w,)) for w in workers]
    for th in threads:
        th.start()
    barrier.wait()
    t0 = time.perf_counter()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return wall
