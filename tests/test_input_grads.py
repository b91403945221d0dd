"""The backward's input side (dX, dW_ih, db_ih) on a helper thread that starts with the time loop
(fastrnn/_kernels/input_grads.pxd).

- Through a test hook that stands in for the time loop (it writes G's steps in the loop's order, from NaN,
  publishing each): with the helper, the same bits as without it, and both equal numpy's products, for
  both directions, dX given or written over X, chunks that do not divide T, and a loop slower than the
  helper (so it waits) or faster.
- Through the layers, at 2 BLAS threads where the kernels take the helper (batch 1, H = 128): every
  gradient of LSTM and GRU layers, bidirectional with lengths, equals the float64 reference, and
  repeated runs give the same bits.
"""
import numpy as np
import pytest

from fastrnn._kernels import packed_hooks as hooks

threadpoolctl = pytest.importorskip("threadpoolctl")

# (T, B, I, N): sizes where dX goes to the packed GEMM (T*B*I*N > 2^20), so the helper's chunks and the
# whole product are the same kernel; the chunk is ceil(8 / B) steps
SIZES = [(50, 1, 128, 512), (13, 3, 96, 384), (9, 2, 160, 480)]


def case(T, B, I, N, dtype, seed=0):
    rng = np.random.default_rng(seed)
    dG = rng.standard_normal((T, B, N)).astype(dtype)
    X = rng.standard_normal((T, B, I)).astype(dtype)
    W = rng.standard_normal((N, I)).astype(dtype)
    dW = rng.standard_normal((N, I)).astype(dtype)
    db = rng.standard_normal(N).astype(dtype)
    dX = rng.standard_normal((T, B, I)).astype(dtype)
    return dG, X, W, dW, db, dX


def run(dG, X, W, dW, db, dX, reverse, helper, over_x, pause_ns=0):
    """(dX, dW_ih, db_ih, helped) from the hook; over_x: dX written over (a copy of) X."""
    X, dW, db = X.copy(), dW.copy(), db.copy()
    dX = X if over_x else dX.copy()
    G = np.full_like(dG, np.nan)
    helped = hooks._input_grads_test(dG, G, X, W, dX, dW, db, reverse, helper, pause_ns)
    return dX, dW, db, helped


@pytest.mark.parametrize("pause_ns", [0, 3000], ids=["fast-loop", "slow-loop"])
@pytest.mark.parametrize("over_x", [False, True], ids=["dX-added", "dX-over-X"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", SIZES, ids=[f"T{t}-B{b}-I{i}-N{n}" for t, b, i, n in SIZES])
def test_helper_gives_the_bits_of_the_caller_alone(size, dtype, reverse, over_x, pause_ns):
    T, B, I, N = size
    args = case(T, B, I, N, dtype)
    dG, X, W, dW0, db0, dX0 = args
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        assert hooks._input_grads_pay(T, B, I, N, np.dtype(dtype).itemsize)
        alone = run(*args, reverse, 0, over_x)
        helped = run(*args, reverse, 1, over_x, pause_ns)
    assert not alone[3] and helped[3]
    for a, b, name in zip(alone[:3], helped[:3], ("dX", "dW_ih", "db_ih")):
        assert a.tobytes() == b.tobytes(), name
    g, x = (a.astype(np.float64).reshape(T * B, -1) for a in (dG, X))
    w = W.astype(np.float64)
    tol = {np.float32: 2e-4, np.float64: 1e-11}[dtype]
    dX_ref = g @ w + (0 if over_x else dX0.reshape(T * B, I))
    np.testing.assert_allclose(helped[0].reshape(T * B, I), dX_ref, rtol=tol, atol=tol * np.sqrt(N))
    np.testing.assert_allclose(helped[1], dW0 + g.T @ x, rtol=tol, atol=tol * np.sqrt(T * B))
    np.testing.assert_allclose(helped[2], db0 + g.sum(0), rtol=tol, atol=tol * np.sqrt(T * B))


def test_helper_on_small_products_matches_numpy():
    """Forced on sizes the kernels would not give it (dX then differs from BLAS's only by round-off)."""
    T, B, I, N = 5, 1, 8, 12
    dG, X, W, dW0, db0, dX0 = args = case(T, B, I, N, np.float64, seed=1)
    dX, dW, db, helped = run(*args, False, 1, False)
    assert helped
    g, x = dG.reshape(T, N), X.reshape(T, I)
    np.testing.assert_allclose(dX.reshape(T, I), dX0.reshape(T, I) + g @ W, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dW, dW0 + g.T @ x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, db0 + g.sum(0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("T,B,I,N,threads,expected", [
    (50, 1, 128, 512, 2, True),     # LSTM H=128, batch 1
    (50, 1, 128, 384, 2, True),     # GRU H=128
    (50, 1, 128, 512, 1, False),    # no second BLAS thread
    (50, 1, 64, 256, 2, False),     # LSTM H=64: too small to repay a thread
    (50, 1, 256, 1024, 2, False),   # past SMALL_MACS: the products are split on threads already
])
def test_when_the_helper_is_taken(T, B, I, N, threads, expected):
    with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
        assert hooks._input_grads_pay(T, B, I, N, 4) is expected


@pytest.mark.parametrize("kind,extra", [("lstm", {}), ("gru", {}), ("gru", {"reset_after": False})],
                         ids=["LSTM", "GRU", "GRU-reset-before"])
def test_layers_with_the_helper_match_the_reference(kind, extra):
    import fastrnn as fr
    import reference
    T, B, H = 50, 1, 128
    rng = np.random.default_rng(2)
    cls = {"lstm": fr.LSTM, "gru": fr.GRU}[kind]
    layer = cls(H, H, bidirectional=True, dtype=np.float32, seed=5, **extra)
    x = rng.standard_normal((T, B, H)).astype(np.float32)
    lengths = np.array([37])
    dy = rng.standard_normal((T, B, 2 * H)).astype(np.float32)
    runs = []
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        assert hooks._input_grads_pay(T, B, H, {"lstm": 4, "gru": 3}[kind] * H, 4)
        for _ in range(3):
            layer.param_set.zero_grad()
            y, _, backprop = layer.begin_update(x, None, lengths=lengths)
            dx, _ = backprop(dy)
            runs.append((dx.tobytes(), layer.param_set.grad.tobytes()))
    assert runs[1] == runs[0] and runs[2] == runs[0]
    params = {n: np.asarray(p, np.float64) for n, p in layer.params.items()}
    dx_ref, _, dparams = reference.backward(kind, params, x.astype(np.float64), None, dy.astype(np.float64),
                                            lengths=lengths, bidirectional=True, dtype=np.float64, **extra)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-4, atol=1e-4)
    for n, g in dparams.items():
        np.testing.assert_allclose(layer.grads[n], g, rtol=1e-4, atol=1e-4, err_msg=n)
