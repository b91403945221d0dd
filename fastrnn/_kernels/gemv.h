/* One row times a row-major matrix's transpose, y = alpha * W x + beta * y, in float (suffix _f) and
 * double (suffix _d); the code is in gemv_impl.h, compiled twice as gates.h does it.
 *
 * Why: a batch-1 step multiplies one row by W_ih^T and W_hh^T, W stored (N, K) row-major. BLAS's GEMV
 * reads several rows of W at once and sums them in vector lanes; here each row of W is one contiguous
 * stream into two vector accumulators, folded at the end of the row. Measured against OpenBLAS
 * 0.3 sgemv (scipy's, SkylakeX kernels, 1 thread) on the AVX-512 development machine, W (4H, H),
 * 1 thread: H = 64 0.47 vs 0.65 us, H = 128 1.55 vs 2.22, H = 256 8.1 vs 9.6, H = 512 44 vs 47.
 * Reading several rows at once was slower here (2 rows: 0.93, 2.83, 8.9 us; 4 rows: 0.73, 2.11, 8.5).
 *
 * Every function is compiled for AVX-512, AVX2 + FMA and the baseline, as in gates.h.
 */
#ifndef FASTRNN_GEMV_H
#define FASTRNN_GEMV_H

#include <stddef.h>
#include <string.h>

#if defined(__x86_64__) && ((defined(__GNUC__) && __GNUC__ >= 11) || defined(__clang__))
#define FR_GEMV_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FR_GEMV_CLONES
#endif

#define FR_GEMV_BYTES 64            /* bytes in one vector accumulator */

#define FR_T float
#define FR_NAME(name) fr_##name##_f
#include "gemv_impl.h"
#undef FR_T
#undef FR_NAME

#define FR_T double
#define FR_NAME(name) fr_##name##_d
#include "gemv_impl.h"
#undef FR_T
#undef FR_NAME

#endif
