"""fastrnn: fr.RNN / LSTM / GRU for sequences and training, fr.RNNCell / LSTMCell / GRUCell for the step.

The layers load the problem's PyTorch-named arrays with ``load_state_dict`` (the same numbers as
PyTorch's ``state_dict`` converted to numpy). A training step is
``y, state_n, backprop = layer.begin_update(x, state0)``; ``dx, dstate0 = backprop(dy)``;
``layer.zero_grad()``. BLAS threads are set by the harness with threadpoolctl.
"""
from __future__ import annotations

import numpy as np

from .base import Runner, preload_all, runner_for

NAME = "fastrnn"


def preload():
    preload_all(*("numpy", "scipy.linalg", "scipy.linalg.cython_blas", "fastrnn"))


def unavailable():
    try:
        import fastrnn

        fastrnn.LSTM, fastrnn.LSTMCell  # noqa: B018 - the names the benchmark needs
    except Exception as exc:
        return f"fastrnn not importable ({exc.__class__.__name__}: {exc})"
    return None


def _fr():
    import fastrnn

    return fastrnn


def layer(problem):
    fr, cfg = _fr(), problem.cfg
    cls = {"rnn": fr.RNN, "lstm": fr.LSTM, "gru": fr.GRU}[cfg.cell]
    m = cls(cfg.I, cfg.H, dtype=np.float32)
    m.load_state_dict({k: v.copy() for k, v in problem.params.items()})
    return m


def cell(problem):
    fr, cfg = _fr(), problem.cfg
    cls = {"rnn": fr.RNNCell, "lstm": fr.LSTMCell, "gru": fr.GRUCell}[cfg.cell]
    m = cls(cfg.I, cfg.H, dtype=np.float32)
    m.load_state_dict({k: v.copy() for k, v in problem.cell_params().items()})
    return m


class StepRunner(Runner):
    def __init__(self, problem):
        super().__init__()
        self.problem = problem
        self.m = cell(problem)
        self.label = f"fastrnn.{type(self.m).__name__}"
        self.lstm = problem.cell == "lstm"
        self.x = problem.x[0].copy()
        self.h = problem.h0.copy()
        self.c = problem.c0.copy() if self.lstm else None

    def run(self, n):
        m, x = self.m, self.x
        if self.lstm:
            h, c = self.h, self.c
            for _ in range(n):
                h, c = m(x, (h, c))
            self.h, self.c = h, c
        else:
            h = self.h
            for _ in range(n):
                h = m(x, h)
            self.h = h

    def outputs(self):
        p = self.problem
        if self.lstm:
            h, c = self.m(self.x, (p.h0.copy(), p.c0.copy()))
            return {"h": np.array(h), "c": np.array(c)}
        return {"h": np.array(self.m(self.x, p.h0.copy()))}


def _state0(problem):
    h0 = problem.h0[None].copy()
    return (h0, problem.c0[None].copy()) if problem.cell == "lstm" else h0


class SeqRunner(Runner):
    def __init__(self, problem):
        super().__init__()
        self.problem = problem
        self.m = layer(problem)
        self.label = f"fastrnn.{type(self.m).__name__}"
        self.x = problem.x.copy()
        self.state = _state0(problem)

    def run(self, n):
        m, x, state = self.m, self.x, self.state
        for _ in range(n):
            m(x, state)

    def outputs(self):
        y, s = self.m(self.x, self.state)
        out = {"y": np.array(y)}
        if self.problem.cell == "lstm":
            out["h_n"], out["c_n"] = np.array(s[0][0]), np.array(s[1][0])
        else:
            out["h_n"] = np.array(s[0])
        return out

    def worker(self):
        m, x = self.m, self.x.copy()
        box = [_state0(self.problem)]

        def work(k):
            state = box[0]
            for _ in range(k):
                _, state = m(x, state)
            box[0] = state

        return work


class TrainRunner(Runner):
    def __init__(self, problem):
        super().__init__()
        self.problem = problem
        self.m = layer(problem)
        self.label = f"fastrnn.{type(self.m).__name__} begin_update+backprop"
        self.x = problem.x.copy()
        self.state0 = _state0(problem)
        self.dy = problem.dy.copy()

    def run(self, n):
        m, x, state0, dy = self.m, self.x, self.state0, self.dy
        for _ in range(n):
            y, state_n, backprop = m.begin_update(x, state0)
            dx, dstate0 = backprop(dy)
            m.zero_grad()

    def outputs(self):
        m = self.m
        m.zero_grad()
        y, s, backprop = m.begin_update(self.x, self.state0)
        dx, ds0 = backprop(self.dy)
        out = {"y": np.array(y), "dx": np.array(dx)}
        if self.problem.cell == "lstm":
            out["h_n"], out["c_n"] = np.array(s[0][0]), np.array(s[1][0])
            out["dh0"], out["dc0"] = np.array(ds0[0][0]), np.array(ds0[1][0])
        else:
            out["h_n"], out["dh0"] = np.array(s[0]), np.array(ds0[0])
        out.update({"grad:" + k: np.array(v) for k, v in m.grads.items()})
        m.zero_grad()
        return out


def build(problem, threads):
    return runner_for(problem, StepRunner, SeqRunner, TrainRunner)
