"""The parameter fingerprint (fastrnn/_kernels/fingerprint.h) and ParamSet.stamp / changed_since, which
the training caches use to refuse a backward pass against changed weights (reliability case 31)."""
import numpy as np
import pytest

from fastrnn._kernels.fingerprint import _fingerprint_portable, _uses_avx2, fingerprint
from fastrnn._params import ParamSet

BLOCK = 2048  # bytes per block of fingerprint.h (FR_FP_W 64-bit words)
PATHS = [fingerprint, _fingerprint_portable]


def _bytes(n, seed=0, offset=0):
    """n random bytes as a uint8 array starting `offset` bytes into its buffer (any alignment)."""
    buf = np.random.default_rng(seed).integers(0, 256, n + offset, dtype=np.uint8)
    return buf[offset:]


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 63, 64, 2047, 2048, 2049, 4096 + 3, 100_000])
@pytest.mark.parametrize("offset", [0, 1, 4, 7])
def test_equal_bytes_give_equal_fingerprints_on_both_paths(n, offset):
    a = _bytes(n, seed=n, offset=offset)
    fp = fingerprint(a)
    assert len(fp) == 24
    assert fingerprint(a.copy()) == fp                 # another address, another alignment
    assert _fingerprint_portable(a) == fp              # the AVX2 loop computes the portable loop's numbers
    assert fingerprint(a.view(np.uint8)) == fp


def test_the_avx2_loop_runs_where_the_processor_has_avx2():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split() for line in f if line.startswith("flags")), [])
    except OSError:
        pytest.skip("no /proc/cpuinfo")
    if "avx2" not in flags:
        pytest.skip("this processor has no AVX2")
    assert _uses_avx2()


@pytest.mark.parametrize("path", PATHS)
def test_every_single_bit_flip_is_detected(path):
    """A change inside one 64-bit word is always detected (the word sum), over blocks and the padded tail."""
    a = _bytes(BLOCK + 37, seed=1)
    ref = path(a)
    for i in range(a.size):
        for bit in range(8):
            a[i] ^= 1 << bit
            assert path(a) != ref, (i, bit)
            a[i] ^= 1 << bit
    assert path(a) == ref


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_ulp_change_of_any_parameter_is_detected(dtype):
    """Unlike a float checksum, where a 1-ulp change can vanish in the rounding of the sum."""
    w = np.random.default_rng(2).standard_normal(1500).astype(dtype)
    w[::7] = 0.0
    ref = fingerprint(w)
    for i in range(w.size):
        keep = w[i]
        for new in (np.nextafter(keep, dtype(np.inf)), np.nextafter(keep, dtype(-np.inf)), -keep):
            if new.tobytes() == keep.tobytes():
                continue
            w[i] = new
            assert fingerprint(w) != ref, i
        w[i] = keep
    assert fingerprint(w) == ref


@pytest.mark.parametrize("path", PATHS)
def test_changes_that_keep_the_word_sum_are_detected(path):
    """+d in one 64-bit word and -d in another leave the plain word sum as it was; NH (keyed) still
    sees them (a miss has a chance of about 2^-64 per pair)."""
    rng = np.random.default_rng(3)
    a = _bytes(5 * BLOCK + 100, seed=3)
    words = a[: (a.size // 8) * 8].view(np.uint64)
    ref = path(a)
    for _ in range(300):
        i, j = rng.choice(words.size, 2, replace=False)
        d = np.uint64(rng.integers(1, 2**63))
        wi, wj = int(words[i]), int(words[j])
        words[i], words[j] = (wi + int(d)) % 2**64, (wj - int(d)) % 2**64
        assert path(a) != ref, (i, j)
        words[i], words[j] = wi, wj
    assert path(a) == ref


def test_swapped_blocks_and_words_are_detected():
    a = _bytes(4 * BLOCK, seed=4)
    ref = fingerprint(a)
    b = a.copy()
    b[:BLOCK], b[BLOCK:2 * BLOCK] = a[BLOCK:2 * BLOCK], a[:BLOCK]   # the same blocks in another order
    assert fingerprint(b) != ref
    w = a.copy().view(np.uint64)
    w[[3, 200]] = w[[200, 3]]                                        # the same words, other places
    assert fingerprint(w) != ref


def test_length_and_signed_zero_and_nan_payloads_count():
    assert fingerprint(np.zeros(5, np.uint8)) != fingerprint(np.zeros(6, np.uint8))
    assert fingerprint(np.zeros(3)) != fingerprint(np.array([0.0, -0.0, 0.0]))
    a = np.full(10, np.nan)
    assert fingerprint(a) == fingerprint(a.copy())                  # NaN parameters are stable
    b = a.copy()
    b.view(np.uint64)[4] ^= 1                                        # another NaN
    assert fingerprint(b) != fingerprint(a)


def test_non_contiguous_arrays_are_refused():
    with pytest.raises(ValueError, match="C-contiguous"):
        fingerprint(np.zeros((4, 4))[:, ::2])
    with pytest.raises(TypeError):
        fingerprint([1.0, 2.0])


# ---- ParamSet.stamp / changed_since ----------------------------------------------------------

def _set():
    ps = ParamSet([("w", (3, 4)), ("b", (3,))], np.float32)
    ps.data[...] = np.arange(ps.size, dtype=np.float32) / 7
    return ps


@pytest.mark.parametrize("change", [
    lambda ps: ps.params["w"].__setitem__((1, 2), np.nextafter(ps.params["w"][1, 2], np.float32(9))),
    lambda ps: ps.data.__setitem__(-1, -ps.data[-1]),
    lambda ps: np.copyto(ps.params["b"], 0.5),
    lambda ps: ps.bump(),
])
def test_changed_since_sees_every_kind_of_change(change):
    ps = _set()
    stamp = ps.stamp()
    assert not ps.changed_since(stamp)
    change(ps)
    assert ps.changed_since(stamp)


def test_stamp_survives_moving_the_values_into_a_container_buffer():
    """ParamSet.concatenate (Sequential) rebinds the views to a new buffer with the same values."""
    ps, other = _set(), _set()
    stamp = ps.stamp()
    ParamSet.concatenate([other, ps], np.float32)
    assert not ps.changed_since(stamp)
    ps.params["w"][0, 0] += 1
    assert ps.changed_since(stamp)


def test_stamp_keeps_no_copy_of_the_parameters():
    ps = ParamSet([("w", (512, 512))], np.float32)
    version, print_ = ps.stamp()
    assert isinstance(print_, bytes) and len(print_) == 24
