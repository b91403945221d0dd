"""The one place that turns user input into kernel-ready arrays, with clear errors.

Everything a compiled kernel reads passes through here first: sizes are checked to be positive
integers that fit BLAS's 32-bit ints, arrays are converted once to the layer's dtype and to
C order (copied only when needed; never reinterpreted), and every shape is compared with the
expected one, naming both in the message. Compiled code trusts what leaves this module.
"""
from __future__ import annotations

import functools
import numbers
import os

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
    if dtype is None:
        raise TypeError("dtype must be np.float32 or np.float64, got None")
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from exc
    if dt not in FLOAT_DTYPES or (isinstance(dtype, str) and dtype not in ("float32", "float64")):
        raise TypeError(f"dtype must be np.float32 or np.float64, got {dtype!r}")
    return dt


def check_bool(name, value):
    """A flag: True/False (or numpy's bool_, or the integers 0 and 1); a string such as "False" is refused."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")


def check_seed(seed):
    """None, or a non-negative integer seed for numpy's default_rng."""
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise TypeError(f"seed must be None or a non-negative integer, got {type(seed).__name__} {seed!r}")
    return int(seed)


def check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return value


@functools.lru_cache(maxsize=1)
def _machine_bytes():
    """This machine's physical memory in bytes (asked once), or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return None


def check_bytes(nbytes, what):
    """Refuse an allocation that cannot succeed, before anything is built."""
    total = _machine_bytes()
    if total is not None and nbytes > total:
        raise MemoryError(f"{what} needs {nbytes:,} bytes, more than this machine's {total:,} bytes of memory")


def as_array(x, name, dtype, copy=False):
    """Convert array-likes to a C-contiguous array of ``dtype``; reject what is not numbers.

    Integers and float16 are converted; bool, complex, object and strings raise ``TypeError``.
    Byte-swapped input becomes native. ``copy=True`` always returns a fresh array. ``dtype=None`` only
    checks the kind and returns the array as it is (no conversion, no copy), for shape checks first.
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
    if dtype is None:
        return x
    if copy:
        return np.array(x, dtype=dtype, order="C", copy=True)
    return np.asarray(x, dtype=dtype, order="C")  # copies only when needed; keeps 0-d arrays 0-d


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


# ---- recurrent inputs --------------------------------------------------------------------------

def sequence_input(x, input_size, dtype, batch_first, copy=False, check_sizes=None):
    """x as a C-contiguous time-major (T, B, I) array of ``dtype``, and whether it was batched.

    Accepts (T, I) unbatched input, or (T, B, I) / (B, T, I) with batch_first. ``check_sizes(T, B)``
    runs before anything is copied, so a huge broadcast view is refused without allocating.
    """
    if (type(x) is np.ndarray and x.ndim == 3 and x.dtype == dtype and not batch_first and not copy
            and x.flags.c_contiguous and x.shape[2] == input_size and x.shape[0] > 0 and x.shape[1] > 0):
        # already what the kernels read (the common case): only the sizes are left to check
        check_buffer("x (T*B x I)", *x.shape)
        if check_sizes is not None:
            check_sizes(x.shape[0], x.shape[1])
        return x, True
    x = as_array(x, "x", None)
    if x.ndim not in (2, 3):
        raise ValueError(f"x must be 2-D (T, I) or 3-D ({'B, T' if batch_first else 'T, B'}, I); "
                         f"got {x.ndim}-D with shape {shape_str(x.shape)}")
    batched = x.ndim == 3
    if not batched:
        x = x[:, None, :]
    elif batch_first:
        x = x.transpose(1, 0, 2)
    if x.shape[-1] != input_size:
        raise ValueError(f"x.shape[-1] must equal input_size={input_size}; got {x.shape[-1]}")
    T, B = x.shape[0], x.shape[1]
    if T == 0:
        raise ValueError("x has no time steps (T=0); sequences need T >= 1 (use a cell to stream step by step)")
    if B == 0:
        raise ValueError("x has an empty batch (B=0); need B >= 1")
    check_buffer("x (T*B x I)", T, B, input_size)
    if check_sizes is not None:
        check_sizes(T, B)
    if copy or not x.flags.c_contiguous or x.dtype != dtype:
        x = np.array(x, dtype=dtype, order="C", copy=True)
    return x, batched


def lengths_input(lengths, T, B):
    """``lengths`` as an int64 array (B,) with values in [1, T], or None when every row is full."""
    if lengths is None:
        return None
    if isinstance(lengths, (str, bytes)):
        raise TypeError(f"lengths must be an array of integers, got {type(lengths).__name__}")
    arr = np.asarray(lengths)
    if arr.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            fractional = ~np.isfinite(arr) | (arr != np.round(arr))
        if np.any(fractional):
            raise TypeError(f"lengths must hold integers, got non-integer values {arr[fractional][:3]}")
    elif arr.dtype.kind not in "iu" or arr.dtype == np.bool_:
        raise TypeError(f"lengths must hold integers, got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.shape[0] != B:
        raise ValueError(f"lengths must have shape ({B},), one per batch row; got {shape_str(arr.shape)}")
    bad = np.flatnonzero((arr < 1) | (arr > T))  # on the caller's values: uint64 2**63 must not wrap first
    if len(bad):
        b = int(bad[0])
        if arr[b] > T:
            raise ValueError(f"lengths[{b}]={arr[b]} exceeds T={T}")
        raise ValueError(f"lengths must be in [1, T={T}]; lengths[{b}] = {arr[b]}")
    arr = np.array(arr, dtype=np.int64, order="C")  # a private copy: kernels read it again in backprop
    if np.all(arr == T):
        return None
    return arr


def state_input(h, name, shape, dtype, batched):
    """A state of exactly ``shape`` (L*D, B, H) as a C-contiguous array of ``dtype``.

    Unbatched calls take (L*D, H). The message reminds that states stay (L*D, B, H) with batch_first.
    """
    if type(h) is np.ndarray and batched and h.shape == shape and h.dtype == dtype and h.flags.c_contiguous:
        return h  # already what the kernels read (the common case)
    h = as_array(h, name, dtype)
    want = shape if batched else (shape[0], shape[2])
    if h.ndim != len(want):
        raise ValueError(f"{name} must be {len(want)}-D with shape {shape_str(want)} for "
                         f"{'batched 3-D' if batched else 'unbatched 2-D'} input; got {h.ndim}-D {shape_str(h.shape)}")
    if h.shape != want:
        raise ValueError(f"{name} must have shape (L*D, B, H_out)={shape_str(want)}; got {shape_str(h.shape)} "
                         "(states stay (L*D, B, H) even with batch_first=True)" if batched else
                         f"{name} must have shape (L*D, H_out)={shape_str(want)}; got {shape_str(h.shape)}")
    if not batched:
        h = h[:, None, :]
    return np.ascontiguousarray(h)


def check_buffer(name, *dims):
    """Refuse a buffer whose element count or any dimension does not fit a 32-bit BLAS int."""
    n = 1
    for d in dims:
        n *= int(d)
    if n > INT_MAX:
        raise ValueError(f"{name} would hold {n:,} elements ({' x '.join(str(d) for d in dims)}); "
                         f"the BLAS kernels index at most {INT_MAX:,}: use a shorter sequence or smaller batch")
