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
    if (cnp.PyArray_TYPE(arr) != typenum or not cnp.PyArray_IS_C_CONTIGUOUS(arr)
            or not cnp.PyArray_ISNOTSWAPPED(arr)):
        raise ValueError(f"kernel argument {name}: expected a C-contiguous native-byte-order array of type "
                         f"{typenum}, got dtype {arr.dtype} (C-contiguous: {arr.flags.c_contiguous})")
    if cnp.PyArray_SIZE(arr) < n:
        raise ValueError(f"kernel argument {name}: expected at least {n} elements, got {cnp.PyArray_SIZE(arr)}")
    return cnp.PyArray_DATA(arr)


cdef inline void* opt_ptr(object a, Py_ssize_t n, int typenum, str name) except? NULL:
    """Like data_ptr, but None gives NULL (an absent optional buffer such as a bias)."""
    if a is None:
        return NULL
    return data_ptr(a, n, typenum, name)


cdef inline bint is_rows(object a, int typenum, Py_ssize_t rows, Py_ssize_t cols):
    """True when ``a`` is already a C-contiguous, native-byte-order 2-D (rows, cols) array of ``typenum`` (rows < 0: any
    count >= 1). The cells' fast path takes such arrays as they are; anything else goes through
    fastrnn._validation."""
    cdef cnp.ndarray arr
    if not isinstance(a, cnp.ndarray):
        return False
    arr = <cnp.ndarray>a
    return (cnp.PyArray_NDIM(arr) == 2 and cnp.PyArray_TYPE(arr) == typenum and cnp.PyArray_IS_C_CONTIGUOUS(arr)
            and cnp.PyArray_ISNOTSWAPPED(arr) and cnp.PyArray_DIM(arr, 1) == cols and (cnp.PyArray_DIM(arr, 0) == rows if rows >= 0
                                                     else cnp.PyArray_DIM(arr, 0) >= 1))


cdef inline cnp.ndarray empty_rows(Py_ssize_t rows, Py_ssize_t cols, int typenum):
    cdef cnp.npy_intp dims[2]
    dims[0] = rows
    dims[1] = cols
    return cnp.PyArray_EMPTY(2, dims, typenum, 0)


cdef inline Py_ssize_t step_rows(object x, object h, cnp.ndarray W_ih, cnp.ndarray W_hh, int typenum):
    """The row count B when x (B, I) and h (B, H) are ready for a cell's compiled step as they are
    (I and H read off W_ih and W_hh), else -1: the caller then validates and converts them."""
    cdef Py_ssize_t B
    if not is_rows(x, typenum, -1, cnp.PyArray_DIM(W_ih, 1)):
        return -1
    B = cnp.PyArray_DIM(<cnp.ndarray>x, 0)
    return B if is_rows(h, typenum, B, cnp.PyArray_DIM(W_hh, 1)) else -1


cdef inline bint is_block(object a, int typenum, Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t n2):
    """True when ``a`` is already a C-contiguous, native-byte-order 3-D (n0, n1, n2) array of ``typenum``
    (n0 or n1 < 0: any count >= 1). The layers' fast path takes such arrays as they are."""
    cdef cnp.ndarray arr
    if not isinstance(a, cnp.ndarray):
        return False
    arr = <cnp.ndarray>a
    return (cnp.PyArray_NDIM(arr) == 3 and cnp.PyArray_TYPE(arr) == typenum and cnp.PyArray_IS_C_CONTIGUOUS(arr)
            and cnp.PyArray_ISNOTSWAPPED(arr) and cnp.PyArray_DIM(arr, 2) == n2
            and (cnp.PyArray_DIM(arr, 0) == n0 if n0 >= 0 else cnp.PyArray_DIM(arr, 0) >= 1)
            and (cnp.PyArray_DIM(arr, 1) == n1 if n1 >= 0 else cnp.PyArray_DIM(arr, 1) >= 1))


cdef inline cnp.ndarray empty_block(Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t n2, int typenum):
    cdef cnp.npy_intp dims[3]
    dims[0] = n0
    dims[1] = n1
    dims[2] = n2
    return cnp.PyArray_EMPTY(3, dims, typenum, 0)


cdef inline Py_ssize_t seq_rows(object x, object h0, cnp.ndarray W_ih, cnp.ndarray W_hh, int typenum):
    """The row count B when x (T, B, I) and h0 (1, B, H) are ready for a layer's compiled run as they are
    (I and H read off W_ih and W_hh), else -1: the caller then validates and converts them."""
    cdef Py_ssize_t B
    if not is_block(x, typenum, -1, -1, cnp.PyArray_DIM(W_ih, 1)):
        return -1
    B = cnp.PyArray_DIM(<cnp.ndarray>x, 1)
    return B if is_block(h0, typenum, 1, B, cnp.PyArray_DIM(W_hh, 1)) else -1
