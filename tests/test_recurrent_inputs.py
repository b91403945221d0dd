"""Bad and unusual inputs at the door of the recurrent layers and cells (reliability.md cases 1-31, 34-36).

Every rejected call must raise the documented exception type with a message that names what was
expected and what was found, and must leave the layer bitwise unchanged: parameters, gradients and
the parameter version. Accepted conversions (ints, float16, big-endian, lists) must give the same
numbers as the clean input.

Notation: T steps, B rows, I input features, H hidden units, L layers, D directions.
"""
import re

import numpy as np
import pytest

import fastrnn as fr

T, B, I, H = 3, 2, 4, 5
MODES = ["RNN", "LSTM", "GRU"]
LAYERS = {"RNN": fr.RNN, "LSTM": fr.LSTM, "GRU": fr.GRU}
CELLS = {"RNN": fr.RNNCell, "LSTM": fr.LSTMCell, "GRU": fr.GRUCell}


def make(mode, dtype=np.float64, **kw):
    return LAYERS[mode](I, H, dtype=dtype, seed=0, **kw)


def state(mode, shape, c_shape=None, dtype=np.float64, fill=0.1):
    """A state of ``shape``: a (h0, c0) tuple for LSTM (c0 of ``c_shape`` or ``shape``), else one array."""
    h = np.full(shape, fill, dtype)
    if mode == "LSTM":
        return h, np.full(c_shape or shape, fill, dtype)
    return h


def with_grads(layer):
    """Give the layer non-zero gradients, so that 'unchanged' also covers the gradient buffer."""
    x = np.random.default_rng(1).standard_normal((T, B, I))
    if layer.batch_first:
        x = x.transpose(1, 0, 2)
    y, _, backprop = layer.begin_update(x)
    backprop(np.ones_like(y))
    assert np.any(layer.param_set.grad != 0)
    return layer


def snapshot(layer):
    ps = layer.param_set
    return ps.data.copy(), ps.grad.copy(), ps.version


def assert_unchanged(layer, snap):
    data, grad, version = snap
    ps = layer.param_set
    assert ps.data.tobytes() == data.tobytes(), "parameters changed by a failed call"
    assert ps.grad.tobytes() == grad.tobytes(), "gradients changed by a failed call"
    assert ps.version == version, "parameter version changed by a failed call"


def raises_unchanged(layer, exc, match, fn):
    """fn() raises ``exc`` matching ``match``, and the layer is bitwise unchanged afterwards."""
    snap = snapshot(layer)
    with pytest.raises(exc, match=match):
        fn()
    assert_unchanged(layer, snap)


# ---- cases 1-4: construction ------------------------------------------------------------------

CONSTRUCTION = [
    # case 1: sizes <= 0
    ("RNN", dict(input_size=4, hidden_size=0), ValueError, r"hidden_size must be >= 1, got 0"),
    ("LSTM", dict(input_size=0, hidden_size=3), ValueError, r"input_size must be >= 1, got 0"),
    ("GRU", dict(input_size=4, hidden_size=3, num_layers=0), ValueError, r"num_layers must be >= 1, got 0"),
    ("GRU", dict(input_size=4, hidden_size=-2), ValueError, r"hidden_size must be >= 1, got -2"),
    # case 2: non-integer sizes; bool rejected explicitly
    ("RNN", dict(input_size=4.0, hidden_size=3), TypeError, r"input_size must be an integer, got float 4\.0"),
    ("LSTM", dict(input_size=4, hidden_size="10"), TypeError, r"hidden_size must be an integer, got str '10'"),
    ("GRU", dict(input_size=True, hidden_size=3), TypeError, r"input_size must be an integer, got bool True"),
    ("RNN", dict(input_size=4, hidden_size=3, num_layers=np.True_), TypeError,
     r"num_layers must be an integer, got bool"),
    ("LSTM", dict(input_size=np.float64(4), hidden_size=3), TypeError,
     r"input_size must be an integer, got float64"),
    ("GRU", dict(input_size=4, hidden_size=None), TypeError, r"hidden_size must be an integer, got NoneType"),
    # case 34 (sizes): a size that does not fit a 32-bit BLAS int
    ("RNN", dict(input_size=2**31, hidden_size=3), ValueError,
     r"input_size must be at most 2147483647 \(a 32-bit BLAS int\), got 2147483648"),
    # case 3: proj_size, nonlinearity, dropout
    ("LSTM", dict(input_size=4, hidden_size=3, proj_size=3), ValueError,
     r"proj_size must be smaller than hidden_size=3, got 3"),
    ("LSTM", dict(input_size=4, hidden_size=3, proj_size=7), ValueError,
     r"proj_size must be smaller than hidden_size=3, got 7"),
    ("LSTM", dict(input_size=4, hidden_size=3, proj_size=-1), ValueError, r"proj_size must be >= 0, got -1"),
    ("LSTM", dict(input_size=4, hidden_size=3, proj_size=1.5), TypeError, r"proj_size must be an integer"),
    ("GRU", dict(input_size=4, hidden_size=3, proj_size=1), TypeError, r"proj_size"),
    ("RNN", dict(input_size=4, hidden_size=3, proj_size=1), TypeError, r"proj_size"),
    ("RNN", dict(input_size=4, hidden_size=3, nonlinearity="sigmoid"), ValueError,
     r"nonlinearity must be one of \['tanh', 'relu'\], got 'sigmoid'"),
    ("RNN", dict(input_size=4, hidden_size=3, nonlinearity=None), ValueError,
     r"nonlinearity must be one of \['tanh', 'relu'\], got None"),
    ("GRU", dict(input_size=4, hidden_size=3, num_layers=2, dropout=1.5), ValueError,
     r"dropout must be <= 1\.0, got 1\.5"),
    ("LSTM", dict(input_size=4, hidden_size=3, num_layers=2, dropout=-0.1), ValueError,
     r"dropout must be >= 0\.0, got -0\.1"),
    ("LSTM", dict(input_size=4, hidden_size=3, num_layers=2, dropout=1.0), ValueError,
     r"dropout must be in \[0, 1\)"),
    ("RNN", dict(input_size=4, hidden_size=3, num_layers=2, dropout=float("nan")), ValueError,
     r"dropout must be finite, got nan"),
    ("GRU", dict(input_size=4, hidden_size=3, num_layers=2, dropout="0.5"), TypeError,
     r"dropout must be a real number, got str"),
    # case 4: dtype other than float32 / float64
    ("RNN", dict(input_size=4, hidden_size=3, dtype=np.float16), TypeError,
     r"dtype must be (np\.)?float32 or (np\.)?float64, got .*float16"),
    ("LSTM", dict(input_size=4, hidden_size=3, dtype=int), TypeError,
     r"dtype must be (np\.)?float32 or (np\.)?float64, got .*int"),
    ("GRU", dict(input_size=4, hidden_size=3, dtype=np.int32), TypeError,
     r"dtype must be (np\.)?float32 or (np\.)?float64, got .*int32"),
    ("GRU", dict(input_size=4, hidden_size=3, dtype="float"), TypeError,
     r"dtype must be (np\.)?float32 or (np\.)?float64, got 'float'"),
    ("LSTM", dict(input_size=4, hidden_size=3, dtype=np.complex128), TypeError,
     r"dtype must be (np\.)?float32 or (np\.)?float64, got .*complex128"),
    ("RNN", dict(input_size=4, hidden_size=3, dtype=np.dtype(">f4")), TypeError,
     r"dtype must be (np\.)?float32 or (np\.)?float64, got dtype\('>f4'\)"),
    ("RNN", dict(input_size=4, hidden_size=3, dtype="foo"), TypeError,
     r"dtype must be (np\.)?float32 or (np\.)?float64, got 'foo'"),
]


@pytest.mark.parametrize("mode,kwargs,exc,match", CONSTRUCTION)
def test_constructor_rejects(mode, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        LAYERS[mode](**kwargs)


@pytest.mark.parametrize("mode,kwargs,exc,match", [
    ("RNN", dict(input_size=4, hidden_size=0), ValueError, r"hidden_size must be >= 1, got 0"),
    ("LSTM", dict(input_size=4.0, hidden_size=3), TypeError, r"input_size must be an integer, got float"),
    ("GRU", dict(input_size=4, hidden_size=False), TypeError, r"hidden_size must be an integer, got bool"),
    ("RNN", dict(input_size=4, hidden_size=3, nonlinearity="gelu"), ValueError,
     r"nonlinearity must be one of \['tanh', 'relu'\], got 'gelu'"),
    ("LSTM", dict(input_size=4, hidden_size=3, dtype=np.float16), TypeError,
     r"dtype must be (np\.)?float32 or (np\.)?float64"),
])
def test_cell_constructor_rejects(mode, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        CELLS[mode](**kwargs)


@pytest.mark.parametrize("mode", MODES)
def test_numpy_integer_sizes_are_accepted(mode):
    layer = LAYERS[mode](np.int64(I), np.int32(H), num_layers=np.uint8(2), seed=0)
    assert (layer.input_size, layer.hidden_size, layer.num_layers) == (I, H, 2)
    assert all(type(v) is int for v in (layer.input_size, layer.hidden_size, layer.num_layers))
    ref = LAYERS[mode](I, H, num_layers=2, seed=0)
    assert layer.param_set.data.tobytes() == ref.param_set.data.tobytes()
    cell = CELLS[mode](np.int16(I), np.int64(H))
    assert (cell.input_size, cell.hidden_size) == (I, H)


def test_dropout_with_one_layer_warns():
    with pytest.warns(UserWarning, match=r"dropout=0\.5 applies between layers, and num_layers=1 has none"):
        fr.GRU(I, H, dropout=0.5)


def test_proj_size_zero_is_no_projection():
    layer = fr.LSTM(I, H, proj_size=0)
    assert "weight_hr_l0" not in layer.params


def test_huge_layer_raises_memory_error_before_allocating():
    """case 35: the byte count is named, and nothing half-built is left (the call simply raises)."""
    with pytest.raises(MemoryError, match=r"needs [\d,]+ bytes"):
        fr.LSTM(1, 2**20)


# ---- cases 5-9, 11: the input x ----------------------------------------------------------------

X_CASES = [
    # case 5: rank
    ("rank1", lambda: np.zeros(I), ValueError,
     r"x must be 2-D \(T, I\) or 3-D \(T, B, I\); got 1-D with shape \(4,\)"),
    ("rank4", lambda: np.zeros((1, T, B, I)), ValueError,
     r"x must be 2-D \(T, I\) or 3-D \(T, B, I\); got 4-D with shape \(1, 3, 2, 4\)"),
    ("rank0", lambda: np.float64(1.0), ValueError,
     r"x must be 2-D \(T, I\) or 3-D \(T, B, I\); got 0-D with shape \(\)"),
    ("rank0 array", lambda: np.array(2.0), ValueError, r"got 0-D with shape \(\)"),
    # case 6: feature size
    ("I=7", lambda: np.zeros((T, B, 7)), ValueError, r"x\.shape\[-1\] must equal input_size=4; got 7"),
    ("I=0", lambda: np.zeros((T, B, 0)), ValueError, r"x\.shape\[-1\] must equal input_size=4; got 0"),
    ("I=3 unbatched", lambda: np.zeros((T, 3)), ValueError, r"x\.shape\[-1\] must equal input_size=4; got 3"),
    # case 7, 8: empty time or batch
    ("T=0", lambda: np.zeros((0, B, I)), ValueError, r"no time steps \(T=0\); sequences need T >= 1"),
    ("T=0 unbatched", lambda: np.zeros((0, I)), ValueError, r"T=0"),
    ("B=0", lambda: np.zeros((T, 0, I)), ValueError, r"empty batch \(B=0\); need B >= 1"),
    # case 9, 11: not an array of real numbers
    ("None", lambda: None, TypeError, r"x must be an array of numbers, got NoneType"),
    ("str", lambda: "hello", TypeError, r"x must be an array of numbers, got str"),
    ("bytes", lambda: b"hello", TypeError, r"x must be an array of numbers, got bytes"),
    ("object", lambda: np.full((T, B, I), object()), TypeError, r"x must hold real numbers.*got dtype object"),
    ("bool", lambda: np.ones((T, B, I), bool), TypeError, r"x must hold real numbers.*got dtype bool"),
    ("complex", lambda: np.ones((T, B, I), complex), TypeError, r"x must hold real numbers.*got dtype complex128"),
    ("str array", lambda: np.full((T, B, I), "a"), TypeError, r"x must hold real numbers.*got dtype <U1"),
    ("ragged list", lambda: [[[1.0] * I], [[1.0] * 2]], TypeError, r"x must be an array of numbers; could not"),
    ("dict", lambda: {"a": 1}, TypeError, r"x must hold real numbers.*got dtype object"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("call", ["infer", "train"])
@pytest.mark.parametrize("name,make_x,exc,match", X_CASES, ids=[c[0] for c in X_CASES])
def test_bad_x(mode, call, name, make_x, exc, match):
    layer = with_grads(make(mode))
    fn = layer if call == "infer" else layer.begin_update
    raises_unchanged(layer, exc, match, lambda: fn(make_x()))


@pytest.mark.parametrize("mode", MODES)
def test_bad_x_batch_first_names_batch_first_layout(mode):
    layer = with_grads(make(mode, batch_first=True))
    raises_unchanged(layer, ValueError, r"3-D \(B, T, I\); got 1-D", lambda: layer(np.zeros(I)))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("make_x,exc,match", [
    (lambda: np.zeros((1, B, I)), ValueError, r"x must be 1-D \(I,\) or 2-D \(B, I\) for a cell; got 3-D"),
    (lambda: np.zeros((B, 7)), ValueError, r"x\.shape\[-1\] must equal input_size=4; got 7"),
    (lambda: np.zeros((0, I)), ValueError, r"empty batch \(B=0\)"),
    (lambda: None, TypeError, r"x must be an array of numbers, got NoneType"),
    (lambda: np.ones((B, I), complex), TypeError, r"got dtype complex128"),
    (lambda: np.ones((B, I), bool), TypeError, r"got dtype bool"),
])
def test_cell_bad_x(mode, make_x, exc, match):
    cell = CELLS[mode](I, H, dtype=np.float64, seed=0)
    raises_unchanged(cell, exc, match, lambda: cell(make_x()))
    raises_unchanged(cell, exc, match, lambda: cell.begin_update(make_x()))


# ---- cases 10-12: conversions of x -------------------------------------------------------------

def _x(dtype=np.float64, seed=3):
    return np.random.default_rng(seed).standard_normal((T, B, I)).astype(dtype)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layer_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("convert", [
    lambda x: (x * 3).round().astype(np.int64),
    lambda x: (x * 3).round().astype(np.int8),
    lambda x: (x * 3).round().astype(np.uint16) % 7,
    lambda x: x.astype(np.float16),
    lambda x: x.astype(">f8"),
    lambda x: x.astype(">f4"),
    lambda x: x.tolist(),
], ids=["int64", "int8", "uint16", "float16", "big-endian f8", "big-endian f4", "nested list"])
def test_x_of_other_dtypes_is_converted_once(mode, layer_dtype, convert):
    """cases 10-12: converted like x.astype(layer dtype), never reinterpreted; bitwise the same result."""
    layer = make(mode, dtype=layer_dtype)
    x = convert(_x())
    clean = np.asarray(x).astype(layer_dtype)
    y, h_n = layer(x)
    y_ref, h_ref = layer(clean)
    assert y.dtype == layer_dtype
    assert y.tobytes() == y_ref.tobytes()
    y_t, _, backprop = layer.begin_update(x)
    assert y_t.tobytes() == y_ref.tobytes()
    dx, _ = backprop(np.ones_like(y_t))
    assert dx.dtype == layer_dtype


# ---- cases 15, 17, 18: non-finite and huge values ----------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_propagates_in_its_own_row_from_its_step(mode, dtype):
    """case 15: NaN at (t=1, b=0) makes y[1:, 0] NaN and leaves row 1 and step 0 exactly as without it."""
    layer = make(mode, dtype=dtype)
    x = _x(dtype)
    y_clean, _ = layer(x)
    x[1, 0, 2] = np.nan
    y, h_n = layer(x)
    assert np.all(np.isnan(y[1:, 0]))
    assert y[0].tobytes() == y_clean[0].tobytes()
    assert y[:, 1].tobytes() == y_clean[:, 1].tobytes()
    h = h_n[0] if mode == "LSTM" else h_n
    assert np.all(np.isnan(h[:, 0])) and np.all(np.isfinite(h[:, 1]))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype,value", [(np.float32, 1e30), (np.float32, 3e38), (np.float32, -3e38),
                                         (np.float64, 1e300), (np.float64, -1e300)])
def test_huge_finite_inputs_give_finite_saturated_outputs(mode, dtype, value):
    """case 17: overflow-safe sigmoid/tanh; no NaN from inf/inf."""
    layer = make(mode, dtype=dtype, bidirectional=True)
    x = np.full((T, B, I), value, dtype)
    x[:, 1] = -value
    y, h_n = layer(x)
    assert np.all(np.isfinite(y)) and np.all(np.abs(y) <= 1)
    assert np.all(np.isfinite(h_n[1] if mode == "LSTM" else h_n))


def test_exploding_relu_rnn_gives_inf_or_nan_without_crashing():
    """case 18: the state grows without bound; the result is non-finite, the call returns normally."""
    layer = fr.RNN(1, 2, nonlinearity="relu", dtype=np.float32, seed=0)
    layer.params["weight_hh_l0"][...] = 10 * np.eye(2, dtype=np.float32)
    layer.params["weight_ih_l0"][...] = 1
    layer.params["bias_ih_l0"][...] = 0
    layer.params["bias_hh_l0"][...] = 0
    y, h_n = layer(np.ones((60, 1, 1), np.float32))
    assert np.all(np.isfinite(y[:30])) and not np.all(np.isfinite(y))
    y, _, backprop = layer.begin_update(np.ones((60, 1, 1), np.float32))
    backprop(np.ones_like(y))


# ---- cases 19-23: states -----------------------------------------------------------------------

def _state_cases():
    cases = []
    for mode in MODES:
        good = (1, B, H)
        cases += [
            (mode, {}, (1, B + 1, H), r"h0 must have shape \(L\*D, B, H_out\)=\(1, 2, 5\); got \(1, 3, 5\)"),
            (mode, {}, (2, B, H), r"h0 must have shape \(L\*D, B, H_out\)=\(1, 2, 5\); got \(2, 2, 5\)"),
            (mode, {}, (1, B, H - 1), r"h0 must have shape \(L\*D, B, H_out\)=\(1, 2, 5\); got \(1, 2, 4\)"),
            (mode, {"bidirectional": True, "num_layers": 2}, good,
             r"h0 must have shape \(L\*D, B, H_out\)=\(4, 2, 5\); got \(1, 2, 5\)"),
            # case 20: rank differs from x's
            (mode, {}, (B, H), r"h0 must be 3-D with shape \(1, 2, 5\) for batched 3-D input; got 2-D \(2, 5\)"),
            (mode, {}, (1, 1, B, H), r"h0 must be 3-D with shape \(1, 2, 5\) for batched 3-D input; got 4-D"),
        ]
    cases.append(("LSTM", {"proj_size": 3}, (1, B, H),
                  r"h0 must have shape \(L\*D, B, H_out\)=\(1, 2, 3\); got \(1, 2, 5\)"))
    return cases


@pytest.mark.parametrize("mode,kw,shape,match", _state_cases())
@pytest.mark.parametrize("call", ["infer", "train"])
def test_state_of_wrong_shape(mode, kw, shape, match, call):
    layer = with_grads(make(mode, **kw))
    fn = layer if call == "infer" else layer.begin_update
    c_shape = (layer.num_layers * layer.num_directions, B, H)
    raises_unchanged(layer, ValueError, match, lambda: fn(_x(), state(mode, shape, c_shape=c_shape)))


@pytest.mark.parametrize("proj", [0, 3])
def test_lstm_c0_of_wrong_shape(proj):
    layer = with_grads(make("LSTM", proj_size=proj))
    h0 = np.zeros((1, B, proj or H))
    raises_unchanged(layer, ValueError, r"c0 must have shape \(L\*D, B, H_out\)=\(1, 2, 5\); got \(1, 2, 3\)",
                     lambda: layer(_x(), (h0, np.zeros((1, B, 3)))))


@pytest.mark.parametrize("mode", MODES)
def test_unbatched_x_with_batched_state(mode):
    layer = with_grads(make(mode))
    raises_unchanged(layer, ValueError,
                     r"h0 must be 2-D with shape \(1, 5\) for unbatched 2-D input; got 3-D \(1, 1, 5\)",
                     lambda: layer(_x()[:, 0], state(mode, (1, 1, H))))


@pytest.mark.parametrize("mode,bad,match", [
    ("LSTM", lambda: np.zeros((1, B, H)), r"LSTM state must be a tuple \(h0, c0\) of arrays; got ndarray"),
    ("LSTM", lambda: (np.zeros((1, B, H)),), r"LSTM state must be a tuple \(h0, c0\) of arrays; got a 1-tuple"),
    ("LSTM", lambda: (np.zeros((1, B, H)),) * 3, r"LSTM state must be a tuple \(h0, c0\) of arrays; got a 3-tuple"),
    ("LSTM", lambda: (None, np.zeros((1, B, H))), r"h0 must be an array of numbers, got NoneType"),
    ("LSTM", lambda: (np.zeros((1, B, H)), "c"), r"c0 must be an array of numbers, got str"),
    ("LSTM", lambda: 3.0, r"LSTM state must be a tuple \(h0, c0\) of arrays; got float"),
    ("GRU", lambda: (np.zeros((1, B, H)),), r"GRU state must be one array h0 of shape \(L\*D, B, H\); got a tuple"),
    ("GRU", lambda: [np.zeros((1, B, H))], r"GRU state must be one array h0 of shape \(L\*D, B, H\); got a list"),
    ("RNN", lambda: (np.zeros((1, B, H)), np.zeros((1, B, H))), r"RNN state must be one array h0.*got a tuple"),
    ("RNN", lambda: "h0", r"h0 must be an array of numbers, got str"),
    ("GRU", lambda: np.zeros((1, B, H), complex), r"h0 must hold real numbers.*got dtype complex128"),
    ("RNN", lambda: np.zeros((1, B, H), bool), r"h0 must hold real numbers.*got dtype bool"),
])
@pytest.mark.parametrize("call", ["infer", "train"])
def test_state_of_wrong_type(mode, bad, match, call):
    """case 21: LSTM needs a 2-tuple, RNN/GRU one array; non-numeric states are a TypeError."""
    layer = with_grads(make(mode))
    fn = layer if call == "infer" else layer.begin_update
    raises_unchanged(layer, TypeError, match, lambda: fn(_x(), bad()))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["infer", "train"])
def test_batch_first_with_batch_major_state_says_states_stay_time_major(mode, kind):
    """case 23: with batch_first, a (B, L, H) state is refused and the message says states stay (L*D, B, H)."""
    layer = with_grads(make(mode, num_layers=2, batch_first=True))
    x = np.zeros((3, T, I))  # B=3 rows, L*D=2
    fn = layer if kind == "infer" else layer.begin_update
    raises_unchanged(layer, ValueError,
                     r"h0 must have shape \(L\*D, B, H_out\)=\(2, 3, 5\); got \(3, 2, 5\) "
                     r"\(states stay \(L\*D, B, H\) even with batch_first=True\)",
                     lambda: fn(x, state(mode, (3, 2, H))))
    y, _ = layer(x, state(mode, (2, 3, H)))  # the right layout works
    assert y.shape == (3, T, H)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layer_dtype,state_dtype", [(np.float32, np.float64), (np.float64, np.float32),
                                                     (np.float64, np.int64)])
def test_state_of_another_dtype_is_converted(mode, layer_dtype, state_dtype):
    """case 22: converted like x; same numbers as a state of the layer's dtype."""
    layer = make(mode, dtype=layer_dtype)
    s = state(mode, (1, B, H), dtype=np.float64, fill=1.0)
    s_other = tuple(a.astype(state_dtype) for a in s) if mode == "LSTM" else s.astype(state_dtype)
    s_clean = tuple(a.astype(layer_dtype) for a in s) if mode == "LSTM" else s.astype(layer_dtype)
    y, _ = layer(_x(layer_dtype), s_other)
    y_ref, _ = layer(_x(layer_dtype), s_clean)
    assert y.tobytes() == y_ref.tobytes()


# ---- cases 24-28: lengths ----------------------------------------------------------------------

LENGTH_CASES = [
    ([3], ValueError, r"lengths must have shape \(2,\), one per batch row; got \(1,\)"),
    ([3, 3, 3], ValueError, r"lengths must have shape \(2,\), one per batch row; got \(3,\)"),
    ([[3, 2]], ValueError, r"lengths must have shape \(2,\), one per batch row; got \(1, 2\)"),
    (3, ValueError, r"lengths must have shape \(2,\), one per batch row; got \(\)"),
    ([3.5, 1], TypeError, r"lengths must hold integers, got non-integer values \[3\.5\]"),
    (np.array([2.0, 0.25]), TypeError, r"lengths must hold integers, got non-integer values \[0\.25\]"),
    ([np.nan, 1], TypeError, r"lengths must hold integers"),
    ([3, -1], ValueError, r"lengths must be in \[1, T=3\]; lengths\[1\] = -1"),
    ([0, 3], ValueError, r"lengths must be in \[1, T=3\]; lengths\[0\] = 0"),  # case 26: zero is refused
    ([5, 2], ValueError, r"lengths\[0\]=5 exceeds T=3"),
    ([3, 2**40], ValueError, r"lengths\[1\]=1099511627776 exceeds T=3"),
    (np.array([3, 4], np.uint8), ValueError, r"lengths\[1\]=4 exceeds T=3"),
    ([True, True], TypeError, r"lengths must hold integers, got dtype bool"),
    ("32", TypeError, r"lengths must be an array of integers, got str"),
    ([None, 1], TypeError, r"lengths must hold integers, got dtype object"),
    (np.array([3, 1], complex), TypeError, r"lengths must hold integers, got dtype complex128"),
    ([np.inf, 2], TypeError, r"lengths must hold integers, got non-integer values \[inf\]"),
    ([1e300, 2], ValueError, r"lengths\[0\]=1e\+300 exceeds T=3"),
    (np.array([2**63, 2], np.uint64), ValueError, r"lengths\[0\]=9223372036854775808 exceeds T=3"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("call", ["infer", "train"])
@pytest.mark.parametrize("lengths,exc,match", LENGTH_CASES,
                         ids=[repr(c.values[0] if hasattr(c, "values") else c[0]) for c in LENGTH_CASES])
def test_bad_lengths(mode, call, lengths, exc, match):
    layer = with_grads(make(mode, bidirectional=True))
    fn = layer if call == "infer" else layer.begin_update
    raises_unchanged(layer, exc, match, lambda: fn(_x(), None, lengths))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("lengths", [[3, 2], (3, 2), np.array([3, 2], np.int32), np.array([3, 2], np.uint8),
                                     np.array([3.0, 2.0]), [np.int16(3), np.int64(2)]],
                         ids=["list", "tuple", "int32", "uint8", "whole floats", "numpy scalars"])
def test_lengths_of_other_types_are_converted(mode, lengths):
    """case 24, 28: lists, int32 and whole floats give the same numbers as an int64 array."""
    layer = make(mode, bidirectional=True)
    x = _x()
    y_ref, s_ref = layer(x, None, np.array([3, 2], np.int64))
    y, s = layer(x, None, lengths)
    assert y.tobytes() == y_ref.tobytes()
    assert np.array_equal(np.asarray(s_ref[0] if mode == "LSTM" else s_ref), s[0] if mode == "LSTM" else s)


@pytest.mark.parametrize("mode", MODES)
def test_cell_bad_state(mode):
    cell = CELLS[mode](I, H, dtype=np.float64, seed=0)
    x = np.zeros((B, I))
    if mode == "LSTM":
        raises_unchanged(cell, TypeError, r"LSTMCell state must be a tuple \(h, c\) of arrays; got ndarray",
                         lambda: cell(x, np.zeros((B, H))))
        raises_unchanged(cell, ValueError, r"h must have shape \(2, 5\) for batched x; got \(3, 5\)",
                         lambda: cell(x, (np.zeros((B + 1, H)), np.zeros((B, H)))))
        raises_unchanged(cell, ValueError, r"c must have shape \(5,\) for unbatched x; got \(1, 5\)",
                         lambda: cell(x[0], (np.zeros(H), np.zeros((1, H)))))
    else:
        raises_unchanged(cell, TypeError, rf"{mode}Cell state must be one array h; got a tuple",
                         lambda: cell(x, (np.zeros((B, H)),)))
        raises_unchanged(cell, ValueError, r"h must have shape \(2, 5\) for batched x; got \(1, 2, 5\)",
                         lambda: cell(x, np.zeros((1, B, H))))
        raises_unchanged(cell, ValueError, r"h must have shape \(5,\) for unbatched x; got \(1, 5\)",
                         lambda: cell(x[0], np.zeros((1, H))))


# ---- case 29: dy and dstate_n ------------------------------------------------------------------

def _dstate(mode, shape, fill=0.0):
    return state(mode, shape, fill=fill)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("batch_first", [False, True])
def test_dy_of_wrong_shape(mode, batch_first):
    layer = with_grads(make(mode, bidirectional=True, batch_first=batch_first))
    x = _x().transpose(1, 0, 2) if batch_first else _x()
    y, _, backprop = layer.begin_update(x)
    want = "(2, 3, 10)" if batch_first else "(3, 2, 10)"
    wrong = np.zeros((T, B, H)) if not batch_first else np.zeros((T, B, 2 * H))
    found = "(3, 2, 5)" if not batch_first else "(3, 2, 10)"
    raises_unchanged(layer, ValueError, re.escape(f"dy must have the shape of y, {want}; got {found}"),
                     lambda: backprop(wrong))
    raises_unchanged(layer, TypeError, r"dy must hold real numbers.*complex128",
                     lambda: backprop(np.zeros(y.shape, complex)))
    raises_unchanged(layer, TypeError, r"dy must be an array of numbers, got str", lambda: backprop("dy"))
    # a rejected dy does not consume the backprop: a good one still works and adds gradients
    before = layer.param_set.grad.copy()
    backprop(np.ones_like(y))
    assert not np.array_equal(layer.param_set.grad, before)


@pytest.mark.parametrize("mode", MODES)
def test_dstate_n_of_wrong_shape_or_type(mode):
    layer = with_grads(make(mode, num_layers=2))
    y, _, backprop = layer.begin_update(_x())
    raises_unchanged(layer, ValueError, r"dh_n must have shape \(L\*D, B, H_out\)=\(2, 2, 5\); got \(1, 2, 5\)",
                     lambda: backprop(np.ones_like(y), _dstate(mode, (1, B, H))))
    if mode == "LSTM":
        raises_unchanged(layer, TypeError, r"LSTM dstate_n must be None or a tuple \(dh_n, dc_n\)",
                         lambda: backprop(np.ones_like(y), np.zeros((2, B, H))))
        raises_unchanged(layer, ValueError, r"dc_n must have shape \(L\*D, B, H_out\)=\(2, 2, 5\); got \(2, 2, 4\)",
                         lambda: backprop(np.ones_like(y), (None, np.zeros((2, B, 4)))))
    else:
        raises_unchanged(layer, ValueError, r"dh_n must be 3-D with shape \(2, 2, 5\)",
                         lambda: backprop(np.ones_like(y), np.zeros((B, H))))


@pytest.mark.parametrize("mode", MODES)
def test_dy_conversions_and_none(mode):
    """case 29: dtype and layout of dy are converted; None for dy or dstate_n means zeros."""
    layer = make(mode, dtype=np.float64, bidirectional=True)
    x = _x()
    dy = np.random.default_rng(5).standard_normal((T, B, 2 * H))

    def grads(dy, dstate=None):
        layer.zero_grad()
        _, _, backprop = layer.begin_update(x)
        dx, _ = backprop(dy, dstate)
        return dx, layer.param_set.grad.copy()

    dx_ref, g_ref = grads(dy)
    for other in (np.asfortranarray(dy), dy[::-1][::-1], dy.astype(">f8"), dy.tolist()):
        dx, g = grads(other)
        assert dx.tobytes() == dx_ref.tobytes() and g.tobytes() == g_ref.tobytes()
    zero_state = state(mode, (2, B, H), fill=0.0)
    dx, g = grads(dy, zero_state)
    assert dx.tobytes() == dx_ref.tobytes() and g.tobytes() == g_ref.tobytes()
    dx, g = grads(None)
    assert np.all(dx == 0) and np.all(g == 0)
    dx, g = grads(np.zeros_like(dy), state(mode, (2, B, H), fill=1.0))
    dx_none, g_none = grads(None, state(mode, (2, B, H), fill=1.0))
    assert np.any(g != 0) and dx.tobytes() == dx_none.tobytes() and g.tobytes() == g_none.tobytes()


# ---- cases 30, 31: the training cache ----------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_backprop_twice_raises_and_adds_nothing(mode):
    layer = with_grads(make(mode))
    y, _, backprop = layer.begin_update(_x())
    backprop(np.ones_like(y))
    raises_unchanged(layer, RuntimeError, r"this backprop was already used", lambda: backprop(np.ones_like(y)))


@pytest.mark.parametrize("mode", MODES)
def test_cell_backprop_twice_raises(mode):
    cell = CELLS[mode](I, H, dtype=np.float64, seed=0)
    out, backprop = cell.begin_update(np.ones((B, I)))
    backprop(out)
    raises_unchanged(cell, RuntimeError, r"this backprop was already used", lambda: backprop(out))


@pytest.mark.parametrize("mode", MODES)
def test_two_pending_backprops_are_independent(mode):
    """A later begin_update does not disturb an earlier pending backprop (each keeps its own cache)."""
    layer = make(mode)
    x1, x2 = _x(seed=1), _x(seed=2)
    dy = np.ones((T, B, H))

    layer.zero_grad()
    _, _, bp1 = layer.begin_update(x1)
    dx1, _ = bp1(dy)
    g1 = layer.param_set.grad.copy()
    layer.zero_grad()
    _, _, bp2 = layer.begin_update(x2)
    dx2, _ = bp2(dy)
    g2 = layer.param_set.grad.copy()

    layer.zero_grad()
    _, _, bp1 = layer.begin_update(x1)
    _, _, bp2 = layer.begin_update(x2)
    dx2_b, _ = bp2(dy)
    dx1_b, _ = bp1(dy)
    assert dx1_b.tobytes() == dx1.tobytes() and dx2_b.tobytes() == dx2.tobytes()
    np.testing.assert_allclose(layer.param_set.grad, g1 + g2, rtol=1e-13, atol=1e-15)


def _change_by_view(layer):
    name = next(iter(layer.params))
    layer.params[name][0, 0] += 0.5


def _change_by_flat_buffer(layer):
    layer.param_set.data[-1] *= 2


def _change_by_load(layer):
    sd = layer.state_dict()
    name = next(iter(sd))
    sd[name] = sd[name] + 1
    layer.load_state_dict(sd)


def _reload_same(layer):
    layer.load_state_dict(layer.state_dict())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("change", [_change_by_view, _change_by_flat_buffer, _change_by_load, _reload_same])
def test_weights_changed_before_backprop_raise(mode, change):
    """case 31: a write through a view, the flat buffer or load_state_dict between the calls is refused."""
    layer = with_grads(make(mode))
    y, _, backprop = layer.begin_update(_x())
    change(layer)
    raises_unchanged(layer, RuntimeError, r"weights changed between begin_update and backprop",
                     lambda: backprop(np.ones_like(y)))


@pytest.mark.parametrize("mode", MODES)
def test_cell_weights_changed_before_backprop_raise(mode):
    cell = CELLS[mode](I, H, dtype=np.float64, seed=0)
    out, backprop = cell.begin_update(np.ones((B, I)))
    cell.params["weight_hh"][0, 0] += 1
    raises_unchanged(cell, RuntimeError, r"weights changed between begin_update and backprop",
                     lambda: backprop(out))


def _grads_after(layer, x, s, lengths, dy, mutate=None):
    layer.zero_grad()
    y, s_n, backprop = layer.begin_update(x, s, lengths)
    if mutate is not None:
        mutate()
    dx, ds = backprop(dy)
    return dx.copy(), layer.param_set.grad.copy()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layer_dtype", [np.float32, np.float64])
def test_inputs_changed_after_begin_update_do_not_change_gradients(mode, layer_dtype):
    """case 31: x (even when it already has the layer's dtype and C order) and the initial state are kept
    by value; mutating them (or the returned y and state) before backprop changes nothing."""
    layer = make(mode, dtype=layer_dtype, bidirectional=True)
    dy = np.random.default_rng(6).standard_normal((T, B, 2 * H)).astype(layer_dtype)
    x = _x(layer_dtype)
    s = state(mode, (2, B, H), dtype=layer_dtype, fill=0.3)
    dx_ref, g_ref = _grads_after(layer, x, s, None, dy)

    def mutate():
        x[...] = 7
        for a in (s if mode == "LSTM" else (s,)):
            a[...] = -2

    dx, g = _grads_after(layer, x, s, None, dy, mutate)
    assert dx.tobytes() == dx_ref.tobytes() and g.tobytes() == g_ref.tobytes()


@pytest.mark.parametrize("mode", MODES)
def test_lengths_changed_after_begin_update_do_not_change_gradients(mode):
    layer = make(mode, bidirectional=True)
    dy = np.random.default_rng(6).standard_normal((T, B, 2 * H))
    x = _x()
    lengths = np.array([3, 2], np.int64)
    dx_ref, g_ref = _grads_after(layer, x, None, lengths, dy)

    def mutate():
        lengths[1] = 1

    try:
        dx, g = _grads_after(layer, x, None, lengths, dy, mutate)
    except RuntimeError:
        return  # refusing is also acceptable
    assert dx.tobytes() == dx_ref.tobytes() and g.tobytes() == g_ref.tobytes()


# ---- case 34: buffers beyond 32-bit BLAS ints --------------------------------------------------

def test_gate_buffer_beyond_32_bit_raises_before_the_kernel():
    """T*B*4H = 2048*1024*1024 = 2^31 elements: refused by name, before anything of that size exists."""
    layer = fr.LSTM(1, 256, seed=0)
    x = np.zeros((2048, 1024, 1), np.float32)  # 8 MB
    snap = snapshot(layer)
    with pytest.raises(ValueError, match=r"gate buffer G.*2,147,483,648 elements \(2048 x 1024 x 1024\).*"
                                         r"at most 2,147,483,647"):
        layer(x)
    with pytest.raises(ValueError, match=r"2,147,483,648 elements"):
        layer.begin_update(x)
    assert_unchanged(layer, snap)


# ---- case 36: load_state_dict is atomic --------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_load_state_dict_lists_every_problem_and_changes_nothing(mode):
    layer = with_grads(make(mode, bidirectional=True))
    y, _, backprop = layer.begin_update(_x())
    good = layer.state_dict()
    bad = {k: v + 1 for k, v in good.items()}  # valid entries that WOULD change the layer
    del bad["weight_ih_l0"]
    bad["weight_ih_l9"] = np.zeros(3)
    bad["bias_hh_l0_reverse"] = np.zeros(7)
    bad["weight_hh_l0"] = np.full_like(good["weight_hh_l0"], np.nan)
    bad["bias_ih_l0"] = np.full_like(good["bias_ih_l0"], np.inf)
    bad["weight_hh_l0_reverse"] = good["weight_hh_l0_reverse"].astype(complex)
    G = good["bias_ih_l0"].shape[0]
    with pytest.raises(ValueError) as info:
        snap = snapshot(layer)
        layer.load_state_dict(bad)
    assert_unchanged(layer, snap)
    msg = str(info.value)
    for part in [r"unexpected key 'weight_ih_l9'",
                 rf"missing key 'weight_ih_l0' of shape \({G}, 4\)",
                 rf"'bias_hh_l0_reverse': expected shape \({G},\), got \(7,\)",
                 r"'weight_hh_l0': contains NaN or Inf",
                 r"'bias_ih_l0': contains NaN or Inf",
                 r"'weight_hh_l0_reverse': expected a real numeric array, got dtype complex128"]:
        assert re.search(part, msg), (part, msg)
    # the pending backprop still works: a failed load is not a weight change
    backprop(np.ones_like(y))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("edit,exc,match", [
    (lambda sd: sd.pop("weight_hh_l0"), ValueError, r"missing key 'weight_hh_l0'"),
    (lambda sd: sd.update(extra=np.zeros(1)), ValueError, r"unexpected key 'extra'"),
    (lambda sd: sd.update(weight_ih_l0=sd["weight_ih_l0"].T), ValueError,
     r"'weight_ih_l0': expected shape \(\d+, 4\), got \(4, \d+\)"),
    (lambda sd: sd.update(bias_ih_l0=np.full(sd["bias_ih_l0"].shape, np.nan)), ValueError,
     r"'bias_ih_l0': contains NaN or Inf"),
    (lambda sd: sd.update(bias_ih_l0=sd["bias_ih_l0"].astype(bool)), ValueError,
     r"'bias_ih_l0': expected a real numeric array, got dtype bool"),
    (lambda sd: sd.update(bias_ih_l0="zeros"), ValueError, r"'bias_ih_l0': expected a real numeric array"),
])
def test_load_state_dict_single_problem(mode, edit, exc, match):
    layer = with_grads(make(mode))
    sd = {k: v * 2 for k, v in layer.state_dict().items()}
    edit(sd)
    raises_unchanged(layer, exc, match, lambda: layer.load_state_dict(sd))


@pytest.mark.parametrize("bad", [None, [1, 2], np.zeros(3), "weights"])
def test_load_state_dict_not_a_mapping(bad):
    layer = with_grads(make("LSTM"))
    raises_unchanged(layer, TypeError, r"state_dict must be a mapping of names to arrays, got",
                     lambda: layer.load_state_dict(bad))


def test_load_state_dict_converts_dtype_and_round_trips():
    layer = make("GRU", dtype=np.float32)
    other = LAYERS["GRU"](I, H, dtype=np.float64, seed=9)
    layer.load_state_dict(other.state_dict())
    for k, v in other.state_dict().items():
        assert layer.params[k].dtype == np.float32
        assert layer.params[k].tobytes() == v.astype(np.float32).tobytes()


# ---- the cells' fast path (arrays that need no conversion go straight to the kernel) -----------

def _cell_state(mode, shape, dtype=np.float64, fill=0.2):
    h = np.full(shape, fill, dtype)
    return (h, np.full(shape, -fill, dtype)) if mode == "LSTM" else h


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name,make_x,make_h,exc,match", [
    ("x None", lambda m: None, lambda m: _cell_state(m, (B, H)), TypeError,
     r"x must be an array of numbers, got NoneType"),
    ("x str", lambda m: "x", lambda m: _cell_state(m, (B, H)), TypeError, r"x must be an array of numbers, got str"),
    ("B=0", lambda m: np.zeros((0, I)), lambda m: _cell_state(m, (0, H)), ValueError, r"empty batch \(B=0\)"),
    ("x 3-D", lambda m: np.zeros((1, B, I)), lambda m: _cell_state(m, (B, H)), ValueError,
     r"x must be 1-D \(I,\) or 2-D \(B, I\) for a cell; got 3-D"),
    ("I wrong", lambda m: np.zeros((B, I + 1)), lambda m: _cell_state(m, (B, H)), ValueError,
     r"x\.shape\[-1\] must equal input_size=4; got 5"),
    ("h rows", lambda m: np.zeros((B, I)), lambda m: _cell_state(m, (B + 1, H)), ValueError,
     r"h must have shape \(2, 5\) for batched x; got \(3, 5\)"),
    ("c rows", lambda m: np.zeros((B, I)),
     lambda m: (np.zeros((B, H)), np.zeros((B + 1, H))) if m == "LSTM" else np.zeros((B + 1, H)), ValueError,
     r"(c|h) must have shape \(2, 5\) for batched x; got \(3, 5\)"),
    ("h width", lambda m: np.zeros((B, I)), lambda m: _cell_state(m, (B, H + 1)), ValueError,
     r"h must have shape \(2, 5\) for batched x; got \(2, 6\)"),
    ("h 0-d", lambda m: np.zeros((B, I)), lambda m: _cell_state(m, ()), ValueError,
     r"h must have shape \(2, 5\) for batched x; got \(\)"),
    ("h None", lambda m: np.zeros((B, I)),
     lambda m: (None, np.zeros((B, H))) if m == "LSTM" else np.full((B, H), None), TypeError,
     r"h must (be an array of numbers, got NoneType|hold real numbers.*got dtype object)"),
    ("c None", lambda m: np.zeros((B, I)),
     lambda m: (np.zeros((B, H)), None) if m == "LSTM" else np.full((B, H), None), TypeError,
     r"(c must be an array of numbers, got NoneType|h must hold real numbers.*got dtype object)"),
    ("h object", lambda m: np.zeros((B, I)),
     lambda m: (np.full((B, H), None), np.zeros((B, H))) if m == "LSTM" else np.full((B, H), None), TypeError,
     r"h must hold real numbers.*got dtype object"),
    ("h complex", lambda m: np.zeros((B, I)),
     lambda m: _cell_state(m, (B, H), complex), TypeError, r"h must hold real numbers.*complex128"),
])
def test_cell_fast_path_rejects_bad_arrays(mode, name, make_x, make_h, exc, match):
    """Arrays that look almost ready for the kernel (right dtype, C order) still meet the door checks."""
    cell = with_cell_grads(CELLS[mode](I, H, dtype=np.float64, seed=0))
    raises_unchanged(cell, exc, match, lambda: cell(make_x(mode), make_h(mode)))
    raises_unchanged(cell, exc, match, lambda: cell.begin_update(make_x(mode), make_h(mode)))


def unaligned(a):
    """A C-contiguous copy of ``a`` whose data pointer is not aligned to the itemsize."""
    buf = np.zeros(a.nbytes + 1, np.uint8)
    out = np.frombuffer(buf.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned and out.flags.c_contiguous
    return out


def with_cell_grads(cell):
    out, backprop = cell.begin_update(np.ones((B, I)))
    backprop(out)
    assert np.any(cell.param_set.grad != 0)
    return cell


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cell_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("variant", ["float64", "float32", "int", "fortran", "strided", "read-only",
                                     "big-endian",
                                     "unaligned", "list", "subclass"])
def test_cell_converts_what_the_fast_path_cannot_take(mode, cell_dtype, variant):
    """Every form of x and state gives bitwise the result of the clean (C-order, cell-dtype) arrays."""
    cell = CELLS[mode](I, H, dtype=cell_dtype, seed=0)
    rng = np.random.default_rng(7)
    x = np.round(rng.standard_normal((3, I)) * 4)  # whole numbers, so that the int variant is exact
    hs = [np.round(rng.standard_normal((3, H)) * 4) / 8 for _ in range(2 if mode == "LSTM" else 1)]

    def form(a):
        if variant in ("float64", "float32"):
            return a.astype(variant)
        if variant == "int":
            return (a * 8).astype(np.int64) / 8 if a.shape[1] == H else a.astype(np.int64)
        if variant == "fortran":
            return np.asfortranarray(a.astype(cell_dtype))
        if variant == "strided":
            big = np.zeros((a.shape[0], 2 * a.shape[1]), cell_dtype)
            big[:, ::2] = a
            return big[:, ::2]
        if variant == "read-only":
            a = a.astype(cell_dtype)
            a.flags.writeable = False
            return a
        if variant == "big-endian":
            return a.astype(np.dtype(cell_dtype).newbyteorder(">"))
        if variant == "list":  # x and LSTM's h, c as nested lists; RNN/GRU take one array, not a list
            return a.tolist() if a.shape[1] == I or mode == "LSTM" else a.astype(cell_dtype)
        if variant == "unaligned":
            return unaligned(a.astype(cell_dtype))
        return a.astype(cell_dtype).view(np.ma.MaskedArray) if variant == "subclass" else a

    clean_x = x.astype(cell_dtype)
    clean_h = tuple(h.astype(cell_dtype) for h in hs)
    ref = cell(clean_x, clean_h if mode == "LSTM" else clean_h[0])
    got_h = tuple(form(h) for h in hs)
    got = cell(form(x), got_h if mode == "LSTM" else got_h[0])
    for u, v in zip(ref if mode == "LSTM" else (ref,), got if mode == "LSTM" else (got,)):
        assert type(v) is np.ndarray and v.dtype == cell_dtype
        assert u.tobytes() == v.tobytes()
    out, _ = cell.begin_update(form(x), got_h if mode == "LSTM" else got_h[0])
    for u, v in zip(ref if mode == "LSTM" else (ref,), out if mode == "LSTM" else (out,)):
        assert u.tobytes() == v.tobytes()


@pytest.mark.parametrize("mode", MODES)
def test_cell_result_does_not_alias_the_state(mode):
    """The new state is a fresh array: updating it in place does not touch the caller's state or weights."""
    cell = CELLS[mode](I, H, dtype=np.float32, seed=0)
    x = np.ones((B, I), np.float32)
    hx = _cell_state(mode, (B, H), np.float32)
    before = [a.copy() for a in (hx if mode == "LSTM" else (hx,))]
    out = cell(x, hx)
    for a in (out if mode == "LSTM" else (out,)):
        assert not any(np.shares_memory(a, b) for b in (hx if mode == "LSTM" else (hx,)))
        assert not np.shares_memory(a, cell.param_set.data)
        a[...] = 123
    assert all(np.array_equal(a, b) for a, b in zip(hx if mode == "LSTM" else (hx,), before))


@pytest.mark.parametrize("make, exc, match", [
    (lambda: fr.RNN(4, 3, dtype=None), TypeError, r"dtype must be np\.float32 or np\.float64, got None"),
    (lambda: fr.GRUCell(4, 3, dtype=None), TypeError, r"dtype must be np\.float32 or np\.float64, got None"),
    (lambda: fr.RNN(4, 3, bias="False"), TypeError, r"bias must be True or False, got str 'False'"),
    (lambda: fr.LSTM(4, 3, batch_first="yes"), TypeError, r"batch_first must be True or False, got str"),
    (lambda: fr.GRU(4, 3, bidirectional=2), TypeError, r"bidirectional must be True or False, got int 2"),
    (lambda: fr.GRU(4, 3, reset_after="no"), TypeError, r"reset_after must be True or False"),
    (lambda: fr.RNN(4, 3, seed="abc"), TypeError, r"seed must be None or a non-negative integer, got str 'abc'"),
    (lambda: fr.LSTM(4, 3, seed=-1), TypeError, r"seed must be None or a non-negative integer, got int -1"),
    (lambda: fr.LSTMCell(4, 3, seed=1.5), TypeError, r"seed must be None or a non-negative integer, got float"),
    (lambda: fr.RNNCell(1, 2**20), ValueError, r"weight_hh would hold 1,099,511,627,776 elements"),
    (lambda: fr.RNNCell(1, 46000, dtype=np.float64), MemoryError,
     r"RNNCell parameters and gradients needs [\d,]+ bytes, more than this machine's"),
    (lambda: fr.RNNCell(2**31, 2), ValueError, r"input_size must be at most 2147483647"),
])
def test_constructor_flags_seeds_and_sizes(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_flags_accept_numpy_bools_and_zero_one():
    assert fr.RNN(4, 3, bias=np.bool_(False)).bias is False
    assert fr.GRU(4, 3, bidirectional=1).bidirectional is True


def test_huge_broadcast_input_is_refused_before_any_copy():
    import tracemalloc

    layer = fr.RNN(4, 3)
    x = np.broadcast_to(np.float64(1.0), (2**16, 2**16, 4))   # 2**34 elements as a view of one number
    tracemalloc.start()
    with pytest.raises(ValueError, match=r"x \(T\*B x I\) would hold 17,179,869,184 elements"):
        layer(x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 10 * 2**20


# ---- the layers' compiled fast path (one direction, any depth, inference) ----------------------

KERNELS = {"RNN": "rnn", "LSTM": "lstm", "GRU": "gru"}


def _counting_run(monkeypatch, mode):
    """Count the calls of the kernel module's ``run`` (the layers' fast path) and the rows it served."""
    import importlib

    module = importlib.import_module(f"fastrnn._kernels.{KERNELS[mode]}")
    real, taken = module.run, []

    def run(*args):
        out = real(*args)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(module, "run", run)
    return taken


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T_, B_, L_", [(1, 1, 1), (5, 1, 1), (7, 3, 1), (40, 2, 1), (1, 1, 2), (7, 3, 3)])
def test_layer_fast_path_gives_the_general_paths_bits(monkeypatch, mode, dtype, T_, B_, L_):
    """Inference with C-contiguous arrays of the layer's dtype goes to the kernels' compiled ``run``, once
    per layer; the result is bitwise the general path's (forced here by full lengths, which take the
    validating path), fresh writable arrays of the documented shapes that share no memory with the inputs
    or weights."""
    layer = LAYERS[mode](I, H, num_layers=L_, dtype=dtype, seed=3)
    rng = np.random.default_rng(T_ * 10 + B_)
    x = rng.standard_normal((T_, B_, I)).astype(dtype)
    s0 = tuple(rng.standard_normal((L_, B_, H)).astype(dtype) for _ in range(2 if mode == "LSTM" else 1))
    s0 = s0 if mode == "LSTM" else s0[0]
    taken = _counting_run(monkeypatch, mode)
    y, s_n = layer(x, s0)
    assert taken == [True] * L_
    y_ref, s_ref = layer(x, s0, lengths=np.full(B_, T_))
    assert taken == [True] * L_   # the general path does not call run
    assert y.shape == (T_, B_, H) and y.dtype == dtype and y.flags.writeable
    assert y.tobytes() == y_ref.tobytes()
    for got, ref in zip(s_n if mode == "LSTM" else (s_n,), s_ref if mode == "LSTM" else (s_ref,)):
        assert got.shape == (L_, B_, H) and got.dtype == dtype
        assert got.tobytes() == ref.tobytes()
        for other in (x, layer.param_set.data, y, *(s0 if mode == "LSTM" else (s0,))):
            assert not np.shares_memory(got, other)
    assert not np.shares_memory(y, x) and not np.shares_memory(y, layer.param_set.data)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", ["float32", "fortran", "strided", "list-state", "fortran state", "no state",
                                     "batch_first", "bidirectional", "lengths"])
def test_layer_fast_path_falls_back_to_the_general_path(monkeypatch, mode, variant):
    """Whatever the fast path cannot take as it is goes through validation and conversion, with the clean
    arrays' result (bitwise) where the call means the same thing."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((T, B, I))
    hs = [rng.standard_normal((1, B, H)) for _ in range(2 if mode == "LSTM" else 1)]
    kw = {"batch_first": True} if variant == "batch_first" else {"bidirectional": True} if variant == "bidirectional" \
        else {}
    layer = make(mode, **kw)
    ref = None
    if variant not in ("batch_first", "bidirectional", "no state"):
        ref = layer(x, tuple(hs) if mode == "LSTM" else hs[0])
    xs, args = x, {}
    if variant == "float32":
        xs = x.astype(np.float32)
    elif variant == "fortran":
        xs = np.asfortranarray(x)
    elif variant == "strided":
        big = np.zeros((T, B, 2 * I))
        big[:, :, ::2] = x
        xs = big[:, :, ::2]
    elif variant == "batch_first":
        xs = x.transpose(1, 0, 2)
    elif variant == "lengths":
        args = {"lengths": [T] * B}
    if variant == "list-state":   # LSTM: (h0, c0) as nested lists; RNN, GRU (one array): a strided view
        if mode == "LSTM":
            state = tuple(h.tolist() for h in hs)
        else:
            big = np.zeros((1, B, 2 * H))
            big[:, :, ::2] = hs[0]
            state = big[:, :, ::2]
    elif variant == "fortran state":
        state = tuple(h.reshape(1, B, H)[:, :, :].copy(order="F") for h in hs) if mode == "LSTM" else \
            np.asfortranarray(hs[0])
    elif variant == "no state":
        state = None
    elif variant == "bidirectional":
        state = tuple(np.concatenate([h, h]) for h in hs) if mode == "LSTM" else np.concatenate([hs[0], hs[0]])
    else:
        state = tuple(hs) if mode == "LSTM" else hs[0]
    taken = _counting_run(monkeypatch, mode)
    y, s_n = layer(xs, state, **args)
    assert True not in taken   # served by the general path
    assert y.shape == ((B, T, H) if variant == "batch_first" else (T, B, 2 * H) if variant == "bidirectional"
                       else (T, B, H))
    if variant == "float32":
        # x converted once to the layer's float64: the clean result of the rounded x
        ref = layer(x.astype(np.float32).astype(np.float64), tuple(hs) if mode == "LSTM" else hs[0])
    if ref is not None:
        assert y.tobytes() == ref[0].tobytes()
        for got, want in zip(s_n if mode == "LSTM" else (s_n,), ref[1] if mode == "LSTM" else (ref[1],)):
            assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("depth", [1, 3])
def test_stacked_fast_path_runs_no_layer_for_a_state_of_the_wrong_depth(monkeypatch, mode, depth):
    """A 2-layer call with a state of another depth is refused by the general path's check, unchanged, and
    no layer's kernel ran before it."""
    layer = make(mode, num_layers=2)
    x = np.random.default_rng(6).standard_normal((T, B, I))
    s0 = state(mode, (depth, B, H))
    taken = _counting_run(monkeypatch, mode)
    with pytest.raises(ValueError, match=rf"h0 must have shape \(L\*D, B, H_out\)=\(2, {B}, {H}\); got \({depth}, "):
        layer(x, s0)
    assert taken == []


@pytest.mark.parametrize("mode", MODES)
def test_layer_fast_path_refuses_buffers_beyond_32_bit(mode):
    """The size checks run before the fast path too: T*B*G past 2^31 - 1 is refused by name, unchanged."""
    layer = LAYERS[mode](1, 1024, seed=0)
    G = {"RNN": 1, "LSTM": 4, "GRU": 3}[mode] * 1024
    T_ = 2**31 // (G * 1024) + 1
    x = np.zeros((T_, 1024, 1), np.float32)
    s0 = state(mode, (1, 1024, 1024), dtype=np.float32)
    snap = snapshot(layer)
    with pytest.raises(ValueError, match=r"would hold [\d,]+ elements .*at most 2,147,483,647"):
        layer(x, s0)
    assert_unchanged(layer, snap)


@pytest.mark.parametrize("mode", MODES)
def test_batch_first_set_after_construction_is_honoured(monkeypatch, mode):
    """batch_first is read at each call: set on a built layer, it is not mistaken for time-major input."""
    layer = make(mode)
    x = np.random.default_rng(5).standard_normal((B, T, I))
    s0 = state(mode, (1, B, H))
    want = make(mode, batch_first=True)(x, s0)
    layer.batch_first = True
    taken = _counting_run(monkeypatch, mode)
    got = layer(x, s0)
    assert True not in taken
    assert got[0].shape == (B, T, H) and got[0].tobytes() == want[0].tobytes()
