"""Saving and loading: bit-identical round trips, atomic writes, and hostile files rejected.

The mutation fuzz (truncation at every offset, bit flips, mutated header fields) runs in a
subprocess with a 2 GB address-space limit and a timeout, so an over-allocation, a crash or a hang
shows up as a failure instead of taking the test run down.
"""
import io
import json
import os
import pickle
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import fastrnn
from fastrnn import io as fio
from fastrnn.io import FormatError, Registry, from_torch_state_dict, load, load_state, save, save_state
from fastrnn.layers.base import Layer
from fastrnn.optim import Adam

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TinyIO(Layer):
    """A two-tensor layer with a config, standing in for a real model."""

    def __init__(self, n=3, dtype="float64", seed=0):
        self.n, self.seed = n, seed
        super().__init__([("w", (2, n)), ("b", (n,))], dtype)
        self.param_set.data[...] = np.random.default_rng(seed).standard_normal(self.param_set.size)

    def get_config(self):
        return {"n": self.n, "dtype": self.dtype.name, "seed": self.seed}


REG = Registry()
REG.register(TinyIO)


def npy(arr):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=arr.dtype.hasobject)
    return buf.getvalue()


def raw_npy(descr, shape, data=b"", version=(1, 0), fortran=False):
    """An npy member whose header says whatever we like."""
    text = "{'descr': %r, 'fortran_order': %r, 'shape': %r, }" % (descr, fortran, tuple(shape))
    text = text.ljust(118) + "\n"
    if version == (1, 0):
        head = b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little")
    else:
        head = b"\x93NUMPY" + bytes(version) + len(text).to_bytes(4, "little")
    return head + text.encode("latin1") + data


def header_npy(header):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return npy(np.frombuffer(text, np.uint8))


def make_zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def members_of(path):
    with zipfile.ZipFile(path) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def header_of(path):
    with np.load(path, allow_pickle=False) as z:
        return json.loads(z["__fastrnn__"].tobytes())


def with_header(src, dst, header):
    members = [(n, d) for n, d in members_of(src) if n != "__fastrnn__.npy"]
    return make_zip(dst, [("__fastrnn__.npy", header_npy(header))] + members)


def valid_state():
    return {"w": np.arange(6.0).reshape(2, 3), "b": np.array([1, 2, 3], np.int32)}


@pytest.fixture
def state_file(tmp_path):
    path = tmp_path / "state.npz"
    save_state(valid_state(), path)
    return path


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "model.npz"
    save(TinyIO(4, seed=5), path, registry_=REG)
    return path


# ---- round trips -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_model_round_trip_bit_identical(tmp_path, dtype):
    model = TinyIO(5, dtype, seed=3)
    model.param_set.data[0] = np.nextafter(1.0, 2.0)  # a value whose last bit matters
    path = tmp_path / "m.npz"
    save(model, path, metadata={"epoch": 3, "note": "ü"}, registry_=REG)
    loaded, meta = load(path, registry_=REG, return_metadata=True)
    assert type(loaded) is TinyIO and loaded.get_config() == model.get_config()
    assert loaded.param_set.data.tobytes() == model.param_set.data.tobytes()
    assert loaded.dtype == model.dtype and meta == {"epoch": 3, "note": "ü"}


def test_builtin_lstm_round_trip(tmp_path):
    lstm = fastrnn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2, dtype=np.float32, seed=1)
    path = tmp_path / "lstm.npz"
    fastrnn.save(lstm, path)
    again = fastrnn.load(path)
    assert type(again) is fastrnn.LSTM and again.get_config() == lstm.get_config()
    for name, value in lstm.state_dict().items():
        assert again.params[name].tobytes() == value.tobytes()
    x = np.random.default_rng(0).standard_normal((4, 2, 3)).astype(np.float32)
    assert lstm(x)[0].tobytes() == again(x)[0].tobytes()


def test_state_round_trip_many_dtypes(tmp_path):
    state = {
        "f16": np.array([1.5, -2.25], np.float16),
        "f32": np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32),
        "f64": np.array([np.pi, -0.0, 5e-324]),
        "i8": np.array([-128, 127], np.int8),
        "i64": np.array([2**62, -(2**62)], np.int64),
        "u16": np.array([65535], np.uint16),
        "bool": np.array([True, False]),
        "scalar": np.array(7.0),
        "empty": np.zeros((0, 3), np.float32),
        "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        "big_endian": np.array([1.25, 2.5], ">f8"),
        "odd name/with.dots and spaces": np.ones(2),
    }
    path = tmp_path / "s.npz"
    save_state(state, path, metadata={"step": 10})
    got, meta = load_state(path, return_metadata=True)
    assert list(got) == list(state) and meta == {"step": 10}
    for name, want in state.items():
        assert got[name].shape == want.shape and np.array_equal(got[name], want)
        assert got[name].dtype == want.dtype.newbyteorder("=")
        assert got[name].flags.c_contiguous and got[name].flags.writeable
        if name != "big_endian":
            assert got[name].tobytes() == np.ascontiguousarray(want).tobytes()
    assert got["big_endian"].dtype.isnative


def test_files_are_plain_npz_and_reproducible(tmp_path, state_file):
    with np.load(state_file, allow_pickle=False) as z:
        assert set(z.files) == {"__fastrnn__", "w", "b"}
        assert np.array_equal(z["w"], valid_state()["w"])
    again = tmp_path / "again.npz"
    save_state(valid_state(), again)
    assert again.read_bytes() == state_file.read_bytes()


def test_optimizer_state_through_save_state(tmp_path):
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(6) for _ in range(4)]
    m1 = TinyIO(2)
    o1 = Adam(m1, lr=0.1)
    for g in grads[:2]:
        m1.param_set.grad[...] = g
        o1.step()
    save(m1, tmp_path / "m.npz", registry_=REG)
    save_state(o1.state_dict(), tmp_path / "o.npz")
    m2 = load(tmp_path / "m.npz", registry_=REG)
    o2 = Adam(m2, lr=0.1)
    o2.load_state_dict(load_state(tmp_path / "o.npz"))
    for g in grads[2:]:
        for m, o in ((m1, o1), (m2, o2)):
            m.param_set.grad[...] = g
            o.step()
    assert m1.param_set.data.tobytes() == m2.param_set.data.tobytes()


def test_load_accepts_file_objects(state_file):
    with open(state_file, "rb") as f:
        assert np.array_equal(load_state(f)["w"], valid_state()["w"])


# ---- atomic writes -----------------------------------------------------------------------------

def test_failed_write_leaves_old_file_and_no_temp(tmp_path, state_file, monkeypatch):
    before = state_file.read_bytes()
    os.chmod(state_file, 0o640)
    calls = []
    real = fio.npformat.write_array

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(fio.npformat, "write_array", failing)
    with pytest.raises(OSError, match="disk full"):
        save_state({"x": np.ones(3), "y": np.ones(4)}, state_file)
    assert state_file.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["state.npz"]
    monkeypatch.setattr(fio.npformat, "write_array", real)
    save_state({"x": np.ones(3)}, state_file)
    assert list(load_state(state_file)) == ["x"]
    assert os.stat(state_file).st_mode & 0o777 == 0o640  # overwriting keeps the mode
    assert sorted(os.listdir(tmp_path)) == ["state.npz"]


# ---- API errors --------------------------------------------------------------------------------

def test_load_kind_mismatch_and_missing_file(tmp_path, state_file, model_file):
    with pytest.raises(FormatError, match="plain state dict.*load_state"):
        load(state_file)
    assert set(load_state(model_file)) == {"w", "b"}
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.npz")
    with pytest.raises(TypeError, match="path must be a file name"):
        load_state(3.5)


def test_save_errors(tmp_path):
    class Unregistered(TinyIO):
        pass

    with pytest.raises(TypeError, match="Unregistered is not registered"):
        save(Unregistered(), tmp_path / "x.npz", registry_=REG)
    with pytest.raises(TypeError, match="save_state"):
        save({"a": np.ones(2)}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="'a': only real numeric"):
        save_state({"a": np.array([object()])}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="'a': only real numeric"):
        save_state({"a": np.array(["text"])}, tmp_path / "x.npz")
    with pytest.raises(ValueError, match="not starting with '__'"):
        save_state({"__fastrnn__": np.ones(2)}, tmp_path / "x.npz")
    with pytest.raises(ValueError, match="non-finite"):
        save_state({"a": np.ones(2)}, tmp_path / "x.npz", metadata={"loss": float("nan")})
    with pytest.raises(TypeError, match="not JSON data"):
        save_state({"a": np.ones(2)}, tmp_path / "x.npz", metadata={"f": len})
    with pytest.raises(ValueError, match="JSON header would take"):
        save_state({"a": np.ones(2)}, tmp_path / "x.npz", metadata={"big": "x" * (2 << 20)})
    assert os.listdir(tmp_path) == []


def test_registry():
    reg = Registry(builtins=False)

    class NoConfig:
        pass

    with pytest.raises(TypeError, match="needs a get_config"):
        reg.register(NoConfig)
    reg.register(TinyIO)
    reg.register(TinyIO)  # idempotent

    @reg.register(name="Other")
    class Other(TinyIO):
        pass

    assert reg.get("Other") is Other and reg.name_of(Other) == "Other"
    with pytest.raises(ValueError, match="already registered"):
        reg.register(Other, name="TinyIO")
    assert reg.get("LSTM") is None and Registry().get("LSTM") is fastrnn.LSTM
    assert Registry().get("__builtins__") is None and Registry().get("os") is None


def test_default_register_decorator(tmp_path):
    @fio.register(name="TestIOOnlyModel")
    class Model(TinyIO):
        pass

    save(Model(2), tmp_path / "m.npz")
    assert type(load(tmp_path / "m.npz")) is Model


# ---- hostile and broken files ------------------------------------------------------------------

class Payload:
    """Unpickling this writes a sentinel file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').write('pwned')",))


def test_pickle_payloads_never_run(tmp_path, state_file):
    sentinel = tmp_path / "sentinel"
    payload = pickle.dumps(Payload(sentinel))
    # the payload is live: unpickling it (elsewhere) does write a file
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(Payload(probe)))
    assert probe.exists()

    obj_npy = npy(np.array([Payload(sentinel)], dtype=object))
    header = header_of(state_file)
    files = {
        "raw_pickle": payload,
        "object_array_listed_as_object": None,
        "object_array_listed_as_float": None,
        "pickle_as_header": None,
        "pickle_member": None,
    }
    h_obj = dict(header, arrays=[["w", "|O", [1]], ["b", "<i4", [3]]])
    h_flt = dict(header, arrays=[["w", "<f8", [1]], ["b", "<i4", [3]]])
    b_member = [(n, d) for n, d in members_of(state_file) if n == "b.npy"]
    make_zip(tmp_path / "object_array_listed_as_object", [("__fastrnn__.npy", header_npy(h_obj)),
                                                          ("w.npy", obj_npy)] + b_member)
    make_zip(tmp_path / "object_array_listed_as_float", [("__fastrnn__.npy", header_npy(h_flt)),
                                                         ("w.npy", obj_npy)] + b_member)
    make_zip(tmp_path / "pickle_as_header", [("__fastrnn__.npy", obj_npy)])
    make_zip(tmp_path / "pickle_member", [("__fastrnn__.npy", header_npy(header)), ("w.pkl", payload)])
    (tmp_path / "raw_pickle").write_bytes(payload)
    for name in files:
        for reader in (load_state, load):
            with pytest.raises(FormatError):
                reader(tmp_path / name)
    assert not sentinel.exists()


def test_header_declaring_2_pow_40_elements(tmp_path, state_file):
    header = dict(header_of(state_file), arrays=[["w", "<f8", [2**40]], ["b", "<i4", [3]]])
    b_member = [(n, d) for n, d in members_of(state_file) if n == "b.npy"]
    path = make_zip(tmp_path / "huge.npz", [("__fastrnn__.npy", header_npy(header)),
                                             ("w.npy", raw_npy("<f8", (2**40,), b"\0" * 16))] + b_member)
    with pytest.raises(FormatError, match=r"declares shape \(1099511627776,\).*8,796,093,022,208 bytes"):
        load_state(path)
    # and a JSON header that agrees with neither
    header["arrays"][0][2] = [2]
    make_zip(path, [("__fastrnn__.npy", header_npy(header)),
                    ("w.npy", raw_npy("<f8", (2**40,), b"\0" * 16))] + b_member)
    with pytest.raises(FormatError, match="but the header lists"):
        load_state(path)


@pytest.mark.parametrize("text,match", [
    (b"\xff\xfe{}", "JSON header is invalid"),
    (b'{"format": "fastrnn", "format": "fastrnn"}', "repeats the key"),
    (b"[" * 100_000 + b"]" * 100_000, "JSON header is invalid"),
    (b'{"x": NaN}', "NaN"),
    (b"[1, 2]", "must be an object"),
    (b"{}", "must have the keys"),
])
def test_bad_json_headers(tmp_path, text, match):
    path = make_zip(tmp_path / "f.npz", [("__fastrnn__.npy", header_npy(text))])
    with pytest.raises(FormatError, match=match):
        load_state(path)


def test_huge_json_header_refused_before_reading(tmp_path):
    text = json.dumps({"pad": " " * (2 << 20)}).encode()
    path = make_zip(tmp_path / "f.npz", [("__fastrnn__.npy", header_npy(text))])
    with pytest.raises(FormatError, match="more than the 1,048,576 allowed"):
        load_state(path)


@pytest.mark.parametrize("change,match", [
    (dict(format="pickle"), "not a fastrnn file"),
    (dict(version=2), "unsupported format version"),
    (dict(version=True), "unsupported format version"),
    (dict(kind="exec"), "kind must be"),
    (dict(arrays=[["w", "<f8", [2, 3]], ["w", "<i4", [3]]]), "duplicate array name 'w'"),
    (dict(arrays=[["w", "<f8", [2, 3]]]), r"unlisted members \['b.npy'\]"),
    (dict(arrays=[["w", "<f8", [2, 3]], ["b", "<i4", [3]], ["c", "<f8", [1]]]), r"missing members \['c.npy'\]"),
    (dict(arrays=[["w", "<f8", [-2, 3]], ["b", "<i4", [3]]]), "invalid shape"),
    (dict(arrays=[["w", "<f8", [2.0, 3]], ["b", "<i4", [3]]]), "invalid shape"),
    (dict(arrays=[["w", "<f8", ["2", 3]], ["b", "<i4", [3]]]), "invalid shape"),
    (dict(arrays=[["w", "<f8", [True, 3]], ["b", "<i4", [3]]]), "invalid shape"),
    (dict(arrays=[["w", "|O", [2, 3]], ["b", "<i4", [3]]]), "disallowed dtype"),
    (dict(arrays=[["w", "<U3", [2, 3]], ["b", "<i4", [3]]]), "disallowed dtype"),
    (dict(arrays=[["w", "nonsense", [2, 3]], ["b", "<i4", [3]]]), "invalid dtype"),
    (dict(arrays=[["w", "<f4", [2, 3]], ["b", "<i4", [3]]]), "but the header lists"),
    (dict(arrays=[["w", "<f8", [3, 2]], ["b", "<i4", [3]]]), "but the header lists"),
    (dict(arrays=[["w", "<f8", [2, 3]], ["b", "<i4", [3]], 7]), "must be \\[name, dtype, shape\\]"),
    (dict(arrays={"w": 1}), "'arrays' must be a list"),
    (dict(metadata=[1]), "metadata must be an object"),
])
def test_mutated_header_fields(tmp_path, state_file, change, match):
    header = dict(header_of(state_file), **change)
    path = with_header(state_file, tmp_path / "f.npz", header)
    with pytest.raises(FormatError, match=match):
        load_state(path)


def test_unknown_duplicate_and_compressed_members(tmp_path, state_file):
    members = members_of(state_file)
    cases = {
        "unknown_txt": members + [("evil.txt", b"hi")],
        "unlisted_npy": members + [("extra.npy", npy(np.ones(2)))],
        "no_header": [m for m in members if m[0] != "__fastrnn__.npy"],
        "duplicate": members + [members[1]],
    }
    for name, ms in cases.items():
        with pytest.warns(UserWarning) if name == "duplicate" else _nullcontext():
            make_zip(tmp_path / name, ms)
        with pytest.raises(FormatError, match="unexpected archive member|unlisted|no __fastrnn__|duplicate"):
            load_state(tmp_path / name)
    make_zip(tmp_path / "deflated", members, compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(FormatError, match="is compressed"):
        load_state(tmp_path / "deflated")
    for junk in (b"", b"PK\x05\x06" + b"\0" * 18, b"not a zip at all"):
        (tmp_path / "junk").write_bytes(junk)
        with pytest.raises(FormatError, match="not a zip|no __fastrnn__"):
            load_state(tmp_path / "junk")


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("member", [
    raw_npy("<f8", (2, 3), b"\0" * 48, version=(3, 0)),            # npy version we do not read
    raw_npy("<f8", (2, 3), b"\0" * 40),                             # too few data bytes
    raw_npy("<f8", (2, 3), b"\0" * 56),                             # too many data bytes
    raw_npy("<f8", (-1, 3), b"\0" * 48),                            # negative dimension
    raw_npy("<f8", (2, 3), b"\0" * 48, version=(2, 0)).replace(b"\x77\x00\x00\x00", b"\xff\xff\xff\x7f"),
    b"\x93NUMPY\x01\x00\xff\xff" + b"{" * 65535,                   # header too long to parse safely
    b"\x93NOTNPY\x01\x00",
])
def test_bad_npy_members(tmp_path, state_file, member):
    members = [(n, member if n == "w.npy" else d) for n, d in members_of(state_file)]
    path = make_zip(tmp_path / "f.npz", members)
    with pytest.raises(FormatError):
        load_state(path)


def test_bit_flip_in_data_caught_by_crc(tmp_path, state_file):
    data = bytearray(state_file.read_bytes())
    spot = data.find(np.arange(6.0).reshape(2, 3).tobytes()) + 9
    data[spot] ^= 0x10
    (tmp_path / "f.npz").write_bytes(bytes(data))
    with pytest.raises(FormatError, match="CRC"):
        load_state(tmp_path / "f.npz")


def test_model_config_attacks(tmp_path, model_file):
    header = header_of(model_file)
    cases = [
        (dict(header, **{"class": "os.system"}), "unknown class 'os.system'"),
        (dict(header, **{"class": "__import__"}), "unknown class"),
        (dict(header, config=dict(header["config"], n=10**12)), r"config.n=1000000000000 is larger than"),
        (dict(header, config=dict(header["config"], n=3)), "arrays disagree with the TinyIO config"),
        (dict(header, config=dict(header["config"], dtype="float32")), "arrays disagree"),
        (dict(header, config=dict(header["config"], dtype="int8")), "does not build a TinyIO"),
        (dict(header, config=dict(header["config"], bogus=1)), "does not build a TinyIO: TypeError"),
        (dict(header, config=None), "needs a class name and a config"),
    ]
    for k, (h, match) in enumerate(cases):
        path = with_header(model_file, tmp_path / f"c{k}.npz", h)
        with pytest.raises(FormatError, match=match):
            load(path, registry_=REG)
    # non-finite weights are refused by the model's own load_state_dict
    members = [(n, npy(np.full(4, np.nan)) if n == "b.npy" else d) for n, d in members_of(model_file)]
    path = make_zip(tmp_path / "nan.npz", members)
    with pytest.raises(FormatError, match="NaN"):
        load(path, registry_=REG)


def test_builtin_config_claiming_a_huge_model_is_refused_before_construction(tmp_path):
    path = tmp_path / "lstm.npz"
    fastrnn.save(fastrnn.LSTM(2, 3, dtype=np.float64), path)
    header = header_of(path)
    # 4*20000*(2+20000)+8*20000 parameters (12.8 GB of float64) from a 5 kB file: refused by the count, not built
    bad = with_header(path, tmp_path / "bad.npz", dict(header, config=dict(header["config"], hidden_size=20000)))
    with pytest.raises(FormatError, match="describes 1,600,320,000 parameters, but the file holds 84 "):
        fastrnn.load(bad)
    bad = with_header(path, tmp_path / "bad2.npz", dict(header, config=dict(header["config"], num_layers=10**6)))
    with pytest.raises(FormatError, match="larger than the 65,536"):
        fastrnn.load(bad)


def test_num_parameters_matches_the_built_layers():
    layers = [fastrnn.RNN(3, 5, num_layers=2, nonlinearity="relu"),
              fastrnn.LSTM(3, 6, num_layers=3, bidirectional=True, proj_size=2),
              fastrnn.GRU(4, 5, num_layers=2, bias=False, bidirectional=True, reset_after=False),
              fastrnn.RNNCell(3, 4), fastrnn.LSTMCell(3, 4, bias=False), fastrnn.GRUCell(2, 5)]
    for name in ("Linear", "Embedding", "LayerNorm", "Sequential"):
        if not hasattr(fastrnn, name):
            pytest.skip(f"fastrnn.{name} is not available yet")
    layers += [fastrnn.Linear(3, 4), fastrnn.Linear(3, 4, bias=False), fastrnn.Embedding(10, 3),
               fastrnn.LayerNorm(5), fastrnn.LayerNorm(5, elementwise_affine=False),
               fastrnn.Sequential(fastrnn.Embedding(10, 3), fastrnn.GRU(3, 4), fastrnn.Linear(4, 10))]
    for layer in layers:
        count = fio.num_parameters(fio.layer_spec(layer))
        assert count == sum(s.size for s in layer.param_sets()), layer
    assert fio.num_parameters({"class": "TinyIO", "config": {}}) is None          # not registered by default
    assert fio.num_parameters({"class": "TinyIO", "config": {"n": 3}}, REG) is None  # no hook: unknown
    assert fio.num_parameters({"class": "LSTM", "config": {"input_size": "3"}}) is None



def _model_cases():
    return [
        fastrnn.LanguageModel(11, hidden_size=7, num_layers=2, cell="gru", embed_size=5, seed=0),
        fastrnn.LanguageModel(13, hidden_size=4, num_layers=1, cell="rnn", embed_size=3, dropout=0.2, seed=0),
        fastrnn.LanguageModel(6, hidden_size=5, num_layers=3, cell="lstm", embed_size=2, dtype="float64", seed=0),
        fastrnn.SequenceTagger(4, input_size=3, hidden_size=5, num_layers=2, cell="lstm", seed=0),
        fastrnn.SequenceTagger(4, vocab_size=9, hidden_size=5, bidirectional=False, cell="gru", seed=0),
        fastrnn.Forecaster(3, hidden_size=6, num_layers=2, seed=0),
        fastrnn.Forecaster(3, output_size=2, cell="rnn", seed=0),
        fastrnn.SequenceClassifier(3, input_size=4, hidden_size=5, bidirectional=True, num_layers=2, seed=0),
        fastrnn.SequenceClassifier(3, vocab_size=12, hidden_size=5, cell="gru", seed=0),
    ]


def test_model_config_num_parameters_matches_the_built_models():
    for model in _model_cases():
        config = model.get_config()
        count = model.num_parameters()
        assert count == sum(a.size for a in model.state_dict().values()) > 0
        assert type(model).config_num_parameters(config) == count, type(model).__name__
        assert fio.num_parameters(fio.layer_spec(model)) == count, type(model).__name__
    # missing arguments take the constructor's defaults
    assert fastrnn.Forecaster.config_num_parameters({}) == fastrnn.Forecaster().num_parameters()
    assert (fastrnn.SequenceClassifier.config_num_parameters({"num_classes": 2, "input_size": 3})
            == fastrnn.SequenceClassifier(2, input_size=3).num_parameters())
    # configs that would not build are "unknown" (None): the constructor reports them
    for cls, config in [(fastrnn.LanguageModel, {"hidden_size": 3}),                      # vocab_size missing
                        (fastrnn.LanguageModel, {"vocab_size": 5, "bogus": 1}),
                        (fastrnn.LanguageModel, {"vocab_size": 5, "cell": "transformer"}),
                        (fastrnn.LanguageModel, {"vocab_size": 5, "cell": ["lstm"]}),
                        (fastrnn.SequenceTagger, {"num_tags": 2}),                        # neither input kind
                        (fastrnn.SequenceTagger, {"num_tags": 2, "input_size": 3, "vocab_size": 4}),
                        (fastrnn.Forecaster, {"hidden_size": "32"}),
                        (fastrnn.Forecaster, {"hidden_size": True}),
                        (fastrnn.SequenceClassifier, {"num_classes": 2, "input_size": 3.0}),
                        (fastrnn.SequenceClassifier, None)]:
        assert cls.config_num_parameters(config) is None, (cls.__name__, config)
        assert fio.num_parameters({"class": cls.__name__, "config": config}) is None


def test_load_refuses_a_model_config_that_disagrees_with_the_parameter_count(tmp_path, monkeypatch):
    built, real_build = [], fio.build_layer
    for k, model in enumerate(_model_cases()):
        cls = type(model)
        path = tmp_path / f"m{k}.npz"
        save(model, path)
        header = header_of(path)
        n_elements = model.num_parameters()
        # a larger model than the file's arrays: refused from the count, before the class is constructed
        bigger = dict(header["config"], hidden_size=header["config"]["hidden_size"] + 40)
        want = cls.config_num_parameters(bigger)
        assert want > n_elements
        bad = with_header(path, tmp_path / f"big{k}.npz", dict(header, config=bigger))
        monkeypatch.setattr(fio, "build_layer", lambda spec, reg=None: built.append(spec) or real_build(spec, reg))
        with pytest.raises(FormatError, match=f"the {cls.__name__} config describes {want:,} parameters, but the "
                                              f"file holds {n_elements:,} array elements"):
            load(bad)
        assert built == []  # refused before anything was constructed
        monkeypatch.setattr(fio, "build_layer", real_build)
        # a smaller one passes the count but not the shapes
        smaller = dict(header["config"], hidden_size=header["config"]["hidden_size"] - 1)
        assert cls.config_num_parameters(smaller) < n_elements
        bad = with_header(path, tmp_path / f"small{k}.npz", dict(header, config=smaller))
        with pytest.raises(FormatError, match=f"the arrays disagree with the {cls.__name__} config"):
            load(bad)
        # the untouched file still loads bit-identically
        again = load(path)
        assert type(again) is cls
        for name, arr in model.state_dict().items():
            assert np.array_equal(again.state_dict()[name], arr)


def test_a_raising_config_num_parameters_hook_means_unknown():
    class Hooked(TinyIO):
        @classmethod
        def config_num_parameters(cls, config):
            return config["n"] * 3

    reg = Registry()
    reg.register(Hooked)
    assert fio.num_parameters({"class": "Hooked", "config": {"n": 4}}, reg) == 12
    assert fio.num_parameters({"class": "Hooked", "config": {}}, reg) is None        # KeyError
    assert fio.num_parameters({"class": "Hooked", "config": {"n": "x"}}, reg) is None  # a str, not an int


FUZZ = textwrap.dedent(r"""
    import io, json, os, random, resource, sys, time, zipfile
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    sys.path.insert(0, sys.argv[1])
    import numpy as np
    from fastrnn.io import FormatError, Registry, load, load_state, save, save_state
    from fastrnn.layers.base import Layer

    class Tiny(Layer):
        def __init__(self, n=3, dtype="float64"):
            self.n = n
            super().__init__([("w", (2, n)), ("b", (n,))], dtype)
            self.param_set.data[...] = np.arange(self.param_set.size) / 7
        def get_config(self):
            return {"n": self.n, "dtype": self.dtype.name}

    reg = Registry(builtins=False)
    reg.register(Tiny)
    work = sys.argv[2]
    model_path, state_path = (os.path.join(work, n) for n in ("m.npz", "s.npz"))
    save(Tiny(4), model_path, registry_=reg)
    save_state({"w": np.linspace(0, 1, 6).reshape(2, 3), "i": np.arange(5, dtype=np.int16)}, state_path)
    originals = {p: open(p, "rb").read() for p in (model_path, state_path)}
    expect = {model_path: load(model_path, registry_=reg).state_dict(), state_path: load_state(state_path)}
    rng = random.Random(1234)
    counts = {"rejected": 0, "loaded": 0}
    deadline = time.monotonic() + float(sys.argv[3])

    def attempt(src, data):
        probe = io.BytesIO(data)
        try:
            got = load(probe, registry_=reg).state_dict() if src == model_path else load_state(probe)
        except FormatError:
            counts["rejected"] += 1
            return
        want = expect[src]
        assert list(got) == list(want), (list(got), list(want))
        for k in want:
            assert got[k].tobytes() == want[k].tobytes() and got[k].dtype == want[k].dtype, k
        counts["loaded"] += 1

    for src, data in originals.items():
        for cut in range(len(data)):                        # every truncation
            attempt(src, data[:cut])
    while time.monotonic() < deadline:                     # random bit flips and byte smears
        src = rng.choice(list(originals))
        data = bytearray(originals[src])
        for _ in range(rng.choice((1, 1, 2, 8))):
            pos = rng.randrange(len(data))
            if rng.random() < 0.7:
                data[pos] ^= 1 << rng.randrange(8)
            else:
                data[pos:pos + 4] = bytes(rng.choice((0, 0xFF, 0x7F)) for _ in range(4))[:len(data) - pos]
        attempt(src, bytes(data))
    # header fields replaced by hostile values, with the zip rebuilt so that its CRCs are valid
    members = {}
    with zipfile.ZipFile(model_path) as zf:
        for info in zf.infolist():
            members[info.filename] = zf.read(info)
    header = json.loads(np.load(model_path)["__fastrnn__"].tobytes())
    hostile = [-1, 60000, 2**40, 2**64, -2**63, 1e9, 1e300, "NaN", None, [], {}, "x" * 1000, True, [2**40, 2**40]]
    def rebuilt(h, w_npy=None):
        text = json.dumps(h).encode()
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.frombuffer(text, np.uint8))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as zf:
            zf.writestr("__fastrnn__.npy", buf.getvalue())
            for name, d in members.items():
                if name != "__fastrnn__.npy":
                    zf.writestr(name, w_npy if (w_npy is not None and name == "w.npy") else d)
        return out.getvalue()
    for value in hostile:
        for key in ("n", "dtype"):
            attempt(model_path, rebuilt(dict(header, config=dict(header["config"], **{key: value}))))
        for field in range(3):
            arrays = [list(a) for a in header["arrays"]]
            arrays[0][field] = value
            attempt(model_path, rebuilt(dict(header, arrays=arrays)))
            arrays = [list(a) for a in header["arrays"]]
            arrays[0][2] = [value, 4]
            attempt(model_path, rebuilt(dict(header, arrays=arrays)))
        for top in ("format", "version", "kind", "class", "config", "metadata", "arrays"):
            attempt(model_path, rebuilt(dict(header, **{top: value})))
    for shape in ("(2**40,)", "(-8,)", "(2, 4, 0)", "(1e3,)", "('a',)", "(2**62, 2**62)", "(8,) * 40"):
        for descr in ("'<f8'", "'|O'", "'<f4'", "[('a', '<f8')]", "'<c16'", "'V8'"):
            text = ("{'descr': %s, 'fortran_order': False, 'shape': %s, }" % (descr, shape)).ljust(118) + "\n"
            w = b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode() + b"\0" * 64
            attempt(model_path, rebuilt(header, w))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("OK", counts["rejected"], counts["loaded"], "peak_kb", peak)
""")


def test_mutation_fuzz_in_memory_limited_subprocess(tmp_path):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", FUZZ, ROOT, str(tmp_path), "3"], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    words = proc.stdout.split()
    assert words[0] == "OK", proc.stdout + proc.stderr[-2000:]
    rejected, loaded, peak_kb = int(words[1]), int(words[2]), int(words[4])
    assert rejected > 5000 and loaded > 0
    assert peak_kb < 1_000_000  # never near the 2 GB limit


# ---- PyTorch weights ---------------------------------------------------------------------------

def test_io_does_not_import_torch():
    code = "import sys, fastrnn.io; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_from_torch_state_dict_loads_into_fastrnn_lstm():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tl = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True).double()
    sd = from_torch_state_dict(tl.state_dict())
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float64 for v in sd.values())
    fl = fastrnn.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=np.float64)
    fl.load_state_dict(sd)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    with torch.no_grad():
        want = tl(torch.tensor(x))[0].numpy()
    np.testing.assert_allclose(fl(x)[0], want, rtol=1e-10, atol=1e-12)


def test_from_torch_state_dict_options_and_errors():
    torch = pytest.importorskip("torch")
    sd = {"rnn.weight": torch.ones(2, 2, dtype=torch.bfloat16), "rnn.n": torch.tensor(3), "head.w": torch.zeros(1)}
    out = from_torch_state_dict(sd, prefix="rnn.")
    assert set(out) == {"weight", "n"} and out["weight"].dtype == np.float32 and out["n"].dtype == np.int64
    assert from_torch_state_dict(sd, dtype=np.float64)["head.w"].dtype == np.float64
    with pytest.raises(TypeError, match=r"state_dict\['x'\] is a str"):
        from_torch_state_dict({"x": "nope"})
    with pytest.raises(TypeError, match="complex"):
        from_torch_state_dict({"c": torch.zeros(2, dtype=torch.complex64)})
    with pytest.raises(TypeError, match="mapping"):
        from_torch_state_dict([1, 2])


def test_replacing_makes_new_files_readable_and_checks_its_mode(tmp_path):
    from fastrnn.atomic_file import replacing

    path = tmp_path / "new.txt"
    with replacing(path, "w", encoding="utf-8") as f:
        f.write("whole")
    assert path.read_text() == "whole" and os.stat(path).st_mode & 0o777 == 0o644
    with pytest.raises(ValueError, match="mode must be 'wb' or 'w', got 'a'"):
        with replacing(path, "a"):
            pass
    assert path.read_text() == "whole" and sorted(os.listdir(tmp_path)) == ["new.txt"]
