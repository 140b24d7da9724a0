"""What the benchmark scripts share: fair imports and threads, interleaved
timing, peers timed in a process of their own, the results' header, and the
sanity check against ../shared/PERF-NOTES.md.

Importing this module loads no framework (numpy and the standard library
only): the scripts import torch, FAISS and scikit-learn through
:func:`import_peers`, which fixes their order.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

RESULTS = Path(__file__).parent / "results"
# A peer this much slower than its PERF-NOTES figure is being slowed down by
# the harness (thread pools, import order) or by a busy machine.
SLOWER_THAN_NOTES = 1.3
NOTES_THREADS = 2  # PERF-NOTES figures use both cores of the 2-vCPU machine
PEERS = ("torch", "faiss", "sklearn")  # the only import order that is fair
# The environment before any peer was imported (scikit-learn sets KMP_*
# variables at import): what the results record and what own processes get.
ENVIRON = dict(os.environ)
BUSY = 50  # other processes using this much of a core make timings unreliable


# --- command line --------------------------------------------------------------


def parser(description: str | None) -> argparse.ArgumentParser:
    """The options both scripts take (``nox -s bench -- ARGS`` passes to both)."""
    p = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="interleaved timed runs of each contender (default 3, at least 3; "
        "1 with --quick)",
    )
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke test: sizes about 10x smaller, one repeat, results in a "
        "temporary directory (or --out), never in benchmarks/results",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write the .md and .png files (default benchmarks/results; "
        "with --quick a new temporary directory)",
    )
    p.add_argument(
        "--tag",
        default="",
        help="suffix for the result files (e.g. 'skylakex' for a run with "
        "OPENBLAS_CORETYPE=SkylakeX set in the environment)",
    )
    p.add_argument(
        "--only",
        choices=["faiss", "sklearn"],
        help=argparse.SUPPRESS,  # internal: serve one peer in its own process
    )
    return p


def parse(p: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse, then settle --repeats and --out from --quick."""
    args = p.parse_args()
    if args.only:
        return args
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if not args.quick and args.repeats < 3:
        p.error("--repeats must be at least 3 for a median and a range (or --quick)")
    if args.out is None:
        args.out = (
            Path(tempfile.mkdtemp(prefix="xplearn-bench-")) if args.quick else RESULTS
        )
    elif args.quick and args.out.resolve() == RESULTS.resolve():
        p.error("--quick numbers do not belong in benchmarks/results")
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def start(
    description: str | None, job: Callable[..., Any]
) -> tuple[argparse.Namespace, Run, dict[str, int]] | None:
    """The common start of both scripts: options, peers, thread pools.

    ``--only PEER`` serves ``job`` for :class:`OwnProcess` and returns None.
    Otherwise torch is imported before FAISS and scikit-learn: they share a
    vendored OpenMP runtime, and loaded first it left scikit-learn on one
    core.  The scripts call this from ``main``, not at the top, so that the
    import sorter cannot reorder the imports; xplearn's estimators load
    scikit-learn, so the scripts import them after it.
    """
    args = parse(parser(description))
    if args.only:  # a peer alone, for OwnProcess
        serve(args.only, args.threads, job)
        return None
    run = Run(args)
    import_peers(args.threads, *PEERS)
    pools = thread_pools()
    print(f"threads: {format_pools(pools)}")
    return args, run, pools


# --- imports and threads -------------------------------------------------------


def import_peers(threads: int, *names: str) -> None:
    """Import the peers named, always torch, then FAISS, then scikit-learn.

    faiss-cpu and scikit-learn wheels ship the same vendored OpenMP runtime
    (``libgomp-e985bcbb.so.1.0.0``, loaded once for both); imported before
    torch, scikit-learn's brute search ran on one core (4.4 s instead of
    2.3 s, PERF-NOTES).  The imports live here, each in its own block, so that
    an import sorter cannot reorder them (at module level ruff's isort had
    moved ``faiss`` above ``torch``).  Callers import xplearn's estimators,
    which load scikit-learn, only after this.  Every thread pool loaded is
    then set to ``threads``.
    """
    unknown = set(names) - set(PEERS)
    if unknown:
        msg = f"unknown peers {sorted(unknown)}"
        raise ValueError(msg)
    if "torch" in names and "torch" not in sys.modules:
        early = [m for m in PEERS[1:] if m in sys.modules]
        if early:
            msg = f"{early} imported before torch: the timings would be unfair"
            raise RuntimeError(msg)
    if "torch" in names:
        import torch

        torch.set_num_threads(threads)
    if "faiss" in names:
        import faiss

        faiss.omp_set_num_threads(threads)
    if "sklearn" in names:
        # Loads its OpenMP runtime, scipy and scipy's BLAS, so that the
        # thread limits below reach them.
        import sklearn.neighbors  # noqa: F401 (imported for its side effects)
    limit_threads(threads)


def limit_threads(threads: int) -> None:
    """Set every BLAS and OpenMP pool loaded so far to ``threads``, for good."""
    from threadpoolctl import ThreadpoolController

    ThreadpoolController().limit(limits=threads)


# threadpoolctl's file paths → whose pool.  faiss-cpu and scikit-learn load
# one libgomp between them (same soname), from whichever wheel came first.
_OWNERS = (
    ("faiss_cpu.libs/libgomp", "FAISS+scikit-learn"),
    ("scikit_learn.libs/libgomp", "FAISS+scikit-learn"),
    ("faiss_cpu.libs", "FAISS"),
    ("scikit_learn.libs", "scikit-learn"),
    ("numpy.libs", "numpy"),
    ("scipy.libs", "scipy"),
    ("torch/lib", "torch"),
)


def thread_pools() -> dict[str, int]:
    """Threads of every pool loaded in this process, named by whose it is."""
    from threadpoolctl import threadpool_info

    pools: dict[str, int] = {}
    if "torch" in sys.modules:
        pools["torch intra-op"] = sys.modules["torch"].get_num_threads()
    if "faiss" in sys.modules:
        pools["FAISS omp_get_max_threads"] = sys.modules["faiss"].omp_get_max_threads()
    for pool in threadpool_info():
        path = pool["filepath"]
        owner = next((who for key, who in _OWNERS if key in path), Path(path).name)
        pools[f"{owner} {pool['internal_api']}"] = int(pool["num_threads"])
    return pools


def threads_of(pools: dict[str, int], keys: tuple[str, ...]) -> str:
    """The thread count a contender runs with: its pools, one number if equal."""
    found = {k: pools[k] for k in keys if k in pools}
    if not found:
        return "?"
    if len(set(found.values())) == 1:
        return str(next(iter(found.values())))
    return ", ".join(f"{k} {v}" for k, v in found.items())


def format_pools(pools: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in pools.items())


def own_process_line(alone: dict[str, OwnProcess]) -> str:
    """The results' line on the peers' own processes: thread pools, kernels."""
    each = "; ".join(f"{c.peer} alone: {format_pools(c.pools)}" for c in alone.values())
    kernels = {c.kernel for c in alone.values() if c.kernel}
    kernel = ""
    if kernels:
        kernel = (
            f" They run with OPENBLAS_CORETYPE={', '.join(sorted(kernels))}: the core"
            " the newest OpenBLAS loaded here detects (an older OpenBLAS bundled"
            " with a peer may detect this CPU worse: faiss-cpu 1.15.1's 0.3.15"
            " picks Zen kernels on a Zen 4, where its search took 2.2 s against"
            " 1.2 s with Haswell or SkylakeX kernels)."
        )
    return f"- **Own processes** (threads): {each}.{kernel}"


def peer_kernel() -> str | None:
    """The OpenBLAS core for the peers' own processes, or None.

    None where the environment names one (the caller's choice stands);
    else the architecture the newest OpenBLAS in this process detected.
    """
    if "OPENBLAS_CORETYPE" in ENVIRON:
        return None
    from threadpoolctl import threadpool_info

    found = [
        (tuple(int(p) for p in re.findall(r"\d+", str(i.get("version")))[:3]), i)
        for i in threadpool_info()
        if i.get("internal_api") == "openblas" and i.get("architecture")
    ]
    if not found:
        return None
    return str(max(found, key=lambda f: f[0])[1]["architecture"])


# --- timing --------------------------------------------------------------------


@dataclass
class Timing:
    """Wall and process-CPU seconds of each timed run of one contender."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    where: str = "this process"
    pools: dict[str, int] = field(default_factory=dict)  # of the process it ran in

    def add(self, wall: float, cpu: float) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cores(self) -> float:
        """Median CPU time over wall time: how many cores it kept busy."""
        return statistics.median(
            c / w for c, w in zip(self.cpu, self.wall, strict=True)
        )

    def span(self, scale: float = 1.0, fmt: str = ".3f") -> str:
        """The range over runs, ``min–max``."""
        return f"{min(self.wall) * scale:{fmt}}–{max(self.wall) * scale:{fmt}}"

    def runs(self, scale: float = 1.0, fmt: str = ".3f") -> str:
        return ", ".join(f"{t * scale:{fmt}}" for t in self.wall)


def measure(f: Callable[[], Any], inner: int = 1) -> tuple[float, float, Any]:
    """Wall and CPU seconds per call, averaged over ``inner`` calls; last result."""
    out = None
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(inner):
        out = f()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall / inner, cpu / inner, out


def timer(f: Callable[[], Any], calls: int = 1) -> Callable[[], tuple[float, float]]:
    """A contender for :func:`interleave`: ``f`` timed in this process."""

    def run() -> tuple[float, float]:
        wall, cpu, _ = measure(f, calls)
        return wall, cpu

    return run


def interleave(
    contenders: dict[str, Callable[[], tuple[float, float]]], repeats: int
) -> dict[str, Timing]:
    """Time warm contenders round after round (A B C, A B C, …).

    Each contender is a callable that runs its job once and returns the wall
    and CPU seconds, measured where it ran (this process or its own).
    """
    times = {name: Timing() for name in contenders}
    for _ in range(repeats):
        for name, run in contenders.items():
            times[name].add(*run())
    return times


def pick_faster(
    times: dict[str, Timing], who: str, alone: OwnProcess, pools: dict[str, int]
) -> None:
    """Keep the faster of ``who``'s figures here and in its own process.

    ``times[who]`` (this process, thread pools ``pools``) and
    ``times[who + " (own process)"]`` become one entry under ``who``, marked
    with where it ran and the other figure's median.
    """
    inside, own = times[who], times.pop(f"{who} (own process)")
    inside.where, inside.pools = "this process", pools
    own.where, own.pools = "own process", alone.pools
    best, other = (own, inside) if own.median < inside.median else (inside, own)
    best.where += f" (other: {other.median:.3g} s)"
    times[who] = best


# --- a peer in a process of its own --------------------------------------------


class OwnProcess:
    """FAISS or scikit-learn in a process of its own, kept for the whole run.

    It is the calling script run again with ``--only PEER``: it imports numpy
    and that peer alone, sets the same thread count, and answers one JSON
    request a line on stdin: ``setup`` loads a job's arrays (handed over as
    .npy files, so the data are the same bytes), builds the job with the
    script's own code and warms it up; ``time`` runs it once and returns the
    wall and CPU seconds measured in the child.  Its runs can thus be
    interleaved with the in-process ones.
    """

    def __init__(self, script: str, peer: str, threads: int) -> None:
        self.peer = peer
        self._dir = tempfile.TemporaryDirectory(prefix=f"xplearn-bench-{peer}-")
        cmd = [sys.executable, script, "--only", peer, "--threads", str(threads)]
        self.kernel = peer_kernel()
        env = dict(ENVIRON)
        if self.kernel:
            env["OPENBLAS_CORETYPE"] = self.kernel
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.pools: dict[str, int] = self._ask(op="hello")["pools"]

    def _ask(self, **request: Any) -> dict[str, Any]:
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            msg = f"--only {self.peer} exited ({self._proc.wait()}); see its stderr"
            raise RuntimeError(msg)
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            msg = f"--only {self.peer}: {reply['error']}"
            raise RuntimeError(msg)
        return reply

    def setup(self, name: str, job: dict[str, Any], **arrays: np.ndarray) -> Any:
        """Build and warm up job ``name``; return what the job reported."""
        files = {}
        for key, a in arrays.items():
            files[key] = str(Path(self._dir.name) / f"{name}-{key}.npy")
            np.save(files[key], a)
        return self._ask(op="setup", name=name, job=job, arrays=files)["info"]

    def timer(self, name: str) -> Callable[[], tuple[float, float]]:
        """A contender for :func:`interleave`: one run of job ``name``."""

        def run() -> tuple[float, float]:
            reply = self._ask(op="time", name=name)
            return reply["wall"], reply["cpu"]

        return run

    def result(self, name: str) -> Any:
        """What the last run of job ``name`` returned (JSON-able)."""
        return self._ask(op="result", name=name)["result"]

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        self._proc.wait(timeout=60)
        self._dir.cleanup()

    def __enter__(self) -> OwnProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(
    peer: str, threads: int, build: Callable[[str, dict[str, Any], dict], Any]
) -> None:
    """The child's side of :class:`OwnProcess` (``--only PEER``).

    ``build(peer, job, arrays)`` returns ``(run, info, digest)``: the warm
    job, what to report about it (JSON-able), and a function turning a
    result of ``run()`` into JSON for ``result`` requests, outside the timing.
    Anything the libraries print goes to stderr; replies go to the real stdout.
    """
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    import_peers(threads, peer)
    jobs: dict[str, Any] = {}
    last: dict[str, Any] = {}
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["op"] == "hello":
                reply: dict[str, Any] = {"pools": thread_pools()}
            elif request["op"] == "setup":
                arrays = {k: np.load(v) for k, v in request["arrays"].items()}
                run, info, digest = build(peer, request["job"], arrays)
                limit_threads(threads)  # pools the job may have loaded
                jobs[request["name"]] = (run, digest)
                reply = {"info": info}
            elif request["op"] == "time":
                wall, cpu, last[request["name"]] = measure(jobs[request["name"]][0])
                reply = {"wall": wall, "cpu": cpu}
            else:  # "result"
                digest = jobs[request["name"]][1]
                reply = {"result": digest(last[request["name"]])}
        except Exception:  # noqa: BLE001 (handed to the parent, which raises)
            reply = {"error": traceback.format_exc()}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


# --- what the results say about the run ----------------------------------------


def _bf16_line() -> str:
    """Whether xplearn's exact bfloat16 screen runs here (it decides by the CPU)."""
    try:
        from xplearn.neighbors._screen import bf16_is_fast

        fast = bf16_is_fast()
    except ImportError:  # (torch not installed)
        return "xplearn's bfloat16 screen: off (no torch)"
    if fast:
        return (
            "bfloat16 products fast here (AVX512-BF16 or AMX): xplearn's exact "
            "bfloat16 screen on"
        )
    return (
        "no fast bfloat16 products here (neither AVX512-BF16 nor AMX): "
        "xplearn's bfloat16 screen off (float32 products only)"
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory() -> str:
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return "? GiB"
    return f"{kb / 2**20:.0f} GiB"


def busy_processes(seconds: float = 0.5) -> list[tuple[float, str]] | None:
    """Other processes using CPU now, (percent of a core, command), busiest first.

    None without psutil (the bench extras install it).
    """
    try:
        import psutil
    except ImportError:
        return None
    me = os.getpid()
    procs = [p for p in psutil.process_iter(["name", "cmdline"]) if p.pid != me]
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.cpu_percent(None)
    time.sleep(seconds)
    busy = []
    for p in procs:
        try:
            pct = p.cpu_percent(None)
        except psutil.Error:
            continue
        if pct >= 10:
            words = p.info["cmdline"] or [p.info["name"]]
            # the program and its first arguments, enough to tell what it is
            what = " ".join(Path(words[0]).name.split() + words[1:4])[:60]
            busy.append((pct, what))
    return sorted(busy, reverse=True)


def _thread_environment() -> str:
    """OPENBLAS_CORETYPE and friends: they change kernels and thread pools."""
    prefixes = ("OPENBLAS_", "OMP_", "GOMP_", "KMP_", "MKL_", "OPENMP_")
    found = sorted(f"{k}={v}" for k, v in ENVIRON.items() if k.startswith(prefixes))
    return ", ".join(found) or "none"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


@dataclass
class Run:
    """The facts every results file states about the run."""

    args: argparse.Namespace
    started: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M %Z"))
    load_start: float = field(default_factory=lambda: os.getloadavg()[0])
    busy_start: list[tuple[float, str]] | None = field(default_factory=busy_processes)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        busy = sum(pct for pct, _ in self.busy_start or [])
        if busy >= BUSY:
            self.warn(
                f"the machine is busy: other processes used {busy:.0f}% of a core "
                f"at the start ({self.busy()}); with {self.args.threads} threads on "
                f"{os.cpu_count()} CPUs the multithreaded contenders are slowed "
                "unevenly (torch most: its threads wait at every barrier)."
            )

    def busy(self) -> str:
        if self.busy_start is None:
            return "unknown (psutil not installed)"
        return ", ".join(f"{w} {pct:.0f}%" for pct, w in self.busy_start[:6]) or "none"

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)
        print(f"\n!!!!! WARNING: {msg}\n", flush=True)

    def header(self, pools: dict[str, int]) -> list[str]:
        versions = ", ".join(
            f"{d} {_version(d)}"
            for d in (
                "xplearn",
                "torch",
                "numpy",
                "scipy",
                "faiss-cpu",
                "scikit-learn",
                "fast-pytorch-kmeans",
                "threadpoolctl",
            )
        )
        a = self.args
        return [
            f"- **Date**: {self.started} (finished {time.strftime('%H:%M')}).",
            (
                f"- **Machine**: {_cpu_model()}, {os.cpu_count()} CPUs, {_memory()}, "
                f"{platform.system()} {platform.release()}, Python "
                f"{platform.python_version()}; thread and kernel settings in the "
                f"environment: {_thread_environment()}; {_bf16_line()}."
            ),
            (
                f"- **Load**: average {self.load_start:.2f} at the start, "
                f"{os.getloadavg()[0]:.2f} at the end; other processes busy at the "
                f"start: {self.busy()}."
            ),
            f"- **Versions**: {versions}.",
            (
                f"- **Threads**: {a.threads} requested for every contender; pools in "
                f"this process: {format_pools(pools)}."
            ),
            (
                f"- **Repeats**: each contender warmed up, then {a.repeats} timed "
                f"run{'s' if a.repeats > 1 else ''} interleaved across the "
                "contenders (A B C, A B C, …); the tables give the median and the "
                "range (min–max) over the runs."
                + (" **Quick mode: sizes ~10× smaller.**" if a.quick else "")
            ),
        ]

    def check(
        self, who: str, problem: str, seconds: float, notes: dict[str, float]
    ) -> None:
        """Warn if ``who`` is much slower at ``problem`` than PERF-NOTES says."""
        ref = notes.get(problem)
        if ref is None or self.args.quick or self.args.threads != NOTES_THREADS:
            return
        ratio = seconds / ref
        if ratio > SLOWER_THAN_NOTES:
            msg = (
                f"{who} at {problem}: {seconds:.4g} s is {ratio:.2f}× its PERF-NOTES "
                f"figure ({ref:.4g} s); the harness (threads, import order) or the "
                "load on the machine is slowing it: do not quote its ratios."
            )
            self.warn(msg)

    def unchecked(self) -> str:
        """Why the PERF-NOTES check was skipped, if it was."""
        if self.args.quick:
            return " Not checked: quick mode."
        if self.args.threads != NOTES_THREADS:
            return f" Not checked: {self.args.threads} threads."
        return ""

    def warning_lines(self) -> list[str]:
        if not self.warnings:
            return []
        return ["", *(f"> **Warning**: {w}" for w in self.warnings)]
