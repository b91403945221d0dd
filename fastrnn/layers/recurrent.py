"""Stacked, optionally bidirectional RNN, LSTM and GRU layers with PyTorch's constructors and names.

Notation: T steps, B rows, I input features, H hidden units, P = proj_size (LSTM), H_out = P or H,
L layers, D directions (2 when bidirectional). Inputs are time-major (T, B, I) unless batch_first.

One kernel call runs one (layer, direction) over the whole sequence; each direction writes its
columns of the layer output in place, and the next layer reads that output as its input. Training
keeps, per (layer, direction), exactly what the kernel's backward needs (see _kernels/*.pyx); with one
direction and no padding the layer output is a read-only view of the state history it keeps anyway.
Inference of one-direction layers on arrays that need no conversion goes straight to the kernels'
compiled ``run``, one call per layer (as the cells' steps go to ``step``), skipping this module's Python.
"""
from __future__ import annotations

import numpy as np

from .._kernels import gru as _gru
from .._kernels import lstm as _lstm
from .._kernels import rnn as _rnn
from .._validation import (INT_MAX, check_bool, check_buffer, check_bytes, check_choice, check_dtype, check_float,
                           check_seed, check_size,
                           lengths_input, sequence_input, shape_str, state_input, as_array)
from .base import Layer

_GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def _gate_slots(mode, T, training):
    """Slots of the gate buffer G a forward call needs: the LSTM and GRU backward passes read the gates
    of every step (T slots in training); the RNN's reads only the states, so its G is one slot of scratch
    (rnn.pyx); the GRU kernel always takes T."""
    if mode == "GRU" or (training and mode == "LSTM"):
        return T
    return 1


def kernel_forward(cfg, X, Y, col, reverse, weights, lens, h0, c0, training):
    """One kernel call: one (layer, direction) of ``cfg`` (a layer or cell) over X (T, B, I).

    Writes Y[:, :, col:col+H_out] (Y may be None) and returns the buffers: "Hs" (state slots, the final
    state in slot 0 for reverse, T % nslots for forward), "Cs" (LSTM), and for training everything
    ``kernel_backward`` needs. ``weights`` is (W_ih, W_hh, b_ih, b_hh, W_hr), absent ones None.
    """
    T, B = X.shape[0], X.shape[1]
    H, P, dt = cfg.hidden_size, cfg.h_out, cfg.dtype
    W_ih, W_hh, b_ih, b_hh, W_hr = weights
    if b_ih is None:  # bias=False: the kernels always add a bias, here a zero one
        b_ih = b_hh = np.zeros(W_ih.shape[0], dt)
    nslots = T + 1 if training else 2
    G = np.empty((_gate_slots(cfg.mode, T, training), B, _GATES[cfg.mode] * H), dt)
    Hs = np.empty((nslots, B, P), dt)
    saved = {"Hs": Hs}
    if cfg.mode == "RNN":
        _rnn.forward(X, W_ih, W_hh, b_ih, b_hh, h0, lens, Y, col, G, Hs, reverse, cfg.nonlinearity == "relu")
    elif cfg.mode == "LSTM":
        Cs = np.empty((nslots, B, H), dt)
        R = np.empty((T if training else 1, B, H), dt) if W_hr is not None else None
        _lstm.forward(X, W_ih, W_hh, W_hr, b_ih, b_hh, h0, c0, lens, Y, col, G, Hs, Cs, R, reverse)
        saved.update(G=G, Cs=Cs, R=R)
    else:
        A = np.empty((T if training else 1, B, H), dt)
        _gru.forward(X, W_ih, W_hh, b_ih, b_hh, h0, lens, Y, col, G, Hs, A, reverse, cfg.reset_after)
        saved.update(G=G, A=A)
    return saved


def kernel_backward(cfg, X, dY, dX, col, reverse, weights, dweights, lens, saved, dh_n, dc_n, dh0, dc0):
    """BPTT for one (layer, direction) from ``saved`` (consumed). Adds into dX and ``dweights``
    (views of the gradient buffer, same order as weights); writes dh0 (and dc0)."""
    W_ih, W_hh, _, _, W_hr = weights
    dW_ih, dW_hh, db_ih, db_hh, dW_hr = dweights
    s = saved
    if cfg.mode == "RNN":
        _rnn.backward(X, W_ih, W_hh, lens, s["Hs"], dY, col, dh_n, dX, dh0, dW_ih, dW_hh, db_ih, db_hh,
                      reverse, cfg.nonlinearity == "relu")
    elif cfg.mode == "LSTM":
        _lstm.backward(X, W_ih, W_hh, W_hr, lens, s["Hs"], s["Cs"], s["R"], s["G"], dY, col, dh_n, dc_n, dX, dh0,
                       dc0, dW_ih, dW_hh, dW_hr, db_ih, db_hh, reverse)
    else:
        _gru.backward(X, W_ih, W_hh, lens, s["Hs"], s["A"], s["G"], dY, col, dh_n, dX, dh0, dW_ih, dW_hh,
                      db_ih, db_hh, reverse, cfg.reset_after)


class _Recurrent(Layer):
    training_state = True
    mode = None  # "RNN", "LSTM" or "GRU", set by subclasses

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, dtype=np.float32, seed=None):
        dtype = check_dtype(dtype)
        self.input_size = check_size("input_size", input_size)
        self.hidden_size = check_size("hidden_size", hidden_size)
        self.num_layers = check_size("num_layers", num_layers)
        self.proj_size = check_size("proj_size", proj_size, minimum=0)
        if self.proj_size and self.mode != "LSTM":
            raise ValueError(f"proj_size is supported only by LSTM, got proj_size={proj_size} for {self.mode}")
        if self.proj_size >= self.hidden_size:
            raise ValueError(f"proj_size must be smaller than hidden_size={hidden_size}, got {proj_size}")
        self.dropout = check_float("dropout", dropout, 0.0, 1.0)
        if self.dropout == 1.0:
            raise ValueError("dropout must be in [0, 1): 1 would drop everything")
        if self.dropout > 0 and self.num_layers == 1:
            import warnings

            warnings.warn(f"dropout={dropout} applies between layers, and num_layers=1 has none", UserWarning,
                          stacklevel=3)
        self.bias = check_bool("bias", bias)
        self.batch_first = check_bool("batch_first", batch_first)
        self.bidirectional = check_bool("bidirectional", bidirectional)
        self.num_directions = 2 if self.bidirectional else 1
        self.h_out = self.proj_size or self.hidden_size
        self.seed = check_seed(seed)
        specs = self._param_specs()
        nbytes = 2 * sum(int(np.prod(shape)) for _, shape in specs) * np.dtype(dtype).itemsize
        check_bytes(nbytes, f"{type(self).__name__} parameters and gradients")
        for name, shape in specs:
            check_buffer(name, *shape)
        super().__init__(specs, dtype)
        self._weights_cache = {}   # see _kernel_weights
        G = _GATES[self.mode] * self.hidden_size
        # elements per (time step, batch row) of the widest buffer a call allocates, and of all of them
        self._widest_row = max(G, self.num_directions * self.h_out, self.input_size)
        self._row_elements = G + self.num_directions * self.h_out + max(self.input_size,
                                                                         self.num_directions * self.h_out)
        self._rng = np.random.default_rng(seed)
        # the compiled fast path of inference (_fast_call) serves layers of one direction, with biases and
        # without projection (batch_first, an attribute a caller may set later, is asked at each call): the
        # configuration of a batch-1 service
        self._fast = not self.bidirectional and self.bias and not self.proj_size
        self.reset_parameters()

    # ---- parameters ---------------------------------------------------------------------------

    def _suffixes(self):
        return [""] + (["_reverse"] if self.bidirectional else [])

    def _param_specs(self):
        G = _GATES[self.mode] * self.hidden_size
        specs = []
        for layer in range(self.num_layers):
            I_l = self.input_size if layer == 0 else self.num_directions * self.h_out
            for sfx in self._suffixes():
                specs += [(f"weight_ih_l{layer}{sfx}", (G, I_l)), (f"weight_hh_l{layer}{sfx}", (G, self.h_out))]
                if self.bias:
                    specs += [(f"bias_ih_l{layer}{sfx}", (G,)), (f"bias_hh_l{layer}{sfx}", (G,))]
                if self.proj_size:
                    specs += [(f"weight_hr_l{layer}{sfx}", (self.proj_size, self.hidden_size))]
        return specs

    def reset_parameters(self):
        """U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias, as PyTorch does."""
        bound = 1.0 / np.sqrt(self.hidden_size)
        self.param_set.data[...] = self._rng.uniform(-bound, bound, self.param_set.size)
        self.param_set.bump()

    def _kernel_weights(self, views):
        """[(W_ih, W_hh, b_ih, b_hh, W_hr) of (layer, direction) k = layer * D + d] from ``views``
        (``self.params`` or ``self.grads``), absent ones None. Kept until the views are rebound: a container
        that gathers this layer's parameters into its own buffer (Sequential) rebinds them."""
        entry = self._weights_cache.get(id(views))
        if entry is None or entry[0] is not views:
            if len(self._weights_cache) >= 4:   # views rebound since: drop the stale entries
                self._weights_cache.clear()
            get = views.get
            weights = []
            for layer in range(self.num_layers):
                for sfx in self._suffixes():
                    weights.append((views[f"weight_ih_l{layer}{sfx}"], views[f"weight_hh_l{layer}{sfx}"],
                                    get(f"bias_ih_l{layer}{sfx}"), get(f"bias_hh_l{layer}{sfx}"),
                                    get(f"weight_hr_l{layer}{sfx}")))
            entry = self._weights_cache[id(views)] = (views, weights)
        return entry[1]

    def get_config(self):
        cfg = dict(input_size=self.input_size, hidden_size=self.hidden_size, num_layers=self.num_layers,
                   bias=self.bias, batch_first=self.batch_first, dropout=self.dropout,
                   bidirectional=self.bidirectional, dtype=self.dtype.name)
        cfg.update(self._extra_config())
        return cfg

    def _extra_config(self):
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    # ---- input handling -----------------------------------------------------------------------

    def _prepare(self, x, state0, lengths, training):
        X, batched = sequence_input(x, self.input_size, self.dtype, self.batch_first, copy=training,
                                    check_sizes=self._check_sizes)
        T, B = X.shape[0], X.shape[1]
        lens = lengths_input(lengths, T, B)
        if lens is not None:
            # Padding past a row's length must reach no output and no gradient: the hoisted GEMMs run over
            # all T*B rows, so padded rows are zeroed in a private copy (0 * NaN would poison dW_ih).
            pad = np.arange(T)[:, None] >= lens[None, :]
            if pad.any():
                if not training:
                    X = X.copy()
                X[pad] = 0
        h0, c0 = self._parse_state(state0, B, batched)
        return X, batched, lens, h0, c0

    def _check_sizes(self, T, B):
        """Every buffer of a call must fit the kernels' 32-bit BLAS sizes and this machine's memory."""
        if T * B * self._widest_row <= INT_MAX and T * B * self._row_elements * self.dtype.itemsize <= 1 << 30:
            return  # far below both limits (the common case, without building messages)
        G = _GATES[self.mode] * self.hidden_size
        check_buffer("the gate buffer G (T*B x gates*H)", T, B, G)
        check_buffer("the layer output (T*B x D*H_out)", T, B, self.num_directions * self.h_out)
        per_row = G + self.num_directions * self.h_out + max(self.input_size, self.num_directions * self.h_out)
        check_bytes(T * B * per_row * self.dtype.itemsize, f"a {type(self).__name__} call with T={T}, B={B}")

    def _state_shapes(self, B):
        LD = self.num_layers * self.num_directions
        return (LD, B, self.h_out), (LD, B, self.hidden_size)

    def _parse_state(self, state0, B, batched):
        h_shape, c_shape = self._state_shapes(B)
        if self.mode == "LSTM":
            if state0 is None:
                return np.zeros(h_shape, self.dtype), np.zeros(c_shape, self.dtype)
            if not isinstance(state0, (tuple, list)) or len(state0) != 2:
                found = f"a {len(state0)}-tuple" if isinstance(state0, (tuple, list)) else type(state0).__name__
                raise TypeError(f"LSTM state must be a tuple (h0, c0) of arrays; got {found}")
            return (state_input(state0[0], "h0", h_shape, self.dtype, batched),
                    state_input(state0[1], "c0", c_shape, self.dtype, batched))
        if state0 is None:
            return np.zeros(h_shape, self.dtype), None
        if isinstance(state0, (tuple, list)):
            raise TypeError(f"{self.mode} state must be one array h0 of shape (L*D, B, H); got a {type(state0).__name__}")
        return state_input(state0, "h0", h_shape, self.dtype, batched), None

    def _finish(self, y, h_n, c_n, batched):
        if batched:
            if self.batch_first:
                y = y.transpose(1, 0, 2)
        else:
            y, h_n = y[:, 0], h_n[:, 0]
            c_n = c_n[:, 0] if c_n is not None else None
        return y, ((h_n, c_n) if self.mode == "LSTM" else h_n)

    # ---- inference ----------------------------------------------------------------------------

    def __call__(self, x, h0=None, lengths=None):
        """Inference: ``y, state_n = layer(x, state0)``; saves nothing for backward."""
        if (self._fast and h0 is not None and lengths is None and not self.batch_first and type(x) is np.ndarray
                and x.ndim == 3):
            self._check_sizes(x.shape[0], x.shape[1])
            out = self._fast_call(x, h0, self._kernel_weights(self.params))
            if out is not None:
                return out
        X, batched, lens, h0, c0 = self._prepare(x, h0, lengths, training=False)
        T, B = X.shape[0], X.shape[1]
        h_n, c_n = np.empty_like(h0), (np.empty_like(c0) if c0 is not None else None)
        weights = self._kernel_weights(self.params)
        for layer in range(self.num_layers):
            Y = np.empty((T, B, self.num_directions * self.h_out), self.dtype)
            for d in range(self.num_directions):
                k = layer * self.num_directions + d
                state = kernel_forward(self, X, Y, d * self.h_out, d == 1, weights[k], lens,
                                       h0[k], c0[k] if c0 is not None else None, training=False)
                h_n[k] = state["Hs"][0 if d else T % 2]
                if c_n is not None:
                    c_n[k] = state["Cs"][0 if d else T % 2]
            X = Y
        return self._finish(X, h_n, c_n, batched)

    # ---- training -----------------------------------------------------------------------------

    def begin_update(self, x, state0=None, lengths=None):
        """Training forward: ``y, state_n, backprop``; then ``dx, dstate0 = backprop(dy, dstate_n=None)``.

        Parameter gradients are added into ``self.grads``. ``backprop`` may be called once; it raises
        RuntimeError if the weights changed since this call (as PyTorch's in-place check does).
        ``y`` is read-only: with one direction and no padding it is the state history that backprop
        reads (no separate copy), so an in-place change such as ``y *= 2`` raises ValueError
        ("assignment destination is read-only") instead of corrupting the gradients; ``y.copy()`` is a
        writable copy.
        """
        X, batched, lens, h0, c0 = self._prepare(x, state0, lengths, training=True)
        T, B = X.shape[0], X.shape[1]
        D, L = self.num_directions, self.num_layers
        h_n, c_n = np.empty_like(h0), (np.empty_like(c0) if c0 is not None else None)
        weights = self._kernel_weights(self.params)
        stamp = self.param_set.stamp()
        # One direction without padding: a layer's output Y[t] = h_t is slot t + 1 of its state history,
        # so Y is a read-only view of Hs (the kernel writes no separate output).
        output_is_states = D == 1 and lens is None
        # inputs[l]: layer l's input X and whether the layer owns it (a copy nothing else reads: its
        # backward may then write dX over it once its one direction has read it)
        inputs, saved, masks = [], [], []
        owned = True  # layer 0 reads the private copy of x
        for layer in range(L):
            Y = None if output_is_states else np.empty((T, B, D * self.h_out), self.dtype)
            inputs.append((X, owned))
            for d in range(D):
                k = layer * D + d
                s = kernel_forward(self, X, Y, d * self.h_out, d == 1, weights[k], lens,
                                   h0[k], c0[k] if c0 is not None else None, training=True)
                h_n[k] = s["Hs"][0 if d else T]
                if c_n is not None:
                    c_n[k] = s["Cs"][0 if d else T]
                saved.append(s)
            if output_is_states:
                s["Hs"].flags.writeable = False
                Y = s["Hs"][1:]
            mask = None
            if self.dropout > 0 and layer < L - 1:
                # inverted dropout between layers, as PyTorch applies it (into a new array: Y may be Hs)
                mask = (self._rng.random(Y.shape) >= self.dropout).astype(self.dtype) / (1 - self.dropout)
                Y = Y * mask
            masks.append(mask)
            owned = mask is not None or not output_is_states
            X = Y
        X.flags.writeable = False
        y, state_n = self._finish(X, h_n, c_n, batched)
        used = [False]

        def backprop(dy, dstate_n=None):
            if used[0]:
                raise RuntimeError("this backprop was already used: its saved buffers are consumed; "
                                   "run begin_update again")
            if self.param_set.changed_since(stamp):
                raise RuntimeError("the layer's weights changed between begin_update and backprop; the saved "
                                   "activations no longer match them: run begin_update again")
            dY = self._parse_dy(dy, T, B, batched)
            dh_n, dc_n = self._parse_dstate(dstate_n, B, batched)
            used[0] = True
            dh0, dc0 = np.empty_like(h0), (np.empty_like(c0) if c0 is not None else None)
            dweights = self._kernel_weights(self.grads)
            with self.param_set.lock:
                for layer in reversed(range(L)):
                    Xl, owned = inputs[layer]
                    dX = Xl if owned and D == 1 else np.zeros_like(Xl)
                    for d in range(D):
                        k = layer * D + d
                        kernel_backward(self, Xl, dY, dX, d * self.h_out, d == 1, weights[k], dweights[k], lens,
                                        saved[k], dh_n[k],
                                        dc_n[k] if dc_n is not None else None, dh0[k],
                                        dc0[k] if dc0 is not None else None)
                    if layer > 0 and masks[layer - 1] is not None:
                        dX *= masks[layer - 1]
                    dY = dX
            dx = dY
            if batched:
                if self.batch_first:
                    dx = dx.transpose(1, 0, 2)
            else:
                dx, dh0 = dx[:, 0], dh0[:, 0]
                dc0 = dc0[:, 0] if dc0 is not None else None
            return dx, ((dh0, dc0) if self.mode == "LSTM" else dh0)

        return y, state_n, backprop

    def _fast_call(self, x, state0, weights):
        """``(y, state_n)`` from the kernels' compiled path (their ``run``, one call per layer, each layer's
        output the next one's input; ``weights`` as ``_kernel_weights`` gives them) when x and the state are
        already the C-contiguous arrays of this layer's dtype and shapes that ``run`` reads (x (T, B, I), each
        state array (L, B, H)), else None (``__call__`` then validates and converts them). The same numbers
        as the general path (the same kernels), without its Python: measured, batch-1 T=50 inference, 1
        thread, 8 alternations against the general path: LSTM 85.8 -> 71.5 us at H=64, RNN 28.4 -> 18.2 us at
        H=64, GRU 62.5 -> 53.2 us (on a slow machine state; bench/README.md)."""
        states = state0 if self.mode == "LSTM" else (state0,)
        if self.mode == "LSTM" and (type(state0) is not tuple or len(state0) != 2):
            return None
        L = self.num_layers
        for s in states:   # the depth up front: no layer runs for a call that then falls back
            if type(s) is not np.ndarray or s.ndim != 3 or s.shape[0] != L:
                return None
        finals = []
        for k in range(L):
            out = self._run(x, [s[k:k + 1] for s in states] if L > 1 else states, weights[k])
            if out is None:
                return None   # layer 0 only: the layers after it read the fresh output of the one before
            x = out[0]
            finals.append(out[1:])
        ends = finals[0] if L == 1 else [np.concatenate(parts) for parts in zip(*finals)]
        return x, (tuple(ends) if self.mode == "LSTM" else ends[0])

    def _run(self, x, states, weights):
        """One layer through its kernel's ``run``: ``(y, h_n)`` (``(y, h_n, c_n)`` for LSTM) or None."""
        raise NotImplementedError

    def _parse_dy(self, dy, T, B, batched):
        F = self.num_directions * self.h_out
        if dy is None:
            return np.zeros((T, B, F), self.dtype)
        dy = as_array(dy, "dy", self.dtype)
        if batched:
            want = (B, T, F) if self.batch_first else (T, B, F)
        else:
            want = (T, F)
        if dy.shape != want:
            raise ValueError(f"dy must have the shape of y, {shape_str(want)}; got {shape_str(dy.shape)}")
        if not batched:
            dy = dy[:, None, :]
        elif self.batch_first:
            dy = dy.transpose(1, 0, 2)
        return np.ascontiguousarray(dy)

    def _parse_dstate(self, dstate_n, B, batched):
        h_shape, c_shape = self._state_shapes(B)
        if self.mode == "LSTM":
            if dstate_n is None:
                dstate_n = (None, None)
            if not isinstance(dstate_n, (tuple, list)) or len(dstate_n) != 2:
                raise TypeError("LSTM dstate_n must be None or a tuple (dh_n, dc_n), either of which may be None")
            dh, dc = dstate_n
            dh = np.zeros(h_shape, self.dtype) if dh is None else state_input(dh, "dh_n", h_shape, self.dtype, batched)
            dc = np.zeros(c_shape, self.dtype) if dc is None else state_input(dc, "dc_n", c_shape, self.dtype, batched)
            return dh, dc
        if dstate_n is None:
            return np.zeros(h_shape, self.dtype), None
        return state_input(dstate_n, "dh_n", h_shape, self.dtype, batched), None


class RNN(_Recurrent):
    """Elman RNN: h_t = act(x_t W_ih^T + b_ih + h_prev W_hh^T + b_hh), act = tanh or relu."""

    mode = "RNN"

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=np.float32, seed=None):
        self.nonlinearity = check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0,
                         dtype, seed)

    def _extra_config(self):
        return {"nonlinearity": self.nonlinearity}

    def _run(self, x, states, weights):
        W_ih, W_hh, b_ih, b_hh, _ = weights
        return _rnn.run(x, states[0], W_ih, W_hh, b_ih, b_hh, self.nonlinearity == "relu")


class LSTM(_Recurrent):
    """LSTM with PyTorch's gate order (i, f, g, o) and optional projection (proj_size)."""

    mode = "LSTM"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, dtype=np.float32, seed=None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, proj_size,
                         dtype, seed)

    def _extra_config(self):
        return {"proj_size": self.proj_size}

    def _run(self, x, states, weights):
        W_ih, W_hh, b_ih, b_hh, _ = weights
        return _lstm.run(x, states[0], states[1], W_ih, W_hh, b_ih, b_hh)


class GRU(_Recurrent):
    """GRU with PyTorch's gate order (r, z, n); reset_after=False gives the textbook form."""

    mode = "GRU"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, reset_after=True, dtype=np.float32, seed=None):
        self.reset_after = check_bool("reset_after", reset_after)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0,
                         dtype, seed)

    def _extra_config(self):
        return {"reset_after": self.reset_after}

    def _run(self, x, states, weights):
        W_ih, W_hh, b_ih, b_hh, _ = weights
        return _gru.run(x, states[0], W_ih, W_hh, b_ih, b_hh, self.reset_after)
