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

#if FR_PACKED_SHUFFLE
/* dst[i, j] = src[j, i] for the VL x VL block (VL = FR_PACKED_VL: one vector a row; rows lds and ldd
 * elements apart): log2(VL) rounds of two-operand shuffles, the last two across 128-bit lanes.
 * Float: interleave 32-bit pairs, then 64-bit pairs, within each 128-bit lane; then gather lanes twice.
 * Double: interleave 64-bit pairs within each lane; then gather lanes twice. */
static inline __attribute__((always_inline)) void FR_NAME(transpose_block)(const FR_T *src, ptrdiff_t lds,
                                                                           FR_T *dst, ptrdiff_t ldd)
{
    typedef FR_NAME(pvec) V;
    enum { VL = FR_PACKED_VL };
    V r[VL], t[VL], v[VL];
    int i, c;
    for (i = 0; i < VL; i++)
        r[i] = *(const V *)(src + i * lds);
#if FR_PACKED_VL == 16
    for (i = 0; i < 8; i++) {
        t[2 * i] = __builtin_shufflevector(r[2 * i], r[2 * i + 1], 0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28,
                                           13, 29);
        t[2 * i + 1] = __builtin_shufflevector(r[2 * i], r[2 * i + 1], 2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27,
                                               14, 30, 15, 31);
    }
    for (i = 0; i < 4; i++)
        for (c = 0; c < 2; c++) {
            r[4 * i + 2 * c] = __builtin_shufflevector(t[4 * i + c], t[4 * i + 2 + c], 0, 1, 16, 17, 4, 5, 20, 21,
                                                       8, 9, 24, 25, 12, 13, 28, 29);
            r[4 * i + 2 * c + 1] = __builtin_shufflevector(t[4 * i + c], t[4 * i + 2 + c], 2, 3, 18, 19, 6, 7, 22,
                                                           23, 10, 11, 26, 27, 14, 15, 30, 31);
        }
    /* now r[4i + c] holds, in 128-bit lane l, element 4l + c of rows 4i .. 4i + 3 */
    for (i = 0; i < 2; i++)
        for (c = 0; c < 4; c++) {
            v[8 * i + c] = __builtin_shufflevector(r[8 * i + c], r[8 * i + 4 + c], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17,
                                                   18, 19, 24, 25, 26, 27);
            v[8 * i + 4 + c] = __builtin_shufflevector(r[8 * i + c], r[8 * i + 4 + c], 4, 5, 6, 7, 12, 13, 14, 15,
                                                       20, 21, 22, 23, 28, 29, 30, 31);
        }
    for (c = 0; c < 8; c++) {
        r[c] = __builtin_shufflevector(v[c], v[8 + c], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
        r[8 + c] = __builtin_shufflevector(v[c], v[8 + c], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30,
                                           31);
    }
#else
    for (i = 0; i < 4; i++) {
        t[2 * i] = __builtin_shufflevector(r[2 * i], r[2 * i + 1], 0, 8, 2, 10, 4, 12, 6, 14);
        t[2 * i + 1] = __builtin_shufflevector(r[2 * i], r[2 * i + 1], 1, 9, 3, 11, 5, 13, 7, 15);
    }
    /* now t[2i + c] holds, in 128-bit lane l, element 2l + c of rows 2i, 2i + 1 */
    for (i = 0; i < 2; i++)
        for (c = 0; c < 2; c++) {
            v[4 * i + c] = __builtin_shufflevector(t[4 * i + c], t[4 * i + 2 + c], 0, 1, 4, 5, 8, 9, 12, 13);
            v[4 * i + 2 + c] = __builtin_shufflevector(t[4 * i + c], t[4 * i + 2 + c], 2, 3, 6, 7, 10, 11, 14, 15);
        }
    for (c = 0; c < 4; c++) {
        r[c] = __builtin_shufflevector(v[c], v[4 + c], 0, 1, 4, 5, 8, 9, 12, 13);
        r[4 + c] = __builtin_shufflevector(v[c], v[4 + c], 2, 3, 6, 7, 10, 11, 14, 15);
    }
#endif
    for (i = 0; i < VL; i++)
        *(V *)(dst + i * ldd) = r[i];
}
#endif

/* Wp = pack(W^T): W stored (N, K) with leading dimension ldw, op(W)[k, n] = W[n, k], into panels of
 * Kp >= K rows (Kp = K for a plain packed copy; Kp > K leaves rows [K, Kp) of every panel for another
 * operand: pack [W1; W2] as pack_bt(K1, .., Kp) at Wp, then pack_bt(K2, .., Kp) at Wp + K1 NR).
 * A transpose, in VL x VL blocks (two per panel row range, as a panel is two vectors wide) where the
 * compiler has vector shuffles. Against the element-wise copy (float32, W (4H, H), 1 thread, AVX-512;
 * bench/packed_gemm.py 'pack us', alternated with the previous build): 18.8 -> 5.0 us at H = 128 (numpy
 * copies the same W in 5.8 us), 330 -> 190 us at H = 512 (copy 89 us: the rows of a block sit 2 KB
 * apart and share cache sets). The rest (the last K % VL rows of a panel, a
 * last panel of fewer than NR columns, and every panel without shuffles) is copied element by element,
 * reading the NR rows of a panel in pieces of KB columns (a 64-byte line each), so that each line is
 * used whole while it is in cache; row by row at a stride of ldw, many rows would map to the same
 * cache set (ldw a multiple of 4 KB) and evict each other before their next element. */
FR_PACKED_CLONES static void FR_NAME(pack_bt)(int K, int N, const FR_T *W, int ldw, FR_T *Wp, int Kp)
{
    enum { NR = 2 * (FR_PACKED_BYTES / sizeof(FR_T)), KB = FR_PACKED_BYTES / sizeof(FR_T) };
    const FR_T *w;
    FR_T *out, *panel;
    int n0, j, k0, k, kb, nc;
    for (n0 = 0; n0 < N; n0 += NR) {
        nc = N - n0 < NR ? N - n0 : NR;
        panel = Wp + (ptrdiff_t)(n0 / NR) * Kp * NR;
        k0 = 0;
#if FR_PACKED_SHUFFLE
        if (nc == NR)
            for (; k0 + KB <= K; k0 += KB) {
                /* panel[k0 + i, j] = W[n0 + j, k0 + i]: the left and the right vector of panel rows k0 .. k0 + KB */
                FR_NAME(transpose_block)(W + (ptrdiff_t)n0 * ldw + k0, ldw, panel + (ptrdiff_t)k0 * NR, NR);
                FR_NAME(transpose_block)(W + (ptrdiff_t)(n0 + KB) * ldw + k0, ldw, panel + (ptrdiff_t)k0 * NR + KB, NR);
            }
#endif
        for (; k0 < K; k0 += KB) {
            kb = K - k0 < KB ? K - k0 : KB;
            /* panel[k0 + k, j] = W[n0 + j, k0 + k] */
            w = W + (ptrdiff_t)n0 * ldw + k0;
            for (j = 0; j < nc; j++) {
                out = panel + (ptrdiff_t)k0 * NR + j;
                for (k = 0; k < kb; k++) {
                    *out = w[k];
                    out += NR;
                }
                w += ldw;
            }
            for (; j < NR; j++) {
                out = panel + (ptrdiff_t)k0 * NR + j;
                for (k = 0; k < kb; k++) {
                    *out = (FR_T)0;
                    out += NR;
                }
            }
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

/* C[mr, :nc] = [A1 A2][mr, :k1 + k2] @ P + beta * C  for one panel piece P ((k1 + k2) x NR): the rows
 * of P past k1 multiply A2 (k2 = 0: A2 unused); mr a constant after inlining. A1[i, k] is at
 * A1 + i ai1 + k ak1 (row-major: ai1 = lda, ak1 = 1; a transposed operand: ai1 = 1, ak1 = lda), A2[i, k] at
 * A2 + i lda2 + k. Row k of P is at Wp + k ldp (packed: ldp = NR; a row-major operand read in place: its
 * leading dimension).
 * Each accumulator is a chain of dependent fused multiply-adds; with few rows (mr < 3) there are too
 * few chains to keep the FMA units busy, so those tiles split k into U = 2 interleaved partial sums
 * (measured: 1.0-1.35x per step at one row, 1.27x at two; four sums were slower at one row).
 * pf (a constant after inlining): 0, or the rows of P ahead whose two lines are prefetched into L1 at each
 * k; packed_rows asks for it where P outgrows L1 (FR_PACKED_PF). */
static inline __attribute__((always_inline)) void FR_NAME(packed_tile)(
    const int mr, const int pf, int k1, const FR_T *restrict A1, int ai1, int ak1, int k2, const FR_T *restrict A2,
    int lda2, const FR_T *restrict Wp, int ldp, FR_T *restrict C, int ldc, FR_T beta, int nc)
{
    typedef FR_NAME(pvec) V;
    enum { VL = FR_PACKED_BYTES / sizeof(FR_T), UMAX = 2 };
    const int U = mr <= 2 ? 2 : 1;
    V acc0[UMAX][FR_PACKED_MR_MAX], acc1[UMAX][FR_PACKED_MR_MAX], w0, w1;
    const FR_T *a[FR_PACKED_MR_MAX];
    FR_T x, *c, tmp[2 * VL];
    int i, j, k, u, part, kc, ak;
    for (u = 0; u < U; u++)
        for (i = 0; i < mr; i++) {
            acc0[u][i] = (V){0};
            acc1[u][i] = (V){0};
        }
    for (part = 0; part < 2; part++) {
        kc = part == 0 ? k1 : k2;
        ak = part == 0 ? ak1 : 1;
        for (i = 0; i < mr; i++)
            a[i] = part == 0 ? A1 + (ptrdiff_t)i * ai1 : A2 + (ptrdiff_t)i * lda2;
        for (k = 0; k + U <= kc; k += U) {
            /* acc[u][i] += A[i, k + u] * P[k + u, :] */
            for (u = 0; u < U; u++) {
                if (pf) {
                    __builtin_prefetch(Wp + (ptrdiff_t)pf * ldp, 0, 3);
                    __builtin_prefetch(Wp + (ptrdiff_t)pf * ldp + VL, 0, 3);
                }
                w0 = *(const V *)Wp;
                w1 = *(const V *)(Wp + VL);
                Wp += ldp;
                for (i = 0; i < mr; i++) {
                    x = a[i][(ptrdiff_t)u * ak];
                    acc0[u][i] += x * w0;
                    acc1[u][i] += x * w1;
                }
            }
            for (i = 0; i < mr; i++)
                a[i] += (ptrdiff_t)U * ak;
        }
        for (; k < kc; k++) {
            w0 = *(const V *)Wp;
            w1 = *(const V *)(Wp + VL);
            Wp += ldp;
            for (i = 0; i < mr; i++) {
                x = *a[i];
                a[i] += ak;
                acc0[0][i] += x * w0;
                acc1[0][i] += x * w1;
            }
        }
    }
    for (u = 1; u < U; u++)
        for (i = 0; i < mr; i++) {
            acc0[0][i] += acc0[u][i];
            acc1[0][i] += acc1[u][i];
        }
    for (i = 0; i < mr; i++) {
        /* C[i, :nc] = acc[i] + beta * C[i, :nc]  (beta = 0: C is not read) */
        c = C + (ptrdiff_t)i * ldc;
        if (nc == 2 * VL) {
            V *c0 = (V *)c, *c1 = (V *)(c + VL);
            if (beta == (FR_T)0) {
                *c0 = acc0[0][i];
                *c1 = acc1[0][i];
            } else if (beta == (FR_T)1) {
                *c0 += acc0[0][i];
                *c1 += acc1[0][i];
            } else {
                *c0 = beta * *c0 + acc0[0][i];
                *c1 = beta * *c1 + acc1[0][i];
            }
        } else {
            memcpy(tmp, &acc0[0][i], sizeof(V));
            memcpy(tmp + VL, &acc1[0][i], sizeof(V));
            if (beta == (FR_T)0)
                for (j = 0; j < nc; j++)
                    c[j] = tmp[j];
            else
                for (j = 0; j < nc; j++)
                    c[j] = beta * c[j] + tmp[j];
        }
    }
}

/* The row tiles of C[m0:m1, n0:n0 + nc] for one panel piece at wp: ai, ak and ldp as in packed_tile.
 * Where the piece (kc + k2 rows of NR values) outgrows L1 its rows stream in from L2 (or L3) once per
 * tile, and the tiles prefetch FR_PACKED_PF rows ahead; an L1-resident piece is left to the hardware
 * (the prefetches would only take load slots). */
static inline __attribute__((always_inline)) void FR_NAME(packed_rows)(
    int m0, int m1, int MR, int kc, const FR_T *A1, int ai1, int ak1, int k2, const FR_T *A2, int lda2,
    const FR_T *wp, int ldp, FR_T *c0, int ldc, FR_T b, int nc)
{
    const int past_l1 = (size_t)(kc + k2) * FR_PACKED_BYTES * 2 > FR_PACKED_L1_BYTES;
    const FR_T *a1, *a2;
    FR_T *c;
    int i0, m;
    for (i0 = m0; i0 < m1; i0 += m) {
        m = m1 - i0 < MR ? m1 - i0 : MR;
        a1 = A1 + (ptrdiff_t)i0 * ai1;
        a2 = A2 + (ptrdiff_t)i0 * lda2;
        c = c0 + (ptrdiff_t)i0 * ldc;
#define FR_TILE(mr, pf) FR_NAME(packed_tile)(mr, pf, kc, a1, ai1, ak1, k2, a2, lda2, wp, ldp, c, ldc, b, nc)
#define FR_TILES(pf)                                                                                          \
        switch (m) {                                                                                          \
        case 8: FR_TILE(8, pf); break;                                                                        \
        case 7: FR_TILE(7, pf); break;                                                                        \
        case 6: FR_TILE(6, pf); break;                                                                        \
        case 5: FR_TILE(5, pf); break;                                                                        \
        case 4: FR_TILE(4, pf); break;                                                                        \
        case 3: FR_TILE(3, pf); break;                                                                        \
        case 2: FR_TILE(2, pf); break;                                                                        \
        default: FR_TILE(1, pf); break;                                                                       \
        }
        if (past_l1)
            FR_TILES(FR_PACKED_PF)
        else
            FR_TILES(0)
#undef FR_TILES
#undef FR_TILE
    }
}

/* Rows of A per block: all M, unless A's part for one K chunk (M x kc) outgrows FR_PACKED_A_BYTES and the
 * packed W's part (N x kc) too. Within a block the panels run outer and the row tiles inner, so A's block
 * is re-read from L2 once per panel; without blocks a large A (an input product over T*B rows) would be
 * re-read from L3 or memory. The per-step products (B rows, large W) stay one block. */
static inline int FR_NAME(packed_mc)(int M, int N, int kc, int MR)
{
    size_t row = (size_t)kc * sizeof(FR_T), mc;
    if ((size_t)M * row <= FR_PACKED_A_BYTES || M <= N)
        return M;
    mc = FR_PACKED_A_BYTES / row;
    return mc < (size_t)MR ? MR : (int)(mc - mc % MR);
}

/* C[M, N] = [A1 A2][M, K1 + K2] @ op(W) + beta * C, op(W) ((K1 + K2) x N) packed in Wp by pack_bt or
 * pack_b (row-major; lda*, ldc leading dimensions). beta = 0 does not read C. K2 = 0: the plain product
 * A1 @ op(W), cut into K chunks of FR_PACKED_KC; K2 > 0 needs K1 + K2 <= FR_PACKED_KC (one chunk).
 * desc: the panels are taken last first (the same sums, in the same order, for every element of C; the
 * step loops alternate it, see gemm_step in packed.pxd). */
FR_PACKED_CLONES static void FR_NAME(gemm_packed)(int M, int N, int K1, const FR_T *A1, int lda1, int K2,
                                                  const FR_T *A2, int lda2, const FR_T *Wp, FR_T *C, int ldc,
                                                  FR_T beta, int desc)
{
    const int NR = 2 * (FR_PACKED_BYTES / (int)sizeof(FR_T));
    const int MR = fr_packed_mr();
    const int K = K1 + K2;
    const int np = (N + NR - 1) / NR;   /* panels */
    FR_T *c, b;
    int k0, kc, k2, n0, nc, m0, mc, i0, j, p;
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
    for (k0 = 0; k0 < K1 || (k0 == 0 && K2 > 0); k0 += FR_PACKED_KC) {
        kc = K1 - k0 < FR_PACKED_KC ? K1 - k0 : FR_PACKED_KC;
        k2 = K2 > 0 && k0 == 0 ? K2 : 0;
        b = k0 == 0 ? beta : (FR_T)1;
        mc = FR_NAME(packed_mc)(M, N, kc + k2, MR);
        for (m0 = 0; m0 < M; m0 += mc)
            for (p = 0; p < np; p++) {
                n0 = (desc ? np - 1 - p : p) * NR;
                nc = N - n0 < NR ? N - n0 : NR;
                /* panel n0 / NR, row k0 */
                FR_NAME(packed_rows)(m0, M - m0 < mc ? M : m0 + mc, MR, kc, A1 + k0, lda1, 1, k2, A2, lda2,
                                     Wp + (ptrdiff_t)n0 * K + (ptrdiff_t)k0 * NR, NR, C + n0, ldc, b, nc);
            }
    }
}

/* Ap = A's block for one K chunk as row tiles of A^T: rows [m0, m1) of A^T (columns of A), kc values each
 * from A's rows k0 .. k0 + kc (A at the chunk's first row), tile by tile: the tile of rows i0 .. i0 + m
 * (m = MR but for the last) at Ap + (i0 - m0) kc, its value (i, k) at k m + i. */
static inline void FR_NAME(copy_at_tiles)(int m0, int m1, int MR, int kc, const FR_T *A, int lda, FR_T *Ap)
{
    const FR_T *src;
    int i0, m, k, i;
    for (i0 = m0; i0 < m1; i0 += MR) {
        m = m1 - i0 < MR ? m1 - i0 : MR;
        src = A + i0;
        if (m == FR_PACKED_MR_MAX)
            for (k = 0; k < kc; k++) {
                memcpy(Ap, src, FR_PACKED_MR_MAX * sizeof(FR_T));   /* a constant size: inlined */
                Ap += FR_PACKED_MR_MAX;
                src += lda;
            }
        else
            for (k = 0; k < kc; k++) {
                for (i = 0; i < m; i++)
                    Ap[i] = src[i];
                Ap += m;
                src += lda;
            }
    }
}

/* C[M, N] = A^T @ B + beta * C for A stored (K, M) and B stored (K, N) (leading dimensions lda, ldb): the
 * weight gradients dW += dG^T @ X, summed over the T*B rows of a call (K). The K rows are taken in chunks
 * of FR_PACKED_KC_AT; each chunk of B (kc x N) is packed into panels (pack_b: kc rows of NR contiguous
 * values a panel, the last panel zero-padded) in scratch of at most FR_PACKED_KC_AT x N, reused by every
 * row tile of A^T while it is in cache; chunks after the first add into C. Read in place instead, a panel
 * piece's rows sit ldb apart, and with ldb a multiple of 1 KiB they fall into a few sets of L1 and evict
 * each other between row tiles: packed, 1.04-1.20x (M = 256-2048, N = 128-512, K = 800-6400; float32,
 * 1 thread, the Zen 5 class VM of 2026-12-02, C microbenchmark, 31 pairs alternated in one process).
 * A row tile of A^T takes kc values lda apart from A's rows. Where lda is a multiple of 4 KiB those fall
 * into a few sets of L2 as well, so A's block (FR_PACKED_A_BYTES) does not stay in L2 between the panels
 * that re-read it; then, with at least 16 panels (N >= 16 NR) to pay for the copy, the block is first
 * copied tile by tile (copy_at_tiles), each tile's values contiguous. Same machine, against packing B
 * only: 1.14x at M = 2048, N = 1024, lda 16 KiB (LSTM H = 1024's dW at 2 threads, a half each), 1.09x at
 * M = 1024-2048, N = 512, lda 8 KiB; copying where lda is not a 4 KiB multiple or N is smaller: 0.82-1.03x
 * (M = 512-1536, N = 128-512). beta = 0 does not read C. Returns -1, C untouched, when the scratch cannot
 * be allocated. */
FR_PACKED_CLONES static int FR_NAME(gemm_packed_at)(int M, int N, int K, const FR_T *A, int lda, const FR_T *B,
                                                    int ldb, FR_T *C, int ldc, FR_T beta)
{
    const int NR = 2 * (FR_PACKED_BYTES / (int)sizeof(FR_T));
    const int MR = fr_packed_mr();
    const int kmax = K < FR_PACKED_KC_AT ? K : FR_PACKED_KC_AT;
    const int copy_a = (size_t)lda * sizeof(FR_T) % 4096 == 0 && N >= 16 * NR;
    FR_T *c, b, *Bp, *Ap = NULL;
    const FR_T *a;
    int k0, kc, n0, nc, m0, m1, mc, i0, j, lda_t;
    if (M <= 0 || N <= 0)
        return 0;
    if (K <= 0) {
        for (i0 = 0; i0 < M; i0++) {
            c = C + (ptrdiff_t)i0 * ldc;
            for (j = 0; j < N; j++)
                c[j] = beta == (FR_T)0 ? (FR_T)0 : beta * c[j];
        }
        return 0;
    }
    Bp = (FR_T *)fr_packed_alloc(FR_NAME(packed_size)(kmax, N) * sizeof(FR_T));
    if (copy_a)
        Ap = (FR_T *)fr_packed_alloc((size_t)kmax * (FR_NAME(packed_mc)(M, N, kmax, MR) + MR) * sizeof(FR_T));
    if (Bp == NULL || (copy_a && Ap == NULL)) {
        free(Bp);
        free(Ap);
        return -1;
    }
    for (k0 = 0; k0 < K; k0 += FR_PACKED_KC_AT) {
        kc = K - k0 < FR_PACKED_KC_AT ? K - k0 : FR_PACKED_KC_AT;
        b = k0 == 0 ? beta : (FR_T)1;
        FR_NAME(pack_b)(kc, N, B + (ptrdiff_t)k0 * ldb, ldb, Bp);
        mc = FR_NAME(packed_mc)(M, N, kc, MR);
        for (m0 = 0; m0 < M; m0 += mc) {
            m1 = M - m0 < mc ? M : m0 + mc;
            if (copy_a)
                FR_NAME(copy_at_tiles)(m0, m1, MR, kc, A + (ptrdiff_t)k0 * lda, lda, Ap);
            for (n0 = 0; n0 < N; n0 += NR) {
                nc = N - n0 < NR ? N - n0 : NR;
                /* A^T[i, k0 + k] = A[k0 + k, i]; panel n0 / NR of the chunk at Bp + n0 kc */
                if (!copy_a) {
                    FR_NAME(packed_rows)(m0, m1, MR, kc, A + (ptrdiff_t)k0 * lda, 1, lda, 0, A, 0,
                                         Bp + (ptrdiff_t)n0 * kc, NR, C + n0, ldc, b, nc);
                    continue;
                }
                for (i0 = m0; i0 < m1; i0 += MR) {
                    /* one tile: A^T[i0 + i, k0 + k] at a + k lda_t + i */
                    lda_t = m1 - i0 < MR ? m1 - i0 : MR;
                    a = Ap + (ptrdiff_t)(i0 - m0) * kc;
                    FR_NAME(packed_rows)(0, lda_t, MR, kc, a, 1, lda_t, 0, a, 0, Bp + (ptrdiff_t)n0 * kc, NR,
                                         C + (ptrdiff_t)i0 * ldc + n0, ldc, b, nc);
                }
            }
        }
    }
    free(Bp);
    free(Ap);
    return 0;
}
