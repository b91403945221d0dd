"""What a training step keeps and allocates, and the chunked RNN backward that keeps it small.

The RNN backward (fastrnn/_kernels/rnn.pyx) runs its steps in chunks of k = ceil(512 / B) steps and
forms the weight gradients of each chunk before the next one, so its dG is k slots, not T (one chunk
when its time loop runs as blocks of rows on parallel threads). These tests
check it against the numpy twin over several chunks (and a partial last one), and bound the memory a
training step allocates, as a multiple of U = T * B * H * itemsize, so that a saving cannot silently
regress. tracemalloc sees every numpy buffer, including the kernels' chunk scratch.
"""
import contextlib
import tracemalloc

import numpy as np
import pytest

import fastrnn as fr
import reference

TOL = {np.float32: 1e-4, np.float64: 1e-10}


def _limits(threads):
    if threads is None:
        return contextlib.nullcontext()
    threadpoolctl = pytest.importorskip("threadpoolctl")
    return threadpoolctl.threadpool_limits(limits=threads, user_api="blas")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("T,B,threads", [(230, 5, None), (60, 20, 1), (60, 20, 2), (3, 300, None)],
                         ids=["3 chunks of 103, 103, 24", "3 chunks of 26 rows x 20",
                              "2 threads: blocks of rows, one chunk", "1 step per chunk"])
@pytest.mark.parametrize("opts", [{}, {"bidirectional": True, "lengths": True}, {"num_layers": 2}],
                         ids=["plain", "bidir lengths", "2 layers"])
def test_chunked_rnn_backward_matches_reference(dtype, nonlinearity, T, B, threads, opts):
    opts = dict(opts)
    with_lengths = opts.pop("lengths", False)
    rng = np.random.default_rng(T * B)
    I, H = 6, 7
    layer = fr.RNN(I, H, nonlinearity=nonlinearity, dtype=dtype, seed=1, **opts)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    h0 = (0.5 * rng.standard_normal((layer.num_layers * layer.num_directions, B, H))).astype(dtype)
    lengths = None
    if with_lengths:
        lengths = rng.integers(1, T + 1, B)
        lengths[0] = T
    with _limits(threads):
        y, _, backprop = layer.begin_update(x, h0, lengths=lengths)
        dy = rng.standard_normal(y.shape).astype(dtype)
        dh_n = rng.standard_normal(h0.shape).astype(dtype)
        layer.zero_grad()
        dx, dh0 = backprop(dy, dh_n)
    params = {n: np.asarray(p, np.float64) for n, p in layer.params.items()}
    kw = dict(lengths=lengths, num_layers=layer.num_layers, bidirectional=layer.bidirectional,
              nonlinearity=nonlinearity, dtype=np.float64)
    y_ref, _ = reference.forward("rnn", params, x.astype(np.float64), h0.astype(np.float64), **kw)
    dx_ref, dh0_ref, dparams = reference.backward("rnn", params, x.astype(np.float64), h0.astype(np.float64),
                                                  dy.astype(np.float64), dh_n.astype(np.float64), **kw)
    tol = TOL[dtype]
    np.testing.assert_allclose(y, y_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, dx_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(dh0, dh0_ref, rtol=tol, atol=tol)
    for n, g in dparams.items():
        np.testing.assert_allclose(layer.grads[n], g, rtol=tol, atol=tol, err_msg=n)


def _step_peak(layer, x, dy):
    """tracemalloc's peak over one training step (begin_update, backprop, zero_grad), as the benchmark
    runs it: the caller holds x and dy; y lives until the step ends."""
    y, _, backprop = layer.begin_update(x)   # warm-up: one-time allocations are not the step's
    backprop(dy)
    del y, backprop
    layer.zero_grad()
    tracemalloc.start()
    tracemalloc.reset_peak()
    y, _, backprop = layer.begin_update(x)
    backprop(dy)
    layer.zero_grad()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


# The peak of one training step of a one-layer, one-direction layer with I = H, in units of
# U = T * B * H * itemsize (parameters are small at these sizes). What it holds at its peak:
# RNN: the copy of x (which becomes dx), dG for one chunk of steps (0.16 U here), Hs (which y is a view
# of), in the backward; LSTM: the copy of x (becomes dx), G (4 U), Hs (= y), Cs; GRU: the copy of x
# (becomes dx), G (3 U), Hs (= y), A. Before this accounting: RNN 5 U, LSTM 9 U, GRU 8 U, plus a copy
# of the parameters.
PEAK_IN_U = {"RNN": 2.3, "LSTM": 7.2, "GRU": 6.2}


@pytest.mark.parametrize("mode", list(PEAK_IN_U))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T,B,threads", [(400, 8, None), (200, 16, 1)],
                         ids=["B=8, any BLAS threads", "B=16 on 1 thread (as bench/memory.py)"])
def test_training_step_memory_is_bounded(mode, dtype, T, B, threads):
    """(With B >= 16 and several BLAS threads the RNN's time loop runs as blocks of rows on parallel
    threads and its backward keeps one chunk of T steps, 1 U more.)"""
    H = 32
    layer = getattr(fr, mode)(H, H, dtype=dtype, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, H)).astype(dtype)
    dy = rng.standard_normal((T, B, H)).astype(dtype)
    U = T * B * H * np.dtype(dtype).itemsize
    with _limits(threads):
        peak = _step_peak(layer, x, dy)
    assert peak <= PEAK_IN_U[mode] * U, (mode, peak / U)


@pytest.mark.parametrize("variant", [("RNN", {}), ("LSTM", {}), ("LSTM", {"proj_size": 3}), ("GRU", {}),
                                     ("GRU", {"reset_after": False})], ids=lambda v: f"{v[0]}{v[1]}")
@pytest.mark.parametrize("reverse", [False, True])
def test_kernel_backward_may_write_dx_over_x(variant, reverse):
    """dX passed as X itself: X becomes exactly the dX that a separate zero buffer would receive, and
    the weight gradients are the same (each row of X is read for dW_ih before dX is written there)."""
    from fastrnn.layers.recurrent import kernel_backward, kernel_forward

    mode, extra = variant
    T, B, I, H = 300, 3, 5, 6            # several RNN chunks (k = 171 steps)
    layer = getattr(fr, mode)(I, H, dtype=np.float64, seed=2, **extra)
    rng = np.random.default_rng(4)
    X = rng.standard_normal((T, B, I))
    lens = rng.integers(1, T + 1, B)
    lens[0] = T
    P = layer.h_out
    dY = rng.standard_normal((T, B, P))
    h0, dh_n = rng.standard_normal((B, P)), rng.standard_normal((B, P))
    c0 = rng.standard_normal((B, H)) if mode == "LSTM" else None
    dc_n = rng.standard_normal((B, H)) if mode == "LSTM" else None
    weights = layer._kernel_weights(layer.params)[0]
    results = []
    for over in (False, True):
        layer.zero_grad()
        Xk = X.copy()
        saved = kernel_forward(layer, Xk, None, 0, reverse, weights, lens, h0, c0, training=True)
        dX = Xk if over else np.zeros_like(Xk)
        dh0 = np.empty_like(h0)
        dc0 = np.empty_like(c0) if c0 is not None else None
        kernel_backward(layer, Xk, dY, dX, 0, reverse, weights, layer._kernel_weights(layer.grads)[0], lens, saved,
                        dh_n, dc_n, dh0, dc0)
        results.append((dX.copy(), dh0, layer.param_set.grad.copy()))
    (dX_a, dh0_a, g_a), (dX_b, dh0_b, g_b) = results
    np.testing.assert_array_equal(dX_b, dX_a)
    np.testing.assert_array_equal(dh0_b, dh0_a)
    np.testing.assert_array_equal(g_b, g_a)


# ---- y from begin_update is read-only (it may be the state history backprop reads) ------------

def _configs():
    return [
        ("RNN", {}, None), ("LSTM", {}, None), ("LSTM", {"proj_size": 2}, None), ("GRU", {}, None),
        ("RNN", {"num_layers": 2, "dropout": 0.3}, None), ("GRU", {"batch_first": True}, None),
        ("LSTM", {"bidirectional": True}, None), ("RNN", {}, [5, 2, 4]),
    ]


@pytest.mark.parametrize("mode,opts,lengths,unbatched",
                         [c + (False,) for c in _configs()]
                         # unbatched input takes no lengths and has no batch axis
                         + [c + (True,) for c in _configs() if c[2] is None and not c[1].get("batch_first")],
                         ids=lambda v: str(v))
def test_y_is_read_only_and_writing_it_cannot_change_the_gradients(mode, opts, lengths, unbatched):
    """Reliability case 31 for y: an in-place write raises ValueError, y cannot be made writable again
    when it shares the saved states, and the gradients stay those of a clean run."""
    rng = np.random.default_rng(1)
    T, B, I, H = 5, 3, 4, 3
    shape = (T, I) if unbatched else ((B, T, I) if opts.get("batch_first") else (T, B, I))
    x = rng.standard_normal(shape)

    def run(meddle):
        layer = getattr(fr, mode)(I, H, dtype=np.float64, seed=3, **opts)
        y, _, backprop = layer.begin_update(x, None, lengths)
        dy = np.random.default_rng(2).standard_normal(y.shape)
        meddle(y)
        dx, _ = backprop(dy)
        return dx, layer.param_set.grad.copy()

    def meddle(y):
        assert not y.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            y[...] = 7
        with pytest.raises(ValueError, match="read-only"):
            y *= 2
        with pytest.raises(ValueError, match="read-only"):
            np.copyto(y, 0.0)
        if not y.flags.owndata:   # a view of the saved states: it cannot be made writable
            with pytest.raises(ValueError):
                y.flags.writeable = True
        z = y.copy()              # a writable copy is independent of what backprop reads
        z[...] = 7

    dx_ref, g_ref = run(lambda y: None)
    dx, g = run(meddle)
    assert dx.tobytes() == dx_ref.tobytes() and g.tobytes() == g_ref.tobytes()


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_y_stays_valid_after_backprop(mode):
    """y shares the state history; backprop reads it and never writes it."""
    layer = getattr(fr, mode)(4, 3, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((6, 2, 4))
    y, _, backprop = layer.begin_update(x)
    before = y.copy()
    backprop(np.ones_like(y))
    assert y.tobytes() == before.tobytes()
    np.testing.assert_array_equal(y, layer(x)[0])


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_inference_output_stays_writable(mode):
    layer = getattr(fr, mode)(4, 3, seed=0)
    y, _ = layer(np.ones((5, 2, 4), np.float32))
    y *= 2
    assert y.flags.writeable
