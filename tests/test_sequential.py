"""Sequential: one flat buffer, torch-style names, state threading, gradient checks, atomic loading."""
import numpy as np
import pytest

from fastrnn.layers.base import Layer
from fastrnn.layers.dropout import Dropout
from fastrnn.layers.embedding import Embedding
from fastrnn.layers.layernorm import LayerNorm
from fastrnn.layers.linear import Linear
from fastrnn.layers.sequential import Sequential

from gradcheck import ATOL, EPS, RTOL, numeric_grad  # noqa: E402




class CumScale(Layer):
    """A tiny recurrent layer for the tests: h_t = s * h_prev + x_t, y_t = h_t (s a learnable (F,) vector).

    State h (B, F). Steps past a row's length give y = 0 and leave its state alone, as the real layers do.
    """

    training_state = True

    def __init__(self, F, dtype=np.float64, seed=0):
        super().__init__([("scale", (F,))], dtype)
        self.params["scale"][...] = np.random.default_rng(seed).uniform(0.5, 0.9, F)
        self.seen_lengths = []

    def _run(self, x, h0, lengths):
        x = np.asarray(x, self.dtype)
        T, B, F = x.shape
        h = np.zeros((B, F), self.dtype) if h0 is None else np.array(h0, self.dtype)
        lens = np.full(B, T) if lengths is None else np.asarray(lengths)
        s = self.params["scale"]
        y, h_prev = np.zeros_like(x), []
        for t in range(T):
            live = (t < lens)[:, None]
            h_prev.append(h)
            h = np.where(live, s * h + x[t], h)
            y[t] = np.where(live, h, 0)
        return x, y, h, h_prev, lens

    def __call__(self, x, h0=None, lengths=None):
        self.seen_lengths.append(lengths)
        _, y, h, _, _ = self._run(x, h0, lengths)
        return y, h

    def begin_update(self, x, h0=None, lengths=None):
        self.seen_lengths.append(lengths)
        x, y, h_n, h_prev, lens = self._run(x, h0, lengths)
        s = self.params["scale"].copy()

        def backprop(dy, dh_n=None):
            dh = np.zeros_like(h_n) if dh_n is None else np.array(dh_n, self.dtype)
            dy = np.zeros_like(y) if dy is None else dy
            dx, ds = np.zeros_like(x), np.zeros_like(s)
            for t in reversed(range(len(x))):
                live = (t < lens)[:, None]
                g = np.where(live, dh + dy[t], 0)
                dx[t] = g
                ds += np.sum(g * h_prev[t], axis=0)
                dh = np.where(live, g * s, dh)
            self.grads["scale"] += ds
            return dx, dh

        return y, h_n, backprop


def make_model(dtype=np.float64):
    return Sequential(Linear(3, 4, dtype=dtype, seed=0), CumScale(4, dtype, seed=1), LayerNorm(4, dtype=dtype),
                      Dropout(0.0), CumScale(4, dtype, seed=2), Linear(4, 2, dtype=dtype, seed=3))


def test_flat_buffer_and_names():
    children = [Linear(3, 4, dtype=np.float64, seed=0), CumScale(4), LayerNorm(4, dtype=np.float64),
                Dropout(0.1), Linear(4, 2, dtype=np.float64, seed=3)]
    before = [layer.state_dict() for layer in children]
    model = Sequential(*children)
    assert list(model.params) == ["0.weight", "0.bias", "1.scale", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert list(model.grads) == list(model.params)
    ps = model.param_set
    assert isinstance(ps.data, np.ndarray) and ps.data.ndim == 1 and ps.data.size == 16 + 4 + 8 + 10
    assert ps.grad.shape == ps.data.shape and not np.shares_memory(ps.grad, ps.data)
    for i, layer in enumerate(children):
        for name, view in layer.params.items():
            assert np.shares_memory(view, ps.data), (i, name)
            assert np.shares_memory(layer.grads[name], ps.grad), (i, name)
            assert np.shares_memory(model.params[f"{i}.{name}"], view)
            np.testing.assert_array_equal(view, before[i][name])  # values kept when gathered
    # writes through either name are seen by the other
    model.params["4.bias"][...] = 7.0
    np.testing.assert_array_equal(children[4].params["bias"], 7.0)
    children[0].grads["weight"][...] = 1.0
    assert ps.grad.sum() == 12.0
    model.zero_grad()
    assert not np.any(ps.grad) and not np.any(children[0].grads["weight"])
    assert model.num_parameters() == ps.data.size
    assert model.param_sets() == [ps]
    assert len(model) == 5 and model[1] is children[1]


def test_gradcheck_whole_model_with_states_and_lengths():
    model = make_model()
    rng = np.random.default_rng(0)
    T, B = 4, 3
    x = rng.standard_normal((T, B, 3))
    lengths = np.array([4, 2, 3])
    states0 = [rng.standard_normal((B, 4)), rng.standard_normal((B, 4))]
    y, states_n, backprop = model.begin_update(x, states0, lengths=lengths)
    assert y.shape == (T, B, 2) and len(states_n) == 2
    R = rng.standard_normal(y.shape)
    Rs = [rng.standard_normal((B, 4)) for _ in range(2)]
    model.zero_grad()
    dx, dstates0 = backprop(R, Rs)

    def f():
        y, st = model(x, states0, lengths=lengths)
        return float(np.sum(y * R) + sum(np.sum(s * r) for s, r in zip(st, Rs)))

    np.testing.assert_allclose(model.param_set.grad, numeric_grad(f, model.param_set.data), atol=ATOL, rtol=RTOL)
    np.testing.assert_allclose(dx, numeric_grad(f, x), atol=ATOL, rtol=RTOL)
    for k in range(2):
        np.testing.assert_allclose(dstates0[k], numeric_grad(f, states0[k]), atol=ATOL, rtol=RTOL)
    # lengths reach the recurrent children only (Linear and LayerNorm would reject the argument)
    assert all(lens is lengths for lens in model[1].seen_lengths + model[4].seen_lengths)


def test_states_thread_across_chunks():
    model = make_model()
    x = np.random.default_rng(1).standard_normal((6, 2, 3))
    y_full, states_full = model(x)
    y1, states = model(x[:3])
    y2, states = model(x[3:], states)
    np.testing.assert_allclose(np.concatenate([y1, y2]), y_full, rtol=1e-12, atol=1e-12)
    for a, b in zip(states, states_full):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    y_tr, states_tr, _ = model.begin_update(x)
    np.testing.assert_allclose(y_tr, y_full, rtol=1e-12)  # Dropout(0.0) keeps training == inference


def test_embedding_first_gives_none_dx_and_grads_flow():
    model = Sequential(Embedding(5, 3, dtype=np.float64, seed=0), CumScale(3), Linear(3, 5, dtype=np.float64))
    idx = np.array([[0, 1], [4, 1], [2, 2]])
    y, states, bp = model.begin_update(idx)
    R = np.random.default_rng(0).standard_normal(y.shape)
    dx, dstates0 = bp(R)
    assert dx is None and dstates0[0].shape == (2, 3)

    def f():
        return float(np.sum(model(idx)[0] * R))

    np.testing.assert_allclose(model.param_set.grad, numeric_grad(f, model.param_set.data), atol=ATOL, rtol=RTOL)
    assert not np.any(model.grads["0.weight"][3])  # index 3 never used


def test_float32_model_close_to_float64():
    m64, m32 = make_model(np.float64), make_model(np.float32)
    assert m32.param_set.data.dtype == np.float32
    m32.load_state_dict(m64.state_dict())
    x = np.random.default_rng(2).standard_normal((5, 2, 3))
    y64, _, bp64 = m64.begin_update(x)
    y32, _, bp32 = m32.begin_update(x.astype(np.float32))
    np.testing.assert_allclose(y32, y64, atol=1e-5, rtol=1e-4)
    dy = np.random.default_rng(3).standard_normal(y64.shape)
    dx64, _ = bp64(dy)
    dx32, _ = bp32(dy.astype(np.float32))
    np.testing.assert_allclose(dx32, dx64, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(m32.param_set.grad, m64.param_set.grad, atol=1e-5, rtol=1e-4)


def test_state_dict_roundtrip_and_atomic_load():
    a, b = make_model(), make_model()
    b.param_set.data[...] = np.random.default_rng(0).standard_normal(b.param_set.size)
    sd = b.state_dict()
    assert set(sd) == set(b.params) and not any(np.shares_memory(v, b.param_set.data) for v in sd.values())
    a.load_state_dict(sd)
    np.testing.assert_array_equal(a.param_set.data, b.param_set.data)
    np.testing.assert_array_equal(a[5].params["weight"], b[5].params["weight"])
    before = a.param_set.data.copy()
    bad = dict(sd)
    bad["5.weight"] = np.zeros((3, 3))
    bad["2.bias"] = np.full(4, np.nan)
    del bad["0.weight"]
    bad["9.extra"] = np.zeros(1)
    with pytest.raises(ValueError) as err:
        a.load_state_dict(bad)
    msg = str(err.value)
    for part in ("'5.weight': expected shape (2, 4), got (3, 3)", "'2.bias': contains NaN", "missing key '0.weight'",
                 "unexpected key '9.extra'"):
        assert part in msg
    np.testing.assert_array_equal(a.param_set.data, before)


def test_load_state_dict_invalidates_children_caches():
    model = make_model()
    x = np.random.default_rng(0).standard_normal((3, 2, 3))
    y, _, bp = model.begin_update(x)
    v0 = model.param_set.version
    model.load_state_dict(model.state_dict())
    assert model.param_set.version > v0 and model[0].param_set.version > 0
    with pytest.raises(RuntimeError, match="changed between begin_update and backprop"):
        bp(np.ones_like(y))


@pytest.mark.parametrize("make", [lambda: __import__("fastrnn").LSTMCell(3, 4, seed=0),
                                  lambda: __import__("fastrnn").GRUCell(3, 4, seed=0),
                                  lambda: __import__("fastrnn").LSTM(3, 4, num_layers=2, bidirectional=True, seed=0),
                                  lambda: __import__("fastrnn").RNN(3, 4, seed=0)])
def test_gathered_layer_computes_with_the_gathered_buffer(make):
    """Gathering moves a layer's parameters into the container's buffer; the layer (its compiled fast paths
    included) must then read and write there, not in the buffer it was built with: weights set through the
    container change its output, and its gradients land in the container's gradient buffer."""
    layer = make()
    is_cell = not layer.training_state
    x = np.random.default_rng(0).standard_normal((1, 3) if is_cell else (5, 1, 3)).astype(np.float32)
    state = None if not is_cell else ((np.zeros((1, 4), np.float32),) * 2 if "LSTM" in type(layer).__name__
                                      else np.zeros((1, 4), np.float32))
    before = np.array(layer(x, state)[0])
    model = Sequential(layer)
    np.testing.assert_array_equal(np.array(layer(x, state)[0]), before)  # the values moved along
    model.param_set.data[...] = 0      # every weight and bias zero, written through the container
    out = np.array(layer(x, state)[0])
    np.testing.assert_array_equal(out, np.zeros_like(out))  # tanh(0) * sigmoid(0), (1 - z) * n: all zero
    model.param_set.data[...] = 0.1
    y, *_, backprop = layer.begin_update(x, state)  # (out, backprop) for a cell, (y, state_n, backprop) else
    backprop(tuple(np.ones_like(a) for a in y) if isinstance(y, tuple) else np.ones_like(y))
    assert np.abs(model.param_set.grad).sum() > 0


def test_shared_lock_and_nested_sequential():
    inner = Sequential(Linear(3, 4, dtype=np.float64, seed=0), CumScale(4))
    outer = Sequential(inner, Linear(4, 2, dtype=np.float64, seed=1))
    assert list(outer.params) == ["0.0.weight", "0.0.bias", "0.1.scale", "1.weight", "1.bias"]
    for view in list(inner[0].params.values()) + list(inner[1].params.values()) + list(inner.params.values()):
        assert np.shares_memory(view, outer.param_set.data)
    assert inner[0].param_set.lock is outer.param_set.lock is inner.param_set.lock
    x = np.random.default_rng(0).standard_normal((3, 2, 3))
    y, states, bp = outer.begin_update(x, [None])
    assert len(states) == 1 and len(states[0]) == 1  # the inner model's list of states
    R = np.random.default_rng(1).standard_normal(y.shape)
    bp(R, [None])

    def f():
        return float(np.sum(outer(x)[0] * R))

    np.testing.assert_allclose(outer.param_set.grad, numeric_grad(f, outer.param_set.data), atol=ATOL, rtol=RTOL)


def test_bad_construction_and_states():
    shared = Linear(2, 2)
    with pytest.raises(ValueError, match="appears twice"):
        Sequential(shared, shared)
    with pytest.raises(ValueError, match="at least one layer"):
        Sequential()
    with pytest.raises(TypeError, match="child 1 is a ufunc"):
        Sequential(Linear(2, 2), np.tanh)
    a32, b64 = Linear(2, 2, dtype=np.float32, seed=0), Linear(2, 2, dtype=np.float64, seed=0)
    w32 = a32.params["weight"]
    with pytest.raises(TypeError, match="cannot gather a float64 layer into a float32 model"):
        Sequential(a32, b64)
    # the failed gather moved nothing: the children still own their buffers
    assert np.shares_memory(a32.params["weight"], w32) and a32.params["weight"] is w32
    Sequential(shared)
    with pytest.raises(ValueError, match="already belongs to another Sequential"):
        Sequential(shared)
    model = make_model()
    x = np.zeros((2, 1, 3))
    with pytest.raises(ValueError, match="expected 2, got 1"):
        model(x, [None])
    with pytest.raises(TypeError, match="states must be None or a list"):
        model(x, np.zeros((1, 4)))
    _, _, bp = model.begin_update(x)
    with pytest.raises(ValueError, match="dstates_n must have one entry per recurrent child: expected 2, got 3"):
        bp(np.zeros((2, 1, 2)), [None] * 3)


def test_with_real_recurrent_layers_matches_manual_chain():
    recurrent = pytest.importorskip("fastrnn.layers.recurrent")
    rng = np.random.default_rng(0)
    layers = [Embedding(7, 4, dtype=np.float64, seed=0), recurrent.LSTM(4, 5, num_layers=2, dtype=np.float64, seed=1),
              Dropout(0.3, variational=True, seed=2), recurrent.GRU(5, 3, dtype=np.float64, seed=3),
              Linear(3, 7, dtype=np.float64, seed=4)]
    model = Sequential(*layers)
    idx = rng.integers(0, 7, (5, 2))
    lengths = np.array([5, 3])
    y, states_n, bp = model.begin_update(idx, lengths=lengths)
    dy = rng.standard_normal(y.shape)
    dx, dstates0 = bp(dy)
    assert dx is None and isinstance(dstates0[0], tuple) and dstates0[1].shape == (1, 2, 3)
    got = model.param_set.grad.copy()
    # the same children chained by hand, with a fresh dropout generator of the same seed
    model.zero_grad()
    layers[2]._rng = np.random.default_rng(2)
    h, bp0 = layers[0].begin_update(idx)
    h, s1, bp1 = layers[1].begin_update(h, None, lengths=lengths)
    h, bp2 = layers[2].begin_update(h)
    h, s3, bp3 = layers[3].begin_update(h, None, lengths=lengths)
    h, bp4 = layers[4].begin_update(h)
    np.testing.assert_array_equal(h, y)
    np.testing.assert_array_equal(s3, states_n[1])
    d = bp4(dy)
    d, _ = bp3(d)
    d = bp2(d)
    d, _ = bp1(d)
    bp0(d)
    np.testing.assert_array_equal(model.param_set.grad, got)


def test_names_and_weights_match_torch_sequential():
    torch = pytest.importorskip("torch")
    recurrent = pytest.importorskip("fastrnn.layers.recurrent")
    ref = torch.nn.Sequential(torch.nn.Embedding(6, 3), torch.nn.LSTM(3, 4), torch.nn.Dropout(0.1),
                              torch.nn.Linear(4, 6)).double()
    model = Sequential(Embedding(6, 3, dtype=np.float64), recurrent.LSTM(3, 4, dtype=np.float64), Dropout(0.1),
                       Linear(4, 6, dtype=np.float64))
    sd = ref.state_dict()
    assert list(model.params) == list(sd)
    model.load_state_dict(sd)
    idx = np.random.default_rng(0).integers(0, 6, (4, 2))
    with torch.no_grad():
        h, (h_n, c_n) = ref[1](ref[0](torch.from_numpy(idx)))
        want = ref[3](h).numpy()
    y, states = model(idx)
    np.testing.assert_allclose(y, want, atol=1e-12, rtol=1e-10)
    np.testing.assert_allclose(states[0][0], h_n.numpy(), atol=1e-12, rtol=1e-10)


def test_model_learns_with_plain_sgd_on_the_flat_buffer():
    recurrent = pytest.importorskip("fastrnn.layers.recurrent")
    from fastrnn.losses import softmax_cross_entropy

    rng = np.random.default_rng(0)
    model = Sequential(Embedding(8, 6, seed=0), recurrent.GRU(6, 16, seed=1), Dropout(0.1, variational=True, seed=2),
                       LayerNorm(16), Linear(16, 8, seed=3))
    x = rng.integers(0, 8, (12, 4))
    target = np.roll(x, -1, axis=0)  # predict the next token of a memorisable sequence
    losses = []
    for _ in range(40):
        y, _, bp = model.begin_update(x)
        loss, dy = softmax_cross_entropy(y, target)
        losses.append(loss)
        model.zero_grad()
        bp(dy)
        # one update of the whole model through its one flat buffer
        model.param_set.data -= 0.5 * model.param_set.grad
        model.param_set.bump()
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.6 * losses[0]


def test_config_round_trip_rebuilds_the_same_architecture():
    pytest.importorskip("fastrnn.io")
    model = Sequential(Embedding(9, 4, padding_idx=0, dtype=np.float64), Dropout(0.2, variational=True),
                       Sequential(Linear(4, 5, bias=False, dtype=np.float64), LayerNorm(5, dtype=np.float64)),
                       Linear(5, 9, dtype=np.float64))
    config = model.get_config()
    assert [spec["class"] for spec in config["layers"]] == ["Embedding", "Dropout", "Sequential", "Linear"]
    rebuilt = Sequential.from_config(config)
    assert list(rebuilt.params) == list(model.params)
    assert rebuilt.get_config() == config
    rebuilt.load_state_dict(model.state_dict())
    idx = np.random.default_rng(0).integers(0, 9, (3, 2))
    np.testing.assert_array_equal(rebuilt(idx)[0], model(idx)[0])
    with pytest.raises(ValueError, match="a Sequential config must be"):
        Sequential.from_config({"layers": "Linear"})
