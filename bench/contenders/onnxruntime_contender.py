"""ONNX Runtime: the same PyTorch modules exported with torch.onnx.export, run by InferenceSession.

Sequences: the loaded torch.nn.RNN/LSTM/GRU is exported (TorchScript exporter, opset 17) with inputs
x, h0 (, c0) and outputs y, h_n (, c_n); ONNX Runtime runs it with its fused RNN/LSTM/GRU operator.
Service step: two exports are tried, the torch.nn.*Cell (a small Gemm/activation graph) and the layer
at T=1 with the state in and out (the fused operator), and the faster of the two on this machine is
kept (``info["variant"]`` says which), so the comparison is against ONNX Runtime at its best.
Sessions use intra_op_num_threads = the scenario's thread count, inter_op_num_threads = 1 and all
graph optimisations. ONNX Runtime does not train, so it sits out the training scenarios.
"""
from __future__ import annotations

import io
import time
import warnings

import numpy as np

from .base import Runner, preload_all, runner_for

NAME = "onnxruntime"


def preload():
    preload_all(*("torch", "onnx", "onnxruntime"))


def unavailable():
    try:
        import onnxruntime  # noqa: F401
    except Exception as exc:
        return f"onnxruntime not importable ({exc.__class__.__name__}: {exc})"
    try:
        import torch  # noqa: F401
        import onnx  # noqa: F401
    except Exception as exc:
        return f"the ONNX models are exported from PyTorch, and that needs torch and onnx ({exc})"
    return None


def _export(module, args, input_names, output_names):
    import torch

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, buf, dynamo=False, opset_version=17,
                          input_names=input_names, output_names=output_names)
    return buf.getvalue()


def _session(model_bytes, threads):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(model_bytes, sess_options=opts, providers=["CPUExecutionProvider"])


def _layer_session(problem, threads, T):
    """Session of the exported layer for sequences of length T (B as in the problem)."""
    import torch

    from .torch_contender import layer_module

    m = layer_module(problem)
    lstm = problem.cell == "lstm"
    x = torch.from_numpy(problem.x[:T].copy())
    h0 = torch.from_numpy(problem.h0[None].copy())
    if lstm:
        c0 = torch.from_numpy(problem.c0[None].copy())
        model = _export(m, (x, (h0, c0)), ["x", "h0", "c0"], ["y", "h_n", "c_n"])
    else:
        model = _export(m, (x, h0), ["x", "h0"], ["y", "h_n"])
    return _session(model, threads)


def _cell_session(problem, threads):
    import torch

    from .torch_contender import cell_module

    m = cell_module(problem)
    x = torch.from_numpy(problem.x[0].copy())
    h0 = torch.from_numpy(problem.h0.copy())
    if problem.cell == "lstm":
        c0 = torch.from_numpy(problem.c0.copy())
        model = _export(m, (x, (h0, c0)), ["x", "h0", "c0"], ["h", "c"])
    else:
        model = _export(m, (x, h0), ["x", "h0"], ["h"])
    return _session(model, threads)


class StepRunner(Runner):
    """One step per call with the state carried; the faster of the cell and the T=1 layer export."""

    def __init__(self, problem, threads):
        super().__init__()
        self.problem = problem
        self.lstm = problem.cell == "lstm"
        p = problem
        candidates = {
            "cell": (_cell_session(p, threads), p.x[0].copy(), lambda a: a),
            "layer T=1": (_layer_session(p, threads, 1), p.x[:1].copy(), lambda a: a[None]),
        }
        best, best_t, times = None, np.inf, {}
        for name, (sess, x, shape_state) in candidates.items():
            self._use(sess, x, shape_state)
            self.run(50)
            t = min(self._time(200) for _ in range(3))
            times[name] = t
            if t < best_t:
                best, best_t = name, t
        self._use(*candidates[best])
        self.variant = best
        self.info["variant"] = best
        self.info["variant_times_us"] = {k: round(v * 1e6, 2) for k, v in times.items()}
        self.label = f"onnxruntime ({best})"

    def _use(self, sess, x, shape_state):
        self.sess, self.xin, self.shape_state = sess, x, shape_state
        self.h = shape_state(self.problem.h0.copy())
        self.c = shape_state(self.problem.c0.copy()) if self.lstm else None

    def _time(self, n):
        t0 = time.perf_counter()
        self.run(n)
        return (time.perf_counter() - t0) / n

    def run(self, n):
        run, x = self.sess.run, self.xin
        if self.lstm:
            h, c = self.h, self.c
            for _ in range(n):
                out = run(None, {"x": x, "h0": h, "c0": c})
                h, c = out[-2], out[-1]
            self.h, self.c = h, c
        else:
            h = self.h
            for _ in range(n):
                h = run(None, {"x": x, "h0": h})[-1]
            self.h = h

    def outputs(self):
        p, s = self.problem, self.shape_state
        B, H = p.h0.shape
        if self.lstm:
            out = self.sess.run(None, {"x": self.xin, "h0": s(p.h0), "c0": s(p.c0)})
            return {"h": out[-2].reshape(B, H), "c": out[-1].reshape(B, H)}
        out = self.sess.run(None, {"x": self.xin, "h0": s(p.h0)})
        return {"h": out[-1].reshape(B, H)}


class SeqRunner(Runner):
    def __init__(self, problem, threads):
        super().__init__()
        self.problem = problem
        self.lstm = problem.cell == "lstm"
        self.sess = _layer_session(problem, threads, problem.cfg.T)
        self.label = "onnxruntime (exported layer)"
        self.feed = self._feed0()

    def _feed0(self):
        p = self.problem
        feed = {"x": p.x.copy(), "h0": p.h0[None].copy()}
        if self.lstm:
            feed["c0"] = p.c0[None].copy()
        return feed

    def run(self, n):
        run, feed = self.sess.run, self.feed
        for _ in range(n):
            run(None, feed)

    def outputs(self):
        out = self.sess.run(None, self.feed)
        res = {"y": out[0].reshape(self.problem.x.shape[:2] + (-1,)), "h_n": out[1][0]}
        if self.lstm:
            res["c_n"] = out[2][0]
        return res

    def worker(self):
        run = self.sess.run
        feed = self._feed0()
        lstm = self.lstm

        def work(k):
            for _ in range(k):
                out = run(None, feed)
                feed["h0"] = out[1]
                if lstm:
                    feed["c0"] = out[2]

        return work


def build(problem, threads):
    return runner_for(problem, lambda p: StepRunner(p, threads), lambda p: SeqRunner(p, threads),
                      no_train="ONNX Runtime is an inference engine: no training step")
