/* A keyed fingerprint of a byte buffer: the training caches' test that the parameters did not change
 * between begin_update and backprop, in place of a full copy of them.
 *
 * Notation: the buffer is n bytes, read as 64-bit words m (the last block padded with zero bytes) in
 * blocks of W = FR_FP_W words; lo(u) and hi(u) are the low and high 32-bit halves of a word u, and
 * "+32" adds each half separately mod 2^32. Two lanes l = 0, 1 have independent random keys: K_l (W
 * words) and r_l in [0, p), p = 2^61 - 1. Per block, for each lane:
 *
 *     (1) a_i = m_i +32 K_l[i],  b_i = m_{i+W/2} +32 K_l[i+W/2]                     i < W/2
 *     (2) s_l = sum_i lo(a_i) lo(b_i) + hi(a_i) hi(b_i)                 mod 2^64     (NH, UMAC's hash)
 *     (3) h_l = (h_l r_l + lo(s_l)) r_l + hi(s_l)                       mod p        (a polynomial in r_l)
 *
 * and over all words (4) sum = sum of m_i mod 2^64. The fingerprint is (h_0 r_0 + n, h_1 r_1 + n, sum)
 * (mod p, mod p, mod 2^64).
 *
 * Guarantee, for two buffers of n bytes that differ (whatever the change, as long as it does not
 * depend on the key):
 * - a change inside one 64-bit word (one float64, or one or two adjacent float32) changes sum, so it is
 *   always detected;
 * - otherwise the fingerprints collide with probability at most (2^-32 + D / p)^2 over the keys, D =
 *   2 * blocks + 1: NH (2) is 2^-32-almost-universal over equal-length blocks (Black, Halevi, Krawczyk,
 *   Krovetz and Rogaway, "UMAC: fast and secure message authentication", CRYPTO 1999), and two different
 *   sequences of D digits give two different polynomials of degree D, which agree at r_l for at most D
 *   of the p values. For a 2 MiB buffer that is about 2^-64.
 * A float sum does not do this: a 1-ulp change can vanish in its rounding.
 *
 * Speed: (2) is one 32 x 32 -> 64-bit multiply per 32-bit word and lane, which AVX2 does four at a time
 * (vpmuludq): ~30 GB/s on the development machine (an AMD EPYC; its AVX-512 form measured slower), so
 * the two fingerprints of a training step cost about what copying the parameters and comparing the
 * copy did (0.5 MiB: 2 x 17 us against 32 us). Without AVX2 the same numbers come from a portable loop
 * at about a third of that speed.
 */
#ifndef FASTRNN_FINGERPRINT_H
#define FASTRNN_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FR_FP_W 256                               /* 64-bit words per block (2 KiB) */
#define FR_FP_P ((((uint64_t)1) << 61) - 1)       /* the Mersenne prime 2^61 - 1 */

typedef struct {
    uint64_t K[2][FR_FP_W];   /* NH keys of the two lanes */
    uint64_t r[2];            /* polynomial keys, in [0, p) */
} fr_fp_key;

/* The key from sizeof(fr_fp_key) random bytes: K as they are, r reduced into [0, p). */
static inline void fr_fp_key_init(fr_fp_key *key, const unsigned char *random_bytes)
{
    memcpy(key, random_bytes, sizeof *key);
    key->r[0] %= FR_FP_P;
    key->r[1] %= FR_FP_P;
}

/* a * b mod p for a, b < p, from the 128-bit product built of four 32 x 32-bit products (portable C) */
static inline uint64_t fr_fp_mulmod(uint64_t a, uint64_t b)
{
    uint64_t a0 = a & 0xffffffffu, a1 = a >> 32, b0 = b & 0xffffffffu, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
    uint64_t lo = (p00 & 0xffffffffu) | (mid << 32);
    uint64_t hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);   /* a * b = hi 2^64 + lo < 2^122 */
    /* 2^61 = 1 (mod p): a * b = (a * b >> 61) + (a * b & p) */
    uint64_t s = (lo & FR_FP_P) + ((hi << 3) | (lo >> 61));         /* < 2^62 */
    s = (s & FR_FP_P) + (s >> 61);                                   /* < p + 2 */
    return s >= FR_FP_P ? s - FR_FP_P : s;
}

/* (3) for one lane: h r + d mod p, for h < p and d < p */
static inline uint64_t fr_fp_horner(uint64_t h, uint64_t r, uint64_t d)
{
    uint64_t s = fr_fp_mulmod(h, r) + d;
    return s >= FR_FP_P ? s - FR_FP_P : s;
}

/* the 64-bit word at p, whatever p's alignment (a plain load on the processors that allow it) */
static inline uint64_t fr_fp_word(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

/* (1), (2) for both lanes and (4) over the block of W words at m: s[0], s[1] and the block's word sum s[2] */
static inline void fr_fp_block_portable(const unsigned char *m, const fr_fp_key *key, uint64_t s[3])
{
    const uint64_t *K0 = key->K[0], *K1 = key->K[1];
    uint64_t s0 = 0, s1 = 0, sum = 0;
    int i, half = FR_FP_W / 2;
    for (i = 0; i < half; i++) {
        uint64_t x = fr_fp_word(m + 8 * i), y = fr_fp_word(m + 8 * (i + half));
        uint32_t a0 = (uint32_t)x + (uint32_t)K0[i], a1 = (uint32_t)(x >> 32) + (uint32_t)(K0[i] >> 32);
        uint32_t b0 = (uint32_t)y + (uint32_t)K0[i + half], b1 = (uint32_t)(y >> 32) + (uint32_t)(K0[i + half] >> 32);
        uint32_t c0 = (uint32_t)x + (uint32_t)K1[i], c1 = (uint32_t)(x >> 32) + (uint32_t)(K1[i] >> 32);
        uint32_t d0 = (uint32_t)y + (uint32_t)K1[i + half], d1 = (uint32_t)(y >> 32) + (uint32_t)(K1[i + half] >> 32);
        s0 += (uint64_t)a0 * b0 + (uint64_t)a1 * b1;
        s1 += (uint64_t)c0 * d0 + (uint64_t)c1 * d1;
        sum += x + y;
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = sum;
}

#if defined(__x86_64__) && ((defined(__GNUC__) && __GNUC__ >= 5) || defined(__clang__))
#define FR_FP_AVX2 1
#include <immintrin.h>

/* fr_fp_block_portable with AVX2: each 64-bit lane of a vector holds one word, whose two halves
 * _mm256_add_epi32 adds separately and _mm256_mul_epu32 multiplies (the low halves; shifted, the high). */
__attribute__((target("avx2")))
static void fr_fp_block_avx2(const unsigned char *m, const fr_fp_key *key, uint64_t s[3])
{
    __m256i s0 = _mm256_setzero_si256(), t0 = s0, s1 = s0, t1 = s0, sum = s0;
    uint64_t v[3][4];
    int i, j, half = FR_FP_W / 2;
    for (i = 0; i < half; i += 4) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(m + 8 * i));
        __m256i y = _mm256_loadu_si256((const __m256i *)(m + 8 * (i + half)));
        __m256i a = _mm256_add_epi32(x, _mm256_loadu_si256((const __m256i *)(key->K[0] + i)));
        __m256i b = _mm256_add_epi32(y, _mm256_loadu_si256((const __m256i *)(key->K[0] + i + half)));
        __m256i c = _mm256_add_epi32(x, _mm256_loadu_si256((const __m256i *)(key->K[1] + i)));
        __m256i d = _mm256_add_epi32(y, _mm256_loadu_si256((const __m256i *)(key->K[1] + i + half)));
        s0 = _mm256_add_epi64(s0, _mm256_mul_epu32(a, b));
        t0 = _mm256_add_epi64(t0, _mm256_mul_epu32(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(b, 32)));
        s1 = _mm256_add_epi64(s1, _mm256_mul_epu32(c, d));
        t1 = _mm256_add_epi64(t1, _mm256_mul_epu32(_mm256_srli_epi64(c, 32), _mm256_srli_epi64(d, 32)));
        sum = _mm256_add_epi64(sum, _mm256_add_epi64(x, y));
    }
    _mm256_storeu_si256((__m256i *)v[0], _mm256_add_epi64(s0, t0));
    _mm256_storeu_si256((__m256i *)v[1], _mm256_add_epi64(s1, t1));
    _mm256_storeu_si256((__m256i *)v[2], sum);
    for (j = 0; j < 3; j++)
        s[j] = v[j][0] + v[j][1] + v[j][2] + v[j][3];
}
#else
#define FR_FP_AVX2 0
#endif

/* Whether this processor runs fr_fp_block_avx2. */
static inline int fr_fp_have_avx2(void)
{
#if FR_FP_AVX2
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
#else
    return 0;
#endif
}

/* The fingerprint of data[0 : n] (n < 2^61) into out[3]. use_avx2 (only if fr_fp_have_avx2()) picks
 * the AVX2 block loop; the numbers are the same either way. */
static inline void fr_fingerprint(const void *data, size_t n, const fr_fp_key *key, int use_avx2, uint64_t out[3])
{
    const unsigned char *bytes = (const unsigned char *)data;
    const size_t block_bytes = FR_FP_W * sizeof(uint64_t);
    unsigned char tail[FR_FP_W * sizeof(uint64_t)];
    uint64_t h0 = 0, h1 = 0, sum = 0, s[3];
    size_t off;
    for (off = 0; off < n; off += block_bytes) {
        const unsigned char *m = bytes + off;
        if (n - off < block_bytes) {   /* the last block, padded with zero bytes */
            memset(tail, 0, sizeof tail);
            memcpy(tail, m, n - off);
            m = tail;
        }
#if FR_FP_AVX2
        if (use_avx2)
            fr_fp_block_avx2(m, key, s);
        else
            fr_fp_block_portable(m, key, s);
#else
        (void)use_avx2;
        fr_fp_block_portable(m, key, s);
#endif
        /* (3) */
        h0 = fr_fp_horner(fr_fp_horner(h0, key->r[0], s[0] & 0xffffffffu), key->r[0], s[0] >> 32);
        h1 = fr_fp_horner(fr_fp_horner(h1, key->r[1], s[1] & 0xffffffffu), key->r[1], s[1] >> 32);
        sum += s[2];
    }
    out[0] = fr_fp_horner(h0, key->r[0], (uint64_t)n);
    out[1] = fr_fp_horner(h1, key->r[1], (uint64_t)n);
    out[2] = sum;
}

#endif
