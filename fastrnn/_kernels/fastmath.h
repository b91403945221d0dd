/* Branch-free exp and expm1 for the gate loops, so that the compiler can vectorize them (a libm
 * call per element cannot be vectorized, and it dominated the batch-1 step time).
 *
 * exp(x) = 2^n exp(r),  n = round(x / ln 2),  r = x - n ln 2  (|r| <= ln2 / 2; ln 2 is split in a high
 * and a low part so that n * ln2_hi is exact). With exp(r) = 1 + q,  q = r Q(r)  from the Taylor
 * series (to degree 7 in float, truncation < 1e-8 relative; degree 13 in double, < 1e-17):
 *     exp(x)   = s + s q
 *     expm1(x) = (s - 1) + s q        (accurate near 0, where exp(x) - 1 would cancel)
 * with s = 2^n built in the exponent bits. n is rounded by adding 1.5 * 2^23 (float) or 1.5 * 2^52
 * (double), which leaves n in the low mantissa bits. x is clamped to the range where 2^n is a normal
 * number, so exp saturates (tiny or huge, never inf, so never inf/inf); NaN passes through.
 */
#ifndef FASTRNN_FASTMATH_H
#define FASTRNN_FASTMATH_H

#include <stdint.h>
#include <string.h>

/* q with exp(x) = s (1 + q); *s = 2^n */
static inline float fr_expq_f(float x, float *s)
{
    const float shift = 12582912.0f;              /* 1.5 * 2^23 */
    float t, n, r, Q;
    uint32_t bits;
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    t = x * 1.44269504088896341f + shift;         /* x log2(e) + shift: n in the low bits */
    n = t - shift;
    r = x - n * 0.693145751953125f;               /* ln 2, high part: exact product */
    r = r - n * 1.428606765330187e-06f;           /* ln 2, low part */
    Q = 1.0f / 5040.0f;                           /* Q(r) = 1 + r/2 + r^2/6 + ... + r^6/7! */
    Q = Q * r + 1.0f / 720.0f;
    Q = Q * r + 1.0f / 120.0f;
    Q = Q * r + 1.0f / 24.0f;
    Q = Q * r + 1.0f / 6.0f;
    Q = Q * r + 0.5f;
    Q = Q * r + 1.0f;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits << 23) + 0x3F800000u;            /* 2^n */
    memcpy(s, &bits, sizeof bits);
    return r * Q;
}

static inline double fr_expq(double x, double *s)
{
    const double shift = 6755399441055744.0;      /* 1.5 * 2^52 */
    double t, n, r, Q;
    uint64_t bits;
    x = x < -708.0 ? -708.0 : x;
    x = x > 709.0 ? 709.0 : x;
    t = x * 1.4426950408889634074 + shift;
    n = t - shift;
    r = x - n * 0.693147180369123816490;          /* ln 2, high part */
    r = r - n * 1.90821492927058770002e-10;       /* ln 2, low part */
    Q = 1.0 / 6227020800.0;                        /* Q(r) = 1 + r/2 + ... + r^12/13! */
    Q = Q * r + 1.0 / 479001600.0;
    Q = Q * r + 1.0 / 39916800.0;
    Q = Q * r + 1.0 / 3628800.0;
    Q = Q * r + 1.0 / 362880.0;
    Q = Q * r + 1.0 / 40320.0;
    Q = Q * r + 1.0 / 5040.0;
    Q = Q * r + 1.0 / 720.0;
    Q = Q * r + 1.0 / 120.0;
    Q = Q * r + 1.0 / 24.0;
    Q = Q * r + 1.0 / 6.0;
    Q = Q * r + 0.5;
    Q = Q * r + 1.0;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits << 52) + 0x3FF0000000000000ull;  /* 2^n */
    memcpy(s, &bits, sizeof bits);
    return r * Q;
}

static inline float fr_expf(float x) { float s, q = fr_expq_f(x, &s); return s + s * q; }
static inline double fr_exp(double x) { double s, q = fr_expq(x, &s); return s + s * q; }
static inline float fr_expm1f(float x) { float s, q = fr_expq_f(x, &s); return (s - 1.0f) + s * q; }
static inline double fr_expm1(double x) { double s, q = fr_expq(x, &s); return (s - 1.0) + s * q; }

#endif
