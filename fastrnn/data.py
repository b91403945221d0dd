"""Text data for language models: the shipped corpus, a character vocabulary, splits and TBPTT batches.

Notation: N characters (token ids) in a stream, B parallel streams (batch rows), k steps per chunk.

A long text is cut into B contiguous streams of N // B ids, laid out time-major (N // B, B): row b of
the batch reads stream b from left to right, so the state a model ends a chunk with is the right
initial state for the next chunk of the same row (truncated BPTT carries it over, without gradient).

    ids      = vocab.encode(text)                       (N,) int64
    streams  = batchify(ids, B)                         (N // B, B), column b = ids[b*S:(b+1)*S]
    x, y     = streams[t:t+k], streams[t+1:t+k+1]       inputs and next-character targets, (k, B)
"""
from __future__ import annotations

import gzip
import numbers
from importlib import resources

import numpy as np

from ._validation import check_size

__all__ = ["CharVocab", "load_corpus", "split_ids", "batchify", "lm_batches", "CORPORA"]

#: names of the corpora shipped inside the package -> file in fastrnn/corpus/
CORPORA = {"shakespeare": "shakespeare.txt.gz"}


def load_corpus(name="shakespeare"):
    """The text of a corpus shipped with fastrnn (see fastrnn/corpus/README.md for source and licence)."""
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}; shipped corpora: {sorted(CORPORA)}")
    ref = resources.files("fastrnn").joinpath("corpus", CORPORA[name])
    with ref.open("rb") as f:
        return gzip.decompress(f.read()).decode("utf-8")


def read_text(path, max_chars=None):
    """The UTF-8 text of ``path`` (``.gz`` files are decompressed), optionally cut to ``max_chars``."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="strict") as f:
        text = f.read() if max_chars is None else f.read(int(max_chars))
    return text


class CharVocab:
    """A character vocabulary: ``encode(str) -> int64 ids`` and ``decode(ids) -> str``.

    ``chars`` is the string of distinct characters, id i standing for ``chars[i]``. ``from_text`` sorts
    the characters of a text. Unknown characters raise ``ValueError`` unless ``unknown="skip"``.
    """

    def __init__(self, chars):
        if not isinstance(chars, str):
            raise TypeError(f"chars must be a string of distinct characters, got {type(chars).__name__}")
        if len(chars) == 0:
            raise ValueError("chars must hold at least one character; got an empty string")
        if len(set(chars)) != len(chars):
            dup = sorted({c for c in chars if chars.count(c) > 1})
            raise ValueError(f"chars must be distinct; repeated: {dup[:10]!r}")
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}
        self._table = np.array([ord(c) for c in chars], dtype=np.int64)
        self._sorted = np.argsort(self._table)
        self._sorted_table = self._table[self._sorted]

    @classmethod
    def from_text(cls, text):
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return cls("".join(sorted(set(text))))

    def __len__(self):
        return len(self.chars)

    def __repr__(self):
        return f"CharVocab({len(self)} characters)"

    def get_config(self):
        return {"chars": self.chars}

    def encode(self, text, unknown="error"):
        """int64 ids of the characters of ``text``; ``unknown="skip"`` drops characters not in the vocabulary."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if unknown not in ("error", "skip"):
            raise ValueError(f"unknown must be 'error' or 'skip', got {unknown!r}")
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        # position of each code point in the sorted table; a match means a known character
        pos = np.minimum(np.searchsorted(self._sorted_table, codes), len(self._table) - 1)
        known = self._sorted_table[pos] == codes
        if not known.all():
            if unknown == "error":
                bad = sorted({text[i] for i in np.flatnonzero(~known)[:1000]})
                raise ValueError(f"text holds {int((~known).sum())} character(s) not in the vocabulary "
                                 f"of {len(self)}: {''.join(bad[:20])!r}; pass unknown='skip' to drop them")
            pos = pos[known]
        return self._sorted[pos].astype(np.int64)

    def decode(self, ids):
        """The string of the ids (any integer array-like)."""
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"ids must be integers, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"ids must be in [0, {len(self)}); got values in [{ids.min()}, {ids.max()}]")
        return "".join(self.chars[i] for i in ids.reshape(-1))


def split_ids(ids, val_fraction=0.1, blocks=1):
    """(train, val) streams: the last ``val_fraction`` of the stream is the validation split.

    With ``blocks=n`` the stream is cut into n equal blocks and the last ``val_fraction`` of EACH block
    goes to validation (the pieces concatenated in order), so that the validation text is spread over
    the whole corpus (every play of a collection) instead of being its last work only.
    """
    ids = np.asarray(ids)
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, numbers.Real) \
            or not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    blocks = check_size("blocks", blocks)
    edges = [len(ids) * i // blocks for i in range(blocks + 1)]
    train, val = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        n_val = int(round((b - a) * float(val_fraction)))
        if n_val < 2 or (b - a) - n_val < 2:
            raise ValueError(f"a stream of {len(ids)} ids is too short for val_fraction={val_fraction} and "
                             f"blocks={blocks}: each split of each block needs at least 2 ids")
        train.append(ids[a:b - n_val])
        val.append(ids[b - n_val:b])
    return np.concatenate(train), np.concatenate(val)


def batchify(ids, B):
    """Cut a stream of N ids into B contiguous streams, time-major: shape (N // B, B); the rest is dropped."""
    B = check_size("B", B)
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be a 1-D stream; got shape {ids.shape}")
    S = len(ids) // B
    if S < 2:
        raise ValueError(f"a stream of {len(ids)} ids gives fewer than 2 steps per row for B={B}")
    # streams[:, b] = ids[b*S:(b+1)*S]
    return np.ascontiguousarray(ids[:S * B].reshape(B, S).T)


def lm_batches(streams, k, offset=0):
    """Yield (x, y) chunks of ``streams`` (S, B): x = streams[t:t+k], y = streams[t+1:t+k+1], t = offset, offset+k, ...

    The last chunk may be shorter. Consecutive chunks continue the same rows, so a model's final state
    for one chunk is the initial state of the next (truncated BPTT).
    """
    k = check_size("k", k)
    streams = np.asarray(streams)
    if streams.ndim != 2:
        raise ValueError(f"streams must be 2-D (S, B); got shape {streams.shape}")
    S = streams.shape[0]
    for t in range(int(offset), S - 1, k):
        n = min(k, S - 1 - t)
        yield streams[t:t + n], streams[t + 1:t + 1 + n]
