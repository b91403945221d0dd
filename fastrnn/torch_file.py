"""Reading PyTorch checkpoint files without torch and without running any code from the file.

``load_torch_state_dict(path)`` reads what ``torch.save(model.state_dict(), path)`` writes and returns
what ``fastrnn.io.from_torch_state_dict`` returns for the in-memory state dict: ``{name: ndarray}``,
ready for ``layer.load_state_dict``.

The file (torch >= 1.6, the default since then) is a zip archive of stored members under one folder
``<archive>/``: ``data.pkl`` (a pickle of the object), ``data/<key>`` (the raw bytes of each storage),
``byteorder`` ("little" or "big") and ``version``. The pickle is read by an Unpickler whose
``find_class`` hands out only inert stand-ins:

- ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_tensor`` / ``_rebuild_parameter`` /
  ``_rebuild_parameter_with_state`` and ``torch._tensor._rebuild_from_type_v2`` (for plain Tensor and
  Parameter only) record (storage, offset, size, stride) and return a lazy tensor reference;
- ``collections.OrderedDict`` becomes a dict (torch's ``_metadata`` attribute is dropped);
- ``torch.FloatStorage``, ``torch.DoubleStorage``, ... and ``torch.storage.UntypedStorage`` become
  dtype markers.

Any other global (``os.system``, ``builtins.eval``, numpy scalars, sparse or quantized tensors, ...)
raises ``FormatError`` naming it, before it is called: nothing from the file is ever executed. Plain
pickle data (dicts, lists, tuples, strings, numbers) is allowed, so a training checkpoint such as
``{"model": state_dict, "epoch": 3}`` works with ``key="model"``.

Dtypes: float32, float64, float16, int8/16/32/64, uint8 and bool come back as the same numpy dtype;
bfloat16 is converted exactly to float32 (as ``from_torch_state_dict`` does). Complex, quantized,
sparse and float8 tensors are refused.

Reading trusts nothing; every problem is a ``FormatError`` (a ``ValueError``):
- the legacy (non-zip) torch format and other non-zip files are refused;
- members must be stored (uncompressed), unencrypted, uniquely named and inside the file; zip CRCs
  are checked; ``data.pkl`` is capped at 64 MiB and scanned (``pickletools``) before it is unpickled,
  so memo indices cannot make the unpickler allocate more than the pickle's size justifies;
- each storage member must hold exactly ``numel * itemsize`` bytes for the numel its record declares;
- each tensor view (offset, size, stride; no negative strides, at most 64 dims) must lie inside its
  storage, and the arrays produced may total at most 8x the file size plus 16 MiB (so a stride-0 view
  cannot turn a few bytes into terabytes). Views are copied out with ``as_strided`` on a read-only
  buffer after the bounds check, so non-contiguous tensors come back as C-contiguous copies.
"""
from __future__ import annotations

import io
import math
import os
import pickle
import pickletools
import zipfile

import numpy as np

from .io import _PARSE_ERRORS, FormatError, _name, _short, from_torch_state_dict

__all__ = ["load_torch_state_dict"]

MAX_PICKLE_BYTES = 64 << 20
MAX_MEMBERS = 100_000
MAX_NDIM = 64                        # torch's own limit on tensor dimensions
MAX_KEY_LENGTH = 1_000
OUTPUT_FACTOR = 8                    # arrays produced <= OUTPUT_FACTOR * file size + OUTPUT_FLOOR bytes
OUTPUT_FLOOR = 16 << 20
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")

#: torch storage class names -> numpy dtype codes ("bf16": stored as 2-byte bfloat16, returned as float32)
_STORAGE_DTYPES = {
    "FloatStorage": "f4", "DoubleStorage": "f8", "HalfStorage": "f2", "BFloat16Storage": "bf16",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}


# ---- inert stand-ins the pickle may name ----------------------------------------------------------

class _Inert:
    """Base of every object the pickle can reach: no instance dict, and BUILD (``__setstate__``) refused,
    so a hostile pickle cannot change the shared stand-ins or the records built from them."""

    __slots__ = ()

    def __setstate__(self, state):
        raise FormatError(f"the pickle tries to set the state of {self!r} (BUILD), which is not allowed")


class _Callable(_Inert):
    """A whitelisted function, wrapped so that the pickle cannot set attributes on the function itself."""

    __slots__ = ("name", "func")

    def __init__(self, name, func):
        self.name, self.func = name, func

    def __call__(self, *args):
        return self.func(*args)

    def __repr__(self):
        return self.name


class _StorageType(_Inert):
    """Marker for ``torch.FloatStorage`` and friends: only carries the element dtype."""

    __slots__ = ("name", "code", "itemsize")

    def __init__(self, name, code):
        self.name, self.code = name, code
        self.itemsize = 2 if code == "bf16" else np.dtype(code).itemsize

    def __repr__(self):
        return f"torch.{self.name}"


class _TypeMarker(_Inert):
    """Marker for ``torch.Tensor`` / ``torch.nn.parameter.Parameter`` in ``_rebuild_from_type_v2``."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


class _Storage(_Inert):
    """One ``data/<key>`` member: its dtype and element count, checked against the member's size."""

    __slots__ = ("key", "type", "numel")

    def __init__(self, key, storage_type, numel):
        self.key, self.type, self.numel = key, storage_type, numel

    def __repr__(self):
        return f"storage {self.key!r}"


class _TensorRef(_Inert):
    """What ``_rebuild_tensor_v2`` would build, recorded but not built: checked and copied on demand."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, storage_offset, size, stride):
        if not isinstance(storage, _Storage):
            raise FormatError(f"a tensor's storage must be a storage record, got {type(storage).__name__}")
        self.storage, self.offset, self.size, self.stride = storage, storage_offset, size, stride

    def __repr__(self):
        return "tensor"


class _Dict(dict):
    """``collections.OrderedDict`` from the pickle: a fresh dict that ignores the BUILD state (torch's
    ``_metadata``)."""

    def __setstate__(self, state):
        pass


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    # torch._utils._rebuild_tensor(storage, offset, size, stride) and
    # _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata])
    if len(_ignored) > 3:
        raise FormatError(f"_rebuild_tensor_v2 takes at most 7 arguments, got {4 + len(_ignored)}")
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *_ignored):
    # torch._utils._rebuild_parameter(data, requires_grad, backward_hooks[, state])
    if not isinstance(data, _TensorRef):
        raise FormatError(f"a Parameter must wrap a tensor, got {type(data).__name__}")
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    # torch._tensor._rebuild_from_type_v2(func, type, args, state): plain Tensor/Parameter only
    if not (isinstance(func, _Callable) and func.func in (_rebuild_tensor, _rebuild_parameter)
            and isinstance(new_type, _TypeMarker) and isinstance(args, tuple)):
        raise FormatError("_rebuild_from_type_v2 is only accepted for plain torch.Tensor / Parameter objects")
    return func(*args)


def _allowed_globals():
    tensor, parameter = _TypeMarker("torch.Tensor"), _TypeMarker("torch.nn.Parameter")
    allowed = {("collections", "OrderedDict"): _Callable("collections.OrderedDict", _Dict),
               ("torch._utils", "_rebuild_tensor"): _Callable("_rebuild_tensor", _rebuild_tensor),
               ("torch._utils", "_rebuild_tensor_v2"): _Callable("_rebuild_tensor_v2", _rebuild_tensor),
               ("torch._utils", "_rebuild_parameter"): _Callable("_rebuild_parameter", _rebuild_parameter),
               ("torch._utils", "_rebuild_parameter_with_state"): _Callable("_rebuild_parameter_with_state",
                                                                            _rebuild_parameter),
               ("torch._tensor", "_rebuild_from_type_v2"): _Callable("_rebuild_from_type_v2", _rebuild_from_type_v2),
               ("torch", "Tensor"): tensor, ("torch._tensor", "Tensor"): tensor,
               ("torch.nn.parameter", "Parameter"): parameter}
    for name, code in _STORAGE_DTYPES.items():
        allowed[("torch", name)] = _StorageType(name, code)
    untyped = _StorageType("UntypedStorage", "u1")
    allowed[("torch", "UntypedStorage")] = allowed[("torch.storage", "UntypedStorage")] = untyped
    return allowed


_ALLOWED = _allowed_globals()


class _SafeUnpickler(pickle.Unpickler):
    """An Unpickler that resolves globals from ``_ALLOWED`` only and maps storage records to members."""

    def __init__(self, data, storages, label):
        super().__init__(io.BytesIO(data))
        self._storages = storages        # key -> (zip info) of the data/<key> members
        self._loaded = {}                # key -> _Storage (shared by the tensors that view it)
        self._label = label

    def find_class(self, module, name):
        found = _ALLOWED.get((module, name)) if isinstance(module, str) and isinstance(name, str) else None
        if found is not None:
            return found
        what = f"{module}.{name}" if isinstance(module, str) and isinstance(name, str) else repr((module, name))
        hint = ""
        if module == "torch._utils" or (module == "torch" and str(name).endswith("Storage")):
            hint = " (sparse, quantized, complex, float8 and device-only tensors are not supported)"
        raise FormatError(f"{self._label}: refused the global {_short(what)} named in the pickle{hint}; only "
                          "torch tensor rebuilding, torch storage types and collections.OrderedDict are "
                          "allowed, and nothing from the file was run")

    def persistent_load(self, pid):
        # torch writes ("storage", storage_type, key, location, numel)
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise FormatError(f"{self._label}: unexpected persistent id {_short(pid)}; expected "
                              "('storage', type, key, location, numel)")
        _, storage_type, key, location, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise FormatError(f"{self._label}: storage record names {_short(storage_type)}, not a storage type")
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
            raise FormatError(f"{self._label}: invalid storage key {_short(key)}")
        if isinstance(numel, bool) or not isinstance(numel, int) or numel < 0:
            raise FormatError(f"{self._label}: storage {_short(key)} declares an invalid element count "
                              f"{_short(numel)}")
        old = self._loaded.get(key)
        if old is not None:
            if old.type is not storage_type or old.numel != numel:
                raise FormatError(f"{self._label}: storage {_short(key)} is declared twice, as {old.numel} x "
                                  f"{old.type} and as {numel} x {storage_type}")
            return old
        info = self._storages.get(key)
        if info is None:
            raise FormatError(f"{self._label}: the pickle refers to storage {_short(key)}, which the "
                              "archive does not hold (truncated or corrupted)")
        nbytes = numel * storage_type.itemsize
        if nbytes != info.file_size:
            raise FormatError(f"{self._label}: storage {_short(key)} declares {numel:,} elements of "
                              f"{storage_type} ({nbytes:,} bytes), but the member holds {info.file_size:,} bytes")
        self._loaded[key] = storage = _Storage(key, storage_type, numel)
        return storage


# ---- the archive ----------------------------------------------------------------------------------

def _open_archive(f, size, label):
    """(zip file, archive folder, {member name: info}) after checking every member."""
    try:
        zf = zipfile.ZipFile(f, "r")
    except zipfile.BadZipFile as exc:
        f.seek(0)
        head = f.read(len(_LEGACY_MAGIC))
        if head == _LEGACY_MAGIC:
            raise FormatError(f"{label} uses torch's legacy (non-zip) serialization format, which is not "
                              "supported: re-save it with torch >= 1.6 (torch.save's default zip format)") from None
        raise FormatError(f"{label} is not a PyTorch zip checkpoint ({exc}); the legacy (non-zip) torch format "
                          "is not supported") from None
    infos = {}
    members = zf.infolist()
    if len(members) > MAX_MEMBERS:
        zf.close()
        raise FormatError(f"{label}: {len(members):,} archive members, more than the {MAX_MEMBERS:,} allowed")
    for info in members:
        name = info.filename
        problem = None
        if name in infos:
            problem = f"duplicate archive member {_short(name)}"
        elif info.flag_bits & 0x1:
            problem = f"member {_short(name)} is encrypted"
        elif info.compress_type != zipfile.ZIP_STORED:
            problem = (f"member {_short(name)} is compressed (method {info.compress_type}); torch.save stores "
                       "members uncompressed, so their sizes can be checked before reading")
        elif info.compress_size != info.file_size or info.header_offset < 0 \
                or info.header_offset + info.compress_size > size:
            problem = (f"member {_short(name)} declares {info.file_size:,} bytes at offset {info.header_offset:,}, "
                       f"beyond the file's {size:,} bytes (truncated or corrupted)")
        if problem is not None:
            zf.close()
            raise FormatError(f"{label}: {problem}")
        infos[name] = info
    roots = [n[:-len("/data.pkl")] for n in infos if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(roots) != 1:
        zf.close()
        found = "no" if not roots else f"{len(roots)}"
        raise FormatError(f"{label} is not a PyTorch checkpoint: expected one <archive>/data.pkl member, found "
                          f"{found} (members: {_short(sorted(infos)[:5])})")
    return zf, roots[0], infos


def _small_text(zf, info, label, what):
    if info.file_size > 64:
        raise FormatError(f"{label}: the {what} member holds {info.file_size:,} bytes; expected a short text")
    try:
        return zf.read(info).decode("ascii").strip()
    except UnicodeDecodeError:
        raise FormatError(f"{label}: the {what} member is not ASCII text") from None


def _scan_pickle(data, label):
    """Walk the opcodes without executing anything; refuse memo indices beyond the opcode count."""
    n_ops, biggest = 0, -1
    for opcode, arg, _ in pickletools.genops(io.BytesIO(data)):
        n_ops += 1
        if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT"):
            biggest = max(biggest, int(arg))
    if biggest >= n_ops:
        raise FormatError(f"{label}: the pickle stores memo entry {biggest:,} but has only {n_ops:,} opcodes "
                          "(a valid pickle numbers its memo densely)")


def _read_pickle(zf, root, infos, label):
    """(top-level object with _TensorRef leaves, {key: storage member}, byte order)."""
    pkl = infos[root + "/data.pkl"]
    if pkl.file_size > MAX_PICKLE_BYTES:
        raise FormatError(f"{label}: data.pkl holds {pkl.file_size:,} bytes, more than the "
                          f"{MAX_PICKLE_BYTES:,} allowed")
    order = infos.get(root + "/byteorder")
    byteorder = "little" if order is None else _small_text(zf, order, label, "byteorder")  # torch's default
    if byteorder not in ("little", "big"):
        raise FormatError(f"{label}: byteorder must be 'little' or 'big', got {_short(byteorder)}")
    version = infos.get(root + "/version")
    if version is not None and not _small_text(zf, version, label, "version").isdigit():
        raise FormatError(f"{label}: the version member does not hold a number")
    data = zf.read(pkl)  # reading a whole member verifies its CRC-32
    _scan_pickle(data, label)
    prefix = root + "/data/"
    storages = {n[len(prefix):]: info for n, info in infos.items() if n.startswith(prefix)}
    return _SafeUnpickler(data, storages, label).load(), storages, byteorder


class _Errors:
    """``with _Errors(label):`` turns what a broken zip or pickle makes the standard library raise into
    FormatError (FormatError and MemoryError pass through)."""

    def __init__(self, label):
        self.label = label

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is None or issubclass(kind, (FormatError, MemoryError)):
            return False
        if issubclass(kind, _PARSE_ERRORS + (pickle.UnpicklingError, AttributeError)):
            raise FormatError(f"{self.label} is corrupted or not a PyTorch checkpoint: {kind.__name__}: {exc}") \
                from None
        return False


# ---- building arrays ------------------------------------------------------------------------------

def _check_view(ref, name, label):
    """(offset, shape, strides in elements) of a tensor view after checking that it lies in its storage."""
    off, size, stride = ref.offset, ref.size, ref.stride

    def ints(v):
        return isinstance(v, (tuple, list)) and all(isinstance(n, int) and not isinstance(n, bool) for n in v)

    if isinstance(off, bool) or not isinstance(off, int) or off < 0:
        raise FormatError(f"{label}: tensor {name!r} has an invalid storage offset {_short(off)}")
    if not ints(size) or not ints(stride) or len(size) != len(stride) or len(size) > MAX_NDIM:
        raise FormatError(f"{label}: tensor {name!r} has an invalid size/stride {_short(size)} / {_short(stride)}")
    if any(n < 0 for n in size) or any(s < 0 for s in stride):
        raise FormatError(f"{label}: tensor {name!r} has a negative size or stride {_short(size)} / {_short(stride)}")
    numel = math.prod(size)
    storage = ref.storage
    # the last element the view reads: offset + sum((size_d - 1) * stride_d); it must exist in the storage
    last = off + sum((n - 1) * s for n, s in zip(size, stride)) if numel else off - 1
    if last >= storage.numel or off > storage.numel:
        raise FormatError(f"{label}: tensor {name!r} (offset {off}, size {tuple(size)}, stride {tuple(stride)}) "
                          f"reads element {max(last, off):,}, beyond its storage data/{storage.key} of "
                          f"{storage.numel:,} elements")
    return off, tuple(size), tuple(stride), numel


class _Arrays:
    """A mapping whose ``items()`` builds one array at a time (read, checked, copied), so the copy made by
    ``from_torch_state_dict`` never doubles the whole state dict in memory."""

    def __init__(self, refs, zf, storages, byteorder, budget, label):
        self._refs, self._zf, self._storages = refs, zf, storages
        self._order = "<" if byteorder == "little" else ">"
        self._budget, self._label = budget, label

    def items(self):
        remaining = {}  # tensors still to build per storage: its bytes are dropped after the last one
        for ref in self._refs.values():
            remaining[ref.storage.key] = remaining.get(ref.storage.key, 0) + 1
        cache = {}
        for name, ref in self._refs.items():
            off, shape, stride, numel = _check_view(ref, name, self._label)
            st = ref.storage.type
            self._budget -= numel * (4 if st.code == "bf16" else st.itemsize)
            if self._budget < 0:
                raise FormatError(f"{self._label}: tensor {name!r} of shape {shape} would take the arrays read "
                                  f"from this file beyond {OUTPUT_FACTOR}x its size (a view repeating its "
                                  "storage, such as a stride-0 expand, is refused)")
            key = ref.storage.key
            if key not in cache:
                with _Errors(self._label):
                    cache[key] = self._zf.read(self._storages[key])  # verifies the member's CRC-32
            raw = cache[key]
            remaining[key] -= 1
            if remaining[key] == 0:
                del cache[key]
            yield name, self._build(raw, st, off, shape, stride, numel)

    def _build(self, raw, st, off, shape, stride, numel):
        dtype = np.dtype(np.uint16 if st.code == "bf16" else st.code).newbyteorder(self._order)
        if numel == 0:
            arr = np.zeros(shape, dtype.newbyteorder("="))
        else:
            base = np.frombuffer(raw, dtype=dtype)  # read-only: the strided view below cannot write
            # arr = base[off + sum(i_d * stride_d)] over the index grid, bounds checked by _check_view
            view = np.lib.stride_tricks.as_strided(base[off:], shape=shape,
                                                   strides=[s * dtype.itemsize for s in stride], writeable=False)
            arr = np.array(view, dtype=dtype.newbyteorder("="), order="C")
        if st.code == "bf16":
            # bfloat16 is the top half of a float32: f32_bits = bf16_bits << 16 (exact)
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        return arr


def _what(value):
    """'a dict', 'an int', ...: the pickle's own type names (stand-ins shown as what they stand for)."""
    name = "dict" if isinstance(value, dict) else "tensor" if isinstance(value, _TensorRef) else type(value).__name__
    return ("an " if name[0] in "aeiou" else "a ") + name


def _select(obj, key, label):
    path = () if key is None else (key,) if isinstance(key, (str, int)) else tuple(key)
    where = "the checkpoint"
    for k in path:
        if isinstance(obj, dict) and isinstance(k, str) and k in obj:
            obj = obj[k]
        elif isinstance(obj, (list, tuple)) and isinstance(k, int) and not isinstance(k, bool) \
                and -len(obj) <= k < len(obj):
            obj = obj[k]
        else:
            keys = sorted(map(str, obj))[:20] if isinstance(obj, dict) else None
            found = f"keys {keys}" if keys is not None else _what(obj)
            raise ValueError(f"key {k!r} is not in {where} of {label}; expected one of its keys, found {found}")
        where = f"{where}[{k!r}]"
    if not isinstance(obj, dict):
        raise FormatError(f"{label}: {where} is {_what(obj)}, not a state dict (a dict of tensors)")
    for name, value in obj.items():
        if not isinstance(name, str):
            raise FormatError(f"{label}: {where} has a non-string key {_short(name)}")
        if not isinstance(value, _TensorRef):
            subdicts = [k for k, v in obj.items() if isinstance(v, dict) and isinstance(k, str)]
            hint = (f"; it looks like a training checkpoint: pick the state dict with key=..., one of {subdicts[:10]}"
                    if subdicts else "")
            raise FormatError(f"{label}: {where}[{name!r}] is {_what(value)}, not a tensor{hint}")
    return obj


# ---- public API -----------------------------------------------------------------------------------

def load_torch_state_dict(path, prefix="", dtype=None, key=None):
    """Read a ``torch.save`` file (zip format) as ``{name: ndarray}`` without importing torch or running code.

    The result equals ``fastrnn.io.from_torch_state_dict`` of the state dict torch would load: keys
    starting with ``prefix`` are kept with the prefix removed, ``dtype`` casts floating-point entries,
    bfloat16 becomes float32. ``key`` picks the state dict inside a checkpoint such as
    ``{"model": sd, "epoch": 3}`` (a string, or a tuple of keys/indices for nested containers); a key
    the checkpoint lacks raises ValueError listing the keys it has. Raises ``FormatError`` for a legacy,
    broken or hostile file (see the module docstring).
    """
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a string, got {type(prefix).__name__}")
    if key is not None and not isinstance(key, (str, int, tuple, list)):
        raise TypeError(f"key must be None, a string, an index or a tuple of them, got {type(key).__name__}")
    if dtype is not None:
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"dtype must be None or a numpy dtype such as np.float32, got {dtype!r}") from None
    if isinstance(path, (str, bytes, os.PathLike)):
        with open(path, "rb") as f:  # a missing file raises FileNotFoundError, not FormatError
            return _load(f, _name(path), prefix, dtype, key)
    if hasattr(path, "read") and hasattr(path, "seek"):
        return _load(path, "the file", prefix, dtype, key)
    raise TypeError(f"path must be a file name or a binary file object, got {type(path).__name__}")


def _load(f, label, prefix, dtype, key):
    with _Errors(label):
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(0)
        zf, root, infos = _open_archive(f, size, label)
    with zf:
        with _Errors(label):
            obj, storages, byteorder = _read_pickle(zf, root, infos, label)
        state = _select(obj, key, label)
        refs = {name: ref for name, ref in state.items() if name.startswith(prefix)}
        arrays = _Arrays(refs, zf, storages, byteorder, OUTPUT_FACTOR * size + OUTPUT_FLOOR, label)
        return from_torch_state_dict(arrays, prefix, dtype)
