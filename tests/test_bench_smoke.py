"""Smoke tests of the benchmark suite in bench/ (no timing is asserted here).

- the correctness gate: fastrnn's (and the NumPy contender's) outputs against PyTorch's on one tiny
  configuration per cell and scenario (skipped without torch), and the gate refusing a wrong contender;
- the report: statistics, paired ratios, GFLOP/s, ceiling fractions, the PASS/FAIL targets and the
  written files, all on synthetic timings.
"""
from __future__ import annotations

import importlib
import json
import time
import sys
import types
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import numpy_rnn, report, timing  # noqa: E402
from bench.check import compare  # noqa: E402
from bench.contenders import fastrnn_contender, numpy_contender  # noqa: E402
from bench.problem import make_problem  # noqa: E402
from bench.run import build_and_check  # noqa: E402
from bench.scenarios import Config, call_flops, configs, forward_flops  # noqa: E402

CELLS = ("rnn", "lstm", "gru")


def tiny(scenario, cell):
    T = 1 if scenario == "step" else 4
    B = 1 if scenario in ("step", "seq") else 3
    return Config(scenario, cell, B, T, 5, 5)


# ---------------------------------------------------------------------------------------------
# correctness gate against PyTorch
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("scenario", ["step", "seq", "train"])
def test_fastrnn_and_numpy_match_torch(cell, scenario):
    pytest.importorskip("torch")
    from bench.contenders import torch_contender

    problem = make_problem(tiny(scenario, cell), seed=3)
    reference = torch_contender.build(problem, 1).outputs()
    expected_keys = {"step": {"h"}, "seq": {"y", "h_n"}, "train": {"y", "h_n", "dx", "dh0"}}[scenario]
    assert expected_keys <= set(reference)
    if scenario == "train":
        assert {"grad:weight_ih_l0", "grad:weight_hh_l0", "grad:bias_ih_l0", "grad:bias_hh_l0"} <= set(reference)
    for mod in (fastrnn_contender, numpy_contender):
        ok, err, msg = compare(mod.build(problem, 1).outputs(), reference)
        assert ok, f"{mod.NAME} {scenario}/{cell}: {msg}"
        assert err <= 1e-4


@pytest.mark.parametrize("cell", CELLS)
def test_numpy_contender_gradients_match_torch_float64(cell):
    torch = pytest.importorskip("torch")
    T, B, H = 4, 2, 3
    rng = np.random.default_rng(0)
    m = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](H, H).double()
    params = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    x, dy = rng.standard_normal((T, B, H)), rng.standard_normal((T, B, H))
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    xt = torch.tensor(x, requires_grad=True)
    ht = torch.tensor(h0[None], requires_grad=True)
    ct = torch.tensor(c0[None], requires_grad=True)
    yt, _ = m(xt, (ht, ct)) if cell == "lstm" else m(xt, ht)
    yt.backward(torch.tensor(dy))
    _, _, cache = numpy_rnn.forward(cell, numpy_rnn.layer_weights(params), x, h0,
                                    c0 if cell == "lstm" else None, train=True)
    dx, dh0, dc0, grads = numpy_rnn.backward(cache, dy)
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(dh0, ht.grad.numpy()[0], atol=1e-10)
    if cell == "lstm":
        np.testing.assert_allclose(dc0, ct.grad.numpy()[0], atol=1e-10)
    for name, p in m.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), atol=1e-10, err_msg=name)


class _Wrong:
    """A contender whose outputs are the NumPy contender's, slightly perturbed."""

    NAME = "wrong"

    @staticmethod
    def build(problem, threads):
        inner = numpy_contender.build(problem, threads)
        runner = types.SimpleNamespace(label="wrong", info={}, run=inner.run)

        def outputs():
            out = dict(inner.outputs())
            out["y"] = out["y"] + 1e-3
            return out

        runner.outputs = outputs
        return runner


def test_gate_refuses_a_wrong_contender():
    cfg = tiny("seq", "lstm")
    runners, skipped, checks, ref = build_and_check(cfg, 1, {"numpy": numpy_contender, "wrong": _Wrong})
    assert ref == "numpy"
    assert "wrong" not in runners and "numpy" in runners
    assert checks["wrong"]["ok"] is False and "y" in checks["wrong"]["message"]


def test_compare_flags_missing_shape_and_nonfinite():
    ref = {"y": np.ones((2, 3)), "h_n": np.zeros(3)}
    assert compare({"y": np.ones((2, 3)), "h_n": np.zeros(3)}, ref)[0]
    assert not compare({"y": np.ones((2, 3))}, ref)[0]
    assert not compare({"y": np.ones((3, 3)), "h_n": np.zeros(3)}, ref)[0]
    bad = np.ones((2, 3))
    bad[0, 0] = np.nan
    assert not compare({"y": bad, "h_n": np.zeros(3)}, ref)[0]
    # the error is scaled by the reference's magnitude: 1e-3 on values of 100 passes, on 1 fails
    assert compare({"y": np.full((2, 3), 100.001), "h_n": np.zeros(3)}, {"y": np.full((2, 3), 100.0), "h_n": np.zeros(3)})[0]
    assert not compare({"y": np.full((2, 3), 1.001), "h_n": np.zeros(3)}, ref)[0]


# ---------------------------------------------------------------------------------------------
# scenarios and timing helpers
# ---------------------------------------------------------------------------------------------

def test_flop_counts_and_config_lists():
    cfg = Config("infer", "lstm", 64, 100, 1024, 1024)
    assert forward_flops(cfg) == 2 * 100 * 64 * 4 * 1024 * 2048
    assert call_flops(Config("train", "gru", 2, 3, 4, 5)) == 3 * 2 * 3 * 2 * 12 * 9
    full, quick = configs(quick=False), configs(quick=True)
    assert set(quick) < set(full)
    assert {c.scenario for c in quick} == {c.scenario for c in full} == {"step", "seq", "infer", "train", "concurrent"}
    assert Config("infer", "lstm", 64, 100, 1024, 1024) in full
    assert Config("train", "lstm", 64, 100, 1024, 1024) in full


def test_stats_and_paired_ratios():
    s = timing.stats([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["median"] == 3.0 and s["q25"] == 2.0 and s["q75"] == 4.0 and s["iqr"] == 2.0 and s["n"] == 5
    ratios, st = timing.paired_ratios([2.0, 6.0, 9.0], [1.0, 2.0, 3.0])
    assert ratios == [2.0, 3.0, 3.0] and st["median"] == 3.0
    assert timing.stats([]) is None
    assert timing.choose_repeats([0.1, 0.1], budget_s=2.0, min_repeats=3, max_repeats=21) == 10
    assert timing.choose_repeats([5.0], budget_s=2.0, min_repeats=3, max_repeats=21) == 3


def test_calibrate_and_interleave_count_calls():
    calls = []
    n, per_call = timing.calibrate(lambda k: calls.append(k), sample_s=0.001)
    assert n >= 1 and per_call >= 0 and sum(calls) > 1
    order = []
    samples = timing.interleaved({"a": lambda k: order.append(("a", k)), "b": lambda k: order.append(("b", k))},
                                 {"a": 2, "b": 3}, repeats=3)
    assert order == [("a", 2), ("b", 3)] * 3
    assert len(samples["a"]) == len(samples["b"]) == 3


def test_concurrent_wall_runs_every_worker():
    done = []
    wall = timing.concurrent_wall([lambda k: done.append(k), lambda k: done.append(k)], 5)
    assert done == [5, 5] and wall >= 0

    def boom(k):
        raise RuntimeError("worker failed")

    with pytest.raises(RuntimeError, match="worker failed"):
        timing.concurrent_wall([boom], 1)


# ---------------------------------------------------------------------------------------------
# the report on synthetic timings
# ---------------------------------------------------------------------------------------------

def _block(cfg, threads, samples):
    return {"config": cfg.as_dict(), "threads": threads, "skipped": {}, "checks": {}, "contenders":
            {name: {"label": name, "samples": list(s)} for name, s in samples.items()}}


def synthetic_results():
    step = Config("step", "lstm", 1, 1, 128, 128)
    big = Config("infer", "lstm", 64, 100, 1024, 1024)
    train = Config("train", "gru", 64, 100, 512, 512)
    conc = Config("concurrent", "lstm", 1, 50, 256, 256)
    f_big = forward_flops(big)
    blocks = [
        _block(step, 1, {"fastrnn": [1e-6, 1e-6, 1e-6], "torch": [4e-6, 5e-6, 6e-6], "onnxruntime": [1.5e-6] * 3}),
        # fastrnn at exactly 95% of a 100 GFLOP/s ceiling at 1 thread, 80% of 200 at 2 threads
        _block(big, 1, {"fastrnn": [f_big / 95e9] * 3, "torch": [f_big / 95e9 * 1.2] * 3}),
        _block(big, 2, {"fastrnn": [f_big / 160e9] * 3, "torch": [f_big / 160e9 * 0.9] * 3}),
        _block(train, 1, {"fastrnn": [1.0] * 3, "torch": [1.4] * 3}),
        _block(train, 2, {"fastrnn": [0.5] * 3, "torch": [0.8] * 3}),
        {"config": conc.as_dict(), "threads": 1, "skipped": {}, "checks": {}, "contenders": {
            "fastrnn": {"label": "f", "throughput": {"1": [100.0] * 3, "2": [190.0] * 3}},
            "torch": {"label": "t", "throughput": {"1": [50.0] * 3, "2": [60.0] * 3}}}},
    ]
    memory = [{"config": train.as_dict(), "contenders": {
        "fastrnn": {"first_bytes": 100, "steady_bytes": 90, "tracemalloc_peak_bytes": 80},
        "torch": {"first_bytes": 200, "steady_bytes": 150, "tracemalloc_peak_bytes": 0}}}]
    return {"meta": {"mode": "test"}, "ceiling": {"1": {"gflops": 100.0, "shape": "s"}, "2": {"gflops": 200.0, "shape": "s"}},
            "skipped_contenders": {"numpy": "because"}, "blocks": blocks, "memory": memory}


def _target(targets, text, config=None, threads=None):
    found = [t for t in targets if text in t["target"] and (config is None or t["config"] == config)
             and (threads is None or t["threads"] == threads)]
    assert len(found) == 1, (text, found)
    return found[0]


def test_report_rows_ratios_and_ceiling():
    res = synthetic_results()
    rows = {r["contender"]: r for r in report.block_rows(res, res["blocks"][1])}
    assert rows["fastrnn"]["gflops"] == pytest.approx(95.0)
    assert rows["fastrnn"]["ceiling_frac"] == pytest.approx(0.95)
    assert rows["torch"]["ratio"]["median"] == pytest.approx(1.2)
    assert rows["fastrnn"]["ratio"] is None
    conc = {r["contender"]: r for r in report.concurrent_rows(res["blocks"][5])}
    assert conc["fastrnn"]["scaling"]["median"] == pytest.approx(1.9)
    assert conc["torch"]["ratio2"]["median"] == pytest.approx(190 / 60)


def test_report_targets_pass_and_fail():
    t = report.evaluate_targets(synthetic_results())
    assert _target(t, "4x PyTorch cell")["verdict"] == "PASS"            # 5x
    assert _target(t, "2x ONNX Runtime")["verdict"] == "FAIL"            # 1.5x
    ceil1 = _target(t, "90% of SGEMM", threads=1)
    assert ceil1["verdict"] == "PASS" and ceil1["measured"] == pytest.approx(0.95)
    assert _target(t, "90% of SGEMM", threads=2)["verdict"] == "FAIL"    # 80%
    assert _target(t, "inference >= 1.0x PyTorch", threads=1)["verdict"] == "PASS"
    assert _target(t, "inference >= 1.0x PyTorch", threads=2)["verdict"] == "FAIL"
    gru1 = _target(t, "GRU/RNN >= 1.5x", threads=1)
    assert gru1["verdict"] == "FAIL"                                      # 1.4x
    # torch at 1.4 s for the call against a 100 GFLOP/s ceiling; 1.5x it is 1.5 / 1.4 of its speed
    torch_frac = forward_flops(Config("train", "gru", 64, 100, 512, 512)) * 3 / 1.4 / 100e9
    assert gru1["needs_frac"] == pytest.approx(1.5 * torch_frac)
    assert _target(t, "GRU/RNN >= 1.5x", threads=2)["verdict"] == "PASS"   # 1.6x
    scaling = [x for x in t if x["target"].startswith("2 threads")]
    by_cfg = {x["config"]: x for x in scaling}
    assert by_cfg["infer/lstm/B64/T100/H1024"]["measured"] == pytest.approx(160 / 95)
    assert by_cfg["infer/lstm/B64/T100/H1024"]["verdict"] == "FAIL"
    assert by_cfg["train/gru/B64/T100/H512"]["verdict"] == "PASS"          # 2.0x
    assert _target(t, "concurrent serving")["verdict"] == "PASS"
    mem = _target(t, "peak extra memory")
    assert mem["verdict"] == "PASS" and mem["measured"] == pytest.approx(2.0)


def test_report_without_fastrnn_gives_no_verdicts():
    res = synthetic_results()
    for block in res["blocks"]:
        block["contenders"].pop("fastrnn")
        block["skipped"] = {"fastrnn": "not importable"}
    res["memory"][0]["contenders"]["fastrnn"] = {"skipped": "not importable"}
    targets = report.evaluate_targets(res)
    assert targets and all(x["verdict"] == "N/A" for x in targets)
    assert any("not importable" in x["note"] for x in targets)


def test_write_all_and_markdown(tmp_path):
    res = synthetic_results()
    paths = report.write_all(res, tmp_path, "t")
    loaded = json.loads(paths["json"].read_text())
    assert loaded["blocks"][0]["contenders"]["torch"]["samples"] == [4e-6, 5e-6, 6e-6]
    md = paths["md"].read_text()
    assert "| service step >= 4x PyTorch cell | step/lstm/B1/T1/H128 | 1 | 5.00x | 4x | **PASS** |  |" in md
    needs = report.evaluate_targets(res)
    gru1 = _target(needs, "GRU/RNN >= 1.5x", threads=1)
    assert (f"| batched training GRU/RNN >= 1.5x PyTorch | train/gru/B64/T100/H512 | 1 | 1.40x | 1.5x | **FAIL** "
            f"| {100 * gru1['needs_frac']:.0f}% |") in md
    assert "skipped contender **numpy**: because" in md
    assert "95%" in md and "Concurrent serving" in md and "Peak extra memory" in md
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "png" not in paths
    else:
        assert paths["png"].stat().st_size > 0


def test_re_report_refuses_what_is_not_a_results_file(tmp_path, capsys):
    cases = {"missing.json": None, "bad.json": "{bad", "other.json": '{"x": 1}', "list.json": "[1, 2]"}
    for name, text in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
    expected = {"missing.json": "cannot read", "bad.json": "cannot read", "other.json": "lacks meta, ceiling, blocks",
                "list.json": "lacks meta, ceiling, blocks"}
    for name, message in expected.items():
        assert report.main([str(tmp_path / name)]) == 2
        assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json", "list.json", "other.json"]
    res = synthetic_results()
    (tmp_path / "r.json").write_text(json.dumps(res))
    assert report.main([str(tmp_path / "r.json")]) == 0
    assert (tmp_path / "r.md").exists()


def test_report_shows_the_ceiling_at_the_end_and_warns_when_it_moved():
    res = synthetic_results()
    assert "at the end of the run" not in report.markdown(res)   # results from before ceiling_end
    res["ceiling_end"] = {"1": {"gflops": 105.0}, "2": {"gflops": 200.0}}
    md = report.markdown(res)
    assert "SGEMM ceiling at the end of the run: 1 thread(s) 105.0 GFLOP/s, 2 thread(s) 200.0 GFLOP/s" in md
    assert "speed changed" not in md                              # 5%: within DRIFT
    res["ceiling_end"]["2"] = {"gflops": 150.0}
    md = report.markdown(res)
    assert "**The machine's speed changed during this run** (ceiling 200.0 -> 150.0 GFLOP/s at 2 thread(s))" in md
    assert "100.0 -> 105.0" not in md


def test_interrupted_write_all_keeps_the_results_that_were_there(tmp_path, monkeypatch):
    """A run stopped while writing leaves the old files whole and no temporary file behind: the tables are
    made before any file is replaced (here the markdown fails), and a write that fails half-way (disk
    full) leaves that file as it was; the next complete run replaces them."""
    res = synthetic_results()
    old = report.write_all(res, tmp_path, "t")
    before = {kind: path.read_bytes() for kind, path in old.items()}
    real = report.markdown

    def half_written(results):
        raise KeyboardInterrupt("stopped while writing")

    res["blocks"][0]["contenders"]["torch"]["samples"] = [7e-6, 8e-6, 9e-6]
    monkeypatch.setattr(report, "markdown", half_written)
    with pytest.raises(KeyboardInterrupt):
        report.write_all(res, tmp_path, "t")
    assert {kind: path.read_bytes() for kind, path in old.items()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in old.values())

    # a failure inside the file's write: the old file stays whole
    monkeypatch.setattr(report, "markdown", real)
    from fastrnn import atomic_file

    with pytest.raises(OSError, match="disk full"):
        with atomic_file.replacing(old["json"], "w") as f:
            f.write('{"half": ')
            raise OSError("disk full (simulated)")
    assert old["json"].read_bytes() == before["json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in old.values())
    new = report.write_all(res, tmp_path, "t")
    assert json.loads(new["json"].read_text())["blocks"][0]["contenders"]["torch"]["samples"] == [7e-6, 8e-6, 9e-6]


def test_memory_probe_in_subprocess_reports_bytes():
    from bench import memory

    out = memory.measure("numpy", Config("train", "lstm", 2, 3, 4, 4), timeout=120)
    if "skipped" in out:  # e.g. no /proc/self/clear_refs on this system
        pytest.skip(out["skipped"])
    assert set(out) >= {"first_bytes", "steady_bytes", "tracemalloc_peak_bytes", "baseline_rss_bytes"}
    assert out["first_bytes"] >= 0 and out["baseline_rss_bytes"] > 0 and out["tracemalloc_peak_bytes"] > 0


def test_memory_probe_reports_unknown_contender_failure():
    from bench import memory

    out = memory.measure("no-such-contender", Config("train", "rnn", 1, 2, 3, 3), timeout=120)
    assert "skipped" in out and "no-such-contender" in out["skipped"]


def test_blocks_run_under_the_requested_thread_limits(monkeypatch):
    pytest.importorskip("threadpoolctl")
    from threadpoolctl import threadpool_info

    import bench.run as run

    seen = []

    class Probe:
        NAME = "probe"

        @staticmethod
        def build(problem, threads):
            def run_n(n):
                seen.append({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})

            return types.SimpleNamespace(label="probe", info={}, run=run_n, outputs=lambda: {})

    mode = dict(run.MODES["quick"], budget_s=0.0, min_repeats=1, max_repeats=1)
    block = run.run_block(tiny("seq", "rnn"), 1, {"probe": Probe}, mode)
    assert "probe" in block["contenders"] and seen and all(s == {1} for s in seen)


# ---------------------------------------------------------------------------------------------
# one worker process per contender (bench/contenders/worker.py)
# ---------------------------------------------------------------------------------------------

_FAKE_CONTENDER = '''
import os, time
from bench.contenders import numpy_contender
NAME = "{name}"
{on_import}

def unavailable():
    return None

def preload():
    pass

def build(problem, threads):
    {on_build}
    runner = numpy_contender.build(problem, threads)
    {after_build}
    return runner
'''


def _fake(tmp_path, name, on_import="", on_build="pass", after_build="pass"):
    (tmp_path / f"{name}.py").write_text(_FAKE_CONTENDER.format(
        name=name, on_import=on_import, on_build=on_build, after_build=after_build))
    return name


def _small_mode():
    import bench.run as run

    return dict(run.MODES["quick"], sample_s=0.001, budget_s=0.0, min_repeats=3, max_repeats=3)


@pytest.mark.parametrize("args,expected", [
    (["--threads", "0"], "--threads: expected comma-separated integers >= 1 such as 1,2, got '0'"),
    (["--threads", "two"], "--threads: expected comma-separated integers >= 1 such as 1,2, got 'two'"),
    (["--contenders", "fastrnn,tf"], "--contenders: expected a comma-separated subset of "
                                     "fastrnn,torch,onnxruntime,numpy, got 'fastrnn,tf' (tf unknown)"),
    (["--cells", "lstm,elman"], "--cells: expected a comma-separated subset of rnn,lstm,gru, got 'lstm,elman'"),
    (["--scenarios", ","], "--scenarios: expected a comma-separated subset of step,seq,infer,train,concurrent"),
    (["--pause-ms", "-1"], "--pause-ms: expected a number >= 0, got '-1'"),
    (["--worker-timeout", "0"], "--worker-timeout: expected a positive number, got '0'"),
    (["--worker-timeout", "inf"], "--worker-timeout: expected a positive number, got 'inf'"),
])
def test_bad_options_are_refused_before_anything_runs(args, expected, tmp_path, capsys):
    import bench.run as run

    with pytest.raises(SystemExit) as exc:
        run.main(["--quick", "--out", str(tmp_path), *args])
    assert exc.value.code == 2 and expected in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_selection_that_matches_nothing_is_refused_and_writes_nothing(tmp_path):
    import bench.run as run

    with pytest.raises(SystemExit, match="no configuration of the quick suite matches --scenarios step --cells "
                                         "rnn --only 'B64/'; keys look like step/"):
        run.main(["--quick", "--scenarios", "step", "--cells", "rnn", "--only", "B64/", "--out", str(tmp_path)])
    assert list(tmp_path.iterdir()) == []


def test_isolated_run_end_to_end(tmp_path, monkeypatch):
    """main() with worker processes on tiny configurations: gate, samples, concurrent block, report."""
    import bench.run as run

    cfgs = [tiny("seq", "lstm"), tiny("step", "gru"), Config("concurrent", "rnn", 1, 3, 4, 4)]
    monkeypatch.setattr(run, "configs", lambda quick: cfgs)
    monkeypatch.setitem(run.MODES, "quick", dict(_small_mode(), ceiling_reps=1))
    monkeypatch.setattr(run, "CEILING_SHAPE", (64, 64, 64))
    assert run.main(["--quick", "--threads", "1,2", "--contenders", "fastrnn,numpy", "--no-memory",
                     "--out", str(tmp_path), "--name", "iso"]) == 0
    res = json.loads((tmp_path / "iso.json").read_text())
    assert res["meta"]["isolation"] == "one worker process per contender"
    assert set(res["ceiling_end"]) == set(res["ceiling"]) == {"1", "2"}   # measured again at the end
    assert all(c["gflops"] > 0 for c in res["ceiling_end"].values())
    assert res["meta"]["versions"]["fastrnn"] and res["meta"]["versions"]["scipy"]  # reported by the workers
    timed = [b for b in res["blocks"] if b["config"]["scenario"] != "concurrent"]
    assert len(timed) == 4 and {b["threads"] for b in timed} == {1, 2}
    for b in timed:
        assert b["reference"] == "numpy" and b["checks"]["fastrnn"]["ok"], b["checks"]
        for name in ("fastrnn", "numpy"):
            s = b["contenders"][name]["samples"]
            assert len(s) == 3 and all(0 < t < 1 for t in s)
    conc = [b for b in res["blocks"] if b["config"]["scenario"] == "concurrent"][0]
    assert set(conc["contenders"]) == {"fastrnn", "numpy"}
    assert all(v > 0 for v in conc["contenders"]["fastrnn"]["throughput"]["2"])


def test_isolated_skips_a_contender_whose_import_fails(tmp_path):
    from bench.contenders.worker import close_all, start_all

    broken = _fake(tmp_path, "broken_import", on_import="raise ImportError('libfoo.so: cannot open shared object')")
    usable, skipped = start_all({"broken": broken, "numpy": "bench.contenders.numpy_contender",
                                 "missing": "no_such_module_for_bench"}, extra_path=[tmp_path])
    try:
        assert set(usable) == {"numpy"}
        assert "ImportError" in skipped["broken"] and "libfoo.so" in skipped["broken"]
        assert "no_such_module_for_bench" in skipped["missing"]
    finally:
        close_all(usable)


def test_isolated_worker_death_timeout_and_error_skip_with_reason(tmp_path, capsys):
    """A worker that exits, hangs or raises loses that configuration, with the reason; the rest go on."""
    import bench.run as run
    from bench.contenders.worker import close_all, start_all

    mods = {"dies": _fake(tmp_path, "dies", on_build="os._exit(3)"),
            "hangs": _fake(tmp_path, "hangs", on_build="time.sleep(60)"),
            "raises": _fake(tmp_path, "raises", after_build="runner.run = lambda n: 1 / 0"),
            "numpy": "bench.contenders.numpy_contender"}
    usable, skipped = start_all(mods, extra_path=[tmp_path], timeout_s=3.0)
    try:
        assert not skipped and set(usable) == set(mods)
        block = run.run_block(tiny("seq", "gru"), 1, usable, _small_mode())
        assert list(block["contenders"]) == ["numpy"]
        assert "died" in block["skipped"]["dies"] and "exit code 3" in block["skipped"]["dies"]
        assert "no answer within 3 s" in block["skipped"]["hangs"]
        assert "ZeroDivisionError" in block["skipped"]["raises"] and "calibrating" in block["skipped"]["raises"]
        assert not usable["hangs"].alive()
        printed = capsys.readouterr().out  # every reason is printed as well as recorded
        assert "skipping dies" in printed and "exit code 3" in printed
        assert "skipping hangs" in printed and "dropping raises" in printed and "ZeroDivisionError" in printed
        # the next configuration restarts the dead workers (which die again, with the reason)
        block = run.run_block(tiny("seq", "rnn"), 1, {"dies": usable["dies"], "numpy": usable["numpy"]}, _small_mode())
        assert "exit code 3" in block["skipped"]["dies"] and len(block["contenders"]["numpy"]["samples"]) == 3
    finally:
        close_all(usable)
    assert all(p.proc is None for p in usable.values())


def test_isolated_worker_sets_thread_limits_when_building(tmp_path):
    pytest.importorskip("threadpoolctl")
    from bench.contenders.worker import close_all, start_all

    probe = _fake(tmp_path, "probe", after_build=(
        "from threadpoolctl import threadpool_info; import numpy as np; "
        "runner.outputs = lambda: {'blas': np.array([i['num_threads'] for i in threadpool_info() "
        "if i['user_api'] == 'blas']), 'pid': os.getpid()}"))
    usable, skipped = start_all({"probe": probe}, extra_path=[tmp_path])
    try:
        assert not skipped
        for threads in (1, 2, 1):
            out = usable["probe"].build(make_problem(tiny("seq", "rnn")), threads).outputs()
            assert out["pid"] != __import__("os").getpid()
            assert out["blas"].size >= 1 and set(out["blas"].tolist()) == {threads}
    finally:
        close_all(usable)


def test_wait_quiet_waits_for_a_spinning_process_and_not_for_an_idle_one():
    import subprocess

    from bench.contenders.worker import cpu_ns, wait_quiet

    if cpu_ns([__import__("os").getpid()]) is None:
        pytest.skip("no /proc/<pid>/task/*/schedstat here")
    # each child says "go" once started, then spins for argv[1] seconds, then sleeps
    code = ("import sys, time\nprint('go', flush=True)\nt = time.perf_counter()\n"
            "while time.perf_counter() - t < float(sys.argv[1]): pass\ntime.sleep(30)")
    spin = subprocess.Popen([sys.executable, "-c", code, "0.6"], stdout=subprocess.PIPE, text=True)
    idle = subprocess.Popen([sys.executable, "-c", code, "0"], stdout=subprocess.PIPE, text=True)
    try:
        assert spin.stdout.readline() == "go\n" and idle.stdout.readline() == "go\n"  # both started
        time.sleep(0.02)  # the first spins for 0.6 s from now, then sleeps
        assert wait_quiet([spin.pid], max_wait_s=0.1) >= 0.1          # still spinning: waits the maximum
        waited = wait_quiet([spin.pid], max_wait_s=5.0)               # returns once the spinning stops
        assert 0.05 < waited < 2.0
        assert wait_quiet([idle.pid, spin.pid], max_wait_s=5.0) < 0.1  # both idle now
    finally:
        spin.kill()
        idle.kill()
        spin.wait()
        idle.wait()


def test_interleaved_calls_before_sample_and_drops_a_failing_contender():
    calls, errors = [], {}

    def bad(k):
        raise RuntimeError("boom")

    samples = timing.interleaved({"a": lambda k: None, "b": bad}, {"a": 1, "b": 1}, repeats=3, errors=errors,
                                 before_sample=lambda: calls.append(1))
    assert list(samples) == ["a"] and len(samples["a"]) == 3
    assert isinstance(errors["b"], RuntimeError) and len(calls) == 4  # a, b (fails), a, a
    with pytest.raises(RuntimeError, match="boom"):
        timing.interleaved({"b": bad}, {"b": 1}, repeats=1)


def test_arg_types_refuse_what_they_do_not_expect():
    import argparse
    import re

    from fastrnn import arg_types

    assert arg_types.int_at_least(1)("3") == 3 and arg_types.fraction("0.5") == 0.5
    assert arg_types.ints_at_least(0, "0,1")("2,0,2") == [2, 0]
    assert arg_types.finite(0)("0") == 0.0
    for parse, text, message in [(arg_types.int_at_least(1), "0", "a positive integer, got '0'"),
                                 (arg_types.int_at_least(2), "1.5", "an integer >= 2, got '1.5'"),
                                 (arg_types.ints_at_least(0, "0,1"), "-1", "integers >= 0 such as 0,1, got '-1'"),
                                 (arg_types.finite(0, inclusive=False), "0", "a positive number, got '0'"),
                                 (arg_types.finite(0), "nan", "a number >= 0, got 'nan'"),
                                 (arg_types.finite(1, inclusive=False), "1", "a finite number > 1, got '1'"),
                                 (arg_types.fraction, "1", "a fraction in (0, 1), got '1'"),
                                 (arg_types.subset_of(("a", "b")), "", "subset of a,b, got ''")]:
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(message)):
            parse(text)


def test_the_parent_process_imports_no_contender_library():
    """bench/README.md, Isolation: run.py and report.py load fastrnn's helper modules from their files
    (bench/standalone.py), not through the fastrnn package, which loads scipy and the kernels."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    code = ("import sys; import bench.run, bench.report; "
            "print(sorted(m for m in ('fastrnn', 'scipy', 'torch', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("case, mode, runs", [("stacked", "lstm", 2 * 3), ("batched", "gru", 1)])
def test_fast_path_bench_toggles_the_path_it_times(monkeypatch, case, mode, runs):
    """bench/fast_path.py switches a layer between its compiled and general paths through ``_fast``: with it
    off the kernel's ``run`` is not called, with it on it is (once per layer and call), and the script
    leaves it on; for the stacked LSTM steps and for the batched GRU call."""
    from bench import fast_path

    kernel = importlib.import_module(f"fastrnn._kernels.{mode}")
    run, layer = fast_path.stacked_step(8, 2, 3) if case == "stacked" else fast_path.batched_gru(2, 3, 8)
    real, calls = kernel.run, []
    monkeypatch.setattr(kernel, "run", lambda *a: calls.append(1) or real(*a))
    layer._fast = False
    run()
    assert calls == []
    layer._fast = True
    run()
    assert len(calls) == runs
    fast, general, ratio = fast_path.paired(run, layer, 2)
    assert fast > 0 and general > 0 and ratio > 0 and layer._fast is True
