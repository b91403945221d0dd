"""The compiled layer below the layers: BLAS wrappers, activations, and the kernels' door checks.

CI runs this file a second time against a build with Cython's bounds checking on.
"""
import numpy as np
import pytest

import fastrnn as fr
from fastrnn._kernels import blas, gru, lstm, rnn

DTYPES = [np.float32, np.float64]
TOL = {np.float32: 2e-5, np.float64: 1e-12}


# ---- the one door into BLAS ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("M,N,K", [(3, 5, 4), (1, 7, 6), (6, 1, 5), (1, 1, 3), (8, 9, 1)])
def test_gemm_matches_numpy(dtype, trans_a, trans_b, M, N, K):
    """Row-major gemm, including the GEMV paths taken when M == 1 or N == 1."""
    rng = np.random.default_rng(M * 100 + N * 10 + K)
    A = rng.standard_normal((K, M) if trans_a else (M, K)).astype(dtype)
    B = rng.standard_normal((N, K) if trans_b else (K, N)).astype(dtype)
    C = rng.standard_normal((M, N)).astype(dtype)
    expected = 0.5 * (A.T if trans_a else A) @ (B.T if trans_b else B) + 2.0 * C
    blas._gemm_test(trans_a, trans_b, A, B, C, 0.5, 2.0)
    np.testing.assert_allclose(C, expected, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("K", [1, 7, 8, 15, 16, 17, 31, 32, 33, 48, 100, 257])
@pytest.mark.parametrize("N", [1, 5, 7, 64])
def test_one_row_times_transposed_matrix(dtype, K, N):
    """a @ W^T with W stored (N, K), the batch-1 step (gemv.h, not BLAS): every split of K into the two
    vector accumulators, one vector and the scalar tail, for 8- and 16-lane vectors, and of N into blocks
    of four rows and the rows left; beta = 0 must not read C."""
    rng = np.random.default_rng(K * 10 + N)
    A = rng.standard_normal((1, K)).astype(dtype)
    W = rng.standard_normal((N, K)).astype(dtype)
    C = rng.standard_normal((1, N)).astype(dtype)
    exact = A.astype(np.float64) @ W.astype(np.float64).T
    expected = 0.5 * exact + 2.0 * C
    blas._gemm_test(False, True, A, W, C, 0.5, 2.0)
    np.testing.assert_allclose(C, expected, rtol=TOL[dtype], atol=TOL[dtype] * np.sqrt(K))
    C[...] = np.nan
    blas._gemm_test(False, True, A, W, C, 1.0, 0.0)
    np.testing.assert_allclose(C, exact, rtol=TOL[dtype], atol=TOL[dtype] * np.sqrt(K))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,K", [(1, 5), (4, 64), (7, 33), (256, 64), (1022, 129)])
def test_one_row_rows_last_first_give_the_same_bits(dtype, N, K):
    """gemv_rows with desc (the batch-1 forward steps, every other step) takes W's blocks of four rows last
    first: each y[n] is the same sum in the same order, so the result is identical to the bit (the rows
    past the last whole block too), and it is W @ x."""
    rng = np.random.default_rng(N * 1000 + K)
    W = rng.standard_normal((N, K)).astype(dtype)
    x = rng.standard_normal(K).astype(dtype)
    y0 = rng.standard_normal(N).astype(dtype)
    up, down = y0.copy(), y0.copy()
    blas._gemv_rows_test(W, x, up, 0.5, 2.0, False)
    blas._gemv_rows_test(W, x, down, 0.5, 2.0, True)
    np.testing.assert_array_equal(down, up)
    expected = 0.5 * (W.astype(np.float64) @ x.astype(np.float64)) + 2.0 * y0
    np.testing.assert_allclose(down, expected, rtol=TOL[dtype], atol=TOL[dtype] * np.sqrt(K))
    with pytest.raises(ValueError, match="shapes"):
        blas._gemv_rows_test(W, x[:-1] if K > 1 else np.ones(2, dtype), up, 1.0, 0.0, True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("T,B", [(1, 1), (3, 1), (5, 9)])
def test_calls_reading_weights_in_either_order_give_the_same_bits(dtype, kind, T, B):
    """Each forward call on a thread starts reading its weights in the other order from the call before
    (packed.pxd, call_order): the same inputs give the same bits in call after call, for one step at batch
    1 (the cells' path), batch-1 sequences and the packed batched steps."""
    layer = getattr(fr, kind)(40, 130, dtype=dtype, seed=3)
    cell = getattr(fr, kind + "Cell")(40, 130, dtype=dtype, seed=3)
    rng = np.random.default_rng(T * 10 + B)
    x = rng.standard_normal((T, B, 40)).astype(dtype)
    h = rng.standard_normal((1, B, 130)).astype(dtype)
    state = (h, rng.standard_normal((1, B, 130)).astype(dtype)) if kind == "LSTM" else h
    runs = [layer(x, state) for _ in range(3)]
    steps = [cell(x[0], tuple(s[0] for s in state) if kind == "LSTM" else state[0]) for _ in range(3)]
    for got in runs[1:]:
        np.testing.assert_array_equal(got[0], runs[0][0])
    for got in steps[1:]:
        for a, b in zip(got if kind == "LSTM" else (got,), steps[0] if kind == "LSTM" else (steps[0],)):
            np.testing.assert_array_equal(a, b)


def test_each_call_starts_opposite_to_the_last_step_of_the_call_before():
    """call_order(T): a call of T steps starts in the order opposite to the last step (desc = (T-1) & 1 ^
    order) of the call before on the thread; for one-step calls, the other order from the call before."""
    from fastrnn._kernels.packed_hooks import _call_order_test

    lengths = [1, 1, 1, 50, 50, 3, 2, 1, 7, 4]
    orders = [_call_order_test(T) for T in lengths]
    for T, order, following in zip(lengths, orders, orders[1:]):
        last_step = ((T - 1) & 1) ^ order
        assert following == 1 - last_step, (lengths, orders)
    assert orders[:3] == [orders[0], 1 - orders[0], orders[0]]


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_row_timing_hook_computes_the_product_both_ways(dtype):
    """bench/one_row.py's hook: both paths leave y = W @ x; wrong shapes are refused."""
    rng = np.random.default_rng(5)
    W, x = rng.standard_normal((40, 19)).astype(dtype), rng.standard_normal(19).astype(dtype)
    for ours in (True, False):
        y = np.full(40, np.nan, dtype)
        assert blas._time_one_row(ours, W, x, y, 3) >= 0.0
        np.testing.assert_allclose(y, W.astype(np.float64) @ x, rtol=TOL[dtype], atol=TOL[dtype] * 10)
    with pytest.raises(ValueError, match="shapes"):
        blas._time_one_row(True, W, x[:5], np.empty(40, dtype), 1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_read_timing_hook_reads_all_of_w(dtype):
    """bench/one_row.py's read floor: gemv_read sums every element of W (repeats times); other widths refused."""
    W = np.random.default_rng(6).standard_normal((7, 128)).astype(dtype)
    seconds, total = blas._time_read(W, 3)
    assert seconds >= 0.0
    np.testing.assert_allclose(total, 3 * W.astype(np.float64).sum(), rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="multiple of"):
        blas._time_read(W[:, :100].copy(), 1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_beta_zero_ignores_garbage_in_c(dtype):
    A = np.ones((1, 3), dtype)
    B = np.ones((3, 4), dtype)
    C = np.full((1, 4), np.nan, dtype)
    blas._gemm_test(False, False, A, B, C, 1.0, 0.0)
    np.testing.assert_array_equal(C, np.full((1, 4), 3, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_nrm2(dtype):
    x = np.arange(1, 6, dtype=dtype)
    assert blas._nrm2_test(x) == pytest.approx(np.sqrt(np.sum(x.astype(np.float64) ** 2)), rel=TOL[dtype])


# ---- activations (through layers whose weights are zero) ----------------------------------------

def _activation_grid(dtype):
    edges = [0.0, 1e-30, -1e-30, 1e-8, -1e-8, 1e-3, 0.3, -0.7, 2.0, -5.0, 9.5, -20.0, 44.0, -87.5, 89.0, 300.0,
             -800.0, 1e30, -3e38]
    return np.array(edges + list(np.linspace(-30, 30, 241)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_tanh_accuracy_and_saturation(dtype):
    """h = tanh(b_ih + b_hh) when every weight is zero: tanh over the whole range, no NaN from overflow."""
    z = _activation_grid(dtype)
    layer = fr.RNN(1, len(z), dtype=dtype)
    layer.param_set.data[...] = 0
    layer.params["bias_ih_l0"][...] = z
    y, _ = layer(np.zeros((1, 1, 1), dtype))
    expected = np.tanh(z.astype(np.float64))
    assert np.all(np.isfinite(y))
    # absolute error at round-off of values near 1, relative error small away from 0
    np.testing.assert_allclose(y[0, 0], expected, rtol=4 * np.finfo(dtype).eps, atol=2 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_accuracy_and_saturation(dtype):
    """GRU with zero weights and biases but b_z, and h0 = 1: n = tanh(0) = 0, so h = z * h0 = sigmoid(b_z)."""
    z = _activation_grid(dtype)
    H = len(z)
    layer = fr.GRU(1, H, dtype=dtype)
    layer.param_set.data[...] = 0
    layer.params["bias_ih_l0"][H:2 * H] = z
    y, _ = layer(np.zeros((1, 1, 1), dtype), np.ones((1, 1, H), dtype))
    with np.errstate(over="ignore"):
        expected = 1 / (1 + np.exp(-z.astype(np.float64)))
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y[0, 0], expected, rtol=8 * np.finfo(dtype).eps, atol=np.finfo(dtype).tiny * 1e3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_propagates_through_activations(dtype):
    layer = fr.RNN(1, 3, dtype=dtype)
    layer.param_set.data[...] = 0
    layer.params["bias_ih_l0"][...] = [np.nan, 1.0, -np.inf]
    y, _ = layer(np.zeros((1, 1, 1), dtype))
    assert np.isnan(y[0, 0, 0]) and y[0, 0, 2] == -1 and y[0, 0, 1] == pytest.approx(np.tanh(1.0))


# ---- the kernels' door checks: wrong buffers raise, never read out of bounds ---------------------

def _rnn_args(dtype=np.float64, T=3, B=2, I=4, H=5):
    X = np.zeros((T, B, I), dtype)
    W_ih, W_hh = np.zeros((H, I), dtype), np.zeros((H, H), dtype)
    b = np.zeros(H, dtype)
    h0 = np.zeros((B, H), dtype)
    Y = np.zeros((T, B, H), dtype)
    G = np.zeros((T, B, H), dtype)
    Hs = np.zeros((2, B, H), dtype)
    return dict(X=X, W_ih=W_ih, W_hh=W_hh, b_ih=b, b_hh=b.copy(), h0=h0, lengths=None, Y=Y, col=0, G=G, Hs=Hs,
                reverse=False, use_relu=False)


def test_kernel_accepts_good_buffers():
    args = _rnn_args()
    rnn.forward(**args)
    assert np.all(args["Y"] == 0)


@pytest.mark.parametrize("name,bad,message", [
    ("W_hh", np.zeros((5, 4)), r"W_hh: expected shape \(4, 4\)"),
    ("W_ih", np.zeros((5, 3)), "at least 20 elements"),
    ("h0", np.zeros((1, 5)), "at least 10 elements"),
    ("G", np.zeros((3, 2, 4)), "at least 30 elements"),
    ("b_ih", None, "expected a numpy array"),
    ("X", np.zeros((3, 2, 4), np.float32), "C-contiguous native-byte-order array"),
    ("W_ih", np.zeros((4, 5)).T, "C-contiguous native-byte-order array"),
    ("lengths", np.array([1, 2], np.int32), "C-contiguous native-byte-order array"),
    ("h0", np.zeros((2, 5), ">f8"), "native-byte-order"),
    ("Y", np.zeros((3, 2, 4)), "cannot hold columns"),
    ("Hs", np.zeros((3, 2, 5)), "slots"),
])
def test_kernel_rejects_wrong_buffers(name, bad, message):
    args = _rnn_args()
    args[name] = bad
    with pytest.raises((ValueError, TypeError), match=message):
        rnn.forward(**args)


def test_lstm_and_gru_kernels_check_their_buffers():
    T, B, I, H = 2, 1, 3, 4
    X = np.zeros((T, B, I))
    with pytest.raises(ValueError, match="at least"):
        lstm.forward(X, np.zeros((4 * H, I)), np.zeros((4 * H, H)), None, np.zeros(4 * H), np.zeros(4 * H),
                     np.zeros((B, H)), np.zeros((B, H - 1)), None, None, 0, np.zeros((T, B, 4 * H)),
                     np.zeros((2, B, H)), np.zeros((2, B, H)), None, False)
    with pytest.raises(ValueError, match="slots"):
        gru.forward(X, np.zeros((3 * H, I)), np.zeros((3 * H, H)), np.zeros(3 * H), np.zeros(3 * H),
                    np.zeros((B, H)), None, None, 0, np.zeros((T, B, 3 * H)), np.zeros((2, B, H)),
                    np.zeros((3, B, H)), False, True)


# ---- parameter buffers start on a cache line (the one-row kernel's loads then never straddle two) ----

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 3, 17, 1000])
def test_aligned_zeros(dtype, n):
    from fastrnn._params import ALIGN, aligned_zeros
    a = aligned_zeros(n, dtype)
    assert a.shape == (n,) and a.dtype == dtype and a.ctypes.data % ALIGN == 0 and not a.any()


def test_parameter_buffers_are_aligned_in_layers_cells_and_models():
    import fastrnn as fr
    from fastrnn._params import ALIGN
    layers = [fr.LSTM(3, 5), fr.GRUCell(4, 6, dtype=np.float64), fr.Sequential(fr.Linear(3, 4), fr.RNN(4, 16))]
    for layer in layers:
        assert layer.param_set.data.ctypes.data % ALIGN == 0
        assert layer.param_set.grad.ctypes.data % ALIGN == 0
    # and the first weight of each layer, which starts the buffer
    assert next(iter(layers[0].params.values())).ctypes.data % ALIGN == 0
