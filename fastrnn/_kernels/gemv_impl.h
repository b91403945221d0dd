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

#if FR_GEMV_SHUFFLE
/* s[r] = the sum of the lanes of v[r], r < 4, for four rows' accumulators at once: halves of pairs of
 * vectors added (a, b -> [a's low + high half, b's]), then quarters of the two results ([a, b, c, d], a
 * quarter each), then within each quarter: about 5 operations a row, where folding each row alone
 * (gemv_fold) takes about 11, its last adds scalar and in sequence. Those folds had made the product
 * slower than reading W at H = 64-256 (gemv.h). */
static inline __attribute__((always_inline)) void FR_NAME(gemv_fold4)(const FR_NAME(gvec) v[4], FR_T s[4])
{
    typedef FR_NAME(gvec) V;
    V ab, cd, q;
#if FR_GEMV_VL == 16
    ab = __builtin_shufflevector(v[0], v[1], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
         __builtin_shufflevector(v[0], v[1], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    cd = __builtin_shufflevector(v[2], v[3], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
         __builtin_shufflevector(v[2], v[3], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    q = __builtin_shufflevector(ab, cd, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) +
        __builtin_shufflevector(ab, cd, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
    q += __builtin_shufflevector(q, q, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    q += __builtin_shufflevector(q, q, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
#else
    ab = __builtin_shufflevector(v[0], v[1], 0, 1, 2, 3, 8, 9, 10, 11) +
         __builtin_shufflevector(v[0], v[1], 4, 5, 6, 7, 12, 13, 14, 15);
    cd = __builtin_shufflevector(v[2], v[3], 0, 1, 2, 3, 8, 9, 10, 11) +
         __builtin_shufflevector(v[2], v[3], 4, 5, 6, 7, 12, 13, 14, 15);
    q = __builtin_shufflevector(ab, cd, 0, 1, 4, 5, 8, 9, 12, 13) +
        __builtin_shufflevector(ab, cd, 2, 3, 6, 7, 10, 11, 14, 15);
    q += __builtin_shufflevector(q, q, 1, 0, 3, 2, 5, 4, 7, 6);
#endif
    s[0] = q[0];
    s[1] = q[FR_GEMV_VL / 4];
    s[2] = q[FR_GEMV_VL / 2];
    s[3] = q[3 * FR_GEMV_VL / 4];
}
#endif

/* y[n] += alpha * sum_{k0 <= k < K} W[n, k] x[k] for every n < N: the last K - k0 < 2 VL columns of each
 * row, after gemv_dot's vector loop. A function of its own: inlined into that loop, it made gcc keep the
 * loop's accumulators in memory (the loop ran 25-40% slower). */
__attribute__((noinline)) static void FR_NAME(gemv_tail)(int N, int k0, int K, FR_T alpha, const FR_T *W, int ldw,
                                                         const FR_T *x, FR_T *y)
{
    const FR_T *w;
    FR_T s;
    int n, k;
    for (n = 0; n < N; n++) {
        w = W + (ptrdiff_t)n * ldw;
        s = 0;
        for (k = k0; k < K; k++)
            s += w[k] * x[k];
        y[n] += alpha * s;
    }
}

/* y[n] = alpha * sum_k W[n, k] x[k] + beta * y[n], n < N: W stored (N, K) row-major with leading
 * dimension ldw, x and y contiguous. beta = 0 does not read y (as BLAS). desc: the blocks of four rows
 * are taken last first (the same sums, in the same order, for every n; see gemm_step in packed.pxd).
 * Rows go four at a time: each row streams into two vector accumulators while one load of x serves all
 * four rows, and the four streams keep enough loads in flight to run at the read bandwidth of L2 (one row
 * at a time ran 20-25% below it in a C microbenchmark); the four rows' sums are folded together
 * (gemv_fold4). The last N % 4 rows go one at a time, and the columns past the last whole pair of vectors
 * (K % 2 VL) in gemv_tail. */
FR_GEMV_CLONES static void FR_NAME(gemv_dot)(int N, int K, FR_T alpha, const FR_T *W, int ldw, const FR_T *x,
                                             FR_T beta, FR_T *y, int desc)
{
    typedef FR_NAME(gvec) V;
    enum { VL = FR_GEMV_BYTES / sizeof(FR_T), R = 4 };
    const int kv = K - K % (2 * VL);    /* the columns whole pairs of vectors cover */
    const FR_T *w;
    V acc0[R], acc1[R], x0, x1;
    FR_T s;
#if FR_GEMV_SHUFFLE
    FR_T sums[R];
#endif
    const int nb = N / R;               /* whole blocks of R rows */
    int n, k, r, i;
    for (i = 0; i < nb; i++) {
        n = (desc ? nb - 1 - i : i) * R;
        w = W + (ptrdiff_t)n * ldw;
        for (r = 0; r < R; r++) {
            acc0[r] = (V){0};
            acc1[r] = (V){0};
        }
        /* acc[r] += x[k:] * W[n + r, k:], two accumulators per row */
        for (k = 0; k < kv; k += 2 * VL) {
            x0 = *(const V *)(x + k);
            x1 = *(const V *)(x + k + VL);
            for (r = 0; r < R; r++) {
                acc0[r] += x0 * *(const V *)(w + (ptrdiff_t)r * ldw + k);
                acc1[r] += x1 * *(const V *)(w + (ptrdiff_t)r * ldw + k + VL);
            }
        }
#if FR_GEMV_SHUFFLE
        for (r = 0; r < R; r++)
            acc0[r] += acc1[r];
        FR_NAME(gemv_fold4)(acc0, sums);
        for (r = 0; r < R; r++)
            y[n + r] = beta == (FR_T)0 ? alpha * sums[r] : alpha * sums[r] + beta * y[n + r];
#else
        for (r = 0; r < R; r++) {
            s = FR_NAME(gemv_fold)(acc0[r] + acc1[r]);
            y[n + r] = beta == (FR_T)0 ? alpha * s : alpha * s + beta * y[n + r];
        }
#endif
    }
    for (n = nb * R; n < N; n++) {
        w = W + (ptrdiff_t)n * ldw;
        acc0[0] = (V){0};
        acc1[0] = (V){0};
        for (k = 0; k < kv; k += 2 * VL) {
            acc0[0] += *(const V *)(x + k) * *(const V *)(w + k);
            acc1[0] += *(const V *)(x + k + VL) * *(const V *)(w + k + VL);
        }
        s = FR_NAME(gemv_fold)(acc0[0] + acc1[0]);
        y[n] = beta == (FR_T)0 ? alpha * s : alpha * s + beta * y[n];
    }
    if (kv < K)
        FR_NAME(gemv_tail)(N, kv, K, alpha, W, ldw, x, y);
}

/* The sum of all elements of W (N, K) row-major, reading every row once with four vector accumulators:
 * no arithmetic to wait for, so its time is that of streaming W in, the floor of gemv_dot's (the
 * measuring stick of bench/one_row.py; not used by the kernels). K a multiple of 4 VL. */
FR_GEMV_CLONES static FR_T FR_NAME(gemv_read)(int N, int K, const FR_T *W, int ldw)
{
    typedef FR_NAME(gvec) V;
    enum { VL = FR_GEMV_BYTES / sizeof(FR_T) };
    V a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    const FR_T *w;
    int n, k;
    for (n = 0; n < N; n++) {
        w = W + (ptrdiff_t)n * ldw;
        for (k = 0; k + 4 * VL <= K; k += 4 * VL) {
            a0 += *(const V *)(w + k);
            a1 += *(const V *)(w + k + VL);
            a2 += *(const V *)(w + k + 2 * VL);
            a3 += *(const V *)(w + k + 3 * VL);
        }
    }
    return FR_NAME(gemv_fold)(a0 + a1 + a2 + a3);
}
