"""The packed-weight GEMM (packed.h) against numpy: both operand orientations, both dtypes, sizes that
are not multiples of the micro-tile (8 rows) or the panel (32 float / 16 double columns)."""
import numpy as np
import pytest

from fastrnn._kernels import packed_hooks as packed

DTYPES = [np.float32, np.float64]
TOL = {np.float32: 2e-5, np.float64: 1e-12}
SHAPES = [(1, 1, 1), (3, 5, 4), (7, 33, 17), (9, 31, 65), (17, 47, 3), (33, 100, 70), (64, 256, 64),
          (2, 7, 301)]


def _operands(dtype, trans, M, N, K):
    rng = np.random.default_rng(M * 10007 + N * 101 + K)
    A = rng.standard_normal((M, K)).astype(dtype)
    W = rng.standard_normal((N, K) if trans else (K, N)).astype(dtype)
    C = rng.standard_normal((M, N)).astype(dtype)
    return A, W, C


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans", [True, False])
@pytest.mark.parametrize("M,N,K", SHAPES)
@pytest.mark.parametrize("beta", [0.0, 1.0, -0.5])
def test_matches_numpy(dtype, trans, M, N, K, beta):
    """C = A @ op(W) + beta * C, op(W) = W.T (forward, W_hh stored (4H, H)) or W (backward)."""
    A, W, C = _operands(dtype, trans, M, N, K)
    expected = A.astype(np.float64) @ (W.T if trans else W).astype(np.float64) + beta * C.astype(np.float64)
    packed._gemm_packed_test(trans, A, W, C, beta)
    scale = np.sqrt(K)  # round-off of a K-term sum grows like sqrt(K) for these unit-variance entries
    np.testing.assert_allclose(C, expected, rtol=TOL[dtype], atol=TOL[dtype] * scale)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans", [True, False])
@pytest.mark.parametrize("M,N,K", [(1, 256, 64), (1, 100, 7), (5, 97, 33), (9, 64, 300), (1100, 33, 70)])
def test_panels_last_first_give_the_same_bits(dtype, trans, M, N, K):
    """desc (the step loops' every other step) reads the panels in the opposite order: every element of C
    is the same sum in the same order, so the result is identical to the bit, the last narrow panel too."""
    A, W, C = _operands(dtype, trans, M, N, K)
    up, down = C.copy(), C.copy()
    packed._gemm_packed_test(trans, A, W, up, 1.0, False)
    packed._gemm_packed_test(trans, A, W, down, 1.0, True)
    np.testing.assert_array_equal(down, up)
    expected = A.astype(np.float64) @ (W.T if trans else W).astype(np.float64) + C.astype(np.float64)
    np.testing.assert_allclose(down, expected, rtol=TOL[dtype], atol=TOL[dtype] * np.sqrt(K))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans", [True, False])
@pytest.mark.parametrize("M,N,K", [(1100, 33, 70), (2000, 40, 300)])
def test_large_a_in_row_blocks_matches_numpy(dtype, trans, M, N, K):
    """A larger than W and than FR_PACKED_A_BYTES: the rows run in blocks (packed_mc), the last one partial."""
    A, W, C = _operands(dtype, trans, M, N, K)
    expected = A.astype(np.float64) @ (W.T if trans else W).astype(np.float64) + C.astype(np.float64)
    packed._gemm_packed_test(trans, A, W, C, 1.0)
    np.testing.assert_allclose(C, expected, rtol=TOL[dtype], atol=TOL[dtype] * np.sqrt(K))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M,N,K", [(1, 1, 1), (7, 33, 5), (9, 31, 255), (64, 40, 256), (300, 65, 257),
                                   (520, 128, 1000), (3, 300, 600)])
@pytest.mark.parametrize("beta", [0.0, 1.0, -0.5])
def test_transposed_a_matches_numpy(dtype, M, N, K, beta):
    """C = A.T @ B + beta * C, A stored (K, M): the weight gradients dW += dG^T @ X. K in chunks of 256 (one,
    several, a partial last one), rows in blocks when A's chunk is large (M = 520), partial tiles and panels."""
    rng = np.random.default_rng(M * 13 + N * 7 + K)
    A, B = rng.standard_normal((K, M)).astype(dtype), rng.standard_normal((K, N)).astype(dtype)
    C = rng.standard_normal((M, N)).astype(dtype)
    expected = A.astype(np.float64).T @ B.astype(np.float64) + beta * C.astype(np.float64)
    packed._gemm_packed_at_test(A, B, C, beta)
    np.testing.assert_allclose(C, expected, rtol=TOL[dtype], atol=TOL[dtype] * np.sqrt(K))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M,lda,N", [(1024, 1024, 520), (1021, 1024, 520), (1021, 1024, 130), (1000, 1000, 600)])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_transposed_a_with_tiles_copied(dtype, M, lda, N, beta):
    """gemm_packed_at copies A's block tile by tile when A's rows are a multiple of 4 KiB apart and there are
    at least 16 panels (lda = 1024: float32 4 KiB, float64 8 KiB; N = 520: 17 panels of 32 floats, 33 of 16
    doubles), a last tile of fewer rows (M = 1021) and two K chunks; and gives the same product where it
    does not copy (N = 130, or lda = 1000)."""
    K = 300
    rng = np.random.default_rng(M + lda + N)
    A, B = rng.standard_normal((K, lda)).astype(dtype), rng.standard_normal((K, N)).astype(dtype)
    C = rng.standard_normal((M, N)).astype(dtype)
    expected = A[:, :M].astype(np.float64).T @ B.astype(np.float64) + beta * C.astype(np.float64)
    packed._gemm_packed_at_test(A, B, C, beta)
    np.testing.assert_allclose(C, expected, rtol=TOL[dtype], atol=TOL[dtype] * np.sqrt(K))


def test_transposed_a_hook_refuses_a_narrower_than_c():
    A, B, C = np.zeros((5, 3), np.float32), np.zeros((5, 4), np.float32), np.zeros((6, 4), np.float32)
    with pytest.raises(ValueError, match="shapes do not agree"):
        packed._gemm_packed_at_test(A, B, C, 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_transposed_a_beta_zero_ignores_garbage_in_c(dtype):
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((300, 20)).astype(dtype), rng.standard_normal((300, 40)).astype(dtype)
    C = np.full((20, 40), np.nan, dtype)
    packed._gemm_packed_at_test(A, B, C, 0.0)
    np.testing.assert_allclose(C, A.T @ B, rtol=TOL[dtype], atol=TOL[dtype] * np.sqrt(300))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans", [True, False])
def test_beta_zero_ignores_garbage_in_c(dtype, trans):
    A, W, _ = _operands(dtype, trans, 5, 37, 6)
    C = np.full((5, 37), np.nan, dtype)
    packed._gemm_packed_test(trans, A, W, C, 0.0)
    np.testing.assert_allclose(C, A @ (W.T if trans else W), rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_in_a_reaches_only_its_row(dtype):
    """A NaN in one row of A must poison that row of C and no other (no cross-row leaks in the tile)."""
    A, W, C = _operands(dtype, True, 11, 40, 9)
    A[4, 2] = np.nan
    packed._gemm_packed_test(True, A, W, C, 0.0)
    assert np.isnan(C[4]).all()
    assert np.isfinite(np.delete(C, 4, axis=0)).all()


@pytest.mark.parametrize("trans", [True, False])
def test_repeated_steps_accumulate(trans):
    """The benchmark hook: C += A @ op(W) per step, packed and BLAS paths agree."""
    A, W, _ = _operands(np.float64, trans, 6, 70, 13)
    C_packed = np.zeros((6, 70))
    C_blas = np.zeros((6, 70))
    packed._time_steps(trans, True, A, W, C_packed, 3)
    packed._time_steps(trans, False, A, W, C_blas, 3)
    np.testing.assert_allclose(C_packed, 3 * (A @ (W.T if trans else W)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(C_packed, C_blas, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M,N,K1,K2", [(1, 1, 1, 1), (1, 40, 7, 9), (2, 33, 64, 31), (9, 100, 17, 5),
                                       (17, 64, 128, 128), (3, 5, 0, 6)])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_two_part_product_matches_numpy(dtype, M, N, K1, K2, beta):
    """The fused step product: C = A1 @ W1.T + A2 @ W2.T + beta * C, the two weights packed as one."""
    rng = np.random.default_rng(M * 7 + N * 11 + K1 * 13 + K2)
    A1, A2 = rng.standard_normal((M, K1)).astype(dtype), rng.standard_normal((M, K2)).astype(dtype)
    W1, W2 = rng.standard_normal((N, K1)).astype(dtype), rng.standard_normal((N, K2)).astype(dtype)
    C = rng.standard_normal((M, N)).astype(dtype)
    wide = lambda a: a.astype(np.float64)  # noqa: E731
    expected = wide(A1) @ wide(W1).T + wide(A2) @ wide(W2).T + beta * wide(C)
    assert packed._gemm_packed_2_test(A1, W1, A2, W2, C, beta)
    scale = np.sqrt(K1 + K2)
    np.testing.assert_allclose(C, expected, rtol=TOL[dtype], atol=TOL[dtype] * scale)


def test_two_part_product_refuses_more_than_one_k_chunk():
    """K1 + K2 beyond FR_PACKED_KC (4096) is not fused: the hook reports it and leaves C alone."""
    A1, W1 = np.ones((2, 3000)), np.ones((3, 3000))
    A2, W2 = np.ones((2, 1500)), np.ones((3, 1500))
    C = np.full((2, 3), 7.0)
    assert not packed._gemm_packed_2_test(A1, W1, A2, W2, C, 0.0)
    assert (C == 7.0).all()


def test_blas_thread_count_is_read_live():
    """The kernels ask scipy's BLAS for its thread count at call time (it picks packed vs BLAS steps)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from fastrnn._kernels.blas import _blas_threads
    if _blas_threads() == -1:
        pytest.skip("this scipy's BLAS does not report a thread count")
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        assert _blas_threads() == 1
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        assert _blas_threads() == 2


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans", [True, False])
@pytest.mark.parametrize("gates", [4, 1])
@pytest.mark.parametrize("M,H,packed_expected", [(50, 64, None), (50, 128, None), (100, 128, None), (8, 128, None),
                                                 (7, 128, (False, False)), (16, 600, (False, False)),
                                                 (400, 200, None), (3000, 200, (False, True))])
def test_products_once_per_call(dtype, trans, gates, M, H, packed_expected):
    """gemm_once, the door of the input product (forward, op(W) = W_ih^T) and of dX = dG @ W_ih (backward):
    at one BLAS thread it takes the packed GEMM for small products (M >= 8, packed W <= 4 MiB; forward
    A <= 128 KiB; backward only past OpenBLAS's small-matrix sizes, M N K > 2^20, and A <= 2 MiB unless A is a
    gated layer's dG, K >= 3 N), else BLAS; with two BLAS threads only those of at most 2^22 multiply-adds;
    both give the product. packed_expected: (forward, backward) at 4 gates; at one gate (RNN) a 3000-row
    backward A is past 2 MiB and goes to BLAS."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    N, K = (gates * H, H) if trans else (H, gates * H)
    A, W, C = _operands(dtype, trans, M, N, K)
    expected = A.astype(np.float64) @ (W.T if trans else W).astype(np.float64) + 0.5 * C.astype(np.float64)
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        took_packed = packed._gemm_once_test(trans, A, W, C, 0.5)
    itemsize = np.dtype(dtype).itemsize
    a_bytes = M * K * itemsize
    rule = (M >= 8 and K * N * itemsize <= 4 << 20
            and (a_bytes <= 128 << 10 if trans else (a_bytes <= 2 << 20 or K >= 3 * N) and M * N * K > 1 << 20))
    assert took_packed == rule
    if packed_expected is not None and gates == 4:
        assert took_packed == packed_expected[0 if trans else 1]
    if M == 3000 and gates == 1:
        assert not took_packed
    np.testing.assert_allclose(C, expected, rtol=TOL[dtype], atol=TOL[dtype] * np.sqrt(K))
    from fastrnn._kernels.blas import _blas_threads
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        if _blas_threads() == 2:  # BLAS's threads only for products past SMALL_MACS = 2^22 multiply-adds
            assert packed._gemm_once_test(trans, A, W, C, 0.0) == (rule and M * N * K <= 1 << 22)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M,N,K,packed_expected", [(512, 128, 300, None), (64, 40, 256, True), (64, 40, 255, False),
                                                   (1024, 256, 400, False)])
def test_weight_gradients_once_per_call(dtype, M, N, K, packed_expected):
    """gemm_once_at, the door of dW += dG^T @ X: at one BLAS thread gemm_packed_at when K >= 256 and dW is at
    most 256 KiB, else BLAS; with two BLAS threads when M N K <= 2^22, else BLAS; both give the product."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from fastrnn._kernels.blas import _blas_threads
    rng = np.random.default_rng(M + N + K)
    A, B = rng.standard_normal((K, M)).astype(dtype), rng.standard_normal((K, N)).astype(dtype)
    C = rng.standard_normal((M, N)).astype(dtype)
    expected = A.astype(np.float64).T @ B.astype(np.float64) + C.astype(np.float64)
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        took_packed = packed._gemm_once_at_test(A, B, C, 1.0)
    assert took_packed == (K >= 256 and M * N * np.dtype(dtype).itemsize <= 256 << 10)
    if packed_expected is not None:
        assert took_packed == packed_expected
    np.testing.assert_allclose(C, expected, rtol=TOL[dtype], atol=TOL[dtype] * np.sqrt(K))
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        if _blas_threads() == 2:  # BLAS's threads only for products past SMALL_MACS = 2^22 multiply-adds
            assert packed._gemm_once_at_test(A, B, C, 0.0) == (M * N * K <= 1 << 22)


@pytest.mark.parametrize("door", ["input", "dx", "dw"])
@pytest.mark.parametrize("M", [257, 1000])
def test_large_products_on_own_threads_at_two_blas_threads(door, M):
    """With two BLAS threads, float32 products past 2^22 multiply-adds run as row blocks of C on fastrnn's own
    threads (packed.pxd, own_parts), not on BLAS's: the product is right with an odd number of rows and a
    beta; at one BLAS thread, in float64 and for a batch-1 call's 50 rows they are not split."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from fastrnn._kernels.blas import _blas_threads
    rng = np.random.default_rng(M)
    if door == "dw":   # dW[M, N] = dG^T @ X over K rows
        N, K = 96, 3000
        A, B = rng.standard_normal((K, M)).astype(np.float32), rng.standard_normal((K, N)).astype(np.float32)
        expected_of = lambda C0: A.astype(np.float64).T @ B.astype(np.float64) - 0.5 * C0  # noqa: E731
        run = lambda C: packed._gemm_once_at_test(A, B, C, np.float32(-0.5))  # noqa: E731
    else:              # C[M, N] = A @ op(W), the input product (W_ih^T) or dX (W_ih)
        trans = door == "input"
        N, K = (512, 128) if trans else (128, 512)
        A = rng.standard_normal((M, K)).astype(np.float32)
        W = rng.standard_normal((N, K) if trans else (K, N)).astype(np.float32)
        expected_of = lambda C0: A.astype(np.float64) @ (W.T if trans else W).astype(np.float64) - 0.5 * C0  # noqa: E731
        run = lambda C: packed._gemm_once_test(trans, A, W, C, np.float32(-0.5))  # noqa: E731
    assert M * N * K > 1 << 22
    at = door == "dw"
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        if _blas_threads() != 2:
            pytest.skip("BLAS does not report two threads")
        assert packed._own_parts_test(at, M, N, K, 4) == 2
        assert packed._own_parts_test(at, M, N, K, 8) == 1
        assert packed._own_parts_test(False, 50, 1024, 256, 4) == 1
        C = rng.standard_normal((M, N)).astype(np.float32)
        expected = expected_of(C.astype(np.float64))
        assert run(C) is False
    np.testing.assert_allclose(C, expected, rtol=2e-5, atol=2e-5 * np.sqrt(K))
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        assert packed._own_parts_test(at, M, N, K, 4) == 1


def test_shape_mismatch_is_refused():
    A = np.ones((3, 4))
    with pytest.raises(ValueError, match="shapes"):
        packed._gemm_packed_test(True, A, np.ones((5, 3)), np.zeros((3, 5)), 0.0)


# ---- the kernels on the packed path (T >= 4) at sizes that leave partial tiles and panels ----

LAYERS = [("rnn", {}), ("lstm", {}), ("lstm", {"proj_size": 11}), ("gru", {}), ("gru", {"reset_after": False})]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind,extra", LAYERS, ids=lambda v: str(v))
@pytest.mark.parametrize("B,threads", [(9, None), (3, None), (1, None), (3, 1), (40, 1), (40, 2), (17, 2)])
def test_layers_on_packed_path_match_reference(dtype, kind, extra, B, threads):
    """T = 5, H = 37 (partial panels), bidirectional, lengths: inference, the training forward and every
    gradient equal the numpy reference. B = 9 takes the packed steps with the input product fused into
    them (a tile of 8 rows and one of 1); B = 3 packed steps, not fused; B = 1 packed steps of one-row
    tiles; B = 40 with one BLAS thread
    packed and fused; with two threads (B = 40, 17) the time loop runs as two blocks of rows on two
    threads, each packed (and fused for LSTM)."""
    _check_layer(dtype, kind, extra, 5, B, 6, 37, threads)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind,extra", LAYERS, ids=lambda v: str(v))
@pytest.mark.parametrize("B,H", [(1, 80), (1, 150), (6, 40)])
def test_layers_with_packed_products_once_per_call(dtype, kind, extra, B, H):
    """T = 50, I = H with one BLAS thread: at B = 1 the input product (M = 50) takes the packed GEMM (gemm_once),
    and so does dX = dG @ W_ih where packed_product admits it (M N K > 2^20): LSTM at H = 80, RNN and GRU at
    H = 150. At B = 6 the weight gradients dW += dG^T @ X sum K = T B = 300 rows: gemm_once_at takes
    gemm_packed_at (K >= 256, dW <= 256 KiB), two K chunks."""
    _check_layer(dtype, kind, extra, 50, B, H, H, 1)


def _check_layer(dtype, kind, extra, T, B, I, H, threads):
    """Inference, the training forward and every gradient of a bidirectional layer with lengths equal the
    numpy reference, at `threads` BLAS threads (None: as set)."""
    import fastrnn as fr
    import reference
    if threads is not None:
        threadpoolctl = pytest.importorskip("threadpoolctl")
        limits = threadpoolctl.threadpool_limits(limits=threads, user_api="blas")
    else:
        import contextlib
        limits = contextlib.nullcontext()
    rng = np.random.default_rng(7)
    cls = {"rnn": fr.RNN, "lstm": fr.LSTM, "gru": fr.GRU}[kind]
    layer = cls(I, H, bidirectional=True, dtype=dtype, seed=3, **extra)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    lengths = rng.integers(1, T + 1, B)
    lengths[0] = T
    with limits:
        y_infer, _ = layer(x, None, lengths=lengths)
        y, state_n, backprop = layer.begin_update(x, None, lengths=lengths)
        dy = rng.standard_normal(y.shape).astype(dtype)
        layer.param_set.grad[...] = 0.5   # gradients are added into what is there
        dx, _ = backprop(dy)
    params = {n: np.asarray(p, np.float64) for n, p in layer.params.items()}
    y_ref, _ = reference.forward(kind, params, x.astype(np.float64), lengths=lengths, bidirectional=True,
                                 dtype=np.float64, **extra)
    dx_ref, _, dparams = reference.backward(kind, params, x.astype(np.float64), None, dy.astype(np.float64),
                                            lengths=lengths, bidirectional=True, dtype=np.float64, **extra)
    tol = {np.float32: 1e-4, np.float64: 1e-10}[dtype]
    np.testing.assert_allclose(y_infer, y_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(y, y_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, dx_ref, rtol=tol, atol=tol)
    for n, g in dparams.items():
        np.testing.assert_allclose(layer.grads[n] - 0.5, g, rtol=tol, atol=tol, err_msg=n)
