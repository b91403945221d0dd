"""The door to fingerprint.h: ``fingerprint(a)``, a keyed fingerprint of an array's bytes, GIL released.

The training caches record the fingerprint of the parameters in begin_update and compare it in
backprop (ParamSet.stamp / changed_since), which costs no copy of the parameters. The keys are drawn
once per process from the operating system's random source, so no change a program makes to its
parameters can depend on them; fingerprint.h says what that guarantees.
"""
import os

cimport numpy as cnp
from libc.stdint cimport uint64_t

cnp.import_array()


cdef extern from "fingerprint.h" nogil:
    ctypedef struct fr_fp_key:
        pass
    void fr_fp_key_init(fr_fp_key* key, const unsigned char* random_bytes)
    int fr_fp_have_avx2()
    void fr_fingerprint(const void* data, size_t n, const fr_fp_key* key, int use_avx2, uint64_t* out)


cdef fr_fp_key _key
cdef bytes _random = os.urandom(sizeof(fr_fp_key))
fr_fp_key_init(&_key, _random)
cdef int _avx2 = fr_fp_have_avx2()


cdef bytes _fingerprint(cnp.ndarray a, int use_avx2):
    cdef uint64_t out[3]
    cdef const void* data
    cdef size_t n
    if not cnp.PyArray_IS_C_CONTIGUOUS(a):
        raise ValueError(f"fingerprint: expected a C-contiguous array, got strides {(<object>a).strides}")
    data = cnp.PyArray_DATA(a)
    n = <size_t>cnp.PyArray_NBYTES(a)
    with nogil:
        fr_fingerprint(data, n, &_key, use_avx2, out)
    return (<char*>out)[:sizeof(out)]


def fingerprint(cnp.ndarray a not None):
    """The 24-byte fingerprint of the bytes of a C-contiguous array: equal bytes give equal fingerprints;
    different bytes of the same length give different ones, always if they differ inside one 64-bit word,
    else but for a chance of about 2^-64 (fingerprint.h)."""
    return _fingerprint(a, _avx2)


def _fingerprint_portable(cnp.ndarray a not None):
    """``fingerprint`` through the portable loop even where AVX2 runs (test hook: both give the same)."""
    return _fingerprint(a, 0)


def _uses_avx2():
    """Whether ``fingerprint`` runs the AVX2 loop on this processor (test hook)."""
    return bool(_avx2)
