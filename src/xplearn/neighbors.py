"""Exact k-nearest-neighbour search on any backend.

The search runs over tiles of queries × database rows sized by the working
memory budget; each tile's distances go straight to a top-k and are merged
with the running best, so no n×m matrix larger than the budget is formed.

For the Euclidean family the tile distances come from the expansion
``‖y‖² − 2 x·y`` (one GEMM; ``‖x‖²`` is constant per query and left out of the
ranking), which loses precision on near ties, most of all in float32.  So each
tile keeps a few more candidates than asked for, and the candidates are
re-ranked by their exact distance ``Σ (x − y)²``: indices then agree with a
float64 reference, a point's distance to itself is exactly 0, and the
distances returned are exact in the input dtype.
"""

from __future__ import annotations

import operator
from types import ModuleType
from typing import Any

from ._dispatch import Edge
from ._namespace import device_of, is_lazy, namespace_name
from ._primitives import (
    merge_topk,
    sq_row_norms,
    take_rows,
    tile_sizes,
    topk_smallest,
    working_memory_bytes,
)
from ._validation import check_array, check_n_features, result_dtype
from .metrics import EUCLIDEAN, check_metric, distance_block, itemsize

# Extra candidates kept per query for the exact re-ranking (Euclidean family).
_REFINE_EXTRA = 8


def check_n_neighbors(n_neighbors: Any, n_samples_fit: int) -> int:
    """Return ``n_neighbors`` as an int in ``[1, n_samples_fit]`` or raise."""
    if isinstance(n_neighbors, bool):
        msg = f"n_neighbors must be an integer, got {n_neighbors!r}."
        raise TypeError(msg)
    try:
        k = operator.index(n_neighbors)
    except TypeError:
        msg = (
            f"n_neighbors does not take {type(n_neighbors).__name__} value, "
            "enter integer value"
        )
        raise TypeError(msg) from None
    if k < 1:
        msg = f"Expected n_neighbors > 0. Got {k}"
        raise ValueError(msg)
    if k > n_samples_fit:
        msg = (
            f"Expected n_neighbors <= n_samples_fit, but n_neighbors = {k}, "
            f"n_samples_fit = {n_samples_fit}, n_samples = {n_samples_fit}. "
            f"Ask for at most {n_samples_fit} neighbours or add samples."
        )
        raise ValueError(msg)
    return k


def _exact_sq(Xq: Any, Y: Any, idx: Any, xp: ModuleType) -> Any:
    """Exact squared distances from each query to its candidate rows of ``Y``."""
    n, c = idx.shape
    cand = xp.reshape(xp.take(Y, xp.reshape(idx, (-1,)), axis=0), (n, c, Y.shape[1]))
    diff = cand - Xq[:, None, :]
    return xp.sum(diff * diff, axis=2)


def _rerank(Xq: Any, Y: Any, idx: Any, k: int, xp: ModuleType) -> tuple[Any, Any]:
    """Exact squared distances of the candidates, the ``k`` best, ties by index."""
    order = xp.argsort(idx, axis=1)
    idx = take_rows(idx, order, xp)
    exact = _exact_sq(Xq, Y, idx, xp)
    vals, pos = topk_smallest(exact, k, xp)
    return vals, take_rows(idx, pos, xp)


def _rank_block(
    Xq: Any, Yt: Any, YY: Any, metric: str, p: float, xp: ModuleType, out: Any
) -> Any:
    """Distances used for ranking one tile (Euclidean: ``‖y‖² − 2 x·y``)."""
    if metric not in EUCLIDEAN:
        return distance_block(Xq, Yt.T, metric, p, xp)
    name = namespace_name(xp)
    if name == "torch" and out is not None:
        import torch

        # One fused GEMM into a reused buffer: fresh n×m temporaries per tile
        # cost page faults that halve the GEMM rate (PERF-NOTES.md).
        return torch.addmm(YY[None, :], Xq, Yt, beta=1.0, alpha=-2.0, out=out)
    if name == "numpy" and out is not None:
        import numpy as np

        np.matmul(Xq, Yt, out=out)
        out *= -2.0
        out += YY[None, :]
        return out
    return YY[None, :] - 2.0 * (Xq @ Yt)


def _kneighbors(
    X: Any, Y: Any, k: int, metric: str, p: float, xp: ModuleType
) -> tuple[Any, Any]:
    """Search validated compute arrays; return ``(distances, int64 indices)``."""
    n, m = X.shape[0], Y.shape[0]
    euclid = metric in EUCLIDEAN
    n_cand = min(m, k + _REFINE_EXTRA) if euclid else k
    dev = device_of(X)
    size = itemsize(X, xp)
    # Per tile element: the distance, the top-k's scratch and index array,
    # the tie mask; broadcast metrics also hold the n×m×d difference.
    per_element = 2 * size + 8 + 1
    if not euclid and metric != "cosine":
        per_element += X.shape[1] * size
    rows, cols = tile_sizes(n, m, per_element, working_memory_bytes(xp, dev))

    Yt = Y.T
    YY = sq_row_norms(Y, xp) if euclid else None
    reuse = namespace_name(xp) in {"numpy", "torch"} and euclid and cols == m
    buf = xp.empty((rows, m), dtype=X.dtype, device=dev) if reuse else None

    out_vals, out_idx = [], []
    for i in range(0, n, rows):
        Xq = X[i : min(i + rows, n), :]
        best: tuple[Any, Any] | None = None
        for j in range(0, m, cols):
            out = buf[: Xq.shape[0], :] if buf is not None else None
            D = _rank_block(
                Xq,
                Yt[:, j : min(j + cols, m)],
                None if YY is None else YY[j : min(j + cols, m)],
                metric,
                p,
                xp,
                out,
            )
            vals, idx = topk_smallest(D, min(n_cand, D.shape[1]), xp)
            if j:
                idx = idx + j
            best = (
                (vals, idx)
                if best is None
                else merge_topk(*best, vals, idx, n_cand, xp)
            )
        assert best is not None
        vals, idx = _rerank(Xq, Y, best[1], k, xp) if euclid else best
        out_vals.append(vals)
        out_idx.append(idx)
    dist = out_vals[0] if len(out_vals) == 1 else xp.concat(out_vals, axis=0)
    ind = out_idx[0] if len(out_idx) == 1 else xp.concat(out_idx, axis=0)
    if metric == "euclidean":
        dist = xp.sqrt(dist)
    return dist, ind


def _kneighbors_lazy(
    X: Any, Y: Any, k: int, metric: str, p: float, xp: ModuleType
) -> tuple[Any, Any]:
    """dask: each block of queries against all of ``Y``, by the numpy kernel."""
    import array_api_compat.numpy as np_xp
    import numpy as np

    from ._convert import to_numpy

    Yn = to_numpy(Y)  # every query block needs all of Y; X stays distributed
    Xr = X.rechunk({1: -1})

    def block(b: Any) -> Any:
        d, i = _kneighbors(b, Yn, k, metric, p, np_xp)
        # One output per block: distances and indices side by side in
        # float64 (exact for indices below 2**53).
        return np.concatenate([d.astype(np.float64), i.astype(np.float64)], axis=1)

    both = Xr.map_blocks(
        block,
        chunks=(Xr.chunks[0], (2 * k,)),
        dtype=np.float64,
        meta=np.empty((0, 0), dtype=np.float64),
    )
    return xp.astype(both[:, :k], X.dtype), xp.astype(both[:, k:], xp.int64)


def kneighbors(
    X: Any,
    Y: Any = None,
    n_neighbors: int = 5,
    *,
    metric: str = "euclidean",
    return_distance: bool = True,
    **kwds: Any,
) -> Any:
    """Find the ``n_neighbors`` nearest rows of ``Y`` for every row of ``X``.

    Exact (brute-force) search, natively in the framework and on the device of
    ``X``; ``Y`` follows ``X``.  Memory-bounded by
    ``config_context(working_memory=...)``.

    Parameters
    ----------
    X : array of shape (n_queries, n_features)
        The queries: numpy, torch, jax, cupy, dask, array-api-strict or
        TensorFlow.
    Y : array of shape (n_samples, n_features), optional
        The points searched; defaults to ``X`` (each point is then its own
        nearest neighbour, at distance exactly 0).
    n_neighbors : int, default=5
        ``1 <= n_neighbors <= n_samples``.
    metric : str, default="euclidean"
        Any metric of :func:`xplearn.metrics.pairwise_distances`.
    return_distance : bool, default=True
        Return ``(distances, indices)``; else only ``indices``.
    **kwds
        ``p`` for ``"minkowski"``.

    Returns
    -------
    distances : array of shape (n_queries, n_neighbors)
        Ascending, in the floating dtype of ``X``.
    indices : array of shape (n_queries, n_neighbors)
        int64 row indices into ``Y``; of equal distances the lower index comes
        first, on every backend.

    Raises
    ------
    ValueError
        ``n_neighbors`` < 1 or > n_samples, feature mismatch, NaN/inf, empty
        input, unknown metric.

    Examples
    --------
    >>> import numpy as np
    >>> from xplearn.neighbors import kneighbors
    >>> Y = np.array([[0.0], [1.0], [3.0]])
    >>> dist, ind = kneighbors(np.array([[0.9]]), Y, n_neighbors=2)
    >>> ind
    array([[1, 0]])
    >>> dist.round(2)
    array([[0.1, 0.9]])
    """
    unknown = set(kwds) - {"p"}
    if unknown:
        msg = f"Unexpected keyword argument(s) {sorted(unknown)}; only p is accepted."
        raise TypeError(msg)
    name, p = check_metric(metric, kwds.get("p"))
    edge, Xc = Edge.of(X)
    xp = edge.xp
    in_dtype = Xc.dtype
    Xc = check_array(Xc, xp)
    Yc = (
        Xc
        if Y is None
        else check_array(edge.follow(Y, "Y"), xp, name="Y", dtype=Xc.dtype)
    )
    check_n_features(Xc, Yc.shape[1], "X", by="Y")
    k = check_n_neighbors(n_neighbors, Yc.shape[0])
    if is_lazy(xp):
        dist, ind = _kneighbors_lazy(Xc, Yc, k, name, p, xp)
    else:
        dist, ind = _kneighbors(Xc, Yc, k, name, p, xp)
    out_dtype = result_dtype(xp, in_dtype, Xc.dtype)
    if dist.dtype != out_dtype:
        dist = xp.astype(dist, out_dtype)
    return edge.to_caller((dist, ind) if return_distance else ind)
