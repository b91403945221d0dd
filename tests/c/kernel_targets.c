/* The one-row kernel (gemv.h) and the packed GEMM (packed.h) compiled for one target (-march, with
 * FR_SINGLE_TARGET), checked against sums in double: tests/test_kernel_targets.py builds and runs it once
 * per x86-64 level, so the AVX2 and baseline versions are checked on a processor whose loader would pick
 * the AVX-512 ones; and the packed kernels' allocator. Prints the number of wrong elements and the number
 * checked; exit status 1 if any. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemv.h"
#include "packed.h"

static long bad, checked;

static float value(unsigned i, unsigned salt) { return (float)((i * 2654435761u + salt) % 2001u) / 1000.0f - 1.0f; }

static void expect(double got, double want, int K, double tol)
{
    checked++;
    if (fabs(got - want) > tol * (sqrt((double)K) + fabs(want)))
        bad++;
}

/* y = 0.5 W x + 2 y0, W (N, K), float and double, both orders of the row blocks */
static void check_gemv(int N, int K, int desc)
{
    float *W = malloc(sizeof(float) * N * K), *x = malloc(sizeof(float) * K), *y = malloc(sizeof(float) * N);
    double *Wd = malloc(sizeof(double) * N * K), *xd = malloc(sizeof(double) * K), *yd = malloc(sizeof(double) * N);
    int n, k;
    for (n = 0; n < N * K; n++)
        Wd[n] = W[n] = value(n, 1);
    for (k = 0; k < K; k++)
        xd[k] = x[k] = value(k, 2);
    for (n = 0; n < N; n++)
        yd[n] = y[n] = value(n, 3);
    fr_gemv_dot_f(N, K, 0.5f, W, K, x, 2.0f, y, desc);
    fr_gemv_dot_d(N, K, 0.5, Wd, K, xd, 2.0, yd, desc);
    for (n = 0; n < N; n++) {
        double s = 0;
        for (k = 0; k < K; k++)
            s += (double)W[n * K + k] * x[k];
        expect(y[n], 0.5 * s + 2.0 * value(n, 3), K, 1e-5);
        expect(yd[n], 0.5 * s + 2.0 * value(n, 3), K, 1e-12);
    }
    free(W), free(x), free(y), free(Wd), free(xd), free(yd);
}

/* C = A @ W^T + C0 through pack_bt and gemm_packed, and C = A^T @ B + C0 through gemm_packed_at, float */
static void check_packed(int M, int N, int K)
{
    float *A = malloc(sizeof(float) * M * K), *W = malloc(sizeof(float) * N * K), *C = malloc(sizeof(float) * M * N);
    float *At = malloc(sizeof(float) * K * M), *B = malloc(sizeof(float) * K * N), *C2 = malloc(sizeof(float) * M * N);
    float *Wp = fr_packed_alloc(fr_packed_size_f(K, N) * sizeof(float));
    int i, j, k;
    for (i = 0; i < M * K; i++)
        A[i] = value(i, 4);
    for (i = 0; i < N * K; i++)
        W[i] = value(i, 5);
    for (i = 0; i < M; i++)
        for (k = 0; k < K; k++)
            At[k * M + i] = A[i * K + k];
    for (k = 0; k < K; k++)
        for (j = 0; j < N; j++)
            B[k * N + j] = W[j * K + k];
    for (i = 0; i < M * N; i++)
        C2[i] = C[i] = value(i, 6);
    fr_pack_bt_f(K, N, W, K, Wp, K);
    fr_gemm_packed_f(M, N, K, A, K, 0, A, 0, Wp, C, N, 1.0f, 0);
    if (fr_gemm_packed_at_f(M, N, K, At, M, B, N, C2, N, 1.0f) != 0)
        bad++;
    for (i = 0; i < M; i++)
        for (j = 0; j < N; j++) {
            double s = value(i * N + j, 6);
            for (k = 0; k < K; k++)
                s += (double)A[i * K + k] * W[j * K + k];
            expect(C[i * N + j], s, K, 1e-5);
            expect(C2[i * N + j], s, K, 1e-5);
        }
    free(A), free(W), free(C), free(At), free(B), free(C2), free(Wp);
}

/* fr_packed_alloc: small blocks 64-byte aligned, blocks from 4 MiB on 2 MiB aligned and whole (written to
 * the last byte), and sizes it cannot round up refused with NULL */
static void check_alloc(void)
{
    static const size_t sizes[] = {1, 100, (size_t)4 << 20, ((size_t)5 << 20) + 3};
    size_t i, align;
    char *p;
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        p = fr_packed_alloc(sizes[i]);
        align = sizes[i] >= ((size_t)4 << 20) ? (size_t)2 << 20 : 64;
        checked++;
        if (p == NULL || (uintptr_t)p % align != 0)
            bad++;
        if (p != NULL) {
            memset(p, 1, sizes[i]);
            free(p);
        }
    }
    checked++;
    if (fr_packed_alloc(SIZE_MAX - 5) != NULL)
        bad++;
}

int main(void)
{
    static const int rows[] = {1, 3, 4, 5, 7, 8, 9, 64, 67};
    static const int cols[] = {1, 7, 15, 16, 17, 31, 32, 33, 48, 64, 100, 129, 257};
    int a, b, c, desc;
    for (a = 0; a < 9; a++)
        for (b = 0; b < 13; b++)
            for (desc = 0; desc < 2; desc++)
                check_gemv(rows[a], cols[b], desc);
    for (a = 0; a < 9; a++)
        for (b = 0; b < 13; b += 2)
            for (c = 0; c < 13; c += 3)
                check_packed(rows[a], cols[b], cols[c]);
    check_packed(1024, 520, 300);   /* gemm_packed_at copies A's tiles: lda 4 KiB, 17 panels, two K chunks */
    check_alloc();
    printf("%ld %ld\n", bad, checked);
    return bad != 0;
}
