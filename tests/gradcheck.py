"""Central differences for the gradient checks (PyTorch's gradcheck defaults: eps 1e-6, atol 1e-5, rtol 1e-3)."""
import numpy as np

EPS, ATOL, RTOL = 1e-6, 1e-5, 1e-3


def numeric_grad(f, arr, eps=EPS):
    """Central differences of the scalar f() with respect to every entry of arr (perturbed in place)."""
    g = np.zeros(arr.shape)
    for idx in np.ndindex(arr.shape):
        old = arr[idx]
        arr[idx] = old + eps
        f_plus = f()
        arr[idx] = old - eps
        f_minus = f()
        arr[idx] = old
        g[idx] = (f_plus - f_minus) / (2 * eps)
    return g
