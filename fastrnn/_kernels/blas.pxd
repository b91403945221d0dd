# The one door into BLAS: row-major, fused float/double wrappers over scipy.linalg.cython_blas.
# Every kernel calls these and never cimports scipy directly.
from cython cimport floating

# C[M, N] = alpha * op(A)[M, K] @ op(B)[K, N] + beta * C      (row-major; op = transpose when trans_*)
# Dispatches to GEMV when M == 1 or N == 1 (batch-1 steps), which BLAS runs faster; the one-row product
# a @ W^T with W stored (N, K) goes to gemv.h instead (faster still; see there).
cdef void gemm(bint trans_a, bint trans_b, int M, int N, int K, floating alpha,
               const floating* A, int lda, const floating* B, int ldb,
               floating beta, floating* C, int ldc) noexcept nogil

# y[N] = alpha * W @ x[K] + beta * y for W stored (N, K) row-major (one row times W^T): gemv.h, as gemm
# sends it there, with its rows taken last first when desc (packed.pxd, gemm_step)
cdef void gemv_rows(int N, int K, floating alpha, const floating* W, int ldw, const floating* x, floating beta,
                    floating* y, bint desc) noexcept nogil

# y[n] += alpha * x[n]
cdef void axpy(int n, floating alpha, const floating* x, floating* y) noexcept nogil

# sqrt(sum(x[n] ** 2))
cdef floating nrm2(int n, const floating* x) noexcept nogil

# The number of threads BLAS will use for the next call (it changes at run time, e.g. with
# threadpoolctl), or -1 when the BLAS library cannot be asked; see blas_threads.h.
cdef int blas_threads() noexcept nogil
