"""``python -m fastrnn lm ...`` end to end on a tiny budget (subprocesses, a few seconds each)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastrnn as fr

ROOT = Path(__file__).resolve().parents[1]


def _run(*args, timeout=120):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "fastrnn", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=str(ROOT))


TINY = ["--max-chars", "30000", "--hidden", "16", "--layers", "1", "--embed", "8", "--batch", "8", "--bptt", "16",
        "--max-steps", "30", "--eval-every", "15", "--minutes", "1", "--sample-chars", "40", "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("lm") / "tiny.npz"
    proc = _run("lm", "train", *TINY, "--out", str(out))
    return proc, out


def test_train_end_to_end_on_the_shipped_corpus(trained):
    proc, out = trained
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "shipped Shakespeare corpus" in text
    assert "step 15: val loss" in text and "sample:" in text
    assert "bits per character" in text and "after 30 steps" in text
    bpc = float(text.split("validation: ")[1].split(" bits")[0])
    assert 1.0 < bpc < np.log2(80)
    model, meta = fr.load(out, return_metadata=True)
    assert isinstance(model, fr.LanguageModel) and model.hidden_size == 16
    assert len(meta["vocab"]) == model.vocab_size and meta["steps"] == 30
    assert abs(meta["val_bits_per_char"] - bpc) < 1e-3


def test_sample_is_reproducible_with_a_seed(trained):
    _, out = trained
    a = _run("lm", "sample", str(out), "--prompt", "HAMLET.\\n", "--chars", "60", "--seed", "7")
    b = _run("lm", "sample", str(out), "--prompt", "HAMLET.\\n", "--chars", "60", "--seed", "7")
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout and a.stdout.startswith("HAMLET.\n")
    assert len(a.stdout) == len("HAMLET.\n") + 60 + 1
    c = _run("lm", "sample", str(out), "--chars", "30", "--beam", "3", "--prompt", "The ")
    assert c.returncode == 0, c.stderr and c.stdout.startswith("The ")


def test_train_on_a_text_file_with_gru(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text(("the cat sat on the mat. " * 400) + "a dog ran. " * 200, encoding="utf-8")
    out = tmp_path / "m.npz"
    proc = _run("lm", "train", "--text", str(src), "--cell", "gru", "--hidden", "12", "--layers", "2", "--batch", "4",
                "--bptt", "16", "--max-steps", "10", "--eval-every", "5", "--sample-chars", "20", "--minutes", "1",
                "--no-progress", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "in.txt" in proc.stdout and out.exists()
    assert fr.load(out).cell == "gru"


def test_help_documents_every_option():
    top = _run("--help")
    assert top.returncode == 0 and "lm" in top.stdout
    train = _run("lm", "train", "--help")
    assert train.returncode == 0
    for option in ["--text", "--minutes", "--cell", "--layers", "--hidden", "--out", "--batch", "--bptt", "--lr",
                   "--clip", "--dropout", "--seed", "--max-steps", "--val-fraction", "--blas-threads"]:
        assert option in train.stdout, option
    sample = _run("lm", "sample", "--help")
    for option in ["MODEL", "--prompt", "--temperature", "--beam", "--top-k", "--chars", "--seed"]:
        assert option in sample.stdout, option


def test_clear_errors(tmp_path):
    missing = _run("lm", "sample", str(tmp_path / "nope.npz"))
    assert missing.returncode == 2 and "no such model file" in missing.stderr
    not_lm = tmp_path / "lstm.npz"
    fr.save(fr.LSTM(2, 3), not_lm)
    wrong = _run("lm", "sample", str(not_lm))
    assert wrong.returncode == 2 and "not a character language model" in wrong.stderr
    bad = _run("lm", "train", "--hidden", "0")
    assert bad.returncode == 2 and "positive integer" in bad.stderr
    short = tmp_path / "short.txt"
    short.write_text("abc", encoding="utf-8")
    too_short = _run("lm", "train", "--text", str(short), "--no-progress")
    assert too_short.returncode == 2 and "too short" in too_short.stderr
