"""Fused optimizer update loops over flat 1-D parameter buffers, GIL released.

Notation: p the parameters, g the gradient, n the buffer length; lr, momentum, beta1, beta2, eps,
weight_decay (wd) as in ``torch.optim``. Each update reads every buffer once and writes it once
(one pass, no temporaries), and follows PyTorch's single-tensor code path operation by operation,
so float64 results agree with ``torch.optim`` to round-off.

SGD (torch.optim.SGD):
    (1) d = g + wd * p
    (2) buf = d                                      on the first step
        buf = momentum * buf + (1 - dampening) * d   afterwards
    (3) d = d + momentum * buf  (nesterov)   or   d = buf
    (4) p = p - lr * d

Adam / AdamW (torch.optim.Adam / AdamW), step k >= 1:
    (1) g = g + wd * p                  Adam (L2 penalty added to the gradient)
        p = p * (1 - lr * wd)           AdamW (decoupled decay)
    (2) m = lerp(m, g, 1 - beta1)
    (3) v = beta2 * v + (1 - beta2) * g * g
    (4) p = p - lr / (1 - beta1**k) * m / (sqrt(v) / sqrt(1 - beta2**k) + eps)

The callers (fastrnn/optim.py) validate hyper-parameters and check the gradient for NaN/Inf with
``count_nonfinite`` before any update, so a refused step changes nothing.
"""
from cython cimport floating
from libc.math cimport fabs, isfinite, pow, sqrt

from .blas cimport nrm2


cdef inline void _check_sizes(Py_ssize_t n, object others, tuple names) except *:
    cdef Py_ssize_t k
    for k in range(len(others)):
        if others[k] is not None and others[k] != n:
            raise ValueError(f"kernel argument {names[k]}: expected {n} elements like param, got {others[k]}")


def count_nonfinite(const floating[::1] x):
    """Number of NaN or +-Inf entries in x."""
    cdef Py_ssize_t i, n = x.shape[0], count = 0
    with nogil:
        # count = np.count_nonzero(~np.isfinite(x))
        for i in range(n):
            if not isfinite(x[i]):
                count += 1
    return count


def norm2(const floating[::1] x):
    """sqrt(sum(x ** 2)) as a Python float, overflow-safe (BLAS nrm2 scales), in chunks of < 2**31."""
    cdef Py_ssize_t start = 0, n = x.shape[0]
    cdef int chunk
    cdef double total = 0.0, part
    cdef Py_ssize_t CHUNK = 1 << 30
    with nogil:
        while start < n:
            chunk = <int>(CHUNK if n - start > CHUNK else n - start)
            # part = np.linalg.norm(x[start:start + chunk])
            part = <double>nrm2(chunk, &x[start])
            # total = np.hypot(total, part)  (both >= 0; scaled so squares cannot overflow)
            if not isfinite(part) or not isfinite(total):
                total = total + fabs(part)  # NaN or Inf propagates
            else:
                if part > total:
                    total, part = part, total
                if total > 0.0:
                    total = total * sqrt(1.0 + (part / total) * (part / total))
            start += chunk
    return total


def sgd_step(floating[::1] param, const floating[::1] grad, floating[::1] velocity,
             double lr, double momentum, double dampening, double weight_decay, bint nesterov, bint first):
    """One torch.optim.SGD update of ``param`` in place. ``velocity`` may be None when momentum == 0;
    ``first`` marks the first step, where the momentum buffer starts as the gradient itself."""
    cdef Py_ssize_t i, n = param.shape[0]
    cdef bint use_momentum = momentum != 0.0
    cdef floating d, buf
    cdef floating f_lr = <floating>lr, f_mom = <floating>momentum
    cdef floating f_damp = <floating>(1.0 - dampening), f_wd = <floating>weight_decay
    if use_momentum and velocity is None:
        raise ValueError("kernel argument velocity: required when momentum != 0")
    _check_sizes(n, (grad.shape[0], velocity.shape[0] if use_momentum else None), ("grad", "velocity"))
    with nogil:
        for i in range(n):
            d = grad[i]
            if weight_decay != 0.0:
                # (1) d = g + wd * p
                d = d + f_wd * param[i]
            if use_momentum:
                if first:
                    # (2) buf = d
                    buf = d
                else:
                    # (2) buf = momentum * buf + (1 - dampening) * d
                    buf = velocity[i] * f_mom + f_damp * d
                velocity[i] = buf
                # (3) d = d + momentum * buf  or  d = buf
                d = d + f_mom * buf if nesterov else buf
            # (4) p = p - lr * d
            param[i] = param[i] + (-f_lr) * d


def adam_step(floating[::1] param, const floating[::1] grad, floating[::1] m, floating[::1] v,
              double lr, double beta1, double beta2, double eps, double weight_decay, bint decoupled,
              long long step):
    """One torch.optim.Adam (``decoupled=False``) or AdamW (``decoupled=True``) update, ``step`` >= 1."""
    cdef Py_ssize_t i, n = param.shape[0]
    cdef floating g, m_i, v_i, denom
    cdef double bc1, bc2_sqrt
    cdef floating f_wd = <floating>weight_decay, f_decay = <floating>(1.0 - lr * weight_decay)
    cdef floating w = <floating>(1.0 - beta1), f_beta2 = <floating>beta2, f_1mb2 = <floating>(1.0 - beta2)
    cdef floating f_eps = <floating>eps, f_step_size, f_bc2_sqrt
    cdef bint small_weight = fabs(1.0 - beta1) < 0.5
    if step < 1:
        raise ValueError(f"kernel argument step: expected >= 1, got {step}")
    _check_sizes(n, (grad.shape[0], m.shape[0], v.shape[0]), ("grad", "m", "v"))
    # bias corrections in double, as torch computes them in Python floats
    bc1 = 1.0 - pow(beta1, <double>step)
    bc2_sqrt = sqrt(1.0 - pow(beta2, <double>step))
    f_step_size = <floating>(lr / bc1)
    f_bc2_sqrt = <floating>bc2_sqrt
    with nogil:
        for i in range(n):
            g = grad[i]
            if weight_decay != 0.0:
                if decoupled:
                    # (1) p = p * (1 - lr * wd)
                    param[i] = param[i] * f_decay
                else:
                    # (1) g = g + wd * p
                    g = g + f_wd * param[i]
            # (2) m = lerp(m, g, w) with w = 1 - beta1, in torch's two-branch form
            m_i = m[i]
            if small_weight:
                m_i = m_i + w * (g - m_i)
            else:
                m_i = g - (g - m_i) * (<floating>1 - w)
            m[i] = m_i
            # (3) v = beta2 * v + (1 - beta2) * g * g
            v_i = v[i] * f_beta2
            v_i = v_i + f_1mb2 * g * g
            v[i] = v_i
            # (4) p = p - step_size * m / (sqrt(v) / sqrt(1 - beta2**k) + eps)
            denom = sqrt(v_i) / f_bc2_sqrt + f_eps
            param[i] = param[i] + (-f_step_size) * (m_i / denom)
