"""Optimizers over flat parameter buffers, and gradient clipping by global norm.

Each optimizer walks the model's ParamSets (``model.param_sets()``: one flat ``data`` buffer and one
flat ``grad`` buffer per set, see fastrnn/_params.py) and runs one fused Cython loop per set
(fastrnn/_kernels/optim.pyx), so a step costs one pass over memory whatever the number of tensors.
The formulas are PyTorch's (``torch.optim.SGD``, ``Adam``, ``AdamW``), with the same defaults.

Non-finite gradients. Before a step changes anything, every gradient buffer is checked for NaN and
Inf. By default (``skip_nonfinite=False``) such a step raises ``FloatingPointError`` naming the
parameters that hold non-finite values; the weights and the optimizer state are left bitwise
unchanged. With ``skip_nonfinite=True`` the step is skipped instead, ``step()`` returns False and
``optimizer.skipped_steps`` counts it (the usual choice for mixed-precision style training loops).

Threads: a step holds every ParamSet's lock while it runs (one trainer per model is the supported
use; the locks keep a concurrent ``load_state_dict`` from tearing the weights).
"""
from __future__ import annotations

import contextlib
import math
import numbers

import numpy as np

from ._kernels import optim as _k
from ._params import ParamSet
from ._validation import check_float

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm"]


def _param_sets(model):
    """The distinct non-empty ParamSets of ``model`` (a layer, a container, or an iterable of sets)."""
    if hasattr(model, "param_sets"):
        sets = model.param_sets()
    elif isinstance(model, ParamSet):
        sets = [model]
    else:
        try:
            sets = list(model)
        except TypeError:
            raise TypeError(f"model must be a fastrnn layer (with param_sets()) or a list of ParamSets, "
                            f"got {type(model).__name__}") from None
    unique, seen = [], set()
    for s in sets:
        if not isinstance(s, ParamSet):
            raise TypeError(f"model.param_sets() must return ParamSet objects, got {type(s).__name__}")
        if id(s) not in seen and s.size > 0:  # a layer shared twice is updated once
            seen.add(id(s))
            unique.append(s)
    return unique


def _locked(sets):
    stack = contextlib.ExitStack()
    for s in sets:
        stack.enter_context(s.lock)
    return stack


def _nonfinite_report(sets):
    """[(set index, {param name: count})] for the sets whose gradients hold NaN or Inf."""
    report = []
    for k, s in enumerate(sets):
        if _k.count_nonfinite(s.grad):
            names = {name: int(np.count_nonzero(~np.isfinite(g))) for name, g in s.grads.items()}
            report.append((k, {name: n for name, n in names.items() if n}))
    return report


def _describe(report):
    total = sum(sum(d.values()) for _, d in report)
    parts = [f"set {k}: " + ", ".join(f"{name} ({n})" for name, n in d.items()) for k, d in report]
    return f"{total} non-finite gradient value(s) (NaN or Inf) in parameter " + "; ".join(parts)


def _check_lr(lr, strict):
    if isinstance(lr, (bool, np.bool_)) or not isinstance(lr, numbers.Real):
        raise TypeError(f"lr must be a real number, got {type(lr).__name__} {lr!r}")
    lr = float(lr)
    if not math.isfinite(lr) or lr < 0 or (strict and lr == 0):
        raise ValueError(f"lr must be a finite number {'> 0' if strict else '>= 0'}, got {lr}")
    return lr


class Optimizer:
    """Base class: parameter sets, learning rate, the non-finite guard, and state dicts.

    Subclasses define ``_hyper`` (names of float hyper-parameters kept in state dicts),
    ``_buffers`` (names of per-set state buffers) and ``_update(k, param_set)``.
    """

    _hyper = ()
    _buffers = ()

    def __init__(self, model, lr, skip_nonfinite=False):
        self._sets = _param_sets(model)
        if not self._sets:
            raise ValueError("the optimizer got a model with no parameters")
        self._lr = _check_lr(lr, strict=True)
        self.skip_nonfinite = bool(skip_nonfinite)
        self.skipped_steps = 0
        self.step_count = 0  # updates applied so far (skipped steps excluded)
        self.state = {name: [np.zeros(s.size, s.dtype) for s in self._sets] for name in self._buffers}

    @property
    def lr(self):
        return self._lr

    @lr.setter
    def lr(self, value):
        # Schedules may anneal to exactly 0 (cosine with eta_min=0); construction requires lr > 0.
        self._lr = _check_lr(value, strict=False)

    @property
    def param_sets(self):
        return list(self._sets)

    def zero_grad(self):
        for s in self._sets:
            with s.lock:
                s.zero_grad()

    def step(self):
        """Apply one update. Returns True, or False when a non-finite gradient made it skip."""
        with _locked(self._sets):
            report = _nonfinite_report(self._sets)
            if report:
                if self.skip_nonfinite:
                    self.skipped_steps += 1
                    return False
                raise FloatingPointError(_describe(report) + "; the step was refused and the weights are "
                                         "unchanged (pass skip_nonfinite=True to skip such steps instead)")
            self.step_count += 1
            for k, s in enumerate(self._sets):
                self._update(k, s)
                s.bump()
        return True

    def _update(self, k, s):  # pragma: no cover - abstract
        raise NotImplementedError

    # ---- state dicts: flat {name: ndarray}, so fastrnn.io.save_state can write them ------------

    def state_dict(self):
        sd = {"lr": np.array(self._lr), "step_count": np.array(self.step_count, np.int64),
              "skipped_steps": np.array(self.skipped_steps, np.int64)}
        for name in self._hyper:
            sd[name] = np.array(float(getattr(self, name)), np.float64)
        for name, bufs in self.state.items():
            for k, buf in enumerate(bufs):
                sd[f"{name}.{k}"] = buf.copy()
        return sd

    def load_state_dict(self, state):
        """Restore from ``state_dict()`` output; all problems are listed and nothing changes on error."""
        if not hasattr(state, "keys"):
            raise TypeError(f"state must be a mapping of names to arrays, got {type(state).__name__}")
        expected = {"lr": (), "step_count": (), "skipped_steps": ()}
        expected.update({name: () for name in self._hyper})
        for name, bufs in self.state.items():
            expected.update({f"{name}.{k}": buf.shape for k, buf in enumerate(bufs)})
        problems = [f"unexpected key {key!r}" for key in state.keys() if key not in expected]
        problems += [f"missing key {key!r}" for key in expected if key not in state]
        staged = {}
        for key, shape in expected.items():
            if key not in state:
                continue
            value = np.asarray(state[key])
            if value.dtype.kind not in "fiu" or value.shape != shape:
                problems.append(f"{key!r}: expected a real array of shape {shape}, got {value.dtype} {value.shape}")
            elif not np.all(np.isfinite(value)):
                problems.append(f"{key!r}: contains NaN or Inf")
            else:
                staged[key] = value
        scalars = {}
        for key in ("step_count", "skipped_steps"):
            if key in staged:
                v = staged[key]
                if v != np.floor(v) or v < 0:
                    problems.append(f"{key!r}: expected a non-negative integer, got {v}")
                else:
                    scalars[key] = int(v)
        if "lr" in staged:
            try:
                scalars["lr"] = _check_lr(float(staged["lr"]), strict=False)
            except ValueError as exc:
                problems.append(str(exc))
        for name in self._hyper:
            if name in staged:
                try:
                    scalars[name] = self._check_hyper(name, float(staged[name]))
                except ValueError as exc:
                    problems.append(str(exc))
        if not problems:
            problems += self._check_together({name: scalars[name] for name in self._hyper})
        if problems:
            raise ValueError("cannot load optimizer state: " + "; ".join(problems))
        with _locked(self._sets):
            for name, bufs in self.state.items():
                for k, buf in enumerate(bufs):
                    np.copyto(buf, staged[f"{name}.{k}"], casting="unsafe")
            self._lr = scalars["lr"]
            self.step_count = scalars["step_count"]
            self.skipped_steps = scalars["skipped_steps"]
            for name in self._hyper:
                setattr(self, name, scalars[name])

    def _check_hyper(self, name, value):
        return check_float(name, value)

    def _check_together(self, hyper):
        """Problems with a combination of loaded hyper-parameters (each already valid alone)."""
        return []

    def __repr__(self):
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in ("lr",) + tuple(self._hyper))
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay.

    As ``torch.optim.SGD``: ``d = g + weight_decay * p``; ``buf = momentum * buf + (1 - dampening) * d``
    (``buf = d`` on the first step); ``d = d + momentum * buf`` (Nesterov) or ``d = buf``; ``p -= lr * d``.
    """

    _hyper = ("momentum", "dampening", "weight_decay", "nesterov")

    def __init__(self, model, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                 skip_nonfinite=False):
        self.momentum = check_float("momentum", momentum, 0.0)
        self.dampening = check_float("dampening", dampening, 0.0, 1.0)
        self.weight_decay = check_float("weight_decay", weight_decay, 0.0)
        self.nesterov = bool(nesterov)
        if nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(f"Nesterov momentum requires momentum > 0 and dampening = 0, "
                             f"got momentum={momentum}, dampening={dampening}")
        self._buffers = ("momentum_buffer",) if self.momentum != 0 else ()
        super().__init__(model, lr, skip_nonfinite)

    def _check_hyper(self, name, value):
        if name == "dampening":
            return check_float(name, value, 0.0, 1.0)
        if name == "nesterov":
            if value not in (0.0, 1.0):
                raise ValueError(f"nesterov must be 0 or 1, got {value}")
            return bool(value)
        if name == "momentum" and (value == 0) != (self.momentum == 0):
            raise ValueError(f"momentum={value} from the state cannot switch the momentum buffer "
                             f"{'on' if value else 'off'} for an SGD built with momentum={self.momentum}")
        return check_float(name, value, 0.0)

    def _check_together(self, hyper):
        if hyper["nesterov"] and (hyper["momentum"] <= 0 or hyper["dampening"] != 0):
            return [f"nesterov requires momentum > 0 and dampening = 0, got momentum={hyper['momentum']}, "
                    f"dampening={hyper['dampening']}"]
        return []

    def _update(self, k, s):
        velocity = self.state["momentum_buffer"][k] if self.momentum != 0 else None
        _k.sgd_step(s.data, s.grad, velocity, self._lr, self.momentum, self.dampening, self.weight_decay,
                    self.nesterov, self.step_count == 1)


class Adam(Optimizer):
    """Adam with bias correction, as ``torch.optim.Adam`` (L2 weight decay added to the gradient)."""

    _hyper = ("beta1", "beta2", "eps", "weight_decay")
    _buffers = ("exp_avg", "exp_avg_sq")
    _decoupled = False

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, skip_nonfinite=False):
        try:
            beta1, beta2 = betas
        except (TypeError, ValueError):
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
        self.beta1 = self._check_hyper("beta1", beta1)
        self.beta2 = self._check_hyper("beta2", beta2)
        self.eps = self._check_hyper("eps", eps)
        self.weight_decay = self._check_hyper("weight_decay", weight_decay)
        super().__init__(model, lr, skip_nonfinite)

    @property
    def betas(self):
        return (self.beta1, self.beta2)

    def _check_hyper(self, name, value):
        value = check_float(name, value, 0.0)
        if name in ("beta1", "beta2") and value >= 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
        return value

    def _update(self, k, s):
        _k.adam_step(s.data, s.grad, self.state["exp_avg"][k], self.state["exp_avg_sq"][k], self._lr,
                     self.beta1, self.beta2, self.eps, self.weight_decay, self._decoupled, self.step_count)


class AdamW(Adam):
    """Adam with decoupled weight decay (``p *= 1 - lr * weight_decay`` before the Adam step), as
    ``torch.optim.AdamW``; the default weight_decay is 1e-2 as there."""

    _decoupled = True

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, skip_nonfinite=False):
        super().__init__(model, lr, betas, eps, weight_decay, skip_nonfinite)


def clip_grad_norm(model, max_norm, error_if_nonfinite=False):
    """Scale all gradients of ``model`` together so that their global L2 norm is at most ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: ``total = sqrt(sum over every gradient entry of g**2)``, and
    when ``coef = max_norm / (total + 1e-6)`` is below 1 every gradient is multiplied by ``coef``.
    Returns ``total``, the norm before clipping, as a float (``inf`` means no clipping, only the norm).

    If ``total`` is NaN or Inf: with ``error_if_nonfinite=True`` raise ``FloatingPointError``; otherwise
    the gradients are left as they are (torch would multiply them into NaN), and the non-finite norm is
    returned, so the optimizer's own guard still names the offending parameters.
    """
    if isinstance(max_norm, (bool, np.bool_)) or not isinstance(max_norm, numbers.Real):
        raise TypeError(f"max_norm must be a real number, got {type(max_norm).__name__} {max_norm!r}")
    max_norm = float(max_norm)
    if not max_norm > 0:  # also catches NaN
        raise ValueError(f"max_norm must be > 0, got {max_norm}")
    sets = _param_sets(model)
    with _locked(sets):
        # total = np.linalg.norm(np.concatenate([s.grad for s in sets])), without overflow
        total = math.hypot(*(_k.norm2(s.grad) for s in sets)) if sets else 0.0
        if not math.isfinite(total):
            if error_if_nonfinite:
                raise FloatingPointError(f"the total gradient norm is {total}: " + _describe(_nonfinite_report(sets))
                                         + "; gradients were not clipped")
            return total
        coef = max_norm / (total + 1e-6)
        if coef < 1.0:
            for s in sets:
                # g *= coef
                s.grad *= s.grad.dtype.type(coef)
    return total
