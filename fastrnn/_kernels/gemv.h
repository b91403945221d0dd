/* One row times a row-major matrix's transpose, y = alpha * W x + beta * y, in float (suffix _f) and
 * double (suffix _d); the code is in gemv_impl.h, compiled twice as gates.h does it.
 *
 * Why: a batch-1 step multiplies one row by W_ih^T and W_hh^T, W stored (N, K) row-major; this is the
 * cells' product, bound by how fast W streams in. Four rows of W at a time, each into two vector
 * accumulators that share one load of x, folded at the end of the rows (gemv_impl.h). bench/one_row.py,
 * W (4H, H) float32 on a 64-byte boundary, 1 thread, against scipy's OpenBLAS 0.3 sgemv (SkylakeX
 * kernels), two runs alternated with the previous kernel (one row at a time) on the AVX-512 development
 * machine: 1.21-1.22x at H = 64, 1.26-1.29x at 128, 1.10-1.11x at 256, 1.07-1.09x at 512 (the previous
 * kernel: 0.82-0.86x, 0.90-1.03x, 1.00-1.03x, 1.03-1.05x). A W 16 bytes off a cache line runs 15-35%
 * slower: every 64-byte load then straddles two lines (hence the aligned parameter buffers, _params.py).
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
