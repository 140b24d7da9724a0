"""KNN query latency: TFLite (LiteRT) against TensorFlow, batches of 1 and 257.

A fitted ``KNeighborsClassifier`` answers ``predict`` three ways:

* **xplearn eager**: ``clf.predict(tf_tensor)``, the eager DLPack bridge
  (the query goes to torch, the answer comes back as a ``tf.Tensor``);
* **TF graph**: the ``predict`` signature of ``xplearn.tensorflow.to_module``
  (a ``tf.function``, the graph kernels a SavedModel serves);
* **TFLite**: the flatbuffer of ``xplearn.tensorflow.to_tflite`` on
  ai-edge-litert's interpreter (LiteRT), float32 weights.

Two problems: the issue's reference workflow (make_blobs, 700 training
points × 2 features, 5 classes, k=3) and a larger one (50,000 × 32, 10
classes, k=10, as ``knn_classifier.md``).  Every contender answers the same
query batches (checked), warmed up, then timed in interleaved rounds; each
run is the mean of many back-to-back calls.  Writes ``tflite_knn.md``.

    nox -s bench_tflite                   # or: python benchmarks/tflite.py
    python benchmarks/tflite.py --quick   # smoke test, results in a temporary dir
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

import harness
from harness import interleave, timer

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BATCHES = (1, 257)
# (training points, features, classes, k); --quick divides the points by 10.
PROBLEMS = {
    "reference workflow": (700, 2, 5, 3),
    "larger": (50_000, 32, 10, 10),
}
CALLS = {1: 200, 257: 20}  # back-to-back calls per timed run


def _problem(n: int, d: int, classes: int, seed: int = 0) -> tuple[Any, ...]:
    from sklearn.datasets import make_blobs

    X, y = make_blobs(
        n_samples=n + max(BATCHES), centers=classes, n_features=d, random_state=seed
    )
    X = X.astype(np.float32)
    return X[:n], y[:n], X[n:]


def main() -> None:
    """Fit, export, time, write the table."""
    args = harness.parse(harness.parser(__doc__.split("\n\n")[0]))
    run = harness.Run(args)
    # torch first (the eager bridge computes there), as every benchmark does.
    harness.import_peers(args.threads, "torch", "sklearn")
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import xplearn.tensorflow as xtf
    from xplearn.neighbors import KNeighborsClassifier

    harness.limit_threads(args.threads)
    pools = harness.thread_pools()
    rows = []
    for name, (size, d, classes, k) in PROBLEMS.items():
        n = size // 10 if args.quick else size
        X, y, Q = _problem(n, d, classes)
        clf = KNeighborsClassifier(n_neighbors=k).fit(X, y)
        module = xtf.to_module(clf)
        flatbuffer = xtf.to_tflite(clf)
        lite = Interpreter(model_content=flatbuffer, num_threads=args.threads)
        runner = lite.get_signature_runner("predict")
        for b in BATCHES:
            q_np = np.ascontiguousarray(Q[:b])
            q_tf = tf.constant(q_np)
            jobs = {
                "xplearn eager (TF → torch)": lambda q=q_tf, e=clf: e.predict(q),
                "TF graph (to_module)": lambda q=q_tf, m=module: m.predict(q)["labels"],
                "TFLite (LiteRT)": lambda q=q_np, r=runner: r(X=q)["labels"],
            }
            want = np.asarray(clf.predict(q_np))
            for job in jobs.values():  # warm-up, and the same answers
                got = job()
                got = got.numpy() if hasattr(got, "numpy") else got
                np.testing.assert_array_equal(np.asarray(got), want)
            calls = CALLS[b] if not args.quick else max(1, CALLS[b] // 10)
            times = interleave(
                {c: timer(job, calls) for c, job in jobs.items()}, args.repeats
            )
            base = times["xplearn eager (TF → torch)"].median
            for c, t in times.items():
                rows.append((name, n, d, k, b, c, t, base, len(flatbuffer)))
            summary = ", ".join(
                f"{c} {t.median * 1e6:.0f} µs" for c, t in times.items()
            )
            print(f"{name} batch {b}: {summary}")
    _write(args, run, pools, rows)


def _write(args: Any, run: Any, pools: dict[str, int], rows: list[Any]) -> None:
    lines = [
        "# KNN query latency: TFLite (LiteRT) against TensorFlow (float32)",
        "",
        *run.header(pools),
        (
            f"- **Also**: tensorflow {harness._version('tensorflow-cpu')}, "
            f"ai-edge-litert {harness._version('ai-edge-litert')}; TF intra-op "
            f"threads {args.threads}, LiteRT interpreter num_threads {args.threads}."
        ),
        (
            f"- **Calls per run**: each run is the mean of {CALLS[1]} (batch 1) or "
            f"{CALLS[257]} (batch 257) back-to-back `predict` calls on the same "
            "batch."
        ),
        "",
        (
            "| problem | training points | batch | contender | µs per call (median) "
            "| range (min–max) | µs per query | speed-up vs xplearn eager "
            "| model bytes |"
        ),
        "| --- | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for name, n, d, k, b, c, t, base, size in rows:
        med = t.median
        lines.append(
            f"| {name} (d={d}, k={k}) | {n:,} | {b} | {c} | {med * 1e6:,.0f} | "
            f"{t.span(1e6, ',.0f')} | {med * 1e6 / b:,.1f} | {base / med:.2f}× | "
            f"{size:,} |"
        )
    lines += [
        "",
        (
            "*model bytes*: the TFLite flatbuffer (the same for the three rows).  "
            "Every contender's labels were checked equal to the eager estimator's "
            "before timing."
        ),
    ]
    if run.warnings:
        lines += ["", *(f"**Warning**: {w}" for w in run.warnings)]
    out = args.out / f"tflite_knn{('-' + args.tag) if args.tag else ''}.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
