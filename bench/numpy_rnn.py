"""A plain-NumPy RNN / LSTM / GRU: the "NumPy" contender of the benchmark suite.

Written the way a careful NumPy user would: the input projection of all time steps is one matmul
before the loop, the loop does one (B, H) @ (H, G) matmul per step plus element-wise gates, and the
weight gradients are a few large matmuls after the backward loop. Scratch arrays are allocated once
per call and reused across steps (``out=``). No Cython, no BLAS calls beyond ``np.matmul``.

Notation: T steps, B batch, I input size, H hidden size, G = gates * H. Weights in PyTorch's layout
and gate order: ``W_ih`` (G, I), ``W_hh`` (G, H), LSTM gates i, f, g, o; GRU gates r, z, n with the
reset gate applied after the hidden matmul (PyTorch's GRU).

Forward equations (numbered; backward lines cite them):
  RNN   (1) h_t = tanh(x_t W_ih^T + b_ih + h_prev W_hh^T + b_hh)
  LSTM  (1) a = x_t W_ih^T + b_ih + h_prev W_hh^T + b_hh;  i, f, o = sigmoid(a_i, a_f, a_o), g = tanh(a_g)
        (2) c_t = f * c_prev + i * g
        (3) h_t = o * tanh(c_t)
  GRU   (1) gh = h_prev W_hh^T + b_hh;  gx = x_t W_ih^T + b_ih
        (2) r = sigmoid(gx_r + gh_r),  z = sigmoid(gx_z + gh_z)
        (3) n = tanh(gx_n + r * gh_n)
        (4) h_t = (1 - z) * n + z * h_prev
"""
from __future__ import annotations

import numpy as np

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _sigmoid(a, out):
    # out = 1 / (1 + exp(-a)), overflow-safe enough for benchmark data
    np.negative(a, out=out)
    np.exp(out, out=out)
    out += 1.0
    np.reciprocal(out, out=out)
    return out


def layer_weights(params, suffix="_l0"):
    """(W_ih, W_hh, b_ih, b_hh) from a PyTorch-named dict (layer names by default)."""
    return (params["weight_ih" + suffix], params["weight_hh" + suffix],
            params["bias_ih" + suffix], params["bias_hh" + suffix])


# ---------------------------------------------------------------------------------------------
# one step (service step)
# ---------------------------------------------------------------------------------------------

def step(cell, weights, x, h_prev, c_prev=None):
    """One time step of a cell. x (B, I), h_prev (B, H); returns h (and c for the LSTM)."""
    W_ih, W_hh, b_ih, b_hh = weights
    H = W_hh.shape[1]
    if cell == "rnn":
        # (1) h = tanh(x W_ih^T + b_ih + h_prev W_hh^T + b_hh)
        a = x @ W_ih.T
        a += h_prev @ W_hh.T
        a += b_ih
        a += b_hh
        return np.tanh(a, out=a)
    if cell == "lstm":
        # (1) a = x W_ih^T + h_prev W_hh^T + b
        a = x @ W_ih.T
        a += h_prev @ W_hh.T
        a += b_ih
        a += b_hh
        i = _sigmoid(a[:, :H], np.empty_like(a[:, :H]))
        f = _sigmoid(a[:, H:2 * H], np.empty_like(i))
        g = np.tanh(a[:, 2 * H:3 * H])
        o = _sigmoid(a[:, 3 * H:], np.empty_like(i))
        # (2) c = f * c_prev + i * g
        c = f * c_prev
        c += i * g
        # (3) h = o * tanh(c)
        h = np.tanh(c)
        h *= o
        return h, c
    if cell == "gru":
        # (1) gx = x W_ih^T + b_ih, gh = h_prev W_hh^T + b_hh
        gx = x @ W_ih.T
        gx += b_ih
        gh = h_prev @ W_hh.T
        gh += b_hh
        # (2) r, z = sigmoid(gx + gh) on the first 2H columns
        rz = gx[:, :2 * H] + gh[:, :2 * H]
        _sigmoid(rz, rz)
        r, z = rz[:, :H], rz[:, H:]
        # (3) n = tanh(gx_n + r * gh_n)
        n = r * gh[:, 2 * H:]
        n += gx[:, 2 * H:]
        np.tanh(n, out=n)
        # (4) h = n + z * (h_prev - n)
        h = h_prev - n
        h *= z
        h += n
        return h
    raise ValueError(f"cell must be one of {sorted(GATES)}; got {cell!r}")


# ---------------------------------------------------------------------------------------------
# whole sequence: inference and training forward
# ---------------------------------------------------------------------------------------------

def forward(cell, weights, x, h0, c0=None, train=False):
    """Run a single-layer, unidirectional cell over x (T, B, I).

    Returns (y, h_n) or (y, (h_n, c_n)) for the LSTM, plus a cache for ``backward`` when
    ``train`` is true (``(y, state, cache)``). h0, c0 are (B, H).
    """
    W_ih, W_hh, b_ih, b_hh = weights
    T, B, I = x.shape
    H = W_hh.shape[1]
    G = W_hh.shape[0]
    dtype = x.dtype
    # hoisted input projection: gx = X[T*B, I] @ W_ih^T + b   (one GEMM for all steps)
    gx = (x.reshape(T * B, I) @ W_ih.T).reshape(T, B, G)
    y = np.empty((T, B, H), dtype)
    gh = np.empty((B, G), dtype)
    h_prev = h0
    if cell == "rnn":
        gx += b_ih + b_hh
        for t in range(T):
            # (1) h_t = tanh(gx[t] + h_prev W_hh^T)
            np.matmul(h_prev, W_hh.T, out=gh)
            gh += gx[t]
            np.tanh(gh, out=y[t])
            h_prev = y[t]
        state = y[T - 1].copy()
        if train:
            return y, state, ("rnn", weights, x, h0, None, y)
        return y, state
    if cell == "lstm":
        gx += b_ih + b_hh
        acts = gx  # activated gates overwrite the pre-activations in place (kept for backward)
        c_all = np.empty((T, B, H), dtype) if train else None
        tanh_c = np.empty((B, H), dtype)
        c_bufs = (np.empty((B, H), dtype), np.empty((B, H), dtype))  # inference: ping-pong
        c_prev = c0
        for t in range(T):
            # (1) a = gx[t] + h_prev W_hh^T
            a = acts[t]
            np.matmul(h_prev, W_hh.T, out=gh)
            a += gh
            _sigmoid(a[:, :2 * H], a[:, :2 * H])
            np.tanh(a[:, 2 * H:3 * H], out=a[:, 2 * H:3 * H])
            _sigmoid(a[:, 3 * H:], a[:, 3 * H:])
            i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
            # (2) c_t = f * c_prev + i * g
            c_new = c_all[t] if train else c_bufs[t % 2]
            np.multiply(f, c_prev, out=c_new)
            c_new += i * g
            # (3) h_t = o * tanh(c_t)
            np.tanh(c_new, out=tanh_c)
            np.multiply(o, tanh_c, out=y[t])
            h_prev = y[t]
            c_prev = c_new
        state = (y[T - 1].copy(), c_prev.copy())
        if train:
            return y, state, ("lstm", weights, x, h0, c0, (acts, c_all, y))
        return y, state
    if cell == "gru":
        gx += b_ih
        r_z = np.empty((T, B, 2 * H), dtype) if train else np.empty((1, B, 2 * H), dtype)
        n_all = np.empty((T, B, H), dtype) if train else np.empty((1, B, H), dtype)
        ghn_all = np.empty((T, B, H), dtype) if train else None
        for t in range(T):
            k = t if train else 0
            # (1) gh = h_prev W_hh^T + b_hh
            np.matmul(h_prev, W_hh.T, out=gh)
            gh += b_hh
            # (2) r, z = sigmoid(gx_rz + gh_rz)
            rz = r_z[k]
            np.add(gx[t, :, :2 * H], gh[:, :2 * H], out=rz)
            _sigmoid(rz, rz)
            r, z = rz[:, :H], rz[:, H:]
            # (3) n = tanh(gx_n + r * gh_n)
            n = n_all[k]
            np.multiply(r, gh[:, 2 * H:], out=n)
            n += gx[t, :, 2 * H:]
            np.tanh(n, out=n)
            if train:
                ghn_all[t] = gh[:, 2 * H:]
            # (4) h_t = n + z * (h_prev - n)
            np.subtract(h_prev, n, out=y[t])
            y[t] *= z
            y[t] += n
            h_prev = y[t]
        state = y[T - 1].copy()
        if train:
            return y, state, ("gru", weights, x, h0, None, (r_z, n_all, ghn_all, y))
        return y, state
    raise ValueError(f"cell must be one of {sorted(GATES)}; got {cell!r}")


# ---------------------------------------------------------------------------------------------
# backward through time
# ---------------------------------------------------------------------------------------------

def backward(cache, dy):
    """Gradients of sum(y * dy): returns (dx, dh0, dc0 or None, {name: grad}) in PyTorch layer names."""
    cell, (W_ih, W_hh, b_ih, b_hh), x, h0, c0, saved = cache
    T, B, I = x.shape
    H = W_hh.shape[1]
    G = W_hh.shape[0]
    dtype = x.dtype
    dG = np.empty((T, B, G), dtype)          # gradient wrt the gate pre-activations
    dh_next = np.zeros((B, H), dtype)
    if cell == "rnn":
        y = saved
        for t in range(T - 1, -1, -1):
            # (1) da = (dy[t] + dh_next) * (1 - h_t^2)
            da = dG[t]
            np.multiply(y[t], y[t], out=da)
            np.subtract(1.0, da, out=da)
            da *= dy[t] + dh_next
            # (1) dh_prev = da @ W_hh
            np.matmul(da, W_hh, out=dh_next)
        dGh = dG
        dc0 = None
    elif cell == "lstm":
        acts, c_all, y = saved
        dc_next = np.zeros((B, H), dtype)
        dh = np.empty((B, H), dtype)
        tanh_c = np.empty((B, H), dtype)
        tmp = np.empty((B, H), dtype)
        for t in range(T - 1, -1, -1):
            i, f, g, o = (acts[t, :, :H], acts[t, :, H:2 * H], acts[t, :, 2 * H:3 * H], acts[t, :, 3 * H:])
            c_prev = c_all[t - 1] if t > 0 else c0
            np.add(dy[t], dh_next, out=dh)
            np.tanh(c_all[t], out=tanh_c)
            d = dG[t]
            # (3) do = dh * tanh(c_t);  da_o = do * o * (1 - o)
            np.multiply(dh, tanh_c, out=d[:, 3 * H:])
            np.multiply(o, 1.0 - o, out=tmp)
            d[:, 3 * H:] *= tmp
            # (3) dc = dc_next + dh * o * (1 - tanh(c_t)^2)
            np.multiply(tanh_c, tanh_c, out=tmp)
            np.subtract(1.0, tmp, out=tmp)
            tmp *= o
            tmp *= dh
            dc_next += tmp
            dc = dc_next
            # (2) da_i = dc * g * i * (1 - i)
            np.multiply(dc, g, out=d[:, :H])
            d[:, :H] *= i * (1.0 - i)
            # (2) da_f = dc * c_prev * f * (1 - f)
            np.multiply(dc, c_prev, out=d[:, H:2 * H])
            d[:, H:2 * H] *= f * (1.0 - f)
            # (2) da_g = dc * i * (1 - g^2)
            np.multiply(dc, i, out=d[:, 2 * H:3 * H])
            d[:, 2 * H:3 * H] *= 1.0 - g * g
            # (2) dc_prev = dc * f
            dc *= f
            # (1) dh_prev = da @ W_hh
            np.matmul(d, W_hh, out=dh_next)
        dGh = dG
        dc0 = dc_next
    elif cell == "gru":
        r_z, n_all, ghn_all, y = saved
        dGh = np.empty((T, B, G), dtype)
        dh = np.empty((B, H), dtype)
        for t in range(T - 1, -1, -1):
            r, z = r_z[t, :, :H], r_z[t, :, H:]
            n = n_all[t]
            h_prev = y[t - 1] if t > 0 else h0
            np.add(dy[t], dh_next, out=dh)
            d = dG[t]
            # (4) dn = dh * (1 - z);  (3) da_n = dn * (1 - n^2)
            np.multiply(dh, 1.0 - z, out=d[:, 2 * H:])
            d[:, 2 * H:] *= 1.0 - n * n
            # (4) dz = dh * (h_prev - n);  (2) da_z = dz * z * (1 - z)
            np.multiply(dh, h_prev - n, out=d[:, H:2 * H])
            d[:, H:2 * H] *= z * (1.0 - z)
            # (3) dr = da_n * gh_n;  (2) da_r = dr * r * (1 - r)
            np.multiply(d[:, 2 * H:], ghn_all[t], out=d[:, :H])
            d[:, :H] *= r * (1.0 - r)
            # the hidden-side gate gradients: the n part passes through r (3)
            dGh[t, :, :2 * H] = d[:, :2 * H]
            np.multiply(d[:, 2 * H:], r, out=dGh[t, :, 2 * H:])
            # (4) dh_prev = dh * z + dgh @ W_hh
            np.matmul(dGh[t], W_hh, out=dh_next)
            dh_next += dh * z
        dc0 = None
    else:
        raise ValueError(f"cell must be one of {sorted(GATES)}; got {cell!r}")

    # weight gradients: a few large GEMMs over all T*B rows
    h_prevs = np.concatenate([h0[None], saved[-1][:T - 1]] if cell != "rnn" else [h0[None], saved[:T - 1]])
    dG2 = dG.reshape(T * B, G)
    dGh2 = dGh.reshape(T * B, G)
    grads = {
        # dW_ih = dG^T X
        "weight_ih_l0": dG2.T @ x.reshape(T * B, I),
        # dW_hh = dGh^T H_prev
        "weight_hh_l0": dGh2.T @ h_prevs.reshape(T * B, H),
        "bias_ih_l0": dG2.sum(axis=0),
        "bias_hh_l0": dGh2.sum(axis=0),
    }
    # dX = dG W_ih
    dx = (dG2 @ W_ih).reshape(T, B, I)
    return dx, dh_next, dc0, grads
