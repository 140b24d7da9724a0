"""KMeans: xplearn (numpy, torch) against scikit-learn, FAISS, fast-pytorch-kmeans.

float32, k=64 (k=8 in (e)), every contender starting from the same initial
centres:

(a) milliseconds per Lloyd iteration over 20 fixed iterations (tol=0), on
    ``make_blobs`` data (N=200 000 × d=32, 64 centres, std 4); xplearn's
    Lloyd also with ``screening="all"`` (no difference at d=32, where the
    opt-in bfloat16 E-step screen does not run);
(b) seconds to convergence (scikit-learn's defaults) on the same data, with
    the iterations, the final inertia and the agreement of the labels with
    scikit-learn's lloyd, to show the work is the same;
(c) seconds to convergence on overlapping blobs (N=100 000 × d=32; 16 blob
    centres on a 4 × 4 grid of spacing 3 in the first two coordinates, zero in
    the others; every point its centre plus standard normal noise in all 32
    coordinates).  On such data float32 runs of different implementations
    part ways, so the work is compared by the relative difference of the
    final inertia, not by the labels (PERF-NOTES);
(d) as (a) with 128 features, where the opt-in bfloat16 E-step screen
    (``screening="all"``) runs: xplearn's Lloyd with and without it, against
    scikit-learn's;
(e) as (a) with 16 features and 8 centres (``make_blobs`` with 8 centres;
    scikit-learn's default n_clusters), every contender of (a) but the
    screen's row: where xplearn's numpy E-step computes each distance tile
    transposed (centres × points).  The runs converge strictly before 20
    iterations there, so a figure is a whole fit's time over its iterations;
(f) k-means++ seeding alone (``kmeans_plusplus``, 64 centres, the same
    random state) on the data of (a): the part of a default fit
    (``init="k-means++"``) that (a)-(e) leave out by starting every
    contender from the same centres.

Fairness as in ``run.py`` (see harness.py): torch imported before FAISS and
scikit-learn, inside ``main``; every thread pool set to ``--threads`` and
printed; scikit-learn and FAISS also timed in a process of their own (this
script with ``--only sklearn|faiss``, with the OpenBLAS core the newest
OpenBLAS here detects) and the faster figure used; warm-up,
interleaved repeats, median and range; PERF-NOTES sanity check.  Writes
``kmeans.md`` and ``kmeans.png``.

    nox -s bench                          # or: python benchmarks/kmeans.py
    python benchmarks/kmeans.py --quick   # smoke test, results in a temporary dir
"""

from __future__ import annotations

import statistics
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

import harness
from harness import OwnProcess, Timing, interleave, pick_faster

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from pathlib import Path

N, D, K, ITERS = 200_000, 32, 64, 20
OVERLAP_N, OVERLAP_GRID, OVERLAP_SPACING = 100_000, 4, 3.0
QUICK = 10  # --quick divides the numbers of points by this
# (d): wide enough for the bfloat16 E-step screen, and who runs there.
WIDE_D = 128
SCREEN_ROWS = {
    "xplearn lloyd (numpy)",
    "xplearn lloyd (torch)",
    "xplearn lloyd (numpy, screening all)",
    "scikit-learn lloyd",
}
# (e): few centres and features (scikit-learn's default n_clusters), where
# xplearn's numpy E-step computes the distance tiles transposed; every row of
# (a) but the screen's (it does not run at 16 features).
SMALL_D, SMALL_K = 16, 8
SMALL_ROWS = {
    "xplearn lloyd (torch)",
    "xplearn lloyd (numpy)",
    "xplearn elkan (torch)",
    "xplearn elkan (numpy)",
    "scikit-learn lloyd",
    "scikit-learn elkan",
    "FAISS Kmeans (all points)",
    "fast-pytorch-kmeans",
}

# PERF-NOTES figures on this machine (float32, 2 threads), seconds per Lloyd
# iteration, by problem.
NOTES: dict[str, dict[str, float]] = {
    # "KMeans (200 000 × 32, k=64, float32), ms per Lloyd iteration"
    "scikit-learn lloyd": {
        "(a) 200,000 × d=32, k=64": 12.9e-3,
        # the 2026-11-27 re-run: 0.56 s for 144 iterations
        "(c) 100,000 × d=32, k=64": 0.56 / 144,
    },
    "FAISS Kmeans (all points)": {"(a) 200,000 × d=32, k=64": 20e-3},
}

Result = tuple[int, float, Any]  # n_iter, inertia, labels (or None)


def pools_of(name: str) -> tuple[str, ...]:
    """The thread pools contender ``name`` runs on (harness.thread_pools)."""
    if "(torch)" in name or name.startswith("fast-pytorch"):
        return ("torch intra-op",)
    if "(numpy" in name:  # the screen's products run in torch
        return ("numpy openblas", "torch intra-op")
    if name.startswith("FAISS"):
        return ("FAISS omp_get_max_threads", "FAISS openblas")
    return ("FAISS+scikit-learn openmp", "scipy openblas")


# --- data -----------------------------------------------------------------------


def blobs(n: int, d: int = D, k: int = K) -> np.ndarray:
    """``make_blobs``: n points in d dimensions around k centres, std 4."""
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(
        n_samples=n, n_features=d, centers=k, cluster_std=4.0, random_state=0
    )
    return X.astype(np.float32)


def overlapping_blobs(n: int) -> np.ndarray:
    """16 unit-std blobs whose centres lie on a 4 × 4 grid of spacing 3."""
    rng = np.random.default_rng(0)
    g = np.arange(OVERLAP_GRID) * OVERLAP_SPACING
    centres = np.zeros((OVERLAP_GRID**2, D))
    centres[:, :2] = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    labels = rng.integers(0, len(centres), n)
    return (centres[labels] + rng.standard_normal((n, D))).astype(np.float32)


def initial_centres(X: np.ndarray, k: int = K) -> np.ndarray:
    """k distinct points of X, the same for every contender (k = len(init) below)."""
    return X[np.random.default_rng(0).choice(len(X), k, replace=False)]


# --- the peers' jobs, the same code in this process and in their own ------------


def sklearn_kmeans(
    X: np.ndarray, init: np.ndarray, algorithm: str, **kw: Any
) -> Callable[[], Result]:
    from sklearn.cluster import KMeans

    k = len(init)  # also in --only sklearn, which gets the same init

    def run() -> Result:
        km = KMeans(k, init=init, n_init=1, algorithm=algorithm, **kw).fit(X)
        return km.n_iter_, float(km.inertia_), km.labels_

    return run


def faiss_kmeans(X: np.ndarray, init: np.ndarray) -> Callable[[], Result]:
    """FAISS on every point (by default it trains on a sample of 256·k)."""
    import faiss

    k = len(init)  # also in --only faiss, which gets the same init

    def run() -> Result:
        km = faiss.Kmeans(X.shape[1], k, niter=ITERS, max_points_per_centroid=len(X))
        km.train(X, init_centroids=init)
        return ITERS, float(km.obj[-1]), None

    return run


def own_process_job(
    peer: str, job: dict[str, Any], arrays: dict[str, np.ndarray]
) -> tuple[Callable[[], Result], Any, Callable[[Result], Any]]:
    """A job for ``--only PEER``: (warm run, info for the parent, digest)."""
    X, init = arrays["X"], arrays["init"]
    if peer == "faiss":
        run = faiss_kmeans(X, init)
    elif job["algorithm"] == "seeding":
        run = sklearn_seeding(X, len(init))
    else:
        run = sklearn_kmeans(X, init, job["algorithm"], **job["kw"])
    run()  # warm-up

    def digest(result: Result) -> Any:
        n_iter, inertia, labels = result
        return [n_iter, inertia, None if labels is None else labels.tolist()]

    return run, None, digest


# --- in this process ------------------------------------------------------------


def contenders(
    X: np.ndarray, init: np.ndarray, kw: dict[str, Any], fixed: bool
) -> dict[str, Callable[[], Result]]:
    """Every contender on (X, init) with KMeans options ``kw``; k = len(init)."""
    import torch

    import xplearn
    from xplearn.cluster import KMeans

    k = len(init)
    Xt, It = torch.from_numpy(X), torch.from_numpy(init)

    def ours(
        data: Any, start: Any, algorithm: str, screening: str = "auto"
    ) -> Callable[[], Result]:
        def run() -> Result:
            with xplearn.config_context(screening=screening):
                km = KMeans(k, init=start, n_init=1, algorithm=algorithm, **kw)
                km.fit(data)
            return km.n_iter_, float(km.inertia_), xplearn.to_numpy(km.labels_)

        return run

    funcs = {
        f"xplearn {a} ({b})": ours(*((Xt, It) if b == "torch" else (X, init)), a)
        for a in ("lloyd", "elkan")
        for b in ("torch", "numpy")
    }
    # The opt-in bfloat16 E-step screen (d >= 64): what it gives.
    funcs["xplearn lloyd (numpy, screening all)"] = ours(X, init, "lloyd", "all")
    funcs["scikit-learn lloyd"] = sklearn_kmeans(X, init, "lloyd", **kw)
    funcs["scikit-learn elkan"] = sklearn_kmeans(X, init, "elkan", **kw)
    if fixed:
        from fast_pytorch_kmeans import KMeans as FastKMeans

        def fast() -> Result:
            km = FastKMeans(n_clusters=k, max_iter=ITERS, tol=-1.0, mode="euclidean")
            labels = km.fit_predict(Xt.clone(), centroids=It.clone())
            return ITERS, float("nan"), labels.numpy()

        funcs["FAISS Kmeans (all points)"] = faiss_kmeans(X, init)
        funcs["fast-pytorch-kmeans"] = fast
    return funcs


def sklearn_seeding(X: np.ndarray, k: int) -> Callable[[], Result]:
    """scikit-learn's ``kmeans_plusplus``: (1, nan, the seeds' indices)."""
    from sklearn.cluster import kmeans_plusplus

    def run() -> Result:
        return 1, float("nan"), kmeans_plusplus(X, k, random_state=0)[1]

    return run


def seeding_contenders(
    X: np.ndarray, init: np.ndarray, kw: dict[str, Any], fixed: bool
) -> dict[str, Callable[[], Result]]:
    """k-means++ seeding of len(init) centres: xplearn (numpy, torch), scikit-learn."""
    import torch

    import xplearn
    from xplearn.cluster import kmeans_plusplus

    k = len(init)

    def ours(data: Any) -> Callable[[], Result]:
        def run() -> Result:
            idx = kmeans_plusplus(data, k, random_state=0)[1]
            return 1, float("nan"), xplearn.to_numpy(idx)

        return run

    return {
        "xplearn kmeans_plusplus (numpy)": ours(X),
        "xplearn kmeans_plusplus (torch)": ours(torch.from_numpy(X)),
        "scikit-learn kmeans_plusplus": sklearn_seeding(X, k),
    }


ALONE = {  # contender → (peer, job)
    "scikit-learn lloyd": ("sklearn", "lloyd"),
    "scikit-learn elkan": ("sklearn", "elkan"),
    "scikit-learn kmeans_plusplus": ("sklearn", "seeding"),
    "FAISS Kmeans (all points)": ("faiss", None),
}


def section(
    args: argparse.Namespace,
    run: harness.Run,
    alone: dict[str, OwnProcess],
    tag: str,
    X: np.ndarray,
    kw: dict[str, Any],
    only: set[str] | None = None,
    k: int = K,
    make: Callable[..., dict[str, Callable[[], Result]]] = contenders,
) -> tuple[dict[str, Timing], dict[str, Result]]:
    """Time every contender on X (own processes included): timings, last results.

    ``only``: the contenders to time (all by default); ``k``: the centres
    (the own processes take it from the initial centres handed over);
    ``make``: the contenders' maker (:func:`contenders`, or
    :func:`seeding_contenders`).
    """
    print(f"\n== {tag}", flush=True)
    init = initial_centres(X, k)
    fixed = "max_iter" in kw
    funcs = make(X, init, kw, fixed)
    if only is not None:
        funcs = {who: f for who, f in funcs.items() if who in only}
    results = {who: f() for who, f in funcs.items()}  # warm-up
    for who, r in results.items():
        print(f"{who:30s} warm; {r[0]} iterations, inertia {r[1]:.6g}")
    last: dict[str, Result] = {}

    def keep_last(who: str) -> Callable[[], tuple[float, float]]:
        def timed() -> tuple[float, float]:
            wall, cpu, last[who] = harness.measure(funcs[who])
            return wall, cpu

        return timed

    runs = {who: keep_last(who) for who in funcs}
    for who, (peer, algorithm) in ALONE.items():
        if who in funcs:
            job = {"algorithm": algorithm, "kw": kw}
            alone[peer].setup(f"{tag}-{who}", job, X=X, init=init)
            runs[f"{who} (own process)"] = alone[peer].timer(f"{tag}-{who}")
    times = interleave(runs, args.repeats)
    pools = harness.thread_pools()
    for who, (peer, _) in ALONE.items():
        if who in funcs:
            n_iter, inertia, labels = alone[peer].result(f"{tag}-{who}")
            own = (n_iter, inertia, None if labels is None else np.asarray(labels))
            pick_faster(times, who, alone[peer], pools)
            if times[who].where.startswith("own"):
                last[who] = own
    for who, t in times.items():
        n_iter = last[who][0]
        print(
            f"{who:26s} {t.median:7.3f} s [{t.span()}]  {n_iter:3d} iterations  "
            f"{1e3 * t.median / n_iter:6.2f} ms/iteration  threads "
            f"{harness.threads_of(t.pools or pools, pools_of(who))}  cores busy "
            f"{t.cores:.2f}  timed in {t.where}",
            flush=True,
        )
    return times, last


def _screen_note() -> str:
    """Say so where the CPU has no fast bfloat16 products (the screen is off)."""
    from xplearn.neighbors._screen import bf16_is_fast

    if bf16_is_fast():
        return ""
    return (
        " **This CPU has no fast bfloat16 products (see Machine): the screen "
        "does not run, and both numpy rows run the same float32 code; their "
        "difference is the machine's noise.**"
    )


def main() -> None:
    started = harness.start(__doc__, own_process_job)
    if started is None:
        return
    args, run, pools = started
    n, n_overlap = (N // QUICK, OVERLAP_N // QUICK) if args.quick else (N, OVERLAP_N)
    X, X_overlap = blobs(n), overlapping_blobs(n_overlap)
    X_wide = blobs(n, WIDE_D)
    X_small = blobs(n, SMALL_D, SMALL_K)
    problems = {
        "a": f"(a) {n:,} × d={D}, k={K}",
        "b": f"(b) {n:,} × d={D}, k={K}",
        "c": f"(c) {n_overlap:,} × d={D}, k={K}",
        "d": f"(d) {n:,} × d={WIDE_D}, k={K}",
        "e": f"(e) {n:,} × d={SMALL_D}, k={SMALL_K}",
        "f": f"(f) {n:,} × d={D}, k={K}",
    }
    with (
        OwnProcess(__file__, "sklearn", args.threads) as sklearn_alone,
        OwnProcess(__file__, "faiss", args.threads) as faiss_alone,
    ):
        alone = {"sklearn": sklearn_alone, "faiss": faiss_alone}
        for child in alone.values():
            print(f"threads, {child.peer} alone: {harness.format_pools(child.pools)}")
        fixed_kw = {"max_iter": ITERS, "tol": 0.0}
        sections = {
            "a": section(args, run, alone, problems["a"], X, fixed_kw),
            "b": section(args, run, alone, problems["b"], X, {}),
            "c": section(args, run, alone, problems["c"], X_overlap, {}),
            "d": section(
                args, run, alone, problems["d"], X_wide, fixed_kw, SCREEN_ROWS
            ),
            "e": section(
                args,
                run,
                alone,
                problems["e"],
                X_small,
                fixed_kw,
                SMALL_ROWS,
                k=SMALL_K,
            ),
            "f": section(
                args, run, alone, problems["f"], X, {}, make=seeding_contenders
            ),
        }
    for key in ("a", "c", "d", "e"):
        times, last = sections[key]
        for who, t in times.items():
            per_iteration = t.median / last[who][0]
            run.check(who, problems[key], per_iteration, NOTES.get(who, {}))
    write(args, run, pools, alone, problems, sections)
    print(f"\nresults in {args.out}")
    if run.warnings:
        print("\n".join(f"!!!!! WARNING: {w}" for w in run.warnings), file=sys.stderr)


def write(
    args: argparse.Namespace,
    run: harness.Run,
    pools: dict[str, int],
    alone: dict[str, OwnProcess],
    problems: dict[str, str],
    sections: dict[str, tuple[dict[str, Timing], dict[str, Result]]],
) -> None:
    def threads(who: str, t: Timing) -> str:
        return harness.threads_of(t.pools or pools, pools_of(who))

    lines = [
        (
            f"# KMeans benchmark (float32, k={K}; k={SMALL_K} in (e); same initial "
            "centres)"
        ),
        "",
        *run.header(pools),
        harness.own_process_line(alone),
        "",
        (
            "scikit-learn and FAISS are timed both in this process (torch loaded) and "
            "in a process of their own (`kmeans.py --only sklearn|faiss`: numpy and "
            "that peer alone, the same data and threads, its runs interleaved with "
            "the others). Each row uses the faster figure and says which (*timed "
            "in*), with the other median beside it. *Cores busy* is the median of "
            "process CPU time over wall time."
        ),
        "",
        f"## {problems['a']}: per Lloyd iteration, {ITERS} fixed iterations (tol=0)",
        "",
        "`make_blobs` data: 64 centres, cluster_std=4.",
        "",
        (
            "| contender | threads | ms / iteration (median) | range (min–max) | "
            "vs faster scikit-learn lloyd | cores busy | timed in |"
        ),
        "| --- | --- | ---: | --- | ---: | ---: | --- |",
    ]
    times, last = sections["a"]
    ms = {who: 1e3 / last[who][0] for who in times}  # scale: seconds → ms/iteration
    ref = times["scikit-learn lloyd"].median * ms["scikit-learn lloyd"]
    for who, t in times.items():
        per = t.median * ms[who]
        lines.append(
            f"| {who} | {threads(who, t)} | {per:.1f} | {t.span(ms[who], '.1f')} | "
            f"{ref / per:.2f}× | {t.cores:.2f} | {t.where} |"
        )
    lines += per_iteration(
        sections["d"],
        threads,
        f"## {problems['d']}: per Lloyd iteration, {ITERS} fixed iterations, "
        "the bfloat16 E-step screen",
        (
            f"`make_blobs` data as in (a) with {WIDE_D} features. With "
            '`screening="all"` (opt-in) the float32 Lloyd E-step is screened in '
            "bfloat16 from 64 features on (labels, centres and inertia equal "
            "those of the default); in (a), at 32 features, it is not." + _screen_note()
        ),
    )
    lines += per_iteration(
        sections["e"],
        threads,
        f"## {problems['e']}: per Lloyd iteration, at most {ITERS} iterations (tol=0)",
        (
            f"`make_blobs` data: {SMALL_K} centres, cluster_std=4; scikit-learn's "
            "default n_clusters. xplearn's numpy E-step computes each distance tile "
            "transposed (centres × points) for few centres or features, where a "
            "row-wise argmin costs more than the GEMM. With so few centres the "
            "runs converge strictly (labels unchanged) before the last iteration, "
            "where scikit-learn and xplearn stop even with tol=0 (FAISS and "
            "fast-pytorch-kmeans run them all): each figure is a whole fit's time "
            "over its iterations, the fit's fixed costs included."
        ),
    )
    lines += converged(
        sections["b"],
        threads,
        f"## {problems['b']}: to convergence (scikit-learn's defaults: "
        "max_iter=300, tol=1e-4)",
        "The same `make_blobs` data.",
        labels=True,
    )
    lines += converged(
        sections["c"],
        threads,
        f"## {problems['c']}: overlapping blobs, to convergence",
        (
            f"16 blobs: centres on a {OVERLAP_GRID} × {OVERLAP_GRID} grid of spacing "
            f"{OVERLAP_SPACING:g} in the first two coordinates (0 in the other "
            f"{D - 2}), every point its centre plus standard normal noise in all "
            f"{D} coordinates; k={K}. float32 runs part ways on such data, so the "
            "inertia is compared, not the labels."
        ),
        labels=False,
    )
    lines += seeding(
        sections["f"],
        threads,
        f"## {problems['f']}: k-means++ seeding (`kmeans_plusplus`, random_state=0)",
        (
            'The seeding of a default fit (`init="k-means++"`, one run), which '
            "(a)–(e) leave out by starting every contender from the same centres: "
            f"greedy k-means++ with {2 + int(np.log(K))} candidates a step on the "
            "data of (a). xplearn draws in float64 on every backend (one seed, the "
            "same centres everywhere); scikit-learn computes in the data's float32, "
            "so its seeds may differ where a draw falls near a boundary."
        ),
    )
    lines += [
        "",
        (
            "Sanity check against ../shared/PERF-NOTES.md (2 threads): scikit-learn "
            "lloyd 12.9 ms and FAISS 20 ms per iteration in (a); scikit-learn lloyd "
            "0.56 s for 144 iterations (3.9 ms each) in (c). A peer more than "
            f"{harness.SLOWER_THAN_NOTES}× slower per iteration is flagged below."
            + run.unchecked()
        ),
        *run.warning_lines(),
    ]
    stem = "kmeans" + (f"-{args.tag}" if args.tag else "")
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(sections, problems, args.out / f"{stem}.png")


def table_head(title: str, about: str, columns: str) -> list[str]:
    """Return a section's title, text and table header.

    The columns: contender, threads, the ``|``-separated ``columns`` (a
    range left-aligned, the others right), cores busy, timed in.
    """
    names = ["contender", "threads", *columns.split("|"), "cores busy", "timed in"]
    left = {"contender", "threads", "timed in"}
    align = ["---" if n in left or n.startswith("range") else "---:" for n in names]
    return [
        "",
        title,
        "",
        about,
        "",
        "| " + " | ".join(names) + " |",
        "| " + " | ".join(align) + " |",
    ]


def per_iteration(
    section: tuple[dict[str, Timing], dict[str, Result]],
    threads: Callable[[str, Timing], str],
    title: str,
    about: str,
) -> list[str]:
    """A fixed-iterations table: milliseconds per iteration against scikit-learn."""
    times, last = section
    ms = {who: 1e3 / last[who][0] for who in times}
    ref = times["scikit-learn lloyd"].median * ms["scikit-learn lloyd"]
    lines = table_head(
        title,
        about,
        "ms / iteration (median)|range (min–max)|vs scikit-learn lloyd|inertia",
    )
    for who, t in times.items():
        per = t.median * ms[who]
        lines.append(
            f"| {who} | {threads(who, t)} | {per:.1f} | {t.span(ms[who], '.1f')} | "
            f"{ref / per:.2f}× | {last[who][1]:.7g} | {t.cores:.2f} | {t.where} |"
        )
    return lines


def seeding(
    section: tuple[dict[str, Timing], dict[str, Result]],
    threads: Callable[[str, Timing], str],
    title: str,
    about: str,
) -> list[str]:
    """The seeding table: seconds against scikit-learn, and the same seeds or not."""
    times, last = section
    sk = "scikit-learn kmeans_plusplus"
    lines = table_head(
        title,
        about,
        "seconds (median)|range (min–max)|vs scikit-learn|"
        "seeds equal to scikit-learn's",
    )
    for who, t in times.items():
        same = np.array_equal(np.asarray(last[who][2]), np.asarray(last[sk][2]))
        lines.append(
            f"| {who} | {threads(who, t)} | {t.median:.3f} | {t.span()} | "
            f"{times[sk].median / t.median:.2f}× | {'yes' if same else 'no'} | "
            f"{t.cores:.2f} | {t.where} |"
        )
    return lines


def converged(
    section: tuple[dict[str, Timing], dict[str, Result]],
    threads: Callable[[str, Timing], str],
    title: str,
    about: str,
    *,
    labels: bool,
) -> list[str]:
    """A to-convergence table: time, iterations, inertia against scikit-learn."""
    times, last = section
    sk_best = min(t.median for who, t in times.items() if who.startswith("scikit"))
    ref_inertia, ref_labels = last["scikit-learn lloyd"][1:]
    lines = table_head(
        title,
        about,
        "seconds (median)|range (min–max)|vs faster scikit-learn|iterations|"
        "ms / iteration|inertia|relative difference of inertia vs scikit-learn lloyd"
        + ("|labels equal to scikit-learn lloyd" if labels else ""),
    )
    for who, t in times.items():
        n_iter, inertia, got = last[who]
        agree = ""
        if labels:
            same = "—" if got is None else f"{np.mean(got == ref_labels):.4f}"
            agree = f" {same} |"
        lines.append(
            f"| {who} | {threads(who, t)} | {t.median:.3f} | {t.span()} | "
            f"{sk_best / t.median:.2f}× | {n_iter} | {1e3 * t.median / n_iter:.2f} | "
            f"{inertia:.7g} | {(inertia - ref_inertia) / ref_inertia:+.1e} |{agree} "
            f"{t.cores:.2f} | {t.where} |"
        )
    return lines


def plot(
    sections: dict[str, tuple[dict[str, Timing], dict[str, Result]]],
    problems: dict[str, str],
    path: Path,
) -> None:
    """The three tables as bars (median, with the range as error bars)."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    for ax, key in zip(axes, "abc", strict=True):
        times, last = sections[key]
        names = list(times)
        scale = {w: 1e3 / last[w][0] if key == "a" else 1.0 for w in names}
        mid = [statistics.median(times[w].wall) * scale[w] for w in names]
        err = [
            [
                m - min(times[w].wall) * scale[w]
                for m, w in zip(mid, names, strict=True)
            ],
            [
                max(times[w].wall) * scale[w] - m
                for m, w in zip(mid, names, strict=True)
            ],
        ]
        ax.barh(names, mid, xerr=err, capsize=3)
        unit = "ms per Lloyd iteration" if key == "a" else "seconds to convergence"
        ax.set_xlabel(f"{unit} (lower is better)")
        what = {"a": "blobs", "b": "blobs", "c": "overlapping blobs"}[key]
        ax.set_title(f"{problems[key]}, {what}", fontsize=10)
        ax.invert_yaxis()
    fig.suptitle("KMeans, float32, k=64, same initial centres (median, range)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
