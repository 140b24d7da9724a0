"""Sparse KMeans and sparse kneighbors: xplearn against scikit-learn (#12).

The data are a TF-IDF matrix of generated text, built once and not timed: a
vocabulary of 20 000 synthetic words, 50 000 documents whose words are drawn
from a Zipf law (``p(rank r) ∝ 1/r``, ``numpy.random.default_rng(0)``), with
a mean length chosen so that the expected number of distinct words per
document is 0.5% of the vocabulary; scikit-learn's ``TfidfVectorizer`` turns
them into a float64 CSR matrix (its defaults: l2-normalised rows).  The
actual shape and density are printed and written to the results.

(a) KMeans on the CSR matrix: ``xplearn.cluster.KMeans`` against
    ``sklearn.cluster.KMeans``, both ``algorithm="lloyd"``, the same 64
    initial centres (rows of the matrix picked by ``default_rng(0)``),
    ``n_init=1``, ``max_iter=20``, ``tol=0``: seconds, milliseconds per
    iteration (seconds / ``n_iter_``), ``n_iter_`` of each (scikit-learn stops
    early when the labels no longer change) and the relative difference of
    the final inertia.  Then MiniBatchKMeans, same initial centres,
    ``batch_size=4096``, ``max_iter=3`` (epochs), ``tol=0``,
    ``max_no_improvement=None``, ``random_state=0``; the final inertia on
    the whole matrix is compared.
(b) kneighbors on the CSR matrix: 1 000 query rows of the matrix against all
    50 000, k=10, ``algorithm="brute"``, metrics euclidean and cosine; the
    agreement is the fraction of identical index rows (ties may differ) and
    the largest difference of the distances relative to each row's k-th
    distance.

Each contender is warmed up, then ``--repeats`` runs are interleaved (A B, A
B, …) and the median and range quoted.  A contender whose first run (the
warm-up, on a tenth of the work for kneighbors) projects past ``--budget``
seconds a call is run once, timed, and marked so, instead of being repeated.
torch is imported before scikit-learn inside ``main`` (harness.start), every
thread pool is set to ``--threads``; scikit-learn is timed in this process
only (the own-process comparison of the dense scripts hands arrays over as
.npy files, not sparse matrices).  Writes ``sparse.md`` and ``sparse.json``.

    python benchmarks/sparse_tfidf.py            # 50 000 × 20 000, ~3 min on 2 cores
    python benchmarks/sparse_tfidf.py --quick --out /tmp/sparse   # 5 000 × 2 000
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

import numpy as np

import harness
from harness import Timing, interleave, measure

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    import scipy.sparse

DOCS, TERMS, DENSITY = 50_000, 20_000, 0.005
QUICK_DOCS, QUICK_TERMS = 5_000, 2_000
N_QUERIES, QUICK_QUERIES = 1_000, 100
K_CLUSTERS, ITERS = 64, 20
MB_BATCH, MB_EPOCHS = 4096, 3
K = 10
BUDGET = 60.0  # seconds a call; beyond it a contender is timed once
PROBE = 10  # kneighbors warm-up: a tenth of the queries

# Which thread pools each side runs on (names from harness.thread_pools).
POOLS = {
    "xplearn": ("numpy openblas",),
    "scikit-learn": ("FAISS+scikit-learn openmp", "scikit-learn openmp"),
}


# --- data -----------------------------------------------------------------------


def mean_length(p: np.ndarray, distinct: float) -> int:
    """Tokens per document whose expected number of distinct words is ``distinct``."""
    lo, hi = 1, 1
    while np.sum(-np.expm1(hi * np.log1p(-p))) < distinct:
        hi *= 2
    while lo < hi:
        mid = (lo + hi) // 2
        if np.sum(-np.expm1(mid * np.log1p(-p))) < distinct:
            lo = mid + 1
        else:
            hi = mid
    return lo


def tfidf(docs: int, terms: int) -> tuple[scipy.sparse.csr_matrix, dict[str, Any]]:
    """The TF-IDF matrix of generated Zipf text, and how it was made."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    rng = np.random.default_rng(0)
    vocab = np.array([f"w{i:05d}" for i in range(terms)])
    p = 1.0 / np.arange(1, terms + 1)
    p /= p.sum()
    length = mean_length(p, DENSITY * terms)
    lengths = np.maximum(1, rng.poisson(length, docs))
    words = vocab[rng.choice(terms, size=int(lengths.sum()), p=p)]
    ends = np.cumsum(lengths)
    text = [" ".join(words[e - n : e]) for e, n in zip(ends, lengths, strict=True)]
    X = TfidfVectorizer().fit_transform(text).tocsr()
    X.sort_indices()
    made = {
        "docs": docs,
        "vocabulary": terms,
        "zipf_exponent": 1.0,
        "mean_tokens_per_doc": length,
        "shape": list(X.shape),
        "nnz": int(X.nnz),
        "density": X.nnz / (X.shape[0] * X.shape[1]),
        "dtype": str(X.dtype),
    }
    return X, made


# --- contenders -----------------------------------------------------------------


def warm(
    who: str,
    full: Callable[[], Any],
    probe: Callable[[], Any],
    scale: float,
    budget: float,
) -> tuple[Any, Timing | None]:
    """Warm ``full`` up, or time it once if its probe projects past ``budget``.

    Returns the result of the run and, for a contender over budget, the
    Timing of its single run (else None: it is to be interleaved).
    """
    wall, _, out = measure(probe)
    projected = wall * scale
    if projected > budget:
        print(f"{who:34s} probe {wall:.2f} s projects {projected:.3g} s: timed once")
        wall, cpu, out = measure(full)
        t = Timing(where=f"single run (over the {budget:g} s budget)")
        t.add(wall, cpu)
        return out, t
    if probe is not full:
        out = full()
    print(f"{who:34s} warm", flush=True)
    return out, None


def time_section(
    args: argparse.Namespace,
    funcs: dict[str, tuple[Callable[[], Any], Callable[[], Any], float]],
) -> tuple[dict[str, Timing], dict[str, Any]]:
    """Warm up (or cap), interleave the repeats; timings and last results."""
    last: dict[str, Any] = {}
    capped: dict[str, Timing] = {}
    runs = {}
    for who, (full, probe, scale) in funcs.items():
        last[who], t = warm(who, full, probe, scale, args.budget)
        if t is not None:
            capped[who] = t
            continue

        def timed(who: str = who, f: Callable[[], Any] = full) -> tuple[float, float]:
            wall, cpu, last[who] = measure(f)
            return wall, cpu

        runs[who] = timed
    times = interleave(runs, args.repeats)
    times.update(capped)
    return {who: times[who] for who in funcs}, last


def side(who: str) -> str:
    return "xplearn" if who.startswith("xplearn") else "scikit-learn"


def kmeans_section(
    args: argparse.Namespace, X: Any
) -> tuple[dict[str, Timing], dict[str, dict[str, Any]]]:
    import sklearn.cluster as sk

    import xplearn.cluster as xp

    init = X[np.random.default_rng(0).choice(X.shape[0], K_CLUSTERS, replace=False)]
    init = init.toarray()
    lloyd = {"n_init": 1, "algorithm": "lloyd", "max_iter": ITERS, "tol": 0.0}
    minibatch = {
        "n_init": 1,
        "batch_size": MB_BATCH,
        "max_iter": MB_EPOCHS,
        "tol": 0.0,
        "max_no_improvement": None,
        "random_state": 0,
    }

    def job(cls: Any, kw: dict[str, Any]) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            km = cls(K_CLUSTERS, init=init, **kw).fit(X)
            return {
                "n_iter": int(km.n_iter_),
                "n_steps": int(getattr(km, "n_steps_", km.n_iter_)),
                "inertia": float(km.inertia_),
            }

        return run

    jobs = {
        "xplearn KMeans lloyd": job(xp.KMeans, lloyd),
        "scikit-learn KMeans lloyd": job(sk.KMeans, lloyd),
        "xplearn MiniBatchKMeans": job(xp.MiniBatchKMeans, minibatch),
        "scikit-learn MiniBatchKMeans": job(sk.MiniBatchKMeans, minibatch),
    }
    print("\n== KMeans", flush=True)
    times, last = time_section(args, {w: (f, f, 1.0) for w, f in jobs.items()})
    for who, t in times.items():
        r = last[who]
        print(
            f"{who:30s} {t.median:8.3f} s [{t.span()}]  {r['n_iter']:3d} iterations  "
            f"inertia {r['inertia']:.8g}  cores busy {t.cores:.2f}  {t.where}",
            flush=True,
        )
    return times, last


def kneighbors_section(
    args: argparse.Namespace, X: Any, n_q: int, metric: str
) -> tuple[dict[str, Timing], dict[str, Any]]:
    import sklearn.neighbors as sk

    import xplearn
    import xplearn.neighbors as xp

    rows = np.random.default_rng(1).choice(X.shape[0], n_q, replace=False)
    Q = X[np.sort(rows)]
    few = Q[: max(1, n_q // PROBE)]
    kw = {"n_neighbors": K, "algorithm": "brute", "metric": metric}
    fitted = {
        "xplearn NearestNeighbors": xp.NearestNeighbors(**kw).fit(X),
        "scikit-learn NearestNeighbors": sk.NearestNeighbors(**kw).fit(X),
    }

    def job(nn: Any, q: Any) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
        def run() -> tuple[np.ndarray, np.ndarray]:
            dist, ind = nn.kneighbors(q)
            return xplearn.to_numpy(dist), xplearn.to_numpy(ind)

        return run

    funcs = {
        w: (job(nn, Q), job(nn, few), n_q / few.shape[0]) for w, nn in fitted.items()
    }
    print(f"\n== kneighbors, {metric}", flush=True)
    times, last = time_section(args, funcs)
    for who, t in times.items():
        print(
            f"{who:30s} {t.median:8.3f} s [{t.span()}]  cores busy {t.cores:.2f}  "
            f"{t.where}",
            flush=True,
        )
    return times, last


def agreement(
    got: tuple[np.ndarray, np.ndarray], ref: tuple[np.ndarray, np.ndarray]
) -> tuple[float, float]:
    """Identical index rows; max |Δ distance| relative to each row's k-th distance."""
    (d, i), (d_ref, i_ref) = got, ref
    same = float(np.mean(np.all(i == i_ref, axis=1)))
    scale = np.maximum(np.abs(d_ref[:, -1:]), np.finfo(np.float64).tiny)
    return same, float(np.max(np.abs(d - d_ref) / scale))


# --- results --------------------------------------------------------------------


def main() -> None:
    p = harness.parser(__doc__)
    p.add_argument(
        "--budget",
        type=float,
        default=BUDGET,
        help="seconds a call beyond which a contender is timed once, not "
        f"repeated (default {BUDGET:g})",
    )
    args = harness.parse(p)
    if args.only:
        p.error("sparse_tfidf.py times scikit-learn in this process only (no --only)")
    run = harness.Run(args)
    harness.import_peers(args.threads, "torch", "sklearn")
    pools = harness.thread_pools()
    print(f"threads: {harness.format_pools(pools)}")
    docs, terms, n_q = (
        (QUICK_DOCS, QUICK_TERMS, QUICK_QUERIES)
        if args.quick
        else (DOCS, TERMS, N_QUERIES)
    )
    t0 = time.perf_counter()
    X, made = tfidf(docs, terms)
    made["build_seconds"] = time.perf_counter() - t0
    print(
        f"TF-IDF {X.shape[0]:,} × {X.shape[1]:,}, density {made['density']:.4%}, "
        f"{made['mean_tokens_per_doc']} tokens a document, built in "
        f"{made['build_seconds']:.1f} s",
        flush=True,
    )
    kmeans = kmeans_section(args, X)
    knn = {m: kneighbors_section(args, X, n_q, m) for m in ("euclidean", "cosine")}
    write(args, run, pools, made, n_q, kmeans, knn)
    print(f"\nresults in {args.out}")
    if run.warnings:
        print("\n".join(f"!!!!! WARNING: {w}" for w in run.warnings), file=sys.stderr)


def dominates(who: str, t: Timing) -> str:
    """What is known of where the time goes."""
    if who == "xplearn KMeans lloyd":
        return (
            "E-step: sparse × dense products on torch's CPU kernel (MKL, "
            "all threads); M-step: scikit-learn's one-pass sparse kernel"
        )
    if "KMeans" in who:
        if side(who) == "xplearn":
            # a batch's product is below the size that goes to torch
            return "sparse × dense products (scipy, one thread) per batch"
        return "scikit-learn's Cython sparse kernels (OpenMP)"
    if side(who) == "xplearn":
        return (
            "products: BLAS on the columns >10% of rows hold + scikit-learn's "
            "sparse kernel on the rest, tiles on 2 threads; exact re-ranking"
        )
    return "scikit-learn's sparse_matmul_to_dense (one thread) + argpartition"


def write(
    args: argparse.Namespace,
    run: harness.Run,
    pools: dict[str, int],
    made: dict[str, Any],
    n_q: int,
    kmeans: tuple[dict[str, Timing], dict[str, dict[str, Any]]],
    knn: dict[str, tuple[dict[str, Timing], dict[str, Any]]],
) -> None:
    def threads(who: str, t: Timing) -> str:
        return harness.threads_of(t.pools or pools, POOLS[side(who)])

    shape = f"{made['shape'][0]:,} × {made['shape'][1]:,}"
    blob: dict[str, Any] = {"data": made, "args": {}, "kmeans": {}, "kneighbors": {}}
    blob["args"] = {
        "threads": args.threads,
        "repeats": args.repeats,
        "quick": args.quick,
        "budget": args.budget,
    }
    lines = [
        f"# Sparse KMeans and kneighbors (TF-IDF {shape}, float64 CSR)",
        "",
        *run.header(pools),
        "",
        (
            f"Data: {made['docs']:,} generated documents over a vocabulary of "
            f"{made['vocabulary']:,} synthetic words drawn from a Zipf law "
            f"(exponent 1, `default_rng(0)`), {made['mean_tokens_per_doc']} tokens a "
            f"document on average; `TfidfVectorizer()` gives {shape} with "
            f"{made['nnz']:,} stored values, density {made['density']:.3%} "
            f"({made['dtype']}; built in {made['build_seconds']:.1f} s, not timed). "
            "scikit-learn is timed in this process only. *Cores busy* is the median "
            "of process CPU time over wall time. A contender whose warm-up projects "
            f"past {args.budget:g} s a call is timed once (*timed*: single run)."
        ),
        "",
        (
            f"## KMeans, k={K_CLUSTERS}, the same initial rows, n_init=1; lloyd "
            f"max_iter={ITERS}, tol=0; MiniBatchKMeans batch_size={MB_BATCH}, "
            f"max_iter={MB_EPOCHS} epochs, tol=0"
        ),
        "",
        (
            "| contender | threads | seconds (median) | range (min–max) | speed-up vs "
            "scikit-learn | iterations (n_iter_) | ms / iteration | inertia | "
            "relative difference of inertia vs scikit-learn | cores busy | timed | "
            "what dominates |"
        ),
        "| --- | --- |" + " ---: |" * 8 + " --- | --- |",
    ]
    times, last = kmeans
    for who, t in times.items():
        ref_who = who.replace("xplearn", "scikit-learn")
        ref_t, ref = times[ref_who], last[ref_who]
        r = last[who]
        rel = (r["inertia"] - ref["inertia"]) / ref["inertia"]
        lines.append(
            f"| {who} | {threads(who, t)} | {t.median:.3f} | {t.span()} | "
            f"{ref_t.median / t.median:.2f}× | {r['n_iter']} | "
            f"{1e3 * t.median / r['n_iter']:.1f} | {r['inertia']:.8g} | {rel:+.1e} | "
            f"{t.cores:.2f} | {t.where} | {dominates(who, t)} |"
        )
        blob["kmeans"][who] = {
            "wall": t.wall,
            "cpu": t.cpu,
            "median": t.median,
            "where": t.where,
            "threads": threads(who, t),
            **r,
            "ms_per_iteration": 1e3 * t.median / r["n_iter"],
            "relative_inertia_vs_sklearn": rel,
        }
    lines += [
        "",
        (
            "scikit-learn's lloyd stops before max_iter when no label changes "
            "(even with tol=0), so compare the milliseconds per iteration. For "
            "MiniBatchKMeans n_iter_ counts epochs (passes over the matrix) and "
            "the inertia is that of the whole matrix."
        ),
        "",
        (
            f"## kneighbors: {n_q:,} query rows of the matrix against all "
            f"{made['shape'][0]:,}, k={K}, algorithm=brute"
        ),
        "",
        (
            "| metric | contender | threads | seconds (median) | range (min–max) | "
            "speed-up vs scikit-learn | identical index rows | max relative distance "
            "difference | cores busy | timed | what dominates |"
        ),
        "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for metric, (times, last) in knn.items():
        ref_who = "scikit-learn NearestNeighbors"
        for who, t in times.items():
            same, rel = agreement(last[who], last[ref_who])
            lines.append(
                f"| {metric} | {who} | {threads(who, t)} | {t.median:.3f} | "
                f"{t.span()} | {times[ref_who].median / t.median:.2f}× | {same:.4f} | "
                f"{rel:.1e} | {t.cores:.2f} | {t.where} | "
                f"{dominates(f'{who} {metric}', t)} |"
            )
            blob["kneighbors"][f"{metric} {who}"] = {
                "wall": t.wall,
                "cpu": t.cpu,
                "median": t.median,
                "where": t.where,
                "threads": threads(who, t),
                "identical_index_rows": same,
                "max_relative_distance_difference": rel,
            }
    lines += [
        "",
        (
            "The distance difference is relative to each row's k-th scikit-learn "
            "distance (the queries are rows of the matrix: their own distance is 0). "
            "*What dominates*: for kneighbors from cProfile runs on 200-400 "
            "queries; for KMeans read from the implementations, not profiled."
        ),
        *run.warning_lines(),
    ]
    blob["header"] = run.header(pools)
    blob["warnings"] = run.warnings
    stem = "sparse" + (f"-{args.tag}" if args.tag else "")
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    (args.out / f"{stem}.json").write_text(
        json.dumps(blob, indent=1, ensure_ascii=False) + "\n"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
