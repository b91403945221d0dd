"""Learning-rate schedules: each ``.step()`` advances one step and sets ``optimizer.lr``.

A schedule is a function ``lr_at(t)`` of the step index t = 0, 1, 2, ... and the optimizer's learning
rate when the schedule was made (``base_lr``). Construction sets ``optimizer.lr = lr_at(0)``; call
``schedule.step()`` after each ``optimizer.step()`` (as with ``torch.optim.lr_scheduler``). The
closed forms are PyTorch's:

- ``StepLR``: ``base_lr * gamma ** (t // step_size)``
- ``CosineAnnealingLR``: ``eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2``
  (periodic beyond ``T_max``, as PyTorch's)
- ``LinearWarmup``: ``base_lr * (t + 1) / warmup_steps`` for ``t < warmup_steps``, then the ``after``
  schedule from its own step 0 (or ``base_lr`` when there is none). Build ``after`` first on the same
  optimizer and step only the warm-up::

      cosine = CosineAnnealingLR(opt, T_max=900)
      sched = LinearWarmup(opt, warmup_steps=100, after=cosine)
"""
from __future__ import annotations

import math

from ._validation import check_float, check_size

__all__ = ["Schedule", "StepLR", "CosineAnnealingLR", "LinearWarmup"]


class Schedule:
    """Base class: subclasses define ``lr_at(t)``."""

    def __init__(self, optimizer, base_lr=None):
        if not hasattr(optimizer, "lr"):
            raise TypeError(f"optimizer must have an lr attribute (a fastrnn optimizer), "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr if base_lr is None else base_lr)
        self.last_step = 0
        optimizer.lr = self.lr_at(0)

    def lr_at(self, t):  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def lr(self):
        return self.lr_at(self.last_step)

    def step(self):
        """Advance one step; returns the new learning rate."""
        self.last_step += 1
        lr = self.lr_at(self.last_step)
        self.optimizer.lr = lr
        return lr

    def state_dict(self):
        return {"last_step": self.last_step, "base_lr": self.base_lr}

    def load_state_dict(self, state):
        if not hasattr(state, "keys") or set(state.keys()) != {"last_step", "base_lr"}:
            got = sorted(state.keys()) if hasattr(state, "keys") else type(state).__name__
            raise ValueError(f"a schedule state must have the keys ['base_lr', 'last_step'], got {got}")
        last_step = check_size("last_step", state["last_step"], minimum=0)
        base_lr = check_float("base_lr", state["base_lr"], 0.0, low_open=True)
        self.last_step, self.base_lr = last_step, base_lr
        self.optimizer.lr = self.lr_at(self.last_step)


class StepLR(Schedule):
    """Multiply the learning rate by ``gamma`` every ``step_size`` steps."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        self.step_size = check_size("step_size", step_size)
        self.gamma = check_float("gamma", gamma, 0.0, low_open=True)
        super().__init__(optimizer)

    def lr_at(self, t):
        return self.base_lr * self.gamma ** (t // self.step_size)


class CosineAnnealingLR(Schedule):
    """Anneal from ``base_lr`` to ``eta_min`` along a half cosine over ``T_max`` steps."""

    def __init__(self, optimizer, T_max, eta_min=0.0):
        self.T_max = check_size("T_max", T_max)
        self.eta_min = check_float("eta_min", eta_min, 0.0)
        super().__init__(optimizer)

    def lr_at(self, t):
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


class LinearWarmup(Schedule):
    """Ramp linearly up to ``base_lr`` over ``warmup_steps`` steps, then hand over to ``after``."""

    def __init__(self, optimizer, warmup_steps, after=None):
        self.warmup_steps = check_size("warmup_steps", warmup_steps)
        if after is not None:
            if not isinstance(after, Schedule):
                raise TypeError(f"after must be a Schedule or None, got {type(after).__name__}")
            if after.optimizer is not optimizer:
                raise ValueError("after must schedule the same optimizer as the warm-up")
        self.after = after
        super().__init__(optimizer, base_lr=after.base_lr if after is not None else None)

    def lr_at(self, t):
        if t < self.warmup_steps:
            return self.base_lr * (t + 1) / self.warmup_steps
        if self.after is None:
            return self.base_lr
        return self.after.lr_at(t - self.warmup_steps)

    def step(self):
        lr = super().step()
        if self.after is not None:  # keep the inner schedule's counter meaningful
            self.after.last_step = max(0, self.last_step - self.warmup_steps)
        return lr
