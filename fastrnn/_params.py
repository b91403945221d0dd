"""Flat parameter and gradient buffers with named views.

Every layer keeps its parameters in ONE flat array (``ParamSet.data``) and its gradients in another
of the same size (``ParamSet.grad``). ``params`` and ``grads`` map names (PyTorch's, for the recurrent
layers) to views of those buffers, so an optimizer or a clipping routine can treat a whole model as
one vector, and writing through a view (``+=``, ``[...] =``, ``np.copyto``) is seen by the kernels.

A container (``Sequential``) gathers the sets of its children into one bigger buffer with
``ParamSet.concatenate``: the children then hold views of the parent's buffer, and their values are
kept. Views handed out before that call go stale, so containers gather at construction time.

``version`` counts the changes made through fastrnn's own mutators (optimizer steps,
``load_state_dict``). A training cache records ``stamp()`` (that count and a fingerprint of the values,
which also sees writes through the views) and refuses a backward pass when ``changed_since(stamp)``.
"""
from __future__ import annotations

import threading
from math import prod

import numpy as np

from ._kernels.fingerprint import fingerprint


#: Bytes the flat buffers are aligned to: one vector register of AVX-512 and one cache line, so that the
#: kernels' vector loads of a weight matrix that starts on a boundary never straddle two lines.
ALIGN = 64


def aligned_zeros(n, dtype):
    """A zeroed 1-D array of ``n`` elements whose data starts on an ALIGN-byte boundary (a view into a
    slightly larger allocation: numpy itself aligns to 16 bytes)."""
    dtype = np.dtype(dtype)
    pad = ALIGN // dtype.itemsize
    raw = np.zeros(n + pad, dtype)
    start = (-raw.ctypes.data % ALIGN) // dtype.itemsize
    return raw[start:start + n]


class ParamSet:
    """Named views over one flat parameter buffer and one flat gradient buffer."""

    def __init__(self, specs, dtype):
        self.specs = [(str(name), tuple(int(n) for n in shape)) for name, shape in specs]
        names = [name for name, _ in self.specs]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate parameter names in {names}")
        self.dtype = np.dtype(dtype)
        self.size = sum(prod(shape) for _, shape in self.specs)
        self.version = 0
        self.lock = threading.RLock()
        self._bind(aligned_zeros(self.size, self.dtype), aligned_zeros(self.size, self.dtype))

    def _bind(self, data, grad):
        self.data, self.grad = data, grad
        self.params = self._views(data)
        self.grads = self._views(grad)

    def _views(self, flat):
        views, offset = {}, 0
        for name, shape in self.specs:
            n = prod(shape)
            views[name] = flat[offset:offset + n].reshape(shape)
            offset += n
        return views

    def zero_grad(self):
        self.grad[...] = 0

    def bump(self):
        """Record that the parameter values changed."""
        self.version += 1

    def stamp(self):
        """A record of the current values, for ``changed_since``: the version and a fingerprint of
        ``data`` (24 bytes, no copy of the parameters; see fastrnn/_kernels/fingerprint.h)."""
        return self.version, fingerprint(self.data)

    def changed_since(self, stamp):
        """Whether the values changed after ``stamp()`` returned ``stamp``: through fastrnn (the version)
        or by a write through a view or ``data`` (the fingerprint: always seen when it changes one
        parameter, else but for a chance of about 2^-64)."""
        version, print_ = stamp
        return self.version != version or fingerprint(self.data) != print_

    @staticmethod
    def concatenate(sets, dtype):
        """Move several sets into one flat buffer pair; each keeps its values and names.

        Returns the list of (set, offset) pairs and the new buffers ``(data, grad)``.
        """
        dtype = np.dtype(dtype)
        for s in sets:
            if s.dtype != dtype:
                raise TypeError(f"cannot gather a {s.dtype} layer into a {dtype} model")
        total = sum(s.size for s in sets)
        data, grad = aligned_zeros(total, dtype), aligned_zeros(total, dtype)
        offset = 0
        for s in sets:
            d, g = data[offset:offset + s.size], grad[offset:offset + s.size]
            d[...] = s.data
            g[...] = s.grad
            s._bind(d, g)
            offset += s.size
        return data, grad

    # ---- state dicts -------------------------------------------------------------------------

    def state_dict(self):
        return {name: view.copy() for name, view in self.params.items()}

    def load_state_dict(self, state, strict=True):
        """Copy ``state`` into the views; all problems are listed and nothing changes on error."""
        if not hasattr(state, "keys"):
            raise TypeError(f"state_dict must be a mapping of names to arrays, got {type(state).__name__}")
        problems, staged = [], {}
        expected = dict(self.specs)
        for name in state.keys():
            if name not in expected:
                if strict:
                    problems.append(f"unexpected key {name!r}")
        for name, shape in self.specs:
            if name not in state:
                if strict:
                    problems.append(f"missing key {name!r} of shape {shape}")
                continue
            value = _as_numeric_array(state[name], name, problems)
            if value is None:
                continue
            if value.shape != shape:
                problems.append(f"{name!r}: expected shape {shape}, got {value.shape}")
                continue
            if not np.all(np.isfinite(value)):
                problems.append(f"{name!r}: contains NaN or Inf")
                continue
            staged[name] = value
        if problems:
            raise ValueError("cannot load state_dict: " + "; ".join(problems))
        with self.lock:
            for name, value in staged.items():
                np.copyto(self.params[name], value, casting="unsafe")
            self.bump()


def _as_numeric_array(value, name, problems):
    """numpy array of a real numeric dtype, from numpy arrays or objects with ``.numpy()``/``__array__``."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - report any conversion failure as a problem
        problems.append(f"{name!r}: not convertible to an array ({exc})")
        return None
    if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
        problems.append(f"{name!r}: expected a real numeric array, got dtype {arr.dtype}")
        return None
    return arr
