/* Per-row gate loops in float (suffix _f) and double (suffix _d); see gates_impl.h. */
#ifndef FASTRNN_GATES_H
#define FASTRNN_GATES_H

#include <math.h>
#include "fastmath.h"

/* On x86-64 each gate loop is compiled three times (AVX-512, AVX2 + FMA, and the SSE2 baseline) and
 * the loader picks the widest this processor runs, so one build is both portable and fast. Defining
 * FR_SINGLE_TARGET compiles gates.h, gemv.h and packed.h for the compiler's target alone (-march), which
 * is how tests/test_kernel_targets.py checks the narrower versions on a processor that would pick the
 * widest. */
#if !defined(FR_SINGLE_TARGET) && defined(__x86_64__) && ((defined(__GNUC__) && __GNUC__ >= 11) || defined(__clang__))
#define FR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FR_CLONES
#endif

#define FR_T float
#define FR_NAME(name) fr_##name##_f
#define FR_EXP fr_expf
#define FR_EXPM1 fr_expm1f
#define FR_FABS fabsf
#define FR_COPYSIGN copysignf
#include "gates_impl.h"
#undef FR_T
#undef FR_NAME
#undef FR_EXP
#undef FR_EXPM1
#undef FR_FABS
#undef FR_COPYSIGN

#define FR_T double
#define FR_NAME(name) fr_##name##_d
#define FR_EXP fr_exp
#define FR_EXPM1 fr_expm1
#define FR_FABS fabs
#define FR_COPYSIGN copysign
#include "gates_impl.h"
#undef FR_T
#undef FR_NAME
#undef FR_EXP
#undef FR_EXPM1
#undef FR_FABS
#undef FR_COPYSIGN

#endif
