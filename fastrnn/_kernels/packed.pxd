# The Cython door to packed.h: the packed-weight GEMM for the per-step recurrent products.
# Layout, blocking and the exact product are described in packed.h.
from cython cimport floating
from libc.stdlib cimport free

from .blas cimport blas_threads, gemm, gemv_rows


cdef extern from "packed.h" nogil:
    enum:
        FR_PACKED_BYTES
        FR_PACKED_KC
    void* fr_packed_alloc(size_t n_bytes)
    size_t fr_packed_size_f(int K, int N)
    size_t fr_packed_size_d(int K, int N)
    void fr_pack_bt_f(int K, int N, const float* W, int ldw, float* Wp, int Kp)
    void fr_pack_bt_d(int K, int N, const double* W, int ldw, double* Wp, int Kp)
    void fr_pack_b_f(int K, int N, const float* W, int ldw, float* Wp)
    void fr_pack_b_d(int K, int N, const double* W, int ldw, double* Wp)
    void fr_gemm_packed_f(int M, int N, int K1, const float* A1, int lda1, int K2, const float* A2, int lda2,
                          const float* Wp, float* C, int ldc, float beta, int desc)
    void fr_gemm_packed_d(int M, int N, int K1, const double* A1, int lda1, int K2, const double* A2, int lda2,
                          const double* Wp, double* C, int ldc, double beta, int desc)
    int fr_gemm_packed_at_f(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C,
                            int ldc, float beta)
    int fr_gemm_packed_at_d(int M, int N, int K, const double* A, int lda, const double* B, int ldb, double* C,
                            int ldc, double beta)
    int fr_next_order(int steps)


# A packed copy of op(W) (K x N) in fresh 64-byte aligned memory (free it with free), or NULL when
# out of memory. trans: W stored (N, K) and op(W) = W^T; else W stored (K, N) and op(W) = W.
cdef inline floating* pack_weights(bint trans, int K, int N, const floating* W, int ldw) noexcept nogil:
    cdef floating* Wp
    if floating is float:
        Wp = <float*>fr_packed_alloc(fr_packed_size_f(K, N) * sizeof(float))
        if Wp != NULL:
            if trans:
                fr_pack_bt_f(K, N, W, ldw, Wp, K)
            else:
                fr_pack_b_f(K, N, W, ldw, Wp)
    else:
        Wp = <double*>fr_packed_alloc(fr_packed_size_d(K, N) * sizeof(double))
        if Wp != NULL:
            if trans:
                fr_pack_bt_d(K, N, W, ldw, Wp, K)
            else:
                fr_pack_b_d(K, N, W, ldw, Wp)
    return Wp


# C[M, N] = A[M, K] @ op(W) + beta * C, op(W) packed by pack_weights (row-major; beta = 0: C not read);
# desc: W's panels read last first (see gemm_step)
cdef inline void gemm_packed(int M, int N, int K, const floating* A, int lda, const floating* Wp,
                             floating beta, floating* C, int ldc, bint desc=False) noexcept nogil:
    if floating is float:
        fr_gemm_packed_f(M, N, K, A, lda, 0, A, lda, Wp, C, ldc, beta, desc)
    else:
        fr_gemm_packed_d(M, N, K, A, lda, 0, A, lda, Wp, C, ldc, beta, desc)


# C[M, N] = A^T @ B + beta * C for A stored (K, M), B stored (K, N), row-major (beta = 0: C not read);
# returns -1, C untouched, when the kernel's scratch cannot be allocated
cdef inline int gemm_packed_at(int M, int N, int K, const floating* A, int lda, const floating* B, int ldb,
                               floating beta, floating* C, int ldc) noexcept nogil:
    if floating is float:
        return fr_gemm_packed_at_f(M, N, K, A, lda, B, ldb, C, ldc, beta)
    else:
        return fr_gemm_packed_at_d(M, N, K, A, lda, B, ldb, C, ldc, beta)


# The packed op([W1 W2]) = [W1^T; W2^T] ((K1 + K2) x N) for W1 stored (N, K1), W2 stored (N, K2), in
# fresh memory (free it with free), or NULL when out of memory or K1 + K2 > FR_PACKED_KC.
cdef inline floating* pack_weights_2(int K1, int K2, int N, const floating* W1, const floating* W2) noexcept nogil:
    cdef floating* Wp
    cdef int NR = 2 * FR_PACKED_BYTES // sizeof(floating)
    if K1 + K2 > FR_PACKED_KC:
        return NULL
    if floating is float:
        Wp = <float*>fr_packed_alloc(fr_packed_size_f(K1 + K2, N) * sizeof(float))
        if Wp != NULL:
            fr_pack_bt_f(K1, N, W1, K1, Wp, K1 + K2)
            fr_pack_bt_f(K2, N, W2, K2, Wp + K1 * NR, K1 + K2)
    else:
        Wp = <double*>fr_packed_alloc(fr_packed_size_d(K1 + K2, N) * sizeof(double))
        if Wp != NULL:
            fr_pack_bt_d(K1, N, W1, K1, Wp, K1 + K2)
            fr_pack_bt_d(K2, N, W2, K2, Wp + K1 * NR, K1 + K2)
    return Wp


# C[M, N] = A1[M, K1] @ W1^T + A2[M, K2] @ W2^T + beta * C, on Wp = pack_weights_2(K1, K2, N, W1, W2);
# desc as in gemm_packed
cdef inline void gemm_packed_2(int M, int N, int K1, const floating* A1, int lda1, int K2, const floating* A2,
                               int lda2, const floating* Wp, floating beta, floating* C, int ldc,
                               bint desc=False) noexcept nogil:
    if floating is float:
        fr_gemm_packed_f(M, N, K1, A1, lda1, K2, A2, lda2, Wp, C, ldc, beta, desc)
    else:
        fr_gemm_packed_d(M, N, K1, A1, lda1, K2, A2, lda2, Wp, C, ldc, beta, desc)


# Whether the per-step products of a T-step call with B rows and K x N weights go to the packed GEMM
# (else BLAS gemm). The rule, from bench/packed_gemm.py on an AVX-512 machine (1 and 2 threads):
# - a call of T < 4 steps does not repay the packing (cells, single steps: BLAS's GEMV/GEMM);
# - B == 1 too: packed beat OpenBLAS's GEMV 1.2-1.8x per sequence (T=50, H 64-256, 1 and 2 threads,
#   fr.LSTM/GRU/RNN inference timed alone); it also keeps BLAS threads out of the step loop (but see
#   pack_for_steps for the forward steps at K >= 128, which go to fastrnn's one-row kernel);
# - past 16 MiB of weights the packed GEMM stops beating BLAS (memory bound);
# - B > 32: with 1 BLAS thread packed is still ~1.4x faster per step, but with 2 threads OpenBLAS
#   splits B >= 64 rows across both cores and wins (0.8-0.9x), while at B <= 32 packed wins either way.
#   So B > 32 is packed only while BLAS says it runs one thread (blas_threads, asked at every call).
#   With more BLAS threads the kernels first cut the rows into blocks (row_parts), one per thread, and
#   ask this for each block's rows.
cdef inline bint packed_steps(int T, int B, int K, int N, size_t itemsize) noexcept nogil:
    if T < 4 or <size_t>K * <size_t>N * itemsize > (<size_t>16) << 20:
        return False
    return B <= 32 or blas_threads() == 1


cdef extern from "parts.h" nogil:
    enum:
        FR_MAX_PARTS
    ctypedef void (*fr_part_fn)(void* ctx, int part) noexcept nogil
    void fr_run_parts(int parts, fr_part_fn fn, void* ctx)


# How many blocks of rows a T-step call with B rows cuts its time loop into, each block on its own
# thread (parts.h). The rows of a batch are independent recurrences, so the blocks need no
# synchronisation between steps. As many blocks as BLAS has threads (the thread setting users already
# have: threadpoolctl, OPENBLAS_NUM_THREADS), each of at least 8 rows, and only for T >= 4. The kernels
# split only when the steps are packed (a block is then at most 32 rows or BLAS runs one thread):
# BLAS calls from parallel blocks would oversubscribe the cores.
cdef inline int row_parts(int T, int B) noexcept nogil:
    cdef int n = blas_threads()
    if T < 4 or n <= 1 or B < 16:
        return 1
    if n > B // 8:
        n = B // 8
    return n if n < FR_MAX_PARTS else FR_MAX_PARTS


# The packed op(W) for the per-step products of a T-step call with B rows when packed_steps says so,
# else NULL, meaning "use BLAS gemm" (NULL also when out of memory). Free the result with free.
# Not for one row times W^T with K >= 128 (a batch-1 forward step): fastrnn's one-row kernel (gemv.h,
# which blas.gemm sends it to) reads W in place as fast as the packed GEMM reads the packed copy, and
# spares the packing. Measured, batch-1 T=50 inference, 1 thread, alternated with the packed steps
# (five times; RNN three): LSTM 1.03x at H = 128, 1.07x at 256, GRU 1.15x at H = 256, RNN 1.04x at
# H = 128-256; at H = 64 0.97-0.98x (LSTM, GRU), hence K >= 128. Again with the one-row kernel's four-row
# fold (2026-12-02, four alternations): 0.75-0.91x the packed steps for LSTM at H = 32-96, GRU 0.79-1.00x,
# RNN 0.85-0.94x.
cdef inline floating* pack_for_steps(int T, int B, bint trans, int K, int N, const floating* W,
                                     int ldw) noexcept nogil:
    if not packed_steps(T, B, K, N, sizeof(floating)) or B == 1 and trans and K >= 128:
        return NULL
    return pack_weights(trans, K, N, W, ldw)


# [W1 W2] packed for the fused per-step product A1 @ W1^T + A2 @ W2^T of a T-step call with B rows, when
# its steps go to the packed GEMM (packed_steps with K = K1 + K2) and B >= 8, else NULL ("do not fuse";
# NULL also when out of memory or K1 + K2 > FR_PACKED_KC). Free the result with free.
# Why B >= 8: fused, every step streams W_ih as well as W_hh; measured for LSTM inference (1 thread,
# against the same kernels unfused) 0.86x at B = 4, H = 256, but 1.02-1.29x at B = 8-64, H = 128-512.
cdef inline floating* pack_steps_2(int T, int B, int K1, int K2, int N, const floating* W1,
                                   const floating* W2) noexcept nogil:
    if B < 8 or not packed_steps(T, B, K1 + K2, N, sizeof(floating)):
        return NULL
    return pack_weights_2(K1, K2, N, W1, W2)


# C[M, N] = A @ op(W) + beta * C for one time step: gemm_packed on Wp (the packed op(W)) when it is not
# NULL, else gemv.h's one-row kernel for one row times W^T, else BLAS gemm on W (trans: W stored (N, K),
# op(W) = W^T; else W stored (K, N)).
# desc: W is read last part first. The step loops pass it on every other step (desc = s & 1 at step s; in
# the forward loops (s & 1) ^ call_order(T)), so that a step starts on the part of W the step before read
# last, which is still in cache when W is bigger than the cache level it streams from (32 KiB L1, 1 MiB
# L2 on the development machine); the products are the same to the bit either way. Measured, batch-1 T=50 inference, 1 thread, 41 pairs
# alternated in one process against the same kernels reading W in one order (median ratio): LSTM 1.03x
# at H = 64 (W_hh 64 KiB), 1.06x at H = 256 (1 MiB); GRU 1.05x at H = 64 and 256; RNN 1.07x at H = 128
# (64 KiB); 1.00-1.02x where W_hh sits in L2 whole (LSTM/GRU H = 128, RNN H = 64 and 256); batched
# (B = 32-64, H = 128-512) inference and training 0.93-1.04x, within the run's noise.
cdef inline void gemm_step(const floating* Wp, bint trans, int M, int N, int K, const floating* A, int lda,
                           const floating* W, int ldw, floating beta, floating* C, int ldc,
                           bint desc) noexcept nogil:
    if Wp != NULL:
        gemm_packed(M, N, K, A, lda, Wp, beta, C, ldc, desc)
    elif M == 1 and trans:
        gemv_rows(N, K, <floating>1, W, ldw, A, beta, C, desc)
    else:
        gemm(False, trans, M, N, K, <floating>1, A, lda, W, ldw, beta, C, ldc)


# The order (desc of gemm_step) in which a forward call of T steps starts reading its weights, its steps
# then alternating (step s: desc = (s & 1) ^ order): each call on a thread starts in the order opposite to
# the last step of the call before (for T = 1, the other order from the call before), so that where a call's
# weights (W_ih and W_hh of a batch-1 step) outgrow a cache level, each product starts on the part of its W
# that was read last and is still in cache (as gemm_step's alternation does from step to step); the results
# are the same to the bit in either order. One flag per thread and kernel module (packed.h, fr_next_order):
# calls on different weights (the layers or directions of one model) share it, so a model whose every step
# makes an even number of calls of one kernel module gains nothing from it. Measured on an Intel Xeon VM (2
# MiB L2 a core), float32, 1 thread, LSTMCell H = 256 (W_ih and W_hh 2 MiB), six alternations of two builds:
# 30-37 us a step against 37-43 us; the same two products in C, 2000 pairs: 28 us against 35 us (reading
# W_hh first in every other call as well would give 23 us).
cdef inline bint call_order(int T) noexcept nogil:
    return fr_next_order(T)


# C[M, N] = A @ W^T + beta * C for the input product (1) of a call, W stored (N, K): gemm_once, but for a
# single row (a batch-1 step), which goes to gemv.h's kernel in the order desc (see call_order).
cdef inline void gemm_input(int M, int N, int K, const floating* A, int lda, const floating* W, int ldw,
                            floating beta, floating* C, int ldc, bint desc) noexcept nogil:
    if M == 1:
        gemv_rows(N, K, <floating>1, W, ldw, A, beta, C, desc)
    else:
        gemm_once(True, M, N, K, A, lda, W, ldw, beta, C, ldc)


# A product of at most this many multiply-adds (about 75 us on one core) runs on the calling thread even
# when BLAS has more threads: waking BLAS's idle threads (a futex wake-up: 20-40 us on the 2-core
# development VM) and handing them the work costs about what splitting it saves, and makes a batch-1
# call's time depend on whether BLAS's threads happened to be spinning.
# Measured, float32, 2 BLAS threads, M = 50, K = I = 64-256: OpenBLAS 0.9-1.5x faster than the packed
# GEMM on one thread when its threads are spinning (calls back to back), 0.4-1.2x when they slept first.
cdef enum:
    SMALL_MACS = 1 << 22


# Whether a product computed once per call, C[M, N] = A[M, K] @ op(W) (the input product (1) before the
# time loop, dX = dG @ W_ih after it), goes to the packed GEMM rather than BLAS gemm: M >= 8 and the packed
# W is at most 4 MiB, and
# - forward (op(W) = W^T, N = gates*H): A is small enough to be re-read from L2 for every panel of W
#   (<= 128 KiB);
# - backward (op(W) = W, N = I): once past OpenBLAS's small-matrix sizes (M N K > 2^20), where OpenBLAS's
#   own kernels win; A up to 2 MiB, or of any size for a gated layer's dG (K >= 3 N: GRU, LSTM);
# and BLAS runs one thread, or the product is small (SMALL_MACS).
# Measured with bench/small_gemm.py (pack + packed product against BLAS gemm, 1 thread, I = H = 64-512)
# on OpenBLAS 0.3 (SkylakeX kernels), AVX-512:
# - forward: 1.3-1.9x at M = 8-32, 1.2-1.5x at M = 50, 1.03-1.14x at M = 100-400 (float32), 1.04-1.23x
#   (float64); with bigger A 0.85-1.02x, with a packed W of 8 MiB (float64, H = 512) 0.85x;
# - backward: 1.1-1.9x (LSTM's dG, 4H wide) and 1.02-1.8x (RNN's, H wide) up to A = 2 MiB; with A = 3.2-6.4
#   MiB 1.07-1.14x for LSTM's but 0.95x for RNN's; 0.55-0.9x at M N K <= 2^20. On the Zen 5 class VM of
#   2026-12-02 (float32, M = 3200-6400, H = 128-512, A = 1-50 MiB): LSTM's 1.06-1.19x, GRU's 0.99-1.10x,
#   RNN's 0.95-1.05x (0.95x at H = 512).
cdef inline bint packed_product(bint trans, int M, int N, int K, size_t itemsize) noexcept nogil:
    cdef size_t a_bytes = <size_t>M * K * itemsize
    if M < 8 or <size_t>K * N * itemsize > (<size_t>4) << 20:
        return False
    if trans and a_bytes > (<size_t>128) << 10:
        return False
    if not trans and ((a_bytes > (<size_t>2) << 20 and K < 3 * N) or <size_t>M * N * K <= (<size_t>1) << 20):
        return False
    return blas_threads() == 1 or <size_t>M * N * K <= SMALL_MACS


# C[M, N] = A @ op(W) + beta * C for a product computed once per call (trans: W stored (N, K), op(W) =
# W^T; else W stored (K, N)): W packed and the packed GEMM when packed_product says so, or in blocks of
# rows on fastrnn's own threads when once_parts says so (and the packing can be allocated), else BLAS gemm.
cdef inline void gemm_once(bint trans, int M, int N, int K, const floating* A, int lda, const floating* W,
                           int ldw, floating beta, floating* C, int ldc) noexcept nogil:
    cdef floating* Wp = NULL
    cdef int parts = 1
    if packed_product(trans, M, N, K, sizeof(floating)):
        Wp = pack_weights(trans, K, N, W, ldw)
    else:
        parts = once_parts(M, N, K, sizeof(floating))
        if parts > 1:
            Wp = pack_weights(trans, K, N, W, ldw)
    if Wp != NULL:
        if parts > 1:
            _run_once(parts, False, M, N, K, A, lda, Wp, 0, beta, C, ldc)
        else:
            gemm_packed(M, N, K, A, lda, Wp, beta, C, ldc)
        free(Wp)
    else:
        gemm(False, trans, M, N, K, <floating>1, A, lda, W, ldw, beta, C, ldc)


# Whether a weight gradient C[M, N] += A^T @ B (A = dG stored (K, M), B = X or H_prev stored (K, N), K the
# T*B rows of a call) goes to gemm_packed_at rather than BLAS gemm: at one BLAS thread when K >= 256 and
# C is at most 256 KiB; with more BLAS threads when the product is small (SMALL_MACS). Measured
# (bench/small_gemm.py, the weight-gradient rows; 1 thread, AVX-512, OpenBLAS 0.3 SkylakeX kernels,
# M = g H for g = 1, 4 gates, N = H, K = 50-6400): float32 1.12-1.77x with C <= 256 KiB (H <= 128 at 4
# gates, H <= 256 at one), 0.92-1.11x for C of 1-4 MiB; float64 1.03-1.41x with C <= 256 KiB, 0.75-1.07x
# above; at K = 50 0.93-1.11x. On the Zen 5 class VM of 2026-12-02, with B's chunks packed (packed_impl.h):
# float32 1.14-1.41x, float64 1.20-1.47x with C <= 256 KiB; 0.94-1.05x for C of 1-16 MiB.
cdef inline bint packed_at_product(int M, int N, int K, size_t itemsize) noexcept nogil:
    if blas_threads() != 1:
        return <size_t>M * N * K <= SMALL_MACS
    return K >= 256 and <size_t>M * N * itemsize <= (<size_t>256) << 10


# C[M, N] = A^T @ B + beta * C for a weight gradient (A stored (K, M), B stored (K, N)): gemm_packed_at
# when packed_at_product says so (and its scratch can be allocated), or in blocks of C's rows on fastrnn's
# own threads when own_parts says so, else BLAS gemm.
cdef inline void gemm_once_at(int M, int N, int K, const floating* A, int lda, const floating* B, int ldb,
                              floating beta, floating* C, int ldc) noexcept nogil:
    cdef int parts
    if packed_at_product(M, N, K, sizeof(floating)):
        if gemm_packed_at(M, N, K, A, lda, B, ldb, beta, C, ldc) == 0:
            return
    else:
        parts = own_parts(M, 16, <size_t>M * N * K, sizeof(floating))
        if parts > 1:
            _run_once(parts, True, M, N, K, A, lda, B, ldb, beta, C, ldc)
            return
    gemm(True, False, M, N, K, <floating>1, A, lda, B, ldb, beta, C, ldc)


# How many of fastrnn's own threads (parts.h) a product computed once per call runs on, as blocks of the
# rows of C through the packed kernels, instead of going to BLAS; 1: not split (go to BLAS). With more
# than one BLAS thread, the products bigger than SMALL_MACS, float32, with at least min_rows rows a block
# (128 for A @ op(W), whose blocks each stream all of W: a batch-1 call's T = 50 rows stay with BLAS,
# measured 1.5x faster there; 16 for the weight gradients, whose blocks split W's rows). Why not BLAS's
# threads: they keep spinning after the product (OpenBLAS: ~100 ms of CPU), on the cores that the row
# blocks of the time loops, in this call or the next, need. Measured, training steps back to back at 2
# threads: LSTM B=32 T=100 H=128 28.7 ms a step with BLAS's threads (30.8 at 1 thread), 19.8 ms with
# OpenBLAS's spin cut short (OPENBLAS_THREAD_TIMEOUT=4), 18-21 ms with the products split here
# (bench/back_to_back.py: 2-thread scaling 1.30x -> 1.89x); a
# product timed alone (3200 x 128 by 128 x 512) 0.87x OpenBLAS's 2 threads. float64 keeps BLAS: its
# packed kernels are slower than BLAS at these sizes (see packed_at_product).
cdef inline int once_parts(int M, int N, int K, size_t itemsize) noexcept nogil:
    # own_parts for gemm_once's A[M, K] @ op(W) (W of K x N): only while the packed W is at most 16 MiB
    if <size_t>K * N * itemsize > (<size_t>16) << 20:
        return 1
    return own_parts(M, 128, <size_t>M * N * K, itemsize)


cdef inline int own_parts(int M, int min_rows, size_t macs, size_t itemsize) noexcept nogil:
    cdef int n
    if itemsize != 4 or macs <= SMALL_MACS:
        return 1
    n = blas_threads()
    if n > M // min_rows:
        n = M // min_rows
    if n > FR_MAX_PARTS:
        n = FR_MAX_PARTS
    return n if n > 1 else 1


# One product computed once per call split into blocks of the rows of C, each on its own thread (parts.h):
# C[M, N] = A @ op(W) + beta * C on the packed W (at false: B is the packed op(W)), or C = A^T @ B + beta * C
# (at true: A stored (K, M), B stored (K, N); a block whose scratch cannot be allocated is done by BLAS
# after the join).
ctypedef struct _Once:
    bint at, dbl
    int M, N, K, lda, ldb, ldc, rows
    const void* A
    const void* B
    void* C
    double beta
    int failed[FR_MAX_PARTS]


cdef inline void _once_part(void* ctx, int part) noexcept nogil:
    cdef _Once* c = <_Once*>ctx
    cdef int m0 = part * c.rows
    cdef int m = c.M - m0 if c.M - m0 < c.rows else c.rows
    c.failed[part] = 0
    if m <= 0:
        return
    if c.at and c.dbl:
        c.failed[part] = gemm_packed_at(m, c.N, c.K, <const double*>c.A + m0, c.lda, <const double*>c.B, c.ldb,
                                        <double>c.beta, <double*>c.C + <Py_ssize_t>m0 * c.ldc, c.ldc)
    elif c.at:
        c.failed[part] = gemm_packed_at(m, c.N, c.K, <const float*>c.A + m0, c.lda, <const float*>c.B, c.ldb,
                                        <float>c.beta, <float*>c.C + <Py_ssize_t>m0 * c.ldc, c.ldc)
    elif c.dbl:
        gemm_packed(m, c.N, c.K, <const double*>c.A + <Py_ssize_t>m0 * c.lda, c.lda, <const double*>c.B,
                    <double>c.beta, <double*>c.C + <Py_ssize_t>m0 * c.ldc, c.ldc)
    else:
        gemm_packed(m, c.N, c.K, <const float*>c.A + <Py_ssize_t>m0 * c.lda, c.lda, <const float*>c.B,
                    <float>c.beta, <float*>c.C + <Py_ssize_t>m0 * c.ldc, c.ldc)


cdef inline void _run_once(int parts, bint at, int M, int N, int K, const floating* A, int lda, const floating* B,
                           int ldb, floating beta, floating* C, int ldc) noexcept nogil:
    cdef _Once c
    cdef int p, m0, m
    c.at, c.dbl, c.M, c.N, c.K, c.lda, c.ldb, c.ldc = at, floating is double, M, N, K, lda, ldb, ldc
    c.rows = (M + parts - 1) // parts
    c.A, c.B, c.C, c.beta = A, B, C, beta
    fr_run_parts(parts, _once_part, &c)
    for p in range(parts):
        m0 = p * c.rows
        m = M - m0 if M - m0 < c.rows else c.rows
        if c.failed[p] and m > 0:
            # C[m0:m0+m] = A[:, m0:m0+m]^T @ B + beta * C[m0:m0+m]
            gemm(True, False, m, N, K, <floating>1, A + m0, lda, B, ldb, beta, C + <Py_ssize_t>m0 * ldc, ldc)
