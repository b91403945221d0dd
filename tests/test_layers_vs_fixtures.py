"""fastrnn's RNN / LSTM / GRU layers reproduce the committed PyTorch golden fixtures.

Each fixture's torch state_dict is loaded into the fastrnn layer of the same configuration and dtype;
inference, the training forward, dx, the initial-state gradients and every parameter gradient are
compared with torch's numbers. float64: atol = rtol = 1e-10; float32: atol 1e-5, rtol 1e-4.
"""
import numpy as np
import pytest

import fixture_cases as fc

fr = pytest.importorskip("fastrnn")

NAMES = fc.case_names()


def make_layer(config, arrays):
    cls = getattr(fr, config["layer"])
    layer = cls(**config["constructor"], dtype=np.dtype(config["dtype"]), seed=0)
    layer.load_state_dict(fc.params(arrays))
    return layer


def state_pairs(ours, theirs, label):
    if isinstance(theirs, tuple):
        assert isinstance(ours, tuple) and len(ours) == 2, label
        return [(f"{label}[{i}]", a, b) for i, (a, b) in enumerate(zip(ours, theirs))]
    return [(label, ours, theirs)]


def assert_pairs_close(name, config, pairs):
    atol, rtol = fc.tolerances(config)
    for what, ours, theirs in pairs:
        ours = np.asarray(ours)
        assert ours.shape == theirs.shape, f"{name}: {what} shape {ours.shape} != {theirs.shape}"
        assert ours.dtype == theirs.dtype, f"{name}: {what} dtype {ours.dtype} != {theirs.dtype}"
        np.testing.assert_allclose(ours, theirs, atol=atol, rtol=rtol, err_msg=f"{name}: {what}")


def test_fixtures_are_present():
    assert len(NAMES) >= 30


@pytest.mark.parametrize("name", NAMES)
def test_layer_loads_torch_state_dict(name):
    config, arrays = fc.load_case(name)
    layer = make_layer(config, arrays)
    sd = layer.state_dict()
    torch_sd = fc.params(arrays)
    assert list(sd) == list(torch_sd)  # same names in torch's order
    for n, value in torch_sd.items():
        np.testing.assert_array_equal(sd[n], value, err_msg=n)


@pytest.mark.parametrize("name", NAMES)
def test_inference_matches_fixture(name):
    config, arrays = fc.load_case(name)
    layer = make_layer(config, arrays)
    y, state_n = layer(arrays["x"], fc.state0(config, arrays), lengths=fc.lengths(arrays))
    pairs = [("y", y, arrays["y"])] + state_pairs(state_n, fc.state_n(config, arrays), "state_n")
    assert_pairs_close(name, config, pairs)


@pytest.mark.parametrize("name", NAMES)
def test_training_matches_fixture(name):
    config, arrays = fc.load_case(name)
    layer = make_layer(config, arrays)
    layer.zero_grad()
    y, state_n, backprop = layer.begin_update(arrays["x"], fc.state0(config, arrays), lengths=fc.lengths(arrays))
    dx, dstate0 = backprop(arrays["dy"], fc.dstate_n(config, arrays))
    pairs = [("y", y, arrays["y"]), ("dx", dx, arrays["dx"])]
    pairs += state_pairs(state_n, fc.state_n(config, arrays), "state_n")
    pairs += state_pairs(dstate0, fc.dstate0(config, arrays), "dstate0")
    torch_grads = fc.grads(arrays)
    assert set(layer.grads) == set(torch_grads)
    pairs += [(f"grad {n}", layer.grads[n], g) for n, g in torch_grads.items()]
    assert_pairs_close(name, config, pairs)
