/* One row times a row-major matrix's transpose, y = alpha * W x + beta * y, in float (suffix _f) and
 * double (suffix _d); the code is in gemv_impl.h, compiled twice as gates.h does it.
 *
 * Why: a batch-1 step multiplies one row by W_ih^T and W_hh^T, W stored (N, K) row-major. BLAS's GEMV
 * reads several rows of W at once and sums them in vector lanes; here each row of W is one contiguous
 * stream into two vector accumulators, folded at the end of the row. bench/one_row.py, against scipy's
 * OpenBLAS 0.3 sgemv (SkylakeX kernels), W (4H, H), 1 thread, two runs on the AVX-512 development
 * machine: 1.13-1.15x at H = 64, 1.07-1.11x at 128, 1.19-1.20x at 256, 1.05-1.06x at 512. In a C
 * microbenchmark, reading 2 or 4 rows at once was slower than one.
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
