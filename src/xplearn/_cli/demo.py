"""``xplearn demo``: the same estimators on every framework and device found.

Fits ``KNeighborsClassifier`` and ``KMeans`` on scikit-learn's digits and on a
generated set of Gaussian blobs (200 000 × 32 and 2 000 queries; a tenth with
``--quick``) in float32 on every installed framework and each of its devices,
and compares each answer with xplearn's on numpy float64: the predictions of
the classifier, the labels and inertia of KMeans (same seed, so the same initial
centres everywhere).  scikit-learn on the same float32 data gives the
speed-up column.  Times run from the data already in the framework to the
answer back on the host; the digits jobs are timed twice and the faster run
kept (a warm-up), the blobs once: a demonstration, not a benchmark
(``xplearn bench`` is that).
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .frameworks import arrays, like

AGREEMENT = 0.999
"""Fewer predictions or labels equal to numpy float64's is a disagreement."""
INERTIA_RTOL = 1e-4
"""A larger relative difference of KMeans' inertia is a disagreement."""

BLOBS = (200_000, 32, 2_000)  # training rows, features, queries
QUICK = 10  # --quick divides the blobs' rows and queries by this
N_CLASSES = 10
N_NEIGHBORS = 5
SEED = 0


@dataclass(frozen=True)
class Task:
    """One job, run on every framework: its data are numpy float32."""

    name: str
    kind: str  # "knn" or "kmeans"
    X: Any
    y: Any = None  # knn: training labels
    Q: Any = None  # knn: queries
    yq: Any = None  # knn: true labels of the queries
    n_clusters: int = N_CLASSES
    runs: int = 1  # timed runs, the fastest reported (a warm-up for small jobs)


@dataclass
class Result:
    """One line of the table."""

    framework: str
    device: str
    task: str
    score: str = ""
    agreement: float | None = None
    ok: bool = True
    seconds: float | None = None
    speedup: float | None = None
    error: str = ""


def tasks(*, quick: bool) -> list[Task]:
    """Make the demo's jobs: digits and blobs, each by KNN and by KMeans."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits, labels = load_digits(return_X_y=True)
    digits = digits.astype(np.float32)
    n, d, n_q = BLOBS
    if quick:
        n, n_q = n // QUICK, n_q // QUICK
    rng = np.random.default_rng(SEED)
    centres = 3 * rng.standard_normal((N_CLASSES, d), dtype=np.float32)
    y = rng.integers(0, N_CLASSES, n + n_q)
    X = centres[y] + rng.standard_normal((n + n_q, d), dtype=np.float32)
    blobs = f"blobs {n:,} × {d}"
    return [
        Task(
            "digits KNN",
            "knn",
            digits[:1500],
            labels[:1500],
            digits[1500:],
            labels[1500:],
            runs=2,
        ),
        Task("digits KMeans", "kmeans", digits, runs=2),
        Task(f"{blobs} KNN", "knn", X[:n], y[:n], X[n:], y[n:]),
        Task(f"{blobs} KMeans", "kmeans", X[:n]),
    ]


# --- one job, any framework ------------------------------------------------------


def _knn(task: Task, put: Callable[[Any], Any]) -> tuple[Any, float]:
    """Predicted labels (numpy) and seconds, with the data put by ``put``."""
    import xplearn
    from xplearn.neighbors import KNeighborsClassifier

    X, y, Q = put(task.X), put(task.y), put(task.Q)
    start = time.perf_counter()
    pred = KNeighborsClassifier(n_neighbors=N_NEIGHBORS).fit(X, y).predict(Q)
    pred = xplearn.to_numpy(pred)
    return pred, time.perf_counter() - start


def _kmeans(task: Task, put: Callable[[Any], Any]) -> tuple[Any, float]:
    """(labels, inertia) and seconds, with the data put by ``put``."""
    import xplearn
    from xplearn.cluster import KMeans

    X = put(task.X)
    start = time.perf_counter()
    km = KMeans(n_clusters=task.n_clusters, n_init=1, random_state=SEED).fit(X)
    labels = xplearn.to_numpy(km.labels_)
    return (labels, float(km.inertia_)), time.perf_counter() - start


def run_task(task: Task, put: Callable[[Any], Any]) -> tuple[Any, float]:
    """Run ``task`` on the data ``put`` makes: its answer and its best seconds."""
    job = _knn if task.kind == "knn" else _kmeans
    runs = [job(task, put) for _ in range(task.runs)]
    return runs[-1][0], min(seconds for _, seconds in runs)


def reference(task: Task) -> Any:
    """Compute the answer on numpy float64 that every framework must agree with."""
    import numpy as np

    return run_task(task, lambda a: np.asarray(a, dtype=np.float64))[0]


def sklearn_answer(task: Task) -> tuple[Any, float]:
    """scikit-learn's answer and seconds on the same float32 numpy data."""
    from sklearn.cluster import KMeans
    from sklearn.neighbors import KNeighborsClassifier

    best = float("inf")
    for _ in range(task.runs):
        start = time.perf_counter()
        if task.kind == "knn":
            clf = KNeighborsClassifier(n_neighbors=N_NEIGHBORS).fit(task.X, task.y)
            answer: Any = clf.predict(task.Q)
        else:
            km = KMeans(n_clusters=task.n_clusters, n_init=1, random_state=SEED)
            km.fit(task.X)
            answer = (km.labels_, float(km.inertia_))
        best = min(best, time.perf_counter() - start)
    return answer, best


def _matched(labels: Any, ref: Any) -> float:
    """Fraction of equal labels once each cluster takes its most common reference.

    Enough to compare partitions whose clusters correspond one to one
    (scikit-learn numbers its clusters in another order).
    """
    import numpy as np

    k = int(max(labels.max(), ref.max())) + 1
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (labels, ref), 1)
    return float(counts.max(axis=1).sum() / len(labels))


def judge(
    task: Task, answer: Any, ref: Any, result: Result, *, renumbered: bool = False
) -> None:
    """Fill in the score and agreement of ``answer`` against ``ref``.

    ``renumbered``: compare KMeans labels up to a renumbering of the clusters
    (scikit-learn's k-means++ draws differ from xplearn's).
    """
    import numpy as np

    if task.kind == "knn":
        result.score = f"accuracy {np.mean(answer == task.yq):.4f}"
        result.agreement = float(np.mean(answer == ref))
        result.ok = result.agreement >= AGREEMENT
        return
    (labels, inertia), (ref_labels, ref_inertia) = answer, ref
    result.score = f"inertia {inertia:.6g}"
    if renumbered:
        result.agreement = _matched(labels, ref_labels)
    else:
        result.agreement = float(np.mean(labels == ref_labels))
    close = abs(inertia - ref_inertia) <= INERTIA_RTOL * abs(ref_inertia)
    result.ok = result.agreement >= AGREEMENT and close
    if not close:
        result.error = f"inertia {inertia:.6g} vs {ref_inertia:.6g} on float64"


# --- the whole demo ----------------------------------------------------------------


class Progress:
    """One line on stderr that says what runs now (rewritten on a terminal)."""

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0
        self.tty = sys.stderr.isatty()

    def step(self, what: str) -> None:
        self.done += 1
        line = f"[{self.done}/{self.total}] {what} …"
        if self.tty:
            sys.stderr.write(f"\r\x1b[K{line}")
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def collect(backends: list[str], *, quick: bool) -> list[Result]:
    """Run every task on every device of every backend, then on scikit-learn."""
    jobs = tasks(quick=quick)
    devices: list[tuple[str, str, Any]] = []
    results: list[Result] = []
    for backend in backends:
        try:
            devices += [(backend, d, x) for d, x in arrays(backend, test_devices=False)]
        except Exception as exc:  # noqa: BLE001 - a broken install is a row
            results.append(Result(backend, "-", "import", ok=False, error=repr(exc)))
    progress = Progress(len(jobs) * (len(devices) + 2))
    refs, sklearn_seconds = [], []
    for task in jobs:
        progress.step(f"numpy float64 reference: {task.name}")
        refs.append(reference(task))
        progress.step(f"scikit-learn: {task.name}")
        answer, seconds = sklearn_answer(task)
        sklearn_seconds.append(seconds)
        row = Result("scikit-learn", "cpu", task.name, seconds=seconds, speedup=1.0)
        judge(task, answer, refs[-1], row, renumbered=True)
        results.append(row)
    for backend, device, probe in devices:
        for task, ref, sk in zip(jobs, refs, sklearn_seconds, strict=True):
            progress.step(f"{backend} {device}: {task.name}")
            row = Result(backend, device, task.name)
            try:
                answer, row.seconds = run_task(task, functools.partial(like, probe))
                row.speedup = sk / row.seconds
                judge(task, answer, ref, row)
            except Exception as exc:  # noqa: BLE001 - a failed job is a row
                row.ok, row.error = False, f"{type(exc).__name__}: {exc}"
            results.append(row)
    progress.close()
    return results


def table(results: list[Result]) -> str:
    """Format the results as an aligned text table."""
    header = (
        "framework",
        "device",
        "task",
        "score",
        "vs numpy float64",
        "seconds",
        "vs scikit-learn",
    )
    lines = [header]
    for r in results:
        agree = "" if r.agreement is None else f"{r.agreement:.2%} equal"
        if not r.ok:
            agree = f"DISAGREE {agree}".strip()
        lines.append(
            (
                r.framework,
                r.device,
                r.task,
                r.score or r.error,
                agree,
                "" if r.seconds is None else f"{r.seconds:.3f}",
                "" if r.speedup is None else f"{r.speedup:.2f}×",
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    out = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in lines
    ]
    out.insert(1, "  ".join("-" * w for w in widths))
    notes = [
        f"  {r.framework} {r.device} {r.task}: {r.error}"
        for r in results
        if r.error and r.score
    ]
    return "\n".join([line.rstrip() for line in out] + notes)


def plot(results: list[Result], path: Path) -> bool:
    """Bar chart of the seconds per task and framework; False without matplotlib."""
    try:
        import matplotlib as mpl
    except ImportError:
        return False
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    task_names = list(dict.fromkeys(r.task for r in results if r.seconds is not None))
    fig, axes = plt.subplots(
        1, len(task_names), figsize=(3.2 * len(task_names), 3.6), squeeze=False
    )
    for ax, name in zip(axes[0], task_names, strict=True):
        rows = [r for r in results if r.task == name and r.seconds is not None]
        labels = [
            r.framework if r.device == "cpu" else f"{r.framework}\n{r.device}"
            for r in rows
        ]
        colours = [
            "tab:gray"
            if r.framework == "scikit-learn"
            else ("tab:blue" if r.ok else "tab:red")
            for r in rows
        ]
        ax.barh(labels, [r.seconds for r in rows], color=colours)
        ax.invert_yaxis()
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("seconds (lower is better)", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(
        "xplearn demo: seconds per job, float32 (red: disagrees with numpy float64)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def run(backends: list[str], *, quick: bool, png: Path | None) -> int:
    """Run the demo on ``backends``: 1 when any framework disagrees or fails."""
    results = collect(backends, quick=quick)
    print(table(results))
    bad = [r for r in results if not r.ok]
    if png is not None:
        if plot(results, png):
            print(f"\ntimings plotted in {png}")
        else:
            print("\nno plot: matplotlib is not installed (pip install matplotlib)")
    agreeing = len(results) - len(bad)
    print(f"\n{agreeing} agree with numpy float64, {len(bad)} disagree or failed")
    return 1 if bad else 0
