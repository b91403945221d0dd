# Row helpers shared by the three time-step kernels. Notation: B rows of a batch, a row is
# "active" at step t when t < lengths[b] (or always, when lengths is NULL); an inactive row
# outputs zeros, keeps its state, and passes its state gradient through unchanged.
from cython cimport floating
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset
from numpy cimport int64_t

from .blas cimport blas_threads, gemm


cdef inline bint active(const int64_t* lengths, int t, int b) noexcept nogil:
    return lengths == NULL or t < lengths[b]


cdef inline void emit(floating* y_t, int ldy, const floating* h_t, int B, int P,
                      const int64_t* lengths, int t) noexcept nogil:
    # Y[t, b, col:col+P] = h_t[b] if active else 0
    cdef int b
    if y_t == NULL:
        return
    for b in range(B):
        if active(lengths, t, b):
            memcpy(y_t + <Py_ssize_t>b * ldy, h_t + <Py_ssize_t>b * P, P * sizeof(floating))
        else:
            memset(y_t + <Py_ssize_t>b * ldy, 0, P * sizeof(floating))


cdef inline void hold_inactive(floating* new, const floating* prev, int B, int n,
                               const int64_t* lengths, int t) noexcept nogil:
    # new[b] = prev[b] for every inactive row b (its state does not move)
    cdef int b
    if lengths == NULL:
        return
    for b in range(B):
        if not active(lengths, t, b):
            memcpy(new + <Py_ssize_t>b * n, prev + <Py_ssize_t>b * n, n * sizeof(floating))


cdef inline void gather_dh(floating* dh, const floating* dh_next, const floating* dy_t, int ldy,
                           int B, int P, const int64_t* lengths, int t) noexcept nogil:
    # dh[b] = dh_next[b] + dY[t, b] for active rows; dh_next[b] for inactive rows (no output there)
    cdef int b, j
    cdef Py_ssize_t o
    for b in range(B):
        o = <Py_ssize_t>b * P
        if active(lengths, t, b):
            for j in range(P):
                dh[o + j] = dh_next[o + j] + dy_t[<Py_ssize_t>b * ldy + j]
        else:
            memcpy(dh + o, dh_next + o, P * sizeof(floating))


cdef inline void zero_row(floating* a, int n) noexcept nogil:
    memset(a, 0, n * sizeof(floating))


cdef inline void add_col_sums_with(const floating* ones, floating* db, const floating* dG, Py_ssize_t rows, int n,
                                   int ld) noexcept nogil:
    # db[:n] += dG[:rows, :n].sum(axis=0), as the GEMV db += ones[rows] @ dG (ones: at least rows ones;
    # rows <= INT_MAX: validated); nothing when db is NULL (no bias). With more than one BLAS thread, a
    # loop on the calling thread instead: BLAS's GEMV would wake its threads, which then spin (OpenBLAS:
    # ~100 ms) on the cores the next call's row blocks need (packed.pxd, own_parts).
    if db == NULL:
        return
    if blas_threads() != 1:
        _col_sums_loop(db, dG, rows, n, ld)
    else:
        gemm(False, False, 1, n, <int>rows, <floating>1, ones, <int>rows, dG, ld, <floating>1, db, n)


cdef inline void _col_sums_loop(floating* db, const floating* dG, Py_ssize_t rows, int n, int ld) noexcept nogil:
    # db[:n] += dG[:rows, :n].sum(axis=0), a row at a time (the inner loop vectorizes)
    cdef Py_ssize_t r
    cdef int j
    cdef const floating* row
    for r in range(rows):
        row = dG + r * ld
        for j in range(n):
            db[j] += row[j]


cdef inline void add_col_sums(floating* db, const floating* dG, Py_ssize_t rows, int n, int ld) noexcept nogil:
    # db[:n] += dG[:rows, :n].sum(axis=0), with ones of its own (add_col_sums_with)
    cdef Py_ssize_t r
    cdef int j
    cdef floating* ones
    if db == NULL:
        return
    ones = <floating*>malloc(rows * sizeof(floating))
    if ones != NULL:
        for r in range(rows):
            ones[r] = 1
        add_col_sums_with(ones, db, dG, rows, n, ld)
        free(ones)
        return
    _col_sums_loop(db, dG, rows, n, ld)  # no memory for the ones: the plain loop
