# Inline activations and their derivatives (written from the activation's OUTPUT y).
# Branch-free, so gcc vectorizes the gate loops (fastmath.h explains the exp it uses), and
# overflow-safe: exp is clamped to finite values, so neither sigmoid nor tanh forms inf/inf.
#   sigmoid(x) = 1 / (1 + exp(-x))
#   tanh(x)    = sign(x) * (-m) / (2 + m),   m = expm1(-2|x|)   (no cancellation near 0)
from cython cimport floating
from libc.math cimport copysign, copysignf, fabs, fabsf


cdef extern from "fastmath.h" nogil:
    float fr_expf(float x)
    double fr_exp(double x)
    float fr_expm1f(float x)
    double fr_expm1(double x)


cdef inline floating sigmoid(floating x) noexcept nogil:
    cdef floating one = 1
    if floating is float:
        return one / (one + fr_expf(-x))
    else:
        return one / (one + fr_exp(-x))


cdef inline floating tanh_(floating x) noexcept nogil:
    cdef floating m, two = 2
    if floating is float:
        m = fr_expm1f(-two * fabsf(x))
        return copysignf(-m / (two + m), x)
    else:
        m = fr_expm1(-two * fabs(x))
        return copysign(-m / (two + m), x)


cdef inline floating relu(floating x) noexcept nogil:
    # x > 0 ? x : 0, keeping NaN as NaN (NaN > 0 is false)
    return x if (x > 0 or x != x) else 0


# d sigmoid(x)/dx = y (1 - y); d tanh(x)/dx = 1 - y^2; d relu(x)/dx = [y > 0]
cdef inline floating dsigmoid(floating y) noexcept nogil:
    return y * (1 - y)


cdef inline floating dtanh(floating y) noexcept nogil:
    return 1 - y * y


cdef inline floating drelu(floating y) noexcept nogil:
    return 1 if y > 0 else 0
