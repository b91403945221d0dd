"""What every contender provides, and the thread limits applied around a block of measurements.

A contender module defines ``NAME``, ``unavailable()`` (None, or the reason it cannot run here) and
``build(problem, threads)``, which returns a ``Runner`` or raises ``Skip`` for a scenario it does
not cover (ONNX Runtime does not train).

A ``Runner`` has:
  run(n)      n timed calls in a tight loop (a step runner carries its state from call to call);
  outputs()   the results of one call from the problem's initial state, for the correctness check:
              step: h (, c); sequences: y, h_n (, c_n); training adds dx, dh0 (, dc0) and
              grad:<PyTorch parameter name> for every parameter;
  worker()    (sequence runners) a function k -> None that runs k calls on a private state,
              for the concurrent-serving scenario;
  label       what exactly is timed, e.g. "torch.nn.LSTMCell".
"""
from __future__ import annotations

import contextlib
import sys


class Skip(Exception):
    """This contender does not run this configuration; the message says why."""


class Runner:
    label = ""

    def __init__(self):
        self.info = {}

    def run(self, n):
        raise NotImplementedError

    def outputs(self):
        raise NotImplementedError

    def worker(self):
        raise Skip(f"{self.label} has no concurrent worker")


def runner_for(problem, step, seq, train=None, no_train="this contender does not train"):
    """The runner class for the problem's scenario, built on ``problem``; ``train=None`` skips training."""
    scenario = problem.cfg.scenario
    cls = {"step": step, "seq": seq, "infer": seq, "concurrent": seq, "train": train}.get(scenario, Skip)
    if cls is Skip:
        raise Skip(f"unknown scenario {scenario!r}")
    if cls is None:
        raise Skip(no_train)
    return cls(problem)


@contextlib.contextmanager
def thread_limits(threads):
    """Limit BLAS (numpy's and scipy's OpenBLAS) and PyTorch's intra-op pool to ``threads``.

    ONNX Runtime sessions take the count when they are built (intra_op_num_threads).
    """
    torch = sys.modules.get("torch")
    old_torch = torch.get_num_threads() if torch is not None else None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a bench requirement
        threadpool_limits = None
    ctx = threadpool_limits(limits=threads, user_api="blas") if threadpool_limits else contextlib.nullcontext()
    with ctx:
        if torch is not None:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(old_torch)


def preload_all(*modules):
    """Import these modules (and the BLAS libraries they load); names that fail are ignored."""
    import importlib

    for m in modules:
        try:
            importlib.import_module(m)
        except Exception:
            pass
