"""End to end against PyTorch: a character LSTM language model trained by fastrnn (fit's pieces:
backward_sequence with truncated BPTT and carried state, clip_grad_norm, Adam) follows the same model
trained by torch step for step, from the same weights on the same batches, in float64."""
import numpy as np
import pytest

import fastrnn as fr
from fastrnn.losses import softmax_cross_entropy
from fastrnn.train import backward_sequence

torch = pytest.importorskip("torch")


def _torch_lm(V, E, H, L):
    class CharLSTM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(V, E)
            self.rnn = torch.nn.LSTM(E, H, num_layers=L)
            self.head = torch.nn.Linear(H, V)

        def forward(self, x, state=None):
            h, state = self.rnn(self.embed(x), state)
            return self.head(h), state

    return CharLSTM().double()


@pytest.mark.parametrize("clip", [0.05, 100.0], ids=["clipping", "no-clipping"])
def test_language_model_training_follows_torch(clip):
    V, E, H, L, T, B, steps = 11, 5, 7, 2, 6, 3, 12
    torch.manual_seed(0)
    tm = _torch_lm(V, E, H, L)
    fm = fr.LanguageModel(V, hidden_size=H, num_layers=L, cell="lstm", embed_size=E, dtype="float64", seed=1)
    fm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    f_opt, t_opt = fr.Adam(fm, lr=0.02), torch.optim.Adam(tm.parameters(), lr=0.02)
    rng = np.random.default_rng(3)
    text = rng.integers(0, V, (steps * T + 1, B))
    f_state = t_state = None
    for s in range(steps):
        x, y = text[s * T:(s + 1) * T], text[s * T + 1:(s + 1) * T + 1]
        fm.zero_grad()
        f_loss, f_state = backward_sequence(fm, x, y, softmax_cross_entropy, state0=f_state)
        f_norm = fr.clip_grad_norm(fm, clip)
        f_opt.step()

        t_opt.zero_grad()
        logits, t_state = tm(torch.from_numpy(x), t_state)
        t_state = tuple(h.detach() for h in t_state)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), torch.from_numpy(y).reshape(-1))
        loss.backward()
        t_norm = float(torch.nn.utils.clip_grad_norm_(tm.parameters(), clip))
        t_opt.step()

        assert f_loss == pytest.approx(float(loss.detach()), rel=1e-10), f"loss at step {s}"
        assert f_norm == pytest.approx(t_norm, rel=1e-9), f"gradient norm at step {s}"
    for name, value in tm.state_dict().items():
        np.testing.assert_allclose(fm.state_dict()[name], value.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)
    np.testing.assert_allclose(f_state[0], t_state[0].numpy(), rtol=1e-9, atol=1e-11)
