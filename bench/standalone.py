"""fastrnn's dependency-free helper modules (fastrnn/atomic_file.py, fastrnn/arg_types.py), loaded from
their files without importing the fastrnn package, whose __init__ loads scipy and the kernels: the suite's
parent process imports none of the contenders' libraries (bench/README.md, Isolation)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_FASTRNN = Path(__file__).resolve().parent.parent / "fastrnn"


def load(name):
    """The module fastrnn/<name>.py, as ``fastrnn_standalone_<name>`` (loaded once)."""
    key = f"fastrnn_standalone_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, _FASTRNN / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


arg_types = load("arg_types")
atomic_file = load("atomic_file")
