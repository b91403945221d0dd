"""A chain of layers with one flat parameter buffer, threading recurrent state through its children.

Parameters: at construction the children's ParamSets move into ONE flat data buffer and ONE flat
gradient buffer (``ParamSet.concatenate``); each child keeps views of its slice, and the model's own
``param_set`` exposes the same buffers under PyTorch's ``nn.Sequential`` names ("0.weight",
"1.weight_ih_l0", ...). An optimizer or ``clip_grad_norm`` can therefore treat the model as one vector.

State: children with ``training_state = True`` (RNN, LSTM, GRU, ...) take and return a state. The model
takes ``states`` as a list with one entry per recurrent child, in order (None entries, or states=None,
mean zeros), and returns such a list:

    y, states_n = model(x, states=None, lengths=None)
    y, states_n, backprop = model.begin_update(x, states=None, lengths=None)
    dx, dstates0 = backprop(dy, dstates_n=None)

``lengths`` goes to the recurrent children only. If a child returns None for dx (Embedding: integer
input), the backward pass stops there: the children before it get no gradient from dy (recurrent ones
still get their ``dstates_n``), and ``dx`` is None.
"""
from __future__ import annotations

import threading

import numpy as np

from .._params import ParamSet
from .base import Layer


class GatheredParamSet(ParamSet):
    """A ParamSet over the flat buffers its children were moved into, names prefixed "i.".

    It owns no memory of its own: ``data``/``grad`` hold every child's slice, children keep views of
    them (rebinding this set rebinds them: nested containers work), all share one lock, and a change
    recorded here (``bump``) is recorded in every child, so their training caches see it.
    """

    def __init__(self, named_sets, dtype):
        """``named_sets``: list of (prefix, ParamSet); the sets must not belong to another container."""
        self.dtype = np.dtype(dtype)
        self.children = [(str(prefix), s) for prefix, s in named_sets if s.size > 0]
        self.specs = [(f"{prefix}.{name}", shape) for prefix, s in self.children for name, shape in s.specs]
        self.size = sum(s.size for _, s in self.children)
        self._own_version = 0
        data, grad = ParamSet.concatenate([s for _, s in self.children], self.dtype)
        ParamSet._bind(self, data, grad)
        self._share_lock(threading.RLock())

    def _bind(self, data, grad):
        ParamSet._bind(self, data, grad)
        offset = 0
        for _, s in self.children:
            s._bind(data[offset:offset + s.size], grad[offset:offset + s.size])
            offset += s.size

    def _share_lock(self, lock):
        self.lock = lock
        for _, s in self.children:
            if isinstance(s, GatheredParamSet):
                s._share_lock(lock)
            else:
                s.lock = lock

    @property
    def version(self):
        return self._own_version + sum(s.version for _, s in self.children)

    def bump(self):
        self._own_version += 1
        for _, s in self.children:
            s.bump()


def _param_set_owner_check(layers):
    seen = set()
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential children must be fastrnn layers; child {i} is a {type(layer).__name__}")
        if id(layer) in seen:
            raise ValueError(f"child {i} ({type(layer).__name__}) appears twice; a layer's parameters can live "
                             "in one place only (share weights by calling the same layer in your own loop)")
        seen.add(id(layer))
        if getattr(layer.param_set, "_container", None) is not None:
            raise ValueError(f"child {i} ({type(layer).__name__}) already belongs to another Sequential; "
                             "its parameters were moved into that model's buffer")


class Sequential(Layer):
    """Apply children in order; ``params``/``grads``/``state_dict`` use the names "i.<child name>"."""

    training_state = True

    def __init__(self, *layers):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        if not layers:
            raise ValueError("Sequential needs at least one layer; got none")
        _param_set_owner_check(layers)
        self.layers = list(layers)
        sized = [layer for layer in self.layers if layer.param_set.size > 0]
        dtype = sized[0].param_set.dtype if sized else np.dtype(np.float32)
        self.dtype = dtype
        self.param_set = GatheredParamSet([(str(i), layer.param_set) for i, layer in enumerate(self.layers)], dtype)
        for layer in self.layers:
            layer.param_set._container = self
        self._recurrent = [i for i, layer in enumerate(self.layers) if layer.training_state]

    # ---- configuration (for fastrnn.io's save/load) ----------------------------------------------

    def get_config(self):
        """``{"layers": [{"class": name, "config": child config}, ...]}``, rebuilt by ``from_config``."""
        from ..io import layer_spec  # the registry of classes a file may name lives in fastrnn.io

        return {"layers": [layer_spec(layer) for layer in self.layers]}

    @classmethod
    def from_config(cls, config):
        """Rebuild the children from ``get_config()`` output; only registered classes are built."""
        from ..io import build_layer

        layers = config.get("layers") if isinstance(config, dict) else None
        if not isinstance(layers, list) or set(config) != {"layers"}:
            raise ValueError("a Sequential config must be {'layers': [layer specs]}; got keys "
                             f"{sorted(config) if isinstance(config, dict) else type(config).__name__}")
        return cls(*[build_layer(spec) for spec in layers])

    # ---- container protocol ---------------------------------------------------------------------

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self):
        inner = "\n".join(f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"

    def param_sets(self):
        """``[self.param_set]``: the whole model as ONE flat set, so an optimizer or ``clip_grad_norm``
        runs one fused loop over every parameter (a change recorded there reaches every child)."""
        return [self.param_set]

    @property
    def num_states(self):
        """How many entries ``states`` has: one per recurrent child."""
        return len(self._recurrent)

    def _states_list(self, states, name):
        n = len(self._recurrent)
        if states is None:
            return [None] * n
        if not isinstance(states, (list, tuple)):
            raise TypeError(f"{name} must be None or a list with one entry per recurrent child ({n}); "
                            f"got {type(states).__name__}")
        if len(states) != n:
            raise ValueError(f"{name} must have one entry per recurrent child: expected {n}, got {len(states)}")
        return list(states)

    # ---- inference ------------------------------------------------------------------------------

    def __call__(self, x, states=None, lengths=None):
        """Inference: ``y, states_n = model(x, states=None, lengths=None)``. Saves nothing."""
        states = self._states_list(states, "states")
        states_n, r = [], 0
        for layer in self.layers:
            if layer.training_state:
                x, state = layer(x, states[r], lengths=lengths)
                states_n.append(state)
                r += 1
            else:
                x = layer(x)
        return x, states_n

    # ---- training -------------------------------------------------------------------------------

    def begin_update(self, x, states=None, lengths=None):
        """Training forward: ``y, states_n, backprop``; ``dx, dstates0 = backprop(dy, dstates_n=None)``."""
        states = self._states_list(states, "states")
        backprops, states_n, r = [], [], 0
        for layer in self.layers:
            if layer.training_state:
                x, state, bp = layer.begin_update(x, states[r], lengths=lengths)
                states_n.append(state)
                r += 1
            else:
                x, bp = layer.begin_update(x)
            backprops.append(bp)

        def backprop(dy, dstates_n=None):
            dstates_n = self._states_list(dstates_n, "dstates_n")
            dstates0 = [None] * len(self._recurrent)
            r = len(self._recurrent)
            for layer, bp in zip(reversed(self.layers), reversed(backprops)):
                if layer.training_state:
                    r -= 1
                    dy, dstates0[r] = bp(dy, dstates_n[r])
                elif dy is not None:
                    dy = bp(dy)
            return dy, dstates0

        return x, states_n, backprop
