"""Row-major BLAS wrappers (float and double) over ``scipy.linalg.cython_blas``.

BLAS is column-major. A row-major matrix M (r x c, leading dimension ld) is, to BLAS, the column-major
matrix M^T (c x r) with the same ld. So the row-major product C = op(A) @ op(B) is computed as the
column-major product C^T = op(B)^T @ op(A)^T: swap the operands and the sizes M and N, keep the flags.
One product does not go to BLAS: a single row times W^T with W stored row-major (gemv.h).
"""
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec
from scipy.linalg.cython_blas cimport dgemm, dgemv, daxpy, dnrm2, sgemm, sgemv, saxpy, snrm2


cdef extern from "gemv.h" nogil:
    void fr_gemv_dot_f(int N, int K, float alpha, const float* W, int ldw, const float* x, float beta, float* y,
                       int desc)
    void fr_gemv_dot_d(int N, int K, double alpha, const double* W, int ldw, const double* x, double beta,
                       double* y, int desc)
    float fr_gemv_read_f(int N, int K, const float* W, int ldw)
    double fr_gemv_read_d(int N, int K, const double* W, int ldw)


cdef extern from "blas_threads.h" nogil:
    ctypedef int (*fr_threads_fn)()
    fr_threads_fn fr_find_blas_threads(void* blas_function)

# found once, when this module is imported; NULL when the BLAS library is not one blas_threads.h knows
cdef fr_threads_fn _blas_threads_fn = fr_find_blas_threads(<void*>sgemm)


cdef int blas_threads() noexcept nogil:
    if _blas_threads_fn == NULL:
        return -1
    return _blas_threads_fn()


cdef void gemm(bint trans_a, bint trans_b, int M, int N, int K, floating alpha,
               const floating* A, int lda, const floating* B, int ldb,
               floating beta, floating* C, int ldc) noexcept nogil:
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    cdef char gt
    cdef int m, n, inc_x, inc_y, ld
    cdef const floating* mat
    cdef const floating* vec
    if M <= 0 or N <= 0:
        return
    if K <= 0:
        # C = beta * C: an empty sum. Not reached by fastrnn's kernels (sizes are validated >= 1).
        return
    if M == 1 and trans_b and not trans_a:
        # c[N] = alpha * B @ a[K] + beta * c, B stored (N, K): rows of B are contiguous, and so is a
        # (row 0 of A); gemv.h is faster than BLAS's GEMV for this one (the batch-1 step).
        if floating is float:
            fr_gemv_dot_f(N, K, alpha, B, ldb, A, beta, C, 0)
        else:
            fr_gemv_dot_d(N, K, alpha, B, ldb, A, beta, C, 0)
        return
    if M == 1 or N == 1:
        if M == 1:
            # c[N] = alpha * op(B)^T @ a[K] + beta * c, a = row 0 of op(A), c = row 0 of C
            # B stored (K, N) row-major is B^T (N x K) to BLAS: op 'N'; stored (N, K): op 'T'.
            gt = b'T' if trans_b else b'N'
            m, n = (K, N) if trans_b else (N, K)
            mat, ld, vec = B, ldb, A
            inc_x = lda if trans_a else 1
            inc_y = 1
        else:
            # c[M] = alpha * op(A) @ b[K] + beta * c, b = column 0 of op(B), c = column 0 of C
            # A stored (M, K) row-major is A^T (K x M) to BLAS: op 'T'; stored (K, M): op 'N'.
            gt = b'N' if trans_a else b'T'
            m, n = (M, K) if trans_a else (K, M)
            mat, ld, vec = A, lda, B
            inc_x = 1 if trans_b else ldb
            inc_y = ldc
        if floating is float:
            sgemv(&gt, &m, &n, &alpha, <float*>mat, &ld, <float*>vec, &inc_x, &beta, C, &inc_y)
        else:
            dgemv(&gt, &m, &n, &alpha, <double*>mat, &ld, <double*>vec, &inc_x, &beta, C, &inc_y)
        return
    # C^T[N, M] = op(B)^T @ op(A)^T, column-major
    if floating is float:
        sgemm(&tb, &ta, &N, &M, &K, &alpha, <float*>B, &ldb, <float*>A, &lda, &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &N, &M, &K, &alpha, <double*>B, &ldb, <double*>A, &lda, &beta, C, &ldc)


cdef void gemv_rows(int N, int K, floating alpha, const floating* W, int ldw, const floating* x, floating beta,
                    floating* y, bint desc) noexcept nogil:
    if N <= 0 or K <= 0:
        return   # not reached by fastrnn's kernels (sizes are validated >= 1)
    # y = alpha * W @ x + beta * y
    if floating is float:
        fr_gemv_dot_f(N, K, alpha, W, ldw, x, beta, y, desc)
    else:
        fr_gemv_dot_d(N, K, alpha, W, ldw, x, beta, y, desc)


cdef void axpy(int n, floating alpha, const floating* x, floating* y) noexcept nogil:
    cdef int one = 1
    if floating is float:
        saxpy(&n, &alpha, <float*>x, &one, y, &one)
    else:
        daxpy(&n, &alpha, <double*>x, &one, y, &one)


cdef floating nrm2(int n, const floating* x) noexcept nogil:
    cdef int one = 1
    if floating is float:
        return snrm2(&n, <float*>x, &one)
    else:
        return dnrm2(&n, <double*>x, &one)


# ---- Python-visible entry points, for testing the wrappers against numpy ----------------------

def _gemm_test(bint trans_a, bint trans_b, floating[:, ::1] A, floating[:, ::1] B, floating[:, ::1] C,
               floating alpha, floating beta):
    """C = alpha * op(A) @ op(B) + beta * C on C-contiguous arrays (test hook)."""
    cdef int M = C.shape[0], N = C.shape[1]
    cdef int K = A.shape[0] if trans_a else A.shape[1]
    if (B.shape[1] if trans_b else B.shape[0]) != K or (A.shape[1] if trans_a else A.shape[0]) != M \
            or (B.shape[0] if trans_b else B.shape[1]) != N:
        raise ValueError("shapes do not agree")
    gemm(trans_a, trans_b, M, N, K, alpha, &A[0, 0], A.shape[1], &B[0, 0], B.shape[1], beta, &C[0, 0], N)


def _gemv_rows_test(floating[:, ::1] W, floating[::1] x, floating[::1] y, floating alpha, floating beta,
                    bint desc):
    """y = alpha * W @ x + beta * y through gemv_rows, W stored (N, K); desc: rows last first (test hook)."""
    if x.shape[0] != W.shape[1] or y.shape[0] != W.shape[0]:
        raise ValueError("shapes do not agree")
    gemv_rows(W.shape[0], W.shape[1], alpha, &W[0, 0], W.shape[1], &x[0], beta, &y[0], desc)


def _blas_threads():
    """The thread count BLAS reports now, or -1 when unknown (test hook)."""
    return blas_threads()


def _nrm2_test(floating[::1] x):
    return nrm2(x.shape[0], &x[0])


cdef double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + 1e-9 * ts.tv_nsec


def _time_one_row(bint ours, floating[:, ::1] W, floating[::1] x, floating[::1] y, int repeats):
    """Seconds for `repeats` products y = W @ x, W stored (N, K), without the GIL: by gemv.h (ours) or by
    BLAS's GEMV (what gemm used before gemv.h); benchmark hook for bench/one_row.py."""
    cdef int N = W.shape[0], K = W.shape[1], r, one = 1
    cdef char gt = b'T'
    cdef floating alpha = 1, beta = 0
    cdef double t0
    if x.shape[0] != K or y.shape[0] != N:
        raise ValueError("shapes do not agree")
    with nogil:
        t0 = _now()
        for r in range(repeats):
            if ours:
                # y = W @ x
                if floating is float:
                    fr_gemv_dot_f(N, K, alpha, &W[0, 0], K, &x[0], beta, &y[0], 0)
                else:
                    fr_gemv_dot_d(N, K, alpha, &W[0, 0], K, &x[0], beta, &y[0], 0)
            else:
                # y = W @ x: W^T (K x N) column-major to BLAS, op 'T'
                if floating is float:
                    sgemv(&gt, &K, &N, &alpha, &W[0, 0], &K, &x[0], &one, &beta, &y[0], &one)
                else:
                    dgemv(&gt, &K, &N, &alpha, &W[0, 0], &K, &x[0], &one, &beta, &y[0], &one)
        t0 = _now() - t0
    return t0


def _time_read(floating[:, ::1] W, int repeats):
    """Seconds for `repeats` reads of all of W (its sum, gemv.h's gemv_read), without the GIL: the time W
    takes to stream in, the floor of a one-row product over W; benchmark hook for bench/one_row.py.
    Returns (seconds, the sum)."""
    cdef int N = W.shape[0], K = W.shape[1], r
    cdef double t0, total = 0
    if K % (256 // sizeof(floating)) != 0:
        raise ValueError(f"W must have a multiple of {256 // sizeof(floating)} columns, got {K}")
    with nogil:
        t0 = _now()
        for r in range(repeats):
            if floating is float:
                total += fr_gemv_read_f(N, K, &W[0, 0], K)
            else:
                total += fr_gemv_read_d(N, K, &W[0, 0], K)
        t0 = _now() - t0
    return t0, total
