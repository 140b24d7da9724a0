"""Exact k-NN: xplearn (numpy, torch) against scikit-learn brute and FAISS.

Side by side in one process, float32, k=10, 10 000 queries, at
N=100 000 × d=64 and N=50 000 × d=256, plus the machine's measured GEMM
ceiling for the same shapes.  Writes ``benchmarks/results/kneighbors.md``
and ``kneighbors.png``.

Fairness (see ../shared/PERF-NOTES.md): torch is imported before faiss and
scikit-learn (they share one vendored OpenMP runtime; in the other order
scikit-learn runs on one core); every peer gets the same thread count; each
contender is warmed up, repeats are interleaved and medians are quoted.

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
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

import xplearn
from xplearn.neighbors import kneighbors

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
