/* The row-times-matrix kernel of gemv.h, written once and compiled twice (FR_T = float, then double). */

/* Vectors of 64, 32 and 16 bytes that may sit at any FR_T-aligned address. */
typedef FR_T FR_NAME(gvec) __attribute__((vector_size(FR_GEMV_BYTES), aligned(sizeof(FR_T)), may_alias));
typedef FR_T FR_NAME(gvec_half) __attribute__((vector_size(FR_GEMV_BYTES / 2), aligned(sizeof(FR_T)), may_alias));
typedef FR_T FR_NAME(gvec_quarter) __attribute__((vector_size(FR_GEMV_BYTES / 4), aligned(sizeof(FR_T)),
                                                  may_alias));

/* The sum of the lanes of v: halves added twice (vector adds), then the last few lanes in order. */
static inline __attribute__((always_inline)) FR_T FR_NAME(gemv_fold)(FR_NAME(gvec) v)
{
    FR_NAME(gvec_half) lo, hi;
    FR_NAME(gvec_quarter) a, b;
    FR_T s;
    int i;
    memcpy(&lo, &v, sizeof lo);
    memcpy(&hi, (const char *)&v + sizeof lo, sizeof hi);
    lo += hi;
    memcpy(&a, &lo, sizeof a);
    memcpy(&b, (const char *)&lo + sizeof a, sizeof b);
    a += b;
    s = a[0];
    for (i = 1; i < (int)(sizeof a / sizeof(FR_T)); i++)
        s += a[i];
    return s;
}

/* y[n] = alpha * sum_k W[n, k] x[k] + beta * y[n], n < N: W stored (N, K) row-major with leading
 * dimension ldw, x and y contiguous. beta = 0 does not read y (as BLAS). */
FR_GEMV_CLONES static void FR_NAME(gemv_dot)(int N, int K, FR_T alpha, const FR_T *W, int ldw, const FR_T *x,
                                             FR_T beta, FR_T *y)
{
    typedef FR_NAME(gvec) V;
    enum { VL = FR_GEMV_BYTES / sizeof(FR_T) };
    const FR_T *w;
    V acc0, acc1;
    FR_T s;
    int n, k;
    for (n = 0; n < N; n++) {
        w = W + (ptrdiff_t)n * ldw;
        acc0 = (V){0};
        acc1 = (V){0};
        /* acc += x[k:] * w[k:], two independent accumulators */
        for (k = 0; k + 2 * VL <= K; k += 2 * VL) {
            acc0 += *(const V *)(x + k) * *(const V *)(w + k);
            acc1 += *(const V *)(x + k + VL) * *(const V *)(w + k + VL);
        }
        if (k + VL <= K) {
            acc0 += *(const V *)(x + k) * *(const V *)(w + k);
            k += VL;
        }
        s = FR_NAME(gemv_fold)(acc0 + acc1);
        for (; k < K; k++)
            s += w[k] * x[k];
        y[n] = beta == (FR_T)0 ? alpha * s : alpha * s + beta * y[n];
    }
}
