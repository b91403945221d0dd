"""fastrnn benchmark suite: fastrnn against PyTorch, ONNX Runtime and NumPy (issue 4).

    python bench/run.py --quick     # a subset of every scenario, under ~3 minutes on 2 cores
    python bench/run.py             # the full suite, under ~20 minutes on 2 cores

Each contender runs in its own worker process for the whole run (bench/contenders/worker.py); this
process draws the problems, runs the correctness gate on the outputs the workers return, and
schedules the interleaved samples, which the workers time. ``--in-process`` runs every contender
in this process instead (the suite's behaviour before process isolation).

Writes bench/results/<quick|full>.{json,md,png} and prints every target as PASS/FAIL.
See bench/README.md for the scenarios and the method.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import sys
import time
import traceback
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import memory, report, timing  # noqa: E402
from bench.check import compare  # noqa: E402
from bench.openblas_env import unpin_openblas  # noqa: E402
from bench.contenders import ORDER, load, start_isolated  # noqa: E402
from bench.contenders.base import Skip, thread_limits  # noqa: E402
from bench.contenders.worker import WorkerError, close_all, wait_quiet  # noqa: E402
from bench.problem import make_problem  # noqa: E402
from bench.scenarios import CELLS, SCENARIOS, call_flops, configs  # noqa: E402
from bench.standalone import arg_types  # noqa: E402

MODES = {
    # sample_s: length of one timed sample; budget_s: timing budget of one block (config x threads)
    "quick": {"sample_s": 0.005, "budget_s": 0.6, "min_repeats": 3, "max_repeats": 9, "ceiling_reps": 3},
    "full": {"sample_s": 0.02, "budget_s": 3.0, "min_repeats": 5, "max_repeats": 21, "ceiling_reps": 7},
}
CEILING_SHAPE = (6400, 1024, 4096)  # (M, K, N) of the SGEMM ceiling: (6400 x 1024) @ (1024 x 4096)


def log(msg):
    print(msg, flush=True)


def machine_info(argv, mode, workers=None):
    """The machine, versions and BLAS pools; with ``workers`` (isolated mode) the contenders' libraries
    are not imported here: their versions and thread pools come from the workers' hellos."""
    cpu = platform.processor()
    try:
        import subprocess

        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        cpu = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), cpu)
    except Exception:
        pass
    versions = {"python": platform.python_version()}
    names = ("numpy", "scipy", "torch", "onnxruntime", "onnx", "threadpoolctl", "fastrnn")
    for mod in (("numpy", "threadpoolctl") if workers is not None else names):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:
            versions[mod] = None
    blas = []
    try:
        from threadpoolctl import threadpool_info

        blas = [f"{i.get('prefix')} {i.get('version')} ({i.get('user_api')}, {i.get('architecture')} kernels, "
                f"{os.path.basename(i.get('filepath', ''))})" for i in threadpool_info()]
    except Exception:
        pass
    if workers is not None:
        for w in workers.values():
            for mod, v in w.hello["versions"].items():
                versions.setdefault(mod, v)
            blas += [p for p in w.hello["thread_pools"] if p not in blas]
        for mod in names:
            versions.setdefault(mod, None)
    return {"mode": mode, "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": "python " + " ".join(shlex.quote(a) for a in ["bench/run.py", *argv]),
            "cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(), "versions": versions,
            "thread_pools": blas, "loadavg_start": os.getloadavg()[0],
            "isolation": "in-process" if workers is None else "one worker process per contender"}


def measure_ceiling(threads, reps):
    """GFLOP/s of a large numpy float32 matmul at this thread count (the best of ``reps``)."""
    import numpy as np

    M, K, N = CEILING_SHAPE
    rng = np.random.default_rng(0)
    a = rng.standard_normal((M, K), dtype=np.float32)
    b = rng.standard_normal((K, N), dtype=np.float32)
    out = np.empty((M, N), np.float32)
    with thread_limits(threads):
        np.matmul(a, b, out=out)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            np.matmul(a, b, out=out)
            times.append(time.perf_counter() - t0)
    flops = 2.0 * M * K * N
    return {"gflops": flops / min(times) / 1e9, "gflops_median": flops / float(np.median(times)) / 1e9,
            "shape": f"({M} x {K}) @ ({K} x {N})", "reps": reps}


# Measured on the 2-core machine (2026-11-23, full run with every contender): at 2 threads the NumPy
# contender's OpenBLAS pool kept a core busy after its samples, and whichever contender came next lost it:
# fastrnn's RNN B=64 H=512 inference 31.1 ms at 2 threads against 32.1 at 1, but 17.2 ms with the NumPy
# contender left out of the run (and LSTM B=64 H=512: 99.9 ms against 65.9). So NumPy is timed at one
# thread only, unless it is the only reference (no torch).
NUMPY_ONE_THREAD = ("timed at 1 thread only: its OpenBLAS pool keeps a core busy after each sample and slows "
                    "the contender timed next (see bench/README.md); --numpy-all-threads times it anyway")


def build_and_check(cfg, threads, mods, numpy_all_threads=False):
    """Build every contender's runner and keep those whose outputs match the reference."""
    problem = make_problem(cfg)
    runners, skipped, checks = {}, {}, {}
    for name, mod in mods.items():
        if name == "numpy" and threads > 1 and "torch" in mods and not numpy_all_threads:
            skipped[name] = NUMPY_ONE_THREAD
            continue
        try:
            runners[name] = mod.build(problem, threads)
        except Skip as exc:
            skipped[name] = str(exc)
        except WorkerError as exc:
            skipped[name] = f"build failed: {exc}"
        except Exception as exc:
            skipped[name] = f"build failed: {exc.__class__.__name__}: {exc}"
            traceback.print_exc(limit=3)
    ref_name = next((n for n in ("torch", "numpy") if n in runners), None)
    reference = None
    if ref_name is not None:
        try:
            reference = runners[ref_name].outputs()
            checks[ref_name] = {"ok": True, "reference": True, "error": 0.0, "message": "reference"}
        except Exception as exc:
            skipped[ref_name] = f"reference run failed: {exc.__class__.__name__}: {exc}"
            runners.pop(ref_name)
            reference = None
    for name, reason in skipped.items():
        if reason.startswith(("build failed", "reference run failed")):  # not: a scenario it does not cover
            log(f"    skipping {name} for {cfg.key} at {threads} thread(s): {reason}")
    for name in list(runners):
        if name == ref_name:
            continue
        if reference is None:
            checks[name] = {"ok": True, "error": None, "message": "unchecked: no reference contender"}
            continue
        try:
            ok, err, msg = compare(runners[name].outputs(), reference)
        except Exception as exc:
            ok, err, msg = False, None, f"{exc.__class__.__name__}: {exc}"
        checks[name] = {"ok": ok, "error": err, "message": msg}
        if not ok:
            log(f"    REFUSED to time {name}: outputs differ from {ref_name}'s: {msg}")
            runners.pop(name)
    return runners, skipped, checks, ref_name


def run_block(cfg, threads, mods, mode):
    """One configuration at one thread count: build, check, calibrate, then interleaved samples.

    ``mods`` are contender modules (in-process) or worker processes (isolated); both build runners
    whose ``run`` the timing functions call. The limits set here act on this process's libraries;
    a worker sets its own when it builds.
    """
    with thread_limits(threads):
        return _run_block(cfg, threads, mods, mode)


def _before_sample(mods, threads, mode, waits):
    """What runs before each timed sample: None, a fixed pause (--pause-ms), and/or (worker processes,
    more than one thread) a wait until no worker's idle threads are spinning (--no-quiesce turns it off).
    The seconds waited are appended to ``waits``."""
    pause = mode.get("pause_s", 0.0)
    pids = [m.proc.pid for m in mods.values() if getattr(m, "proc", None) is not None] \
        if mode.get("quiesce") and threads > 1 else []
    if pause <= 0 and not pids:
        return None

    def before():
        t0 = time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        if pids:
            wait_quiet(pids)
        waits.append(time.perf_counter() - t0)

    return before


def _drop(block, skipped, name, exc, doing):
    reason = str(exc) if isinstance(exc, WorkerError) else f"{exc.__class__.__name__}: {exc}"
    skipped[name] = f"failed while {doing}: {reason}"
    log(f"    dropping {name} for {block['config']['scenario']}/{block['config']['cell']} at "
        f"{block['threads']} thread(s): {skipped[name]}")


def _run_block(cfg, threads, mods, mode):
    runners, skipped, checks, ref = build_and_check(cfg, threads, mods, mode.get("numpy_all_threads", False))
    block = {"config": cfg.as_dict(), "threads": threads, "flops_per_call": call_flops(cfg),
             "skipped": skipped, "checks": checks, "reference": ref, "contenders": {},
             "loadavg": os.getloadavg()[0]}
    if not runners:
        return block
    counts, per_sample = {}, []
    for name, r in list(runners.items()):
        try:
            counts[name], per_call = timing.calibrate(r.run, mode["sample_s"])
        except Exception as exc:
            _drop(block, skipped, name, exc, "calibrating")
            runners.pop(name)
            continue
        per_sample.append(per_call * counts[name])
    if not runners:
        return block
    repeats = timing.choose_repeats(per_sample, mode["budget_s"], mode["min_repeats"], mode["max_repeats"])
    errors, waits = {}, []
    samples = timing.interleaved({n: r.run for n, r in runners.items()}, counts, repeats, errors=errors,
                                 before_sample=_before_sample(mods, threads, mode, waits))
    if waits:
        block["wait_before_sample"] = timing.stats(waits)
    for name, exc in errors.items():
        _drop(block, skipped, name, exc, "timing")
        runners.pop(name)
    block["repeats"] = repeats
    for name, r in runners.items():
        block["contenders"][name] = {"label": r.label, "info": r.info, "calls_per_sample": counts[name],
                                     "samples": samples[name]}
    return block


def run_concurrent_block(cfg, mods, mode, callers=(1, 2)):
    """Throughput of N Python threads, each running batch-1 inference on its own state (1 BLAS thread)."""
    with thread_limits(1):
        return _run_concurrent_block(cfg, mods, mode, callers)


def _run_concurrent_block(cfg, mods, mode, callers):
    runners, skipped, checks, ref = build_and_check(cfg, 1, mods)
    block = {"config": cfg.as_dict(), "threads": 1, "flops_per_call": call_flops(cfg), "skipped": skipped,
             "checks": checks, "reference": ref, "contenders": {}, "loadavg": os.getloadavg()[0]}
    workers, calls = {}, {}
    for name, r in runners.items():
        try:
            workers[name] = concurrent_driver(r, callers)
            calls[name], _ = timing.calibrate(workers[name].one, 4 * mode["sample_s"])
        except Skip as exc:
            skipped[name] = str(exc)
            workers.pop(name, None)
        except Exception as exc:
            _drop(block, skipped, name, exc, "preparing concurrent workers")
            workers.pop(name, None)
    repeats = max(mode["min_repeats"], min(mode["max_repeats"], 7))
    thr = {name: {str(n): [] for n in callers} for name in workers}
    for _ in range(repeats):
        for name in list(workers):
            try:
                for n in callers:
                    wall = workers[name].wall(n, calls[name])
                    thr[name][str(n)].append(n * calls[name] / wall)
            except Exception as exc:
                _drop(block, skipped, name, exc, "timing concurrent workers")
                workers.pop(name)
                thr.pop(name)
    block["repeats"] = repeats
    for name in workers:
        block["contenders"][name] = {"label": runners[name].label, "calls_per_thread": calls[name],
                                     "throughput": thr[name]}
    return block


def concurrent_driver(runner, callers):
    """``.one(k)`` (k calls of one worker, for calibration) and ``.wall(n, k)`` for a runner.

    A worker-process runner prepares its thread workers in its process; an in-process runner here.
    """
    if hasattr(runner, "concurrent"):
        return runner.concurrent(callers)
    ws = {n: [runner.worker() for _ in range(n)] for n in callers}
    return types.SimpleNamespace(one=ws[1][0], wall=lambda n, k: timing.concurrent_wall(ws[n], k))


def _line(results, block):
    cfg_key = report.Config(**block["config"]).key
    if report.Config(**block["config"]).scenario == "concurrent":
        parts = [f"{r['contender']} x{r['scaling']['median']:.2f} ({r['thr1']['median']:.0f}->{r['thr2']['median']:.0f}/s)"
                 for r in report.concurrent_rows(block)]
        return f"  {cfg_key:28} 2 callers  " + "  ".join(parts)
    parts = []
    for r in report.block_rows(results, block):
        ratio = f" ({r['ratio']['median']:.2f}x)" if r["ratio"] else ""
        parts.append(f"{r['contender']} {report.fmt_time(r['time']['median'])}{ratio}")
    return f"  {cfg_key:28} thr={block['threads']}  " + "  ".join(parts)


def parse_args(argv):
    ap = argparse.ArgumentParser(description="fastrnn benchmark suite (issue 4); see bench/README.md")
    ap.add_argument("--quick", action="store_true", help="a subset of every scenario (~3 minutes)")
    ap.add_argument("--threads", type=arg_types.ints_at_least(1, "1,2"), default=[1, 2],
                    help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--contenders", type=arg_types.subset_of(ORDER), default=list(ORDER),
                    help=f"comma-separated subset of {','.join(ORDER)}")
    ap.add_argument("--scenarios", type=arg_types.subset_of(SCENARIOS), default=list(SCENARIOS),
                    help=f"comma-separated subset of {','.join(SCENARIOS)}")
    ap.add_argument("--cells", type=arg_types.subset_of(CELLS), default=list(CELLS),
                    help="comma-separated subset of rnn,lstm,gru")
    ap.add_argument("--only", default="", help="keep configurations whose key contains one of these "
                    "comma-separated substrings, e.g. 'lstm/B64,H1024' (keys look like infer/lstm/B64/T100/H1024)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"), help="output directory")
    ap.add_argument("--name", default=None, help="output file stem (default: quick or full)")
    ap.add_argument("--in-process", action="store_true",
                    help="run every contender in this process (the old behaviour) instead of one worker "
                         "process per contender")
    ap.add_argument("--worker-timeout", type=arg_types.finite(0, inclusive=False), default=600.0,
                    help="seconds a worker process may take for one command (build, a sample, ...) before "
                         "it is killed and its contender skipped for that configuration (default 600)")
    ap.add_argument("--pause-ms", type=arg_types.finite(0), default=0.0,
                    help="sleep this long before each timed sample (default 0; see bench/README.md)")
    ap.add_argument("--no-quiesce", action="store_true",
                    help="with worker processes and more than one thread, do not wait before each sample until "
                         "the workers' idle threads stop spinning (see bench/README.md)")
    ap.add_argument("--numpy-all-threads", action="store_true",
                    help="time the NumPy contender at every thread count (by default only at 1 thread when "
                         "torch is there as the reference; see bench/README.md)")
    ap.add_argument("--keep-openblas-env", action="store_true",
                    help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE if set (by default the suite re-runs itself "
                         "without them, so OpenBLAS picks the kernels for this processor)")
    return ap.parse_args(argv)


def main(argv=None):
    from_command_line = argv is None
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if from_command_line and not args.keep_openblas_env:
        # replaces this process; a caller of main() keeps its own environment
        unpin_openblas(Path(__file__).resolve(), argv, log)
    mode_name = "quick" if args.quick else "full"
    mode = dict(MODES[mode_name], pause_s=args.pause_ms / 1000.0,
                quiesce=not (args.no_quiesce or args.in_process), numpy_all_threads=args.numpy_all_threads)
    threads, scen, cells = args.threads, set(args.scenarios), set(args.cells)
    only = [o for o in args.only.split(",") if o]
    todo = [c for c in configs(args.quick) if c.scenario in scen and c.cell in cells
            and (not only or any(o in c.key for o in only))]
    if not todo:   # before anything runs or any result file is replaced
        raise SystemExit(f"no configuration of the {mode_name} suite matches --scenarios {','.join(args.scenarios)} "
                         f"--cells {','.join(args.cells)} --only {args.only!r}; keys look like "
                         f"{configs(args.quick)[0].key}")
    t_start = time.perf_counter()
    load1 = os.getloadavg()[0]
    if load1 > 0.5:
        log(f"WARNING: load average {load1:.2f} before starting: other processes are using the CPUs, "
            "so the timings will be noisy (run on a quiet machine for numbers to publish)")
    names = args.contenders
    if args.in_process:
        mods, skipped = load(names)
    else:
        mods, skipped = start_isolated(names, timeout_s=args.worker_timeout)
    try:
        return _main(args, argv, mode_name, mode, mods, skipped, threads, scen, todo, t_start)
    finally:
        if not args.in_process:
            close_all(mods)


def _main(args, argv, mode_name, mode, mods, skipped, threads, scen, todo, t_start):
    for name, reason in skipped.items():
        log(f"skipping contender {name}: {reason}")
    results = {"meta": machine_info(argv, mode_name, None if args.in_process else mods),
               "skipped_contenders": skipped, "ceiling": {}, "ceiling_end": {}, "blocks": [], "memory": []}
    results["meta"]["pause_ms"] = args.pause_ms
    results["meta"]["quiesce"] = mode["quiesce"]
    for n in threads:
        results["ceiling"][str(n)] = measure_ceiling(n, mode["ceiling_reps"])
        log(f"SGEMM ceiling, {n} thread(s): {results['ceiling'][str(n)]['gflops']:.1f} GFLOP/s")

    for cfg in todo:
        if cfg.scenario == "concurrent":
            block = run_concurrent_block(cfg, mods, mode)
            results["blocks"].append(block)
            log(_line(results, block))
            continue
        for n in threads:
            block = run_block(cfg, n, mods, mode)
            results["blocks"].append(block)
            log(_line(results, block))

    if not args.no_memory and "train" in scen:
        mem_cfgs = [c for c in todo if c.scenario == "train"]
        if args.quick:
            mem_cfgs = [c for c in mem_cfgs if c.cell == "lstm"]
        for cfg in mem_cfgs:
            entry = {"config": cfg.as_dict(), "contenders": {}}
            for name in mods:
                if name == "onnxruntime":
                    continue
                entry["contenders"][name] = memory.measure(name, cfg)
            results["memory"].append(entry)
            log(f"  memory {cfg.key}: " + "  ".join(
                f"{k} {report.fmt_bytes(v.get('first_bytes'))}" if "first_bytes" in v else f"{k} skipped ({v['skipped']})"
                for k, v in entry["contenders"].items()))

    # the ceiling again, so that the report can tell when the machine's speed changed during the run
    results["ceiling_end"] = {str(n): measure_ceiling(n, mode["ceiling_reps"]) for n in threads}
    for n, c in results["ceiling_end"].items():
        log(f"SGEMM ceiling at the end, {n} thread(s): {c['gflops']:.1f} GFLOP/s")
    results["meta"]["loadavg_end"] = os.getloadavg()[0]
    results["meta"]["wall_s"] = time.perf_counter() - t_start
    paths = report.write_all(results, args.out, args.name or mode_name)
    log("")
    report.print_targets(results)
    log("")
    log("wrote " + ", ".join(str(p) for p in paths.values()) + f" in {results['meta']['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
