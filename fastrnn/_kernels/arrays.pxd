# The kernels' door check: turn an ndarray into a raw pointer only if it is exactly what the
# kernel will read or write (dtype, C order, enough elements). It costs a few nanoseconds, so it is
# always on: a wrong call from Python raises ValueError instead of reading out of bounds.
cimport numpy as cnp


cdef inline void* data_ptr(object a, Py_ssize_t n, int typenum, str name) except NULL:
    """Pointer to a C-contiguous array of ``typenum`` holding at least ``n`` elements."""
    cdef cnp.ndarray arr
    if not isinstance(a, cnp.ndarray):
        raise TypeError(f"kernel argument {name}: expected a numpy array, got {type(a).__name__}")
    arr = <cnp.ndarray>a
    if cnp.PyArray_TYPE(arr) != typenum or not cnp.PyArray_IS_C_CONTIGUOUS(arr):
        raise ValueError(f"kernel argument {name}: expected a C-contiguous array of type {typenum}, "
                         f"got dtype {arr.dtype} (C-contiguous: {arr.flags.c_contiguous})")
    if cnp.PyArray_SIZE(arr) < n:
        raise ValueError(f"kernel argument {name}: expected at least {n} elements, got {cnp.PyArray_SIZE(arr)}")
    return cnp.PyArray_DATA(arr)


cdef inline void* opt_ptr(object a, Py_ssize_t n, int typenum, str name) except? NULL:
    """Like data_ptr, but None gives NULL (an absent optional buffer such as a bias)."""
    if a is None:
        return NULL
    return data_ptr(a, n, typenum, name)
