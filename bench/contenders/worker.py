"""One contender per process: the worker loop (child side) and its proxy (parent side).

Why: numpy's and scipy's OpenBLAS, PyTorch's OpenMP pool and ONNX Runtime's pool each keep worker
threads that busy-wait for a while after a call. With all contenders in one process on a 2-core
machine, a 2-thread call of the next contender in the interleaved order can wait milliseconds for
a core held by another library's spinning threads. A service runs one library per process, so the
suite does too: each contender lives in its own worker process for the whole run, which imports
only numpy, threadpoolctl and that contender's libraries.

Protocol: the parent writes a command to the worker's stdin and reads the reply from a pipe, each
message an 8-byte little-endian length followed by a pickle. Commands are strictly request/reply,
so an idle worker blocks in read() on its stdin (it does not spin). Replies are
``("ok", value)``, ``("skip", reason)`` or ``("error", text)``. The worker's own stdout is
redirected to stderr, so that a library that prints cannot corrupt the protocol.

    ("build", problem, threads)   set the thread limits (BLAS through threadpoolctl, torch's intra-op
                                  pool; ONNX Runtime takes the count in its session options), drop
                                  the previous runner and build this configuration's runner;
                                  returns {"label", "info"}
    ("outputs",)                  one call from the initial state, for the correctness gate
    ("time", n)                   n calls of the runner in a tight loop; returns the seconds
    ("prepare_concurrent", ns)    the per-thread workers of the concurrent-serving scenario
    ("time_worker", k)            k calls of one such worker in this thread; returns the seconds
    ("concurrent_wall", n, k)     n threads, k calls each, started together; returns the wall time
    ("quit",)

The parent never waits without a limit: every reply has a deadline, and a worker that misses it,
exits or raises is reported for its contender with the reason (see ``WorkerError``).
"""
from __future__ import annotations

import contextlib
import gc
import importlib
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEADER = struct.Struct("<Q")
STARTUP_TIMEOUT_S = 180.0
DEFAULT_TIMEOUT_S = 600.0


class WorkerError(RuntimeError):
    """The worker of a contender died, timed out or raised; the message says which and why."""


# ------------------------------------------------------------------------------------------------
# framing
# ------------------------------------------------------------------------------------------------

def _send(stream, obj):
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def _recv_blocking(stream):
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        return None  # the parent closed the pipe
    (size,) = HEADER.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


# ------------------------------------------------------------------------------------------------
# child side
# ------------------------------------------------------------------------------------------------

def _versions():
    out = {}
    for mod in ("numpy", "scipy", "torch", "onnxruntime", "onnx", "threadpoolctl", "fastrnn"):
        m = sys.modules.get(mod)
        if m is not None:
            out[mod] = getattr(m, "__version__", None)
    return out


def _thread_pools():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [f"{i.get('prefix')} {i.get('version')} ({i.get('user_api')}, {i.get('architecture')} kernels, "
            f"{os.path.basename(i.get('filepath', ''))})" for i in threadpool_info()]


class _Child:
    def __init__(self, module_name):
        self.module_name = module_name
        self.mod = None
        self.runner = None
        self.workers = None
        self.limits = contextlib.ExitStack()

    def hello(self):
        """Import the contender's module and libraries; ("ok", info) or ("skip", reason)."""
        try:
            self.mod = importlib.import_module(self.module_name)
        except Exception as exc:
            return ("skip", f"importing {self.module_name} failed: {exc.__class__.__name__}: {exc}")
        reason = self.mod.unavailable()
        if reason is not None:
            return ("skip", reason)
        self.mod.preload()
        return ("ok", {"pid": os.getpid(), "versions": _versions(), "thread_pools": _thread_pools()})

    def _set_threads(self, threads):
        from .base import thread_limits

        self.limits.close()
        self.limits = contextlib.ExitStack()
        self.limits.enter_context(thread_limits(threads))

    def handle(self, cmd):
        from .. import timing
        from .base import Skip

        op = cmd[0]
        try:
            if op == "build":
                _, problem, threads = cmd
                self.runner = self.workers = None
                gc.collect()
                self._set_threads(threads)
                self.runner = self.mod.build(problem, threads)
                return ("ok", {"label": self.runner.label, "info": dict(getattr(self.runner, "info", {}))})
            if self.runner is None and op != "quit":
                return ("error", f"no runner built before {op!r}")
            if op == "outputs":
                return ("ok", self.runner.outputs())
            if op == "time":
                n = cmd[1]
                run = self.runner.run
                t0 = time.perf_counter()
                run(n)
                return ("ok", time.perf_counter() - t0)
            if op == "prepare_concurrent":
                self.workers = {n: [self.runner.worker() for _ in range(n)] for n in cmd[1]}
                return ("ok", None)
            if op == "time_worker":
                work = self.workers[1][0]
                t0 = time.perf_counter()
                work(cmd[1])
                return ("ok", time.perf_counter() - t0)
            if op == "concurrent_wall":
                _, n, k = cmd
                return ("ok", timing.concurrent_wall(self.workers[n], k))
            return ("error", f"unknown command {op!r}")
        except Skip as exc:
            return ("skip", str(exc))
        except Exception as exc:
            tb = "".join(traceback.format_exception(exc, limit=-3))
            return ("error", f"{exc.__class__.__name__}: {exc}\n{tb}")


def main(argv=None):
    """``python -m bench.contenders.worker MODULE``: serve commands on stdin/stdout until "quit"."""
    argv = sys.argv[1:] if argv is None else argv
    module_name = argv[0]
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr, not into the protocol
    sys.stdout = sys.stderr
    proto_in = sys.stdin.buffer
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    child = _Child(module_name)
    _send(proto_out, child.hello())
    while True:
        cmd = _recv_blocking(proto_in)  # blocks: an idle worker does not spin
        if cmd is None or cmd[0] == "quit":
            break
        _send(proto_out, child.handle(cmd))
    return 0


# ------------------------------------------------------------------------------------------------
# parent side
# ------------------------------------------------------------------------------------------------

class SelfTimed:
    """``f(n)`` returns the seconds n calls took, measured inside the worker (bench.timing uses it as is)."""

    self_timed = True

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, n):
        return self.fn(n)


class ContenderProcess:
    """The parent's handle on one contender's worker process.

    ``start()`` launches it; ``ready()`` waits for its hello (None, or the reason it is unusable).
    ``build(problem, threads)`` returns a ``RemoteRunner`` (the same interface as an in-process
    runner, with ``run`` timed inside the worker), raises ``Skip`` for a scenario the contender does
    not cover and ``WorkerError`` when the worker raised, died or timed out. A dead worker is
    restarted at the next ``build`` (at most ``max_restarts`` times).
    """

    def __init__(self, name, module, timeout_s=DEFAULT_TIMEOUT_S, startup_timeout_s=STARTUP_TIMEOUT_S,
                 extra_path=(), max_restarts=2):
        self.NAME = self.name = name
        self.module = module
        self.timeout_s = timeout_s
        self.startup_timeout_s = startup_timeout_s
        self.extra_path = [str(p) for p in extra_path]
        self.max_restarts = max_restarts
        self.restarts = 0
        self.proc = None
        self.hello = None
        self.dead_reason = None
        self.generation = 0

    # -- process management ------------------------------------------------------------------

    def start(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *self.extra_path, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.contenders.worker", self.module],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, bufsize=0)
        self.dead_reason = None
        self.hello = None

    def ready(self):
        """Wait for the worker's hello; return None if usable, else the reason (the worker is stopped)."""
        try:
            status, value = self._recv(self.startup_timeout_s, "starting")
        except WorkerError as exc:
            return str(exc)
        if status != "ok":
            self.close()
            return value
        self.hello = value
        return None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None and self.dead_reason is None

    def _kill(self, reason):
        self.dead_reason = reason
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def close(self, timeout_s=10.0):
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                _send(proc.stdin, ("quit",))
            except (BrokenPipeError, OSError, ValueError):
                pass
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for f in (proc.stdin, proc.stdout):
            try:
                f.close()
            except OSError:
                pass

    # -- messages ----------------------------------------------------------------------------

    def _died(self, doing):
        code = self.proc.poll() if self.proc is not None else None
        if code is None:
            try:
                code = self.proc.wait(timeout=5)
            except Exception:
                code = "unknown"
        if isinstance(code, int) and code < 0:
            try:
                what = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                what = f"killed by signal {-code}"
        else:
            what = f"exit code {code}"
        reason = f"worker process of {self.name} died while {doing} ({what}; its stderr is above)"
        self.dead_reason = reason
        return WorkerError(reason)

    def _read_exact(self, n, deadline, doing):
        fd = self.proc.stdout.fileno()
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                reason = f"worker process of {self.name} gave no answer within {self.current_timeout:.0f} s while {doing}; killed it"
                self._kill(reason)
                raise WorkerError(reason)
            ready, _, _ = select.select([fd], [], [], left)  # blocks (no spinning) until data or the deadline
            if not ready:
                continue
            chunk = os.read(fd, min(n - len(buf), 1 << 20))
            if not chunk:
                raise self._died(doing)
            buf += chunk
        return bytes(buf)

    def _recv(self, timeout_s, doing):
        self.current_timeout = timeout_s
        deadline = time.monotonic() + timeout_s
        (size,) = HEADER.unpack(self._read_exact(HEADER.size, deadline, doing))
        return pickle.loads(self._read_exact(size, deadline, doing))

    def call(self, *cmd, timeout_s=None):
        """Send one command and return the reply's value; Skip / WorkerError otherwise."""
        from .base import Skip

        doing = f"running {cmd[0]!r}"
        if not self.alive():
            raise WorkerError(self.dead_reason or f"worker process of {self.name} is not running")
        try:
            _send(self.proc.stdin, cmd)
        except (BrokenPipeError, OSError):
            raise self._died(doing) from None
        status, value = self._recv(self.timeout_s if timeout_s is None else timeout_s, doing)
        if status == "ok":
            return value
        if status == "skip":
            raise Skip(value)
        raise WorkerError(f"{self.name} raised in its worker while {doing}: {value.strip()}")

    # -- the contender-module interface used by bench/run.py -----------------------------------

    def build(self, problem, threads):
        if not self.alive():
            if self.restarts >= self.max_restarts:
                raise WorkerError(f"{self.dead_reason or 'worker not running'}; not restarted "
                                  f"(already restarted {self.restarts} times)")
            self.restarts += 1
            self.close()
            self.start()
            reason = self.ready()
            if reason is not None:
                raise WorkerError(f"restarting the worker of {self.name} failed: {reason}")
        self.generation += 1
        meta = self.call("build", problem, threads)
        return RemoteRunner(self, self.generation, meta["label"], meta["info"])


class RemoteRunner:
    """A runner living in a worker process: ``run`` is timed inside the worker (``SelfTimed``)."""

    def __init__(self, proc, generation, label, info):
        self.proc = proc
        self.generation = generation
        self.label = label
        self.info = info
        self.run = SelfTimed(lambda n: self._call("time", n))

    def _call(self, *cmd):
        if self.proc.generation != self.generation:
            raise WorkerError(f"stale runner of {self.proc.name}: the worker has built another configuration since")
        return self.proc.call(*cmd)

    def outputs(self):
        return self._call("outputs")

    def concurrent(self, callers):
        """What the concurrent-serving block needs: one worker timed alone, and n workers together."""
        self._call("prepare_concurrent", tuple(callers))
        return ConcurrentDriver(one=SelfTimed(lambda k: self._call("time_worker", k)),
                                wall=lambda n, k: self._call("concurrent_wall", n, k))


class ConcurrentDriver:
    def __init__(self, one, wall):
        self.one = one    # k -> seconds of k calls of one worker (calibration)
        self.wall = wall  # (n, k) -> wall time of n threads running k calls each


def start_all(modules, **kwargs):
    """Start one worker per contender ({name: module path}) in parallel.

    Returns ({name: ContenderProcess} of the usable ones, {name: reason} of the skipped ones).
    """
    procs = {}
    for name, module in modules.items():
        p = ContenderProcess(name, module, **kwargs)
        p.start()
        procs[name] = p
    usable, skipped = {}, {}
    for name, p in procs.items():
        reason = p.ready()
        if reason is None:
            usable[name] = p
        else:
            skipped[name] = reason
            p.close()
    return usable, skipped


def cpu_ns(pids):
    """Nanoseconds on a CPU so far, summed over every thread of these processes (None without /proc)."""
    total = 0
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return None
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass  # a thread that just exited
    return total


def wait_quiet(pids, window_s=0.01, busy_frac=0.1, max_wait_s=0.5):
    """Sleep until these processes use less than ``busy_frac`` of a CPU over a ``window_s`` window.

    The window must span several scheduler ticks: a thread that spins without sleeping has its CPU time
    in /proc/<pid>/task/<tid>/schedstat brought up to date only at a tick (every 4 ms at 250 Hz), so a
    2 ms window saw no time at all in about half of its looks at a spinning process (measured).

    Idle library threads keep spinning for a while after a call (OpenBLAS about 100 ms, ONNX Runtime's
    pool tens of ms, PyTorch's OpenMP pool a few ms, as measured in bench/README.md); started before a
    sample of another contender, they would hold one of its cores. Returns the seconds waited (at most
    about ``max_wait_s``; returns early without /proc).
    """
    t0 = time.perf_counter()
    before = cpu_ns(pids)
    if before is None:
        return 0.0
    while True:
        time.sleep(window_s)
        now = cpu_ns(pids)
        if now is None or now - before < busy_frac * window_s * 1e9:
            break
        if time.perf_counter() - t0 >= max_wait_s:
            break
        before = now
    return time.perf_counter() - t0


def close_all(procs):
    for p in procs.values():
        p.close()


if __name__ == "__main__":
    sys.exit(main())
