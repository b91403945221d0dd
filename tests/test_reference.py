"""The numpy twin (tests/reference.py) must itself be trustworthy.

1. Its hand-written BPTT agrees with central finite differences of its own forward pass (float64),
   for every cell and option, for dx, the initial states and every parameter.
2. Its forward pass and gradients agree with PyTorch when torch is importable (float64, to
   round-off), including packed sequences, bidirectional, two layers and proj_size.
3. Its packed-sequence semantics agree with an independent construction: each row run alone on
   its own valid prefix (reversed by hand for the reverse direction).
torch has no reset-before GRU: that cell is checked by finite differences and by construction only.
"""
import zlib

import numpy as np
import pytest

import reference as ref

from gradcheck import EPS, numeric_grad  # noqa: E402

# (id, kind, options): every cell type and cell option
CELLS = [
    ("rnn_tanh", "rnn", {"nonlinearity": "tanh"}),
    ("rnn_relu", "rnn", {"nonlinearity": "relu"}),
    ("lstm", "lstm", {}),
    ("lstm_proj", "lstm", {"proj_size": 2}),
    ("gru_after", "gru", {"reset_after": True}),
    ("gru_before", "gru", {"reset_after": False}),
]

# (id, num_layers, bidirectional, bias, with lengths, batch_first)
STRUCTURES = [
    ("l1", 1, False, True, False, False),
    ("l2_bi_len", 2, True, True, True, False),
    ("l1_bi_nobias_len", 1, True, False, True, False),
    ("l2_nobias_bf_len", 2, False, False, True, True),
]


def make_case(kind, opts, num_layers, bidirectional, bias, with_lengths, batch_first, seed, T=4, B=3, I=3, H=4):
    """Random params, input, states, lengths and upstream gradients for a small case."""
    rng = np.random.default_rng(seed)
    P = opts.get("proj_size", 0)
    H_out = P if P else H
    D = 2 if bidirectional else 1
    LD = num_layers * D
    params = ref.init_params(kind, I, H, num_layers, bidirectional, bias, P, rng=rng, scale=0.8)
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I))
    h0 = rng.standard_normal((LD, B, H_out)) * 0.5
    c0 = rng.standard_normal((LD, B, H)) * 0.5
    state0 = (h0, c0) if kind == "lstm" else h0
    lengths = None
    if with_lengths:
        lengths = rng.integers(1, T + 1, size=B)
        lengths[0] = T  # one full row, one short row at least
        lengths[-1] = 1 if T > 1 else T
        rng.shuffle(lengths)  # unsorted on purpose
    y_shape = (B, T, D * H_out) if batch_first else (T, B, D * H_out)
    dy = rng.standard_normal(y_shape)
    dh_n = rng.standard_normal((LD, B, H_out))
    dc_n = rng.standard_normal((LD, B, H))
    dstate_n = (dh_n, dc_n) if kind == "lstm" else dh_n
    kw = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, **opts)
    return params, x, state0, lengths, dy, dstate_n, kw


def scalar_loss(kind, params, x, state0, lengths, dy, dstate_n, kw):
    """<dy, y> + <dstate_n, state_n>: its gradient is what backward(dy, dstate_n) returns."""
    y, state_n = ref.forward(kind, params, x, state0, lengths=lengths, **kw)
    if kind == "lstm":
        return np.sum(dy * y) + np.sum(dstate_n[0] * state_n[0]) + np.sum(dstate_n[1] * state_n[1])
    return np.sum(dy * y) + np.sum(dstate_n * state_n)




def assert_grad_close(numeric, analytic, what):
    assert analytic.shape == numeric.shape, what
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8, err_msg=what)


@pytest.mark.parametrize("structure", STRUCTURES, ids=[s[0] for s in STRUCTURES])
@pytest.mark.parametrize("cell", CELLS, ids=[c[0] for c in CELLS])
def test_backward_matches_finite_differences(cell, structure):
    _, kind, opts = cell
    _, L, bidir, bias, with_lengths, batch_first = structure
    params, x, state0, lengths, dy, dstate_n, kw = make_case(kind, opts, L, bidir, bias, with_lengths,
                                                             batch_first, seed=zlib.crc32(f"{cell[0]}/{structure[0]}".encode()))
    dx, dstate0, dparams = ref.backward(kind, params, x, state0, dy, dstate_n, lengths=lengths, **kw)

    def f():
        return scalar_loss(kind, params, x, state0, lengths, dy, dstate_n, kw)

    assert_grad_close(numeric_grad(f, x), dx, "dx")
    if kind == "lstm":
        assert_grad_close(numeric_grad(f, state0[0]), dstate0[0], "dh0")
        assert_grad_close(numeric_grad(f, state0[1]), dstate0[1], "dc0")
    else:
        assert_grad_close(numeric_grad(f, state0), dstate0, "dh0")
    assert set(dparams) == set(params)
    for name in params:
        assert_grad_close(numeric_grad(f, params[name]), dparams[name], name)


def test_backward_is_not_trivially_zero():
    """Guard for the check above: the gradients of a typical case are far from zero everywhere."""
    params, x, state0, lengths, dy, dstate_n, kw = make_case("lstm", {"proj_size": 2}, 2, True, True, True,
                                                             False, seed=3)
    dx, (dh0, dc0), dparams = ref.backward("lstm", params, x, state0, dy, dstate_n, lengths=lengths, **kw)
    for name, g in [("dx", dx), ("dh0", dh0), ("dc0", dc0)] + list(dparams.items()):
        assert np.abs(g).max() > 1e-3, name


# ---------------------------------------------------------------------------- single-step cells

CELL_FUNCS = [
    ("rnn_tanh", 1, lambda p, x, s: ref.rnn_cell(p, x, s, "tanh"),
     lambda p, x, s, ds: ref.rnn_cell_backward(p, x, s, ds, "tanh")),
    ("rnn_relu", 1, lambda p, x, s: ref.rnn_cell(p, x, s, "relu"),
     lambda p, x, s, ds: ref.rnn_cell_backward(p, x, s, ds, "relu")),
    ("lstm", 4, ref.lstm_cell, ref.lstm_cell_backward),
    ("gru_after", 3, lambda p, x, s: ref.gru_cell(p, x, s, True),
     lambda p, x, s, ds: ref.gru_cell_backward(p, x, s, ds, True)),
    ("gru_before", 3, lambda p, x, s: ref.gru_cell(p, x, s, False),
     lambda p, x, s, ds: ref.gru_cell_backward(p, x, s, ds, False)),
]


def make_cell_case(name, G, bias, batched, seed, I=3, H=4, B=2):
    rng = np.random.default_rng(seed)
    params = {"weight_ih": rng.uniform(-0.8, 0.8, (G * H, I)), "weight_hh": rng.uniform(-0.8, 0.8, (G * H, H))}
    if bias:
        params["bias_ih"] = rng.uniform(-0.8, 0.8, G * H)
        params["bias_hh"] = rng.uniform(-0.8, 0.8, G * H)
    lead = (B,) if batched else ()
    x = rng.standard_normal(lead + (I,))
    if name == "lstm":
        state = (rng.standard_normal(lead + (H,)), rng.standard_normal(lead + (H,)))
        dstate = (rng.standard_normal(lead + (H,)), rng.standard_normal(lead + (H,)))
    else:
        state = rng.standard_normal(lead + (H,))
        dstate = rng.standard_normal(lead + (H,))
    return params, x, state, dstate


def cell_loss(name, fwd, params, x, state, dstate):
    out = fwd(params, x, state)
    if name == "lstm":
        return np.sum(out[0] * dstate[0]) + np.sum(out[1] * dstate[1])
    return np.sum(out * dstate)


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("cell", CELL_FUNCS, ids=[c[0] for c in CELL_FUNCS])
def test_cell_backward_matches_finite_differences(cell, bias, batched):
    name, G, fwd, bwd = cell
    params, x, state, dstate = make_cell_case(name, G, bias, batched, seed=len(name) + 10 * bias + batched)
    dx, dstate0, dparams = bwd(params, x, state, dstate)

    def f():
        return cell_loss(name, fwd, params, x, state, dstate)

    assert_grad_close(numeric_grad(f, x), dx, "dx")
    if name == "lstm":
        assert_grad_close(numeric_grad(f, state[0]), dstate0[0], "dh")
        assert_grad_close(numeric_grad(f, state[1]), dstate0[1], "dc")
    else:
        assert_grad_close(numeric_grad(f, state), dstate0, "dh")
    assert set(dparams) == set(params)
    for pname in params:
        assert_grad_close(numeric_grad(f, params[pname]), dparams[pname], pname)


NO_PROJ_CELLS = [c for c in CELLS if not c[2].get("proj_size")]


@pytest.mark.parametrize("cell", NO_PROJ_CELLS, ids=[c[0] for c in NO_PROJ_CELLS])
def test_one_step_layer_equals_cell(cell):
    """A one-layer, one-direction sequence of T=1 equals the single-step cell."""
    _, kind, opts = cell
    params, x, state0, _, _, _, kw = make_case(kind, opts, 1, False, True, False, False, seed=5, T=1)
    y, state_n = ref.forward(kind, params, x, state0, **kw)
    cell_params = {name[: -len("_l0")]: value for name, value in params.items()}
    if kind == "lstm":
        h, c = ref.lstm_cell(cell_params, x[0], (state0[0][0], state0[1][0]))
        np.testing.assert_array_equal(state_n[1][0], c)
    elif kind == "rnn":
        h = ref.rnn_cell(cell_params, x[0], state0[0], opts["nonlinearity"])
    else:
        h = ref.gru_cell(cell_params, x[0], state0[0], opts["reset_after"])
    np.testing.assert_array_equal(y[0], h)
    np.testing.assert_array_equal((state_n[0] if kind == "lstm" else state_n)[0], h)


# ---------------------------------------------------------------------------- packed-sequence semantics


@pytest.mark.parametrize("cell", CELLS, ids=[c[0] for c in CELLS])
def test_lengths_equal_each_row_run_alone(cell):
    """Row b with lengths[b] = l equals that row's x[:l] run alone; its outputs past l are zero.

    The reverse direction is built by hand from the forward-only layer on the reversed prefix, so
    this also checks that the reverse direction starts at each row's own last valid step.
    """
    _, kind, opts = cell
    T, B = 5, 3
    params, x, state0, _, _, _, kw = make_case(kind, opts, 2, True, True, False, False, seed=7, T=T, B=B)
    lengths = np.array([3, 5, 1])
    y, state_n = ref.forward(kind, params, x, state0, lengths=lengths, **kw)
    h_n = state_n[0] if kind == "lstm" else state_n
    H_out = h_n.shape[2]
    fwd_names = {n: v for n, v in params.items() if not n.endswith("_reverse")}
    rev_names = {n[: -len("_reverse")]: v for n, v in params.items() if n.endswith("_reverse")}
    for b, l in enumerate(lengths):
        np.testing.assert_array_equal(y[l:, b], 0.0)
        # run layer 0 both ways alone, then layer 1 on their concatenation
        xb = x[:l, b:b + 1]
        layer_in = xb
        for k in range(2):
            one = {n.replace(f"_l{k}", "_l0"): v for n, v in fwd_names.items() if f"_l{k}" in n}
            one_rev = {n.replace(f"_l{k}", "_l0"): v for n, v in rev_names.items() if f"_l{k}" in n}
            sk = [2 * k, 2 * k + 1]
            if kind == "lstm":
                s_f = (state0[0][sk[0]:sk[0] + 1, b:b + 1], state0[1][sk[0]:sk[0] + 1, b:b + 1])
                s_r = (state0[0][sk[1]:sk[1] + 1, b:b + 1], state0[1][sk[1]:sk[1] + 1, b:b + 1])
            else:
                s_f = state0[sk[0]:sk[0] + 1, b:b + 1]
                s_r = state0[sk[1]:sk[1] + 1, b:b + 1]
            y_f, sn_f = ref.forward(kind, one, layer_in, s_f, **{**opts})
            y_r, sn_r = ref.forward(kind, one_rev, layer_in[::-1], s_r, **{**opts})
            y_r = y_r[::-1]
            for d, sn in ((0, sn_f), (1, sn_r)):
                if kind == "lstm":
                    np.testing.assert_allclose(h_n[sk[d], b], sn[0][0, 0], rtol=1e-13, atol=1e-14)
                    np.testing.assert_allclose(state_n[1][sk[d], b], sn[1][0, 0], rtol=1e-13, atol=1e-14)
                else:
                    np.testing.assert_allclose(h_n[sk[d], b], sn[0, 0], rtol=1e-13, atol=1e-14)
            layer_in = np.concatenate([y_f, y_r], axis=2)
        np.testing.assert_allclose(y[:l, b], layer_in[:, 0], rtol=1e-13, atol=1e-14)
        assert layer_in.shape[2] == 2 * H_out


def test_full_lengths_equal_no_lengths():
    params, x, state0, _, dy, dstate_n, kw = make_case("gru", {}, 2, True, True, False, False, seed=11)
    T, B = x.shape[:2]
    full = np.full(B, T)
    a = ref.backward("gru", params, x, state0, dy, dstate_n, lengths=full, **kw)
    b = ref.backward("gru", params, x, state0, dy, dstate_n, **kw)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    for name in params:
        np.testing.assert_array_equal(a[2][name], b[2][name])


def test_padding_does_not_reach_outputs_or_gradients():
    """Garbage past each row's length changes no output and no gradient; its dx stays zero."""
    params, x, state0, lengths, dy, dstate_n, kw = make_case("lstm", {}, 2, True, True, True, False, seed=13)
    dx, _, dparams = ref.backward("lstm", params, x, state0, dy, dstate_n, lengths=lengths, **kw)
    y, _ = ref.forward("lstm", params, x, state0, lengths=lengths, **kw)
    x_bad = x.copy()
    for b, l in enumerate(lengths):
        x_bad[l:, b] = 1e3 * (b + 1)
    y_bad, _ = ref.forward("lstm", params, x_bad, state0, lengths=lengths, **kw)
    np.testing.assert_array_equal(y_bad, y)
    dx_bad, _, dparams_bad = ref.backward("lstm", params, x_bad, state0, dy, dstate_n, lengths=lengths, **kw)
    np.testing.assert_array_equal(dx_bad, dx)
    for name in params:
        np.testing.assert_array_equal(dparams_bad[name], dparams[name])
    for b, l in enumerate(lengths):
        np.testing.assert_array_equal(dx[l:, b], 0.0)
        assert np.all(y[l:, b] == 0.0)


def test_batch_first_is_a_transpose():
    params, x, state0, lengths, dy, dstate_n, kw = make_case("rnn", {"nonlinearity": "tanh"}, 2, True, True, True,
                                                             False, seed=17)
    tm = ref.backward("rnn", params, x, state0, dy, dstate_n, lengths=lengths, **kw)
    kw_bf = {**kw, "batch_first": True}
    bf = ref.backward("rnn", params, x.transpose(1, 0, 2), state0, dy.transpose(1, 0, 2), dstate_n,
                      lengths=lengths, **kw_bf)
    np.testing.assert_array_equal(bf[0], tm[0].transpose(1, 0, 2))
    np.testing.assert_array_equal(bf[1], tm[1])


def test_float32_follows_float64():
    params, x, state0, lengths, dy, dstate_n, kw = make_case("lstm", {"proj_size": 2}, 1, True, True, True,
                                                             False, seed=19)
    y64, s64 = ref.forward("lstm", params, x, state0, lengths=lengths, **kw)
    p32 = {n: v.astype(np.float32) for n, v in params.items()}
    y32, s32 = ref.forward("lstm", p32, x.astype(np.float32), tuple(s.astype(np.float32) for s in state0),
                           lengths=lengths, **kw)
    assert y32.dtype == np.float32 and s32[0].dtype == np.float32
    np.testing.assert_allclose(y32, y64, atol=1e-6)


def test_omitted_state_equals_zeros():
    params, x, state0, _, _, _, kw = make_case("lstm", {}, 1, False, True, False, False, seed=23)
    zeros = (np.zeros_like(state0[0]), np.zeros_like(state0[1]))
    a = ref.forward("lstm", params, x, None, **kw)
    b = ref.forward("lstm", params, x, zeros, **kw)
    np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize("bad, exc, match", [
    (dict(kind="cnn"), ValueError, "kind must be"),
    (dict(lengths=np.array([1, 2])), ValueError, "lengths must be"),
    (dict(lengths=np.array([0, 2, 3])), ValueError, r"lengths must be in \[1, T=4\]"),
    (dict(lengths=np.array([5, 2, 3])), ValueError, r"lengths must be in \[1, T=4\]"),
    (dict(num_layers=2), ValueError, "params do not match"),
    (dict(state0=np.zeros((1, 3, 4))), TypeError, "must be a tuple"),
    (dict(state0=(np.zeros((1, 2, 4)), np.zeros((1, 3, 4)))), ValueError, r"state0 h must have shape \(1, 3, 4\)"),
    (dict(proj_size=3), ValueError, "proj_size"),
])
def test_bad_input_raises(bad, exc, match):
    params, x, state0, _, _, _, kw = make_case("lstm", {}, 1, False, True, False, False, seed=29)
    args = dict(kind="lstm", params=params, x=x, state0=state0, **kw)
    args.update(bad)
    with pytest.raises(exc, match=match):
        ref.forward(**args)


# ---------------------------------------------------------------------------- live agreement with torch

TORCH_CELLS = [c for c in CELLS if c[0] != "gru_before"]
TORCH_STRUCTURES = STRUCTURES + [("l2_bi_bf", 2, True, True, False, True), ("l1_len", 1, False, True, True, False)]


def torch_module(kind, opts, I, H, num_layers, bidirectional, bias, batch_first, params):
    torch = pytest.importorskip("torch")
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    kw = dict(num_layers=num_layers, bidirectional=bidirectional, bias=bias, batch_first=batch_first,
              dtype=torch.float64)
    if kind == "rnn":
        kw["nonlinearity"] = opts["nonlinearity"]
    if kind == "lstm":
        kw["proj_size"] = opts.get("proj_size", 0)
    module = cls(I, H, **kw)
    module.load_state_dict({n: torch.from_numpy(v.copy()) for n, v in params.items()})
    return module


def torch_run(kind, module, x, state0, lengths, dy, dstate_n, batch_first):
    """torch forward (packed when lengths is given) and the gradients of <dy, y> + <dstate_n, state_n>."""
    torch = pytest.importorskip("torch")
    x_t = torch.tensor(x, requires_grad=True)
    states = [torch.tensor(s, requires_grad=True) for s in (state0 if kind == "lstm" else (state0,))]
    s_in = tuple(states) if kind == "lstm" else states[0]
    if lengths is None:
        y_t, s_n = module(x_t, s_in)
    else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(x_t, torch.tensor(lengths), batch_first=batch_first,
                                                         enforce_sorted=False)
        out, s_n = module(packed, s_in)
        y_t, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=batch_first,
                                                        total_length=x.shape[1 if batch_first else 0])
    s_n = s_n if kind == "lstm" else (s_n,)
    ds = dstate_n if kind == "lstm" else (dstate_n,)
    loss = (y_t * torch.from_numpy(dy)).sum() + sum((s * torch.from_numpy(d)).sum() for s, d in zip(s_n, ds))
    names = list(dict(module.named_parameters()))
    grads = torch.autograd.grad(loss, [x_t] + states + [dict(module.named_parameters())[n] for n in names])
    as_np = [g.numpy() for g in grads]
    return (y_t.detach().numpy(), [s.detach().numpy() for s in s_n], as_np[0], as_np[1:1 + len(states)],
            dict(zip(names, as_np[1 + len(states):])))


def compare_with_torch(kind, opts, L, bidir, bias, with_lengths, batch_first, seed, **sizes):
    params, x, state0, lengths, dy, dstate_n, kw = make_case(kind, opts, L, bidir, bias, with_lengths, batch_first,
                                                             seed, **sizes)
    I = x.shape[2]
    H = params["weight_hh_l0"].shape[0] // ref.N_GATES[kind]
    module = torch_module(kind, opts, I, H, L, bidir, bias, batch_first, params)
    y_t, s_t, dx_t, ds_t, dp_t = torch_run(kind, module, x, state0, lengths, dy, dstate_n, batch_first)
    y, state_n = ref.forward(kind, params, x, state0, lengths=lengths, **kw)
    dx, dstate0, dparams = ref.backward(kind, params, x, state0, dy, dstate_n, lengths=lengths, **kw)
    s_n = state_n if kind == "lstm" else (state_n,)
    ds0 = dstate0 if kind == "lstm" else (dstate0,)
    pairs = [("y", y, y_t), ("dx", dx, dx_t)]
    pairs += [(f"state_n[{i}]", a, b) for i, (a, b) in enumerate(zip(s_n, s_t))]
    pairs += [(f"dstate0[{i}]", a, b) for i, (a, b) in enumerate(zip(ds0, ds_t))]
    assert set(dp_t) == set(dparams)
    pairs += [(f"d{n}", dparams[n], dp_t[n]) for n in dp_t]
    worst = 0.0
    for what, ours, theirs in pairs:
        assert ours.shape == theirs.shape, what
        np.testing.assert_allclose(ours, theirs, atol=1e-10, rtol=1e-10, err_msg=what)
        worst = max(worst, float(np.max(np.abs(ours - theirs))))
    return worst


@pytest.mark.parametrize("structure", TORCH_STRUCTURES, ids=[s[0] for s in TORCH_STRUCTURES])
@pytest.mark.parametrize("cell", TORCH_CELLS, ids=[c[0] for c in TORCH_CELLS])
def test_agrees_with_torch(cell, structure):
    pytest.importorskip("torch")
    _, kind, opts = cell
    _, L, bidir, bias, with_lengths, batch_first = structure
    compare_with_torch(kind, opts, L, bidir, bias, with_lengths, batch_first, seed=31, T=5, B=3, I=4, H=5)


@pytest.mark.parametrize("seed", range(6))
def test_agrees_with_torch_on_random_configurations(seed):
    pytest.importorskip("torch")
    rng = np.random.default_rng(1000 + seed)
    _, kind, opts = TORCH_CELLS[rng.integers(len(TORCH_CELLS))]
    H = int(rng.integers(2, 9))
    if opts.get("proj_size"):
        opts = {"proj_size": int(rng.integers(1, H))}
    compare_with_torch(kind, opts, int(rng.integers(1, 4)), bool(rng.integers(2)), bool(rng.integers(2)),
                       bool(rng.integers(2)), bool(rng.integers(2)), seed=int(rng.integers(2**31)),
                       T=int(rng.integers(1, 9)), B=int(rng.integers(1, 6)), I=int(rng.integers(1, 7)), H=H)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("cell", [c for c in CELL_FUNCS if c[0] != "gru_before"],
                         ids=[c[0] for c in CELL_FUNCS if c[0] != "gru_before"])
def test_cells_agree_with_torch(cell, bias):
    torch = pytest.importorskip("torch")
    name, G, fwd, bwd = cell
    params, x, state, dstate = make_cell_case(name, G, bias, True, seed=37)
    I, H = x.shape[1], params["weight_hh"].shape[1]
    if name.startswith("rnn"):
        module = torch.nn.RNNCell(I, H, bias=bias, nonlinearity=name[4:], dtype=torch.float64)
    else:
        module = {"lstm": torch.nn.LSTMCell, "gru_after": torch.nn.GRUCell}[name](I, H, bias=bias,
                                                                                  dtype=torch.float64)
    module.load_state_dict({n: torch.from_numpy(v.copy()) for n, v in params.items()})
    x_t = torch.tensor(x, requires_grad=True)
    states = [torch.tensor(s, requires_grad=True) for s in (state if name == "lstm" else (state,))]
    out = module(x_t, tuple(states) if name == "lstm" else states[0])
    outs = out if name == "lstm" else (out,)
    ds = dstate if name == "lstm" else (dstate,)
    loss = sum((o * torch.from_numpy(d)).sum() for o, d in zip(outs, ds))
    pnames = list(params)
    grads = torch.autograd.grad(loss, [x_t] + states + [dict(module.named_parameters())[n] for n in pnames])
    ours = fwd(params, x, state)
    ours = ours if name == "lstm" else (ours,)
    for a, b in zip(ours, outs):
        np.testing.assert_allclose(a, b.detach().numpy(), atol=1e-10, rtol=1e-10)
    dx, dstate0, dparams = bwd(params, x, state, dstate)
    dstate0 = dstate0 if name == "lstm" else (dstate0,)
    np.testing.assert_allclose(dx, grads[0].numpy(), atol=1e-10, rtol=1e-10)
    for a, b in zip(dstate0, grads[1:1 + len(states)]):
        np.testing.assert_allclose(a, b.numpy(), atol=1e-10, rtol=1e-10)
    for n, g in zip(pnames, grads[1 + len(states):]):
        np.testing.assert_allclose(dparams[n], g.numpy(), atol=1e-10, rtol=1e-10, err_msg=n)
