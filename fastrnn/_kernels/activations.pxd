# Inline activations and their derivatives, written from the activation's OUTPUT y.
# Overflow-safe: sigmoid(x) = 1 / (1 + exp(-x)) gives 1/(1+inf) = 0 for x -> -inf and 1 for
# x -> +inf, never inf/inf; tanh from libm saturates to +-1.
from cython cimport floating
from libc.math cimport exp, expf, tanh, tanhf


cdef inline floating sigmoid(floating x) noexcept nogil:
    if floating is float:
        return 1.0 / (1.0 + expf(-x))
    else:
        return 1.0 / (1.0 + exp(-x))


cdef inline floating tanh_(floating x) noexcept nogil:
    if floating is float:
        return tanhf(x)
    else:
        return tanh(x)


cdef inline floating relu(floating x) noexcept nogil:
    # x > 0 ? x : 0, which keeps NaN as NaN (NaN > 0 is false, so NaN would give 0: test x != x)
    return x if (x > 0 or x != x) else 0


# d sigmoid(x)/dx = y (1 - y); d tanh(x)/dx = 1 - y^2; d relu(x)/dx = [y > 0]
cdef inline floating dsigmoid(floating y) noexcept nogil:
    return y * (1 - y)


cdef inline floating dtanh(floating y) noexcept nogil:
    return 1 - y * y


cdef inline floating drelu(floating y) noexcept nogil:
    return 1 if y > 0 else 0
