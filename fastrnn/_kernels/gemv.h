/* One row times a row-major matrix's transpose, y = alpha * W x + beta * y, in float (suffix _f) and
 * double (suffix _d); the code is in gemv_impl.h, compiled twice as gates.h does it.
 *
 * Why: a batch-1 step multiplies one row by W_ih^T and W_hh^T, W stored (N, K) row-major; this is the
 * cells' product, bound by how fast W streams in. Four rows of W at a time, each into two vector
 * accumulators that share one load of x, folded at the end of the rows (gemv_impl.h). bench/one_row.py,
 * W (4H, H) float32 on a 64-byte boundary, 1 thread, against scipy's OpenBLAS 0.3 sgemv (SkylakeX
 * kernels), two runs alternated with the previous kernel (one row at a time) on the AVX-512 development
 * machine: 1.21-1.22x at H = 64, 1.26-1.29x at 128, 1.10-1.11x at 256, 1.07-1.09x at 512 (the previous
 * kernel: 0.82-0.86x, 0.90-1.03x, 1.00-1.03x, 1.03-1.05x). Folding the four rows' sums together
 * (gemv_fold4), on the 2-vCPU Zen 4 class VM on 2026-12-02, two runs alternated with the per-row folds:
 * 1.06-1.09x BLAS at H = 64, 1.19-1.25x at 128, 1.05-1.09x at 256, 1.01-1.02x at 512 (per-row folds:
 * 0.84-0.87x, 0.96-0.98x, 0.93-0.96x, 0.97-0.99x); its time over the time to read W once 1.23-1.26,
 * 1.05-1.07, 1.02-1.04, 1.22-1.23 (per-row folds: 1.60, 1.31-1.32, 1.18, 1.28-1.29). A W 16 bytes off a
 * cache line runs 15-35% slower: every 64-byte load then straddles two lines (hence the aligned
 * parameter buffers, _params.py).
 *
 * Every function is compiled for AVX-512, AVX2 + FMA and the baseline, as in gates.h.
 */
#ifndef FASTRNN_GEMV_H
#define FASTRNN_GEMV_H

#include <stddef.h>
#include <string.h>

#if !defined(FR_SINGLE_TARGET) && defined(__x86_64__) && ((defined(__GNUC__) && __GNUC__ >= 11) || defined(__clang__))
#define FR_GEMV_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FR_GEMV_CLONES
#endif

#define FR_GEMV_BYTES 64            /* bytes in one vector accumulator */

/* The four rows' sums are folded together with two-operand vector shuffles where the compiler has them
 * (GCC >= 12, clang), as in packed.h; elsewhere each row is folded alone. */
#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define FR_GEMV_SHUFFLE 1
#endif
#endif
#ifndef FR_GEMV_SHUFFLE
#define FR_GEMV_SHUFFLE 0
#endif

#define FR_T float
#define FR_NAME(name) fr_##name##_f
#define FR_GEMV_VL 16               /* FR_T per vector */
#include "gemv_impl.h"
#undef FR_T
#undef FR_NAME
#undef FR_GEMV_VL

#define FR_T double
#define FR_NAME(name) fr_##name##_d
#define FR_GEMV_VL 8
#include "gemv_impl.h"
#undef FR_T
#undef FR_NAME
#undef FR_GEMV_VL

#endif
