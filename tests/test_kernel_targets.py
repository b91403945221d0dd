"""The C kernels that have one version per x86-64 level (gemv.h, packed.h: AVX-512, AVX2 + FMA, the SSE2
baseline) are chosen by the loader for the widest level this processor runs, so the test suite alone
exercises only that one. Here tests/c/kernel_targets.c is compiled once per level with FR_SINGLE_TARGET
and run: every version against sums in double."""
import platform
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests" / "c" / "kernel_targets.c"
KERNELS = ROOT / "fastrnn" / "_kernels"
# -march level: the /proc/cpuinfo flags its code needs
LEVELS = {"x86-64": set(), "x86-64-v3": {"avx2", "fma"}, "x86-64-v4": {"avx512f", "avx512bw", "avx512dq", "avx512vl"}}


def _compiler():
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) or shutil.which("gcc") or shutil.which("cc")


def _cpu_flags():
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the per-level versions are x86-64's")
@pytest.mark.parametrize("level", sorted(LEVELS))
def test_each_x86_level_computes_the_products(level, tmp_path):
    cc = _compiler()
    if cc is None:
        pytest.skip("no C compiler")
    missing = LEVELS[level] - _cpu_flags()
    if missing:
        pytest.skip(f"this processor cannot run {level} code (no {', '.join(sorted(missing))})")
    exe = tmp_path / "kernel_targets"
    build = subprocess.run([cc, "-O2", "-fwrapv", f"-march={level}", "-DFR_SINGLE_TARGET", f"-I{KERNELS}",
                            str(SOURCE), "-o", str(exe), "-lm"], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    bad, checked = map(int, run.stdout.split())
    assert checked > 100_000
    assert (run.returncode, bad) == (0, 0), f"{bad} of {checked} elements wrong at {level}"
