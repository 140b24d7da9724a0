"""Exact k-NN: xplearn (numpy, torch) against scikit-learn brute and FAISS.

float32, k=10, 10 000 queries, at N=100 000 × d=64 and N=50 000 × d=256,
with the machine's measured GEMM ceiling for the same shapes; then a small
problem (2 000 × d=512, 1 000 queries) against plain ``torch.cdist`` +
``torch.topk``.  Writes ``kneighbors.md`` and ``kneighbors.png``.

Also times ``KNeighborsClassifier`` fit + predict against scikit-learn
(N=50 000 × d=32, 10 000 queries) into ``knn_classifier.md``.

Fairness (see ../shared/PERF-NOTES.md and harness.py):

- torch is imported before FAISS and scikit-learn, inside ``main`` (they
  share one vendored OpenMP runtime; in the other order scikit-learn runs on
  one core);
- every thread pool is set to ``--threads`` and the count each contender ran
  with is printed and written to the results;
- FAISS and scikit-learn are also timed in a process of their own (this
  script with ``--only faiss|sklearn``: numpy and that peer alone), and the
  faster of the two figures is used; those processes get
  ``OPENBLAS_CORETYPE`` set to the core the newest OpenBLAS loaded here
  detects, unless the environment sets it (faiss-cpu's bundled OpenBLAS
  0.3.15 picks slow kernels on a Zen 4: 2.2 s against 1.2 s);
- each contender is warmed up, the repeats are interleaved (A B C, A B C, …),
  and the median and range over the runs are quoted;
- FAISS and scikit-learn are checked against their PERF-NOTES times: a loud
  warning if one is more than 1.3× slower, as the harness is then hurting it.

    nox -s bench                       # or: python benchmarks/run.py --repeats 3
    python benchmarks/run.py --quick   # smoke test, results in a temporary dir
"""

from __future__ import annotations

import sys
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

import harness
from harness import OwnProcess, Timing, interleave, measure, pick_faster, timer

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

SHAPES = [(100_000, 64), (50_000, 256)]  # database rows, d
N_QUERIES = 10_000
SMALL = (2_000, 512, 1_000)  # database rows, d, queries
SMALL_CALLS = 20  # a run of the small problem is the mean of this many searches
CLASSIFIER = (50_000, 32, 10)  # rows, d, classes (and N_QUERIES queries)
K = 10
QUICK = 10  # --quick divides the sizes by this

# PERF-NOTES figures on this machine (float32, k=10, 2 threads), by problem.
NOTES: dict[str, dict[str, float]] = {
    # "Measured 2026-11-27 (independent re-run)"
    "FAISS IndexFlatL2": {
        "100,000 × d=64, 10,000 queries": 1.09,
        "50,000 × d=256, 10,000 queries": 1.33,
    },
    # the "Exact KNN" table; the re-run's 3.5 / 5.0 s may have been slowed
    "scikit-learn brute": {
        "100,000 × d=64, 10,000 queries": 2.27,
        "50,000 × d=256, 10,000 queries": 3.19,
    },
    "torch.cdist + topk": {"2,000 × d=512, 1,000 queries": 0.0125},
}

# Which thread pools each contender runs on (names from harness.thread_pools).
POOLS = {
    "xplearn (torch)": ("torch intra-op",),
    "xplearn (numpy)": ("numpy openblas",),
    "torch.cdist + topk": ("torch intra-op",),
    "FAISS IndexFlatL2": ("FAISS omp_get_max_threads", "FAISS openblas"),
    "scikit-learn brute": ("FAISS+scikit-learn openmp", "scipy openblas"),
    "scikit-learn": ("FAISS+scikit-learn openmp", "scipy openblas"),
}
ALONE = {"FAISS IndexFlatL2": "faiss", "scikit-learn brute": "sklearn"}


def problem(n_db: int, d: int, n_queries: int) -> str:
    return f"{n_db:,} × d={d}, {n_queries:,} queries"


def knn_data(n_db: int, d: int, n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([n_db, d, n_queries])
    Y = rng.standard_normal((n_db, d), dtype=np.float32)
    Q = rng.standard_normal((n_queries, d), dtype=np.float32)
    return Y, Q


# --- the peers' jobs, the same code in this process and in their own ------------


def faiss_search(Y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    import faiss

    index = faiss.IndexFlatL2(Y.shape[1])
    index.add(Y)
    return lambda Q: index.search(Q, K)[1]


def sklearn_search(Y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=K, algorithm="brute").fit(Y)
    return lambda Q: nn.kneighbors(Q)[1]


def sklearn_classifier(
    X: np.ndarray, y: np.ndarray, Q: np.ndarray
) -> Callable[[], np.ndarray]:
    from sklearn.neighbors import KNeighborsClassifier

    return lambda: KNeighborsClassifier(n_neighbors=K).fit(X, y).predict(Q)


def own_process_job(
    peer: str, job: dict[str, Any], arrays: dict[str, np.ndarray]
) -> tuple[Callable[[], Any], Any, Callable[[Any], Any]]:
    """A job for ``--only PEER``: (warm run, info for the parent, digest)."""
    if job["kind"] == "kneighbors":
        Y, Q = arrays["Y"], arrays["Q"]
        search = faiss_search(Y) if peer == "faiss" else sklearn_search(Y)
        first = search(Q[:500])  # warm-up, and a check that the data are the same
        return (lambda: search(Q)), first.tolist(), lambda ind: None
    fit_predict = sklearn_classifier(arrays["X"], arrays["y"], arrays["Q"])
    return fit_predict, fit_predict().tolist(), lambda labels: None


# --- in this process ------------------------------------------------------------


def gemm_ceiling(d: int) -> tuple[float, str]:
    """Best float32 GEMM rate (GF/s) for (queries × d) @ (d × database) tiles."""
    import torch

    rng = np.random.default_rng(0)
    A = rng.standard_normal((4096, d), dtype=np.float32)
    B = rng.standard_normal((d, 16_384), dtype=np.float32)
    out = np.empty((4096, 16_384), dtype=np.float32)
    flops = 2 * 4096 * 16_384 * d
    At, Bt, Ot = torch.from_numpy(A), torch.from_numpy(B), torch.from_numpy(out)
    runs = {
        "numpy": lambda: np.matmul(A, B, out=out),
        "torch": lambda: torch.mm(At, Bt, out=Ot),
    }
    best = {
        name: max(flops / measure(f)[0] for _ in range(5)) for name, f in runs.items()
    }
    name = max(best, key=best.__getitem__)
    return best[name] / 1e9, name


def agreement(ind: Any, ref: np.ndarray) -> float:
    import xplearn

    ind = xplearn.to_numpy(ind[1] if isinstance(ind, tuple) else ind)
    return float(np.mean(ind == ref[: len(ind)]))


def kneighbors_bench(
    args: argparse.Namespace, run: harness.Run, alone: dict[str, OwnProcess]
) -> list[dict[str, Any]]:
    shapes, n_q = SHAPES, N_QUERIES
    if args.quick:
        shapes, n_q = [(n // QUICK, d) for n, d in SHAPES], N_QUERIES // QUICK
    return [
        row for n_db, d in shapes for row in one_shape(args, run, alone, n_db, d, n_q)
    ]


def one_shape(
    args: argparse.Namespace,
    run: harness.Run,
    alone: dict[str, OwnProcess],
    n_db: int,
    d: int,
    n_q: int,
) -> list[dict[str, Any]]:
    import torch

    from xplearn.neighbors import kneighbors

    pools = harness.thread_pools()
    name = problem(n_db, d, n_q)
    print(f"\n== kneighbors {name}", flush=True)
    Y, Q = knn_data(n_db, d, n_q)
    Yt = torch.from_numpy(Y)
    fa = faiss_search(Y)
    funcs: dict[str, Callable[[np.ndarray], Any]] = {
        "xplearn (torch)": lambda q: kneighbors(torch.from_numpy(q), Yt, K),
        "xplearn (numpy)": lambda q: kneighbors(q, Y, K),
        "FAISS IndexFlatL2": fa,
        "scikit-learn brute": sklearn_search(Y),
    }
    ref = fa(Q[:500])
    for who, f in funcs.items():  # warm-up, and a correctness check
        print(f"{who:30s} warm; agrees with FAISS on {agreement(f(Q[:500]), ref):.4f}")
    contenders = {who: timer(partial(f, Q)) for who, f in funcs.items()}
    for who, child in ALONE.items():
        first = alone[child].setup(name, {"kind": "kneighbors"}, Y=Y, Q=Q)
        agree = agreement(np.asarray(first), ref)
        print(f"{who + ' (own process)':30s} warm; agrees with FAISS on {agree:.4f}")
        contenders[f"{who} (own process)"] = alone[child].timer(name)
    times = interleave(contenders, args.repeats)
    for who, child in ALONE.items():
        pick_faster(times, who, alone[child], pools)
    ceiling, ceiling_by = gemm_ceiling(d)
    flops = 2.0 * n_q * n_db * d
    t_faiss = times["FAISS IndexFlatL2"].median
    rows = []
    for who, t in times.items():
        run.check(who, name, t.median, NOTES.get(who, {}))
        row = {
            "shape": f"{n_db:,} × d={d}",
            "name": who,
            "t": t,
            "threads": harness.threads_of(t.pools or pools, POOLS[who]),
            "queries": n_q,
            "qps": n_q / t.median,
            "vs_faiss": t_faiss / t.median,
            "gemm": flops / t.median / 1e9 / ceiling,
            "ceiling": f"{ceiling:.0f} GF/s ({ceiling_by})",
        }
        rows.append(row)
        print(
            f"{who:20s} {t.median:7.3f} s [{t.span()}]  {t_faiss / t.median:5.2f}x "
            f"FAISS  threads {row['threads']}  cores busy {t.cores:.2f}  "
            f"timed in {t.where}",
            flush=True,
        )
    return rows


def small_bench(
    args: argparse.Namespace, run: harness.Run
) -> tuple[dict[str, Timing], str]:
    """xplearn against plain torch.cdist + topk on a small problem."""
    import torch

    from xplearn.neighbors import kneighbors

    n_db, d, n_q = SMALL
    name = problem(n_db, d, n_q)
    print(f"\n== kneighbors, small problem {name}", flush=True)
    Y, Q = knn_data(n_db, d, n_q)
    Yt, Qt = torch.from_numpy(Y), torch.from_numpy(Q)

    def cdist_topk() -> Any:
        return torch.topk(torch.cdist(Qt, Yt), K, largest=False)

    funcs = {
        "xplearn (torch)": lambda: kneighbors(Qt, Yt, K),
        "xplearn (numpy)": lambda: kneighbors(Q, Y, K),
        "torch.cdist + topk": cdist_topk,
    }
    Q64, Y64 = Q.astype(np.float64), Y.astype(np.float64)
    exact = ((Q64**2).sum(1)[:, None] - 2 * Q64 @ Y64.T + (Y64**2).sum(1)).argsort(1)
    for who, f in funcs.items():
        agree = agreement(f(), exact[:, :K])
        print(f"{who:20s} warm; agrees with float64 on {agree:.4f}")
    calls = 5 if args.quick else SMALL_CALLS
    times = interleave({w: timer(f, calls) for w, f in funcs.items()}, args.repeats)
    ref = times["torch.cdist + topk"].median
    for who, t in times.items():
        run.check(who, name, t.median, NOTES.get(who, {}))
        print(
            f"{who:20s} {t.median * 1e3:7.2f} ms [{t.span(1e3, '.2f')}]  "
            f"{ref / t.median:5.2f}x cdist+topk  cores busy {t.cores:.2f}"
        )
    return times, name


def main() -> None:
    started = harness.start(__doc__, own_process_job)
    if started is None:
        return
    args, run, pools = started
    with (
        OwnProcess(__file__, "faiss", args.threads) as faiss_alone,
        OwnProcess(__file__, "sklearn", args.threads) as sklearn_alone,
    ):
        alone = {"faiss": faiss_alone, "sklearn": sklearn_alone}
        for child in alone.values():
            print(f"threads, {child.peer} alone: {harness.format_pools(child.pools)}")
        rows = kneighbors_bench(args, run, alone)
        small, small_name = small_bench(args, run)
        write(args, run, pools, alone, rows, small, small_name)
        classifier(args, run, pools, sklearn_alone)
    print(f"\nresults in {args.out}")
    if run.warnings:
        print("\n".join(f"!!!!! WARNING: {w}" for w in run.warnings), file=sys.stderr)


def classifier(
    args: argparse.Namespace,
    run: harness.Run,
    pools: dict[str, int],
    sklearn_alone: OwnProcess,
) -> None:
    """KNeighborsClassifier fit + predict, N=50 000, d=32, 10 000 queries."""
    import torch

    from xplearn.neighbors import KNeighborsClassifier

    n, d, n_classes = CLASSIFIER
    n_q = N_QUERIES
    if args.quick:
        n, n_q = n // QUICK, n_q // QUICK
    print(f"\n== KNeighborsClassifier {n:,} × d={d}, {n_q:,} queries", flush=True)
    rng = np.random.default_rng(1)
    centers = rng.standard_normal((n_classes, d), dtype=np.float32) * 3
    y = rng.integers(0, n_classes, n)
    X = centers[y] + rng.standard_normal((n, d), dtype=np.float32)
    yq = rng.integers(0, n_classes, n_q)
    Q = centers[yq] + rng.standard_normal((n_q, d), dtype=np.float32)
    Xt, yt, Qt = torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(Q)

    funcs = {
        "xplearn (torch)": lambda: (
            KNeighborsClassifier(n_neighbors=K).fit(Xt, yt).predict(Qt)
        ),
        "xplearn (numpy)": lambda: (
            KNeighborsClassifier(n_neighbors=K).fit(X, y).predict(Q)
        ),
        "scikit-learn": sklearn_classifier(X, y, Q),
    }
    ref = funcs["scikit-learn"]()
    for who, f in funcs.items():
        print(f"{who:30s} warm; agrees with scikit-learn on {agreement(f(), ref):.4f}")
    first = sklearn_alone.setup("classifier", {"kind": "classifier"}, X=X, y=y, Q=Q)
    agree = agreement(np.asarray(first), ref)
    print(f"{'scikit-learn (own process)':30s} warm; agrees on {agree:.4f}")
    contenders = {who: timer(f) for who, f in funcs.items()}
    contenders["scikit-learn (own process)"] = sklearn_alone.timer("classifier")
    times = interleave(contenders, args.repeats)
    pick_faster(times, "scikit-learn", sklearn_alone, pools)
    t_sk = times["scikit-learn"].median
    lines = [
        f"# KNeighborsClassifier fit + predict (float32, k={K})",
        "",
        f"N={n:,} × d={d}, {n_classes} classes, {n_q:,} queries.",
        "",
        *run.header(pools),
        "",
        (
            "scikit-learn is timed in this process (torch and FAISS loaded) and in a "
            "process of its own (`run.py --only sklearn`, runs interleaved with the "
            "others); the table uses the faster figure and says which, with the other "
            "median beside it."
        ),
        "",
        (
            "| contender | threads | seconds (median) | range (min–max) | speed-up vs "
            "scikit-learn | cores busy | timed in |"
        ),
        "| --- | --- | ---: | --- | ---: | ---: | --- |",
    ]
    for who, t in times.items():
        threads = harness.threads_of(t.pools or pools, POOLS[who])
        lines.append(
            f"| {who} | {threads} | {t.median:.3f} | {t.span()} | "
            f"{t_sk / t.median:.2f}× | {t.cores:.2f} | {t.where} |"
        )
        print(
            f"classifier {who:20s} {t.median:7.3f} s [{t.span()}]  "
            f"{t_sk / t.median:5.2f}x scikit-learn  threads {threads}  "
            f"cores busy {t.cores:.2f}  timed in {t.where}"
        )
    lines += run.warning_lines()
    stem = "knn_classifier" + (f"-{args.tag}" if args.tag else "")
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")


def write(
    args: argparse.Namespace,
    run: harness.Run,
    pools: dict[str, int],
    alone: dict[str, OwnProcess],
    rows: list[dict[str, Any]],
    small: dict[str, Timing],
    small_name: str,
) -> None:
    n_q = rows[0]["queries"]
    lines = [
        f"# Exact k-NN benchmark (float32, k={K}, {n_q:,.0f} queries)",
        "",
        *run.header(pools),
        harness.own_process_line(alone),
        "",
        (
            "FAISS and scikit-learn are timed both in this process (torch loaded) and "
            "in a process of their own (`run.py --only faiss|sklearn`: numpy and that "
            "peer alone, the same data and threads, its runs interleaved with the "
            "others). Each row uses the faster figure and says which (*timed in*), "
            "with the other median beside it. *Cores busy* is the median of process "
            "CPU time over wall time. *xplearn (numpy)* is numpy in and out; a large "
            "float32 numpy search runs on torch's CPU kernels through zero-copy views "
            "where torch is installed (the same answer), so its times are torch's "
            "within the noise."
        ),
        "",
        (
            "| database | contender | threads | seconds (median) | range (min–max) | "
            "queries/s | throughput vs FAISS | fraction of GEMM ceiling | GEMM ceiling "
            "| cores busy | timed in |"
        ),
        "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for r in rows:
        t = r["t"]
        lines.append(
            f"| {r['shape']} | {r['name']} | {r['threads']} | {t.median:.3f} | "
            f"{t.span()} | {r['qps']:,.0f} | {r['vs_faiss']:.2f}× | {r['gemm']:.0%} | "
            f"{r['ceiling']} | {t.cores:.2f} | {t.where} |"
        )
    ref = small["torch.cdist + topk"].median
    calls = 5 if args.quick else SMALL_CALLS
    lines += [
        "",
        f"## Small problem: {small_name}",
        "",
        f"Each run is the mean of {calls} back-to-back searches.",
        "",
        (
            "| contender | threads | ms per search (median) | range (min–max) | "
            "vs torch.cdist + topk | cores busy |"
        ),
        "| --- | --- | ---: | --- | ---: | ---: |",
    ]
    for who, t in small.items():
        threads = harness.threads_of(pools, POOLS[who])
        lines.append(
            f"| {who} | {threads} | {t.median * 1e3:.2f} | {t.span(1e3, '.2f')} | "
            f"{ref / t.median:.2f}× | {t.cores:.2f} |"
        )
    lines += [
        "",
        (
            "Sanity check against ../shared/PERF-NOTES.md (2 threads): FAISS "
            "IndexFlatL2 1.09 s at 100k × 64 and 1.33 s at 50k × 256; scikit-learn "
            "brute 2.27 / 3.19 s; torch.cdist + topk 12.5 ms on the small problem. "
            f"A peer more than {harness.SLOWER_THAN_NOTES}× slower is flagged below."
            + run.unchecked()
        ),
        *run.warning_lines(),
    ]
    stem = "kneighbors" + (f"-{args.tag}" if args.tag else "")
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    plot(rows, args.out / f"{stem}.png", n_q)
    print("\n".join(lines))


def plot(rows: list[dict[str, Any]], path: Any, n_q: float) -> None:
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    shapes = list(dict.fromkeys(r["shape"] for r in rows))
    names = list(dict.fromkeys(r["name"] for r in rows))
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(names)
    for i, who in enumerate(names):
        ts = [
            next(r["t"] for r in rows if r["shape"] == s and r["name"] == who)
            for s in shapes
        ]
        qps = [n_q / t.median for t in ts]
        err = [
            [q - n_q / max(t.wall) for q, t in zip(qps, ts, strict=True)],
            [n_q / min(t.wall) - q for q, t in zip(qps, ts, strict=True)],
        ]
        x = [j + i * width for j in range(len(shapes))]
        ax.bar(x, qps, width, yerr=err, capsize=3, label=who)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(shapes))], shapes)
    ax.set_ylabel("queries / s (higher is better)")
    ax.set_title(f"Exact k-NN, float32, k={K}, {n_q:,.0f} queries (median, range)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
