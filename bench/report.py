"""Turn raw timings into the report: per-call statistics, GFLOP/s, fraction of the SGEMM ceiling,
paired ratios against fastrnn, the targets of issue 4 as PASS/FAIL, and the markdown / JSON / PNG files.

Everything here works on the plain dict that bench/run.py records (and writes as JSON), so a saved
result can be re-reported with ``python -m bench.report bench/results/full.json``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .scenarios import Config, call_flops, is_large
from .standalone import atomic_file
from .timing import paired_ratios, stats

BASE = "fastrnn"

# (scenario filter, other contender, bound, description) -- ratios are time_other / time_fastrnn
RATIO_TARGETS = [
    ("step", "torch", 4.0, "service step >= 4x PyTorch cell"),
    ("step", "onnxruntime", 2.0, "service step >= 2x ONNX Runtime"),
    ("seq", "torch", 2.0, "batch-1 sequence inference >= 2x PyTorch"),
    ("seq", "onnxruntime", 1.2, "batch-1 sequence inference >= 1.2x ONNX Runtime"),
    ("train1", "torch", 3.0, "batch-1 training step >= 3x PyTorch"),
    ("trainB-lstm", "torch", 1.1, "batched training LSTM >= 1.1x PyTorch"),
    ("trainB-other", "torch", 1.5, "batched training GRU/RNN >= 1.5x PyTorch"),
    ("infer", "torch", 1.0, "batched inference >= 1.0x PyTorch"),
    ("infer", "onnxruntime", 1.0, "batched inference >= 1.0x ONNX Runtime"),
]
CEILING_BOUND = 0.90
THREAD_SCALING_BOUND = 1.7
CONCURRENT_BOUND = 1.7


def _cfg(block):
    return Config(**block["config"])


def _target_group(cfg):
    if cfg.scenario == "train":
        if cfg.B == 1:
            return "train1"
        return "trainB-lstm" if cfg.cell == "lstm" else "trainB-other"
    return cfg.scenario


def fmt_time(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_bytes(b):
    if b is None:
        return "-"
    return f"{b / 2**20:.1f} MiB"


def ceiling_gflops(results, threads):
    c = results.get("ceiling", {}).get(str(threads))
    return c["gflops"] if c else None


# ---------------------------------------------------------------------------------------------
# per-block rows
# ---------------------------------------------------------------------------------------------

def block_rows(results, block):
    """One row per contender of a timed block, with its statistics and its ratio against fastrnn."""
    cfg = _cfg(block)
    flops = call_flops(cfg)
    ceiling = ceiling_gflops(results, block["threads"])
    base = block["contenders"].get(BASE)
    rows = []
    for name, entry in block["contenders"].items():
        st = stats(entry["samples"])
        gflops = flops / st["median"] / 1e9 if st and st["median"] > 0 else None
        row = {"key": cfg.key, "scenario": cfg.scenario, "cell": cfg.cell, "B": cfg.B, "T": cfg.T, "H": cfg.H,
               "threads": block["threads"], "contender": name, "label": entry.get("label", name),
               "time": st, "gflops": gflops,
               "ceiling_frac": gflops / ceiling if gflops and ceiling else None, "ratio": None}
        if base is not None and name != BASE:
            _, row["ratio"] = paired_ratios(entry["samples"], base["samples"])
        rows.append(row)
    return rows


def concurrent_rows(block):
    """Throughput at N=1 and N=2 threads, the scaling N=2/N=1, and the throughput ratio fastrnn/other."""
    rows = []
    base = block["contenders"].get(BASE)
    for name, entry in block["contenders"].items():
        t1, t2 = entry["throughput"]["1"], entry["throughput"]["2"]
        _, scaling = paired_ratios(t2, t1)
        row = {"key": _cfg(block).key, "contender": name, "label": entry.get("label", name),
               "thr1": stats(t1), "thr2": stats(t2), "scaling": scaling, "ratio2": None}
        if base is not None and name != BASE:
            _, row["ratio2"] = paired_ratios(base["throughput"]["2"], t2)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# targets
# ---------------------------------------------------------------------------------------------

def _verdict(measured, bound):
    if measured is None:
        return "N/A"
    return "PASS" if measured >= bound else "FAIL"


def evaluate_targets(results):
    """Every target of issue 4 that this run measured, as dicts with measured, bound and verdict."""
    out = []
    timed = [b for b in results["blocks"] if _cfg(b).scenario != "concurrent"]
    for block in timed:
        cfg = _cfg(block)
        group = _target_group(cfg)
        rows = {r["contender"]: r for r in block_rows(results, block)}
        for tgroup, other, bound, desc in RATIO_TARGETS:
            if tgroup != group or other not in rows:
                continue
            ratio = rows[other]["ratio"]
            measured = ratio["median"] if ratio else None
            # the fraction of the SGEMM ceiling fastrnn would have to run at to meet the bound: bound times
            # the other's GFLOP/s; above 1 the target asks for more than the machine's large GEMM gives
            frac = rows[other]["ceiling_frac"]
            out.append({"target": desc, "config": cfg.key, "threads": block["threads"], "kind": "ratio",
                        "measured": measured, "bound": bound, "verdict": _verdict(measured, bound),
                        "needs_frac": bound * frac if frac is not None else None,
                        "note": "" if measured is not None else _missing(block)})
        if cfg.cell == "lstm" and cfg.B == 64 and cfg.H == 1024 and BASE in rows:
            frac = rows[BASE]["ceiling_frac"]
            out.append({"target": f"LSTM B=64 H=1024 {cfg.scenario} >= 90% of SGEMM ceiling",
                        "config": cfg.key, "threads": block["threads"], "kind": "fraction",
                        "measured": frac, "bound": CEILING_BOUND, "verdict": _verdict(frac, CEILING_BOUND),
                        "note": ""})
    # 2 threads against 1 thread on the large configurations
    by_key = {}
    for block in timed:
        if is_large(_cfg(block)) and BASE in block["contenders"]:
            by_key.setdefault(_cfg(block).key, {})[block["threads"]] = stats(block["contenders"][BASE]["samples"])
    for key, per in by_key.items():
        if 1 in per and 2 in per:
            speedup = per[1]["median"] / per[2]["median"]
            out.append({"target": "2 threads >= 1.7x one thread (large configuration)", "config": key,
                        "threads": "1->2", "kind": "ratio", "measured": speedup, "bound": THREAD_SCALING_BOUND,
                        "verdict": _verdict(speedup, THREAD_SCALING_BOUND), "note": ""})
    for block in results["blocks"]:
        if _cfg(block).scenario != "concurrent":
            continue
        for row in concurrent_rows(block):
            if row["contender"] == BASE:
                m = row["scaling"]["median"] if row["scaling"] else None
                out.append({"target": "concurrent serving: 2 Python threads >= 1.7x one thread's throughput",
                            "config": row["key"], "threads": "2 callers", "kind": "ratio", "measured": m,
                            "bound": CONCURRENT_BOUND, "verdict": _verdict(m, CONCURRENT_BOUND), "note": ""})
    for mem in results.get("memory", []):
        ours, theirs = mem["contenders"].get(BASE, {}), mem["contenders"].get("torch", {})
        if "first_bytes" in ours and "first_bytes" in theirs:
            # measured as torch / fastrnn so that, as for times, higher is better
            m = theirs["first_bytes"] / max(ours["first_bytes"], 1)
            out.append({"target": "training peak extra memory <= PyTorch's", "config": Config(**mem["config"]).key,
                        "threads": 1, "kind": "memory", "measured": m, "bound": 1.0, "verdict": _verdict(m, 1.0),
                        "note": f"fastrnn {fmt_bytes(ours['first_bytes'])}, torch {fmt_bytes(theirs['first_bytes'])}"})
    return out


def _missing(block):
    reasons = dict(block.get("skipped", {}))
    for name, chk in block.get("checks", {}).items():
        if not chk.get("ok", True):
            reasons[name] = "refused: " + chk.get("message", "wrong outputs")
    return "; ".join(f"{k}: {v}" for k, v in reasons.items())


# ---------------------------------------------------------------------------------------------
# markdown
# ---------------------------------------------------------------------------------------------

def _fmt_ratio(r):
    if not r:
        return "-"
    return f"{r['median']:.2f}x [{r['q25']:.2f}-{r['q75']:.2f}]"


def markdown(results):
    meta = results.get("meta", {})
    lines = [f"# fastrnn benchmark ({meta.get('mode', '?')})", ""]
    if meta:
        lines += [f"- date: {meta.get('date', '?')}", f"- command: `{meta.get('command', '?')}`",
                  f"- machine: {meta.get('cpu', '?')}, {meta.get('cores', '?')} cores; {meta.get('platform', '')}",
                  f"- versions: {meta.get('versions', {})}",
                  f"- BLAS / thread pools: {'; '.join(meta.get('thread_pools', [])) or '?'}",
                  f"- load average (1 min) at start / end: {meta.get('loadavg_start', 0):.2f} / {meta.get('loadavg_end', 0):.2f}",
                  f"- wall time: {meta.get('wall_s', 0):.0f} s", ""]
    ceil = results.get("ceiling", {})
    if ceil:
        lines += ["SGEMM ceiling (numpy float32 matmul " + next(iter(ceil.values())).get("shape", "") + "): "
                  + ", ".join(f"{t} thread(s) {c['gflops']:.1f} GFLOP/s" for t, c in ceil.items()), ""]
        lines += ceiling_drift(results)
    for name, reason in results.get("skipped_contenders", {}).items():
        lines.append(f"- skipped contender **{name}**: {reason}")
    lines += ["", "Ratios are time of the other / time of fastrnn (higher is better for fastrnn), median of "
              "per-repeat paired ratios with [q25-q75]. Times are medians per call with the IQR.", ""]

    targets = evaluate_targets(results)
    if targets:
        lines += ["## Targets (issue 4)", "",
                  "For a failed ratio target, *needs* is the fraction of the SGEMM ceiling fastrnn would have to "
                  "reach to meet it (the bound times the other's GFLOP/s, over the ceiling): near or above 100% "
                  "the bound asks for the large-GEMM speed itself; a few percent means the configuration is bound "
                  "by memory or latency, not arithmetic.", "",
                  "| target | config | threads | measured | bound | verdict | needs |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for t in targets:
            m = t["measured"]
            if m is None:
                ms = "-"
            elif t["kind"] == "fraction":
                ms = f"{100 * m:.0f}%"
            else:
                ms = f"{m:.2f}x"
            b = f"{100 * t['bound']:.0f}%" if t["kind"] == "fraction" else f"{t['bound']:.2g}x"
            note = f" ({t['note']})" if t["note"] else ""
            needs = t.get("needs_frac")
            needs = f"{100 * needs:.0f}%" if needs is not None and t["verdict"] == "FAIL" else ""
            lines.append(f"| {t['target']}{note} | {t['config']} | {t['threads']} | {ms} | {b} | **{t['verdict']}** "
                         f"| {needs} |")
        n_pass = sum(t["verdict"] == "PASS" for t in targets)
        n_fail = sum(t["verdict"] == "FAIL" for t in targets)
        lines += ["", f"{n_pass} PASS, {n_fail} FAIL, {len(targets) - n_pass - n_fail} N/A", ""]

    titles = {"step": "Service step (B=1, one step per call, state carried)",
              "seq": "Batch-1 sequence inference", "infer": "Batched inference",
              "train": "Training step (forward + backward + parameter gradients)"}
    for scenario, title in titles.items():
        blocks = [b for b in results["blocks"] if _cfg(b).scenario == scenario]
        if not blocks:
            continue
        lines += [f"## {title}", "", "| config | thr | contender | time/call | IQR | GFLOP/s | % ceiling | ratio vs fastrnn |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for block in blocks:
            for r in block_rows(results, block):
                frac = f"{100 * r['ceiling_frac']:.0f}%" if r["ceiling_frac"] is not None else "-"
                gf = f"{r['gflops']:.1f}" if r["gflops"] is not None else "-"
                lines.append(f"| {r['key']} | {r['threads']} | {r['contender']} | {fmt_time(r['time']['median'])} | "
                             f"{fmt_time(r['time']['iqr'])} | {gf} | {frac} | {_fmt_ratio(r['ratio'])} |")
            note = _missing(block)
            if note:
                lines.append(f"| {_cfg(block).key} | {block['threads']} | *not timed* | {note} | | | | |")
        lines.append("")

    conc = [b for b in results["blocks"] if _cfg(b).scenario == "concurrent"]
    if conc:
        lines += ["## Concurrent serving (BLAS / intra-op threads = 1; N Python threads, own state each)", "",
                  "| config | contender | calls/s, 1 thread | calls/s, 2 threads | scaling 2/1 | fastrnn/other at 2 |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for block in conc:
            for r in concurrent_rows(block):
                lines.append(f"| {r['key']} | {r['contender']} | {r['thr1']['median']:.0f} | {r['thr2']['median']:.0f} | "
                             f"{_fmt_ratio(r['scaling'])} | {_fmt_ratio(r['ratio2'])} |")
        lines.append("")

    mems = results.get("memory", [])
    if mems:
        lines += ["## Peak extra memory of a training step (fresh subprocess, 1 thread)", "",
                  "| config | contender | first two steps (RSS) | steady step (RSS) | tracemalloc peak |",
                  "| --- | --- | --- | --- | --- |"]
        for mem in mems:
            key = Config(**mem["config"]).key
            for name, m in mem["contenders"].items():
                if "skipped" in m:
                    lines.append(f"| {key} | {name} | skipped: {m['skipped']} | | |")
                else:
                    traced = "not visible" if name == "torch" else fmt_bytes(m["tracemalloc_peak_bytes"])
                    lines.append(f"| {key} | {name} | {fmt_bytes(m['first_bytes'])} | {fmt_bytes(m['steady_bytes'])} | "
                                 f"{traced} |")
        lines.append("")

    checks = []
    for block in results["blocks"]:
        for name, chk in block.get("checks", {}).items():
            if not chk.get("reference"):
                checks.append((chk.get("ok"), chk.get("error"), f"{_cfg(block).key} thr={block['threads']} {name}",
                               chk.get("message", "")))
    if checks:
        worst = max((c for c in checks if c[1] is not None), key=lambda c: c[1], default=None)
        bad = [c for c in checks if not c[0]]
        lines += ["## Correctness gate", "",
                  f"{len(checks)} checks against the reference ({results.get('reference', 'torch')}); "
                  f"{len(bad)} refused. Worst scaled error: "
                  + (f"{worst[1]:.1e} ({worst[2]})" if worst else "-"), ""]
        lines += [f"- refused: {c[2]}: {c[3]}" for c in bad]
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# chart and files
# ---------------------------------------------------------------------------------------------

def chart(results, path):
    """A PNG of fastrnn-vs-other ratios per configuration; returns the path, or None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:
        return None
    labels, series = [], {}
    blocks = [b for b in results["blocks"] if _cfg(b).scenario != "concurrent"]
    for block in blocks:
        rows = block_rows(results, block)
        if not any(r["ratio"] for r in rows):
            continue
        labels.append(f"{_cfg(block).key} t{block['threads']}")
        for r in rows:
            if r["contender"] != BASE:
                series.setdefault(r["contender"], {})[labels[-1]] = r["ratio"]["median"] if r["ratio"] else None
    if not labels:
        return None
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(labels) + 1.5))
    names = sorted(series)
    height = 0.8 / max(len(names), 1)
    for j, name in enumerate(names):
        ys = [i + j * height for i in range(len(labels))]
        vals = [series[name].get(label) or 0 for label in labels]
        ax.barh(ys, vals, height=height, label=name)
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(labels))])
    ax.set_yticklabels(labels, fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel("time of other / time of fastrnn (higher: fastrnn faster)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    try:
        with atomic_file.replacing(path) as f:
            fig.savefig(f, format="png", dpi=110)
    finally:
        plt.close(fig)
    return path


# A ceiling that moved by more than this between the start and the end of a run is reported as drift.
DRIFT = 0.10


def ceiling_drift(results):
    """Markdown lines for the ceiling measured again at the end of the run (nothing for results without
    it), with a warning when it moved by more than DRIFT at some thread count: the machine's speed changed
    during the run, so its times (and fractions of the ceiling) are not comparable with another run's,
    while the ratios, measured pair by pair, still are."""
    start, end = results.get("ceiling", {}), results.get("ceiling_end", {})
    both = [t for t in start if t in end]
    if not both:
        return []
    lines = ["SGEMM ceiling at the end of the run: "
             + ", ".join(f"{t} thread(s) {end[t]['gflops']:.1f} GFLOP/s" for t in both), ""]
    moved = [t for t in both if abs(end[t]["gflops"] / start[t]["gflops"] - 1) > DRIFT]
    if moved:
        lines += ["**The machine's speed changed during this run** (ceiling "
                  + ", ".join(f"{start[t]['gflops']:.1f} -> {end[t]['gflops']:.1f} GFLOP/s at {t} thread(s)"
                              for t in moved)
                  + "): compare its ratios with another run's, not its times or fractions of the ceiling.", ""]
    return lines


def write_all(results, outdir, name):
    """Write <name>.json, <name>.md and (with matplotlib) <name>.png into outdir; return the paths. Each file
    is replaced whole (fastrnn/atomic_file.py): an interrupted run leaves the results that were there."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = {"json": outdir / f"{name}.json", "md": outdir / f"{name}.md"}
    texts = {"json": json.dumps(results, indent=1, default=float) + "\n", "md": markdown(results) + "\n"}
    for kind, text in texts.items():
        with atomic_file.replacing(paths[kind], "w", encoding="utf-8") as f:
            f.write(text)
    try:
        png = chart(results, outdir / f"{name}.png")
    except Exception as exc:  # a plotting problem must not lose the tables
        print(f"chart not written: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        png = None
    if png is not None:
        paths["png"] = png
    return paths


def print_targets(results, file=sys.stdout):
    for t in evaluate_targets(results):
        m = t["measured"]
        ms = "-" if m is None else (f"{100 * m:5.0f}%" if t["kind"] == "fraction" else f"{m:6.2f}x")
        b = f"{100 * t['bound']:.0f}%" if t["kind"] == "fraction" else f"{t['bound']:.2g}x"
        note = f"  ({t['note']})" if t["note"] else ""
        print(f"{t['verdict']:4}  {ms:>7} (bound {b:>5})  {t['target']}  [{t['config']} thr={t['threads']}]{note}",
              file=file)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m bench.report RESULTS.json", file=sys.stderr)
        return 2
    path = Path(argv[0])
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        print(f"cannot read {path} as JSON: {exc}", file=sys.stderr)
        return 2
    missing = [k for k in ("meta", "ceiling", "blocks") if not isinstance(results, dict) or k not in results]
    if missing:
        print(f"{path} is not a results file of bench/run.py: it lacks {', '.join(missing)}", file=sys.stderr)
        return 2
    write_all(results, path.parent, path.stem)
    print_targets(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
