"""PyTorch: torch.nn.RNN / LSTM / GRU for sequences and training, torch.nn.*Cell for the service step.

Inference runs under ``torch.inference_mode()`` (entered once around the timed loop, and once per
worker thread). A training step is forward, ``y.backward(dy)`` (the gradient of sum(y * dy)) with
x, h0 (and c0) requiring grad so that PyTorch computes the same dx and dstate0 as fastrnn, then
``zero_grad()`` and clearing the input grads.
"""
from __future__ import annotations

from .base import Runner, preload_all, runner_for

NAME = "torch"


def preload():
    preload_all(*("torch",))


def unavailable():
    try:
        import torch  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install
        return f"torch not importable ({exc.__class__.__name__}: {exc})"
    return None


def _module(problem, cell_level):
    import torch

    cfg = problem.cfg
    if cell_level:
        cls = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[cfg.cell]
        params = problem.cell_params()
    else:
        cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cfg.cell]
        params = problem.params
    m = cls(cfg.I, cfg.H)
    m.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in params.items()})
    return m


def layer_module(problem):
    """The loaded torch.nn.RNN/LSTM/GRU (also used by the ONNX Runtime contender for export)."""
    return _module(problem, cell_level=False)


def cell_module(problem):
    return _module(problem, cell_level=True)


class StepRunner(Runner):
    def __init__(self, problem):
        super().__init__()
        import torch

        self.torch = torch
        self.problem = problem
        self.m = cell_module(problem)
        self.label = f"torch.nn.{type(self.m).__name__}"
        self.lstm = problem.cell == "lstm"
        self.x = torch.from_numpy(problem.x[0].copy())
        self.h = torch.from_numpy(problem.h0.copy())
        self.c = torch.from_numpy(problem.c0.copy()) if self.lstm else None

    def run(self, n):
        m, x = self.m, self.x
        with self.torch.inference_mode():
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
        torch, p = self.torch, self.problem
        with torch.inference_mode():
            if self.lstm:
                h, c = self.m(self.x, (torch.from_numpy(p.h0), torch.from_numpy(p.c0)))
                return {"h": h.numpy().copy(), "c": c.numpy().copy()}
            return {"h": self.m(self.x, torch.from_numpy(p.h0)).numpy().copy()}


class SeqRunner(Runner):
    def __init__(self, problem):
        super().__init__()
        import torch

        self.torch = torch
        self.problem = problem
        self.m = layer_module(problem)
        self.label = f"torch.nn.{type(self.m).__name__}"
        self.lstm = problem.cell == "lstm"
        self.x = torch.from_numpy(problem.x)
        self.state = self._state0()

    def _state0(self):
        torch, p = self.torch, self.problem
        h0 = torch.from_numpy(p.h0[None].copy())
        return (h0, torch.from_numpy(p.c0[None].copy())) if self.lstm else h0

    def run(self, n):
        m, x, state = self.m, self.x, self.state
        with self.torch.inference_mode():
            for _ in range(n):
                y, _ = m(x, state)

    def outputs(self):
        with self.torch.inference_mode():
            y, s = self.m(self.x, self.state)
        out = {"y": y.numpy().copy()}
        if self.lstm:
            out["h_n"], out["c_n"] = s[0][0].numpy().copy(), s[1][0].numpy().copy()
        else:
            out["h_n"] = s[0].numpy().copy()
        return out

    def worker(self):
        torch, m = self.torch, self.m
        x = self.x.clone()
        box = [self._state0()]

        def work(k):
            with torch.inference_mode():
                state = box[0]
                for _ in range(k):
                    y, state = m(x, state)
                box[0] = state

        return work


class TrainRunner(Runner):
    def __init__(self, problem):
        super().__init__()
        import torch

        self.torch = torch
        self.problem = problem
        self.m = layer_module(problem)
        self.label = f"torch.nn.{type(self.m).__name__} forward+backward"
        self.lstm = problem.cell == "lstm"
        self.x = torch.from_numpy(problem.x.copy()).requires_grad_(True)
        self.h0 = torch.from_numpy(problem.h0[None].copy()).requires_grad_(True)
        self.c0 = torch.from_numpy(problem.c0[None].copy()).requires_grad_(True) if self.lstm else None
        self.dy = torch.from_numpy(problem.dy)

    def _step(self):
        state = (self.h0, self.c0) if self.lstm else self.h0
        y, state_n = self.m(self.x, state)
        y.backward(self.dy)
        return y, state_n

    def _clear(self):
        self.m.zero_grad(set_to_none=True)
        self.x.grad = self.h0.grad = None
        if self.lstm:
            self.c0.grad = None

    def run(self, n):
        for _ in range(n):
            self._step()
            self._clear()

    def outputs(self):
        self._clear()
        y, s = self._step()
        out = {"y": y.detach().numpy().copy(), "dx": self.x.grad.numpy().copy(),
               "dh0": self.h0.grad[0].numpy().copy()}
        if self.lstm:
            out["h_n"], out["c_n"] = s[0][0].detach().numpy().copy(), s[1][0].detach().numpy().copy()
            out["dc0"] = self.c0.grad[0].numpy().copy()
        else:
            out["h_n"] = s[0].detach().numpy().copy()
        for name, p in self.m.named_parameters():
            out["grad:" + name] = p.grad.numpy().copy()
        self._clear()
        return out


def build(problem, threads):
    return runner_for(problem, StepRunner, SeqRunner, TrainRunner)
