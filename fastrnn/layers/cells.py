"""Single-step cells for streaming, called as PyTorch's cells are.

    h_new = RNNCell(x, h);   h_new, c_new = LSTMCell(x, (h, c));   h_new = GRUCell(x, h)

x is (B, I) or unbatched (I,); states are (B, H) or (H,); a missing state means zeros. A step runs the
same compiled kernel as the sequence layers with T = 1 (two GEMVs and one fused gate loop at B = 1).
The call path is kept short for batch-1 services: arrays that already have the cell's dtype, C order
and shapes go straight to the kernel.

Training: ``out, backprop = cell.begin_update(x, hx)`` then ``dx, dhx = backprop(dout)``, where ``out``,
``hx``, ``dout`` and ``dhx`` are arrays (RNN, GRU) or (h, c) tuples (LSTM). Gradients add into ``grads``.
"""
from __future__ import annotations

import numpy as np

from .._kernels import gru as _gru
from .._kernels import lstm as _lstm
from .._kernels import rnn as _rnn
from .._validation import (as_array, check_bool, check_buffer, check_bytes, check_choice, check_dtype, check_seed,
                           check_size, shape_str)
from .base import Layer
from .recurrent import _GATES, kernel_backward, kernel_forward


class _Cell(Layer):
    mode = None

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float32, seed=None):
        dtype = check_dtype(dtype)
        self.input_size = check_size("input_size", input_size)
        self.hidden_size = check_size("hidden_size", hidden_size)
        self.h_out = self.hidden_size
        self.bias = check_bool("bias", bias)
        self.seed = check_seed(seed)
        G = _GATES[self.mode] * self.hidden_size
        specs = [("weight_ih", (G, self.input_size)), ("weight_hh", (G, self.hidden_size))]
        if self.bias:
            specs += [("bias_ih", (G,)), ("bias_hh", (G,))]
        for name, shape in specs:
            check_buffer(name, *shape)
        check_bytes(2 * sum(int(np.prod(shape)) for _, shape in specs) * dtype.itemsize,
                    f"{type(self).__name__} parameters and gradients")
        super().__init__(specs, dtype)
        bound = 1.0 / np.sqrt(self.hidden_size)
        self.param_set.data[...] = np.random.default_rng(seed).uniform(-bound, bound, self.param_set.size)
        self._views = None   # the parameter views _kernel_weights last read

    def _kernel_weights(self):
        """(W_ih, W_hh, b_ih, b_hh, None) for kernel_forward, and what the compiled one-step fast path takes
        (biases as zeros when bias=False). Taken from the parameter views and kept until they are rebound:
        a container that gathers this cell's parameters into its own buffer (Sequential) rebinds them."""
        p = self.params
        if self._views is not p:
            zero = np.zeros(_GATES[self.mode] * self.hidden_size, self.dtype)
            self._weights = (p["weight_ih"], p["weight_hh"], p.get("bias_ih"), p.get("bias_hh"), None)
            self._step_weights = (p["weight_ih"], p["weight_hh"], p.get("bias_ih", zero), p.get("bias_hh", zero))
            self._views = p
        return self._weights, self._step_weights

    def _step(self, x, hx):
        """The compiled fast path for arrays that need no conversion; None means "validate first"."""
        raise NotImplementedError

    def get_config(self):
        return dict(input_size=self.input_size, hidden_size=self.hidden_size, bias=self.bias,
                    dtype=self.dtype.name, **self._extra_config())

    def _extra_config(self):
        return {}

    # ---- inputs -------------------------------------------------------------------------------

    def _input(self, x):
        """x as (1, B, I) C-contiguous of the cell dtype, and whether it was batched."""
        if (type(x) is np.ndarray and x.dtype == self.dtype and x.ndim == 2 and x.flags.c_contiguous
                and x.shape[1] == self.input_size and x.shape[0] > 0):
            return x.reshape(1, x.shape[0], self.input_size), True
        x = as_array(x, "x", self.dtype)
        if x.ndim not in (1, 2):
            raise ValueError(f"x must be 1-D (I,) or 2-D (B, I) for a cell; got {x.ndim}-D with shape "
                             f"{shape_str(x.shape)}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"x.shape[-1] must equal input_size={self.input_size}; got {x.shape[-1]}")
        if x.ndim == 2 and x.shape[0] == 0:
            raise ValueError("x has an empty batch (B=0); need B >= 1")
        batched = x.ndim == 2
        return np.ascontiguousarray(x).reshape(1, x.shape[0] if batched else 1, self.input_size), batched

    def _state(self, h, name, B, batched):
        H = self.hidden_size
        if h is None:
            return np.zeros((B, H), self.dtype)
        if type(h) is np.ndarray and h.dtype == self.dtype and h.flags.c_contiguous and h.shape == (B, H) and batched:
            return h
        h = as_array(h, name, self.dtype)
        want = (B, H) if batched else (H,)
        if h.shape != want:
            raise ValueError(f"{name} must have shape {shape_str(want)} for {'batched' if batched else 'unbatched'} "
                             f"x; got {shape_str(h.shape)}")
        return h.reshape(B, H)

    def _split(self, hx, B, batched):
        if self.mode == "LSTM":
            if hx is None:
                return self._state(None, "h", B, batched), self._state(None, "c", B, batched)
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                found = f"a {len(hx)}-tuple" if isinstance(hx, (tuple, list)) else type(hx).__name__
                raise TypeError(f"LSTMCell state must be a tuple (h, c) of arrays; got {found}")
            for name, part in zip("hc", hx):
                if part is None:
                    raise TypeError(f"{name} must be an array of numbers, got NoneType (omit the whole state "
                                    "for zeros)")
            return self._state(hx[0], "h", B, batched), self._state(hx[1], "c", B, batched)
        if isinstance(hx, (tuple, list)):
            raise TypeError(f"{type(self).__name__} state must be one array h; got a {type(hx).__name__}")
        return self._state(hx, "h", B, batched), None

    def _pack(self, h, c, batched):
        if not batched:
            h = h[0]
            c = c[0] if c is not None else None
        return (h, c) if self.mode == "LSTM" else h

    # ---- calls --------------------------------------------------------------------------------

    def __call__(self, x, hx=None):
        if hx is not None:
            out = self._step(x, hx)
            if out is not None:
                return out
        X, batched = self._input(x)
        h0, c0 = self._split(hx, X.shape[1], batched)
        saved = kernel_forward(self, X, None, 0, False, self._kernel_weights()[0], None, h0, c0, training=False)
        return self._pack(saved["Hs"][1], saved["Cs"][1] if c0 is not None else None, batched)

    def begin_update(self, x, hx=None):
        X, batched = self._input(x)
        X = X.copy()
        h0, c0 = self._split(hx, X.shape[1], batched)
        B, H = X.shape[1], self.hidden_size
        stamp = self.param_set.stamp()
        weights = self._kernel_weights()[0]
        saved = kernel_forward(self, X, None, 0, False, weights, None, h0, c0, training=True)
        out = self._pack(saved["Hs"][1].copy(), saved["Cs"][1].copy() if c0 is not None else None, batched)
        used = [False]

        def backprop(dout):
            if used[0]:
                raise RuntimeError("this backprop was already used: run begin_update again")
            if self.param_set.changed_since(stamp):
                raise RuntimeError("the cell's weights changed between begin_update and backprop")
            dh, dc = self._split(dout, B, batched)
            used[0] = True
            dX = np.zeros_like(X)
            dh0, dc0 = np.empty_like(dh), (np.empty_like(dc) if dc is not None else None)
            dweights = (self.grads["weight_ih"], self.grads["weight_hh"], self.grads.get("bias_ih"),
                        self.grads.get("bias_hh"), None)
            with self.param_set.lock:
                kernel_backward(self, X, np.zeros((1, B, H), self.dtype), dX, 0, False, weights, dweights,
                                None, saved, dh, dc, dh0, dc0)
            return (dX[0] if batched else dX[0, 0]), self._pack(dh0, dc0, batched)

        return out, backprop


class RNNCell(_Cell):
    """h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act = tanh or relu."""

    mode = "RNN"

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", dtype=np.float32, seed=None):
        self.nonlinearity = check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
        super().__init__(input_size, hidden_size, bias, dtype, seed)

    def _extra_config(self):
        return {"nonlinearity": self.nonlinearity}

    def _step(self, x, hx):
        return _rnn.step(x, hx, *self._kernel_weights()[1], self.nonlinearity == "relu")


class LSTMCell(_Cell):
    """One LSTM step, gates (i, f, g, o) as PyTorch's LSTMCell."""

    mode = "LSTM"

    def _step(self, x, hx):
        if type(hx) is tuple and len(hx) == 2:
            return _lstm.step(x, hx[0], hx[1], *self._kernel_weights()[1])
        return None


class GRUCell(_Cell):
    """One GRU step, gates (r, z, n); reset_after=False gives the textbook form."""

    mode = "GRU"

    def __init__(self, input_size, hidden_size, bias=True, reset_after=True, dtype=np.float32, seed=None):
        self.reset_after = check_bool("reset_after", reset_after)
        super().__init__(input_size, hidden_size, bias, dtype, seed)

    def _extra_config(self):
        return {"reset_after": self.reset_after}

    def _step(self, x, hx):
        return _gru.step(x, hx, *self._kernel_weights()[1], self.reset_after)
