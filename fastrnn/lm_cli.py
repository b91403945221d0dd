"""``python -m fastrnn lm``: train a character language model and write text with it.

    python -m fastrnn lm train [--text FILE] [--minutes M] [--cell lstm|gru|rnn] [--layers N] [--hidden H]
                               [--out PATH] ...
    python -m fastrnn lm sample MODEL [--prompt TEXT] [--chars N] [--temperature T] [--top-k K] [--beam N]

``train`` reads the Shakespeare plays shipped in fastrnn/corpus/ (or ``--text FILE``), keeps the last
10% of each tenth of it for validation, and trains a LanguageModel (Embedding -> stacked RNN -> Linear) with Adam,
gradient clipping by global norm and truncated BPTT over B parallel streams, for a wall-clock budget
(``--minutes``). It prints progress, the validation bits per character and samples, and saves the model
(``fastrnn.io`` format, the vocabulary in its metadata) for ``sample``.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time

import numpy as np

from .arg_types import finite, fraction, int_at_least

DEFAULT_OUT = "charlm.npz"
positive_int, positive_float, nonneg_float = int_at_least(1), finite(0, inclusive=False), finite(0)


def add_arguments(parser):
    sub = parser.add_subparsers(dest="lm_command", metavar="ACTION")
    sub.required = True
    fmt = argparse.ArgumentDefaultsHelpFormatter

    t = sub.add_parser("train", help="train a character language model (default: on the shipped Shakespeare)",
                       description="Train a character language model for a wall-clock budget, print progress, "
                                   "validation bits per character and samples, and save it.",
                       formatter_class=fmt)
    data = t.add_argument_group("data")
    data.add_argument("--text", metavar="FILE", default=None,
                      help="UTF-8 text file to train on (.gz allowed); default: the Shakespeare plays shipped in "
                           "fastrnn/corpus/ (the 37 plays, 4.9 MB; see its README for source and licence)")
    data.add_argument("--max-chars", type=positive_int, default=None, metavar="N",
                      help="use only the first N characters of the text")
    data.add_argument("--val-fraction", type=fraction, default=0.1, metavar="F",
                      help="fraction F of the text held out for validation: the last F of each of --val-blocks "
                           "equal blocks")
    data.add_argument("--val-blocks", type=positive_int, default=10, metavar="N",
                      help="spread the validation text over N equal blocks of the text (1: only its end); on the "
                           "default corpus the 10 blocks take validation text from 10 places across the 37 plays")
    model = t.add_argument_group("model")
    model.add_argument("--cell", choices=("lstm", "gru", "rnn"), default="lstm", help="recurrent cell")
    model.add_argument("--layers", type=positive_int, default=2, metavar="N", help="stacked recurrent layers")
    model.add_argument("--hidden", type=positive_int, default=128, metavar="H",
                       help="hidden units per layer (128 learns fastest in a few minutes on 2 cores; try 256 or 512 "
                            "for longer runs)")
    model.add_argument("--embed", type=positive_int, default=64, metavar="E", help="character embedding size")
    model.add_argument("--dropout", type=nonneg_float, default=0.0, metavar="P",
                       help="dropout between layers and (variational) before the output layer; 0 is best for "
                            "runs of a few minutes")
    model.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="parameter dtype")
    opt = t.add_argument_group("training")
    opt.add_argument("--minutes", type=positive_float, default=2.5, metavar="M",
                     help="wall-clock budget for the whole run (training stops early enough to leave time for the "
                          "final evaluation and sample)")
    opt.add_argument("--max-steps", type=positive_int, default=None, metavar="N",
                     help="stop after N optimizer steps even if time is left")
    opt.add_argument("--batch", type=positive_int, default=32, metavar="B", help="parallel text streams per step")
    opt.add_argument("--bptt", type=positive_int, default=64, metavar="K",
                     help="truncated BPTT: characters per chunk; the state carries over between chunks")
    opt.add_argument("--lr", type=positive_float, default=4e-3, help="Adam learning rate (peak)")
    opt.add_argument("--clip", type=positive_float, default=5.0, help="clip gradients to this global L2 norm")
    opt.add_argument("--warmup", type=int, default=50, metavar="STEPS",
                     help="linear learning-rate warm-up steps; then cosine decay to 10%% over the time budget")
    opt.add_argument("--eval-every", type=positive_int, default=200, metavar="STEPS",
                     help="evaluate on (part of) the validation split and print a sample every STEPS steps")
    opt.add_argument("--seed", type=int, default=0, help="seed for initialisation, batching and samples")
    opt.add_argument("--blas-threads", type=int, default=1, metavar="N",
                     help="BLAS threads while training (applied with threadpoolctl when installed; otherwise set "
                          "OPENBLAS_NUM_THREADS before starting; 0 leaves the BLAS default). One thread is fastest "
                          "for the small per-step matrix products of a char model, above all on a busy machine")
    opt.add_argument("--no-progress", action="store_true", help="plain log lines instead of a tqdm progress bar")
    out = t.add_argument_group("output")
    out.add_argument("--out", default=DEFAULT_OUT, metavar="PATH", help="where to save the trained model")
    out.add_argument("--sample-chars", type=int, default=400, metavar="N",
                     help="characters of the final sample (0: none)")
    out.add_argument("--temperature", type=nonneg_float, default=0.8, help="temperature of the printed samples")

    s = sub.add_parser("sample", help="write text with a saved character language model",
                       description="Continue a prompt with a model saved by 'lm train'.", formatter_class=fmt)
    s.add_argument("model", metavar="MODEL", help="model file written by 'lm train'")
    s.add_argument("--prompt", default="\n", help="text to start from (characters unknown to the model are dropped)")
    s.add_argument("--chars", type=positive_int, default=500, metavar="N", help="characters to write")
    s.add_argument("--temperature", type=nonneg_float, default=0.8,
                   help="sampling temperature: lower is safer, higher more varied; 0 always picks the likeliest")
    s.add_argument("--top-k", type=positive_int, default=None, metavar="K",
                   help="sample only among the K likeliest characters")
    s.add_argument("--beam", type=positive_int, default=None, metavar="N",
                   help="beam search with N beams instead of sampling (deterministic, tends to repeat)")
    s.add_argument("--seed", type=int, default=None, help="seed for reproducible sampling (default: random)")


def run(args):
    if args.lm_command == "train":
        with _blas_threads(args.blas_threads):
            return _train(args)
    return _sample(args)


@contextlib.contextmanager
def _blas_threads(n):
    if n is None or n <= 0:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        if os.environ.get("OPENBLAS_NUM_THREADS") is None:
            print(f"note: threadpoolctl is not installed, so --blas-threads {n} cannot be applied; for speed install "
                  f"it (pip install threadpoolctl) or start with OPENBLAS_NUM_THREADS={n}", file=sys.stderr)
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield


def _train(args):
    from .data import CharVocab, batchify, lm_batches, load_corpus, read_text, split_ids
    from .io import save
    from .models import LanguageModel
    from .optim import Adam
    from .train import bits_per_char, evaluate, fit

    t_start = time.perf_counter()
    budget = args.minutes * 60.0
    if args.text is None:
        text, source = load_corpus("shakespeare"), "shipped Shakespeare corpus"
        if args.max_chars:
            text = text[:args.max_chars]
    else:
        try:
            text = read_text(args.text, args.max_chars)
        except (OSError, UnicodeDecodeError) as exc:
            print(f"error: cannot read --text {args.text}: {exc}", file=sys.stderr)
            return 2
        source = args.text
    vocab = CharVocab.from_text(text)
    ids = vocab.encode(text)
    try:
        train_ids, val_ids = split_ids(ids, args.val_fraction, args.val_blocks)
        train_streams = batchify(train_ids, args.batch)
        val_B = max(1, min(16, len(val_ids) // (4 * args.bptt) or 1))
        val_streams = batchify(val_ids, val_B)
    except ValueError as exc:
        print(f"error: the text is too short for these settings ({len(text)} characters): {exc}", file=sys.stderr)
        return 2
    print(f"data: {source}: {len(text):,} characters, vocabulary {len(vocab)}; train {len(train_ids):,}, "
          f"validation {len(val_ids):,}")

    model = LanguageModel(len(vocab), hidden_size=args.hidden, num_layers=args.layers, cell=args.cell,
                          embed_size=args.embed, dropout=args.dropout, dtype=args.dtype, seed=args.seed)
    optimizer = Adam(model, lr=args.lr)
    print(f"model: {args.layers}-layer {args.cell.upper()}, hidden {args.hidden}, embedding {args.embed}, "
          f"{model.num_parameters():,} parameters ({args.dtype}); batch {args.batch} x {args.bptt} characters, "
          f"Adam lr {args.lr:g}, clip {args.clip:g}, budget {args.minutes:g} min")

    rng = np.random.default_rng(args.seed)
    eval_k = 256
    # periodic evaluations read at most ~20k validation characters; the final one reads all of it
    sub_steps = max(2, min(val_streams.shape[0], 20_000 // val_B + 1))

    def train_batches():
        return lm_batches(train_streams, args.bptt, offset=int(rng.integers(0, args.bptt)))

    def val_subset():
        return lm_batches(val_streams[:sub_steps], eval_k)

    def val_all():
        return lm_batches(val_streams, eval_k)

    # samples continue a piece of real text (the end of the training split, up to its last blank line)
    # so that they start warm, at the beginning of a speech; only the continuation is printed
    tail = vocab.decode(train_ids[-400:])
    cut = tail.rfind("\n\n")
    prompt = vocab.encode(tail[:cut + 2] if cut >= 0 else tail)

    def sample_text(n, seed):
        return vocab.decode(model.generate(prompt, n, temperature=args.temperature, seed=seed))

    def on_eval(step, val_loss):
        return "sample: " + " | ".join(sample_text(160, args.seed + step).splitlines())

    # Time for the final full evaluation and sample is reserved from the budget, estimated by timing an
    # evaluation of a few validation chunks (after one warm-up chunk).
    probe = min(val_streams.shape[0], 2 * eval_k + 1)
    evaluate(model, lambda: lm_batches(val_streams[:min(probe, eval_k + 1)], eval_k), carry_state=True)
    t_probe = time.perf_counter()
    evaluate(model, lambda: lm_batches(val_streams[:probe], eval_k), carry_state=True)
    eval_rate = (probe - 1) * val_B / max(time.perf_counter() - t_probe, 1e-6)
    t_sample = time.perf_counter()
    sample_text(20, 0)
    step_seconds = (time.perf_counter() - t_sample) / 20
    reserve = 1.2 * len(val_ids) / eval_rate + step_seconds * max(args.sample_chars, 0) + 0.01 * budget + 1.0
    reserve = min(reserve, 0.2 * budget + 5.0)  # a slow probe (a busy machine) must not eat the budget
    train_seconds = budget - reserve - (time.perf_counter() - t_start)
    if train_seconds <= 0:
        print(f"error: --minutes {args.minutes:g} leaves no time to train: the final evaluation and sample "
              f"alone need about {reserve:.0f} s", file=sys.stderr)
        return 2

    base_lr = args.lr
    t_train = [None]

    def schedule(step, info):
        # linear warm-up over --warmup steps, then cosine by elapsed time to 10% of the peak
        if t_train[0] is None:
            t_train[0] = time.perf_counter()
        frac = min(1.0, (time.perf_counter() - t_train[0]) / train_seconds)
        lr = base_lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        if args.warmup > 0 and step < args.warmup:
            lr *= (step + 1) / args.warmup
        optimizer.lr = lr

    if args.warmup > 0:
        optimizer.lr = base_lr / args.warmup
    meta = {"vocab": vocab.chars, "source": source if args.text is None else os.path.basename(args.text),
            "kind": "char-lm"}
    history = fit(model, optimizer, train_batches, val=val_subset, epochs=None, max_steps=args.max_steps,
                  max_seconds=train_seconds, carry_state=True, clip_norm=args.clip, eval_every=args.eval_every,
                  log_every=max(1, min(50, args.eval_every)), progress=False if args.no_progress else None,
                  callback=schedule, on_eval=on_eval)
    if history.total_steps == 0:
        print("error: no training step ran (" + str(history.stop_reason) + ")", file=sys.stderr)
        return 1
    if history.stop_reason and history.stop_reason.startswith(("non-finite", "step")):
        print("training stopped early: " + history.stop_reason, file=sys.stderr)
    t_eval = time.perf_counter()
    val_loss = evaluate(model, val_all, carry_state=True)
    bpc = bits_per_char(val_loss)
    print(f"validation: {bpc:.3f} bits per character (cross-entropy {val_loss:.4f} nats) on "
          f"{len(val_ids):,} characters after {history.total_steps} steps, "
          f"{time.perf_counter() - t_start:.0f} s (final evaluation {time.perf_counter() - t_eval:.1f} s)")
    meta.update(val_bits_per_char=bpc, steps=history.total_steps)
    try:
        save(model, args.out, metadata=meta)
    except OSError as exc:
        print(f"error: cannot save the model to {args.out}: {exc}", file=sys.stderr)
        return 1
    print(f"saved: {args.out}  (write more with: python -m fastrnn lm sample {args.out} --prompt 'Ham.\\n')")
    if args.sample_chars > 0:
        print(f"sample (temperature {args.temperature:g}):")
        print(sample_text(args.sample_chars, args.seed))
    print(f"total time {time.perf_counter() - t_start:.0f} s")
    return 0


def _sample(args):
    from .data import CharVocab
    from .io import FormatError, load
    from .models import LanguageModel

    try:
        model, meta = load(args.model, return_metadata=True)
    except FileNotFoundError:
        print(f"error: no such model file: {args.model}", file=sys.stderr)
        return 2
    except (FormatError, OSError) as exc:
        print(f"error: cannot load {args.model}: {exc}", file=sys.stderr)
        return 2
    if not isinstance(model, LanguageModel) or not isinstance(meta, dict) or not isinstance(meta.get("vocab"), str):
        print(f"error: {args.model} is not a character language model written by 'lm train' "
              "(it needs a LanguageModel and its vocabulary in the metadata)", file=sys.stderr)
        return 2
    try:
        vocab = CharVocab(meta["vocab"])
    except (TypeError, ValueError) as exc:
        print(f"error: {args.model} holds a broken vocabulary: {exc}", file=sys.stderr)
        return 2
    if len(vocab) != model.vocab_size:
        print(f"error: {args.model}: vocabulary of {len(vocab)} characters for a model of {model.vocab_size}",
              file=sys.stderr)
        return 2
    prompt_text = args.prompt.replace("\\n", "\n")  # a typed "\n" means a newline
    prompt = vocab.encode(prompt_text, unknown="skip")
    if len(prompt) == 0:
        print("note: no character of the prompt is in the model's vocabulary; starting from a newline "
              "or the first character", file=sys.stderr)
        prompt = vocab.encode("\n", unknown="skip")
        if len(prompt) == 0:
            prompt = np.zeros(1, np.int64)
    if args.beam:
        out = model.beam_search(prompt, args.chars, beam=args.beam)
    else:
        out = model.generate(prompt, args.chars, temperature=args.temperature, top_k=args.top_k, seed=args.seed)
    sys.stdout.write(prompt_text + vocab.decode(out) + "\n")
    return 0
