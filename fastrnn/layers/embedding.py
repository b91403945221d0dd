"""Lookup table from integer indices to vectors (PyTorch's ``nn.Embedding``).

Notation: V = num_embeddings, E = embedding_dim, idx an integer array of any shape S.

    (1) y[s] = W[idx[s]]        W (V, E), y S + (E,)

Backward, added into the gradient view (rows hit several times accumulate):

    dW[v] += sum over s with idx[s] == v (and v != padding_idx) of dy[s]     (1)

There is no gradient with respect to integer indices, so ``backprop`` returns None.
"""
from __future__ import annotations

import numbers

import numpy as np

from .._validation import as_array, check_buffer, check_size, shape_str
from .base import Layer


class Embedding(Layer):
    """``y = weight[idx]``; parameter ``weight`` (num_embeddings, embedding_dim) drawn from N(0, 1).

    ``padding_idx`` (negative values count from the end, as in PyTorch): that row starts at zero and
    never receives a gradient.
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, dtype=np.float32, seed=None):
        self.num_embeddings = check_size("num_embeddings", num_embeddings)
        self.embedding_dim = check_size("embedding_dim", embedding_dim)
        if padding_idx is not None:
            if isinstance(padding_idx, (bool, np.bool_)) or not isinstance(padding_idx, numbers.Integral):
                raise TypeError(f"padding_idx must be an integer or None, got {type(padding_idx).__name__} "
                                f"{padding_idx!r}")
            V = self.num_embeddings
            if not -V <= int(padding_idx) < V:
                raise ValueError(f"padding_idx must be within [-{V}, {V}) for num_embeddings={V}; got {padding_idx}")
            padding_idx = int(padding_idx) % V
        self.padding_idx = padding_idx
        check_buffer("weight", self.num_embeddings, self.embedding_dim)
        super().__init__([("weight", (self.num_embeddings, self.embedding_dim))], dtype)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self.reset_parameters()

    def reset_parameters(self):
        """N(0, 1) for every row, the padding row set to zero, as PyTorch does."""
        W = self.params["weight"]
        W[...] = self._rng.standard_normal(W.shape)
        if self.padding_idx is not None:
            W[self.padding_idx] = 0
        self.param_set.bump()

    def get_config(self):
        return dict(num_embeddings=self.num_embeddings, embedding_dim=self.embedding_dim,
                    padding_idx=self.padding_idx, dtype=self.dtype.name)

    def __repr__(self):
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"Embedding({self.num_embeddings}, {self.embedding_dim}{pad})"

    # ---- forward --------------------------------------------------------------------------------

    def _indices(self, idx):
        """idx as an intp array; ints of any width (or objects converting to them) only, all in [0, V)."""
        if idx is None or isinstance(idx, (str, bytes)):
            raise TypeError(f"indices must be an integer array, got {type(idx).__name__}")
        if hasattr(idx, "detach") and hasattr(idx, "numpy"):  # a torch tensor, without importing torch
            idx = idx.detach().cpu().numpy()
        try:
            arr = np.asarray(idx)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"indices must be an integer array; could not convert it: {exc}") from exc
        if arr.dtype.kind not in "iu" or arr.dtype == np.bool_:
            raise TypeError(f"indices must be integers (token ids), got dtype {arr.dtype}")
        V = self.num_embeddings
        if arr.size:
            lo, hi = arr.min(), arr.max()
            if lo < 0 or hi >= V:
                bad = np.argwhere((arr < 0) | (arr >= V))[0]
                where = tuple(int(k) for k in bad)
                raise ValueError(f"indices must be in [0, num_embeddings={V}); found {arr[where]} at index "
                                 f"{where if arr.ndim != 1 else where[0]}")
        return arr.astype(np.intp, copy=True)

    def __call__(self, idx):
        """Inference: ``y = layer(idx)``; idx of shape S -> y of shape S + (E,)."""
        idx = self._indices(idx)
        # y = W[idx]   (1)
        return np.take(self.params["weight"], idx, axis=0)

    def begin_update(self, idx):
        """Training forward: ``y, backprop``; ``backprop(dy)`` adds into ``grads['weight']``, returns None."""
        idx = self._indices(idx)
        y = np.take(self.params["weight"], idx, axis=0)
        out_shape = y.shape
        rows = idx.reshape(-1)
        if self.padding_idx is not None:
            keep = rows != self.padding_idx
            rows = rows[keep] if not keep.all() else rows
        else:
            keep = None
        version = self.param_set.version

        def backprop(dy):
            if self.param_set.version != version:
                raise RuntimeError("Embedding parameters changed between begin_update and backprop; "
                                   "run begin_update again")
            dy = as_array(dy, "dy", self.dtype)
            if dy.shape != out_shape:
                raise ValueError(f"dy must have the shape of y, {shape_str(out_shape)}; got {shape_str(dy.shape)}")
            dY = dy.reshape(-1, self.embedding_dim)
            if keep is not None and len(rows) != len(keep):
                dY = dY[keep]
            if len(rows) == 0:
                return None
            # (1) as np.add.at(dW, rows, dY), ~10x faster: the rows of dY grouped by index (a stable sort
            # keeps each group in order), each group summed, each sum added to its row once
            order = np.argsort(rows, kind="stable")
            ordered = rows[order]
            starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
            sums = np.add.reduceat(dY[order], starts, axis=0)
            with self.param_set.lock:
                self.grads["weight"][ordered[starts]] += sums
            return None

        return y, backprop
