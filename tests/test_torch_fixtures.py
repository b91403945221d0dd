"""The committed PyTorch golden fixtures agree with the numpy twin (no torch needed).

float64 fixtures: atol = rtol = 1e-10. float32 fixtures (torch in float32) against the twin run in
float64 on the same (upcast) numbers: atol 1e-5, rtol 1e-4.
"""
import importlib.util
import json

import numpy as np
import pytest

import fixture_cases as fc
import reference as ref

NAMES = fc.case_names()
KIND = {"RNN": "rnn", "LSTM": "lstm", "GRU": "gru"}


def as64(state):
    return tuple(s.astype(np.float64) for s in state) if isinstance(state, tuple) else state.astype(np.float64)


def pairs_of(state_a, state_b, label):
    if isinstance(state_a, tuple):
        return [(f"{label}[{i}]", a, b) for i, (a, b) in enumerate(zip(state_a, state_b))]
    return [(label, state_a, state_b)]


def test_fixture_set_is_complete():
    """Both dtypes of every configuration are there, and every option is covered."""
    assert len(NAMES) >= 30
    configs = [fc.load_case(n)[0] for n in NAMES]
    for dtype in ("float32", "float64"):
        got = {c["name"] for c in configs if c["dtype"] == dtype}
        assert got == {c["name"] for c in configs}, dtype
    ctors = [(c["layer"], c["constructor"], c["lengths"]) for c in configs]
    assert {layer for layer, _, _ in ctors} == {"RNN", "LSTM", "GRU"}
    assert {ct["nonlinearity"] for layer, ct, _ in ctors if layer == "RNN"} == {"tanh", "relu"}
    assert any(ct.get("proj_size") for _, ct, _ in ctors)
    for key in ("bidirectional", "batch_first"):
        assert {ct[key] for _, ct, _ in ctors} == {True, False}, key
    assert {ct["bias"] for _, ct, _ in ctors} == {True, False}
    assert {ct["num_layers"] for _, ct, _ in ctors} == {1, 2}
    assert {with_lengths for _, _, with_lengths in ctors} == {True, False}


@pytest.mark.parametrize("name", NAMES)
def test_fixture_is_consistent(name):
    """Every array has the dtype and shape its config implies; padded outputs are zero."""
    config, arrays = fc.load_case(name)
    assert name == f"{config['name']}_{config['dtype']}"
    ctor = config["constructor"]
    T, B, I, H = config["T"], config["B"], ctor["input_size"], ctor["hidden_size"]
    D = 2 if ctor["bidirectional"] else 1
    LD = ctor["num_layers"] * D
    H_out = ctor.get("proj_size") or H
    seq = (B, T) if ctor["batch_first"] else (T, B)
    shapes = {"x": seq + (I,), "dx": seq + (I,), "y": seq + (D * H_out,), "dy": seq + (D * H_out,),
              "h0": (LD, B, H_out), "h_n": (LD, B, H_out), "dh_n": (LD, B, H_out), "dh0": (LD, B, H_out)}
    if config["layer"] == "LSTM":
        shapes.update(c0=(LD, B, H), c_n=(LD, B, H), dc_n=(LD, B, H), dc0=(LD, B, H))
    kind = KIND[config["layer"]]
    shapes.update({f"param.{n}": s for n, s in ref.param_shapes(kind, I, H, ctor["num_layers"], ctor["bidirectional"],
                                                               ctor["bias"], ctor.get("proj_size", 0)).items()})
    shapes.update({"grad." + k[len("param."):]: s for k, s in list(shapes.items()) if k.startswith("param.")})
    if config["lengths"]:
        shapes["lengths"] = (B,)
    assert {k: v.shape for k, v in arrays.items()} == shapes
    for key, value in arrays.items():
        expected = np.int64 if key == "lengths" else np.dtype(config["dtype"])
        assert value.dtype == expected, key
    if config["lengths"]:
        y = arrays["y"].swapaxes(0, 1) if ctor["batch_first"] else arrays["y"]
        for b, l in enumerate(arrays["lengths"]):
            assert np.all(y[l:, b] == 0) and np.any(y[:l, b] != 0)


@pytest.mark.parametrize("name", NAMES)
def test_twin_matches_fixture(name):
    config, arrays = fc.load_case(name)
    atol, rtol = fc.tolerances(config)
    kind = KIND[config["layer"]]
    kw = fc.reference_kwargs(config)
    params = {n: v.astype(np.float64) for n, v in fc.params(arrays).items()}
    x = arrays["x"].astype(np.float64)
    state0 = as64(fc.state0(config, arrays))
    lengths = fc.lengths(arrays)
    y, state_n = ref.forward(kind, params, x, state0, lengths=lengths, **kw)
    dx, dstate0, dparams = ref.backward(kind, params, x, state0, arrays["dy"].astype(np.float64),
                                        as64(fc.dstate_n(config, arrays)), lengths=lengths, **kw)
    pairs = [("y", y, arrays["y"]), ("dx", dx, arrays["dx"])]
    pairs += pairs_of(state_n, fc.state_n(config, arrays), "state_n")
    pairs += pairs_of(dstate0, fc.dstate0(config, arrays), "dstate0")
    torch_grads = fc.grads(arrays)
    assert set(torch_grads) == set(dparams)
    pairs += [(f"grad {n}", dparams[n], g) for n, g in torch_grads.items()]
    for what, ours, theirs in pairs:
        assert ours.shape == theirs.shape, what
        np.testing.assert_allclose(ours, theirs, atol=atol, rtol=rtol, err_msg=f"{name}: {what}")


def test_fixture_config_is_plain_json():
    """The config is a unicode string array (no pickled object) that parses as JSON."""
    with np.load(fc.FIXTURE_DIR / f"{NAMES[0]}.npz", allow_pickle=False) as data:
        raw = data["config"]
    assert raw.dtype.kind == "U" and raw.shape == ()
    assert json.loads(str(raw))["name"] in NAMES[0]


@pytest.mark.parametrize("name", ["lstm_proj_l2_bi_len_float64", "gru_l2_bi_len_float32"])
def test_fixtures_regenerate_with_live_torch(name):
    """When torch is importable, make_fixtures.py reproduces the committed numbers."""
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("make_fixtures", fc.FIXTURE_DIR / "make_fixtures.py")
    mk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mk)
    stored_config, stored = fc.load_case(name)
    index = [c[0] for c in mk.CASES].index(stored_config["name"])
    case_name, layer, extra = mk.CASES[index]
    config, arrays = mk.make_case(index, case_name, layer, dict(extra), stored_config["dtype"])
    assert {k: v for k, v in config.items() if k != "torch_version"} == \
        {k: v for k, v in stored_config.items() if k != "torch_version"}
    assert set(arrays) == set(stored)
    atol, rtol = fc.tolerances(config)
    for key in stored:
        np.testing.assert_allclose(arrays[key], stored[key], atol=atol, rtol=rtol, err_msg=key)
