"""Exact k-NN: xplearn (numpy, torch) against scikit-learn brute and FAISS.

Side by side in one process, float32, k=10, 10 000 queries, at
N=100 000 × d=64 and N=50 000 × d=256, plus the machine's measured GEMM
ceiling for the same shapes.  Writes ``benchmarks/results/kneighbors.md``
and ``kneighbors.png``.

Fairness (see ../shared/PERF-NOTES.md): torch is imported before faiss and
scikit-learn (they share one vendored OpenMP runtime; in the other order
scikit-learn runs on one core); every peer gets the same thread count; each
contender is warmed up, repeats are interleaved and medians are quoted.

Also times ``KNeighborsClassifier`` fit + predict against scikit-learn
(N=50 000 × d=32, 10 000 queries) into ``knn_classifier.md``.

    nox -s bench                     # or: python benchmarks/run.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import faiss
import numpy as np
import sklearn
import torch  # first: see the module docstring
from sklearn.neighbors import KNeighborsClassifier as SkKNeighborsClassifier
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

import xplearn
from xplearn.neighbors import KNeighborsClassifier, kneighbors

RESULTS = Path(__file__).parent / "results"
SHAPES = [(100_000, 64), (50_000, 256)]
N_QUERIES = 10_000
K = 10


def gemm_ceiling(n_db: int, d: int, threads: int) -> tuple[float, str]:
    """Best float32 GEMM rate (GF/s) for (queries × d) @ (d × database) tiles."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4096, d), dtype=np.float32)
    B = rng.standard_normal((d, 16_384), dtype=np.float32)
    out = np.empty((4096, 16_384), dtype=np.float32)
    flops = 2 * 4096 * 16_384 * d
    best: dict[str, float] = {}
    with threadpool_limits(threads):
        for _ in range(5):
            t = time.perf_counter()
            np.matmul(A, B, out=out)
            best["numpy"] = max(best.get("numpy", 0), flops / (time.perf_counter() - t))
    At, Bt, Ot = torch.from_numpy(A), torch.from_numpy(B), torch.from_numpy(out)
    for _ in range(5):
        t = time.perf_counter()
        torch.mm(At, Bt, out=Ot)
        best["torch"] = max(best.get("torch", 0), flops / (time.perf_counter() - t))
    name = max(best, key=best.__getitem__)
    return best[name] / 1e9, name


def contenders(Y: np.ndarray, threads: int) -> dict[str, object]:
    Yt = torch.from_numpy(Y)
    index = faiss.IndexFlatL2(Y.shape[1])
    index.add(Y)
    nn = NearestNeighbors(n_neighbors=K, algorithm="brute").fit(Y)

    def sk(Q: np.ndarray) -> object:
        with threadpool_limits(threads):
            return nn.kneighbors(Q)

    def xp_numpy(Q: np.ndarray) -> object:
        with threadpool_limits(threads):
            return kneighbors(Q, Y, K)

    return {
        "xplearn (torch)": lambda Q: kneighbors(torch.from_numpy(Q), Yt, K),
        "xplearn (numpy)": xp_numpy,
        "FAISS IndexFlatL2": lambda Q: index.search(Q, K),
        "scikit-learn brute": sk,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--tag",
        default="",
        help="suffix for the result files (e.g. 'skylakex' for a run with "
        "OPENBLAS_CORETYPE=SkylakeX set in the environment)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    RESULTS.mkdir(exist_ok=True)

    rng = np.random.default_rng(0)
    rows = []
    for n_db, d in SHAPES:
        Y = rng.standard_normal((n_db, d), dtype=np.float32)
        Q = rng.standard_normal((N_QUERIES, d), dtype=np.float32)
        ceiling, ceiling_by = gemm_ceiling(n_db, d, args.threads)
        flops = 2.0 * N_QUERIES * n_db * d
        funcs = contenders(Y, args.threads)
        ref = funcs["FAISS IndexFlatL2"](Q)[1]
        times: dict[str, list[float]] = {name: [] for name in funcs}
        for name, f in funcs.items():  # warm-up, and a correctness check
            out = f(Q[:500])
            ind = out[1] if isinstance(out, tuple) else out
            agree = np.mean(xplearn.to_numpy(ind) == ref[:500])
            print(f"{name:20s} warm; agrees with FAISS on {agree:.4f} of indices")
        for _ in range(args.repeats):
            for name, f in funcs.items():  # interleaved
                t = time.perf_counter()
                f(Q)
                times[name].append(time.perf_counter() - t)
        t_faiss = statistics.median(times["FAISS IndexFlatL2"])
        for name, ts in times.items():
            t = statistics.median(ts)
            rows.append(
                {
                    "shape": f"{n_db:,} × d={d}",
                    "name": name,
                    "seconds": t,
                    "qps": N_QUERIES / t,
                    "vs_faiss": t_faiss / t,
                    "gemm": flops / t / 1e9 / ceiling,
                    "ceiling": f"{ceiling:.0f} GF/s ({ceiling_by})",
                    "all": ts,
                }
            )
            print(f"{n_db}x{d} {name:20s} {t:7.3f} s  {t_faiss / t:5.2f}x FAISS")
    write(rows, args)
    classifier(args)


def classifier(args: argparse.Namespace) -> None:
    """KNeighborsClassifier fit + predict, N=50 000, d=32, 10 000 queries."""
    rng = np.random.default_rng(1)
    n, d, n_classes = 50_000, 32, 10
    centers = rng.standard_normal((n_classes, d), dtype=np.float32) * 3
    y = rng.integers(0, n_classes, n)
    X = centers[y] + rng.standard_normal((n, d), dtype=np.float32)
    yq = rng.integers(0, n_classes, N_QUERIES)
    Q = centers[yq] + rng.standard_normal((N_QUERIES, d), dtype=np.float32)
    Xt, yt, Qt = torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(Q)

    def sk() -> object:
        with threadpool_limits(args.threads):
            return SkKNeighborsClassifier(n_neighbors=K).fit(X, y).predict(Q)

    def xp_numpy() -> object:
        with threadpool_limits(args.threads):
            return KNeighborsClassifier(n_neighbors=K).fit(X, y).predict(Q)

    funcs = {
        "xplearn (torch)": lambda: (
            KNeighborsClassifier(n_neighbors=K).fit(Xt, yt).predict(Qt)
        ),
        "xplearn (numpy)": xp_numpy,
        "scikit-learn": sk,
    }
    ref = sk()
    for name, f in funcs.items():
        agree = np.mean(xplearn.to_numpy(f()) == ref)
        print(f"{name:20s} warm; agrees with scikit-learn on {agree:.4f} of labels")
    times: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(args.repeats):
        for name, f in funcs.items():
            t = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t)
    times["scikit-learn (own process)"] = sklearn_alone(args)
    # scikit-learn is slower in a process that has loaded torch and FAISS
    # (shared OpenMP runtimes): compare against its faster figure.
    t_sk = min(
        statistics.median(times["scikit-learn"]),
        statistics.median(times["scikit-learn (own process)"]),
    )
    lines = [
        "# KNeighborsClassifier fit + predict (float32, k=10)",
        "",
        (
            f"N=50 000 × d=32, 10 classes, 10 000 queries; {args.threads} threads for "
            f"every contender, median of {args.repeats} interleaved warm repeats, "
            f"measured {time.strftime('%Y-%m-%d %H:%M')}."
        ),
        "",
        (
            "Speed-ups are against the faster of scikit-learn's two figures (in "
            "this process, which has torch and FAISS loaded, and in a process of "
            "its own)."
        ),
        "",
        "| contender | seconds | speed-up vs scikit-learn | all runs (s) |",
        "| --- | ---: | ---: | --- |",
    ]
    for name, ts in times.items():
        t = statistics.median(ts)
        runs = ", ".join(f"{v:.3f}" for v in ts)
        lines.append(f"| {name} | {t:.3f} | {t_sk / t:.2f}× | {runs} |")
        print(f"classifier {name:20s} {t:7.3f} s  {t_sk / t:5.2f}x scikit-learn")
    stem = "knn_classifier" + (f"-{args.tag}" if args.tag else "")
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")


_SKLEARN_ALONE = """
import statistics, sys, time
import numpy as np
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_limits
threads, repeats = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(1)
n, d, c = 50_000, 32, 10
centers = rng.standard_normal((c, d), dtype=np.float32) * 3
y = rng.integers(0, c, n)
X = centers[y] + rng.standard_normal((n, d), dtype=np.float32)
yq = rng.integers(0, c, 10_000)
Q = centers[yq] + rng.standard_normal((10_000, d), dtype=np.float32)
with threadpool_limits(threads):
    KNeighborsClassifier(n_neighbors=10).fit(X, y).predict(Q)
    for _ in range(repeats):
        t = time.perf_counter()
        KNeighborsClassifier(n_neighbors=10).fit(X, y).predict(Q)
        print(time.perf_counter() - t)
"""


def sklearn_alone(args: argparse.Namespace) -> list[float]:
    """scikit-learn's classifier timings in a fresh process (same data)."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _SKLEARN_ALONE, str(args.threads), str(args.repeats)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [float(v) for v in out.stdout.split()]


def write(rows: list[dict[str, object]], args: argparse.Namespace) -> None:
    lines = [
        "# Exact k-NN benchmark (float32, k=10, 10 000 queries)",
        "",
        (
            f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {platform.machine()}, "
            f"{os.cpu_count()} CPUs, {args.threads} threads for every contender, "
            f"median of {args.repeats} interleaved warm repeats; load average "
            f"{os.getloadavg()[0]:.2f} at the end; OPENBLAS_CORETYPE="
            f"{os.environ.get('OPENBLAS_CORETYPE', '(unset)')}. Versions: xplearn "
            f"{xplearn.__version__}, torch {torch.__version__}, "
            f"numpy {np.__version__}, "
            f"faiss {faiss.__version__}, scikit-learn {sklearn.__version__}."
        ),
        "",
        (
            "| database | contender | seconds | queries/s | throughput vs FAISS | "
            "fraction of GEMM ceiling | GEMM ceiling | all runs (s) |"
        ),
        "| --- | --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        runs = ", ".join(f"{t:.3f}" for t in r["all"])  # type: ignore[attr-defined]
        lines.append(
            f"| {r['shape']} | {r['name']} | {r['seconds']:.3f} | {r['qps']:,.0f} | "
            f"{r['vs_faiss']:.2f}× | {r['gemm']:.0%} | {r['ceiling']} | {runs} |"
        )
    stem = "kneighbors" + (f"-{args.tag}" if args.tag else "")
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    plot(rows, stem)
    print("\n".join(lines))


def plot(rows: list[dict[str, object]], stem: str) -> None:
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    shapes = list(dict.fromkeys(r["shape"] for r in rows))
    names = list(dict.fromkeys(r["name"] for r in rows))
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        qps = [
            next(r["qps"] for r in rows if r["shape"] == s and r["name"] == name)
            for s in shapes
        ]
        ax.bar([j + i * width for j in range(len(shapes))], qps, width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(shapes))], shapes)
    ax.set_ylabel("queries / s (higher is better)")
    ax.set_title("Exact k-NN, float32, k=10, 10 000 queries")
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / f"{stem}.png", dpi=120)


if __name__ == "__main__":
    main()
