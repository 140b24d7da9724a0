"""KMeans on a 2-worker dask.distributed LocalCluster: xplearn against dask-ml.

Issue 14's benchmark, data generated blockwise on the workers (never on the
client) and persisted there, k=64:

(a) per iteration: 10M × 32 float32, 10 Lloyd iterations (``tol=0``) from
    one given set of centres for both libraries, and from each library's
    default init (xplearn: greedy k-means++ over the blocks; dask-ml:
    k-means‖), whose cost is the total minus 10 iterations;
(b) to convergence: the same from each default init and from one given
    init, each library's default ``tol=1e-4`` and ``max_iter=300`` (the cap
    is reported: iterations reached and whether it stopped before it), on
    ``--conv-n`` (default 1M) × 32 float32 points in k=64 Gaussian blobs
    (unit noise around centres drawn with standard deviation 3), made on
    the workers too.  Standard normal data has no clusters and does not
    converge in 300 iterations (xplearn on numpy, 250k and 1M points, both
    inits: 300 of 300), and 10M points take 1.4–2.5 s an iteration: runs to
    convergence on them do not fit a session on 2 cores;
(c) peak memory (RSS) per worker, sampled every 0.2 s on the workers.

Inertia: both libraries' ``inertia_`` are printed, but dask-ml's is not the
sum of squared distances (its last E-step calls
``pairwise_distances_argmin_min`` without ``squared=True``: a sum of
Euclidean distances, or, when it stops with a shift under 1e-7, the squared
distances to the centres before the last update).  The column compared is
recomputed the same way for both, in float64 on the workers, from each
fitted ``cluster_centers_``: the sum over points of the squared distance to
the nearest centre.

Runs are interleaved (each repeat runs every configuration once) and the
table gives the median and the range (min–max) of the repeats.

dask-ml lives in an environment of its own (it pins its own scikit-learn and
dask ranges); without it the dask-ml rows are left out.  The full run needs
a quiet machine with ~8 GiB free::

    python -m venv /tmp/bench-daskml && /tmp/bench-daskml/bin/pip install \\
        dask-ml "distributed" -e .
    PYTHONPATH=src flock /work/bench.lock \\
        /tmp/bench-daskml/bin/python benchmarks/dask_kmeans.py   # full
    python benchmarks/dask_kmeans.py --quick                     # smoke test

Writes ``benchmarks/results/dask_kmeans.md`` (``--quick``: a temporary dir).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def _peak_rss(client: Any, stop: threading.Event, peaks: dict[str, float]) -> None:
    def rss() -> float:
        import psutil

        return float(psutil.Process(os.getpid()).memory_info().rss)

    while not stop.is_set():
        for w, v in client.run(rss).items():
            peaks[w] = max(peaks.get(w, 0.0), v)
        stop.wait(0.2)


def _timed(fn: Any, client: Any) -> tuple[float, Any, float]:
    peaks: dict[str, float] = {}
    stop = threading.Event()
    t = threading.Thread(target=_peak_rss, args=(client, stop, peaks))
    t.start()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    stop.set()
    t.join()
    return dt, out, max(peaks.values()) / 2**20


def _block_inertia(b: Any, C: Any) -> Any:
    """Sum over the rows of ``b`` of the squared distance to the nearest centre."""
    b = b.astype(np.float64)
    sq = (b * b).sum(axis=1)[:, None] - 2.0 * (b @ C.T) + (C * C).sum(axis=1)[None, :]
    return np.array([[np.maximum(sq.min(axis=1), 0.0).sum()]])


def inertia(X: Any, centers: Any) -> float:
    """The same inertia for both libraries, from the final centres (float64)."""
    import dask.array as da

    C = np.asarray(centers, dtype=np.float64)
    parts = da.map_blocks(
        _block_inertia, X, C, chunks=(1, 1), dtype=np.float64, meta=np.zeros((0, 0))
    )
    return float(parts.sum().compute())


def _add_centres(Z: Any, labels: Any, C: Any) -> Any:
    return (Z + C[labels[:, 0]]).astype(np.float32)


def blobs(rows: int, d: int, k: int, seed: int) -> Any:
    """``rows`` × ``d`` float32 in ``k`` Gaussian blobs, made on the workers."""
    import dask.array as da

    chunk = max(1, rows // 40)
    rng = da.random.default_rng(seed)
    noise = rng.standard_normal((rows, d), chunks=(chunk, d))
    labels = rng.integers(0, k, (rows, 1), chunks=(chunk, 1))
    C = np.random.default_rng(seed + 1).normal(scale=3.0, size=(k, d))
    return da.map_blocks(_add_centres, noise, labels, C, dtype=np.float32).persist()


def _centers(est: Any) -> Any:
    import xplearn

    return xplearn.to_numpy(est.cluster_centers_)


def _fmt(values: list[float], spec: str) -> str:
    med = statistics.median(values)
    if len(values) == 1:
        return format(med, spec)
    return (
        f"{format(med, spec)} ({format(min(values), spec)}–{format(max(values), spec)})"
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--init-repeats",
        type=int,
        default=1,
        help="repeats of the 10M default-init rows (a minute or two each)",
    )
    p.add_argument("--conv-n", type=int, default=1_000_000)
    p.add_argument("--max-iter", type=int, default=300)
    p.add_argument(
        "--skip-converged", action="store_true", help="leave out the (b) rows"
    )
    args = p.parse_args()
    import dask
    import dask.array as da
    from distributed import Client, LocalCluster

    from xplearn.cluster import KMeans

    n, d, k = (20_000, 8, 4) if args.quick else (10_000_000, 32, 64)
    conv_n = 5_000 if args.quick else args.conv_n
    try:
        import dask_ml.cluster as dml
    except ImportError:
        dml = None
    # name -> list of (seconds, n_iter, own inertia, same inertia, peak MiB)
    results: dict[str, list[tuple[float, int, float, float, float]]] = {}
    meta: dict[str, tuple[str, int, int]] = {}  # name -> (group, rows, max_iter)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):

        def data(rows: int, seed: int) -> Any:
            return (
                da.random.default_rng(seed)
                .standard_normal((rows, d), chunks=(max(1, rows // 40), d))
                .astype(np.float32)
                .persist()
            )

        X = data(n, 0)
        Xc = blobs(conv_n, d, k, 1) if not args.skip_converged else None
        dask.distributed.wait([X] + ([Xc] if Xc is not None else []))
        init = X[:k].compute()
        init_c = Xc[:k].compute() if Xc is not None else None
        it = args.iters

        def ours(Z: Any, **kw: Any) -> Callable[[], Any]:
            return lambda: KMeans(k, n_init=1, random_state=0, **kw).fit(Z)

        def theirs(Z: Any, **kw: Any) -> Callable[[], Any]:
            assert dml is not None
            return lambda: dml.KMeans(k, random_state=0, **kw).fit(Z)

        # (name, group, data, rows, max_iter, fit, repeats)
        runs: list[tuple[str, str, Any, int, int, Callable[[], Any], int]] = [
            (
                f"xplearn, {it} it, given init",
                "a",
                X,
                n,
                it,
                ours(X, init=init, max_iter=it, tol=0),
                args.repeats,
            ),
        ]
        if dml is not None:
            runs.append(
                (
                    f"dask-ml, {it} it, given init",
                    "a",
                    X,
                    n,
                    it,
                    theirs(X, init=init, max_iter=it, tol=0),
                    args.repeats,
                )
            )
        if Xc is not None:
            mi = args.max_iter
            runs.append(
                (
                    "xplearn, to convergence, given init",
                    "b",
                    Xc,
                    conv_n,
                    mi,
                    ours(Xc, init=init_c, max_iter=mi),
                    args.repeats,
                )
            )
            runs.append(
                (
                    "xplearn, to convergence, k-means++",
                    "b",
                    Xc,
                    conv_n,
                    mi,
                    ours(Xc, max_iter=mi),
                    args.repeats,
                )
            )
            if dml is not None:
                runs.append(
                    (
                        "dask-ml, to convergence, given init",
                        "b",
                        Xc,
                        conv_n,
                        mi,
                        theirs(Xc, init=init_c, max_iter=mi),
                        args.repeats,
                    )
                )
                runs.append(
                    (
                        "dask-ml, to convergence, k-means‖",
                        "b",
                        Xc,
                        conv_n,
                        mi,
                        theirs(Xc, max_iter=mi),
                        args.repeats,
                    )
                )
        runs.append(
            (
                f"xplearn, {it} it, k-means++",
                "a",
                X,
                n,
                it,
                ours(X, max_iter=it, tol=0),
                args.init_repeats,
            )
        )
        if dml is not None:
            runs.append(
                (
                    f"dask-ml, {it} it, k-means‖",
                    "a",
                    X,
                    n,
                    it,
                    theirs(X, max_iter=it, tol=0),
                    args.init_repeats,
                )
            )
        for rep in range(max(args.repeats, args.init_repeats)):
            for name, group, Z, rows, mi, fn, reps in runs:
                if rep >= reps:
                    continue
                dt, est, peak = _timed(fn, client)
                same = inertia(Z, _centers(est))
                got = (dt, int(est.n_iter_), float(est.inertia_), same, peak)
                results.setdefault(name, []).append(got)
                meta[name] = (group, rows, mi)
                print(f"[{rep + 1}] {name}: {got}", flush=True)
    ended = time.strftime("%H:%M UTC", time.gmtime())
    out = Path(tempfile.mkdtemp()) if args.quick else Path(__file__).parent / "results"
    (out / "dask_kmeans.md").write_text(
        _report(results, meta, n, d, k, conv_n, f"{started}–{ended}", args)
    )
    print("wrote", out / "dask_kmeans.md")


def _report(
    results: dict[str, list[tuple[float, int, float, float, float]]],
    meta: dict[str, tuple[str, int, int]],
    n: int,
    d: int,
    k: int,
    conv_n: int,
    when: str,
    args: Any,
) -> str:
    head = (
        "| run | repeats | seconds | n_iter | converged | s / iteration "
        "| inertia (same formula) | own `inertia_` | peak RSS per worker (MiB) |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    )
    lines = [
        (
            f"# KMeans on a 2-worker LocalCluster, k={k}, float32 data made on the "
            "workers\n"
        ),
        (
            f"Run {when}; `benchmarks/dask_kmeans.py` "
            f"(--repeats {args.repeats} --init-repeats {args.init_repeats} "
            f"--conv-n {conv_n} --max-iter {args.max_iter}).  Each cell: the "
            "median of the repeats and their range (min–max).  Times include "
            "the initialisation; s / iteration = total / n_iter.  'inertia (same "
            "formula)': the sum of squared distances to the nearest final centre, "
            "recomputed in float64 for both libraries (dask-ml's own `inertia_` "
            "is a sum of unsquared distances).  Converged: stopped before "
            "`max_iter`.\n"
        ),
    ]
    for group, title in (
        ("a", f"## Per iteration: {n} × {d}, {args.iters} iterations, tol=0\n"),
        (
            "b",
            (
                f"## To convergence: {conv_n} × {d} in {k} blobs, tol=1e-4 (each "
                f"library's rule), max_iter={args.max_iter}\n"
            ),
        ),
    ):
        names = [m for m in results if meta[m][0] == group]
        if not names:
            continue
        rows = []
        for name in names:
            r = results[name]
            secs = [x[0] for x in r]
            iters = [x[1] for x in r]
            per = [x[0] / max(x[1], 1) for x in r]
            conv = {x[1] < meta[name][2] for x in r}
            conv_s = (
                "—"
                if group == "a"
                else (
                    "yes"
                    if conv == {True}
                    else "no (cap)"
                    if conv == {False}
                    else "mixed"
                )
            )
            it_s = (
                str(iters[0]) if len(set(iters)) == 1 else f"{min(iters)}–{max(iters)}"
            )
            rows.append(
                f"| {name} | {len(r)} | {_fmt(secs, '.2f')} | {it_s} | {conv_s} | "
                f"{_fmt(per, '.3f')} | {statistics.median(x[3] for x in r):.6g} | "
                f"{statistics.median(x[2] for x in r):.6g} | "
                f"{_fmt([x[4] for x in r], '.0f')} |"
            )
        lines.append(title)
        lines.append(head + "\n".join(rows) + "\n")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
