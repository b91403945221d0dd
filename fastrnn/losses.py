"""Losses that return ``(loss, gradient)`` from one pass.

Notation: logits z (..., V) over V classes, integer targets k (...), N counted positions.

Softmax cross-entropy, per position (stable: the row maximum is subtracted first):

    (1) lse  = m + log sum_v exp(z_v - m),   m = max_v z_v
    (2) l    = lse - z_k
    (3) dl/dz = softmax(z) - onehot(k)

Reductions as PyTorch: "mean" divides by the number of non-ignored positions, "sum" adds them,
"none" returns the per-position losses (ignored positions 0) and the gradient of their sum.
When every position is ignored, "mean" gives loss 0.0 and a zero gradient (PyTorch gives NaN):
an all-padding batch then leaves a model unchanged instead of poisoning it.

Mean squared error: l = mean (p - y)^2, dl/dp = 2 (p - y) / N.

Scalar losses are Python floats accumulated in float64; gradients have the input's float dtype
(float32 or float64; other real inputs are computed in float64).
"""
from __future__ import annotations

import numbers

import numpy as np

from ._validation import as_array, check_choice, shape_str

_REDUCTIONS = ("mean", "sum", "none")


def _float_array(x, name):
    """x as a C-contiguous float32/float64 array (keeping that width; other real numbers -> float64)."""
    dtype = np.float64
    if isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.dtype.itemsize == 4:
        dtype = np.float32
    return as_array(x, name, dtype)


def softmax_cross_entropy(logits, targets, ignore_index=None, reduction="mean"):
    """Cross-entropy of softmax(logits) against integer class targets, and its gradient.

    logits: float array (..., V); targets: integer array with shape logits.shape[:-1], each in
    [0, V) or equal to ``ignore_index``. Returns ``(loss, dlogits)``: loss a float (an array for
    reduction="none"), dlogits an array like logits. All-ignored with "mean": loss 0.0, zero grad.
    """
    check_choice("reduction", reduction, _REDUCTIONS)
    z = _float_array(logits, "logits")
    if np.ndim(logits) == 0:  # as_array makes 0-d input 1-d
        raise ValueError("logits must have at least 1 dimension (..., V); got a 0-d scalar")
    V = z.shape[-1]
    if V == 0:
        raise ValueError(f"logits must have at least one class (V >= 1); got shape {shape_str(z.shape)}")
    if targets is None or isinstance(targets, (str, bytes)):
        raise TypeError(f"targets must be an integer array, got {type(targets).__name__}")
    if hasattr(targets, "detach") and hasattr(targets, "numpy"):
        targets = targets.detach().cpu().numpy()
    k = np.asarray(targets)
    if k.dtype.kind not in "iu" or k.dtype == np.bool_:
        raise TypeError(f"targets must be integer class indices, got dtype {k.dtype}")
    if k.shape != z.shape[:-1]:
        raise ValueError(f"targets must have shape logits.shape[:-1]={shape_str(z.shape[:-1])}; "
                         f"got {shape_str(k.shape)}")
    if ignore_index is not None and (isinstance(ignore_index, (bool, np.bool_))
                                     or not isinstance(ignore_index, numbers.Integral)):
        raise TypeError(f"ignore_index must be an integer or None, got {type(ignore_index).__name__}")

    z2 = z.reshape(-1, V)
    k1 = k.reshape(-1).astype(np.intp)
    valid = np.ones(k1.shape, bool) if ignore_index is None else (k1 != ignore_index)
    bad = valid & ((k1 < 0) | (k1 >= V))
    if bad.any():
        n = int(np.flatnonzero(bad)[0])
        where = np.unravel_index(n, k.shape) if k.ndim else ()
        ign = "" if ignore_index is None else f" or ignore_index={ignore_index}"
        raise ValueError(f"targets must be in [0, V={V}){ign}; found {k1[n]} at {tuple(int(i) for i in where)}")
    rows = np.arange(k1.shape[0])
    k_safe = np.where(valid, k1, 0)

    # m = z.max(-1)   (1)
    m = z2.max(axis=1, keepdims=True)
    # P = exp(z - m): the one (N, V) buffer, later the gradient   (1)
    P = z2 - m
    z_k = P[rows, k_safe].copy()  # z_k - m   (2)
    np.exp(P, out=P)
    s = P.sum(axis=1, keepdims=True)
    # l = log(sum exp(z - m)) - (z_k - m)   (1), (2)
    losses = (np.log(s[:, 0]).astype(np.float64) - z_k.astype(np.float64))
    # dl/dz = softmax(z) - onehot(k)   (3)
    P /= s
    P[rows, k_safe] -= 1
    if not valid.all():
        P[~valid] = 0
        losses[~valid] = 0.0

    n_valid = int(valid.sum())
    if reduction == "mean":
        if n_valid == 0:
            return 0.0, P.reshape(z.shape)
        P *= z.dtype.type(1.0 / n_valid)
        return float(losses.sum() / n_valid), P.reshape(z.shape)
    if reduction == "sum":
        return float(losses.sum()), P.reshape(z.shape)
    return losses.astype(z.dtype).reshape(k.shape), P.reshape(z.shape)


def mse_loss(pred, target, reduction="mean"):
    """Mean squared error ``(pred - target)^2`` and its gradient with respect to pred.

    pred and target must have the same shape (no broadcasting). Returns ``(loss, dpred)``; with
    reduction="mean" an empty input gives loss 0.0 (PyTorch gives NaN); "none" returns the
    element-wise losses and the gradient of their sum.
    """
    check_choice("reduction", reduction, _REDUCTIONS)
    p = _float_array(pred, "pred")
    y = as_array(target, "target", p.dtype)
    shape = np.shape(pred)  # as_array makes 0-d input 1-d: keep the caller's shape
    if np.shape(target) != shape:
        raise ValueError(f"target must have the shape of pred, {shape_str(shape)}; got {shape_str(np.shape(target))}")
    # r = p - y
    r = (p - y).reshape(shape)
    if reduction == "none":
        return r * r, 2 * r
    loss = float(np.dot(r.reshape(-1).astype(np.float64), r.reshape(-1).astype(np.float64)))
    if reduction == "sum":
        return loss, 2 * r
    n = r.size
    if n == 0:
        return 0.0, r
    # dl/dp = 2 (p - y) / N
    r *= p.dtype.type(2.0 / n)
    return loss / n, r
