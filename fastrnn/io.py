"""Saving and loading models and state dicts in a format that never executes code from the file.

File format (version 1): an uncompressed ``.npz`` zip archive, readable by
``np.load(path, allow_pickle=False)``, holding

- ``__fastrnn__.npy``: a uint8 array of UTF-8 JSON, the header::

      {"format": "fastrnn", "version": 1, "kind": "model" | "state",
       "class": "LSTM" | null, "config": {...} | null, "metadata": {...} | null,
       "arrays": [[name, dtype, shape], ...]}

- ``<name>.npy`` for every array listed in the header, in that order.

A model file is rebuilt as ``cls(**config)`` (or ``cls.from_config(config)`` when the class defines
it), where ``cls`` comes from a registry of names to classes; no name from the file is ever looked up
anywhere else. Other modules add their classes with ``@fastrnn.io.register``; fastrnn's public layers
are known by name without registering.

Writing is atomic (``fastrnn.atomic_file.replacing``): a temporary file in the same directory, flushed and
fsynced, then ``os.replace``, so a crash leaves either the old file or the new one, never half of one.
Files are byte-for-byte reproducible (fixed zip timestamps).

Reading trusts nothing. Every problem raises ``FormatError`` (a ``ValueError``) before anything is
allocated beyond what the file's own size justifies: only stored (uncompressed), unencrypted,
uniquely named ``.npy`` members whose byte range lies inside the file are accepted; the JSON header is
capped at 1 MiB, must be strict UTF-8 without duplicate keys or NaN; every member's npy header is read
with ``numpy.lib.format`` and must declare a plain numeric dtype (no object, pickled, structured or
string arrays), a shape matching the JSON header, and exactly ``prod(shape) * itemsize`` data bytes
for the member's size; zip CRCs are verified.

A lying config must not make a small file build a huge model. Before a class is constructed, every
number in its config (except ``seed``) must be at most the number of array elements in the file (or
2**16), and when the parameter count the config implies is known (``num_parameters``: the class's own
``config_num_parameters(config)`` classmethod, or the formulas below for fastrnn's layers and
``Sequential``), it must not exceed the file's element count. After construction the model's parameter
names, shapes and dtypes must equal the file's exactly.
"""
from __future__ import annotations

import json
import math
import numbers
import os
import struct
import zipfile

import numpy as np
from numpy.lib import format as npformat

from .atomic_file import replacing

__all__ = ["FormatError", "save", "load", "save_state", "load_state", "register", "Registry", "registry",
           "layer_spec", "build_layer", "num_parameters", "from_torch_state_dict"]

FORMAT_NAME = "fastrnn"
FORMAT_VERSION = 1
HEADER_MEMBER = "__fastrnn__.npy"
MAX_HEADER_BYTES = 1 << 20          # the JSON header
MAX_NPY_HEADER = 10_000             # each npy header (numpy's own default limit)
MAX_MEMBERS = 100_000
MAX_NAME_LENGTH = 1_000
CONFIG_INT_FLOOR = 1 << 16          # config ints up to this are always allowed
ALLOWED_KINDS = "fiub"              # float, signed int, unsigned int, bool
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

#: public fastrnn classes that can be rebuilt from a file without being registered
BUILTIN_CLASSES = ("RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "Linear", "Embedding", "Dropout",
                   "LayerNorm", "Sequential")


class FormatError(ValueError):
    """A file is not a valid fastrnn file (truncated, corrupted, hostile, or inconsistent)."""


# ---- registry -----------------------------------------------------------------------------------

class Registry:
    """Names to classes that ``load`` may construct. Use ``register`` as a decorator::

        @fastrnn.io.register
        class MyModel(fastrnn.layers.base.Layer):
            def get_config(self): ...
    """

    def __init__(self, builtins=True):
        self._classes = {}
        self._builtins = bool(builtins)

    def register(self, cls=None, *, name=None):
        def add(c):
            key = c.__name__ if name is None else name
            if not isinstance(key, str) or not key or key.startswith("_"):
                raise ValueError(f"registry name must be a non-empty string not starting with '_', got {key!r}")
            if not isinstance(c, type):
                raise TypeError(f"register expects a class, got {type(c).__name__}")
            if not callable(getattr(c, "get_config", None)):
                raise TypeError(f"{c.__name__} needs a get_config() method to be saved and rebuilt")
            old = self._classes.get(key)
            if old is not None and old is not c:
                raise ValueError(f"the name {key!r} is already registered for {old.__module__}.{old.__qualname__}")
            self._classes[key] = c
            return c

        return add if cls is None else add(cls)

    def get(self, name):
        """The class registered under ``name``, or None."""
        if not isinstance(name, str):
            return None
        if name in self._classes:
            return self._classes[name]
        if self._builtins and name in BUILTIN_CLASSES:  # an allow-list: never getattr an arbitrary name
            import fastrnn

            cls = getattr(fastrnn, name, None)
            return cls if isinstance(cls, type) else None
        return None

    def name_of(self, cls):
        for key, c in self._classes.items():
            if c is cls:
                return key
        if self._builtins and cls.__name__ in BUILTIN_CLASSES and self.get(cls.__name__) is cls:
            return cls.__name__
        return None

    def names(self):
        names = set(self._classes)
        if self._builtins:
            names.update(n for n in BUILTIN_CLASSES if self.get(n) is not None)
        return sorted(names)


#: the default registry used by save/load
registry = Registry()
register = registry.register


def layer_spec(layer, registry_=None):
    """``{"class": name, "config": layer.get_config()}``: how containers describe their children."""
    reg = registry if registry_ is None else registry_
    name = reg.name_of(type(layer))
    if name is None:
        raise TypeError(f"{type(layer).__name__} is not registered: decorate it with @fastrnn.io.register "
                        f"(registered: {reg.names()})")
    return {"class": name, "config": _jsonable(layer.get_config(), f"{name}.get_config()")}


def build_layer(spec, registry_=None):
    """Rebuild a layer from ``layer_spec`` output; errors are ``FormatError``."""
    reg = registry if registry_ is None else registry_
    if not isinstance(spec, dict) or set(spec) != {"class", "config"}:
        raise FormatError(f"a layer spec must be an object with keys 'class' and 'config', got {_short(spec)}")
    cls = reg.get(spec["class"])
    if cls is None:
        raise FormatError(f"unknown class {_short(spec['class'])}; known classes: {reg.names()}")
    config = spec["config"]
    if not isinstance(config, dict):
        raise FormatError(f"config of {spec['class']} must be an object, got {type(config).__name__}")
    try:
        if callable(getattr(cls, "from_config", None)):
            return cls.from_config(config)
        return cls(**config)
    except FormatError:
        raise
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise FormatError(f"the config does not build a {spec['class']}: {type(exc).__name__}: {exc}") from None


def num_parameters(spec, registry_=None):
    """The number of parameters the layer spec ``{"class", "config"}`` would allocate, or None if unknown.

    Uses the class's ``config_num_parameters(config)`` classmethod when it has one, else the formulas
    for fastrnn's own layers. Nothing is constructed, so a hostile config costs nothing to check.
    """
    reg = registry if registry_ is None else registry_
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        return None
    cls = reg.get(spec.get("class"))
    if cls is None:
        return None
    config = spec["config"]
    hook = getattr(cls, "config_num_parameters", None)
    if callable(hook):
        try:  # a hostile config must not escape load() as anything but "unknown" here
            count = hook(config)
        except (KeyError, TypeError, ValueError, OverflowError):
            return None
    else:
        formula = _BUILTIN_COUNTS.get(cls.__name__)
        if formula is None or reg.get(cls.__name__) is not cls or cls.__module__.split(".")[0] != "fastrnn":
            return None
        try:
            count = formula(config, reg)
        except (KeyError, TypeError):
            return None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def _ints(config, defaults, *names):
    values = []
    for name in names:
        v = config[name] if name in config else defaults[name]
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(name)  # not ours to judge: the constructor reports it
        values.append(v)
    return values


def _recurrent_count(gates):
    def count(config, reg):
        defaults = {"num_layers": 1, "proj_size": 0}
        I, H, L, P = _ints(config, defaults, "input_size", "hidden_size", "num_layers", "proj_size")
        D = 2 if config.get("bidirectional", False) else 1
        G, H_out = gates * H, P or H
        per_dir = G * H_out + (2 * G if config.get("bias", True) else 0) + P * H
        # layer 0 reads I inputs, layers 1..L-1 read D * H_out
        return D * (G * I + per_dir) + max(L - 1, 0) * D * (G * D * H_out + per_dir)
    return count


def _cell_count(gates):
    def count(config, reg):
        I, H = _ints(config, {}, "input_size", "hidden_size")
        G = gates * H
        return G * I + G * H + (2 * G if config.get("bias", True) else 0)
    return count


def _sequential_count(config, reg):
    counts = [num_parameters(child, reg) for child in config["layers"]]
    return None if any(c is None for c in counts) else sum(counts)


def _layernorm_count(config, reg):
    F = config["normalized_shape"]
    F = F[0] if isinstance(F, list) and len(F) == 1 else F
    (F,) = _ints({"F": F}, {}, "F")
    if not config.get("elementwise_affine", True):
        return 0
    return F * (2 if config.get("bias", True) else 1)


_BUILTIN_COUNTS = {
    "RNN": _recurrent_count(1), "LSTM": _recurrent_count(4), "GRU": _recurrent_count(3),
    "RNNCell": _cell_count(1), "LSTMCell": _cell_count(4), "GRUCell": _cell_count(3),
    "Linear": lambda c, reg: (lambda i, o: o * i + (o if c.get("bias", True) else 0))(
        *_ints(c, {}, "in_features", "out_features")),
    "Embedding": lambda c, reg: (lambda n, d: n * d)(*_ints(c, {}, "num_embeddings", "embedding_dim")),
    "LayerNorm": _layernorm_count,
    "Dropout": lambda c, reg: 0,
    "Sequential": _sequential_count,
}


# ---- public API ---------------------------------------------------------------------------------

def save(model, path, metadata=None, registry_=None):
    """Write ``model`` (its class name, ``get_config()`` and ``state_dict()``) to ``path`` atomically."""
    if not callable(getattr(model, "get_config", None)) or not callable(getattr(model, "state_dict", None)):
        raise TypeError(f"save needs a model with get_config() and state_dict(), got {type(model).__name__}; "
                        "use save_state for a plain dict of arrays")
    spec = layer_spec(model, registry_)
    _write(path, "model", spec["class"], spec["config"], _check_state(model.state_dict()), metadata)


def load(path, registry_=None, return_metadata=False):
    """Rebuild the model saved by ``save``. Raises ``FormatError`` for any invalid file."""
    header, arrays = _read(path)
    if header["kind"] != "model":
        raise FormatError(f"{_name(path)} holds a plain state dict (kind {header['kind']!r}), not a model: "
                          "use fastrnn.io.load_state")
    n_elements = sum(a.size for a in arrays.values())
    _check_config_ints(header["config"], max(n_elements, CONFIG_INT_FLOOR), "config")
    spec = {"class": header["class"], "config": header["config"]}
    count = num_parameters(spec, registry_)
    if count is not None and count > n_elements:
        raise FormatError(f"{_name(path)}: the {header['class']} config describes {count:,} parameters, "
                          f"but the file holds {n_elements:,} array elements")
    model = build_layer(spec, registry_)
    expected = model.state_dict()
    problems = [f"missing array {k!r}" for k in expected if k not in arrays]
    problems += [f"unexpected array {k!r}" for k in arrays if k not in expected]
    problems += [f"{k!r}: the config gives {expected[k].dtype} {expected[k].shape}, the file holds "
                 f"{a.dtype} {a.shape}" for k, a in arrays.items()
                 if k in expected and (a.shape != expected[k].shape or a.dtype != expected[k].dtype)]
    if problems:
        raise FormatError(f"{_name(path)}: the arrays disagree with the {header['class']} config: "
                          + "; ".join(problems[:20]) + (" ..." if len(problems) > 20 else ""))
    try:
        model.load_state_dict(arrays)
    except (TypeError, ValueError) as exc:
        raise FormatError(f"{_name(path)}: {exc}") from None
    return (model, header["metadata"]) if return_metadata else model


def save_state(state, path, metadata=None):
    """Write a dict of names to numeric arrays (and optional JSON ``metadata``) atomically."""
    _write(path, "state", None, None, _check_state(state), metadata)


def load_state(path, return_metadata=False):
    """Read the arrays of a file written by ``save_state`` (or ``save``) as a dict of new arrays."""
    header, arrays = _read(path)
    return (arrays, header["metadata"]) if return_metadata else arrays


def from_torch_state_dict(state_dict, prefix="", dtype=None):
    """Convert a PyTorch ``state_dict`` (tensors) to a dict of numpy arrays; torch is not imported.

    Keys starting with ``prefix`` are kept with the prefix removed (``prefix="rnn."`` picks a submodule).
    ``dtype`` (e.g. np.float32) casts floating-point entries; bfloat16 tensors become float32.
    """
    if not hasattr(state_dict, "items"):
        raise TypeError(f"state_dict must be a mapping of names to tensors, got {type(state_dict).__name__}")
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a string, got {type(prefix).__name__}")
    out = {}
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise TypeError(f"state_dict keys must be strings, got {type(key).__name__} {key!r}")
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        if hasattr(value, "detach") and hasattr(value, "numpy"):
            t = value.detach().cpu()
            try:
                arr = t.numpy()
            except TypeError:  # bfloat16 and other dtypes numpy lacks
                arr = t.float().numpy()
        elif isinstance(value, (np.ndarray, numbers.Number)):
            arr = np.asarray(value)
        else:
            raise TypeError(f"state_dict[{key!r}] is a {type(value).__name__}, not a tensor or an array")
        if arr.dtype.kind not in ALLOWED_KINDS:
            raise TypeError(f"state_dict[{key!r}] has dtype {arr.dtype}; expected a real numeric tensor")
        if dtype is not None and arr.dtype.kind == "f":
            arr = arr.astype(dtype)
        out[name] = np.array(arr, order="C", copy=True)
    return out


# ---- writing ------------------------------------------------------------------------------------

def _check_state(state):
    if not hasattr(state, "items"):
        raise TypeError(f"state must be a mapping of names to arrays, got {type(state).__name__}")
    out = {}
    for name, value in state.items():
        if not isinstance(name, str) or not name or name.startswith("__") or "\x00" in name \
                or len(name) > MAX_NAME_LENGTH:
            raise ValueError(f"array names must be non-empty strings (at most {MAX_NAME_LENGTH} characters) "
                             f"not starting with '__', got {name!r}")
        if hasattr(value, "detach") and hasattr(value, "numpy"):
            value = value.detach().cpu().numpy()
        arr = np.asarray(value)
        if arr.dtype.kind not in ALLOWED_KINDS:
            raise TypeError(f"{name!r}: only real numeric or bool arrays can be saved, got dtype {arr.dtype}")
        out[name] = arr if arr.flags.c_contiguous else np.array(arr, order="C")  # (keeps 0-d arrays 0-d)
    if len(out) > MAX_MEMBERS:
        raise ValueError(f"at most {MAX_MEMBERS} arrays per file, got {len(out)}")
    return out


def _jsonable(obj, what):
    """obj with numpy scalars and tuples turned into JSON types; raises TypeError for anything else."""
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (numbers.Integral,)):
        return int(obj)
    if isinstance(obj, numbers.Real):
        value = float(obj)
        if not math.isfinite(value):
            raise ValueError(f"{what} holds a non-finite number {value}, which the format does not store")
        return value
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, np.dtype) or (isinstance(obj, type) and issubclass(obj, np.generic)):
        return np.dtype(obj).name
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, what) for v in obj]
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"{what} has a non-string key {k!r}")
            out[k] = _jsonable(v, what)
        return out
    raise TypeError(f"{what} holds a {type(obj).__name__} ({obj!r}), which is not JSON data")


def _write(path, kind, class_name, config, arrays, metadata):
    header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "kind": kind, "class": class_name,
              "config": config, "metadata": None if metadata is None else _jsonable(metadata, "metadata"),
              "arrays": [[name, a.dtype.str, list(a.shape)] for name, a in arrays.items()]}
    text = json.dumps(header, allow_nan=False, separators=(",", ":")).encode("utf-8")
    if len(text) > MAX_HEADER_BYTES:
        raise ValueError(f"the JSON header would take {len(text):,} bytes, more than the {MAX_HEADER_BYTES:,} "
                         "a reader accepts (too many arrays or too large a config/metadata)")
    with replacing(path) as f:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            _write_member(zf, HEADER_MEMBER, np.frombuffer(text, np.uint8))
            for name, arr in arrays.items():
                _write_member(zf, name + ".npy", arr)


def _write_member(zf, member, arr):
    info = zipfile.ZipInfo(member, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    with zf.open(info, "w", force_zip64=True) as fh:
        npformat.write_array(fh, arr, allow_pickle=False)


# ---- reading ------------------------------------------------------------------------------------

# What a corrupted or hostile zip/npy can make the standard library and numpy raise while parsing.
_PARSE_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, struct.error, KeyError,
                 NotImplementedError, RuntimeError, OverflowError, UnicodeDecodeError, SyntaxError, TypeError,
                 IndexError, OSError, RecursionError)


def _name(path):
    return repr(os.fspath(path)) if isinstance(path, (str, bytes, os.PathLike)) else "the file"


def _short(obj, limit=80):
    text = repr(obj)
    return text if len(text) <= limit else text[:limit] + "..."


def _read(path):
    """(header dict, {name: array}) from a file, or FormatError."""
    if isinstance(path, (str, bytes, os.PathLike)):
        with open(path, "rb") as f:  # a missing file raises FileNotFoundError, not FormatError
            return _read_file(f, _name(path))
    if hasattr(path, "read") and hasattr(path, "seek"):
        return _read_file(path, "the file")
    raise TypeError(f"path must be a file name or a binary file object, got {type(path).__name__}")


def _read_file(f, label):
    try:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(0)
        try:
            zf = zipfile.ZipFile(f, "r")
        except zipfile.BadZipFile as exc:
            raise FormatError(f"{label} is not a fastrnn file (not a zip/npz archive: {exc})") from None
        with zf:
            infos = _check_members(zf, size, label)
            if HEADER_MEMBER not in infos:
                raise FormatError(f"{label} is not a fastrnn file: it has no {HEADER_MEMBER} header member")
            raw = _read_member(zf, infos[HEADER_MEMBER], label, max_bytes=MAX_HEADER_BYTES,
                               want=(np.dtype(np.uint8), None))
            header = _parse_header(raw, label)
            declared = {name: (dtype, shape) for name, dtype, shape in header["arrays"]}
            names = set(infos) - {HEADER_MEMBER}
            listed = {name + ".npy" for name in declared}
            if names != listed:
                extra = sorted(names - listed)[:5]
                missing = sorted(listed - names)[:5]
                raise FormatError(f"{label}: the archive members disagree with the header "
                                  f"(unlisted members {extra}, missing members {missing})")
            arrays = {}
            for name, (dtype, shape) in declared.items():
                arr = _read_member(zf, infos[name + ".npy"], label, want=(dtype, shape))
                arrays[name] = arr
            return header, arrays
    except FormatError:
        raise
    except MemoryError:
        raise
    except _PARSE_ERRORS as exc:
        raise FormatError(f"{label} is corrupted or not a fastrnn file: {type(exc).__name__}: {exc}") from None


def _check_members(zf, size, label):
    infos = {}
    members = zf.infolist()
    if len(members) > MAX_MEMBERS + 1:
        raise FormatError(f"{label}: {len(members)} archive members, more than the {MAX_MEMBERS + 1} allowed")
    for info in members:
        name = info.filename
        if name in infos:
            raise FormatError(f"{label}: duplicate archive member {_short(name)}")
        if not name.endswith(".npy") or len(name) > MAX_NAME_LENGTH + 4:
            raise FormatError(f"{label}: unexpected archive member {_short(name)} (only .npy arrays are allowed)")
        if info.flag_bits & 0x1:
            raise FormatError(f"{label}: member {_short(name)} is encrypted")
        if info.compress_type != zipfile.ZIP_STORED:
            raise FormatError(f"{label}: member {_short(name)} is compressed (method {info.compress_type}); "
                              "fastrnn files store arrays uncompressed, so sizes can be checked before reading")
        if info.compress_size != info.file_size or info.header_offset < 0 \
                or info.header_offset + info.compress_size > size:
            raise FormatError(f"{label}: member {_short(name)} declares {info.file_size:,} bytes at offset "
                              f"{info.header_offset:,}, beyond the file's {size:,} bytes (truncated or corrupted)")
        infos[name] = info
    return infos


def _read_member(zf, info, label, want, max_bytes=None):
    """Read one .npy member after checking its header against ``want`` = (dtype, shape or None)."""
    name = info.filename
    with zf.open(info, "r") as fh:
        version = npformat.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(fh, max_header_size=MAX_NPY_HEADER)
        elif version == (2, 0):
            shape, fortran, dtype = npformat.read_array_header_2_0(fh, max_header_size=MAX_NPY_HEADER)
        else:
            raise FormatError(f"{label}: member {_short(name)} has unsupported npy version {version}")
        if dtype.hasobject or dtype.kind not in ALLOWED_KINDS or dtype.fields is not None or dtype.subdtype:
            raise FormatError(f"{label}: member {_short(name)} holds dtype {dtype}; only plain numeric arrays "
                              "are read (never object or pickled data)")
        if any(not isinstance(n, int) or n < 0 for n in shape):
            raise FormatError(f"{label}: member {_short(name)} declares an invalid shape {_short(shape)}")
        want_dtype, want_shape = want
        if dtype != want_dtype or (want_shape is not None and tuple(shape) != tuple(want_shape)):
            raise FormatError(f"{label}: member {_short(name)} holds {dtype} {shape}, but the header lists "
                              f"{want_dtype} {want_shape}")
        nbytes = math.prod(shape) * dtype.itemsize
        data_offset = fh.tell()
        if data_offset + nbytes != info.file_size:
            raise FormatError(f"{label}: member {_short(name)} declares shape {shape} of {dtype} "
                              f"({nbytes:,} bytes), but holds {info.file_size - data_offset:,} data bytes")
        if max_bytes is not None and nbytes > max_bytes:
            raise FormatError(f"{label}: member {_short(name)} takes {nbytes:,} bytes, more than the "
                              f"{max_bytes:,} allowed")
        data = fh.read(nbytes)  # reaching the member's end makes zipfile verify its CRC-32
        if len(data) != nbytes or fh.read(1):
            raise FormatError(f"{label}: member {_short(name)} is truncated")
    arr = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return np.array(arr, dtype=dtype.newbyteorder("=") if dtype.byteorder not in "=|" else dtype, order="C")


def _reject_constant(name):
    raise ValueError(f"the JSON header holds {name}, which is not allowed")


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the JSON header repeats the key {_short(key)}")
        out[key] = value
    return out


def _parse_header(raw, label):
    try:
        text = raw.tobytes().decode("utf-8", errors="strict")
        header = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FormatError(f"{label}: the JSON header is invalid: {type(exc).__name__}: {exc}") from None
    if not isinstance(header, dict):
        raise FormatError(f"{label}: the JSON header must be an object, got {type(header).__name__}")
    keys = {"format", "version", "kind", "class", "config", "metadata", "arrays"}
    if set(header) != keys:
        raise FormatError(f"{label}: the JSON header must have the keys {sorted(keys)}, got {sorted(header)[:10]}")
    if header["format"] != FORMAT_NAME:
        raise FormatError(f"{label}: not a fastrnn file (format {_short(header['format'])})")
    if header["version"] != FORMAT_VERSION or isinstance(header["version"], bool):
        raise FormatError(f"{label}: unsupported format version {_short(header['version'])}; "
                          f"this fastrnn reads version {FORMAT_VERSION}")
    kind = header["kind"]
    if kind not in ("model", "state"):
        raise FormatError(f"{label}: kind must be 'model' or 'state', got {_short(kind)}")
    if kind == "model" and (not isinstance(header["class"], str) or not isinstance(header["config"], dict)):
        raise FormatError(f"{label}: a model file needs a class name and a config object")
    if header["metadata"] is not None and not isinstance(header["metadata"], dict):
        raise FormatError(f"{label}: metadata must be an object or null")
    arrays = header["arrays"]
    if not isinstance(arrays, list) or len(arrays) > MAX_MEMBERS:
        raise FormatError(f"{label}: 'arrays' must be a list of at most {MAX_MEMBERS} entries")
    seen, parsed = set(), []
    for entry in arrays:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)
                and isinstance(entry[1], str) and isinstance(entry[2], list)):
            raise FormatError(f"{label}: each 'arrays' entry must be [name, dtype, shape], got {_short(entry)}")
        name, dtype_str, shape = entry
        if not name or name.startswith("__") or len(name) > MAX_NAME_LENGTH or name in seen:
            raise FormatError(f"{label}: invalid or duplicate array name {_short(name)}")
        seen.add(name)
        if len(dtype_str) > 8:
            raise FormatError(f"{label}: {_short(name)} has an invalid dtype {_short(dtype_str)}")
        try:
            dtype = np.dtype(dtype_str)
        except TypeError:
            raise FormatError(f"{label}: {_short(name)} has an invalid dtype {_short(dtype_str)}") from None
        if dtype.kind not in ALLOWED_KINDS or dtype.hasobject or dtype.fields is not None:
            raise FormatError(f"{label}: {_short(name)} has a disallowed dtype {dtype}")
        if len(shape) > 32 or any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in shape):
            raise FormatError(f"{label}: {_short(name)} has an invalid shape {_short(shape)}")
        parsed.append((name, dtype, tuple(shape)))
    header["arrays"] = parsed
    return header


def _check_config_ints(obj, limit, where):
    """Refuse config numbers larger than the file could back, before any class is constructed."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return
    if isinstance(obj, (int, float)):
        if abs(obj) > limit:
            raise FormatError(f"{where}={obj} is larger than the {limit:,} array elements in the file allow")
        return
    if isinstance(obj, list):
        for k, v in enumerate(obj):
            _check_config_ints(v, limit, f"{where}[{k}]")
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k != "seed":
                _check_config_ints(v, limit, f"{where}.{k}")
        return
    raise FormatError(f"{where} holds an unexpected {type(obj).__name__}")  # pragma: no cover - JSON types only
