"""Truncated BPTT, recomputation (checkpoint_every), evaluation and the fit loop (fastrnn.train)."""
import math
import tracemalloc

import numpy as np
import pytest

import fastrnn as fr
from fastrnn.losses import mse_loss, softmax_cross_entropy
from fastrnn.models import Forecaster, LanguageModel, SequenceClassifier
from fastrnn.train import backward_sequence, bptt_memory, evaluate, fit


def _lm(cell, dtype="float64", seed=0, V=7, H=6, L=2, dropout=0.0):
    return LanguageModel(V, hidden_size=H, num_layers=L, cell=cell, embed_size=5, dropout=dropout, dtype=dtype,
                         seed=seed)


def _ids(rng, T, B, V=7):
    return rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))


def _flat_state(state):
    parts = state if isinstance(state, tuple) else (state,)
    return np.concatenate([np.asarray(p).ravel() for p in parts])


def _grads(model, x, y, **kw):
    model.zero_grad()
    loss, state = backward_sequence(model, x, y, **kw)
    return loss, model.param_set.grad.copy(), _flat_state(state)


def _full_bptt(model, x, y, loss_fn=softmax_cross_entropy):
    """Reference: one begin_update over the whole sequence, one backprop."""
    model.zero_grad()
    out, state, backprop = model.begin_update(x)
    loss, dy = loss_fn(out, y)
    backprop(dy)
    return loss, model.param_set.grad.copy(), _flat_state(state)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("k", [13, 14, 100])
def test_tbptt_with_k_at_least_T_equals_full_bptt(cell, k):
    rng = np.random.default_rng(1)
    model = _lm(cell)
    x, y = _ids(rng, 13, 3)
    ref = _full_bptt(model, x, y)
    got = _grads(model, x, y, tbptt=k)
    assert got[0] == ref[0]
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_array_equal(got[2], ref[2])
    assert np.abs(ref[1]).max() > 0


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_tbptt_chunks_carry_state_and_drop_its_gradient(cell):
    """k < T equals chunk-by-chunk training done by hand: the state goes on, its gradient does not come back."""
    rng = np.random.default_rng(2)
    model = _lm(cell)
    T, k = 11, 4
    x, y = _ids(rng, T, 2)
    loss, grad, state = _grads(model, x, y, tbptt=k)
    model.zero_grad()
    state_h, total = None, 0.0
    for t0 in range(0, T, k):
        out, state_h, backprop = model.begin_update(x[t0:t0 + k], state_h)
        n = len(out)
        l, dy = softmax_cross_entropy(out, y[t0:t0 + k])
        backprop(dy * (n / T))
        total += l * n / T
    np.testing.assert_allclose(loss, total, rtol=1e-13)
    np.testing.assert_allclose(grad, model.param_set.grad, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(state, _flat_state(state_h))
    # the truncation matters: full BPTT differs in the gradients, not in the loss or final state
    ref = _full_bptt(model, x, y)
    np.testing.assert_allclose(loss, ref[0], rtol=1e-13)
    np.testing.assert_allclose(state, ref[2], rtol=1e-12, atol=1e-15)
    assert np.abs(grad - ref[1]).max() > 1e-6


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("s", [1, 4, 7])
def test_checkpoint_every_equals_full_bptt(cell, s):
    rng = np.random.default_rng(3)
    model = _lm(cell)
    x, y = _ids(rng, 23, 3)
    ref = _full_bptt(model, x, y)
    got = _grads(model, x, y, checkpoint_every=s)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-13)
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(got[2], ref[2], rtol=1e-10, atol=1e-13)


def test_checkpoint_every_inside_tbptt_chunks_equals_tbptt():
    rng = np.random.default_rng(4)
    model = _lm("lstm")
    x, y = _ids(rng, 30, 2)
    ref = _grads(model, x, y, tbptt=12)
    got = _grads(model, x, y, tbptt=12, checkpoint_every=5)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-13)
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-10, atol=1e-13)


def test_checkpoint_every_with_lengths_and_mse_forecaster():
    rng = np.random.default_rng(5)
    model = Forecaster(2, hidden_size=5, dtype="float64", seed=1)
    x = rng.standard_normal((17, 3, 2))
    y = rng.standard_normal((17, 3, 2))
    ref = _grads(model, x, y, loss_fn=mse_loss)
    got = _grads(model, x, y, loss_fn=mse_loss, checkpoint_every=4)
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-10, atol=1e-13)


def test_ten_thousand_steps_checkpointed_equal_gradients_and_less_memory():
    """A 10,000-step sequence: recomputation gives full BPTT's gradients (float64) in a fraction of the memory."""
    rng = np.random.default_rng(6)
    model = LanguageModel(5, hidden_size=16, num_layers=1, cell="lstm", embed_size=4, dtype="float64", seed=2)
    T, B = 10_000, 2
    x, y = _ids(rng, T, B, V=5)

    def run(**kw):
        model.zero_grad()
        tracemalloc.start()
        tracemalloc.reset_peak()
        loss, _ = backward_sequence(model, x, y, **kw)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return loss, model.param_set.grad.copy(), peak

    loss_full, g_full, peak_full = run()
    loss_ck, g_ck, peak_ck = run(checkpoint_every=100)
    np.testing.assert_allclose(loss_ck, loss_full, rtol=1e-12)
    np.testing.assert_allclose(g_ck, g_full, rtol=1e-9, atol=1e-12)
    # the recurrent layer's share follows the documented model; the rest is embeddings, logits, head
    assert peak_full >= bptt_memory(model.rnn, T, B)["total"]
    assert peak_ck < peak_full / 8, (peak_ck, peak_full)
    assert peak_ck < 3 * bptt_memory(model.rnn, 100, B)["total"] + 200 * 4 * B * 16 * 8


@pytest.mark.parametrize("layer", [
    lambda: fr.LSTM(8, 32, num_layers=2, dtype=np.float64),
    lambda: fr.LSTM(8, 32, num_layers=2, proj_size=8, dropout=0.2),
    lambda: fr.GRU(8, 32, bidirectional=True),
    lambda: fr.RNN(8, 32, num_layers=3),
])
def test_bptt_memory_model_matches_what_begin_update_keeps(layer):
    layer = layer()
    x = np.random.default_rng(0).standard_normal((500, 4, 8))
    tracemalloc.start()
    y, state, backprop = layer.begin_update(x)
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    predicted = bptt_memory(layer, 500, 4)
    assert predicted["total"] == sum(v for k, v in predicted.items() if k != "total")
    assert 0.97 * predicted["total"] <= kept <= 1.05 * predicted["total"], (kept, predicted)
    assert peak <= 1.3 * predicted["total"]
    backprop(np.ones_like(y))


def test_bptt_memory_rejects_other_layers():
    with pytest.raises(TypeError, match="LSTM"):
        bptt_memory(fr.Linear(2, 3), 10, 2)


def test_checkpoint_every_refuses_dropout():
    model = _lm("lstm", dropout=0.3)
    x, y = _ids(np.random.default_rng(0), 10, 2)
    with pytest.raises(ValueError, match="dropout"):
        backward_sequence(model, x, y, checkpoint_every=3)


@pytest.mark.parametrize("kw, exc", [({"tbptt": 0}, ValueError), ({"tbptt": 2.5}, TypeError),
                                     ({"checkpoint_every": -1}, ValueError), ({"tbptt": True}, TypeError)])
def test_bad_arguments(kw, exc):
    model = _lm("gru")
    x, y = _ids(np.random.default_rng(0), 5, 2)
    before = model.param_set.data.copy()
    with pytest.raises(exc):
        backward_sequence(model, x, y, **kw)
    np.testing.assert_array_equal(model.param_set.data, before)


def test_target_length_mismatch():
    model = _lm("gru")
    x, y = _ids(np.random.default_rng(0), 5, 2)
    with pytest.raises(ValueError, match="T=5"):
        backward_sequence(model, x, y[:4])


# ---- evaluate and fit ------------------------------------------------------------------------------

def _stream_batches(rng, n, T=8, B=4, V=7):
    data = rng.integers(0, V, (n * T + 1, B))
    # a learnable rule: the next id is (id + 1) mod V
    data = (np.arange(n * T + 1)[:, None] + data[:1]) % V
    return [(data[i * T:(i + 1) * T], data[i * T + 1:(i + 1) * T + 1]) for i in range(n)]


def test_evaluate_leaves_model_untouched():
    rng = np.random.default_rng(7)
    model = _lm("lstm", dtype="float32")
    batches = _stream_batches(rng, 3)
    model.param_set.grad[...] = 0.5
    before = (model.param_set.data.copy(), model.param_set.grad.copy())
    v1 = evaluate(model, batches, carry_state=True)
    v2 = evaluate(model, batches, carry_state=True)
    assert v1 == v2 and math.isfinite(v1)
    np.testing.assert_array_equal(model.param_set.data, before[0])
    np.testing.assert_array_equal(model.param_set.grad, before[1])


def test_fit_lowers_the_loss_logs_and_checkpoints(tmp_path):
    rng = np.random.default_rng(8)
    model = _lm("lstm", dtype="float32", H=16, L=1)
    batches = _stream_batches(rng, 10)
    opt = fr.Adam(model, lr=0.02)
    seen = []
    path = tmp_path / "ckpt.npz"
    lines = []
    hist = fit(model, opt, batches, val=batches[:3], epochs=6, carry_state=True, clip_norm=1.0, eval_every=20,
               log_every=10, checkpoint_path=path, checkpoint_metadata={"note": "x"}, progress=False,
               print_fn=lines.append, callback=lambda step, info: seen.append(info["grad_norm"]))
    assert hist.stop_reason == "completed" and hist.total_steps == 60
    assert hist.loss[-1] < 0.5 * hist.loss[0]
    assert hist.val_loss[-1] < hist.val_loss[0]
    assert len(seen) == 60 and all(g > 0 for g in seen)
    assert any("val loss" in line for line in lines) and any("grad norm" in line for line in lines)
    loaded, meta = fr.load(path, return_metadata=True)
    assert meta["step"] == 60 and meta["note"] == "x"
    np.testing.assert_array_equal(loaded.param_set.data, model.param_set.data)


def test_fit_clips_the_global_norm():
    rng = np.random.default_rng(9)
    model = _lm("gru", dtype="float64", H=8, L=1)
    batches = _stream_batches(rng, 2)
    norms = []

    class Spy(fr.SGD):
        def step(self):
            norms.append(float(np.linalg.norm(model.param_set.grad)))
            return super().step()

    fit(model, Spy(model, lr=0.1), batches, clip_norm=1e-3, progress=False, print_fn=lambda s: None)
    assert len(norms) == 2 and all(n <= 1e-3 * (1 + 1e-6) for n in norms)


def test_fit_stops_on_a_non_finite_loss_and_keeps_weights():
    rng = np.random.default_rng(10)
    model = _lm("lstm", dtype="float32", H=8, L=1)
    batches = _stream_batches(rng, 6)
    calls = []

    def loss_fn(out, target):
        loss, dy = softmax_cross_entropy(out, target)
        calls.append(1)
        if len(calls) == 3:
            return float("nan"), dy * np.nan
        return loss, dy

    weights = []
    lines = []
    hist = fit(model, fr.Adam(model, lr=0.01), batches, loss_fn=loss_fn, progress=False, print_fn=lines.append,
               callback=lambda step, info: weights.append(model.param_set.data.copy()))
    assert hist.total_steps == 2
    assert "non-finite loss" in hist.stop_reason and "step 3" in hist.stop_reason
    assert any("stopped early" in line for line in lines)
    np.testing.assert_array_equal(model.param_set.data, weights[-1])
    assert np.all(np.isfinite(model.param_set.data))


def test_fit_stops_when_the_optimizer_refuses_non_finite_gradients():
    rng = np.random.default_rng(11)
    model = _lm("rnn", dtype="float64", H=8, L=1)
    batches = _stream_batches(rng, 3)

    def loss_fn(out, target):
        loss, dy = softmax_cross_entropy(out, target)
        dy[0, 0, 0] = np.inf
        return loss, dy

    before = model.param_set.data.copy()
    hist = fit(model, fr.SGD(model, lr=0.1), batches, loss_fn=loss_fn, progress=False, print_fn=lambda s: None)
    assert hist.total_steps == 0 and "refused" in hist.stop_reason
    np.testing.assert_array_equal(model.param_set.data, before)


def test_fit_time_and_step_budgets_and_epochs_none():
    rng = np.random.default_rng(12)
    model = _lm("gru", dtype="float32", H=8, L=1)
    batches = _stream_batches(rng, 4)
    hist = fit(model, fr.Adam(model), batches, epochs=None, max_steps=10, progress=False, print_fn=lambda s: None)
    assert hist.total_steps == 10 and hist.stop_reason == "max_steps"
    with pytest.raises(ValueError, match="max_steps or max_seconds"):
        fit(model, fr.Adam(model), batches, epochs=None)
    with pytest.raises(ValueError, match="no batches"):
        fit(model, fr.Adam(model), iter([]), progress=False)


def test_fit_many_to_one_classifier():
    rng = np.random.default_rng(13)
    model = SequenceClassifier(2, input_size=3, hidden_size=8, dtype="float64", seed=0)
    batches = []
    for _ in range(4):
        x = rng.standard_normal((6, 5, 3))
        lengths = rng.integers(1, 7, 5)
        y = (x[0, :, 0] > 0).astype(np.int64)  # the first step decides the class
        batches.append((x, y, lengths))
    hist = fit(model, fr.Adam(model, lr=0.05), batches, val=batches, epochs=15, log_every=4, progress=False,
               print_fn=lambda s: None)
    assert hist.val_loss[-1] < 0.5 * evaluate(SequenceClassifier(2, input_size=3, hidden_size=8, dtype="float64",
                                                                 seed=0), batches)
