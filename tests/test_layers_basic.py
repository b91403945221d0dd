"""Linear, Embedding, Dropout and LayerNorm: gradient checks, torch agreement, bad inputs, seeds."""
import numpy as np
import pytest

from fastrnn.layers.dropout import Dropout
from fastrnn.layers.embedding import Embedding
from fastrnn.layers.layernorm import LayerNorm
from fastrnn.layers.linear import Linear

from gradcheck import ATOL, EPS, RTOL, numeric_grad  # noqa: E402




def check_layer_grads(layer, x, check_dx=True, seed=0):
    """Full-Jacobian check of every parameter (and dx) for loss = sum(y * R)."""
    rng = np.random.default_rng(seed)
    y, backprop = layer.begin_update(x)
    R = rng.standard_normal(y.shape)
    layer.zero_grad()
    dx = backprop(R)

    def f():
        return float(np.sum(layer(x) * R))

    for name, p in layer.params.items():
        num = numeric_grad(f, p)
        np.testing.assert_allclose(layer.grads[name], num, atol=ATOL, rtol=RTOL, err_msg=name)
    if check_dx:
        num = numeric_grad(f, x)
        np.testing.assert_allclose(dx, num, atol=ATOL, rtol=RTOL, err_msg="dx")
    return dx


# ---- Linear ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(4,), (3, 4), (3, 2, 4)])
def test_linear_gradcheck_float64(bias, shape):
    layer = Linear(4, 3, bias=bias, dtype=np.float64, seed=1)
    x = np.random.default_rng(2).standard_normal(shape)
    assert set(layer.params) == ({"weight", "bias"} if bias else {"weight"})
    check_layer_grads(layer, x)


def test_linear_forward_matches_formula_and_float32():
    rng = np.random.default_rng(0)
    l64 = Linear(5, 7, dtype=np.float64, seed=3)
    l32 = Linear(5, 7, dtype=np.float32, seed=3)
    np.testing.assert_array_equal(l32.params["weight"], l64.params["weight"].astype(np.float32))
    x = rng.standard_normal((4, 3, 5))
    y = l64(x)
    np.testing.assert_allclose(y, x @ l64.params["weight"].T + l64.params["bias"], rtol=1e-12, atol=1e-12)
    y32, bp32 = l32.begin_update(x.astype(np.float32))
    assert y32.dtype == np.float32 and y32.shape == (4, 3, 7)
    np.testing.assert_allclose(y32, y, atol=1e-5, rtol=1e-4)
    _, bp64 = l64.begin_update(x)
    dy = rng.standard_normal((4, 3, 7))
    dx32, dx64 = bp32(dy.astype(np.float32)), bp64(dy)
    assert dx32.dtype == np.float32
    np.testing.assert_allclose(dx32, dx64, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(l32.grads["weight"], l64.grads["weight"], atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(l32.grads["bias"], l64.grads["bias"], atol=1e-5, rtol=1e-4)


def test_linear_init_like_torch_and_seeded():
    layer = Linear(16, 8, seed=5)
    bound = 1 / np.sqrt(16)
    W, b = layer.params["weight"], layer.params["bias"]
    assert W.shape == (8, 16) and b.shape == (8,)
    assert np.all(np.abs(W) <= bound) and np.all(np.abs(b) <= bound)
    assert W.std() > bound / 3  # spread over the interval, not all zero
    np.testing.assert_array_equal(Linear(16, 8, seed=5).params["weight"], W)
    assert not np.array_equal(Linear(16, 8, seed=6).params["weight"], W)


def test_linear_grads_accumulate_and_zero_grad():
    layer = Linear(3, 2, dtype=np.float64, seed=0)
    x = np.random.default_rng(1).standard_normal((5, 3))
    dy = np.random.default_rng(2).standard_normal((5, 2))
    _, bp = layer.begin_update(x)
    bp(dy)
    once = layer.param_set.grad.copy()
    assert np.any(once != 0)
    _, bp = layer.begin_update(x)
    bp(dy)
    np.testing.assert_allclose(layer.param_set.grad, 2 * once, rtol=1e-14)
    layer.zero_grad()
    assert not np.any(layer.param_set.grad)


def test_linear_cache_is_private_and_version_checked():
    layer = Linear(3, 2, dtype=np.float64, seed=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3))
    dy = rng.standard_normal((4, 2))
    _, bp = layer.begin_update(x)
    x_orig = x.copy()
    x[...] = 100.0  # changing the input after the call must not change the gradients
    bp(dy)
    np.testing.assert_allclose(layer.grads["weight"], dy.T @ x_orig, rtol=1e-12)
    _, bp = layer.begin_update(x_orig)
    layer.load_state_dict(layer.state_dict())
    with pytest.raises(RuntimeError, match="changed between begin_update and backprop"):
        bp(dy)


def test_linear_layouts_give_the_same_result():
    layer = Linear(4, 3, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((6, 2, 4))
    ref = layer(x)
    np.testing.assert_array_equal(layer(np.asfortranarray(x)), ref)
    big = np.random.default_rng(1).standard_normal((12, 2, 4))
    big[::2] = x
    np.testing.assert_array_equal(layer(big[::2]), ref)
    ro = x.copy()
    ro.setflags(write=False)
    np.testing.assert_array_equal(layer(ro), ref)
    np.testing.assert_allclose(layer(x.astype(np.float32)), layer(x.astype(np.float32).astype(np.float64)))


def test_linear_bad_inputs():
    with pytest.raises(ValueError, match="in_features must be >= 1, got 0"):
        Linear(0, 3)
    with pytest.raises(TypeError, match="out_features must be an integer"):
        Linear(3, 2.0)
    with pytest.raises(TypeError, match="dtype"):
        Linear(3, 2, dtype=np.float16)
    layer = Linear(4, 3)
    with pytest.raises(ValueError, match=r"x.shape\[-1\] must equal in_features=4; got 7"):
        layer(np.zeros((2, 7)))
    with pytest.raises(ValueError, match="0-d"):
        layer(np.float32(1.0))
    with pytest.raises(TypeError, match="x must"):
        layer(None)
    with pytest.raises(TypeError, match="real numbers"):
        layer(np.zeros((2, 4), bool))
    _, bp = layer.begin_update(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"dy must have the shape of y, \(2, 3\); got \(3, 2\)"):
        bp(np.zeros((3, 2)))
    assert not np.any(layer.param_set.grad)


def test_linear_matches_torch():
    torch = pytest.importorskip("torch")
    layer = Linear(5, 4, dtype=np.float64, seed=0)
    ref = torch.nn.Linear(5, 4).double()
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 5))
    dy = rng.standard_normal((3, 2, 4))
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = ref(xt)
    yt.backward(torch.from_numpy(dy))
    y, bp = layer.begin_update(x)
    dx = bp(dy)
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-12, rtol=1e-10)
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-12, rtol=1e-10)
    np.testing.assert_allclose(layer.grads["weight"], ref.weight.grad.numpy(), atol=1e-12, rtol=1e-10)
    np.testing.assert_allclose(layer.grads["bias"], ref.bias.grad.numpy(), atol=1e-12, rtol=1e-10)


# ---- Embedding -------------------------------------------------------------------------------------


def test_embedding_forward_and_gradcheck():
    emb = Embedding(6, 3, dtype=np.float64, seed=0)
    idx = np.array([[1, 2, 1], [5, 1, 0]])
    y, bp = emb.begin_update(idx)
    assert y.shape == (2, 3, 3)
    np.testing.assert_array_equal(y, emb.params["weight"][idx])
    R = np.random.default_rng(1).standard_normal(y.shape)
    assert bp(R) is None
    num = numeric_grad(lambda: float(np.sum(emb(idx) * R)), emb.params["weight"])
    np.testing.assert_allclose(emb.grads["weight"], num, atol=ATOL, rtol=RTOL)
    # row 1 appears three times: its gradient is the sum of the three dy rows
    np.testing.assert_allclose(emb.grads["weight"][1], R[0, 0] + R[0, 2] + R[1, 1], rtol=1e-12)
    assert not np.any(emb.grads["weight"][3])


def test_embedding_padding_idx():
    emb = Embedding(5, 4, padding_idx=-1, dtype=np.float64, seed=0)
    assert emb.padding_idx == 4
    assert not np.any(emb.params["weight"][4]) and np.all(emb.params["weight"][:4] != 0)
    idx = np.array([4, 0, 4, 2])
    y, bp = emb.begin_update(idx)
    assert not np.any(y[[0, 2]])
    bp(np.ones_like(y))
    assert not np.any(emb.grads["weight"][4])
    np.testing.assert_array_equal(emb.grads["weight"][0], 1.0)
    np.testing.assert_array_equal(emb.grads["weight"][2], 1.0)


def test_embedding_backprop_matches_add_at_and_accumulates():
    # many repeated indices, in random order, added into gradients that already hold values
    rng = np.random.default_rng(3)
    emb = Embedding(7, 5, padding_idx=3, dtype=np.float64, seed=0)
    start = rng.standard_normal((7, 5))
    emb.grads["weight"][...] = start
    expected = start.copy()
    for _ in range(2):
        idx = rng.integers(0, 7, size=(40, 9))
        dy = rng.standard_normal((40, 9, 5))
        _, bp = emb.begin_update(idx)
        bp(dy)
        keep = idx.reshape(-1) != 3
        np.add.at(expected, idx.reshape(-1)[keep], dy.reshape(-1, 5)[keep])
    np.testing.assert_allclose(emb.grads["weight"], expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(emb.grads["weight"][3], start[3])
    # only padding: nothing is added
    before = emb.grads["weight"].copy()
    _, bp = emb.begin_update(np.full((4,), 3))
    bp(np.ones((4, 5)))
    np.testing.assert_array_equal(emb.grads["weight"], before)


def test_embedding_seed_dtype_and_shapes():
    a, b = Embedding(7, 3, seed=3), Embedding(7, 3, seed=3)
    np.testing.assert_array_equal(a.params["weight"], b.params["weight"])
    assert a.params["weight"].dtype == np.float32
    assert a(np.array(3)).shape == (3,)
    assert a(np.zeros((2, 0), np.int64)).shape == (2, 0, 3)
    assert a(np.array([1, 2], np.uint8)).shape == (2, 3)
    assert a([[1, 2]]).shape == (1, 2, 3)


def test_embedding_bad_inputs():
    emb = Embedding(5, 2)
    with pytest.raises(TypeError, match="indices must be integers.*float64"):
        emb(np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="indices must be integers.*bool"):
        emb(np.array([True]))
    with pytest.raises(TypeError, match="indices must be an integer array"):
        emb(None)
    with pytest.raises(ValueError, match=r"indices must be in \[0, num_embeddings=5\); found 5 at index \(1, 0\)"):
        emb(np.array([[0], [5]]))
    with pytest.raises(ValueError, match="found -1"):
        emb(np.array([-1, 0]))
    with pytest.raises(ValueError, match="padding_idx must be within"):
        Embedding(5, 2, padding_idx=5)
    with pytest.raises(TypeError, match="padding_idx must be an integer"):
        Embedding(5, 2, padding_idx=1.0)
    with pytest.raises(ValueError, match="embedding_dim must be >= 1"):
        Embedding(5, 0)
    _, bp = emb.begin_update(np.array([1, 2]))
    with pytest.raises(ValueError, match=r"dy must have the shape of y, \(2, 2\)"):
        bp(np.zeros((2, 3)))


def test_embedding_matches_torch():
    torch = pytest.importorskip("torch")
    emb = Embedding(6, 3, padding_idx=2, dtype=np.float64, seed=0)
    ref = torch.nn.Embedding(6, 3, padding_idx=2).double()
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in emb.state_dict().items()})
    idx = np.array([[2, 1, 1], [0, 2, 5]])
    dy = np.random.default_rng(0).standard_normal((2, 3, 3))
    yt = ref(torch.from_numpy(idx))
    yt.backward(torch.from_numpy(dy))
    y, bp = emb.begin_update(idx)
    bp(dy)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(emb.grads["weight"], ref.weight.grad.numpy(), atol=1e-12, rtol=1e-10)
    # torch also zeroes the padding row at initialisation
    assert not torch.nn.Embedding(6, 3, padding_idx=2).weight[2].any()


# ---- Dropout ---------------------------------------------------------------------------------------


def test_dropout_inference_is_identity():
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    y = Dropout(0.5, seed=0)(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, x)


def test_dropout_masks_scale_and_backprop():
    p = 0.3
    x = np.random.default_rng(0).uniform(1, 2, (200, 50))
    layer = Dropout(p, seed=1)
    y, bp = layer.begin_update(x)
    kept = y != 0
    assert abs(1 - kept.mean() - p) < 0.02
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-14)
    dy = np.random.default_rng(2).standard_normal(x.shape)
    dx = bp(dy)
    # y is linear in x with the mask fixed: dx = dy * y / x
    np.testing.assert_allclose(dx, dy * y / x, rtol=1e-12, atol=1e-15)


def test_dropout_reproducible_with_seed():
    x = np.ones((5, 4, 3))
    for variational in (False, True):
        a, b = Dropout(0.5, variational, seed=7), Dropout(0.5, variational, seed=7)
        ya1, ya2 = a.begin_update(x)[0], a.begin_update(x)[0]
        yb1, yb2 = b.begin_update(x)[0], b.begin_update(x)[0]
        np.testing.assert_array_equal(ya1, yb1)
        np.testing.assert_array_equal(ya2, yb2)
        assert not np.array_equal(ya1, ya2)  # the generator advances between calls
        assert not np.array_equal(ya1, Dropout(0.5, variational, seed=8).begin_update(x)[0])


def test_variational_dropout_mask_constant_over_time():
    T, B, F = 9, 4, 6
    x = np.random.default_rng(0).uniform(1, 2, (T, B, F)).astype(np.float32)
    layer = Dropout(0.4, variational=True, seed=3)
    y, bp = layer.begin_update(x)
    assert y.dtype == np.float32
    mask = y / x
    for t in range(1, T):
        np.testing.assert_array_equal(mask[t] != 0, mask[0] != 0)
    assert np.any(mask[0] == 0) and np.any(mask[0] != 0)
    # different sequences (batch rows) get different masks
    assert any(not np.array_equal(mask[0, b] != 0, mask[0, 0] != 0) for b in range(1, B))
    dx = bp(np.ones_like(x))
    np.testing.assert_array_equal(dx != 0, np.broadcast_to(mask[0] != 0, x.shape))
    # the plain layer does not repeat masks over time
    y2, _ = Dropout(0.4, seed=3).begin_update(x)
    assert not all(np.array_equal(y2[t] != 0, y2[0] != 0) for t in range(1, T))


def test_dropout_p_zero_and_bad_values():
    x = np.arange(6.0).reshape(2, 3)
    y, bp = Dropout(0.0).begin_update(x)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(bp(x), x)
    for p in (1.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="p must"):
            Dropout(p)
    with pytest.raises(TypeError, match="p must be a real number"):
        Dropout("0.5")
    with pytest.raises(ValueError, match="variational dropout needs time-major input"):
        Dropout(0.5, variational=True).begin_update(np.ones(4))
    _, bp = Dropout(0.5).begin_update(x)
    with pytest.raises(ValueError, match=r"dy must have the shape of y, \(2, 3\); got \(3, 2\)"):
        bp(np.ones((3, 2)))


# ---- LayerNorm -------------------------------------------------------------------------------------


@pytest.mark.parametrize("affine,bias", [(True, True), (True, False), (False, False)])
def test_layernorm_gradcheck_float64(affine, bias):
    layer = LayerNorm(5, elementwise_affine=affine, bias=bias, dtype=np.float64)
    rng = np.random.default_rng(0)
    if affine:
        layer.params["weight"][...] = rng.uniform(0.5, 1.5, 5)
        if bias:
            layer.params["bias"][...] = rng.standard_normal(5)
    assert len(layer.params) == int(affine) + int(bias)
    x = rng.standard_normal((3, 2, 5))
    check_layer_grads(layer, x)


def test_layernorm_normalises_and_float32():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 8)) * 3 + 2
    y = LayerNorm(8, dtype=np.float64)(x)
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(-1), 1, rtol=1e-4)  # eps in the denominator
    y32, bp32 = LayerNorm(8, dtype=np.float32).begin_update(x.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y, atol=1e-5, rtol=1e-4)
    dy = rng.standard_normal(x.shape)
    _, bp64 = LayerNorm(8, dtype=np.float64).begin_update(x)
    np.testing.assert_allclose(bp32(dy.astype(np.float32)), bp64(dy), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_layernorm_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    tol = dict(atol=1e-10, rtol=1e-10) if dtype == np.float64 else dict(atol=1e-5, rtol=1e-4)
    rng = np.random.default_rng(0)
    layer = LayerNorm(6, eps=1e-3, dtype=dtype)
    layer.params["weight"][...] = rng.uniform(0.5, 1.5, 6)
    layer.params["bias"][...] = rng.standard_normal(6)
    ref = torch.nn.LayerNorm(6, eps=1e-3).to(tdt)
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    x = rng.standard_normal((4, 2, 6)).astype(dtype)
    dy = rng.standard_normal((4, 2, 6)).astype(dtype)
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = ref(xt)
    yt.backward(torch.from_numpy(dy))
    y, bp = layer.begin_update(x)
    dx = bp(dy)
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    np.testing.assert_allclose(layer.grads["weight"], ref.weight.grad.numpy(), **tol)
    np.testing.assert_allclose(layer.grads["bias"], ref.bias.grad.numpy(), **tol)


def test_layernorm_bad_inputs():
    with pytest.raises(TypeError, match="normalized_shape must be an integer"):
        LayerNorm(4.0)
    with pytest.raises(ValueError, match="normalized_shape must be an int .* or a 1-tuple"):
        LayerNorm((2, 3))
    with pytest.raises(ValueError, match="eps must be > 0"):
        LayerNorm(4, eps=0)
    assert LayerNorm((4,)).normalized_shape == 4
    layer = LayerNorm(4)
    with pytest.raises(ValueError, match=r"x.shape\[-1\] must equal normalized_shape=4; got 3"):
        layer(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="x must"):
        layer("abc")
