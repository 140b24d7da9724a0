"""``xplearn bench``: the benchmark suite of the repository, as ``nox -s bench``.

The suite (``benchmarks/run.py`` and ``benchmarks/kmeans.py``) lives in the
repository, not in the installed package: it times xplearn against FAISS,
scikit-learn and fast-pytorch-kmeans, which xplearn does not depend on.  This
command finds it (``--suite``, else ``./benchmarks``, else the ``benchmarks``
folder beside an editable install's ``src``), checks that the peers are
installed, and runs both scripts, one after the other, in fresh processes with
the same options.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from .frameworks import UsageError

SCRIPTS = ("run.py", "kmeans.py")
# module imported → what pip installs (the `bench` dependency group).
NEEDS = {
    "torch": "torch",
    "faiss": "faiss-cpu",
    "fast_pytorch_kmeans": "fast-pytorch-kmeans",
    "matplotlib": "matplotlib",
    "psutil": "psutil",
    "threadpoolctl": "threadpoolctl",
}


def find_suite(suite: Path | None) -> Path:
    """Find the folder holding the benchmark scripts.

    Raises
    ------
    UsageError
        When none is found, saying where to get it.
    """
    if suite is not None:
        candidates = [suite]
    else:
        package = Path(__file__).resolve().parents[1]  # .../src/xplearn
        candidates = [Path.cwd() / "benchmarks", package.parents[1] / "benchmarks"]
    for folder in candidates:
        if all((folder / s).is_file() for s in SCRIPTS):
            return folder
    where = ", ".join(str(c) for c in candidates)
    msg = (
        f"the benchmark suite was not found (looked in {where}). It is part of "
        "the xplearn repository, not of the installed package: run "
        "`xplearn bench` from a clone (git clone https://github.com/xplearn/xplearn)"
        " or pass --suite PATH/TO/benchmarks"
    )
    raise UsageError(msg)


def missing_peers() -> list[str]:
    """List the benchmark's peers that are not installed, by their pip names."""
    return [pip for mod, pip in NEEDS.items() if importlib.util.find_spec(mod) is None]


def run(
    *,
    quick: bool,
    out: Path,
    suite: Path | None = None,
    repeats: int | None = None,
    threads: int | None = None,
) -> int:
    """Run both benchmark scripts; the first non-zero exit status, else 0."""
    folder = find_suite(suite)
    missing = missing_peers()
    if missing:
        msg = (
            f"the benchmarks need {', '.join(missing)}: "
            f"pip install {' '.join(missing)}  (or run `nox -s bench`, which "
            "installs them)"
        )
        raise UsageError(msg)
    options = ["--out", str(out)]
    if quick:
        options.append("--quick")
    if repeats is not None:
        options += ["--repeats", str(repeats)]
    if threads is not None:
        options += ["--threads", str(threads)]
    for script in SCRIPTS:
        cmd = [sys.executable, str(folder / script), *options]
        print(f"$ {' '.join(cmd)}", flush=True)
        status = subprocess.run(cmd, check=False).returncode
        if status:
            print(f"{script} exited with status {status}", file=sys.stderr)
            return status
    print(f"\ntables and plots in {out}: {', '.join(sorted(_written(out)))}")
    return 0


def _written(out: Path) -> list[str]:
    return [p.name for p in out.iterdir() if p.suffix in {".md", ".png"}]
