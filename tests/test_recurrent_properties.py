"""Properties of the recurrent layers and cells that must hold for any weights and inputs.

- layouts (views, strides, Fortran order, broadcast, read-only, memmap) give bitwise the clean result;
- invariances: batch rows are independent, unbatched == B=1, no state == zeros, shuffles commute;
- variable lengths equal truncated runs, and NaN padding never reaches an output or a gradient;
- nothing the caller passes is mutated; results and initialisation are deterministic;
- gradients accumulate, and agree with central finite differences in float64 for every cell type
  and option (reliability.md, properties 1, 3, 6, 7, 8); a few SGD steps lower a loss.

Notation: T steps, B rows, I input features, H hidden units, L layers, D directions.
"""
import hashlib

import numpy as np
import pytest

import fastrnn as fr

LAYERS = {"RNN": fr.RNN, "LSTM": fr.LSTM, "GRU": fr.GRU}
CELLS = {"RNN": fr.RNNCell, "LSTM": fr.LSTMCell, "GRU": fr.GRUCell}
MODES = list(LAYERS)
# every cell variant, as (layer class name, constructor options)
VARIANTS = {
    "rnn-tanh": ("RNN", {}),
    "rnn-relu": ("RNN", {"nonlinearity": "relu"}),
    "lstm": ("LSTM", {}),
    "lstm-proj": ("LSTM", {"proj_size": 2}),
    "gru": ("GRU", {}),
    "gru-reset-before": ("GRU", {"reset_after": False}),
}
TOL = {np.float32: 1e-6, np.float64: 1e-12}


def make(variant, I=3, H=4, dtype=np.float64, seed=0, **kw):
    mode, opts = VARIANTS[variant] if variant in VARIANTS else (variant, {})
    return LAYERS[mode](I, H, dtype=dtype, seed=seed, **opts, **kw)


def rand(shape, seed, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def rand_state(layer, B, seed, dtype=None):
    """A random initial state for ``layer`` with B rows (a (h0, c0) tuple for LSTM)."""
    dtype = dtype or layer.dtype
    LD = layer.num_layers * layer.num_directions
    h0 = rand((LD, B, layer.h_out), seed, dtype) * 0.5
    if layer.mode == "LSTM":
        return h0, rand((LD, B, layer.hidden_size), seed + 1, dtype) * 0.5
    return h0


def parts(s):
    """The arrays in s, flattened: a state gives (h,) or (h, c); a call result (y, h) or (y, h, c)."""
    if isinstance(s, (tuple, list)):
        return tuple(a for item in s for a in parts(item))
    return (s,)


def state_rows(s, rows):
    """Select batch rows of a (L*D, B, H) state or (h, c) tuple."""
    return tuple(a[:, rows] for a in s) if isinstance(s, tuple) else s[:, rows]


def assert_same(a, b):
    for u, v in zip(parts(a), parts(b)):
        assert u.dtype == v.dtype and u.shape == v.shape
        assert u.tobytes() == v.tobytes()


def assert_close(a, b, dtype):
    for u, v in zip(parts(a), parts(b)):
        np.testing.assert_allclose(u, v, rtol=TOL[dtype], atol=TOL[dtype])


def train_once(layer, x, s=None, lengths=None, dy=None, ds=None):
    """One begin_update + backprop from zero grads: (y, state_n, dx, dstate0, grads)."""
    layer.zero_grad()
    y, s_n, backprop = layer.begin_update(x, s, lengths)
    if dy is None:
        dy = rand(y.shape, 99, layer.dtype)
    dx, ds0 = backprop(dy, ds)
    return y, s_n, dx, ds0, layer.param_set.grad.copy()


# ---- layouts (case 13, 14) ---------------------------------------------------------------------

def _transposed(x):
    return np.ascontiguousarray(x.transpose(1, 0, 2)).transpose(1, 0, 2)


def _strided(x):
    big = np.full((2 * x.shape[0], x.shape[1], 2 * x.shape[2]), np.nan, x.dtype)
    big[::2, :, ::2] = x
    return big[::2, :, ::2]


def _negative(x):
    return x[::-1, ::-1, ::-1].copy()[::-1, ::-1, ::-1]


def _readonly(x):
    x = x.copy()
    x.flags.writeable = False
    return x


def _unaligned(x):
    buf = np.zeros(x.nbytes + 1, np.uint8)
    out = np.frombuffer(buf.data, dtype=x.dtype, count=x.size, offset=1).reshape(x.shape)
    out[...] = x
    return out


LAYOUTS = {
    "unaligned": _unaligned,
    "big-endian": lambda x: x.astype(x.dtype.newbyteorder(">")),
    "transposed view": _transposed,
    "[::2] strided": _strided,
    "fortran": np.asfortranarray,
    "negative strides": _negative,
    "read-only": _readonly,
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_awkward_layouts_are_bitwise_equal_to_the_clean_copy(mode, dtype, batch_first, layout):
    layer = make(mode, dtype=dtype, batch_first=batch_first, bidirectional=True)
    clean = rand((4, 4, 3), 1, dtype)  # T = B = 4, so that batch_first reads it as well
    x = LAYOUTS[layout](clean)
    assert np.array_equal(x, clean)
    assert not (x.flags.c_contiguous and x.flags.writeable and x.flags.aligned and x.dtype.isnative)
    s = rand_state(layer, 4, 2)
    s_odd = tuple(np.asfortranarray(a) for a in s) if mode == "LSTM" else s[:, ::-1].copy()[:, ::-1]
    assert_same(layer(x, s_odd), layer(clean, s))
    lengths = np.array([4, 2, 3, 1])
    assert_same(layer(x, None, lengths[::-1].copy()[::-1]), layer(clean, None, lengths))
    dy = rand((4, 4, 2 * layer.h_out), 3, dtype)
    y, s_n, dx, ds0, g = train_once(layer, x, s_odd, dy=np.asfortranarray(dy))
    y_r, s_r, dx_r, ds_r, g_r = train_once(layer, clean, s, dy=dy)
    assert_same((y, dx, g), (y_r, dx_r, g_r))
    assert_same(s_n, s_r)
    assert_same(ds0, ds_r)


def test_transposed_batch_first_view_equals_time_major():
    """A (B, T, I) view of time-major data into a batch_first layer, and the reverse."""
    tm = make("LSTM", num_layers=2, bidirectional=True)
    bf = make("LSTM", num_layers=2, bidirectional=True, batch_first=True)
    x = rand((5, 3, 3), 4)  # (T, B, I)
    y_tm, s_tm = tm(x)
    y_bf, s_bf = bf(x.transpose(1, 0, 2))  # a non-contiguous (B, T, I) view
    assert y_bf.shape == (3, 5, 8)
    assert_same(np.ascontiguousarray(y_bf.transpose(1, 0, 2)), y_tm)
    assert_same(s_bf, s_tm)


@pytest.mark.parametrize("mode", MODES)
def test_broadcast_input_equals_its_copy(mode):
    """np.broadcast_to (stride 0 over the batch and over time)."""
    layer = make(mode, dtype=np.float32)
    row = rand((1, 1, 3), 5, np.float32)
    x = np.broadcast_to(row, (4, 3, 3))
    assert x.strides[:2] == (0, 0)
    assert_same(layer(x), layer(np.ascontiguousarray(x)))
    y, s_n, dx, ds0, g = train_once(layer, x)
    y_r, s_r, dx_r, ds_r, g_r = train_once(layer, np.ascontiguousarray(x))
    assert_same((y, dx, g), (y_r, dx_r, g_r))
    # every row saw the same sequence, so every output row is the same
    assert np.all(y == y[:, :1])


@pytest.mark.parametrize("mode", MODES)
def test_read_only_memmap_input(mode, tmp_path):
    layer = make(mode, dtype=np.float32, bidirectional=True)
    clean = rand((4, 3, 3), 6, np.float32)
    path = tmp_path / "x.bin"
    clean.tofile(path)
    x = np.memmap(path, dtype=np.float32, mode="r", shape=clean.shape)
    assert_same(layer(x), layer(clean))
    y, _, dx, _, g = train_once(layer, x)
    y_r, _, dx_r, _, g_r = train_once(layer, clean)
    assert_same((y, dx, g), (y_r, dx_r, g_r))
    assert np.array_equal(np.fromfile(path, np.float32).reshape(clean.shape), clean)


@pytest.mark.parametrize("mode", MODES)
def test_float64_into_float32_layer_equals_astype(mode):
    layer = make(mode, dtype=np.float32, bidirectional=True)
    x = rand((4, 3, 3), 7)
    s = rand_state(layer, 3, 8, np.float64)
    s32 = tuple(a.astype(np.float32) for a in s) if mode == "LSTM" else s.astype(np.float32)
    assert_same(layer(x, s), layer(x.astype(np.float32), s32))
    dy = rand((4, 3, 2 * layer.h_out), 9)
    y, s_n, dx, _, g = train_once(layer, x, s, dy=dy)
    y_r, s_r, dx_r, _, g_r = train_once(layer, x.astype(np.float32), s32, dy=dy.astype(np.float32))
    assert dx.dtype == np.float32
    assert_same((y, dx, g), (y_r, dx_r, g_r))


# ---- invariances (property 3) ------------------------------------------------------------------

OPTIONS = [{}, {"bidirectional": True}, {"num_layers": 2}, {"num_layers": 2, "bidirectional": True}]


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("opts", OPTIONS, ids=["plain", "bidir", "2 layers", "2 layers bidir"])
def test_each_batch_row_equals_the_row_run_alone(variant, dtype, opts):
    layer = make(variant, dtype=dtype, **opts)
    Bt = 3
    x = rand((5, Bt, 3), 10, dtype)
    s = rand_state(layer, Bt, 11)
    dy = rand((5, Bt, layer.num_directions * layer.h_out), 12, dtype)
    y, s_n, dx, ds0, g = train_once(layer, x, s, dy=dy)
    g_sum = np.zeros_like(g)
    for b in range(Bt):
        rows = slice(b, b + 1)
        y_b, s_b, dx_b, ds_b, g_b = train_once(layer, x[:, rows], state_rows(s, rows), dy=dy[:, rows])
        assert_close((y[:, rows], dx[:, rows]), (y_b, dx_b), dtype)
        assert_close(state_rows(s_n, rows), s_b, dtype)
        assert_close(state_rows(ds0, rows), ds_b, dtype)
        assert_close(layer(x[:, rows], state_rows(s, rows))[0], y_b, dtype)
        g_sum += g_b
    np.testing.assert_allclose(g, g_sum, rtol=100 * TOL[dtype], atol=100 * TOL[dtype])


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("opts", [{}, {"num_layers": 2, "bidirectional": True}], ids=["plain", "2 layers bidir"])
def test_unbatched_equals_batch_of_one(variant, opts):
    layer = make(variant, **opts)
    x = rand((4, 1, 3), 13)
    s = rand_state(layer, 1, 14)
    s_unb = tuple(a[:, 0] for a in s) if isinstance(s, tuple) else s[:, 0]
    dy = rand((4, 1, layer.num_directions * layer.h_out), 15)
    y, s_n, dx, ds0, g = train_once(layer, x, s, dy=dy)
    y_u, s_u, dx_u, ds_u, g_u = train_once(layer, x[:, 0], s_unb, dy=dy[:, 0])
    assert y_u.shape == (4, layer.num_directions * layer.h_out)
    assert_same((y[:, 0], dx[:, 0], g), (y_u, dx_u, g_u))
    assert_same(state_rows(s_n, 0), s_u)
    assert_same(state_rows(ds0, 0), ds_u)
    y_b, s_b = layer(x, s)
    assert_same(layer(x[:, 0], s_unb), (y_b[:, 0], state_rows(s_b, 0)))


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_omitting_the_state_equals_zeros(variant, dtype):
    layer = make(variant, dtype=dtype, num_layers=2, bidirectional=True)
    x = rand((4, 3, 3), 16, dtype)
    zeros = rand_state(layer, 3, 0)
    zeros = tuple(np.zeros_like(a) for a in zeros) if isinstance(zeros, tuple) else np.zeros_like(zeros)
    assert_same(layer(x), layer(x, zeros))
    y, s_n, dx, ds0, g = train_once(layer, x)
    y_z, s_z, dx_z, ds_z, g_z = train_once(layer, x, zeros)
    assert_same((y, dx, g), (y_z, dx_z, g_z))
    assert_same(ds0, ds_z)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shuffling_the_batch_shuffles_the_results(variant, dtype):
    layer = make(variant, dtype=dtype, bidirectional=True)
    Bt = 5
    perm = np.array([3, 0, 4, 2, 1])
    x = rand((4, Bt, 3), 17, dtype)
    s = rand_state(layer, Bt, 18)
    lengths = np.array([4, 1, 3, 2, 4])
    dy = rand((4, Bt, 2 * layer.h_out), 19, dtype)
    y, s_n, dx, ds0, g = train_once(layer, x, s, lengths, dy=dy)
    y_p, s_p, dx_p, ds_p, g_p = train_once(layer, x[:, perm], state_rows(s, perm), lengths[perm], dy=dy[:, perm])
    assert_close((y[:, perm], dx[:, perm]), (y_p, dx_p), dtype)
    assert_close(state_rows(s_n, perm), s_p, dtype)
    assert_close(state_rows(ds0, perm), ds_p, dtype)
    np.testing.assert_allclose(g, g_p, rtol=100 * TOL[dtype], atol=100 * TOL[dtype])


# ---- variable lengths (cases 16, 26-28) --------------------------------------------------------

@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("opts", [{}, {"bidirectional": True}, {"num_layers": 2, "bidirectional": True}],
                         ids=["plain", "bidir", "2 layers bidir"])
def test_each_row_equals_its_sequence_run_alone_truncated(variant, dtype, opts):
    """Unsorted lengths; outputs past a row's length are zero; the reverse direction starts at the row's end."""
    layer = make(variant, dtype=dtype, **opts)
    T, Bt = 5, 4
    lengths = np.array([2, 5, 1, 3], np.int32)  # unsorted, int32
    x = rand((T, Bt, 3), 20, dtype)
    s = rand_state(layer, Bt, 21)
    F = layer.num_directions * layer.h_out
    dy = rand((T, Bt, F), 22, dtype)
    y, s_n, dx, ds0, g = train_once(layer, x, s, lengths, dy=dy)
    y_inf, s_inf = layer(x, s, lengths)
    assert_same(y_inf, y)
    assert_same(s_inf, s_n)
    g_sum = np.zeros_like(g)
    for b, n in enumerate(lengths):
        rows = slice(b, b + 1)
        y_b, s_b, dx_b, ds_b, g_b = train_once(layer, x[:n, rows], state_rows(s, rows), dy=dy[:n, rows])
        assert_close((y[:n, rows], dx[:n, rows]), (y_b, dx_b), dtype)
        assert np.all(y[n:, b] == 0) and np.all(dx[n:, b] == 0)
        assert_close(state_rows(s_n, rows), s_b, dtype)
        assert_close(state_rows(ds0, rows), ds_b, dtype)
        g_sum += g_b
    np.testing.assert_allclose(g, g_sum, rtol=100 * TOL[dtype], atol=100 * TOL[dtype])


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_padding_reaches_no_output_and_no_gradient(variant, dtype):
    """case 16: NaN in x AND in dy past each row's length: every output and gradient stays finite and
    equals the result with zero padding."""
    layer = make(variant, dtype=dtype, num_layers=2, bidirectional=True)
    T, Bt = 5, 3
    lengths = np.array([3, 5, 1])
    pad = np.arange(T)[:, None] >= lengths[None, :]
    x = rand((T, Bt, 3), 23, dtype)
    x[pad] = 0
    dy = rand((T, Bt, 2 * layer.h_out), 24, dtype)
    dy[pad] = 0
    s = rand_state(layer, Bt, 25)
    ref = train_once(layer, x, s, lengths, dy=dy)
    x_nan, dy_nan = x.copy(), dy.copy()
    x_nan[pad] = np.nan
    dy_nan[pad] = np.nan
    got = train_once(layer, x_nan, s, lengths, dy=dy_nan)
    for name, a, b in zip(["y", "state_n", "dx", "dstate0", "grads"], got, ref):
        for u, v in zip(parts(a), parts(b)):
            assert np.all(np.isfinite(u)), name
            assert u.tobytes() == v.tobytes(), name
    assert_same(layer(x_nan, s, lengths), layer(x, s, lengths))


@pytest.mark.parametrize("variant", ["lstm", "gru", "rnn-tanh"])
def test_cell_equals_one_step_of_the_layer(variant):
    mode, opts = VARIANTS[variant]
    layer = make(variant)
    cell = CELLS[mode](3, 4, dtype=np.float64, **opts)
    for name in cell.params:
        cell.params[name][...] = layer.params[name + "_l0"]
    x = rand((1, 2, 3), 26)
    s = rand_state(layer, 2, 27)
    y, s_n = layer(x, s)
    out = cell(x[0], tuple(a[0] for a in s) if mode == "LSTM" else s[0])
    assert_close(out, tuple(a[0] for a in s_n) if mode == "LSTM" else s_n[0], np.float64)


# ---- nothing the caller passes is mutated (property 8) -----------------------------------------

def _digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        for u in parts(a):
            u = np.asarray(u)
            h.update(repr((u.dtype.str, u.shape, u.strides, u.flags.writeable)).encode())
            h.update(np.ascontiguousarray(u).tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inputs_states_lengths_and_dy_are_not_mutated(variant, dtype):
    layer = make(variant, dtype=dtype, num_layers=2, bidirectional=True)
    x = rand((4, 3, 3), 28, dtype)
    x[3, 2] = np.nan  # padding, which the layer zeroes in its own copy only
    s = rand_state(layer, 3, 29)
    lengths = np.array([4, 2, 3])
    dy = rand((4, 3, 2 * layer.h_out), 30, dtype)
    ds = rand_state(layer, 3, 31)
    before = _digest(x, s, lengths, dy, ds)
    layer(x, s, lengths)
    y, s_n, backprop = layer.begin_update(x, s, lengths)
    backprop(dy, ds)
    assert _digest(x, s, lengths, dy, ds) == before


@pytest.mark.parametrize("mode", MODES)
def test_cell_inputs_are_not_mutated(mode):
    cell = CELLS[mode](3, 4, dtype=np.float32, seed=0)
    x = rand((2, 3), 32, np.float32)
    hx = (rand((2, 4), 33, np.float32), rand((2, 4), 34, np.float32)) if mode == "LSTM" else rand((2, 4), 33,
                                                                                                  np.float32)
    dout = (rand((2, 4), 35, np.float32), rand((2, 4), 36, np.float32)) if mode == "LSTM" else rand((2, 4), 35,
                                                                                                    np.float32)
    before = _digest(x, hx, dout)
    cell(x, hx)
    out, backprop = cell.begin_update(x, hx)
    backprop(dout)
    assert _digest(x, hx, dout) == before


# ---- determinism (property 6) and accumulation (property 7) ------------------------------------

@pytest.mark.parametrize("variant", list(VARIANTS))
def test_same_seed_same_parameters_and_repeated_calls_bitwise_equal(variant):
    a = make(variant, dtype=np.float32, seed=123, num_layers=2, bidirectional=True)
    b = make(variant, dtype=np.float32, seed=123, num_layers=2, bidirectional=True)
    c = make(variant, dtype=np.float32, seed=124, num_layers=2, bidirectional=True)
    assert a.param_set.data.tobytes() == b.param_set.data.tobytes()
    assert a.param_set.data.tobytes() != c.param_set.data.tobytes()
    bound = 1 / np.sqrt(4)
    assert np.all(np.abs(a.param_set.data) <= bound) and np.std(a.param_set.data) > bound / 4
    x = rand((6, 3, 3), 37, np.float32)
    first = a(x)
    for _ in range(3):
        assert_same(a(x), first)
        assert_same(b(x), first)
    r1 = train_once(a, x)
    r2 = train_once(a, x)
    for u, v in zip(r1, r2):
        assert_same(u, v)


@pytest.mark.parametrize("mode", MODES)
def test_cells_same_seed_same_parameters(mode):
    a, b = CELLS[mode](3, 4, seed=5), CELLS[mode](3, 4, seed=5)
    assert a.param_set.data.tobytes() == b.param_set.data.tobytes()
    assert a.param_set.data.tobytes() != CELLS[mode](3, 4, seed=6).param_set.data.tobytes()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_gradients_accumulate_and_zero_grad_resets(variant):
    layer = make(variant, num_layers=2, bidirectional=True)
    x1, x2 = rand((4, 3, 3), 38), rand((4, 3, 3), 39)
    _, _, _, _, g1 = train_once(layer, x1)
    _, _, _, _, g2 = train_once(layer, x2)
    layer.zero_grad()
    for x in (x1, x1):
        y, _, backprop = layer.begin_update(x)
        backprop(rand(y.shape, 99))
    np.testing.assert_allclose(layer.param_set.grad, 2 * g1, rtol=1e-13, atol=1e-15)
    layer.zero_grad()
    assert np.all(layer.param_set.grad == 0)
    for x in (x1, x2):
        y, _, backprop = layer.begin_update(x)
        backprop(rand(y.shape, 99))
    np.testing.assert_allclose(layer.param_set.grad, g1 + g2, rtol=1e-13, atol=1e-15)
    # the named views are the flat buffer
    name = next(iter(layer.grads))
    assert np.shares_memory(layer.grads[name], layer.param_set.grad)


@pytest.mark.parametrize("mode", MODES)
def test_cell_gradients_accumulate(mode):
    cell = CELLS[mode](3, 4, dtype=np.float64, seed=0)
    x = rand((2, 3), 40)

    def step():
        out, backprop = cell.begin_update(x)
        backprop(out)

    step()
    g1 = cell.param_set.grad.copy()
    assert np.any(g1 != 0)
    step()
    np.testing.assert_allclose(cell.param_set.grad, 2 * g1, rtol=1e-13, atol=1e-15)
    cell.zero_grad()
    assert np.all(cell.param_set.grad == 0)


# ---- central finite differences in float64 (property 1) ----------------------------------------

from gradcheck import ATOL, EPS, RTOL, numeric_grad  # noqa: E402




def gradcheck(layer, x, s, lengths, seed=0):
    """loss = sum(y * Ry) + sum(state_n * Rs): check dx, every part of dstate0 and every parameter."""
    rng = np.random.default_rng(seed)
    y, s_n, backprop = layer.begin_update(x, s, lengths)
    Ry = rng.standard_normal(y.shape)
    Rs = tuple(rng.standard_normal(a.shape) for a in parts(s_n))
    layer.zero_grad()
    dx, ds0 = backprop(Ry, Rs if layer.mode == "LSTM" else Rs[0])

    def loss():
        y, s_n = layer(x, s, lengths)
        return float(np.sum(y * Ry) + sum(np.sum(a * r) for a, r in zip(parts(s_n), Rs)))

    assert np.any(dx != 0) and np.any(layer.param_set.grad != 0)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), atol=ATOL, rtol=RTOL, err_msg="dx")
    for name, a, da in zip(["dh0", "dc0"], parts(s), parts(ds0)):
        np.testing.assert_allclose(da, numeric_grad(loss, a), atol=ATOL, rtol=RTOL, err_msg=name)
    num = numeric_grad(loss, layer.param_set.data)
    for name, view in layer.grads.items():
        lo = view.__array_interface__["data"][0] - layer.param_set.grad.__array_interface__["data"][0]
        lo //= layer.param_set.grad.itemsize
        np.testing.assert_allclose(view.reshape(-1), num[lo:lo + view.size], atol=ATOL, rtol=RTOL, err_msg=name)


GRAD_OPTIONS = {
    "plain": dict(T=4, B=2),
    "bias=False": dict(T=3, B=2, bias=False),
    "2 layers": dict(T=3, B=2, num_layers=2),
    "bidirectional": dict(T=4, B=2, bidirectional=True),
    "batch_first": dict(T=5, B=3, batch_first=True),
    "lengths": dict(T=5, B=3, lengths=[5, 2, 4]),
    "all": dict(T=4, B=3, num_layers=2, bidirectional=True, batch_first=True, lengths=[2, 4, 3]),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("option", list(GRAD_OPTIONS))
def test_gradients_match_finite_differences(variant, option):
    kw = dict(GRAD_OPTIONS[option])
    T, Bt, lengths = kw.pop("T"), kw.pop("B"), kw.pop("lengths", None)
    layer = make(variant, I=3, H=4, seed=1, **kw)
    x = rand((Bt, T, 3) if layer.batch_first else (T, Bt, 3), 41)
    s = rand_state(layer, Bt, 42)
    gradcheck(layer, x, s, lengths)


@pytest.mark.parametrize("variant", ["rnn-tanh", "rnn-relu", "lstm", "gru", "gru-reset-before"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
def test_cell_gradients_match_finite_differences(variant, bias, batched):
    mode, opts = VARIANTS[variant]
    cell = CELLS[mode](3, 4, bias=bias, dtype=np.float64, seed=2, **opts)
    shape = (3,) if not batched else (2, 3)
    x = rand(shape, 43)
    hshape = shape[:-1] + (4,)
    hx = (rand(hshape, 44), rand(hshape, 45)) if mode == "LSTM" else rand(hshape, 44)
    rng = np.random.default_rng(46)
    R = tuple(rng.standard_normal(hshape) for _ in parts(hx))
    out, backprop = cell.begin_update(x, hx)
    cell.zero_grad()
    dx, dhx = backprop(R if mode == "LSTM" else R[0])

    def loss():
        out = cell(x, hx)
        return float(sum(np.sum(a * r) for a, r in zip(parts(out), R)))

    assert_close(out, cell(x, hx), np.float64)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), atol=ATOL, rtol=RTOL, err_msg="dx")
    for name, a, da in zip(["dh", "dc"], parts(hx), parts(dhx)):
        np.testing.assert_allclose(da, numeric_grad(loss, a), atol=ATOL, rtol=RTOL, err_msg=name)
    num = numeric_grad(loss, cell.param_set.data)
    np.testing.assert_allclose(cell.param_set.grad, num, atol=ATOL, rtol=RTOL)
    assert set(cell.params) == ({"weight_ih", "weight_hh", "bias_ih", "bias_hh"} if bias
                                else {"weight_ih", "weight_hh"})


# ---- the model learns (style habit 14) ---------------------------------------------------------

@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_few_sgd_steps_lower_the_loss(variant, dtype):
    """Fit the running mean of a 1-D input with a readout of the first hidden unit; plain SGD by hand."""
    layer = make(variant, I=1, H=6, dtype=dtype, seed=3)
    rng = np.random.default_rng(47)
    x = rng.uniform(-1, 1, (8, 16, 1)).astype(dtype)
    target = (np.cumsum(x, axis=0) / np.arange(1, 9)[:, None, None]).astype(dtype)[..., 0]

    def loss_and_grad():
        y, _, backprop = layer.begin_update(x)
        err = y[..., 0] - target
        dy = np.zeros_like(y)
        dy[..., 0] = 2 * err / err.size
        layer.zero_grad()
        backprop(dy)
        return float(np.mean(err ** 2))

    losses = []
    for _ in range(40):
        losses.append(loss_and_grad())
        layer.param_set.data -= 0.5 * layer.param_set.grad
        layer.param_set.bump()
    final = float(np.mean((layer(x)[0][..., 0] - target) ** 2))
    assert np.isfinite(final)
    assert final < 0.5 * losses[0], (losses[0], final)
