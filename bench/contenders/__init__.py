"""The contenders, one module per framework, in the order they are timed (A B C D A B C D ...)."""
from __future__ import annotations

import importlib

MODULES = {
    "fastrnn": "fastrnn_contender",
    "torch": "torch_contender",
    "onnxruntime": "onnxruntime_contender",
    "numpy": "numpy_contender",
}
ORDER = tuple(MODULES)


def load(names=ORDER):
    """Return ({name: module} of the usable contenders, {name: reason} of the skipped ones).

    Each usable contender's libraries are imported here (``preload``), before any thread limit is
    set: threadpoolctl limits only the BLAS libraries already loaded, and one that loads later
    would run with its default thread count (and its idle threads would spin against the others).
    """
    usable, skipped = {}, {}
    for name in names:
        if name not in MODULES:
            raise ValueError(f"unknown contender {name!r}; expected one of {list(MODULES)}")
        mod = importlib.import_module(f".{MODULES[name]}", __name__)
        reason = mod.unavailable()
        if reason is None:
            usable[name] = mod
            mod.preload()
        else:
            skipped[name] = reason
    return usable, skipped


def start_isolated(names=ORDER, **kwargs):
    """Start one worker process per contender (see worker.py); same return shape as ``load``.

    The values of the first dict are ``worker.ContenderProcess`` objects, which have the
    ``build(problem, threads)`` of a contender module; the worker imports the contender's libraries,
    so this process does not.
    """
    from .worker import start_all

    for name in names:
        if name not in MODULES:
            raise ValueError(f"unknown contender {name!r}; expected one of {list(MODULES)}")
    return start_all({name: f"{__name__}.{MODULES[name]}" for name in names}, **kwargs)
