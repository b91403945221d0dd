# The Cython door to packed.h: the packed-weight GEMM for the per-step recurrent products.
# Layout, blocking and the exact product are described in packed.h.
from cython cimport floating

from .blas cimport gemm


cdef extern from "packed.h" nogil:
    void* fr_packed_alloc(size_t n_bytes)
    size_t fr_packed_size_f(int K, int N)
    size_t fr_packed_size_d(int K, int N)
    void fr_pack_bt_f(int K, int N, const float* W, int ldw, float* Wp)
    void fr_pack_bt_d(int K, int N, const double* W, int ldw, double* Wp)
    void fr_pack_b_f(int K, int N, const float* W, int ldw, float* Wp)
    void fr_pack_b_d(int K, int N, const double* W, int ldw, double* Wp)
    void fr_gemm_packed_f(int M, int N, int K, const float* A, int lda, const float* Wp, float* C, int ldc, float beta)
    void fr_gemm_packed_d(int M, int N, int K, const double* A, int lda, const double* Wp, double* C, int ldc, double beta)


# A packed copy of op(W) (K x N) in fresh 64-byte aligned memory (free it with free), or NULL when
# out of memory. trans: W stored (N, K) and op(W) = W^T; else W stored (K, N) and op(W) = W.
cdef inline floating* pack_weights(bint trans, int K, int N, const floating* W, int ldw) noexcept nogil:
    cdef floating* Wp
    if floating is float:
        Wp = <float*>fr_packed_alloc(fr_packed_size_f(K, N) * sizeof(float))
        if Wp != NULL:
            if trans:
                fr_pack_bt_f(K, N, W, ldw, Wp)
            else:
                fr_pack_b_f(K, N, W, ldw, Wp)
    else:
        Wp = <double*>fr_packed_alloc(fr_packed_size_d(K, N) * sizeof(double))
        if Wp != NULL:
            if trans:
                fr_pack_bt_d(K, N, W, ldw, Wp)
            else:
                fr_pack_b_d(K, N, W, ldw, Wp)
    return Wp


# C[M, N] = A[M, K] @ op(W) + beta * C, op(W) packed by pack_weights (row-major; beta = 0: C not read)
cdef inline void gemm_packed(int M, int N, int K, const floating* A, int lda, const floating* Wp,
                             floating beta, floating* C, int ldc) noexcept nogil:
    if floating is float:
        fr_gemm_packed_f(M, N, K, A, lda, Wp, C, ldc, beta)
    else:
        fr_gemm_packed_d(M, N, K, A, lda, Wp, C, ldc, beta)


# The packed op(W) for the per-step products of a T-step call with B rows, or NULL, meaning "use BLAS
# gemm". The rule, from bench/packed_gemm.py on an AVX-512 machine (1 and 2 threads):
# - a call of T < 4 steps does not repay the packing (cells, single steps: BLAS's GEMV/GEMM);
# - B == 1 too: packed beats OpenBLAS's GEMV 1.2-1.8x per sequence (T=50, H 64-256, 1 and 2 threads,
#   fr.LSTM/GRU/RNN inference timed alone), and it keeps BLAS threads out of the step loop;
# - past 16 MiB of weights the packed GEMM stops beating BLAS (memory bound);
# - B > 32: with 1 BLAS thread packed is still ~1.4x faster per step, but with 2 threads OpenBLAS
#   splits B >= 64 rows across both cores and wins (0.8-0.9x), while at B <= 32 packed wins either way.
#   The kernels do not know BLAS's thread count, so B > 32 stays with BLAS.
# NULL also when out of memory (BLAS then does the work). Free the result with free.
cdef inline floating* pack_for_steps(int T, int B, bint trans, int K, int N, const floating* W,
                                     int ldw) noexcept nogil:
    if T < 4 or B > 32 or <size_t>K * <size_t>N * sizeof(floating) > (<size_t>16) << 20:
        return NULL
    return pack_weights(trans, K, N, W, ldw)


# C[M, N] = A @ op(W) + beta * C: gemm_packed on Wp (the packed op(W)) when it is not NULL, else BLAS gemm
# on W (trans: W stored (N, K), op(W) = W^T; else W stored (K, N)).
cdef inline void gemm_step(const floating* Wp, bint trans, int M, int N, int K, const floating* A, int lda,
                           const floating* W, int ldw, floating beta, floating* C, int ldc) noexcept nogil:
    if Wp != NULL:
        gemm_packed(M, N, K, A, lda, Wp, beta, C, ldc)
    else:
        gemm(False, trans, M, N, K, <floating>1, A, lda, W, ldw, beta, C, ldc)
