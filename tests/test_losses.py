"""softmax_cross_entropy and mse_loss: gradient checks, torch agreement, ignore_index, bad inputs."""
import warnings

import numpy as np
import pytest

from fastrnn.losses import mse_loss, softmax_cross_entropy

from gradcheck import ATOL, EPS, RTOL, numeric_grad  # noqa: E402




def reference_ce(z, k, ignore_index=None):
    """Per-position cross-entropy, written plainly: -log softmax(z)[k]; ignored positions 0."""
    z2, k1 = z.reshape(-1, z.shape[-1]), k.reshape(-1)
    out = np.zeros(len(k1))
    for n in range(len(k1)):
        if ignore_index is not None and k1[n] == ignore_index:
            continue
        p = np.exp(z2[n] - z2[n].max())
        out[n] = -np.log(p[k1[n]] / p.sum())
    return out.reshape(k.shape)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore_index", [None, 2, -100])
def test_cross_entropy_gradcheck_float64(reduction, ignore_index):
    rng = np.random.default_rng(0)
    T, B, V = 3, 2, 5
    z = rng.standard_normal((T, B, V))
    k = rng.integers(0, V, (T, B))
    if ignore_index == -100:
        k[0, 1] = -100
    loss, dz = softmax_cross_entropy(z, k, ignore_index=ignore_index, reduction=reduction)
    per = reference_ce(z, k, ignore_index)
    n_valid = per.size if ignore_index is None else int(np.sum(k != ignore_index))
    if reduction == "none":
        np.testing.assert_allclose(loss, per, rtol=1e-12)
        f = lambda: float(np.sum(softmax_cross_entropy(z, k, ignore_index, "none")[0]))  # noqa: E731
    else:
        expect = per.sum() / (n_valid if reduction == "mean" else 1)
        assert isinstance(loss, float)
        np.testing.assert_allclose(loss, expect, rtol=1e-12)
        f = lambda: softmax_cross_entropy(z, k, ignore_index, reduction)[0]  # noqa: E731
    assert dz.shape == z.shape and dz.dtype == np.float64
    np.testing.assert_allclose(dz, numeric_grad(f, z), atol=ATOL, rtol=RTOL)
    if ignore_index is not None:
        assert not np.any(dz[k == ignore_index])


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_matches_torch(reduction):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    z = rng.standard_normal((4, 3, 7)) * 3
    k = rng.integers(0, 7, (4, 3))
    k[1, :] = 0  # ignored
    zt = torch.from_numpy(z).requires_grad_(True)
    lt = torch.nn.functional.cross_entropy(zt.reshape(-1, 7), torch.from_numpy(k).reshape(-1), ignore_index=0,
                                           reduction=reduction)
    lt.backward()
    loss, dz = softmax_cross_entropy(z, k, ignore_index=0, reduction=reduction)
    np.testing.assert_allclose(loss, lt.item(), rtol=1e-12)
    np.testing.assert_allclose(dz, zt.grad.numpy(), atol=1e-14, rtol=1e-10)
    # float32 against torch's float64 result
    loss32, dz32 = softmax_cross_entropy(z.astype(np.float32), k, ignore_index=0, reduction=reduction)
    assert dz32.dtype == np.float32
    np.testing.assert_allclose(loss32, lt.item(), rtol=1e-5)
    np.testing.assert_allclose(dz32, zt.grad.numpy(), atol=1e-6, rtol=1e-4)


def test_cross_entropy_is_stable_for_huge_logits():
    z = np.array([[1e4, 0.0, -1e4], [3e38, 3e38, 0.0]], np.float32)
    k = np.array([1, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, dz = softmax_cross_entropy(z, k, reduction="none")
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(dz))
    np.testing.assert_allclose(loss, [1e4, 3e38], rtol=1e-6)
    np.testing.assert_allclose(dz[0], [1.0, -1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(dz[1], [0.5, 0.5, -1.0], atol=1e-6)


def test_cross_entropy_all_ignored_gives_zero_not_nan():
    z = np.random.default_rng(0).standard_normal((3, 4))
    k = np.full(3, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, dz = softmax_cross_entropy(z, k, ignore_index=-1)
    assert loss == 0.0
    assert dz.shape == z.shape and not np.any(dz)
    loss, dz = softmax_cross_entropy(np.zeros((0, 4)), np.zeros(0, np.int64))
    assert loss == 0.0 and dz.shape == (0, 4)


def test_cross_entropy_float32_close_to_float64():
    rng = np.random.default_rng(2)
    z = rng.standard_normal((50, 30))
    k = rng.integers(0, 30, 50)
    l64, d64 = softmax_cross_entropy(z, k)
    l32, d32 = softmax_cross_entropy(z.astype(np.float32), k)
    assert d32.dtype == np.float32
    np.testing.assert_allclose(l32, l64, rtol=1e-6)
    np.testing.assert_allclose(d32, d64, atol=1e-7, rtol=1e-4)


def test_cross_entropy_does_not_mutate_inputs():
    rng = np.random.default_rng(3)
    z = rng.standard_normal((4, 5))
    k = rng.integers(0, 5, 4)
    z0, k0 = z.copy(), k.copy()
    softmax_cross_entropy(z, k)
    np.testing.assert_array_equal(z, z0)
    np.testing.assert_array_equal(k, k0)


def test_cross_entropy_bad_inputs():
    z = np.zeros((3, 4))
    with pytest.raises(TypeError, match="targets must be integer class indices, got dtype float64"):
        softmax_cross_entropy(z, np.zeros(3))
    with pytest.raises(TypeError, match="targets must be an integer array"):
        softmax_cross_entropy(z, None)
    with pytest.raises(ValueError, match=r"targets must have shape logits.shape\[:-1\]=\(3,\); got \(4,\)"):
        softmax_cross_entropy(z, np.zeros(4, int))
    with pytest.raises(ValueError, match=r"targets must be in \[0, V=4\); found 4 at \(1,\)"):
        softmax_cross_entropy(z, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"or ignore_index=-100; found -1"):
        softmax_cross_entropy(z, np.array([0, -1, -100]), ignore_index=-100)
    with pytest.raises(ValueError, match="reduction must be one of"):
        softmax_cross_entropy(z, np.zeros(3, int), reduction="avg")
    with pytest.raises(ValueError, match="0-d"):
        softmax_cross_entropy(1.0, np.zeros((), int))
    with pytest.raises(ValueError, match="at least one class"):
        softmax_cross_entropy(np.zeros((3, 0)), np.zeros(3, int))
    with pytest.raises(TypeError, match="logits must hold real numbers"):
        softmax_cross_entropy(np.zeros((3, 4), bool), np.zeros(3, int))
    with pytest.raises(TypeError, match="ignore_index must be an integer"):
        softmax_cross_entropy(z, np.zeros(3, int), ignore_index=1.5)


# ---- mean squared error ----------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_gradcheck_float64(reduction):
    rng = np.random.default_rng(0)
    p = rng.standard_normal((3, 2, 4))
    y = rng.standard_normal((3, 2, 4))
    loss, dp = mse_loss(p, y, reduction)
    sq = (p - y) ** 2
    if reduction == "none":
        np.testing.assert_allclose(loss, sq, rtol=1e-14)
        f = lambda: float(np.sum(mse_loss(p, y, "none")[0]))  # noqa: E731
    else:
        np.testing.assert_allclose(loss, sq.mean() if reduction == "mean" else sq.sum(), rtol=1e-12)
        f = lambda: mse_loss(p, y, reduction)[0]  # noqa: E731
    np.testing.assert_allclose(dp, numeric_grad(f, p), atol=ATOL, rtol=RTOL)


def test_mse_matches_torch_and_float32():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    p = rng.standard_normal((5, 3))
    y = rng.standard_normal((5, 3))
    pt = torch.from_numpy(p).requires_grad_(True)
    lt = torch.nn.functional.mse_loss(pt, torch.from_numpy(y))
    lt.backward()
    loss, dp = mse_loss(p, y)
    np.testing.assert_allclose(loss, lt.item(), rtol=1e-12)
    np.testing.assert_allclose(dp, pt.grad.numpy(), rtol=1e-12)
    loss32, dp32 = mse_loss(p.astype(np.float32), y)
    assert dp32.dtype == np.float32
    np.testing.assert_allclose(loss32, lt.item(), rtol=1e-5)


def test_mse_edge_and_bad_inputs():
    loss, dp = mse_loss(np.zeros((0, 3)), np.zeros((0, 3)))
    assert loss == 0.0 and dp.shape == (0, 3)
    loss, dp = mse_loss(2.0, 1.0)
    assert loss == 1.0 and np.shape(dp) == () and float(dp) == 2.0
    with pytest.raises(ValueError, match=r"target must have the shape of pred, \(3, 2\); got \(3,\)"):
        mse_loss(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(TypeError, match="pred must"):
        mse_loss(None, np.zeros(3))
    with pytest.raises(ValueError, match="reduction must be one of"):
        mse_loss(np.zeros(3), np.zeros(3), reduction="avg")
