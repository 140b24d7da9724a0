"""KMeans: xplearn (numpy, torch) against scikit-learn, FAISS, fast-pytorch-kmeans.

Side by side in one process, float32, N=200 000 × d=32, k=64, every
contender starting from the same initial centres:

(a) milliseconds per Lloyd iteration over 20 fixed iterations (tol=0);
(b) seconds to convergence (scikit-learn's defaults), with the iterations,
    the final inertia and the agreement of the labels with scikit-learn's
    lloyd, to show the work is the same.

scikit-learn is also timed in a fresh process of its own (it can run slower
beside torch and FAISS, which bring their own OpenMP runtimes); every ratio
uses its faster figure.

Writes ``benchmarks/results/kmeans.md`` and ``kmeans.png``.  Same fairness
rules as ``run.py`` (torch imported first, equal threads, warm, interleaved
repeats, medians).

    nox -s bench        # or: python benchmarks/kmeans.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import faiss
import numpy as np
import sklearn
import torch  # first: faiss and scikit-learn share an OpenMP runtime
from fast_pytorch_kmeans import KMeans as FastKMeans
from sklearn.cluster import KMeans as SkKMeans
from sklearn.datasets import make_blobs
from threadpoolctl import threadpool_limits

import xplearn
from xplearn.cluster import KMeans

RESULTS = Path(__file__).parent / "results"
N, D, K, ITERS = 200_000, 32, 64, 20


def fixed_iterations(
    X: np.ndarray, init: np.ndarray, threads: int
) -> dict[str, object]:
    """Callables running ITERS Lloyd iterations; each returns (n_iter, inertia)."""
    Xt, It = torch.from_numpy(X), torch.from_numpy(init)

    def ours(
        data: object, start: object, algorithm: str = "lloyd"
    ) -> tuple[int, float]:
        km = KMeans(
            K, init=start, n_init=1, max_iter=ITERS, tol=0.0, algorithm=algorithm
        ).fit(data)
        return km.n_iter_, km.inertia_

    def sk(algorithm: str) -> object:
        def run() -> tuple[int, float]:
            with threadpool_limits(threads):
                km = SkKMeans(
                    K, init=init, n_init=1, max_iter=ITERS, tol=0.0, algorithm=algorithm
                )
                km.fit(X)
            return km.n_iter_, km.inertia_

        return run

    def fa() -> tuple[int, float]:
        km = faiss.Kmeans(D, K, niter=ITERS, max_points_per_centroid=N, seed=0)
        km.train(X, init_centroids=init)
        return ITERS, float(km.obj[-1])

    def fast() -> tuple[int, float]:
        km = FastKMeans(n_clusters=K, max_iter=ITERS, tol=-1.0, mode="euclidean")
        km.fit_predict(Xt.clone(), centroids=It.clone())
        return ITERS, float("nan")

    def np_ours(algorithm: str = "lloyd") -> tuple[int, float]:
        with threadpool_limits(threads):
            return ours(X, init, algorithm)

    return {
        "xplearn lloyd (torch)": lambda: ours(Xt, It),
        "xplearn lloyd (numpy)": np_ours,
        "xplearn elkan (torch)": lambda: ours(Xt, It, "elkan"),
        "xplearn elkan (numpy)": lambda: np_ours("elkan"),
        "scikit-learn lloyd": sk("lloyd"),
        "scikit-learn elkan": sk("elkan"),
        "FAISS Kmeans (all points)": fa,
        "fast-pytorch-kmeans": fast,
    }


def converge(X: np.ndarray, init: np.ndarray, threads: int) -> dict[str, object]:
    """Callables running to convergence; each returns (n_iter, inertia, labels)."""
    Xt, It = torch.from_numpy(X), torch.from_numpy(init)

    def ours(
        data: object, start: object, algorithm: str
    ) -> tuple[int, float, np.ndarray]:
        km = KMeans(K, init=start, n_init=1, algorithm=algorithm).fit(data)
        return km.n_iter_, km.inertia_, xplearn.to_numpy(km.labels_)

    def sk(algorithm: str) -> object:
        def run() -> tuple[int, float, np.ndarray]:
            with threadpool_limits(threads):
                km = SkKMeans(K, init=init, n_init=1, algorithm=algorithm).fit(X)
            return km.n_iter_, km.inertia_, km.labels_

        return run

    def np_ours(algorithm: str) -> tuple[int, float, np.ndarray]:
        with threadpool_limits(threads):
            return ours(X, init, algorithm)

    return {
        "xplearn lloyd (torch)": lambda: ours(Xt, It, "lloyd"),
        "xplearn lloyd (numpy)": lambda: np_ours("lloyd"),
        "xplearn elkan (torch)": lambda: ours(Xt, It, "elkan"),
        "xplearn elkan (numpy)": lambda: np_ours("elkan"),
        "scikit-learn lloyd": sk("lloyd"),
        "scikit-learn elkan": sk("elkan"),
    }


def timed(
    funcs: dict[str, object], repeats: int
) -> tuple[dict[str, list[float]], dict[str, object]]:
    last: dict[str, object] = {}
    for name, f in funcs.items():  # warm-up
        last[name] = f()  # type: ignore[operator]
    times: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(repeats):
        for name, f in funcs.items():  # interleaved
            t = time.perf_counter()
            last[name] = f()  # type: ignore[operator]
            times[name].append(time.perf_counter() - t)
    return times, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    RESULTS.mkdir(exist_ok=True)
    X, _ = make_blobs(
        n_samples=N, n_features=D, centers=K, cluster_std=4.0, random_state=0
    )
    X = X.astype(np.float32)
    init = X[np.random.default_rng(0).choice(N, K, replace=False)]

    t_fixed, r_fixed = timed(fixed_iterations(X, init, args.threads), args.repeats)
    t_conv, r_conv = timed(converge(X, init, args.threads), args.repeats)
    alone = sklearn_alone(args)
    for algorithm in ("lloyd", "elkan"):
        name = f"scikit-learn {algorithm} (own process)"
        t_fixed[name] = alone[f"fixed-{algorithm}"]
        r_fixed[name] = (ITERS, alone[f"fixed-{algorithm}-inertia"])
        t_conv[name] = alone[f"conv-{algorithm}"]
        r_conv[name] = (
            int(alone[f"conv-{algorithm}-n_iter"]),
            alone[f"conv-{algorithm}-inertia"],
            None,
        )

    ms = {n: 1e3 * statistics.median(t) / r_fixed[n][0] for n, t in t_fixed.items()}  # type: ignore[index]
    lines = [
        "# KMeans benchmark (float32, N=200 000 × d=32, k=64, same initial centres)",
        "",
        (
            f"Measured {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
            f"{args.threads} threads for every contender, median of {args.repeats} "
            f"interleaved warm repeats; load average {os.getloadavg()[0]:.2f} at the "
            f"end. Versions: xplearn {xplearn.__version__}, torch {torch.__version__}, "
            f"numpy {np.__version__}, faiss {faiss.__version__}, scikit-learn "
            f"{sklearn.__version__}."
        ),
        "",
        f"## (a) per Lloyd iteration, {ITERS} fixed iterations (tol=0)",
        "",
        "| contender | ms / iteration | vs faster scikit-learn lloyd | all runs (s) |",
        "| --- | ---: | ---: | --- |",
    ]
    ref = min(ms["scikit-learn lloyd"], ms["scikit-learn lloyd (own process)"])
    for name, t in t_fixed.items():
        runs = ", ".join(f"{v:.3f}" for v in t)
        lines.append(f"| {name} | {ms[name]:.1f} | {ref / ms[name]:.2f}× | {runs} |")
    lines += [
        "",
        "## (b) to convergence (scikit-learn's defaults: max_iter=300, tol=1e-4)",
        "",
        (
            "| contender | seconds | vs faster scikit-learn | iterations | inertia | "
            "labels equal to scikit-learn lloyd |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    sk_best = min(
        statistics.median(t_conv[n]) for n in t_conv if n.startswith("scikit")
    )
    sk_labels = r_conv["scikit-learn lloyd"][2]  # type: ignore[index]
    for name, t in t_conv.items():
        n_iter, inertia, labels = r_conv[name]  # type: ignore[misc]
        sec = statistics.median(t)
        agree = "—" if labels is None else f"{np.mean(labels == sk_labels):.4f}"
        lines.append(
            f"| {name} | {sec:.2f} | {sk_best / sec:.2f}× | {n_iter} | "
            f"{inertia:.6g} | {agree} |"
        )
    (RESULTS / "kmeans.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(ms, {n: statistics.median(t) for n, t in t_conv.items()})


_SKLEARN_ALONE = """
import json, sys, time
import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from threadpoolctl import threadpool_limits
threads, repeats, N, D, K, ITERS = map(int, sys.argv[1:])
X, _ = make_blobs(n_samples=N, n_features=D, centers=K, cluster_std=4.0,
                  random_state=0)
X = X.astype(np.float32)
init = X[np.random.default_rng(0).choice(N, K, replace=False)]
out = {}
with threadpool_limits(threads):
    for algorithm in ("lloyd", "elkan"):
        for key, kw in (("fixed", {"max_iter": ITERS, "tol": 0.0}), ("conv", {})):
            fit = lambda: KMeans(K, init=init, n_init=1, algorithm=algorithm,
                                 **kw).fit(X)
            fit()
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                km = fit()
                times.append(time.perf_counter() - t)
            out[f"{key}-{algorithm}"] = times
            out[f"{key}-{algorithm}-inertia"] = float(km.inertia_)
            out[f"{key}-{algorithm}-n_iter"] = int(km.n_iter_)
print(json.dumps(out))
"""


def sklearn_alone(args: argparse.Namespace) -> dict[str, object]:
    """scikit-learn's KMeans timings in a fresh process (same data, same init)."""
    import json
    import subprocess
    import sys

    argv = [args.threads, args.repeats, N, D, K, ITERS]
    out = subprocess.run(
        [sys.executable, "-c", _SKLEARN_ALONE, *map(str, argv)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def plot(ms: dict[str, float], conv: dict[str, float]) -> None:
    """Both tables as bars: (a) ms per iteration, (b) seconds to convergence."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, values, label in (
        (a, ms, "(a) ms per Lloyd iteration"),
        (b, conv, "(b) seconds to convergence"),
    ):
        names = list(values)
        ax.barh(names, [values[n] for n in names])
        ax.set_xlabel(f"{label} (lower is better)")
        ax.invert_yaxis()
    fig.suptitle("KMeans, float32, 200 000 × 32, k=64, same initial centres")
    fig.tight_layout()
    fig.savefig(RESULTS / "kmeans.png", dpi=120)


if __name__ == "__main__":
    main()
