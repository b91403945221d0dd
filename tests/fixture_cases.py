"""Load the golden PyTorch fixtures in tests/fixtures/*.npz (made by tests/fixtures/make_fixtures.py).

Usage in a parametrised test:

    import fixture_cases as fc

    @pytest.mark.parametrize("name", fc.case_names())
    def test_something(name):
        config, arrays = fc.load_case(name)
        params = fc.params(arrays)              # {torch name: array}
        state0 = fc.state0(config, arrays)      # h0, or (h0, c0) for LSTM
        ...

or `for name, config, arrays in fc.iter_cases(): ...`.

config (from the JSON in each file): "name", "layer" ("RNN", "LSTM", "GRU"), "constructor" (the
torch/fastrnn constructor keywords: input_size, hidden_size, num_layers, bias, batch_first,
bidirectional, and nonlinearity or proj_size), "dtype" ("float32"/"float64"), "T", "B",
"lengths" (bool), "seed", "torch_version". Files are read with allow_pickle=False.
"""
import json
import pathlib

import numpy as np

FIXTURE_DIR = pathlib.Path(__file__).resolve().parent / "fixtures"


def case_names(dtype=None):
    """Sorted case names (file stems), optionally only those of one dtype ("float32"/"float64")."""
    names = sorted(p.stem for p in FIXTURE_DIR.glob("*.npz"))
    if dtype is not None:
        names = [n for n in names if n.endswith("_" + np.dtype(dtype).name)]
    return names


def load_case(name):
    """(config dict, {array name: array}) for one case; the config entry is parsed, not returned."""
    with np.load(FIXTURE_DIR / f"{name}.npz", allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    config = json.loads(str(arrays.pop("config")))
    return config, arrays


def iter_cases(dtype=None):
    """Yield (name, config, arrays) for every case (optionally of one dtype)."""
    for name in case_names(dtype):
        config, arrays = load_case(name)
        yield name, config, arrays


def params(arrays):
    """The torch state_dict as {name: array}, in torch's order."""
    return {key[len("param."):]: value for key, value in arrays.items() if key.startswith("param.")}


def grads(arrays):
    """torch's parameter gradients as {name: array}."""
    return {key[len("grad."):]: value for key, value in arrays.items() if key.startswith("grad.")}


def _state(config, arrays, h, c):
    return (arrays[h], arrays[c]) if config["layer"] == "LSTM" else arrays[h]


def state0(config, arrays):
    """h0, or (h0, c0) for LSTM."""
    return _state(config, arrays, "h0", "c0")


def state_n(config, arrays):
    """torch's final state: h_n, or (h_n, c_n) for LSTM."""
    return _state(config, arrays, "h_n", "c_n")


def dstate_n(config, arrays):
    """The upstream gradient of the final state: dh_n, or (dh_n, dc_n)."""
    return _state(config, arrays, "dh_n", "dc_n")


def dstate0(config, arrays):
    """torch's gradient of the initial state: dh0, or (dh0, dc0)."""
    return _state(config, arrays, "dh0", "dc0")


def lengths(arrays):
    """The lengths array (B,), or None for a case without lengths."""
    return arrays.get("lengths")


def reference_kwargs(config):
    """Keywords for tests/reference.py forward/backward (after kind, params, x, state0)."""
    ctor = config["constructor"]
    kw = dict(num_layers=ctor["num_layers"], bidirectional=ctor["bidirectional"], batch_first=ctor["batch_first"])
    if config["layer"] == "RNN":
        kw["nonlinearity"] = ctor["nonlinearity"]
    if config["layer"] == "LSTM":
        kw["proj_size"] = ctor["proj_size"]
    return kw


def tolerances(config):
    """(atol, rtol) for comparing a float64 computation with this case's torch numbers."""
    return (1e-10, 1e-10) if config["dtype"] == "float64" else (1e-5, 1e-4)
