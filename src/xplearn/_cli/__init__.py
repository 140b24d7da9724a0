"""The command line: ``xplearn`` (console script) and ``python -m xplearn``.

Subcommands ``info`` (the default), ``demo`` and ``bench``; each module here
holds one, :mod:`.frameworks` what they share.  Frameworks are imported only
by the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .frameworks import UsageError, installed_backends, select_backends, version

SUBCOMMANDS = ("info", "demo", "bench")

_DESCRIPTION = """\
xplearn: nearest neighbours and KMeans on any array framework, in that framework.

  xplearn info    the frameworks and devices found, and a round-trip and k-NN
                  check on each (the default when no subcommand is given)
  xplearn demo    KNeighborsClassifier and KMeans on every framework and device,
                  checked against numpy float64 and timed against scikit-learn
  xplearn bench   the benchmark suite against FAISS and scikit-learn (from a
                  clone of the repository)

Exit status: 0 when every check agrees, 1 when one fails, 2 for a usage error.
"""

_BACKENDS_HELP = (
    "comma-separated frameworks: numpy, array_api_strict, torch, jax, dask, "
    "tensorflow, cupy (default: every installed one)"
)


def _prog() -> str:
    """``python -m xplearn`` when run so, else ``xplearn`` (the console script)."""
    return "python -m xplearn" if Path(sys.argv[0]).name == "__main__.py" else "xplearn"


def parser() -> argparse.ArgumentParser:
    """Build the parser, with one subparser per subcommand."""
    prog = _prog()
    top = argparse.ArgumentParser(
        prog=prog,
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"Run '{prog} SUBCOMMAND --help' for a subcommand's options.",
    )
    top.add_argument("--version", action="store_true", help="print the version")
    sub = top.add_subparsers(dest="command", metavar="{info,demo,bench}")

    info = sub.add_parser(
        "info",
        help="frameworks and devices found, with a check on each (default)",
        description=(
            "For every installed framework, build an array on each of its "
            "devices, send it through xplearn and back (namespace, device, "
            "dtype and values must survive), and run an exact 5-NN search of "
            "500 digits there, checked against numpy float64."
        ),
    )
    info.add_argument("--backends", default=None, help=_BACKENDS_HELP)

    demo = sub.add_parser(
        "demo",
        help="KNN and KMeans on every framework and device, against numpy float64",
        description=(
            "Fit KNeighborsClassifier and KMeans on digits and on 200,000 x 32 "
            "generated blobs (float32) on every framework and device found; "
            "print the score, the agreement with xplearn on numpy float64, the "
            "time and the speed-up against scikit-learn; plot the timings. "
            "One run each: a demonstration; xplearn bench measures. "
            "Exits 1 when any framework disagrees."
        ),
    )
    demo.add_argument("--backends", default=None, help=_BACKENDS_HELP)
    demo.add_argument(
        "--quick",
        action="store_true",
        help="blobs of 20,000 rows instead of 200,000 (seconds, not a minute)",
    )
    demo.add_argument(
        "--png",
        type=Path,
        default=Path("xplearn-demo.png"),
        help="where to write the plot of the timings (default: %(default)s)",
    )
    demo.add_argument("--no-plot", action="store_true", help="write no PNG")

    bench = sub.add_parser(
        "bench",
        help="the benchmark suite against FAISS and scikit-learn (as nox -s bench)",
        description=(
            "Run benchmarks/run.py (exact k-NN, KNeighborsClassifier) and "
            "benchmarks/kmeans.py (KMeans) of an xplearn clone, writing their "
            "tables (.md) and plots (.png) to --out. Needs faiss-cpu, "
            "fast-pytorch-kmeans, matplotlib, psutil and torch. Timings need "
            "an idle machine; --quick is a smoke test."
        ),
    )
    bench.add_argument(
        "--out",
        type=Path,
        default=Path("xplearn-bench"),
        help="folder for the tables and plots (default: %(default)s)",
    )
    bench.add_argument(
        "--quick",
        action="store_true",
        help="sizes about 10x smaller and one repeat: a smoke test, not figures",
    )
    bench.add_argument("--repeats", type=int, default=None, help="timed runs (>= 3)")
    bench.add_argument("--threads", type=int, default=None, help="threads per peer")
    bench.add_argument(
        "--suite",
        type=Path,
        default=None,
        help="the benchmarks folder (default: ./benchmarks, or the one beside src/)",
    )
    return top


def _with_default_command(argv: list[str]) -> list[str]:
    """``info`` when no subcommand is named (``xplearn --backends numpy``)."""
    if any(a in {"-h", "--help", "--version"} for a in argv[:1]):
        return argv
    if not argv or argv[0] not in SUBCOMMANDS:
        return ["info", *argv]
    return argv


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``xplearn`` and ``python -m xplearn``; the exit status."""
    args = parser().parse_args(
        _with_default_command(sys.argv[1:] if argv is None else argv)
    )
    import xplearn

    if args.version:
        print(xplearn.__version__)
        return 0
    try:
        if args.command == "bench":
            from . import bench

            return bench.run(
                quick=args.quick,
                out=args.out,
                suite=args.suite,
                repeats=args.repeats,
                threads=args.threads,
            )
        backends = select_backends(args.backends)
    except UsageError as exc:
        print(f"{_prog()} {args.command}: error: {exc}", file=sys.stderr)
        return 2
    found = installed_backends()
    print(f"xplearn {xplearn.__version__} on Python {sys.version.split()[0]}")
    print("frameworks found: " + ", ".join(f"{b} {version(b)}" for b in found))
    if args.command == "demo":
        from . import demo

        return demo.run(
            backends, quick=args.quick, png=None if args.no_plot else args.png
        )
    from . import info

    return info.run(backends)
