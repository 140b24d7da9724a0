"""KMeans on a 2-worker dask.distributed LocalCluster: xplearn against dask-ml.

Issue 14's benchmark.  10M × 32 float32, generated blockwise on the workers
(never on the client) and persisted there, k=64:

(a) seconds per Lloyd iteration (tol=0, fixed iterations) and to convergence
    (scikit-learn's default tol), with the inertia, for xplearn's ``KMeans``
    (k-means++ init) and dask-ml's ``KMeans`` (its default k-means‖ init);
(b) the same from one given initial set of centres for both;
(c) peak memory (RSS) per worker, sampled every 0.2 s on the workers.

dask-ml lives in an environment of its own (it pins its own scikit-learn and
dask ranges); without it the dask-ml rows are left out.  The full run needs
a quiet machine with ~8 GiB free::

    python -m venv /tmp/bench-daskml && /tmp/bench-daskml/bin/pip install \\
        dask-ml "distributed" -e .
    /tmp/bench-daskml/bin/python benchmarks/dask_kmeans.py   # full
    python benchmarks/dask_kmeans.py --quick                  # smoke test

Writes ``benchmarks/results/dask_kmeans.md`` (``--quick``: a temporary dir).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
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


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument(
        "--skip-converged",
        action="store_true",
        help="leave out the runs to convergence (hundreds of iterations at "
        "several seconds each on 2 cores)",
    )
    args = p.parse_args()
    import dask.array as da
    from distributed import Client, LocalCluster

    from xplearn.cluster import KMeans

    n, d, k = (20_000, 8, 4) if args.quick else (10_000_000, 32, 64)
    chunk = max(1, n // 40)
    try:
        import dask_ml.cluster as dml
    except ImportError:
        dml = None
    rows: list[str] = []
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
        X = (
            da.random.default_rng(0)
            .standard_normal((n, d), chunks=(chunk, d))
            .astype(np.float32)
            .persist()
        )
        init = X[:k].compute()

        def ours(**kw: Any) -> Any:
            return KMeans(k, n_init=1, random_state=0, **kw).fit(X)

        runs: list[tuple[str, Any]] = [
            (
                f"xplearn, {args.iters} it, k-means++",
                lambda: ours(max_iter=args.iters, tol=0),
            ),
            *([] if args.skip_converged else [("xplearn, converged, k-means++", ours)]),
            (
                f"xplearn, {args.iters} it, given init",
                lambda: ours(init=init, max_iter=args.iters, tol=0),
            ),
        ]
        if dml is not None:
            runs += [
                (
                    f"dask-ml, {args.iters} it, k-means||",
                    lambda: dml.KMeans(
                        k, max_iter=args.iters, tol=0, random_state=0
                    ).fit(X),
                ),
                *(
                    []
                    if args.skip_converged
                    else [
                        (
                            "dask-ml, converged, k-means||",
                            lambda: dml.KMeans(k, random_state=0).fit(X),
                        )
                    ]
                ),
                (
                    f"dask-ml, {args.iters} it, given init",
                    lambda: dml.KMeans(k, init=init, max_iter=args.iters, tol=0).fit(X),
                ),
            ]
        for name, fn in runs:
            dt, est, peak = _timed(fn, client)
            it = int(est.n_iter_)
            rows.append(
                f"| {name} | {dt:.2f} | {it} | {dt / max(it, 1):.3f} | "
                f"{float(est.inertia_):.6g} | {peak:.0f} |"
            )
            print(rows[-1], flush=True)
    head = (
        f"# KMeans on a 2-worker LocalCluster: {n} × {d} float32, k={k}\n\n"
        "Times include the initialisation; per iteration = total / n_iter.\n\n"
        "| run | seconds | n_iter | s / iteration | inertia "
        "| peak RSS per worker (MiB) |\n"
        "| --- | --- | --- | --- | --- | --- |\n"
    )
    out = Path(tempfile.mkdtemp()) if args.quick else Path(__file__).parent / "results"
    (out / "dask_kmeans.md").write_text(head + "\n".join(rows) + "\n")
    print("wrote", out / "dask_kmeans.md")


if __name__ == "__main__":
    main()
