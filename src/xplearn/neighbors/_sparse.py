"""Neighbour search with scipy sparse data (CSR/CSC), a tile at a time.

scikit-learn's brute force takes sparse fit data and queries for the metrics
of its ``PAIRWISE_DISTANCE_FUNCTIONS`` (euclidean/l2, cosine,
manhattan/cityblock/l1; haversine and nan_euclidean excepted), callables and
``DistanceMetric`` objects.  Here a tile of queries and a tile of fitted
rows are densified at a time and searched by the dense kernels, and the
tiles' candidates merged: the neighbours and distances are those of the
dense path on ``X.toarray()`` (exact, ties to the lower index), while no
more than two tiles sized by the working-memory budget are ever dense.
Callables get sparse rows, as scikit-learn hands them.

scipy's sparse matrices live on the host, so a sparse side is searched with
numpy; sparse queries against dense fit data (any framework) are densified
tile by tile and moved to that data's namespace and device.

The Euclidean family and cosine of sparse fit data are screened by sparse
products, which skip the zeros, and re-ranked exactly
(:mod:`._sparse_products`).  Manhattan does the dense search's work
(queries × fitted rows × features), slow on very high-dimensional, very
sparse data (TF-IDF).  TODO(#12): scikit-learn's sparse manhattan kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from xplearn._convert import to_namespace
from xplearn._namespace import device_of
from xplearn._primitives import merge_topk, topk_smallest, working_memory_bytes
from xplearn._sparse import is_scipy_sparse
from xplearn.metrics._general import GeneralMetric

# Canonical metric names (after scikit-learn's aliases and Minkowski p = 1, 2)
# searched on sparse data: scikit-learn's sparse brute-force metrics, and
# sqeuclidean, which the Euclidean kernel gives as well.
SPARSE_METRICS = frozenset({"euclidean", "sqeuclidean", "cosine", "manhattan"})
_SPARSE_NAMES = ["cityblock", "cosine", "euclidean", "l1", "l2", "manhattan"]
_SPARSE_NAMES += ["minkowski (p=1 or 2)", "precomputed", "sqeuclidean"]


def check_sparse_metric(metric: Any, name: str, general: GeneralMetric | None) -> None:
    """Raise ``ValueError`` for a metric the sparse search does not take."""
    if general is not None:
        if general.name in ("callable", "distance_metric", "precomputed"):
            return
    elif name in SPARSE_METRICS:
        return
    shown = metric if isinstance(metric, str) else name
    msg = (
        f"Metric '{shown}' not valid for sparse input. Sparse data takes the "
        f"metrics {_SPARSE_NAMES} or a callable; for '{shown}' pass dense data "
        "(X.toarray())."
    )
    raise ValueError(msg)


def tile_rows(n: int, n_features: int, itemsize: int, xp: ModuleType) -> int:
    """Rows densified at a time: a quarter of the working-memory budget each."""
    budget = working_memory_bytes(xp, None)
    return max(1, min(n, budget // (4 * max(1, n_features) * itemsize)))


def sparse_search(
    X: Any,
    Y: Any,
    k: int,
    find: Callable[[Any, Any, int], tuple[Any, Any]],
    xp: ModuleType,
) -> tuple[Any, Any]:
    """Find the ``k`` nearest rows of ``Y`` to each row of ``X``, one of them sparse.

    ``find(Q, Yt, k)`` is the dense search of namespace ``xp`` (exact, ties
    to the lower index); dense tiles of the sparse side are handed to it and
    the candidates of successive ``Y`` tiles merged, earlier tiles first.
    Returns ``(dist, ind)`` in ``xp`` on ``Y``'s device (the host for CSR).
    """
    import numpy as np

    n, d = X.shape
    m = Y.shape[0]
    dev = None if is_scipy_sparse(Y) else device_of(Y)
    size = np.dtype(X.dtype).itemsize if is_scipy_sparse(X) else 8
    rows = tile_rows(n, d, size, xp) if is_scipy_sparse(X) else n
    cols = tile_rows(m, d, size, xp) if is_scipy_sparse(Y) else m

    def dense(Z: Any) -> Any:
        if not is_scipy_sparse(Z):
            return Z
        D = to_namespace(Z.toarray(), xp, device=dev)
        # Against dense fit data the query takes that data's dtype (check_query).
        return D if dev is None or D.dtype == Y.dtype else xp.astype(D, Y.dtype)

    dists, inds = [], []
    for a in range(0, n, rows):
        Q = dense(X[a : min(a + rows, n)])
        best: tuple[Any, Any] | None = None
        for c in range(0, m, cols):
            e = min(c + cols, m)
            vals, idx = find(Q, dense(Y[c:e]) if cols < m else dense(Y), min(k, e - c))
            if c:
                idx = idx + c
            best = (vals, idx) if best is None else merge_topk(*best, vals, idx, k, xp)
        assert best is not None
        dists.append(best[0])
        inds.append(best[1])
    if len(dists) == 1:
        return dists[0], inds[0]
    return xp.concat(dists, axis=0), xp.concat(inds, axis=0)


def callable_search(
    X: Any, Y: Any, k: int, g: GeneralMetric, xp: ModuleType
) -> tuple[Any, Any]:
    """Search with a callable metric, handed rows as they are (sparse rows too).

    scikit-learn calls the metric on one row of each side (its
    ``_pairwise_callable``), so a metric written for sparse rows works.
    """
    import numpy as np

    n, m = X.shape[0], Y.shape[0]
    dtype = Y.dtype if is_scipy_sparse(Y) else X.dtype
    rows = max(1, min(n, 2**22 // max(1, m)))
    dists, inds = [], []
    for a in range(0, n, rows):
        b = min(a + rows, n)
        D = np.empty((b - a, m), dtype=np.float64)
        for i in range(a, b):
            x = X[i]
            for j in range(m):
                D[i - a, j] = g.func(x, Y[j], **g.params)
        d, j = topk_smallest(xp.asarray(D.astype(dtype)), k, xp)
        dists.append(d)
        inds.append(j)
    if len(dists) == 1:
        return dists[0], inds[0]
    return xp.concat(dists, axis=0), xp.concat(inds, axis=0)


def host_edge(dtype: Any) -> Any:
    """Return an Edge computing and answering with numpy on the host (scipy's)."""
    import numpy as np

    from xplearn._dispatch import Edge

    return Edge.of(np.zeros((1, 1), dtype=dtype))[0]


def check_graph(X: Any) -> Any:
    """Check a sparse precomputed distance matrix: CSR, rows sorted by distance.

    Only the stored entries are neighbours (explicit zeros included), so the
    formats that drop or merge explicit zeros are refused, as scikit-learn
    refuses them.  A copy: the rows are sorted by (distance, column), ties to
    the lower index, without touching the caller's matrix.
    """
    import numpy as np
    import scipy.sparse as sp

    if X.format not in ("csr", "csc", "coo", "lil"):
        msg = (
            f"Sparse matrix in {X.format!r} format is not supported due to its "
            "handling of explicit zeros; convert it with X.tocsr()."
        )
        raise TypeError(msg)
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    G = sp.csr_matrix(X, dtype=dtype, copy=True)
    n, m = G.shape
    if n < 1 or m < 1:
        msg = f"Found array with {n} sample(s) and {m} feature(s) (shape={G.shape})."
        raise ValueError(msg)
    if not np.isfinite(G.data).all():
        msg = "Input X contains NaN or infinity. Remove or impute those entries."
        raise ValueError(msg)
    if (G.data < 0).any():
        msg = "Negative values in data passed to precomputed distance matrix."
        raise ValueError(msg)
    rows = np.repeat(np.arange(n), np.diff(G.indptr))
    order = np.lexsort((G.indices, G.data, rows))
    G.data, G.indices = G.data[order], G.indices[order]
    G.has_sorted_indices = False
    return G


def graph_kneighbors(G: Any, k: int) -> tuple[Any, Any]:
    """Return the ``k`` first (nearest) stored entries of each row of a graph."""
    import numpy as np

    G.shape[0]
    nnz = np.diff(G.indptr)
    if int(nnz.min()) < k:
        msg = (
            f"{k} neighbors per samples are required, but some samples have only "
            f"{int(nnz.min())} neighbors in precomputed graph matrix. Decrease "
            "number of neighbors used or recompute the graph with more neighbors."
        )
        raise ValueError(msg)
    pos = G.indptr[:-1, None] + np.arange(k)[None, :]
    return G.data[pos], G.indices[pos].astype(np.int64)


def graph_radius(G: Any, r: float) -> list[tuple[Any, Any]]:
    """Per row of a checked graph: (columns, distances) of entries within ``r``."""
    import numpy as np

    out = []
    for i in range(G.shape[0]):
        a, b = G.indptr[i], G.indptr[i + 1]
        d = G.data[a:b]
        keep = d <= r
        out.append((G.indices[a:b][keep].astype(np.int64), d[keep]))
    return out


def scale_exponent(X: Any, Y: Any, metric: str, p: float, xp: ModuleType) -> int:
    """:func:`xplearn._scaling.scale_exponent` of a pair with a sparse side.

    Read from the stored values of a sparse side (a dense side is in
    ``xp``): 0 where the distances stay in the range of ``Y``'s dtype, else
    the exponent that brings the largest magnitude to ``[0.5, 1)``.
    """
    import math

    import numpy as np

    from xplearn._scaling import max_abs, safe_range

    big = 0.0
    for Z in (X, Y):
        if is_scipy_sparse(Z):
            big = max(big, float(np.max(np.abs(Z.data))) if Z.nnz else 0.0)
        else:
            big = max(big, max_abs(Z, xp))
    if big == 0.0 or not math.isfinite(big):
        return 0
    low, high = safe_range(Y.dtype, xp, X.shape[1], metric, p)
    return 0 if low <= big <= high else math.frexp(big)[1]
