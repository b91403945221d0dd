"""Training: truncated BPTT, recomputation for long sequences, evaluation, and a ``fit`` loop.

Notation: T steps in a sequence, B rows, k steps per TBPTT chunk, s steps per recomputation segment,
H hidden units (H_out = proj_size or H), I_l the input size of layer l, G = gates * H (RNN 1, GRU 3,
LSTM 4), L layers, D directions, V classes (vocabulary), P parameters.

Truncated BPTT
--------------
``backward_sequence(model, x, target, loss_fn, tbptt=k)`` runs a (T, B, ...) sequence as chunks of k
steps. Each chunk is a full forward and backward pass whose initial state is the previous chunk's final
state; the gradient with respect to that initial state is dropped (no gradient crosses a chunk
boundary). Each chunk's loss is weighted by its share of the steps (k / T), so with ``k >= T`` the loss
and every gradient equal full BPTT exactly, and for ``k < T`` they equal it up to the cross-boundary
terms. For a long text, ``fit(..., carry_state=True)`` does the same across batches: the batches are
consecutive chunks (``fastrnn.data.lm_batches``), one optimizer step per chunk.

Memory of BPTT
--------------
A training forward keeps, for every (layer, direction), what its backward needs (see the kernels in
fastrnn/_kernels/*.pyx and ``fastrnn.layers.recurrent``), in elements of the layer dtype (4 or 8 bytes):

    gate buffer G, LSTM and GRU (becomes dG)   T * B * G
    state history Hs                           (T + 1) * B * H_out
    LSTM cell states Cs                        (T + 1) * B * H
    LSTM with projection: r_t = o * tanh(c_t)  T * B * H
    GRU: hn (reset-after) or r * h_prev        T * B * H

(the RNN's backward needs only Hs: its dG is scratch for one chunk of steps, see rnn.pyx) and, per
layer, its input (a private copy of x for layer 0: T * B * I_0; the previous layer's output
T * B * D * H_out for the others, which with one direction and no padding is that layer's Hs itself)
plus, with inter-layer dropout, a mask and the masked output, T * B * D * H_out each. A Linear
head keeps a copy of its input (T * B * D * H_out); the logits and their gradient are T * B * V each.
(To refuse a backward against changed weights, ``begin_update`` keeps a 24-byte fingerprint of the
parameters, not a copy.) ``bptt_memory(layer, T, B)`` adds these up for a recurrent layer. So the memory
grows linearly in T: for a 2-layer LSTM with H = 256 and B = 32 in
float32, about 6 * H * B * 4 bytes = 196 kB per step and layer, 4 GB for T = 10,000.

Recomputation
-------------
``checkpoint_every=s`` bounds that: the forward pass runs in segments of s steps with inference calls
(which save nothing), keeping only the states at segment boundaries; the backward pass then goes over
the segments from last to first, re-running each segment's training forward (``begin_update``) from
its saved initial state and back-propagating into it, the gradient of its initial state becoming the
gradient of the previous segment's final state. Gradients equal full BPTT (only the order of floating
point sums differs). Peak memory is about ceil(T / s) boundary states (L * D * B * (H_out [+ H])) plus
one segment's buffers (the table above with s in place of T); s near sqrt(T) minimises it. The price is
one more forward pass per step (about a third more time). It requires a model without dropout (the
recomputed forward must see the same masks as the first one) and token or feature inputs whose time
axis is the first.
"""
from __future__ import annotations

import math
import os
import sys
import time

import numpy as np

from .losses import softmax_cross_entropy
from .optim import clip_grad_norm

__all__ = ["backward_sequence", "evaluate", "fit", "History", "NonFiniteLossError", "bits_per_char", "bptt_memory"]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or Inf."""


def bits_per_char(nats):
    """A cross-entropy in nats per character expressed in bits per character."""
    return nats / math.log(2.0)


def bptt_memory(layer, T, B):
    """Bytes a recurrent layer's ``begin_update`` keeps for backward over T steps and B rows (no padding).

    ``layer`` is an fr.RNN, fr.LSTM or fr.GRU. Returns a dict of the parts named in the module
    docstring (per layer and direction summed) and their ``"total"``; the returned output y is counted
    too (``"output"``), as it lives as long as the training step. With one direction a layer's output
    is its state history (no bytes of its own) unless dropout follows it.
    """
    mode = getattr(layer, "mode", None)
    if mode not in ("RNN", "LSTM", "GRU"):
        raise TypeError(f"bptt_memory needs an fr.RNN, fr.LSTM or fr.GRU layer, got {type(layer).__name__}")
    T, B = int(T), int(B)
    H, P, L, D = layer.hidden_size, layer.h_out, layer.num_layers, layer.num_directions
    gates = {"RNN": 1, "LSTM": 4, "GRU": 3}[mode]
    item = layer.dtype.itemsize
    per_dir = {"states Hs": (T + 1) * B * P}
    if mode != "RNN":
        per_dir["gates G"] = T * B * gates * H
    if mode == "LSTM":
        per_dir["cell states Cs"] = (T + 1) * B * H
        if layer.proj_size:
            per_dir["projection inputs R"] = T * B * H
    if mode == "GRU":
        per_dir["GRU hn / r*h A"] = T * B * H
    parts = {name: n * L * D * item for name, n in per_dir.items()}
    own_output = D == 2  # one direction: the output is a view of Hs
    dropout = layer.dropout > 0 and L > 1
    inputs = T * B * layer.input_size + (L - 1) * T * B * D * P * (own_output or dropout)
    parts["layer inputs"] = inputs * item
    if dropout:
        parts["dropout masks"] = (L - 1) * T * B * D * P * item
    parts["output"] = T * B * D * P * item * own_output
    parts["total"] = sum(parts.values())
    return parts


# ---- one sequence: TBPTT and recomputation ----------------------------------------------------------

def _has_dropout(model):
    """True if the model (or a child layer) applies dropout in its training forward."""
    stack, seen = [model], set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        for attr in ("dropout", "p"):
            value = getattr(layer, attr, 0)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 \
                    and (attr == "dropout" or type(layer).__name__ == "Dropout"):
                return True
        stack.extend(getattr(layer, "layers", []) or [])
        stack.extend(child for _, child in getattr(layer, "_children", []) or [])
    return False


def _slice_lengths(lengths, t0, t1):
    """Per-row lengths inside steps [t0, t1): clipped to [1, t1 - t0] (a row already ended runs one padded
    step, whose output the loss must ignore and whose state is never used)."""
    if lengths is None:
        return None
    return np.clip(np.asarray(lengths, np.int64) - t0, 1, t1 - t0)


def _segment_backward(model, x, target, loss_fn, state0, lengths, weight, segment):
    """Forward + backward over x (T, ...) from state0, with no gradient into state0; returns (loss, state_n).

    ``segment`` (s < T) turns on recomputation: inference forward keeping boundary states, then per
    segment, last to first, a training forward and its backward.
    """
    T = len(x)
    if segment is None or segment >= T:
        y, state_n, backprop = model.begin_update(x, state0, lengths=lengths)
        loss, dy = loss_fn(y, target)
        backprop(dy * dy.dtype.type(weight))  # the returned gradient of state0 is dropped
        return loss * weight, state_n
    starts = list(range(0, T, segment))
    # pass 1: inference (saves nothing), keeping the state at every segment boundary
    states = [state0]
    for t0 in starts[:-1]:
        t1 = t0 + segment
        _, state = model(x[t0:t1], states[-1], lengths=_slice_lengths(lengths, t0, t1))
        states.append(state)
    # pass 2: last segment first; each recomputed, back-propagated, its dstate0 passed back as dstate_n
    total, dstate, state_n = 0.0, None, None
    for j in reversed(range(len(starts))):
        t0 = starts[j]
        t1 = min(t0 + segment, T)
        y, state_j, backprop = model.begin_update(x[t0:t1], states[j], lengths=_slice_lengths(lengths, t0, t1))
        if state_n is None:
            state_n = state_j
        loss, dy = loss_fn(y, target[t0:t1])
        w = weight * (t1 - t0) / T
        _, dstate = backprop(dy * dy.dtype.type(w), dstate)
        total += loss * w
        states[j] = None  # free the boundary state once used
    return total, state_n


def backward_sequence(model, x, target, loss_fn=softmax_cross_entropy, state0=None, lengths=None, tbptt=None,
                      checkpoint_every=None):
    """Forward and backward over one time-major sequence; gradients are ADDED into the model's grads.

    ``model`` follows the recurrent protocol (``begin_update(x, state0, lengths=)`` and inference
    ``model(x, state0, lengths=)``). ``loss_fn(y, target) -> (loss, dy)`` returns a mean over the
    positions it is given. ``tbptt=k`` splits the sequence into chunks of k steps, carrying the state and
    dropping its gradient between chunks (``None``: full BPTT). ``checkpoint_every=s`` recomputes each
    chunk in segments of s steps to bound memory (see the module docstring). Returns
    ``(loss, state_n)``: the loss averaged over all T steps, and the final state (no gradient attached).
    """
    T = len(x)
    if T == 0:
        raise ValueError("x must have at least one time step; got T=0")
    if len(target) != T:
        raise ValueError(f"target must have the T={T} steps of x; got {len(target)}")
    k = _positive_or_none("tbptt", tbptt) or T
    s = _positive_or_none("checkpoint_every", checkpoint_every)
    if s is not None and s < min(k, T) and _has_dropout(model):
        raise ValueError("checkpoint_every needs a model without dropout: the recomputed forward would draw "
                         "new dropout masks; set dropout=0 or checkpoint_every=None")
    total, state = 0.0, state0
    for t0 in range(0, T, k):
        t1 = min(t0 + k, T)
        loss, state = _segment_backward(model, x[t0:t1], target[t0:t1], loss_fn, state,
                                        _slice_lengths(lengths, t0, t1), (t1 - t0) / T, s)
        total += loss
    return total, state


def _positive_or_none(name, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive integer or None, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1 or None, got {value}")
    return int(value)


# ---- batches, evaluation -----------------------------------------------------------------------------

def _unpack(batch):
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise TypeError(f"a batch must be a tuple (x, target) or (x, target, lengths); got {type(batch).__name__}"
                        + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else ""))
    return (batch[0], batch[1], batch[2] if len(batch) == 3 else None)


def _batches(data):
    """A fresh iterable of batches: ``data`` is a callable returning one, or a re-iterable (list, tuple)."""
    return data() if callable(data) else data


def _count(target, ignore_index):
    t = np.asarray(target)
    if ignore_index is None or t.dtype.kind not in "iu":
        return t.size
    return int(np.count_nonzero(t != ignore_index))


def evaluate(model, data, loss_fn=softmax_cross_entropy, carry_state=False, ignore_index=None):
    """Mean loss of ``model`` over the batches of ``data`` (inference only; weights and grads untouched).

    Each batch's mean loss is weighted by its number of target positions (those not equal to
    ``ignore_index``). With ``carry_state=True`` the state runs on from one batch to the next (a long text
    cut into consecutive chunks).
    """
    total, count, state = 0.0, 0, None
    for batch in _batches(data):
        x, target, lengths = _unpack(batch)
        if model.training_state:
            y, state_n = model(x, state if carry_state else None, lengths=lengths)
            state = state_n
        else:
            y = model(x, lengths=lengths) if lengths is not None else model(x)
        loss, _ = loss_fn(y, target)
        n = _count(target, ignore_index)
        total += float(loss) * n
        count += n
    if count == 0:
        raise ValueError("evaluate got no batches (or only ignored targets)")
    return total / count


# ---- the fit loop -------------------------------------------------------------------------------------

class History:
    """What ``fit`` recorded: per logged step ``steps``, ``loss``, ``grad_norm``, ``lr``, ``time``; per
    evaluation ``val_steps``, ``val_loss``; ``stop_reason`` ("completed", "max_steps", "time budget",
    or the non-finite message); ``best_val_loss``."""

    def __init__(self):
        self.steps, self.loss, self.grad_norm, self.lr, self.time = [], [], [], [], []
        self.val_steps, self.val_loss = [], []
        self.stop_reason = None
        self.total_steps = 0

    @property
    def best_val_loss(self):
        return min(self.val_loss) if self.val_loss else None

    def __repr__(self):
        last = f"{self.loss[-1]:.4f}" if self.loss else "-"
        val = f"{self.val_loss[-1]:.4f}" if self.val_loss else "-"
        return (f"History(steps={self.total_steps}, last loss={last}, last val loss={val}, "
                f"stop_reason={self.stop_reason!r})")


def _progress_bar(enabled, total, file):
    if enabled is False or (enabled is None and not getattr(file, "isatty", lambda: False)()):
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, file=file, unit="step", dynamic_ncols=True, leave=True)


def fit(model, optimizer, train, *, loss_fn=softmax_cross_entropy, val=None, epochs=1, max_steps=None,
        max_seconds=None, carry_state=False, tbptt=None, checkpoint_every=None, clip_norm=None, schedule=None,
        eval_every=None, log_every=50, checkpoint_path=None, checkpoint_metadata=None, ignore_index=None,
        progress=None, print_fn=None, callback=None, on_eval=None):
    """Train ``model`` with ``optimizer`` on the batches of ``train``; returns a ``History``.

    ``train`` / ``val``: a list (or any re-iterable) of batches, or a callable returning a fresh iterable
    each epoch; a batch is ``(x, target)`` or ``(x, target, lengths)``, time-major.

    Each batch: zero the gradients, forward and backward (``backward_sequence`` for recurrent models, so
    ``tbptt`` and ``checkpoint_every`` apply), clip the gradients to global norm ``clip_norm`` (the norm
    before clipping is logged either way), ``optimizer.step()``, then ``schedule.step()``.
    ``carry_state=True`` passes each batch's final state (without gradient) to the next batch, for
    consecutive chunks of one long stream (truncated BPTT across batches).

    Stops after ``epochs`` passes (None: no limit, then ``max_steps`` or ``max_seconds`` must be given),
    ``max_steps`` steps or ``max_seconds`` of wall clock (checked before
    each step), whichever comes first. A NaN or Inf loss stops training at once with a message; the step
    that produced it is not applied (so the weights stay finite), and ``History.stop_reason`` says why.
    An optimizer step refused for non-finite gradients stops training the same way.

    Every ``eval_every`` steps and at the end, the mean loss on ``val`` is printed and recorded; with
    ``checkpoint_path`` the model is saved there (atomically, ``fastrnn.io.save``) at each evaluation and
    at the end, with ``checkpoint_metadata`` plus the step and losses in the file's metadata.

    Progress: a tqdm bar (stderr) when tqdm is importable and ``progress`` is True (or None, the
    default, and stderr is a terminal), else a printed
    line every ``log_every`` steps (``print_fn``, default ``print`` to stdout). ``callback(step, info)``
    is called after every step with a dict of loss, grad_norm and lr (it may change ``optimizer.lr``);
    ``on_eval(step, val_loss)`` after every evaluation, and a string it returns is printed.
    """
    from .io import save  # local: io imports nothing from here, but keep import time low

    print_fn = print if print_fn is None else print_fn
    epochs = _positive_or_none("epochs", epochs)
    if epochs is None and max_steps is None and max_seconds is None:
        raise ValueError("epochs=None trains without end: give max_steps or max_seconds too")
    max_steps = _positive_or_none("max_steps", max_steps)
    eval_every = _positive_or_none("eval_every", eval_every)
    log_every = _positive_or_none("log_every", log_every) or 50
    if max_seconds is not None and not (isinstance(max_seconds, (int, float)) and max_seconds > 0):
        raise ValueError(f"max_seconds must be a positive number or None, got {max_seconds!r}")
    history = History()
    bar = _progress_bar(progress, max_steps, sys.stderr)
    say = bar.write if bar is not None else print_fn
    t_start = time.perf_counter()
    step = 0
    window = []

    def run_eval():
        if val is None:
            return None
        v = evaluate(model, val, loss_fn, carry_state=carry_state, ignore_index=ignore_index)
        history.val_steps.append(step)
        history.val_loss.append(v)
        say(f"step {step}: val loss {v:.4f}" + (f" ({bits_per_char(v):.3f} bits/char)"
                                                 if loss_fn is softmax_cross_entropy else ""))
        if on_eval is not None:
            text = on_eval(step, v)
            if text:
                say(text)
        return v

    def save_checkpoint():
        if checkpoint_path is None:
            return
        meta = dict(checkpoint_metadata or {})
        meta.update(step=step, train_loss=history.loss[-1] if history.loss else None,
                    val_loss=history.val_loss[-1] if history.val_loss else None)
        save(model, os.fspath(checkpoint_path), metadata=meta)

    try:
        stop = None
        for _ in (range(epochs) if epochs is not None else iter(int, 1)):
            state, n_batches = None, 0
            for batch in _batches(train):
                n_batches += 1
                if max_steps is not None and step >= max_steps:
                    stop = "max_steps"
                    break
                if max_seconds is not None and time.perf_counter() - t_start >= max_seconds:
                    stop = "time budget"
                    break
                x, target, lengths = _unpack(batch)
                model.zero_grad()
                if model.training_state:
                    loss, state_n = backward_sequence(model, x, target, loss_fn, state0=state if carry_state else None,
                                                      lengths=lengths, tbptt=tbptt, checkpoint_every=checkpoint_every)
                    state = state_n
                else:
                    y, backprop = model.begin_update(x, lengths=lengths) if lengths is not None \
                        else model.begin_update(x)
                    loss, dy = loss_fn(y, target)
                    backprop(dy)
                loss = float(loss)
                if not math.isfinite(loss):
                    stop = (f"non-finite loss ({loss}) at step {step + 1}: training stopped, the step was not "
                            "applied and the weights are those after step " + str(step)
                            + "; try a lower learning rate or clip_norm")
                    break
                grad_norm = clip_grad_norm(model, clip_norm if clip_norm is not None else math.inf)
                try:
                    applied = optimizer.step()
                except FloatingPointError as exc:
                    stop = f"step {step + 1} refused: {exc}"
                    break
                if applied is False:
                    say(f"step {step + 1}: skipped (non-finite gradients); weights unchanged")
                if schedule is not None:
                    schedule.step()
                step += 1
                history.total_steps = step
                window.append(loss)
                lr = float(optimizer.lr)
                if callback is not None:
                    callback(step, {"loss": loss, "grad_norm": grad_norm, "lr": lr})
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.3f}", gnorm=f"{grad_norm:.2f}", refresh=False)
                if step % log_every == 0:
                    mean = float(np.mean(window))
                    window.clear()
                    elapsed = time.perf_counter() - t_start
                    history.steps.append(step)
                    history.loss.append(mean)
                    history.grad_norm.append(grad_norm)
                    history.lr.append(lr)
                    history.time.append(elapsed)
                    if bar is None:
                        say(f"step {step}: loss {mean:.4f}  grad norm {grad_norm:.3f}  lr {lr:.3g}  "
                            f"{elapsed:.0f} s")
                if eval_every is not None and step % eval_every == 0:
                    run_eval()
                    save_checkpoint()
            if stop is not None:
                break
            if n_batches == 0:
                raise ValueError("train gave no batches: pass a list of (x, target) batches or a callable "
                                 "returning a fresh iterable of them each epoch (a used-up generator gives none)")
        history.stop_reason = stop or "completed"
        if stop is not None and stop.startswith(("non-finite", "step")):
            say("stopped early: " + stop)
        if window:
            history.steps.append(step)
            history.loss.append(float(np.mean(window)))
            history.grad_norm.append(grad_norm)
            history.lr.append(float(optimizer.lr))
            history.time.append(time.perf_counter() - t_start)
        if step and (not history.val_steps or history.val_steps[-1] != step):
            run_eval()
        if step:
            save_checkpoint()
    finally:
        if bar is not None:
            bar.close()
    return history
