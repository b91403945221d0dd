/* The packed-weight GEMM, written once and compiled twice by packed.h (FR_T = float, then double).
 * Layout and blocking are explained in packed.h. Hot loops step pointers (Python builds with
 * -fwrapv, under which gcc handles p[a * n + j] index forms poorly).
 */

/* One vector: 64 bytes, may sit at any FR_T-aligned address (loads of A's and C's rows). */
typedef FR_T FR_NAME(pvec) __attribute__((vector_size(FR_PACKED_BYTES), aligned(sizeof(FR_T)), may_alias));

/* Elements in the packed copy of a K x N operand: ceil(N / NR) panels of K x NR. */
static inline size_t FR_NAME(packed_size)(int K, int N)
{
    const int NR = 2 * (FR_PACKED_BYTES / (int)sizeof(FR_T));
    return (size_t)((N + NR - 1) / NR) * (size_t)K * (size_t)NR;
}

/* Wp = pack(W^T): W stored (N, K) with leading dimension ldw, op(W)[k, n] = W[n, k].
 * A transpose: it reads the NR rows of a panel in pieces of KB columns (a 64-byte line each), so
 * that each line is used whole while it is in cache; row by row at a stride of ldw, many rows would
 * map to the same cache set (ldw a multiple of 4 KB) and evict each other before their next element. */
static void FR_NAME(pack_bt)(int K, int N, const FR_T *W, int ldw, FR_T *Wp)
{
    enum { NR = 2 * (FR_PACKED_BYTES / sizeof(FR_T)), KB = FR_PACKED_BYTES / sizeof(FR_T) };
    const FR_T *w;
    FR_T *out;
    int n0, j, k0, k, kb, nc;
    for (n0 = 0; n0 < N; n0 += NR) {
        nc = N - n0 < NR ? N - n0 : NR;
        for (k0 = 0; k0 < K; k0 += KB) {
            kb = K - k0 < KB ? K - k0 : KB;
            /* Wp[panel][k0 + k, j] = W[n0 + j, k0 + k] */
            w = W + (ptrdiff_t)n0 * ldw + k0;
            for (j = 0; j < nc; j++) {
                out = Wp + j;
                for (k = 0; k < kb; k++) {
                    *out = w[k];
                    out += NR;
                }
                w += ldw;
            }
            for (; j < NR; j++) {
                out = Wp + j;
                for (k = 0; k < kb; k++) {
                    *out = (FR_T)0;
                    out += NR;
                }
            }
            Wp += (ptrdiff_t)kb * NR;
        }
    }
}

/* Wp = pack(W): W stored (K, N) with leading dimension ldw, op(W)[k, n] = W[k, n] */
static void FR_NAME(pack_b)(int K, int N, const FR_T *W, int ldw, FR_T *Wp)
{
    const int NR = 2 * (FR_PACKED_BYTES / (int)sizeof(FR_T));
    const FR_T *w;
    int n0, j, k, nc;
    for (n0 = 0; n0 < N; n0 += NR) {
        nc = N - n0 < NR ? N - n0 : NR;
        w = W + n0;
        for (k = 0; k < K; k++) {
            memcpy(Wp, w, (size_t)nc * sizeof(FR_T));
            for (j = nc; j < NR; j++)
                Wp[j] = (FR_T)0;
            Wp += NR;
            w += ldw;
        }
    }
}

/* C[mr, :nc] = A[mr, :kc] @ P + beta * C  for one panel piece P (kc x NR); mr a constant after inlining */
static inline __attribute__((always_inline)) void FR_NAME(packed_tile)(
    const int mr, int kc, const FR_T *restrict A, int lda, const FR_T *restrict Wp,
    FR_T *restrict C, int ldc, FR_T beta, int nc)
{
    typedef FR_NAME(pvec) V;
    enum { VL = FR_PACKED_BYTES / sizeof(FR_T) };
    V acc0[FR_PACKED_MR_MAX], acc1[FR_PACKED_MR_MAX], w0, w1;
    const FR_T *a[FR_PACKED_MR_MAX];
    FR_T x, *c, tmp[2 * VL];
    int i, j, k;
    for (i = 0; i < mr; i++) {
        acc0[i] = (V){0};
        acc1[i] = (V){0};
        a[i] = A + (ptrdiff_t)i * lda;
    }
    for (k = 0; k < kc; k++) {
        /* acc[i] += A[i, k] * P[k, :] */
        w0 = *(const V *)Wp;
        w1 = *(const V *)(Wp + VL);
        Wp += 2 * VL;
        for (i = 0; i < mr; i++) {
            x = *a[i]++;
            acc0[i] += x * w0;
            acc1[i] += x * w1;
        }
    }
    for (i = 0; i < mr; i++) {
        /* C[i, :nc] = acc[i] + beta * C[i, :nc]  (beta = 0: C is not read) */
        c = C + (ptrdiff_t)i * ldc;
        if (nc == 2 * VL) {
            V *c0 = (V *)c, *c1 = (V *)(c + VL);
            if (beta == (FR_T)0) {
                *c0 = acc0[i];
                *c1 = acc1[i];
            } else if (beta == (FR_T)1) {
                *c0 += acc0[i];
                *c1 += acc1[i];
            } else {
                *c0 = beta * *c0 + acc0[i];
                *c1 = beta * *c1 + acc1[i];
            }
        } else {
            memcpy(tmp, &acc0[i], sizeof(V));
            memcpy(tmp + VL, &acc1[i], sizeof(V));
            if (beta == (FR_T)0)
                for (j = 0; j < nc; j++)
                    c[j] = tmp[j];
            else
                for (j = 0; j < nc; j++)
                    c[j] = beta * c[j] + tmp[j];
        }
    }
}

/* C[M, N] = A[M, K] @ op(W) + beta * C, op(W) packed in Wp by pack_bt or pack_b (row-major;
 * lda, ldc leading dimensions). beta = 0 does not read C. */
FR_PACKED_CLONES static void FR_NAME(gemm_packed)(int M, int N, int K, const FR_T *A, int lda,
                                                  const FR_T *Wp, FR_T *C, int ldc, FR_T beta)
{
    const int NR = 2 * (FR_PACKED_BYTES / (int)sizeof(FR_T));
    const int MR = fr_packed_mr();
    const FR_T *a, *wp;
    FR_T *c, b;
    int k0, kc, n0, nc, i0, m, j;
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {
        /* C = beta * C: an empty sum */
        for (i0 = 0; i0 < M; i0++) {
            c = C + (ptrdiff_t)i0 * ldc;
            for (j = 0; j < N; j++)
                c[j] = beta == (FR_T)0 ? (FR_T)0 : beta * c[j];
        }
        return;
    }
    for (k0 = 0; k0 < K; k0 += FR_PACKED_KC) {
        kc = K - k0 < FR_PACKED_KC ? K - k0 : FR_PACKED_KC;
        b = k0 == 0 ? beta : (FR_T)1;
        for (n0 = 0; n0 < N; n0 += NR) {
            nc = N - n0 < NR ? N - n0 : NR;
            wp = Wp + (ptrdiff_t)n0 * K + (ptrdiff_t)k0 * NR;      /* panel n0 / NR, row k0 */
            for (i0 = 0; i0 < M; i0 += m) {
                m = M - i0 < MR ? M - i0 : MR;
                a = A + (ptrdiff_t)i0 * lda + k0;
                c = C + (ptrdiff_t)i0 * ldc + n0;
                switch (m) {
                case 8: FR_NAME(packed_tile)(8, kc, a, lda, wp, c, ldc, b, nc); break;
                case 7: FR_NAME(packed_tile)(7, kc, a, lda, wp, c, ldc, b, nc); break;
                case 6: FR_NAME(packed_tile)(6, kc, a, lda, wp, c, ldc, b, nc); break;
                case 5: FR_NAME(packed_tile)(5, kc, a, lda, wp, c, ldc, b, nc); break;
                case 4: FR_NAME(packed_tile)(4, kc, a, lda, wp, c, ldc, b, nc); break;
                case 3: FR_NAME(packed_tile)(3, kc, a, lda, wp, c, ldc, b, nc); break;
                case 2: FR_NAME(packed_tile)(2, kc, a, lda, wp, c, ldc, b, nc); break;
                default: FR_NAME(packed_tile)(1, kc, a, lda, wp, c, ldc, b, nc); break;
                }
            }
        }
    }
}
