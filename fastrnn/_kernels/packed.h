/* Packed-weight small GEMM for the recurrent products, in float (suffix _f) and double (suffix _d);
 * the code is in packed_impl.h, compiled twice as gates.h does it.
 *
 * Why: each time step multiplies a few rows (the batch, B) by the same recurrent weights W_hh.
 * BLAS re-packs W_hh on every call, i.e. every step; here W_hh is packed once per sequence and each
 * step only streams the packed copy.
 *
 * The product.  C[M, N] = A[M, K] @ op(W) + beta * C   (row-major, alpha = 1), where op(W) is
 *     W^T for W stored (N, K)  -- forward,  g += h_prev @ W_hh^T:   fr_pack_bt_*
 *     W   for W stored (K, N)  -- backward, dh_prev = dG @ W_hh:    fr_pack_b_*
 * Both packers produce the same layout, so one fr_gemm_packed_* serves both.
 *
 * Packed layout.  A vector V holds 64 bytes (16 floats or 8 doubles) and a panel is NR = 2 V output
 * columns wide. op(W) (K x N) is cut into ceil(N / NR) column panels; panel p holds the columns
 * [p NR, p NR + NR) as K rows of NR contiguous values (row k = op(W)[k, p NR : p NR + NR]), the last
 * panel padded with zeros. Panels follow each other: panel p starts at Wp + p K NR, and the buffer
 * has fr_packed_size_*(K, N) = ceil(N / NR) K NR elements. A 64-byte aligned buffer
 * (fr_packed_alloc) keeps every vector load within one cache line.
 *
 * Blocking.  The micro-kernel computes an MR x NR tile of C in 2 MR vector accumulators: per k it
 * loads the two vectors of panel row k and, for each of the MR rows i, broadcasts A[i, k] and does
 * two fused multiply-adds. MR = 8 with AVX-512 (16 of its 32 registers), 3 with AVX2 (a 64-byte
 * vector is two 32-byte registers: 12 of 16), 1 otherwise; the last rows use a smaller tile. Loops,
 * outer to inner: K in chunks of KC, panels, row tiles; a KC x NR panel piece is reused by every
 * row tile while it is in cache (L1/L2), and chunks after the first add into C (beta = 1). At the
 * sizes of recurrent layers (K <= 4096) there is one chunk: smaller chunks measured slower, as the
 * extra passes over C cost more than the cache they save. A panel piece of more than 32 KiB (K > 256)
 * does not stay in L1 from one row tile to the next, so each tile streams it from L2 again; those tiles
 * prefetch the piece FR_PACKED_PF = 16 rows ahead (2 KiB). Measured on an Intel Xeon VM with AVX-512
 * (48 KiB L1d, 2 MiB L2; C microbenchmark, float32, 1 thread, three alternations of 40-step medians):
 * 1.05-1.12x at M = 8-64, K = 512-1024, N = 1024-4096, none at K = 256 (where the piece fits L1, and
 * the prefetches, which would only take load slots, are off); chunks of K = 256 instead were 0.75-1.00x.
 *
 * Every function is compiled for AVX-512, AVX2 + FMA and the baseline (FR_CLONES, as in gates.h).
 */
#ifndef FASTRNN_PACKED_H
#define FASTRNN_PACKED_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#if !defined(FR_SINGLE_TARGET) && defined(__x86_64__) && ((defined(__GNUC__) && __GNUC__ >= 11) || defined(__clang__))
#define FR_PACKED_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define FR_PACKED_X86 1
#else
#define FR_PACKED_CLONES
#define FR_PACKED_X86 0
#endif

#define FR_PACKED_BYTES 64          /* bytes in one vector V */
#define FR_PACKED_KC 4096           /* K chunk: measured, smaller chunks were slower up to K = 4096 */
#define FR_PACKED_MR_MAX 8
#define FR_PACKED_KC_AT 256         /* K chunk of the transposed-A product (weight gradients) */
#define FR_PACKED_A_BYTES (256 << 10) /* A's block for one K chunk stays within this (packed_mc) */
#define FR_PACKED_L1_BYTES (32 << 10) /* a panel piece past this is prefetched ahead (packed_rows) */
#define FR_PACKED_PF 16             /* rows of a panel piece ahead that the prefetches read */

/* The packers transpose whole 64-byte blocks with two-operand vector shuffles where the compiler has
 * them (GCC >= 12, clang); elsewhere they copy element by element. */
#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define FR_PACKED_SHUFFLE 1
#endif
#endif
#ifndef FR_PACKED_SHUFFLE
#define FR_PACKED_SHUFFLE 0
#endif

/* Rows per micro-tile for this processor: 8 (AVX-512), 3 (AVX2), 1; without clones, for the compiler's
 * target. */
static inline int fr_packed_mr(void)
{
#if FR_PACKED_X86
    __builtin_cpu_init();           /* idempotent; reads flags set once at load */
    if (__builtin_cpu_supports("avx512f"))
        return 8;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 3 : 1;
#elif defined(__AVX512F__)
    return 8;
#elif defined(__AVX2__) && defined(__FMA__)
    return 3;
#else
    return 1;
#endif
}

/* 64-byte aligned memory for n_bytes (release with free); NULL when out of memory. From 4 MiB on (packed
 * weights at H >= 512, the gate buffers of long batched calls) the block is aligned to 2 MiB and, where
 * the system has transparent huge pages on request (Linux's "madvise" mode), asked to be backed by them,
 * as numpy does for its arrays: a fresh 4 KiB-page block faults once per page on first touch (~10^4
 * faults for a 40 MiB buffer, every call), and 16 MiB of packed W_hh streamed at every step spans 4096
 * such pages, more than the data TLB holds. */
static inline void *fr_packed_alloc(size_t n_bytes)
{
    const size_t huge = (size_t)2 << 20;
    void *p = NULL;
    if (n_bytes >= 2 * huge) {
        if (n_bytes > SIZE_MAX - huge)
            return NULL;                        /* no such block; and the rounding below would wrap */
        n_bytes = (n_bytes + huge - 1) / huge * huge;
        if (posix_memalign(&p, huge, n_bytes) != 0)
            return NULL;
#ifdef MADV_HUGEPAGE
        madvise(p, n_bytes, MADV_HUGEPAGE);   /* advice only: ignored where huge pages are off */
#endif
        return p;
    }
    if (posix_memalign(&p, FR_PACKED_BYTES, n_bytes ? n_bytes : 1) != 0)
        return NULL;
    return p;
}

/* The order (0 first to last, 1 last to first) in which a call of `steps` time steps starts reading its
 * weights on this thread, its steps then alternating: the flag advances by `steps`, so that the next call
 * starts in the order opposite to this call's last step (see call_order in packed.pxd). */
static __thread int fr_order;
static inline int fr_next_order(int steps)
{
    int order = fr_order;
    fr_order ^= steps & 1;
    return order;
}

#define FR_T float
#define FR_NAME(name) fr_##name##_f
#define FR_PACKED_VL 16             /* FR_T per vector */
#include "packed_impl.h"
#undef FR_T
#undef FR_NAME
#undef FR_PACKED_VL

#define FR_T double
#define FR_NAME(name) fr_##name##_d
#define FR_PACKED_VL 8
#include "packed_impl.h"
#undef FR_T
#undef FR_NAME
#undef FR_PACKED_VL

#endif
