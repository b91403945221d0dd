"""Ready-made models: a language model, a sequence classifier, a sequence tagger and a forecaster.

Notation: T steps, B rows, V vocabulary size, E embedding size, I input features, H hidden units,
L layers, D directions, C classes (tags), O outputs. Every model is time-major: token ids (T, B) or
features (T, B, I); states are the recurrent layer's, (L*D, B, H) or an LSTM tuple (h, c).

    LanguageModel     ids (T, B)        -> Embedding -> RNN/LSTM/GRU stack -> Linear -> logits (T, B, V)
    SequenceTagger    ids or x          -> [Embedding] -> stack (bidirectional by default) -> Linear -> (T, B, C)
    Forecaster        x (T, B, I)       -> stack -> Linear -> next-step prediction (T, B, O)
    SequenceClassifier ids or x, lengths -> [Embedding] -> stack; the state at each row's last valid
                                           step (both directions) -> Linear -> logits (B, C)

Each model keeps all its parameters in ONE flat buffer (``param_set``; names "embed.weight",
"rnn.weight_ih_l0", "head.weight", ...), so optimizers and ``clip_grad_norm`` see one vector, and
follows the layer protocol. The first three are recurrent (``training_state = True``):

    y, state_n = model(x, state=None, lengths=None)                 inference, saves nothing
    y, state_n, backprop = model.begin_update(x, state=None, lengths=None)
    dx, dstate0 = backprop(dy, dstate_n=None)                       dx is None for token-id input

The classifier is many-to-one: ``logits = model(x, lengths)``; ``logits, backprop = begin_update(x,
lengths)``; ``dx = backprop(dlogits)``. All are registered with fastrnn.io, so ``fr.save``/``fr.load``
round-trip them.
"""
from __future__ import annotations

import inspect
import numbers

import numpy as np

from ._validation import check_choice, check_dtype, check_float, check_size
from .io import num_parameters, register
from .layers.base import Layer
from .layers.dropout import Dropout
from .layers.embedding import Embedding
from .layers.linear import Linear
from .layers.recurrent import GRU, LSTM, RNN
from .layers.sequential import GatheredParamSet

__all__ = ["LanguageModel", "CharLM", "SequenceClassifier", "SequenceTagger", "Forecaster"]

_CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


def _child_seeds(seed, n):
    """n independent integer seeds derived from ``seed`` (None stays None: fresh entropy)."""
    if seed is None:
        return [None] * n
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise TypeError(f"seed must be None or a non-negative integer, got {type(seed).__name__} {seed!r}")
    return [int(s) for s in np.random.SeedSequence(int(seed)).generate_state(n)]


def _config_args(cls, config):
    """The constructor arguments ``cls(**config)`` would get (defaults filled in), or None if it would fail
    to bind (unknown or non-string keys, a missing required argument)."""
    if not isinstance(config, dict):
        return None
    try:
        bound = inspect.signature(cls.__init__).bind(None, **config)
    except TypeError:
        return None
    bound.apply_defaults()
    args = dict(bound.arguments)
    del args["self"]
    return args


def _stack_num_parameters(args, out_size):
    """Parameters of [Embedding] -> recurrent stack -> Linear head, counted from the children's specs by
    ``fastrnn.io.num_parameters``; None when the arguments would not build (the constructor says why)."""
    cell, hidden, vocab, input_size = args["cell"], args["hidden_size"], args.get("vocab_size"), args.get("input_size")
    if not isinstance(cell, str) or cell not in _CELLS or isinstance(hidden, bool) or not isinstance(hidden, int):
        return None
    if (vocab is None) == (input_size is None):
        return None
    D = 2 if args.get("bidirectional", False) else 1
    specs = []
    if vocab is not None:
        specs.append({"class": "Embedding", "config": {"num_embeddings": vocab, "embedding_dim": args["embed_size"]}})
        input_size = args["embed_size"]
    specs.append({"class": _CELLS[cell].__name__, "config": {"input_size": input_size, "hidden_size": hidden,
                                                            "num_layers": args["num_layers"], "bidirectional": D == 2}})
    specs.append({"class": "Linear", "config": {"in_features": D * hidden, "out_features": out_size}})
    counts = [num_parameters(spec) for spec in specs]
    return None if any(c is None for c in counts) else sum(counts)


def _take_rows(state, rows):
    """The state restricted (and reordered) to batch rows ``rows``: axis 1 of each array."""
    if isinstance(state, tuple):
        return tuple(np.ascontiguousarray(s[:, rows]) for s in state)
    return np.ascontiguousarray(state[:, rows])


def _log_softmax(z):
    """log softmax over the last axis, in float64."""
    z = np.asarray(z, np.float64)
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def _sample(logits, temperature, top_k, rng):
    """One id from softmax(logits / temperature), restricted to the top_k largest; temperature 0 is argmax."""
    if temperature == 0:
        return int(np.argmax(logits))
    z = np.asarray(logits, np.float64) / temperature
    if top_k is not None and top_k < z.shape[0]:
        # keep the top_k largest logits: z[z < kth largest] = -inf
        kth = np.partition(z, z.shape[0] - top_k)[z.shape[0] - top_k]
        z = np.where(z >= kth, z, -np.inf)
    p = np.exp(z - z.max())
    cdf = np.cumsum(p)
    # inverse-CDF draw: the first id whose cumulative mass exceeds u * total
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), z.shape[0] - 1))


class _Model(Layer):
    """Named children gathered into one flat buffer; subclasses build them and define the forward."""

    def _gather(self, named, dtype):
        self.dtype = np.dtype(dtype)
        self._children = [(name, layer) for name, layer in named if layer is not None]
        self.param_set = GatheredParamSet([(name, layer.param_set) for name, layer in self._children], self.dtype)
        for _, layer in self._children:
            layer.param_set._container = self

    def param_sets(self):
        return [self.param_set]

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class _RecurrentModel(_Model):
    """[Embedding or features] -> recurrent stack -> [variational Dropout] -> Linear, applied at every step."""

    training_state = True

    def _build(self, vocab_size, input_size, embed_size, hidden_size, num_layers, cell, bidirectional, dropout,
               out_size, dtype, seed):
        self.cell = check_choice("cell", cell, tuple(_CELLS))
        self.hidden_size = check_size("hidden_size", hidden_size)
        self.num_layers = check_size("num_layers", num_layers)
        self.bidirectional = bool(bidirectional)
        self.dropout = check_float("dropout", dropout, 0.0, 1.0)
        if self.dropout >= 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        dtype = check_dtype(dtype)
        self.seed = seed
        s_embed, s_rnn, s_drop, s_head = _child_seeds(seed, 4)
        if vocab_size is not None:
            self.vocab_size = check_size("vocab_size", vocab_size)
            self.embed_size = check_size("embed_size", embed_size)
            self.embed = Embedding(self.vocab_size, self.embed_size, dtype=dtype, seed=s_embed)
            rnn_in = self.embed_size
        else:
            self.vocab_size, self.embed = None, None
            rnn_in = check_size("input_size", input_size)
        self.input_size = rnn_in
        inter = self.dropout if self.num_layers > 1 else 0.0
        self.rnn = _CELLS[self.cell](rnn_in, self.hidden_size, num_layers=self.num_layers, dropout=inter,
                                     bidirectional=self.bidirectional, dtype=dtype, seed=s_rnn)
        D = 2 if self.bidirectional else 1
        self.drop = Dropout(self.dropout, variational=True, seed=s_drop) if self.dropout > 0 else None
        self.head = Linear(D * self.hidden_size, out_size, dtype=dtype, seed=s_head)
        self._gather([("embed", self.embed), ("rnn", self.rnn), ("head", self.head)], dtype)

    def __call__(self, x, state=None, lengths=None):
        """Inference: ``y, state_n = model(x, state=None, lengths=None)``; saves nothing."""
        h = self.embed(x) if self.embed is not None else x
        h, state_n = self.rnn(h, state, lengths=lengths)
        return self.head(h), state_n

    def begin_update(self, x, state=None, lengths=None):
        """Training forward: ``y, state_n, backprop``; ``dx, dstate0 = backprop(dy, dstate_n=None)``."""
        bp_embed = bp_drop = None
        if self.embed is not None:
            h, bp_embed = self.embed.begin_update(x)
        else:
            h = x
        h, state_n, bp_rnn = self.rnn.begin_update(h, state, lengths=lengths)
        if self.drop is not None:
            h, bp_drop = self.drop.begin_update(h)
        y, bp_head = self.head.begin_update(h)

        def backprop(dy, dstate_n=None):
            dh = bp_head(dy)
            if bp_drop is not None:
                dh = bp_drop(dh)
            dx, dstate0 = bp_rnn(dh, dstate_n)
            if bp_embed is not None:
                dx = bp_embed(dx)  # None: no gradient for token ids
            return dx, dstate0

        return y, state_n, backprop

    def _config(self):
        return dict(hidden_size=self.hidden_size, num_layers=self.num_layers, cell=self.cell, dropout=self.dropout,
                    dtype=self.dtype.name, seed=self.seed)


@register
class LanguageModel(_RecurrentModel):
    """Embedding -> stacked RNN/LSTM/GRU -> Linear: next-token logits (T, B, V) from ids (T, B).

    ``generate`` samples (temperature, top-k, seeded), ``beam_search`` finds a likely continuation;
    both step the recurrent stack one token at a time with its state carried.
    """

    def __init__(self, vocab_size, hidden_size=256, num_layers=2, cell="lstm", embed_size=64, dropout=0.0,
                 dtype="float32", seed=None):
        self._build(vocab_size, None, embed_size, hidden_size, num_layers, cell, False, dropout, vocab_size, dtype,
                    seed)

    def get_config(self):
        return dict(vocab_size=self.vocab_size, embed_size=self.embed_size, **self._config())

    @classmethod
    def config_num_parameters(cls, config):
        """The parameter count ``cls(**config)`` would allocate, or None; nothing is built (fastrnn.io)."""
        args = _config_args(cls, config)
        return None if args is None else _stack_num_parameters(dict(args, input_size=None), args["vocab_size"])

    def _prompt(self, prompt_ids):
        ids = np.asarray(prompt_ids)
        if ids.size == 0:
            raise ValueError(f"prompt_ids must hold at least one id (the model needs a first token); got shape "
                             f"{ids.shape}")
        if ids.dtype.kind not in "iu" or ids.dtype == np.bool_:
            raise TypeError(f"prompt_ids must be integer token ids, got dtype {ids.dtype}")
        if ids.ndim != 1 or ids.shape[0] == 0:
            raise ValueError(f"prompt_ids must be a non-empty 1-D array of ids; got shape {ids.shape}")
        return ids.astype(np.int64)

    def generate(self, prompt_ids, n, temperature=1.0, top_k=None, seed=None):
        """``n`` new ids sampled after ``prompt_ids`` (1-D, at least one id), returned as int64 (n,).

        Each id is drawn from softmax(logits / temperature) (temperature 0: the most likely id), among the
        ``top_k`` most likely when given. The same ``seed`` gives the same ids.
        """
        ids = self._prompt(prompt_ids)
        n = check_size("n", n, minimum=0)
        temperature = check_float("temperature", temperature, 0.0)
        if top_k is not None:
            top_k = check_size("top_k", top_k)
        rng = np.random.default_rng(seed)
        out = np.empty(n, np.int64)
        if n == 0:
            return out
        # the prompt in one call (T, 1), then one step at a time with the state carried
        z, state = self(ids[:, None])
        logits = z[-1, 0]
        x = np.empty((1, 1), np.int64)
        for i in range(n):
            out[i] = _sample(logits, temperature, top_k, rng)
            if i + 1 == n:
                break
            x[0, 0] = out[i]
            z, state = self(x, state)
            logits = z[0, 0]
        return out

    def beam_search(self, prompt_ids, n, beam=5, return_score=False):
        """The most likely ``n``-id continuation found by a beam of width ``beam`` (int64 (n,)).

        Keeps the ``beam`` best partial continuations by total log-probability at each step (ties broken
        by the lower id). With ``return_score=True`` returns ``(ids, log_prob)``.
        """
        ids = self._prompt(prompt_ids)
        n = check_size("n", n, minimum=0)
        beam = check_size("beam", beam)
        if n == 0:
            return (np.empty(0, np.int64), 0.0) if return_score else np.empty(0, np.int64)
        z, state = self(ids[:, None])
        logp = _log_softmax(z[-1])                      # (1, V): one live hypothesis
        scores = np.zeros(1)
        seqs = np.empty((1, 0), np.int64)
        V = logp.shape[-1]
        for i in range(n):
            # cand[j, v] = scores[j] + log p(v | hypothesis j)
            cand = (scores[:, None] + logp).ravel()
            top = np.argsort(-cand, kind="stable")[:beam]
            parents, tokens = np.divmod(top, V)
            scores = cand[top]
            seqs = np.concatenate([seqs[parents], tokens[:, None]], axis=1)
            if i + 1 == n:
                break
            state = _take_rows(state, parents)
            z, state = self(tokens[None, :], state)     # one step for all live hypotheses: (1, beam)
            logp = _log_softmax(z[0])
        return (seqs[0].copy(), float(scores[0])) if return_score else seqs[0].copy()


#: the character language model is a LanguageModel over a character vocabulary
CharLM = LanguageModel


@register
class SequenceTagger(_RecurrentModel):
    """Many-to-many: a tag (class) score for every step, (T, B, num_tags), from ids or features.

    Give ``vocab_size`` for token-id input (T, B) or ``input_size`` for features (T, B, I). Bidirectional
    by default. With ``lengths``, padded steps give outputs that a loss should ignore (``ignore_index``).
    """

    def __init__(self, num_tags, input_size=None, vocab_size=None, hidden_size=64, num_layers=1, cell="lstm",
                 bidirectional=True, embed_size=32, dropout=0.0, dtype="float32", seed=None):
        if (input_size is None) == (vocab_size is None):
            raise ValueError("give exactly one of input_size (feature input) and vocab_size (token-id input); "
                             f"got input_size={input_size!r}, vocab_size={vocab_size!r}")
        self.num_tags = check_size("num_tags", num_tags)
        self._build(vocab_size, input_size, embed_size, hidden_size, num_layers, cell, bidirectional, dropout,
                    self.num_tags, dtype, seed)

    def get_config(self):
        cfg = dict(num_tags=self.num_tags, bidirectional=self.bidirectional, **self._config())
        if self.vocab_size is not None:
            cfg.update(vocab_size=self.vocab_size, embed_size=self.embed_size)
        else:
            cfg.update(input_size=self.input_size)
        return cfg

    @classmethod
    def config_num_parameters(cls, config):
        """The parameter count ``cls(**config)`` would allocate, or None; nothing is built (fastrnn.io)."""
        args = _config_args(cls, config)
        return None if args is None else _stack_num_parameters(args, args["num_tags"])

    def predict(self, x, lengths=None):
        """The most likely tag at every step, (T, B) int64."""
        y, _ = self(x, None, lengths=lengths)
        return np.argmax(y, axis=-1)


@register
class Forecaster(_RecurrentModel):
    """Real-valued series: at every step, a prediction of the next value, (T, B, output_size).

    ``forecast(history, steps)`` runs the history, then feeds each prediction back as the next input
    (needs output_size == input_size).
    """

    def __init__(self, input_size=1, output_size=None, hidden_size=32, num_layers=1, cell="lstm", dropout=0.0,
                 dtype="float32", seed=None):
        input_size = check_size("input_size", input_size)
        self.output_size = input_size if output_size is None else check_size("output_size", output_size)
        self._build(None, input_size, None, hidden_size, num_layers, cell, False, dropout, self.output_size,
                    dtype, seed)

    def get_config(self):
        return dict(input_size=self.input_size, output_size=self.output_size, **self._config())

    @classmethod
    def config_num_parameters(cls, config):
        """The parameter count ``cls(**config)`` would allocate, or None; nothing is built (fastrnn.io)."""
        args = _config_args(cls, config)
        if args is None:
            return None
        out = args["input_size"] if args["output_size"] is None else args["output_size"]
        return _stack_num_parameters(dict(args, vocab_size=None), out)

    def forecast(self, history, steps):
        """Predict ``steps`` values after ``history`` ((T, I) or (T, B, I)); returns (steps, I) or (steps, B, I)."""
        if self.output_size != self.input_size:
            raise ValueError(f"forecast feeds predictions back as inputs, which needs output_size == input_size; "
                             f"got output_size={self.output_size}, input_size={self.input_size}")
        steps = check_size("steps", steps)
        y, state = self(history)
        out = [y[-1]]
        for _ in range(steps - 1):
            y, state = self(out[-1][None], state)
            out.append(y[0])
        return np.stack(out)


@register
class SequenceClassifier(_Model):
    """Many-to-one: class logits (B, C) from the state at each row's last valid step.

    The recurrent stack runs over ids (T, B) (``vocab_size``) or features (T, B, I) (``input_size``);
    with ``lengths`` each row stops at its own length (no sorting), and its final state is the state
    after its last valid step. The features given to the Linear head are the last layer's final h of
    each direction, concatenated (forward, then backward): (B, D*H).

        logits = model(x, lengths=None)
        logits, backprop = model.begin_update(x, lengths=None);  dx = backprop(dlogits)
    """

    training_state = False

    def __init__(self, num_classes, input_size=None, vocab_size=None, hidden_size=64, num_layers=1, cell="lstm",
                 bidirectional=False, embed_size=32, dtype="float32", seed=None):
        if (input_size is None) == (vocab_size is None):
            raise ValueError("give exactly one of input_size (feature input) and vocab_size (token-id input); "
                             f"got input_size={input_size!r}, vocab_size={vocab_size!r}")
        self.num_classes = check_size("num_classes", num_classes)
        self.cell = check_choice("cell", cell, tuple(_CELLS))
        self.hidden_size = check_size("hidden_size", hidden_size)
        self.num_layers = check_size("num_layers", num_layers)
        self.bidirectional = bool(bidirectional)
        self.seed = seed
        dtype = check_dtype(dtype)
        s_embed, s_rnn, s_head = _child_seeds(seed, 3)
        if vocab_size is not None:
            self.vocab_size = check_size("vocab_size", vocab_size)
            self.embed_size = check_size("embed_size", embed_size)
            self.embed = Embedding(self.vocab_size, self.embed_size, dtype=dtype, seed=s_embed)
            self.input_size = self.embed_size
        else:
            self.vocab_size, self.embed = None, None
            self.input_size = check_size("input_size", input_size)
        self.rnn = _CELLS[self.cell](self.input_size, self.hidden_size, num_layers=self.num_layers,
                                     bidirectional=self.bidirectional, dtype=dtype, seed=s_rnn)
        self.D = 2 if self.bidirectional else 1
        self.head = Linear(self.D * self.hidden_size, self.num_classes, dtype=dtype, seed=s_head)
        self._gather([("embed", self.embed), ("rnn", self.rnn), ("head", self.head)], dtype)

    def get_config(self):
        cfg = dict(num_classes=self.num_classes, hidden_size=self.hidden_size, num_layers=self.num_layers,
                   cell=self.cell, bidirectional=self.bidirectional, dtype=self.dtype.name, seed=self.seed)
        if self.vocab_size is not None:
            cfg.update(vocab_size=self.vocab_size, embed_size=self.embed_size)
        else:
            cfg.update(input_size=self.input_size)
        return cfg

    @classmethod
    def config_num_parameters(cls, config):
        """The parameter count ``cls(**config)`` would allocate, or None; nothing is built (fastrnn.io)."""
        args = _config_args(cls, config)
        return None if args is None else _stack_num_parameters(args, args["num_classes"])

    def _check_batched(self, x):
        ndim = np.ndim(x)
        want = 2 if self.embed is not None else 3
        if ndim != want:
            form = "ids (T, B)" if self.embed is not None else f"features (T, B, {self.input_size})"
            raise ValueError(f"SequenceClassifier expects batched time-major {form}; got {ndim}-D input "
                             f"with shape {np.shape(x)}")

    def _features(self, state_n):
        """(B, D*H): the last layer's final h of each direction, forward first."""
        h_n = state_n[0] if isinstance(state_n, tuple) else state_n
        D, L = self.D, self.num_layers
        return np.concatenate([h_n[(L - 1) * D + d] for d in range(D)], axis=1)

    def __call__(self, x, lengths=None):
        """Inference: class logits (B, C)."""
        self._check_batched(x)
        h = self.embed(x) if self.embed is not None else x
        _, state_n = self.rnn(h, None, lengths=lengths)
        return self.head(self._features(state_n))

    def predict(self, x, lengths=None):
        """The most likely class of each row, (B,) int64."""
        return np.argmax(self(x, lengths=lengths), axis=-1)

    def begin_update(self, x, lengths=None):
        """Training forward: ``logits, backprop``; ``dx = backprop(dlogits)`` (None for token ids)."""
        self._check_batched(x)
        bp_embed = None
        if self.embed is not None:
            h, bp_embed = self.embed.begin_update(x)
        else:
            h = x
        _, state_n, bp_rnn = self.rnn.begin_update(h, None, lengths=lengths)
        feats = self._features(state_n)
        logits, bp_head = self.head.begin_update(feats)
        B, H, D, L = feats.shape[0], self.hidden_size, self.D, self.num_layers

        def backprop(dlogits):
            dfeats = bp_head(dlogits)
            # the gradient enters the recurrent stack through its final state only (dy = 0)
            dh_n = np.zeros((L * D, B, H), self.dtype)
            for d in range(D):
                dh_n[(L - 1) * D + d] = dfeats[:, d * H:(d + 1) * H]
            dx, _ = bp_rnn(None, (dh_n, None) if self.cell == "lstm" else dh_n)
            return bp_embed(dx) if bp_embed is not None else dx

        return logits, backprop
