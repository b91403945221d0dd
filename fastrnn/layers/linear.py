"""Fully connected layer applied to the last axis of any-rank input (every time step at once).

Notation: N rows (all leading axes flattened, e.g. N = T*B), I = in_features, O = out_features.

    (1) y = x W^T + b        x (N, I), W (O, I), b (O,), y (N, O)

Backward, parameter gradients added (beta = 1) into the layer's gradient views:

    dW += dy^T x     (1)
    db += sum_n dy   (1)
    dx  = dy W       (1)

A (T, B, I) input is ONE GEMM over its T*B rows, never a loop over steps.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import blas as _blas

from .._validation import as_array, check_buffer, check_size, shape_str
from .base import Layer


def _gemm_acc_tn(dW, dY, X):
    """dW += dY^T @ X in place (beta = 1), with no temporary of dW's size.

    dW (O, I) is C-contiguous, so dW^T is Fortran-ordered (I, O) and BLAS can write it in place:
    dW^T += X^T @ dY, with X^T and dY^T both Fortran views of C-ordered arrays (no copies).
    """
    if X.shape[0] == 0:
        return
    gemm = _blas.sgemm if dW.dtype == np.float32 else _blas.dgemm
    # dW^T[I, O] = 1 * X^T[I, N] @ (dY^T[O, N])^T + 1 * dW^T
    out = gemm(1.0, X.T, dY.T, beta=1.0, c=dW.T, trans_b=1, overwrite_c=1)
    if not np.shares_memory(out, dW):  # pragma: no cover - scipy copied c (unusual layout); keep correctness
        np.copyto(dW, out.T)


class Linear(Layer):
    """``y = x W^T + b`` on the last axis, PyTorch's ``nn.Linear`` names and initialisation.

    Parameters ``weight`` (out_features, in_features) and ``bias`` (out_features,), both drawn from
    U(-1/sqrt(in_features), 1/sqrt(in_features)). ``seed`` fixes the initialisation.
    """

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, seed=None):
        self.in_features = check_size("in_features", in_features)
        self.out_features = check_size("out_features", out_features)
        self.bias = bool(bias)
        check_buffer("weight", self.out_features, self.in_features)
        specs = [("weight", (self.out_features, self.in_features))]
        if self.bias:
            specs.append(("bias", (self.out_features,)))
        super().__init__(specs, dtype)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self.reset_parameters()

    def reset_parameters(self):
        """U(-1/sqrt(I), 1/sqrt(I)) for weight and bias, as PyTorch does."""
        bound = 1.0 / np.sqrt(self.in_features)
        self.param_set.data[...] = self._rng.uniform(-bound, bound, self.param_set.size)
        self.param_set.bump()

    def get_config(self):
        return dict(in_features=self.in_features, out_features=self.out_features, bias=self.bias,
                    dtype=self.dtype.name)

    def __repr__(self):
        return f"Linear(in_features={self.in_features}, out_features={self.out_features}, bias={self.bias})"

    # ---- forward --------------------------------------------------------------------------------

    def _input(self, x, copy):
        x0, x = x, as_array(x, "x", self.dtype, copy=copy)
        if np.ndim(x0) == 0:  # as_array makes 0-d input 1-d
            raise ValueError(f"x must have at least 1 dimension (..., {self.in_features}); got a 0-d scalar")
        if x.shape[-1] != self.in_features:
            raise ValueError(f"x.shape[-1] must equal in_features={self.in_features}; got {x.shape[-1]} "
                             f"(x has shape {shape_str(x.shape)})")
        return x

    def _forward(self, X):
        W = self.params["weight"]
        # Y = X @ W.T  (one GEMM over all N rows; W.T is a flag, not a copy)
        Y = X @ W.T
        if self.bias:
            # Y += b
            Y += self.params["bias"]
        return Y

    def __call__(self, x):
        """Inference: ``y = layer(x)``; x (..., I) -> y (..., O). Saves nothing."""
        x = self._input(x, copy=False)
        lead = x.shape[:-1]
        return self._forward(x.reshape(-1, self.in_features)).reshape(lead + (self.out_features,))

    def begin_update(self, x):
        """Training forward: ``y, backprop``; ``dx = backprop(dy)`` adds dW, db into ``self.grads``.

        The cache keeps a private copy of x, so changing x after this call does not change the
        gradients. ``backprop`` raises RuntimeError if the parameters were changed through fastrnn
        (an optimizer step, ``load_state_dict``) in between. It may be called more than once; each call
        adds its gradients again.
        """
        x = self._input(x, copy=True)
        lead = x.shape[:-1]
        X = x.reshape(-1, self.in_features)
        Y = self._forward(X)
        version = self.param_set.version
        out_shape = lead + (self.out_features,)

        def backprop(dy):
            if self.param_set.version != version:
                raise RuntimeError("Linear parameters changed between begin_update and backprop; "
                                   "run begin_update again")
            dy = as_array(dy, "dy", self.dtype)
            if dy.shape != out_shape:
                raise ValueError(f"dy must have the shape of y, {shape_str(out_shape)}; got {shape_str(dy.shape)}")
            dY = dy.reshape(-1, self.out_features)
            grads = self.grads
            with self.param_set.lock:
                # dW += dY.T @ X   (1)
                _gemm_acc_tn(grads["weight"], dY, X)
                if self.bias:
                    # db += dY.sum(0)   (1)
                    grads["bias"] += dY.sum(axis=0)
            # dX = dY @ W   (1)
            dX = dY @ self.params["weight"]
            return dX.reshape(lead + (self.in_features,))

        return Y.reshape(out_shape), backprop
