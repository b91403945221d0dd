"""Inverted dropout, element-wise or variational (one mask per sequence, reused at every step).

Notation: p the drop probability, m a mask of 0 and 1/(1-p) entries (keep probability 1-p).

    (1) y = x * m          (inference: y = x)

Backward: dx = dy * m  (1).

With ``variational=True`` the input is time-major (T, B, F) (or (T, F)) and the mask has shape
(1, B, F): each sequence drops the same features at every time step (Gal and Ghahramani, 2016).
"""
from __future__ import annotations

import numpy as np

from .._validation import as_array, check_float, shape_str
from .base import Layer


class Dropout(Layer):
    """Zero each entry with probability ``p`` in ``begin_update``; identity at inference.

    The layer owns its ``np.random.Generator`` seeded by ``seed``: the same seed gives the same masks.
    Float32/float64 input keeps its dtype; other real inputs become float64.
    """

    def __init__(self, p=0.5, variational=False, seed=None):
        p = check_float("p", p, 0.0, 1.0)
        if p >= 1.0:
            raise ValueError(f"p must be in [0, 1) (p=1 would drop everything); got {p}")
        super().__init__((), np.float32)
        self.p = p
        self.variational = bool(variational)
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def get_config(self):
        return dict(p=self.p, variational=self.variational)

    def __repr__(self):
        return f"Dropout(p={self.p}, variational={self.variational})"

    @staticmethod
    def _input(x):
        """x as a C-contiguous float array: float32/float64 (any byte order) keep their width."""
        dtype = np.float64
        if isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.dtype.itemsize in (4, 8):
            dtype = np.float32 if x.dtype.itemsize == 4 else np.float64
        return as_array(x, "x", dtype)

    def __call__(self, x):
        """Inference: the identity (returns x as an array, no copy when it already is one)."""
        return self._input(x)

    def begin_update(self, x):
        """Training forward: ``y, backprop``; ``dx = backprop(dy)``."""
        x = self._input(x)
        if self.p == 0.0:
            return x.copy(), lambda dy: self._grad_input(dy, x.shape, x.dtype).copy()
        if self.variational:
            if x.ndim < 2:
                raise ValueError(f"variational dropout needs time-major input (T, B, F) or (T, F); "
                                 f"got {x.ndim}-D with shape {shape_str(x.shape)}")
            mask_shape = (1,) + x.shape[1:]
        else:
            mask_shape = x.shape
        keep = 1.0 - self.p
        # m = (u >= p) / (1 - p), u ~ U[0, 1)
        mask = (self._rng.random(mask_shape) >= self.p).astype(x.dtype)
        mask /= x.dtype.type(keep)
        # y = x * m   (1)
        y = x * mask

        def backprop(dy):
            # dx = dy * m   (1)
            return self._grad_input(dy, x.shape, x.dtype) * mask

        return y, backprop

    @staticmethod
    def _grad_input(dy, shape, dtype):
        dy = as_array(dy, "dy", dtype)
        if dy.shape != shape:
            raise ValueError(f"dy must have the shape of y, {shape_str(shape)}; got {shape_str(dy.shape)}")
        return dy
