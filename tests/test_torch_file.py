"""fastrnn.load_torch_state_dict: torch.save files read without torch and without running their code.

Files are written by the installed torch (the tests skip without it) and compared bit for bit with the
in-memory state dict; hostile files are assembled by hand from pickle opcodes (``Ops`` below), and each
one checked against torch.load(weights_only=True) where that makes sense, so the assembler itself is
tested.
"""
import io
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import warnings
import zipfile

import numpy as np
import pytest

import fastrnn as fr
from fastrnn.io import FormatError, from_torch_state_dict
from fastrnn import torch_file
from fastrnn.torch_file import load_torch_state_dict

torch = pytest.importorskip("torch", reason="torch is needed to write the checkpoint files these tests read")
nn = torch.nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def saved(obj, path, **kwargs):
    torch.save(obj, path, **kwargs)
    return path


def assert_same(got, state_dict, prefix=""):
    """got equals from_torch_state_dict(state_dict) bit for bit: same keys, dtypes, shapes and bytes."""
    want = from_torch_state_dict(state_dict, prefix=prefix)
    assert list(got) == list(want)
    for name, arr in want.items():
        assert got[name].dtype == arr.dtype and got[name].shape == arr.shape, name
        assert got[name].tobytes() == arr.tobytes(), name
        assert got[name].flags.c_contiguous and got[name].flags.writeable


# ---- real files from torch.save ----------------------------------------------------------------

def modules():
    torch.manual_seed(0)
    return {
        "lstm": nn.LSTM(3, 4, num_layers=2, bidirectional=True),
        "gru": nn.GRU(3, 5),
        "rnn": nn.RNN(3, 4, nonlinearity="relu", num_layers=2),
        "linear": nn.Linear(3, 2),
        "embedding": nn.Embedding(10, 3),
        "sequential": nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2), nn.BatchNorm1d(2)),
    }


@pytest.mark.parametrize("convert", ["float", "double", "half", "bfloat16"])
@pytest.mark.parametrize("name", ["lstm", "gru", "rnn", "linear", "embedding", "sequential"])
def test_state_dicts_bit_exact(tmp_path, name, convert):
    module = getattr(modules()[name], convert)()
    sd = module.state_dict()
    got = load_torch_state_dict(saved(sd, tmp_path / "m.pt"))
    assert_same(got, sd)
    if convert == "bfloat16":  # converted exactly to float32
        assert all(a.dtype == np.float32 for k, a in got.items() if "num_batches" not in k)
    if name == "sequential":
        assert got["3.num_batches_tracked"].dtype == np.int64 and got["3.num_batches_tracked"].shape == ()


def torch_out(module, x):
    with torch.no_grad():
        out = module(torch.from_numpy(x))
    return (out[0] if isinstance(out, tuple) else out).numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loaded_weights_give_torchs_outputs(tmp_path, dtype):
    ms = modules()
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    x = np.random.default_rng(0).standard_normal((6, 2, 3)).astype(dtype)
    layers = {"lstm": fr.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=dtype),
              "gru": fr.GRU(3, 5, dtype=dtype),
              "rnn": fr.RNN(3, 4, nonlinearity="relu", num_layers=2, dtype=dtype)}
    for name, layer in layers.items():
        module = ms[name].to(tdt)
        layer.load_state_dict(load_torch_state_dict(saved(module.state_dict(), tmp_path / f"{name}.pt")))
        np.testing.assert_allclose(layer(x)[0], torch_out(module, x), **tol)

    linear = fr.Linear(3, 2, dtype=dtype)
    linear.load_state_dict(load_torch_state_dict(saved(ms["linear"].to(tdt).state_dict(), tmp_path / "l.pt")))
    np.testing.assert_allclose(linear(x[0]), torch_out(ms["linear"], x[0]), **tol)

    emb = fr.Embedding(10, 3, dtype=dtype)
    emb.load_state_dict(load_torch_state_dict(saved(ms["embedding"].to(tdt).state_dict(), tmp_path / "e.pt")))
    ids = np.array([[1, 9, 0], [4, 4, 2]])
    with torch.no_grad():
        np.testing.assert_array_equal(emb(ids), ms["embedding"](torch.from_numpy(ids)).numpy())

    # the two Linear layers of the torch Sequential, loaded by prefix into a fastrnn Sequential
    seq_t = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)).to(tdt)
    seq_f = fr.Sequential(fr.Linear(3, 4, dtype=dtype), fr.Linear(4, 2, dtype=dtype))
    path = saved({"model": seq_t.state_dict(), "epoch": 3}, tmp_path / "ckpt.pt")
    seq_f.load_state_dict(load_torch_state_dict(path, key="model"))
    np.testing.assert_allclose(seq_f(x[0])[0], torch_out(seq_t, x[0]), **tol)


def test_prefix_dtype_parameters_and_checkpoints(tmp_path):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Embedding(7, 3), nn.LSTM(3, 4))
    sd = model.state_dict()
    path = saved(sd, tmp_path / "sd.pt")
    assert_same(load_torch_state_dict(path, prefix="1."), sd, prefix="1.")
    lstm = fr.LSTM(3, 4, dtype=np.float64)
    lstm.load_state_dict(load_torch_state_dict(path, prefix="1.", dtype=np.float64))
    assert np.array_equal(lstm.params["weight_hh_l0"], sd["1.weight_hh_l0"].double().numpy())
    got = load_torch_state_dict(path, dtype=np.float16)
    assert all(a.dtype == np.float16 for a in got.values())

    # Parameters (keep_vars / named_parameters) go through torch._utils._rebuild_parameter
    params = dict(model.named_parameters())
    assert_same(load_torch_state_dict(saved(params, tmp_path / "p.pt")), params)
    assert_same(load_torch_state_dict(saved(model.state_dict(keep_vars=True), tmp_path / "kv.pt")), sd)

    # a training checkpoint: nested dicts, numbers, strings, lists and an optimizer state
    opt = torch.optim.Adam(model.parameters())
    model[1](model[0](torch.tensor([[1, 2]])))[0].sum().backward()
    opt.step()
    ckpt = {"model": model.state_dict(), "epoch": 3, "lr": 0.1, "name": "run", "hist": [1.0, 2.5],
            "opt": opt.state_dict(), "nested": {"inner": {"w": torch.arange(4.0)}}}
    path = saved(ckpt, tmp_path / "ckpt.pt")
    assert_same(load_torch_state_dict(path, key="model"), ckpt["model"])
    assert_same(load_torch_state_dict(path, key=("nested", "inner")), ckpt["nested"]["inner"])
    with pytest.raises(FormatError, match=r"checkpoint\['model'\] is a dict, not a tensor; "
                                          r".*key=\.\.\., one of \['model', 'opt', 'nested'\]"):
        load_torch_state_dict(path)
    with pytest.raises(ValueError, match=r"key 'modle' is not in the checkpoint .*\['epoch', 'hist', 'lr', 'model'"):
        load_torch_state_dict(path, key="modle")
    with pytest.raises(FormatError, match=r"\['epoch'\] is an int, not a state dict"):
        load_torch_state_dict(path, key="epoch")
    with pytest.raises(TypeError, match="prefix must be a string"):
        load_torch_state_dict(path, prefix=1)
    with pytest.raises(TypeError, match="dtype must be None or a numpy dtype"):
        load_torch_state_dict(path, key="model", dtype="float99")
    with pytest.raises(TypeError, match="path must be a file name"):
        load_torch_state_dict(3.5)
    with pytest.raises(FileNotFoundError):
        load_torch_state_dict(tmp_path / "missing.pt")
    buf = io.BytesIO(path.read_bytes())  # file objects work too
    assert_same(load_torch_state_dict(buf, key="model"), ckpt["model"])


def test_non_contiguous_offset_shared_and_odd_tensors(tmp_path):
    a = torch.arange(24.0).reshape(4, 6)
    sd = {"t": a.t(), "step": a[:, 1::2], "offset": a[2:], "corner": a[1:3, 2:5].t(), "expand": a[0].expand(3, 6),
          "same": a, "empty": torch.zeros(0, 3), "scalar": torch.tensor(2.5), "bool": a > 7,
          "int8": torch.arange(-3, 3, dtype=torch.int8), "int32": torch.arange(5, dtype=torch.int32),
          "uint8": torch.arange(250, 256, dtype=torch.uint8), "bf16": a.bfloat16()[::2],
          "half": a.half().t()}
    assert not sd["t"].is_contiguous() and not sd["step"].is_contiguous() and sd["offset"].storage_offset() == 12
    got = load_torch_state_dict(saved(sd, tmp_path / "nc.pt"))
    assert_same(got, sd)
    assert got["bf16"].dtype == np.float32 and got["uint8"].dtype == np.uint8


def test_torch_is_not_imported():
    code = "import sys, fastrnn.torch_file, fastrnn; print('torch' in sys.modules)"
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60, env=env)
    assert out.stdout.strip() == "False", out.stderr


# ---- hand-made archives ------------------------------------------------------------------------

class Ops:
    """Protocol-2 pickle opcodes, enough to write what torch writes (and what it must not)."""

    @staticmethod
    def int(n):  # LONG1: any size, sign included
        data = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
        return b"\x8a" + bytes([len(data)]) + data

    @staticmethod
    def str(text):  # BINUNICODE
        data = text.encode()
        return b"X" + struct.pack("<I", len(data)) + data

    @staticmethod
    def tuple(items):  # MARK ... TUPLE
        return b"(" + b"".join(items) + b"t"

    @staticmethod
    def glob(module, name):  # GLOBAL
        return b"c" + f"{module}\n{name}\n".encode()

    @staticmethod
    def call(module, name, args):  # GLOBAL args REDUCE
        return Ops.glob(module, name) + Ops.tuple(args) + b"R"

    @staticmethod
    def tensor(key, numel, offset, size, stride, storage="FloatStorage"):
        record = Ops.tuple([Ops.str("storage"), Ops.glob("torch", storage), Ops.str(key), Ops.str("cpu"),
                            Ops.int(numel)]) + b"Q"  # BINPERSID
        return Ops.call("torch._utils", "_rebuild_tensor_v2",
                        [record, Ops.int(offset), Ops.tuple(map(Ops.int, size)), Ops.tuple(map(Ops.int, stride)),
                         b"\x89", Ops.call("collections", "OrderedDict", [])])

    @staticmethod
    def state(entries):  # {name: value} as EMPTY_DICT MARK ... SETITEMS, then STOP
        return b"\x80\x02}(" + b"".join(Ops.str(k) + v for k, v in entries.items()) + b"u."


def archive(path, pkl, storages=None, byteorder=b"little", extra=(), compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        zf.writestr("archive/data.pkl", pkl)
        if byteorder is not None:
            zf.writestr("archive/byteorder", byteorder)
        for key, data in (storages or {}).items():
            zf.writestr(f"archive/data/{key}", data)
        zf.writestr("archive/version", b"3\n")
        for name, data in extra:
            zf.writestr(name, data)
    return path


def f32(values, order="<"):
    return np.asarray(values, np.dtype(order + "f4")).tobytes()


def test_the_assembler_writes_what_torch_reads(tmp_path):
    pkl = Ops.state({"w": Ops.tensor("0", 6, 1, (2, 2), (1, 2)), "b": Ops.tensor("1", 3, 0, (3,), (1,), "LongStorage")})
    path = archive(tmp_path / "a.pt", pkl, {"0": f32(range(6)), "1": np.array([7, 8, 9], "<i8").tobytes()})
    want = torch.load(path, weights_only=True)
    assert want["w"].tolist() == [[1.0, 3.0], [2.0, 4.0]]
    assert_same(load_torch_state_dict(path), want)
    # the same data stored big-endian, as a big-endian machine's torch writes it
    big = archive(tmp_path / "big.pt", pkl, {"0": f32(range(6), ">"), "1": np.array([7, 8, 9], ">i8").tobytes()},
                  byteorder=b"big")
    assert_same(load_torch_state_dict(big), want)
    # files from before the byteorder member was written are little-endian
    assert_same(load_torch_state_dict(archive(tmp_path / "old.pt", pkl, {"0": f32(range(6)),
                                                                         "1": np.array([7, 8, 9]).tobytes()},
                                              byteorder=None)), want)


class Payload:
    """Unpickling this runs ``func(*args)``; each use below would create a marker file."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def payloads(folder, tag):
    marker = os.path.join(folder, f"marker-{tag}")
    return marker, {
        "os.system": Payload(os.system, f"touch {marker}-os"),
        "builtins.eval": Payload(eval, f"open({marker + '-eval'!r}, 'w').write('x')"),
        "builtins.exec": Payload(exec, f"open({marker + '-exec'!r}, 'w').write('x')"),
        "subprocess.call": Payload(subprocess.call, ["touch", marker + "-subprocess"]),
    }


def test_payloads_are_live_when_unpickled_normally(tmp_path):
    marker, live = payloads(str(tmp_path), "probe")
    for payload in live.values():
        pickle.loads(pickle.dumps(payload, protocol=2))
    assert sorted(os.listdir(tmp_path)) == sorted(f"marker-probe-{k}" for k in ("os", "eval", "exec", "subprocess"))


def test_hostile_pickles_are_refused_without_running(tmp_path):
    marker, hostile = payloads(str(tmp_path), "x")
    good = Ops.tensor("0", 2, 0, (2,), (1,))
    cases = {}
    for name, payload in hostile.items():
        # os.system lives in posix; protocols 0-2 use Python 2's names (__builtin__, commands)
        shown = {"os.system": r"posix\.system", "builtins.eval": r"(__builtin__|builtins)\.eval",
                 "builtins.exec": r"(__builtin__|builtins)\.exec",
                 "subprocess.call": r"(commands|subprocess)\.call"}[name]
        for protocol in (0, 2, 4):
            cases[f"{name}-p{protocol}"] = (pickle.dumps(payload, protocol=protocol), f"refused the global '{shown}'")
        # hidden inside an otherwise valid state dict, as a value and as a tensor's metadata
        inner = pickle.dumps(payload, protocol=2)[2:-1]  # without PROTO and STOP
        cases[f"{name}-value"] = (Ops.state({"w": good, "evil": inner}), f"refused the global '{shown}'")
        meta = Ops.call("torch._utils", "_rebuild_tensor_v2",
                        [Ops.tuple([Ops.str("storage"), Ops.glob("torch", "FloatStorage"), Ops.str("0"),
                                    Ops.str("cpu"), Ops.int(2)]) + b"Q",
                         Ops.int(0), Ops.tuple([Ops.int(2)]), Ops.tuple([Ops.int(1)]), b"\x89", b"}", inner])
        cases[f"{name}-metadata"] = (Ops.state({"w": meta}), f"refused the global '{shown}'")
    # protocol-0 INST and protocol-4 STACK_GLOBAL spelled out by hand
    cases["inst"] = (b"(S'touch " + marker.encode() + b"-inst'\nios\nsystem\n.", "refused the global 'os.system'")
    cases["stack_global"] = (b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x01x\x85R.",
                             "refused the global 'builtins.eval'")
    cases["sparse"] = (Ops.state({"s": Ops.call("torch._utils", "_rebuild_sparse_tensor", [])}), "sparse, quantized")
    cases["complex"] = (Ops.state({"c": Ops.tensor("0", 2, 0, (2,), (1,), "ComplexFloatStorage")}), "sparse, quantized")
    cases["numpy scalar"] = (Ops.state({"n": Ops.call("numpy.core.multiarray", "scalar", [])}), "refused the global")
    # BUILD on a shared stand-in (it would change how every later file is read) is refused too
    cases["build"] = (b"\x80\x02" + Ops.glob("torch", "FloatStorage") + b"N}\x86b.", "BUILD")
    cases["build_func"] = (b"\x80\x02" + Ops.glob("torch._utils", "_rebuild_tensor_v2") + b"N}\x86b.", "BUILD")
    # a memo index far beyond the pickle's size (the C unpickler would allocate a table that large)
    cases["memo"] = (b"\x80\x02}r\xff\xff\xff\x7f.", "memo entry 2,147,483,647")
    cases["persid"] = (b"\x80\x02X\x01\x00\x00\x000Q.", "unexpected persistent id")
    for k, (pkl, match) in cases.items():
        path = archive(tmp_path / f"{k}.pt", pkl, {"0": f32([1, 2])})
        with pytest.raises(FormatError, match=match):
            load_torch_state_dict(path)
    assert [n for n in os.listdir(tmp_path) if n.startswith("marker")] == []
    # after all that, a valid file still reads correctly (no stand-in was changed)
    a = torch.arange(6.0)
    assert_same(load_torch_state_dict(saved({"a": a}, tmp_path / "ok.pt")), {"a": a})


def test_hostile_sizes(tmp_path, monkeypatch):
    cases = {
        "storage shorter than its record": (Ops.tensor("0", 8, 0, (8,), (1,)), f32(range(4)),
                                            r"declares 8 elements of torch.FloatStorage \(32 bytes\), but the member "
                                            "holds 16"),
        "view past the storage": (Ops.tensor("0", 4, 0, (3, 3), (3, 1)), f32(range(4)), "reads element 8, beyond"),
        "offset past the storage": (Ops.tensor("0", 4, 3, (2,), (1,)), f32(range(4)), "reads element 4, beyond"),
        "2**40 elements declared": (Ops.tensor("0", 2**40, 0, (2**40,), (1,)), f32(range(4)),
                                    "declares 1,099,511,627,776 elements"),
        "2**40 element view": (Ops.tensor("0", 4, 0, (2**40,), (1,)), f32(range(4)), "beyond its storage"),
        "stride-0 view of 2**40": (Ops.tensor("0", 1, 0, (2**20, 2**20), (0, 0)), f32([1]),
                                   r"beyond 8x its size \(a view repeating its storage"),
        "negative stride": (Ops.tensor("0", 4, 3, (4,), (-1,)), f32(range(4)), "negative size or stride"),
        "negative size": (Ops.tensor("0", 4, 0, (-4,), (1,)), f32(range(4)), "negative size or stride"),
        "negative offset": (Ops.tensor("0", 4, -1, (2,), (1,)), f32(range(4)), "invalid storage offset"),
        "rank mismatch": (Ops.tensor("0", 4, 0, (2, 2), (1,)), f32(range(4)), "invalid size/stride"),
        "100 dims": (Ops.tensor("0", 4, 0, (1,) * 100, (1,) * 100), f32(range(4)), "invalid size/stride"),
        "negative numel": (Ops.tensor("0", -4, 0, (2,), (1,)), f32(range(4)), "invalid element count"),
        "missing storage": (Ops.tensor("7", 4, 0, (2,), (1,)), f32(range(4)), "does not hold"),
    }
    for k, (tensor, data, match) in cases.items():
        path = archive(tmp_path / "f.pt", Ops.state({"w": tensor}), {"0": data})
        with pytest.raises(FormatError, match=match):
            load_torch_state_dict(path)
    # one storage declared with two dtypes
    pkl = Ops.state({"a": Ops.tensor("0", 4, 0, (4,), (1,)), "b": Ops.tensor("0", 2, 0, (2,), (1,), "DoubleStorage")})
    with pytest.raises(FormatError, match="declared twice"):
        load_torch_state_dict(archive(tmp_path / "twice.pt", pkl, {"0": f32(range(4))}))
    # a data.pkl beyond the cap (64 MiB; lowered here to keep the file small) is refused from its declared size
    monkeypatch.setattr(torch_file, "MAX_PICKLE_BYTES", 1000)
    with pytest.raises(FormatError, match="data.pkl holds 1,004 bytes, more than the 1,000 allowed"):
        load_torch_state_dict(archive(tmp_path / "bigpkl.pt", b"\x80\x02N." + b"\x00" * 1000))


def test_broken_and_foreign_files(tmp_path):
    a = torch.arange(12.0).reshape(3, 4)
    good = saved({"a": a, "b": a[1:]}, tmp_path / "good.pt")
    data = good.read_bytes()
    # truncation anywhere: a FormatError, never another exception
    for cut in list(range(0, len(data), max(1, len(data) // 60))) + [len(data) - 1, len(data) - 22]:
        (tmp_path / "cut.pt").write_bytes(data[:cut])
        with pytest.raises(FormatError):
            load_torch_state_dict(tmp_path / "cut.pt")
    # a flipped bit in the tensor data is caught by the zip CRC
    with zipfile.ZipFile(good) as zf:  # (torch names the archive folder after the file: "good/")
        info = [i for i in zf.infolist() if i.filename.endswith("/data/0")][0]
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    spot = info.header_offset + 30 + name_len + extra_len + 5  # a byte of the member's data
    flipped = bytearray(data)
    flipped[spot] ^= 0x10
    (tmp_path / "flip.pt").write_bytes(bytes(flipped))
    with pytest.raises(FormatError, match="CRC"):
        load_torch_state_dict(tmp_path / "flip.pt")
    # the legacy (non-zip) torch format
    legacy = saved({"a": a}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(FormatError, match=r"legacy \(non-zip\) serialization format, which is not supported"):
        load_torch_state_dict(legacy)
    # other non-zip files, a fastrnn file, an empty file, a compressed or encrypted-looking archive
    (tmp_path / "text.pt").write_text("hello")
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "raw.pkl").write_bytes(pickle.dumps({"a": 1}))
    for name in ("text.pt", "empty.pt", "raw.pkl"):
        with pytest.raises(FormatError, match="not a PyTorch zip checkpoint.*legacy .* is not supported"):
            load_torch_state_dict(tmp_path / name)
    fr.io.save_state({"w": np.ones(3)}, tmp_path / "f.npz")
    with pytest.raises(FormatError, match="expected one <archive>/data.pkl member, found no"):
        load_torch_state_dict(tmp_path / "f.npz")
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(tmp_path / "deflated.pt", "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    with pytest.raises(FormatError, match="is compressed"):
        load_torch_state_dict(tmp_path / "deflated.pt")
    pkl = Ops.state({"w": Ops.tensor("0", 2, 0, (2,), (1,))})
    for extra, match in [([("other/data.pkl", b"")], "found 2"),
                         ([("archive/data/0", f32([1, 2]))], "duplicate archive member")]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns about the duplicate name it is asked to write
            path = archive(tmp_path / "x.pt", pkl, {"0": f32([1, 2])}, extra=extra)
        with pytest.raises(FormatError, match=match):
            load_torch_state_dict(path)
    for order, match in [(b"middle", "byteorder must be"), (b"x" * 100, "expected a short text")]:
        with pytest.raises(FormatError, match=match):
            load_torch_state_dict(archive(tmp_path / "o.pt", pkl, {"0": f32([1, 2])}, byteorder=order))


FUZZ = textwrap.dedent(r"""
    import random, resource, sys, time
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    sys.path.insert(0, sys.argv[1])
    from fastrnn.io import FormatError
    from fastrnn.torch_file import load_torch_state_dict
    import io
    data = open(sys.argv[2], "rb").read()
    rng = random.Random(0)
    start, refused = time.time(), 0
    variants = [data[:cut] for cut in range(0, len(data), 7)]
    for _ in range(400):
        b = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        variants.append(bytes(b))
    for v in variants:
        try:
            load_torch_state_dict(io.BytesIO(v))
        except FormatError:
            refused += 1
    print("ok", len(variants), refused, round(time.time() - start, 1))
""")


def test_mutation_fuzz_in_memory_limited_subprocess(tmp_path):
    torch.manual_seed(0)
    path = saved(nn.LSTM(2, 3).state_dict(), tmp_path / "lstm.pt")
    out = subprocess.run([sys.executable, "-c", FUZZ, ROOT, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("ok"), out.stdout + out.stderr[-3000:]
    _, tried, refused, _ = out.stdout.split()
    assert int(tried) > 500 and int(refused) > int(tried) // 2, out.stdout  # nearly every variant is refused
