"""Peak extra memory of one training step, measured in a fresh subprocess per (contender, config).

Method (the same for every contender, so that PyTorch's own allocator is measured too):
  1. a new Python process runs two training steps of a tiny problem (T=2, B=1, H=4) of the same
     contender, so that one-time library set-up (thread pools, JIT kernels, the autograd engine) is
     not counted, then builds the contender's training runner on the problem (weights, x, dy,
     state) with one BLAS / intra-op thread, with glibc's mmap threshold pinned at 64 KiB
     (MALLOC_MMAP_THRESHOLD_), so that large buffers come from mmap and go back to the OS when freed;
  2. baseline = VmRSS after set-up; the peak-RSS mark is reset (writing 5 to /proc/self/clear_refs);
  3. two training steps run (forward + backward + parameter gradients, gradients cleared);
     first = VmHWM - baseline: everything the step needs beyond the model and the data, including
     workspaces kept between calls, PyTorch's lazily allocated .grad tensors and one-time set-up;
  4. the mark is reset again and a third step runs: steady = VmHWM - VmRSS before it.
  tracemalloc runs during steps 3 and 4 as a cross-check: it sees NumPy's buffers (so fastrnn's and
  the NumPy contender's) but not PyTorch's allocator or raw malloc in compiled code.
Run as ``python -m bench.memory --contender torch --cell lstm --B 64 --T 100 --H 512``; prints JSON.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _status_kib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def probe(contender, cell, B, T, H, threads=1):
    """Measure in this process (call it in a fresh one); returns a dict of bytes."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from bench.contenders import load
    from bench.contenders.base import thread_limits
    from bench.problem import make_problem
    from bench.scenarios import Config

    usable, skipped = load([contender])
    if contender in skipped:
        return {"skipped": skipped[contender]}
    cfg = Config("train", cell, B, T, H, H)
    problem = make_problem(cfg)
    with thread_limits(threads):
        # library warm-up on a tiny problem (thread pools, JIT kernels, autograd engine), so that
        # one-time set-up of the library is not counted as memory of this step
        tiny = usable[contender].build(make_problem(Config("train", cell, 1, 2, 4, 4)), threads)
        tiny.run(2)
        del tiny
        runner = usable[contender].build(problem, threads)
        gc.collect()
        base = _status_kib("VmRSS")
        if not _reset_peak():
            return {"skipped": "cannot reset the peak-RSS mark (/proc/self/clear_refs)"}
        runner.run(1)
        runner.run(1)
        first = _status_kib("VmHWM") - base
        gc.collect()
        before = _status_kib("VmRSS")
        _reset_peak()
        tracemalloc.start()
        runner.run(1)
        traced_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        steady = _status_kib("VmHWM") - before
    return {"first_bytes": first * 1024, "steady_bytes": steady * 1024,
            "tracemalloc_peak_bytes": traced_peak, "baseline_rss_bytes": base * 1024,
            "label": runner.label}


def measure(contender, cfg, timeout=600):
    """Run ``probe`` in a fresh subprocess and return its dict (or {"skipped": reason})."""
    env = dict(os.environ)
    env.update({"MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                "PYTHONWARNINGS": "ignore"})
    cmd = [sys.executable, "-m", "bench.memory", "--contender", contender, "--cell", cfg.cell,
           "--B", str(cfg.B), "--T", str(cfg.T), "--H", str(cfg.H)]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"skipped": f"memory probe timed out after {timeout} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"skipped": f"memory probe failed (exit {proc.returncode}): {tail[0]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contender", required=True)
    ap.add_argument("--cell", required=True, choices=("rnn", "lstm", "gru"))
    ap.add_argument("--B", type=int, required=True)
    ap.add_argument("--T", type=int, required=True)
    ap.add_argument("--H", type=int, required=True)
    a = ap.parse_args(argv)
    print(json.dumps(probe(a.contender, a.cell, a.B, a.T, a.H)))


if __name__ == "__main__":
    main()
