"""The shared data of one configuration: weights, inputs, initial state and output gradient.

Every contender is built from the same ``Problem``, so all of them run on identical numbers. Weights
are drawn as PyTorch initialises them (uniform in [-1/sqrt(H), 1/sqrt(H)]) and named as in a
single-layer ``torch.nn.LSTM`` state dict (``weight_ih_l0`` ...); ``cell_params`` gives the
``torch.nn.LSTMCell`` names (``weight_ih`` ...). Each contender loads these arrays: the PyTorch
module through ``load_state_dict`` of tensors made from them, fastrnn through its own
``load_state_dict`` of the arrays, the ONNX model by exporting the loaded PyTorch module.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scenarios import GATES


@dataclass
class Problem:
    cfg: object
    params: dict            # layer names (weight_ih_l0, ...) -> float32 arrays
    x: np.ndarray           # (T, B, I); a step problem uses x[0] of shape (B, I)
    h0: np.ndarray          # (B, H)
    c0: np.ndarray | None   # (B, H) for the LSTM
    dy: np.ndarray | None   # (T, B, H) for training

    @property
    def cell(self):
        return self.cfg.cell

    def cell_params(self):
        return {k[:-3]: v for k, v in self.params.items()}


def make_problem(cfg, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    G = GATES[cfg.cell] * cfg.H
    bound = 1.0 / np.sqrt(cfg.H)
    shapes = {"weight_ih_l0": (G, cfg.I), "weight_hh_l0": (G, cfg.H), "bias_ih_l0": (G,), "bias_hh_l0": (G,)}
    params = {k: rng.uniform(-bound, bound, s).astype(dtype) for k, s in shapes.items()}
    x = rng.standard_normal((cfg.T, cfg.B, cfg.I)).astype(dtype)
    h0 = (0.5 * rng.standard_normal((cfg.B, cfg.H))).astype(dtype)
    c0 = (0.5 * rng.standard_normal((cfg.B, cfg.H))).astype(dtype) if cfg.cell == "lstm" else None
    dy = rng.standard_normal((cfg.T, cfg.B, cfg.H)).astype(dtype) if cfg.training else None
    return Problem(cfg, params, x, h0, c0, dy)
