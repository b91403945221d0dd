"""The protocol every fastrnn layer follows.

- ``layer(x, ...)``: inference; saves nothing for backward.
- ``y, backprop = layer.begin_update(x)`` then ``dx = backprop(dy)`` for stateless layers;
  recurrent layers take and return a state: ``y, state_n, backprop = layer.begin_update(x, state0)``
  and ``dx, dstate0 = backprop(dy, dstate_n=None)``.
- Parameter gradients are ADDED into ``layer.grads`` until ``layer.zero_grad()``.
- ``layer.params`` / ``layer.grads`` are dicts of views of one flat buffer each (``layer.param_set``).
- ``state_dict()`` / ``load_state_dict(d)`` copy by name; loading is atomic.
"""
from __future__ import annotations

import numpy as np

from .._params import ParamSet
from .._validation import check_dtype


class Layer:
    """Base class: owns a ``ParamSet`` (possibly empty) and a dtype."""

    training_state = False  # True for layers whose begin_update takes and returns a state

    def __init__(self, specs=(), dtype=np.float32):
        self.dtype = check_dtype(dtype)
        self.param_set = ParamSet(specs, self.dtype)

    @property
    def params(self):
        return self.param_set.params

    @property
    def grads(self):
        return self.param_set.grads

    def zero_grad(self):
        self.param_set.zero_grad()

    def state_dict(self):
        return self.param_set.state_dict()

    def load_state_dict(self, state, strict=True):
        self.param_set.load_state_dict(state, strict=strict)

    def num_parameters(self):
        return self.param_set.size

    def param_sets(self):
        """The ParamSets an optimizer updates: this layer's one set (a container's gathered set covers
        all its children, so optimizers and clipping run one fused loop over the whole model)."""
        return [self.param_set]
