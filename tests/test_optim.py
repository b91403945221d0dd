"""Optimizers, gradient clipping and learning-rate schedules.

Checked against hand-computed steps, against the numpy formulas, and against torch.optim (when torch
is installed) over several steps in float64 (round-off agreement) and float32.
"""
import math

import numpy as np
import pytest

from fastrnn._kernels import optim as kernels
from fastrnn.layers.base import Layer
from fastrnn.optim import SGD, Adam, AdamW, clip_grad_norm
from fastrnn.schedules import CosineAnnealingLR, LinearWarmup, StepLR

DTYPES = [np.float32, np.float64]


class Tiny(Layer):
    """A two-tensor layer (w: (2, 3), b: (3,)) standing in for a real model."""

    def __init__(self, dtype=np.float64, seed=0):
        super().__init__([("w", (2, 3)), ("b", (3,))], dtype)
        self.param_set.data[...] = np.random.default_rng(seed).standard_normal(self.param_set.size)


class Pair(Layer):
    """A container of two Tiny layers, listing one of them twice (a shared layer)."""

    def __init__(self, dtype=np.float64):
        super().__init__((), dtype)
        self.a, self.b = Tiny(dtype, 1), Tiny(dtype, 2)

    def param_sets(self):
        return [self.a.param_set, self.b.param_set, self.a.param_set]


def set_grads(model, rng):
    for s in model.param_sets():
        s.grad[...] = rng.standard_normal(s.size)


def snapshot(model, opt=None):
    out = [s.data.copy() for s in model.param_sets()] + [s.grad.copy() for s in model.param_sets()]
    if opt is not None:
        out += [buf.copy() for bufs in opt.state.values() for buf in bufs]
        out += [opt.step_count, opt.lr]
    return out


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if isinstance(x, np.ndarray):
            assert x.tobytes() == y.tobytes()
        else:
            assert x == y


# ---- kernels against the numpy formulas ---------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nesterov,dampening,wd", [(False, 0.0, 0.0), (True, 0.0, 0.1), (False, 0.3, 0.05)])
def test_sgd_kernel_matches_numpy(dtype, nesterov, dampening, wd):
    rng = np.random.default_rng(0)
    n, lr, mom = 37, 0.1, 0.9
    p, buf = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    p_ref, buf_ref = p.astype(np.float64), buf.astype(np.float64)
    d = g + wd * p_ref
    buf_ref = mom * buf_ref + (1 - dampening) * d
    p_ref = p_ref - lr * (d + mom * buf_ref if nesterov else buf_ref)
    kernels.sgd_step(p, g, buf, lr, mom, dampening, wd, nesterov, False)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(p, p_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(buf, buf_ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_kernel_matches_numpy(dtype, decoupled):
    rng = np.random.default_rng(1)
    n, lr, b1, b2, eps, wd, k = 41, 0.01, 0.9, 0.99, 1e-8, 0.1, 3
    p, g = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    m, v = rng.standard_normal(n).astype(dtype), rng.random(n).astype(dtype)
    P, G, M, V = (a.astype(np.float64) for a in (p, g, m, v))
    if decoupled:
        P = P * (1 - lr * wd)
    else:
        G = G + wd * P
    M = b1 * M + (1 - b1) * G
    V = b2 * V + (1 - b2) * G * G
    P = P - lr / (1 - b1**k) * M / (np.sqrt(V) / np.sqrt(1 - b2**k) + eps)
    kernels.adam_step(p, g, m, v, lr, b1, b2, eps, wd, decoupled, k)
    tol = 2e-6 if dtype == np.float32 else 1e-13
    for got, want in ((p, P), (m, M), (v, V)):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_kernels_refuse_mismatched_buffers():
    a, b = np.zeros(4), np.zeros(5)
    with pytest.raises(ValueError, match="grad: expected 4 elements"):
        kernels.sgd_step(a, b, None, 0.1, 0.0, 0.0, 0.0, False, True)
    with pytest.raises(ValueError, match="velocity: required"):
        kernels.sgd_step(a, a.copy(), None, 0.1, 0.9, 0.0, 0.0, False, True)
    with pytest.raises(ValueError, match="v: expected 4"):
        kernels.adam_step(a, a.copy(), a.copy(), b, 0.1, 0.9, 0.999, 1e-8, 0.0, False, 1)
    with pytest.raises(ValueError, match="step: expected >= 1"):
        kernels.adam_step(a, a.copy(), a.copy(), a.copy(), 0.1, 0.9, 0.999, 1e-8, 0.0, False, 0)
    with pytest.raises(ValueError, match="dtype mismatch"):  # float32 parameters with a float64 gradient
        kernels.sgd_step(a.astype(np.float32), a, None, 0.1, 0.0, 0.0, 0.0, False, True)


def test_norm2_and_count_nonfinite():
    x = np.array([3.0, 4.0, 12.0])
    assert kernels.norm2(x) == pytest.approx(13.0, rel=1e-15)
    assert kernels.norm2(np.array([3e30, 4e30], np.float32)) == pytest.approx(5e30, rel=1e-6)  # no overflow
    assert kernels.norm2(np.array([3e300, 4e300])) == pytest.approx(5e300, rel=1e-14)
    assert kernels.norm2(np.zeros(0)) == 0.0
    y = np.array([1.0, np.nan, np.inf, -np.inf, 0.0])
    assert kernels.count_nonfinite(y) == 3 and kernels.count_nonfinite(y.astype(np.float32)) == 3


# ---- hand-computed steps -----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_plain_step_by_hand(dtype):
    model = Tiny(dtype)
    p0 = model.param_set.data.copy()
    model.param_set.grad[...] = np.arange(9, dtype=dtype)
    SGD(model, lr=0.5).step()
    np.testing.assert_array_equal(model.param_set.data, p0 - dtype(0.5) * np.arange(9, dtype=dtype))


def test_sgd_momentum_two_steps_by_hand():
    model = Tiny()
    p0 = model.param_set.data.copy()
    opt = SGD(model, lr=0.1, momentum=0.9)
    g1, g2 = np.full(9, 1.0), np.full(9, 2.0)
    model.param_set.grad[...] = g1
    opt.step()                          # buf = g1 = 1;             p = p0 - 0.1
    model.param_set.grad[...] = g2
    opt.step()                          # buf = 0.9 * 1 + 2 = 2.9;  p = p0 - 0.1 - 0.29
    np.testing.assert_allclose(model.param_set.data, p0 - 0.39, rtol=0, atol=1e-15)
    np.testing.assert_allclose(opt.state["momentum_buffer"][0], 2.9, rtol=0, atol=1e-15)


def test_sgd_nesterov_and_weight_decay_by_hand():
    model = Tiny()
    model.param_set.data[...] = 2.0
    model.param_set.grad[...] = 1.0
    SGD(model, lr=0.1, momentum=0.5, weight_decay=0.25, nesterov=True).step()
    # d = 1 + 0.25 * 2 = 1.5; buf = 1.5; d = 1.5 + 0.5 * 1.5 = 2.25; p = 2 - 0.225
    np.testing.assert_allclose(model.param_set.data, 1.775, rtol=0, atol=1e-15)


@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_adam_first_step_by_hand(cls):
    # after bias correction m_hat = g, v_hat = g^2: p -= lr * g / (|g| + eps); AdamW first decays p
    model = Tiny()
    p0 = model.param_set.data.copy()
    g = np.linspace(-2, 2, 9)
    model.param_set.grad[...] = g
    cls(model, lr=0.01, eps=1e-3, weight_decay=0.5).step()
    if cls is Adam:
        g = g + 0.5 * p0
        want = p0 - 0.01 * g / (np.abs(g) + 1e-3)
    else:
        want = p0 * (1 - 0.01 * 0.5) - 0.01 * g / (np.abs(g) + 1e-3)
    np.testing.assert_allclose(model.param_set.data, want, rtol=1e-13, atol=1e-15)


# ---- against torch.optim -----------------------------------------------------------------------

CONFIGS = [
    (SGD, "SGD", dict(lr=0.1)),
    (SGD, "SGD", dict(lr=0.1, momentum=0.9)),
    (SGD, "SGD", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    (SGD, "SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
    (Adam, "Adam", dict(lr=0.01)),
    (Adam, "Adam", dict(lr=0.01, betas=(0.5, 0.9), eps=1e-6, weight_decay=0.1)),
    (Adam, "Adam", dict(lr=0.01, betas=(0.3, 0.99))),  # lerp's second branch (1 - beta1 >= 0.5)
    (AdamW, "AdamW", dict(lr=0.01)),
    (AdamW, "AdamW", dict(lr=0.02, betas=(0.8, 0.95), weight_decay=0.3)),
]


@pytest.mark.parametrize("cls,tname,kw", CONFIGS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_against_torch(cls, tname, kw, dtype):
    torch = pytest.importorskip("torch")
    model = Pair(dtype)
    sets = [model.a.param_set, model.b.param_set]
    tparams = [torch.tensor(s.data.copy(), requires_grad=True) for s in sets]
    opt, topt = cls(model, **kw), getattr(torch.optim, tname)(tparams, **kw)
    rng = np.random.default_rng(3)
    for _ in range(6):
        set_grads(model, rng)
        for s, t in zip(sets, tparams):
            t.grad = torch.tensor(s.grad.copy())
        assert opt.step() is True
        topt.step()
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    for s, t in zip(sets, tparams):
        np.testing.assert_allclose(s.data, t.detach().numpy(), **tol)
    assert opt.step_count == 6


def test_shared_param_set_updated_once():
    model = Pair()
    a0 = model.a.param_set.data.copy()
    model.a.param_set.grad[...] = 1.0
    opt = SGD(model, lr=0.1)
    assert len(opt.param_sets) == 2
    opt.step()
    np.testing.assert_allclose(model.a.param_set.data, a0 - 0.1, atol=1e-15)


def test_step_bumps_version_and_zero_grad():
    model = Tiny()
    v0 = model.param_set.version
    model.param_set.grad[...] = 1.0
    opt = Adam(model)
    opt.step()
    assert model.param_set.version == v0 + 1
    opt.zero_grad()
    assert not model.param_set.grad.any()


# ---- non-finite gradients ----------------------------------------------------------------------

@pytest.mark.parametrize("cls", [lambda m, **k: SGD(m, 0.1, momentum=0.9, **k), Adam, AdamW])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_gradient_refused_and_weights_bitwise_unchanged(cls, bad):
    model = Pair()
    rng = np.random.default_rng(4)
    opt = cls(model)
    set_grads(model, rng)
    opt.step()  # some optimizer state exists
    set_grads(model, rng)
    model.b.grads["w"][1, 2] = bad
    model.b.grads["b"][0] = bad
    before = snapshot(model, opt)
    with pytest.raises(FloatingPointError, match=r"2 non-finite.*set 1: w \(1\), b \(1\).*unchanged"):
        opt.step()
    assert_same(before, snapshot(model, opt))


def test_skip_nonfinite_counts_and_changes_nothing():
    model = Tiny()
    opt = Adam(model, skip_nonfinite=True)
    model.param_set.grad[...] = 1.0
    model.param_set.grad[3] = np.nan
    before = snapshot(model, opt)
    assert opt.step() is False and opt.step() is False
    assert opt.skipped_steps == 2 and opt.step_count == 0
    assert_same(before, snapshot(model, opt))
    model.param_set.grad[3] = 0.0
    assert opt.step() is True and opt.step_count == 1


# ---- validation --------------------------------------------------------------------------------

@pytest.mark.parametrize("lr", [0.0, -0.1, float("nan"), float("inf")])
@pytest.mark.parametrize("cls", [SGD, Adam, AdamW])
def test_bad_lr_raises_value_error(cls, lr):
    with pytest.raises(ValueError, match="lr must be"):
        cls(Tiny(), lr=lr)


@pytest.mark.parametrize("lr", ["0.1", None, True])
def test_non_number_lr_raises_type_error(lr):
    with pytest.raises(TypeError, match="lr must be a real number"):
        SGD(Tiny(), lr=lr)


def test_lr_setter_allows_zero_but_not_negative_or_nan():
    opt = SGD(Tiny(), lr=0.1)
    opt.lr = 0.0
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="lr must be"):
            opt.lr = bad
    assert opt.lr == 0.0


@pytest.mark.parametrize("make,match", [
    (lambda m: SGD(m, 0.1, momentum=-0.1), "momentum must be >= 0"),
    (lambda m: SGD(m, 0.1, nesterov=True), "Nesterov momentum requires"),
    (lambda m: SGD(m, 0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov momentum requires"),
    (lambda m: SGD(m, 0.1, weight_decay=float("nan")), "weight_decay must be finite"),
    (lambda m: Adam(m, betas=(1.0, 0.999)), r"beta1 must be in \[0, 1\)"),
    (lambda m: Adam(m, betas=(0.9, -0.1)), "beta2 must be >= 0"),
    (lambda m: Adam(m, eps=-1e-8), "eps must be >= 0"),
    (lambda m: AdamW(m, weight_decay=-1), "weight_decay must be >= 0"),
])
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make(Tiny())


def test_bad_models():
    with pytest.raises(TypeError, match="model must be a fastrnn layer"):
        SGD(42, lr=0.1)
    with pytest.raises(ValueError, match="no parameters"):
        SGD(Layer(), lr=0.1)
    with pytest.raises(TypeError, match="betas must be a pair"):
        Adam(Tiny(), betas=0.9)


# ---- state dicts -------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda m: SGD(m, 0.1, momentum=0.9, nesterov=True), Adam, AdamW])
def test_state_dict_resume_is_bitwise_identical(make):
    rng = np.random.default_rng(5)
    grads = [rng.standard_normal(9) for _ in range(6)]
    m1, m2 = Tiny(), Tiny()
    o1 = make(m1)
    for g in grads[:3]:
        m1.param_set.grad[...] = g
        o1.step()
    sd = o1.state_dict()
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    m2.load_state_dict(m1.state_dict())
    o2 = make(m2)
    o2.load_state_dict(sd)
    for g in grads[3:]:
        for m, o in ((m1, o1), (m2, o2)):
            m.param_set.grad[...] = g
            o.step()
    assert m1.param_set.data.tobytes() == m2.param_set.data.tobytes()


def test_load_state_dict_lists_problems_and_is_atomic():
    model = Tiny()
    opt = Adam(model)
    model.param_set.grad[...] = 1.0
    opt.step()
    sd = opt.state_dict()
    other = Adam(Tiny(seed=9), lr=0.5)
    before = snapshot(model, other)
    bad = dict(sd)
    del bad["exp_avg.0"]
    bad["exp_avg_sq.0"] = np.zeros(4)
    bad["extra"] = np.zeros(1)
    bad["beta1"] = np.array(1.5)
    with pytest.raises(ValueError, match=r"unexpected key 'extra'.*missing key 'exp_avg.0'.*'exp_avg_sq.0'.*"
                                         r"shape.*beta1 must be in"):
        other.load_state_dict(bad)
    assert_same(before, snapshot(model, other))
    with pytest.raises(ValueError, match="missing key 'momentum_buffer.0'"):
        SGD(Tiny(), 0.1, momentum=0.9).load_state_dict(SGD(Tiny(), 0.1).state_dict())


# ---- gradient clipping -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_grad_norm_known_norm(dtype):
    model = Pair(dtype)
    model.a.param_set.grad[...] = 0
    model.b.param_set.grad[...] = 0
    model.a.grads["w"][0, :2] = [3, 4]
    model.b.grads["b"][1] = 12          # global norm sqrt(9 + 16 + 144) = 13
    total = clip_grad_norm(model, 6.5)
    assert total == pytest.approx(13.0, rel=1e-7)
    coef = 6.5 / (13 + 1e-6)
    np.testing.assert_allclose(model.a.grads["w"][0, :2], [3 * coef, 4 * coef], rtol=1e-6)
    np.testing.assert_allclose(model.b.grads["b"][1], 12 * coef, rtol=1e-6)
    after = math.sqrt(sum(float(np.sum(s.grad.astype(np.float64) ** 2)) for s in model.param_sets()[:2]))
    assert after == pytest.approx(6.5, rel=1e-5)


def test_clip_grad_norm_below_max_leaves_grads_bitwise():
    model = Tiny()
    model.param_set.grad[...] = np.linspace(-1, 1, 9)
    before = model.param_set.grad.copy()
    total = clip_grad_norm(model, 100.0)
    assert total == pytest.approx(np.linalg.norm(before), rel=1e-14)
    assert model.param_set.grad.tobytes() == before.tobytes()


def test_clip_grad_norm_against_torch():
    torch = pytest.importorskip("torch")
    model = Pair()
    set_grads(model, np.random.default_rng(6))
    sets = [model.a.param_set, model.b.param_set]
    tparams = [torch.zeros(s.size, dtype=torch.float64, requires_grad=True) for s in sets]
    for s, t in zip(sets, tparams):
        t.grad = torch.tensor(s.grad.copy())
    total = clip_grad_norm(model, 0.7)
    ttotal = torch.nn.utils.clip_grad_norm_(tparams, 0.7)
    assert total == pytest.approx(float(ttotal), rel=1e-14)
    for s, t in zip(sets, tparams):
        np.testing.assert_allclose(s.grad, t.grad.numpy(), rtol=1e-14)


def test_clip_grad_norm_float32_huge_values_do_not_overflow():
    model = Tiny(np.float32)
    model.param_set.grad[...] = 1e30
    total = clip_grad_norm(model, 1.0)
    assert total == pytest.approx(3e30, rel=1e-5)
    assert np.all(np.isfinite(model.param_set.grad))
    assert float(np.linalg.norm(model.param_set.grad.astype(np.float64))) == pytest.approx(1.0, rel=1e-5)


def test_clip_grad_norm_nonfinite():
    model = Tiny()
    model.param_set.grad[...] = 1.0
    model.grads["b"][2] = np.nan
    before = model.param_set.grad.copy()
    assert math.isnan(clip_grad_norm(model, 1.0))
    assert before.tobytes() == model.param_set.grad.tobytes()
    with pytest.raises(FloatingPointError, match=r"total gradient norm is nan.*b \(1\)"):
        clip_grad_norm(model, 1.0, error_if_nonfinite=True)
    model.grads["b"][2] = np.inf
    assert not math.isfinite(clip_grad_norm(model, 1.0))
    assert np.count_nonzero(model.param_set.grad == 1.0) == 8


@pytest.mark.parametrize("max_norm", [0.0, -1.0, float("nan")])
def test_clip_grad_norm_bad_max_norm(max_norm):
    with pytest.raises(ValueError, match="max_norm must be > 0"):
        clip_grad_norm(Tiny(), max_norm)


# ---- schedules ---------------------------------------------------------------------------------

def run(schedule, n):
    lrs = [schedule.optimizer.lr]
    for _ in range(n):
        schedule.step()
        lrs.append(schedule.optimizer.lr)
    return lrs


def test_step_lr_values():
    opt = SGD(Tiny(), lr=1.0)
    assert run(StepLR(opt, step_size=2, gamma=0.5), 5) == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_cosine_against_formula_and_torch():
    opt = SGD(Tiny(), lr=0.1)
    lrs = run(CosineAnnealingLR(opt, T_max=10, eta_min=0.001), 10)
    want = [0.001 + 0.099 * (1 + math.cos(math.pi * t / 10)) / 2 for t in range(11)]
    np.testing.assert_allclose(lrs, want, rtol=1e-15)
    assert lrs[-1] == pytest.approx(0.001)
    torch = pytest.importorskip("torch")
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    tsched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=10, eta_min=0.001)
    tlrs = [topt.param_groups[0]["lr"]]
    for _ in range(10):
        topt.step()
        tsched.step()
        tlrs.append(topt.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs, tlrs, rtol=1e-12)


def test_cosine_may_reach_zero():
    opt = SGD(Tiny(), lr=0.1)
    lrs = run(CosineAnnealingLR(opt, T_max=4), 4)
    assert lrs[-1] == pytest.approx(0.0, abs=1e-18) and lrs[0] == 0.1


def test_linear_warmup_then_cosine():
    opt = Adam(Tiny(), lr=0.4)
    cosine = CosineAnnealingLR(opt, T_max=4)
    sched = LinearWarmup(opt, warmup_steps=4, after=cosine)
    lrs = run(sched, 8)
    np.testing.assert_allclose(lrs[:4], [0.1, 0.2, 0.3, 0.4], rtol=1e-15)
    np.testing.assert_allclose(lrs[4:], [0.4 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)],
                               rtol=1e-15, atol=1e-18)
    assert cosine.last_step == 4


def test_linear_warmup_alone_and_state_dict():
    opt = SGD(Tiny(), lr=1.0)
    sched = LinearWarmup(opt, warmup_steps=2)
    assert run(sched, 3) == [0.5, 1.0, 1.0, 1.0]
    opt2 = SGD(Tiny(), lr=1.0)
    sched2 = StepLR(opt2, 1, 0.5)
    sched2.load_state_dict({"last_step": 3, "base_lr": 2.0})
    assert opt2.lr == 0.25
    sched2.load_state_dict(sched.state_dict())
    assert sched2.last_step == 3 and opt2.lr == 0.125
    with pytest.raises(ValueError, match="keys"):
        sched2.load_state_dict({"last_step": 1})
    with pytest.raises(ValueError, match="base_lr must be > 0"):
        sched2.load_state_dict({"last_step": 1, "base_lr": -1.0})
    assert sched2.last_step == 3


@pytest.mark.parametrize("make,exc,match", [
    (lambda o: StepLR(o, 0), ValueError, "step_size must be >= 1"),
    (lambda o: StepLR(o, 2.5), TypeError, "step_size must be an integer"),
    (lambda o: StepLR(o, 2, gamma=0), ValueError, "gamma must be > 0"),
    (lambda o: CosineAnnealingLR(o, 0), ValueError, "T_max must be >= 1"),
    (lambda o: CosineAnnealingLR(o, 5, eta_min=-1), ValueError, "eta_min must be >= 0"),
    (lambda o: LinearWarmup(o, 0), ValueError, "warmup_steps must be >= 1"),
    (lambda o: LinearWarmup(o, 3, after="cosine"), TypeError, "after must be a Schedule"),
    (lambda o: LinearWarmup(o, 3, after=StepLR(SGD(Tiny(), 0.1), 2)), ValueError, "same optimizer"),
    (lambda o: StepLR(object(), 2), TypeError, "optimizer must have an lr"),
])
def test_schedule_validation(make, exc, match):
    with pytest.raises(exc, match=match):
        make(SGD(Tiny(), lr=0.1))


# ---- the optimizers learn ----------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda m: SGD(m, 0.1, momentum=0.9), lambda m: Adam(m, 0.05),
                                  lambda m: AdamW(m, 0.05)])
def test_optimizers_lower_a_least_squares_loss(make):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((32, 2))
    Y = X @ rng.standard_normal((2, 3)) + 0.5
    model = Tiny()
    opt = make(model)

    def loss_and_grad():
        W, b = model.params["w"], model.params["b"]
        R = X @ W + b - Y                      # residuals (32, 3)
        model.zero_grad()
        model.grads["w"][...] += X.T @ R / len(X)
        model.grads["b"][...] += R.mean(axis=0)
        return 0.5 * float(np.mean(np.sum(R**2, axis=1)))

    first = loss_and_grad()
    for _ in range(100):
        clip_grad_norm(model, 5.0)
        opt.step()
        last = loss_and_grad()
    assert last < 0.2 * first
