"""What xplearn supports on each backend: the one table the CLI, docs and README show.

``xplearn info`` prints from it, the documentation's support matrix is
rendered from it at build time, and a test checks that the README's table is
:func:`markdown_table` verbatim, so the three cannot drift apart.  Its rows
follow :data:`xplearn._namespace.BACKENDS`, which a test checks too.

Changing what a backend supports means changing a row here (and then running
``python -c "import xplearn._support as s; print(s.markdown_table())"`` for
the README).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Support:
    """One row of the support matrix."""

    backend: str
    """Name in :data:`xplearn._namespace.BACKENDS` (and ``--backends``)."""
    label: str
    """How the row is titled (TensorFlow has two rows)."""
    distribution: str
    """The package on PyPI."""
    extra: str
    """``pip install "xplearn[EXTRA]"`` installs it; empty where none does."""
    computes_in: str
    devices_tested: str
    zero_copy: str
    notes: str


SUPPORT: Final = (
    Support(
        backend="numpy",
        label="numpy",
        distribution="numpy",
        extra="",
        computes_in=(
            "numpy (a large float32 Euclidean k-NN search on torch's CPU kernels, "
            "through zero-copy views, where torch is installed)"
        ),
        devices_tested="CPU",
        zero_copy="—",
        notes=(
            "read-only inputs tested (`numpy:readonly`); query tiles and KMeans' "
            "fused E+M kernel on a host thread pool; scipy sparse CSR/CSC taken "
            "by the estimators, `kmeans_plusplus`, `pairwise_distances` and "
            "`kneighbors` (euclidean and cosine search by sparse products, "
            "other metrics a tile densified at a time)"
        ),
    ),
    Support(
        backend="array_api_strict",
        label="array-api-strict",
        distribution="array-api-strict",
        extra="strict",
        computes_in="array-api-strict",
        devices_tested="`CPU_DEVICE`, `device1`, `no_float64`",
        zero_copy="DLPack on CPU",
        notes="catches device and indexing bugs without a GPU",
    ),
    Support(
        backend="torch",
        label="torch",
        distribution="torch",
        extra="torch",
        computes_in="torch",
        devices_tested="CPU (CUDA in `tests_gpu`)",
        zero_copy="numpy ↔ torch, TF ↔ torch",
        notes=(
            "bfloat16 computes in float32; sparse tensors on the CPU taken "
            "where scipy sparse is (read as scipy CSR, answered in torch), on a "
            "GPU rejected; neighbour graphs and transformers give torch sparse CSR"
        ),
    ),
    Support(
        backend="jax",
        label="jax",
        distribution="jax",
        extra="jax",
        computes_in="`jax.numpy`",
        devices_tested="CPU",
        zero_copy="DLPack",
        notes=(
            "float64 needs `jax_enable_x64`; under `jax.jit`: `kneighbors`, "
            "`pairwise_distances`, `kmeans` (array init) and fitted estimators' "
            "query methods (see *jax.jit*); "
            '`KMeans(algorithm="elkan")` runs Lloyd\'s iterations '
            "(same answer: eager jax compiles each new shape); XLA flushes "
            "subnormal numbers (below ~2.2e-308 in float64) to zero, so such "
            "data reads as zeros"
        ),
    ),
    Support(
        backend="dask",
        label="dask",
        distribution="dask",
        extra="dask",
        computes_in="`dask.array`",
        devices_tested="CPU",
        zero_copy="— (lazy; numpy fallback copies)",
        notes=(
            "`kneighbors`/`pairwise_distances` run blockwise over query chunks; "
            "KMeans, MiniBatchKMeans and the neighbours estimators keep the "
            "fit data in its blocks (one compute per Lloyd iteration; "
            "`radius_neighbors` answers with computed numpy per-query "
            "arrays); general metrics gather it on the host"
        ),
    ),
    Support(
        backend="tensorflow",
        label="TensorFlow (eager)",
        distribution="tensorflow",
        extra="tensorflow",
        computes_in=(
            "torch if installed, else numpy (`config_context(tf_namespace=...)`)"
        ),
        devices_tested="CPU",
        zero_copy="TF ↔ torch, TF → numpy (read-only view), numpy → TF",
        notes=(
            "`tf.Variable` read with `.value()`; bfloat16 via float32; strings "
            "never sent by DLPack"
        ),
    ),
    Support(
        backend="tensorflow",
        label="TensorFlow (symbolic, ragged, sparse)",
        distribution="tensorflow",
        extra="tensorflow",
        computes_in="TF graph operations (symbolic)",
        devices_tested="CPU",
        zero_copy="—",
        notes=(
            "inside `tf.function`, Keras and `tf.data` the query methods of "
            "fitted estimators and `xplearn.tensorflow.kmeans` run as "
            "TF-native kernels (export: `xplearn.tensorflow.save`, "
            "`to_tflite`); other calls, ragged and sparse tensors get a "
            "`TypeError` that says what to do"
        ),
    ),
    Support(
        backend="cupy",
        label="cupy",
        distribution="cupy",
        extra="",
        computes_in="cupy (top-k on a zero-copy torch view where torch has CUDA)",
        devices_tested="CUDA (`tests_gpu`)",
        zero_copy="DLPack",
        notes=(
            "benchmarked on an H100 (`benchmarks/results/gpu.md`); the GPU suite "
            "has not yet run to completion there; not in CI (no GPU)"
        ),
    ),
)
"""Every row, in :data:`~xplearn._namespace.BACKENDS` order."""

_HEADER: Final = (
    "framework",
    "detected",
    "computes in",
    "devices tested",
    "zero-copy in / out",
    "notes",
)


def _cells(row: Support) -> tuple[str, ...]:
    return (
        row.label,
        "yes",  # every row's backend is in _namespace's detection table
        row.computes_in,
        row.devices_tested,
        row.zero_copy,
        row.notes,
    )


def markdown_table() -> str:
    """Render the support matrix as a Markdown table (the README's)."""
    lines = ["| " + " | ".join(_HEADER) + " |", "|" + " --- |" * len(_HEADER)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in SUPPORT]
    return "\n".join(lines)


def _rst_cell(text: str) -> str:
    # Markdown `code` → reST ``code``; the cells hold nothing else to convert.
    parts = text.split("`")
    return "".join(p if i % 2 == 0 else f"``{p}``" for i, p in enumerate(parts))


def rst_table() -> str:
    """Render the support matrix as a reST ``list-table`` (the documentation's)."""
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 14 6 16 16 16 32",
        "",
    ]
    for cells in (_HEADER, *map(_cells, SUPPORT)):
        first, *rest = (_rst_cell(c) for c in cells)
        lines.append(f"   * - {first}")
        lines += [f"     - {c}" for c in rest]
    return "\n".join(lines) + "\n"
