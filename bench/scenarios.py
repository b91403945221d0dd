"""What is measured: the scenarios of issue 4 as a list of configurations, and their FLOP counts.

Scenarios (all float32, single layer, unidirectional, I = H):
  step        service step: B=1, one time step per call, the state carried from call to call
              (cells: fr.*Cell, torch.nn.*Cell, ORT on the exported cell or a T=1 module);
  seq         batch-1 sequence inference: B=1, T=50, the whole sequence in one call;
  infer       batched inference: B in {32, 64}, T=100;
  train       training step: forward + backward + parameter gradients (batched and B=1 T=50);
  concurrent  N Python threads, each running batch-1 inference (T=50) on its own state with one
              shared model; throughput of N=2 threads against N=1 (BLAS and intra-op threads = 1).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

CELLS = ("rnn", "lstm", "gru")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
SCENARIOS = ("step", "seq", "infer", "train", "concurrent")


@dataclass(frozen=True)
class Config:
    scenario: str
    cell: str
    B: int
    T: int
    H: int
    I: int

    @property
    def key(self):
        return f"{self.scenario}/{self.cell}/B{self.B}/T{self.T}/H{self.H}"

    @property
    def training(self):
        return self.scenario == "train"

    def as_dict(self):
        return asdict(self)


def forward_flops(cfg):
    """Standard matmul count of one forward pass: 2 * T * B * G * (I + H) with G = gates * H."""
    G = GATES[cfg.cell] * cfg.H
    return 2 * cfg.T * cfg.B * G * (cfg.I + cfg.H)


def call_flops(cfg):
    """FLOPs of one timed call: the forward count, times 3 for a training step."""
    return forward_flops(cfg) * (3 if cfg.training else 1)


def _cfg(scenario, cell, B, T, H):
    return Config(scenario, cell, B, T, H, H)


def configs(quick):
    """The configurations to run, in order (quick: a small subset of every scenario)."""
    out = []
    small_H = (128,) if quick else (64, 128, 256)
    for cell in CELLS:
        for H in small_H:
            out.append(_cfg("step", cell, 1, 1, H))
    for cell in CELLS:
        for H in small_H:
            out.append(_cfg("seq", cell, 1, 50, H))
    for cell in CELLS:
        for H in small_H:
            out.append(_cfg("train", cell, 1, 50, H))
    batched = [(32, 256)] if quick else [(B, H) for B in (32, 64) for H in (128, 256, 512)]
    for scenario in ("infer", "train"):
        for cell in CELLS:
            for B, H in batched:
                out.append(_cfg(scenario, cell, B, 100, H))
        if not quick:
            out.append(_cfg(scenario, "lstm", 64, 100, 1024))
    for cell in (("lstm",) if quick else CELLS):
        out.append(_cfg("concurrent", cell, 1, 50, 256))
    return out


def is_large(cfg):
    """The "large configurations" of the 2-threads target: B=64 with H >= 512."""
    return cfg.scenario in ("infer", "train") and cfg.B == 64 and cfg.H >= 512
