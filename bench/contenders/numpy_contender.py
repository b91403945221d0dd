"""NumPy: the plain implementation in bench/numpy_rnn.py (hoisted input GEMM, per-step matmul)."""
from __future__ import annotations

import numpy as np

from .. import numpy_rnn
from .base import Runner, preload_all, runner_for

NAME = "numpy"


def preload():
    preload_all(*("numpy",))


def unavailable():
    return None


class StepRunner(Runner):
    label = "numpy step"

    def __init__(self, problem):
        super().__init__()
        self.problem = problem
        self.w = numpy_rnn.layer_weights(problem.params)
        self.lstm = problem.cell == "lstm"
        self.x = problem.x[0].copy()
        self.h, self.c = problem.h0.copy(), (problem.c0.copy() if self.lstm else None)

    def run(self, n):
        step, cell, w, x = numpy_rnn.step, self.problem.cell, self.w, self.x
        if self.lstm:
            h, c = self.h, self.c
            for _ in range(n):
                h, c = step(cell, w, x, h, c)
            self.h, self.c = h, c
        else:
            h = self.h
            for _ in range(n):
                h = step(cell, w, x, h)
            self.h = h

    def outputs(self):
        p = self.problem
        if self.lstm:
            h, c = numpy_rnn.step(p.cell, self.w, self.x, p.h0, p.c0)
            return {"h": h, "c": c}
        return {"h": numpy_rnn.step(p.cell, self.w, self.x, p.h0)}


class SeqRunner(Runner):
    label = "numpy sequence"

    def __init__(self, problem):
        super().__init__()
        self.problem = problem
        self.w = numpy_rnn.layer_weights(problem.params)

    def run(self, n):
        p, w = self.problem, self.w
        for _ in range(n):
            numpy_rnn.forward(p.cell, w, p.x, p.h0, p.c0)

    def outputs(self):
        p = self.problem
        y, s = numpy_rnn.forward(p.cell, self.w, p.x, p.h0, p.c0)
        if p.cell == "lstm":
            return {"y": y, "h_n": s[0], "c_n": s[1]}
        return {"y": y, "h_n": s}

    def worker(self):
        p, w = self.problem, self.w
        x = p.x.copy()
        box = [(p.h0.copy(), p.c0.copy() if p.c0 is not None else None)]

        def work(k):
            h, c = box[0]
            for _ in range(k):
                _, s = numpy_rnn.forward(p.cell, w, x, h, c)
                h, c = s if p.cell == "lstm" else (s, None)
            box[0] = (h, c)

        return work


class TrainRunner(Runner):
    label = "numpy forward+backward"

    def __init__(self, problem):
        super().__init__()
        self.problem = problem
        self.w = numpy_rnn.layer_weights(problem.params)

    def _step(self):
        p = self.problem
        y, s, cache = numpy_rnn.forward(p.cell, self.w, p.x, p.h0, p.c0, train=True)
        return y, s, numpy_rnn.backward(cache, p.dy)

    def run(self, n):
        for _ in range(n):
            self._step()

    def outputs(self):
        y, s, (dx, dh0, dc0, grads) = self._step()
        out = {"y": y, "dx": dx, "dh0": dh0}
        if self.problem.cell == "lstm":
            out["h_n"], out["c_n"], out["dc0"] = s[0], s[1], dc0
        else:
            out["h_n"] = s
        out.update({"grad:" + k: np.asarray(v) for k, v in grads.items()})
        return out


def build(problem, threads):
    return runner_for(problem, StepRunner, SeqRunner, TrainRunner)
