"""Layer normalisation over the last axis (PyTorch's ``nn.LayerNorm`` with an int normalized_shape).

Notation: N rows (all leading axes flattened), F = normalized_shape features, w, b (F,).

    (1) mu   = mean_f x                      (N, 1)
    (2) var  = mean_f (x - mu)^2             (N, 1), biased as PyTorch
    (3) rstd = 1 / sqrt(var + eps)
    (4) xhat = (x - mu) * rstd
    (5) y    = xhat * w + b                  (w = 1, b = 0 without elementwise_affine)

Backward, with g = dy * w (5):

    dw   += sum_n dy * xhat                                          (5)
    db   += sum_n dy                                                 (5)
    dx    = rstd * (g - mean_f g - xhat * mean_f(g * xhat))           (1)-(4)
"""
from __future__ import annotations

import numbers

import numpy as np

from .._validation import as_array, check_float, check_size, shape_str
from .base import Layer


class LayerNorm(Layer):
    """Normalise each row of the last axis to zero mean and unit variance, then scale and shift.

    Parameters ``weight`` (ones) and ``bias`` (zeros) of shape (normalized_shape,) when
    ``elementwise_affine``; ``bias=False`` drops the shift, as in PyTorch.
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, dtype=np.float32):
        if isinstance(normalized_shape, (tuple, list)):
            if len(normalized_shape) != 1:
                raise ValueError("normalized_shape must be an int (the size of the last axis) or a 1-tuple; "
                                 f"got {tuple(normalized_shape)}")
            normalized_shape = normalized_shape[0]
        if isinstance(normalized_shape, (bool, np.bool_)) or not isinstance(normalized_shape, numbers.Integral):
            raise TypeError(f"normalized_shape must be an integer, got {type(normalized_shape).__name__} "
                            f"{normalized_shape!r}")
        self.normalized_shape = check_size("normalized_shape", normalized_shape)
        self.eps = check_float("eps", eps, 0.0, low_open=True)
        self.elementwise_affine = bool(elementwise_affine)
        self.bias = bool(bias) and self.elementwise_affine
        F = self.normalized_shape
        specs = []
        if self.elementwise_affine:
            specs.append(("weight", (F,)))
            if self.bias:
                specs.append(("bias", (F,)))
        super().__init__(specs, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        """weight = 1, bias = 0, as PyTorch does."""
        if self.elementwise_affine:
            self.params["weight"][...] = 1
            if self.bias:
                self.params["bias"][...] = 0
        self.param_set.bump()

    def get_config(self):
        return dict(normalized_shape=self.normalized_shape, eps=self.eps, elementwise_affine=self.elementwise_affine,
                    bias=self.bias, dtype=self.dtype.name)

    def __repr__(self):
        return (f"LayerNorm({self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias})")

    # ---- forward --------------------------------------------------------------------------------

    def _input(self, x):
        x0, x = x, as_array(x, "x", self.dtype)
        if np.ndim(x0) == 0:  # as_array makes 0-d input 1-d
            raise ValueError(f"x must have at least 1 dimension (..., {self.normalized_shape}); got a 0-d scalar")
        if x.shape[-1] != self.normalized_shape:
            raise ValueError(f"x.shape[-1] must equal normalized_shape={self.normalized_shape}; got {x.shape[-1]} "
                             f"(x has shape {shape_str(x.shape)})")
        return x

    def _normalise(self, x):
        """xhat and rstd (keepdims) from equations (1)-(4); xhat is a fresh array."""
        # mu = x.mean(-1, keepdims=True)   (1)
        mu = x.mean(axis=-1, keepdims=True)
        xhat = x - mu
        # var = (xhat ** 2).mean(-1, keepdims=True)   (2)
        var = np.mean(xhat * xhat, axis=-1, keepdims=True)
        # rstd = 1 / sqrt(var + eps)   (3)
        rstd = 1.0 / np.sqrt(var + self.dtype.type(self.eps))
        # xhat = (x - mu) * rstd   (4)
        xhat *= rstd
        return xhat, rstd

    def _affine(self, xhat):
        if not self.elementwise_affine:
            return xhat.copy()
        # y = xhat * w + b   (5)
        y = xhat * self.params["weight"]
        if self.bias:
            y += self.params["bias"]
        return y

    def __call__(self, x):
        """Inference: ``y = layer(x)``, same shape as x. Saves nothing."""
        xhat, _ = self._normalise(self._input(x))
        if not self.elementwise_affine:
            return xhat
        return self._affine(xhat)

    def begin_update(self, x):
        """Training forward: ``y, backprop``; ``dx = backprop(dy)`` adds dw, db into ``self.grads``."""
        xhat, rstd = self._normalise(self._input(x))
        y = self._affine(xhat)
        version = self.param_set.version
        F = self.normalized_shape

        def backprop(dy):
            if self.param_set.version != version:
                raise RuntimeError("LayerNorm parameters changed between begin_update and backprop; "
                                   "run begin_update again")
            dy = as_array(dy, "dy", self.dtype)
            if dy.shape != xhat.shape:
                raise ValueError(f"dy must have the shape of y, {shape_str(xhat.shape)}; got {shape_str(dy.shape)}")
            if self.elementwise_affine:
                dY2, xhat2 = dy.reshape(-1, F), xhat.reshape(-1, F)
                with self.param_set.lock:
                    # dw += (dy * xhat).sum(rows)   (5)
                    self.grads["weight"] += np.einsum("nf,nf->f", dY2, xhat2)
                    if self.bias:
                        # db += dy.sum(rows)   (5)
                        self.grads["bias"] += dY2.sum(axis=0)
                # g = dy * w   (5)
                g = dy * self.params["weight"]
            else:
                g = dy.copy()
            # dx = rstd * (g - mean(g) - xhat * mean(g * xhat))   (1)-(4)
            mean_g = g.mean(axis=-1, keepdims=True)
            mean_gx = np.mean(g * xhat, axis=-1, keepdims=True)
            g -= mean_g
            g -= xhat * mean_gx
            g *= rstd
            return g

        return y, backprop
