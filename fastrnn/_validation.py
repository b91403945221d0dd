"""The one place that turns user input into kernel-ready arrays, with clear errors.

Everything a compiled kernel reads passes through here first: sizes are checked to be positive
integers that fit BLAS's 32-bit ints, arrays are converted once to the layer's dtype and to
C order (copied only when needed; never reinterpreted), and every shape is compared with the
expected one, naming both in the message. Compiled code trusts what leaves this module.
"""
from __future__ import annotations

import numbers

import numpy as np

#: BLAS (LP64) takes 32-bit ints for every dimension and leading dimension.
INT_MAX = 2**31 - 1

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_size(name, value, minimum=1):
    """A positive (>= minimum) Python or numpy integer that fits a 32-bit BLAS int."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if value > INT_MAX:
        raise ValueError(f"{name} must be at most {INT_MAX} (a 32-bit BLAS int), got {value}")
    return value


def check_float(name, value, low=None, high=None, low_open=False):
    """A finite real number, optionally within [low, high] (or (low, high] with low_open)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        bound = f"> {low}" if low_open else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


def check_dtype(dtype):
    """The layer dtype: float32 or float64 only."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from exc
    if dt not in FLOAT_DTYPES or (isinstance(dtype, str) and dtype not in ("float32", "float64")):
        raise TypeError(f"dtype must be np.float32 or np.float64, got {dtype!r}")
    return dt


def check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return value


def check_bytes(nbytes, what):
    """Refuse an allocation that cannot succeed, before anything is built."""
    try:
        import os

        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return
    if nbytes > total:
        raise MemoryError(f"{what} needs {nbytes:,} bytes, more than this machine's {total:,} bytes of memory")


def as_array(x, name, dtype, copy=False):
    """Convert array-likes to a C-contiguous array of ``dtype``; reject what is not numbers.

    Integers and float16 are converted; bool, complex, object and strings raise ``TypeError``.
    Byte-swapped input becomes native. ``copy=True`` always returns a fresh array.
    """
    if x is None or isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}")
    if hasattr(x, "detach") and hasattr(x, "numpy"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{name} must be an array of numbers; could not convert it: {exc}") from exc
    kind = x.dtype.kind
    if kind not in "fiu" or x.dtype == np.bool_:
        raise TypeError(f"{name} must hold real numbers (float or int), got dtype {x.dtype}")
    if copy:
        return np.array(x, dtype=dtype, order="C", copy=True)
    return np.ascontiguousarray(x, dtype=dtype)


def check_finite(x, name):
    """Raise ValueError naming the first NaN/Inf; cheap sum-first test (as scikit-learn does)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(x)):
            return
    bad = np.argwhere(~np.isfinite(x))
    if len(bad):
        where = ", ".join(f"{k}={int(v)}" for k, v in zip(_axis_names(x.ndim), bad[0]))
        raise ValueError(f"{name} contains {x[tuple(bad[0])]} at ({where})")


def _axis_names(ndim):
    return {1: ("i",), 2: ("b", "i"), 3: ("t", "b", "i")}.get(ndim, tuple(f"axis{k}" for k in range(ndim)))


def shape_str(shape):
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
