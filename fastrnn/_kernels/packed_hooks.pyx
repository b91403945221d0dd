"""Test and benchmark hooks for the packed-weight GEMM of packed.h (the kernels cimport packed.pxd)."""
from cython cimport floating
from libc.stdlib cimport free
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from .blas cimport gemm
from .packed cimport (FR_MAX_PARTS, call_order, fr_run_parts, gemm_once, gemm_once_at, gemm_packed, gemm_packed_2,
                      gemm_packed_at, once_parts, own_parts, pack_weights, pack_weights_2, packed_at_product,
                      packed_product)


def _gemm_packed_test(bint trans, floating[:, ::1] A, floating[:, ::1] W, floating[:, ::1] C, floating beta,
                      bint desc=False):
    """C = A @ op(W) + beta * C through pack + gemm_packed; op(W) = W.T when trans; desc: panels last
    first (test hook)."""
    cdef int M = C.shape[0], N = C.shape[1], K = A.shape[1]
    cdef floating* Wp
    if A.shape[0] != M or (W.shape[1] if trans else W.shape[0]) != K or (W.shape[0] if trans else W.shape[1]) != N:
        raise ValueError("shapes do not agree")
    Wp = pack_weights(trans, K, N, &W[0, 0], W.shape[1])
    if Wp == NULL:
        raise MemoryError("cannot allocate the packed weights")
    # C = A @ op(W) + beta * C
    gemm_packed(M, N, K, &A[0, 0], A.shape[1], Wp, beta, &C[0, 0], N, desc)
    free(Wp)


def _gemm_packed_at_test(floating[:, ::1] A, floating[:, ::1] B, floating[:, ::1] C, floating beta):
    """C = A[:, :M].T @ B + beta * C through gemm_packed_at, M = C's rows, A's rows A.shape[1] >= M apart
    (its leading dimension) (test hook)."""
    cdef int M = C.shape[0], N = C.shape[1], K = A.shape[0]
    if A.shape[1] < M or B.shape[0] != K or B.shape[1] != N:
        raise ValueError("shapes do not agree")
    # C = A[:, :M]^T @ B + beta * C
    if gemm_packed_at(M, N, K, &A[0, 0], A.shape[1], &B[0, 0], N, beta, &C[0, 0], N) != 0:
        raise MemoryError("cannot allocate the kernel's scratch")


def _gemm_packed_2_test(floating[:, ::1] A1, floating[:, ::1] W1, floating[:, ::1] A2, floating[:, ::1] W2,
                        floating[:, ::1] C, floating beta):
    """C = A1 @ W1.T + A2 @ W2.T + beta * C through pack_weights_2 + gemm_packed_2 (test hook).
    Returns False, C untouched, when K1 + K2 is too large to fuse."""
    cdef int M = C.shape[0], N = C.shape[1], K1 = A1.shape[1], K2 = A2.shape[1]
    cdef floating* Wp
    if A1.shape[0] != M or A2.shape[0] != M or W1.shape[0] != N or W2.shape[0] != N \
            or W1.shape[1] != K1 or W2.shape[1] != K2:
        raise ValueError("shapes do not agree")
    # an empty first operand (K1 = 0) is never read: any valid pointer stands in for it
    cdef floating* a1 = &A1[0, 0] if K1 > 0 else &A2[0, 0]
    cdef floating* w1 = &W1[0, 0] if K1 > 0 else &W2[0, 0]
    Wp = pack_weights_2(K1, K2, N, w1, &W2[0, 0])
    if Wp == NULL:
        return False
    # C = A1 @ W1^T + A2 @ W2^T + beta * C
    gemm_packed_2(M, N, K1, a1, K1, K2, &A2[0, 0], K2, Wp, beta, &C[0, 0], N)
    free(Wp)
    return True


def _gemm_once_test(bint trans, floating[:, ::1] A, floating[:, ::1] W, floating[:, ::1] C, floating beta):
    """C = A @ op(W) + beta * C through gemm_once, the door of the products computed once per call; returns
    True when it took the packed GEMM (packed_product), False for BLAS gemm (test hook)."""
    cdef int M = C.shape[0], N = C.shape[1], K = A.shape[1]
    if A.shape[0] != M or (W.shape[1] if trans else W.shape[0]) != K or (W.shape[0] if trans else W.shape[1]) != N:
        raise ValueError("shapes do not agree")
    # C = A @ op(W) + beta * C
    gemm_once(trans, M, N, K, &A[0, 0], A.shape[1], &W[0, 0], W.shape[1], beta, &C[0, 0], N)
    return packed_product(trans, M, N, K, sizeof(floating))


def _gemm_once_at_test(floating[:, ::1] A, floating[:, ::1] B, floating[:, ::1] C, floating beta):
    """C = A.T @ B + beta * C through gemm_once_at, the door of the weight gradients; returns True when it took
    gemm_packed_at (packed_at_product), False for BLAS gemm (test hook)."""
    cdef int M = C.shape[0], N = C.shape[1], K = A.shape[0]
    if A.shape[1] != M or B.shape[0] != K or B.shape[1] != N:
        raise ValueError("shapes do not agree")
    # C = A^T @ B + beta * C
    gemm_once_at(M, N, K, &A[0, 0], M, &B[0, 0], N, beta, &C[0, 0], N)
    return packed_at_product(M, N, K, sizeof(floating))


def _call_order_test(int T):
    """call_order(T) on this thread: the order a forward call of T steps starts in (test hook; this module's
    flag, which only this hook moves)."""
    return call_order(T)


def _own_parts_test(bint at, int M, int N, int K, int itemsize):
    """How many of fastrnn's own threads gemm_once_at (at) or gemm_once would split C[M, N] over when the
    product does not take the packed GEMM on the calling thread; 1: BLAS (test hook)."""
    return own_parts(M, 16, <size_t>M * N * K, itemsize) if at else once_parts(M, N, K, itemsize)


cdef double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + 1e-9 * ts.tv_nsec


def _time_steps(bint trans, bint packed, floating[:, ::1] A, floating[:, ::1] W, floating[:, ::1] C, int steps):
    """Run C += A @ op(W) `steps` times without the GIL, by gemm_packed (packing once) or by BLAS gemm:
    the per-step recurrent product in isolation (benchmark hook). Returns (pack_seconds, steps_seconds)."""
    cdef int M = C.shape[0], N = C.shape[1], K = A.shape[1], s
    cdef floating* Wp = NULL
    cdef double t0, t1, t2
    if A.shape[0] != M or (W.shape[1] if trans else W.shape[0]) != K or (W.shape[0] if trans else W.shape[1]) != N:
        raise ValueError("shapes do not agree")
    with nogil:
        t0 = _now()
        if packed:
            Wp = pack_weights(trans, K, N, &W[0, 0], W.shape[1])
            t1 = _now()
            if Wp != NULL:
                for s in range(steps):
                    # C += A @ op(W)
                    gemm_packed(M, N, K, &A[0, 0], K, Wp, <floating>1, &C[0, 0], N)
                free(Wp)
        else:
            t1 = _now()
            for s in range(steps):
                # C += A @ op(W)
                gemm(False, trans, M, N, K, <floating>1, &A[0, 0], K, &W[0, 0], W.shape[1], <floating>1, &C[0, 0], N)
        t2 = _now()
    if packed and Wp == NULL:
        raise MemoryError("cannot allocate the packed weights")
    return t1 - t0, t2 - t1


def _time_at(bint packed, floating[:, ::1] A, floating[:, ::1] B, floating[:, ::1] C):
    """Seconds for one C += A^T @ B without the GIL (A stored (K, M), B (K, N)), by gemm_packed_at or by BLAS
    gemm: the weight-gradient product in isolation (benchmark hook)."""
    cdef int M = C.shape[0], N = C.shape[1], K = A.shape[0], status = 0
    cdef double t0
    if A.shape[1] != M or B.shape[0] != K or B.shape[1] != N:
        raise ValueError("shapes do not agree")
    with nogil:
        t0 = _now()
        if packed:
            # C += A^T @ B
            status = gemm_packed_at(M, N, K, &A[0, 0], M, &B[0, 0], N, <floating>1, &C[0, 0], N)
        else:
            # C += A^T @ B
            gemm(True, False, M, N, K, <floating>1, &A[0, 0], M, &B[0, 0], N, <floating>1, &C[0, 0], N)
        t0 = _now() - t0
    if status != 0:
        raise MemoryError("cannot allocate the kernel's scratch")
    return t0


cdef extern from "<sched.h>" nogil:
    int sched_getcpu()


cdef void _record_cpu(void* cpus, int part) noexcept nogil:
    (<int*>cpus)[part] = sched_getcpu()


def _part_cpus(int parts):
    """The CPU each of `parts` row blocks of one call (parts.h's fr_run_parts) started on, part 0 being the
    calling thread (test hook: the blocks should start on different CPUs)."""
    cdef int cpus[FR_MAX_PARTS]
    if not 1 <= parts <= FR_MAX_PARTS:
        raise ValueError(f"parts must be in [1, {FR_MAX_PARTS}], got {parts}")
    with nogil:
        fr_run_parts(parts, _record_cpu, cpus)
    return [cpus[p] for p in range(parts)]
