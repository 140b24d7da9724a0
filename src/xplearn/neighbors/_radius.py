"""The radius search behind ``radius_neighbors``, its graph and estimators.

Distances are computed in the fit data's framework and on its device; the
answer is ragged (each query has its own number of neighbours), which no
Array API array holds, so the membership and the per-query lists are kept on
the host, as scikit-learn's object arrays are.  :func:`radius_rows` returns
them as numpy arrays; the public methods move them to the query's framework.
Fit data in dask is searched block by block on the workers
(:func:`._dask.radius_blocks`), with this module's kernel per pair of blocks;
only the pairs within the radius come back.
"""

from __future__ import annotations

from typing import Any

from xplearn._convert import to_namespace, to_numpy
from xplearn._dispatch import Edge
from xplearn._namespace import device_of
from xplearn._scaling import scale_back, times_pow2
from xplearn._sparse import is_scipy_sparse
from xplearn.metrics import pairwise_scaled
from xplearn.metrics._general import GeneralMetric, general_pairwise

from . import _dask
from ._precomputed import graph_query, graph_radius

# How a radius scales with the data: squared distances twice, cosine not.
_RADIUS_POWER = {"sqeuclidean": 2, "cosine": 0}


def check_radius(radius: Any, n_queries: int) -> Any:
    """``radius`` as a float, or as a float64 numpy array of one per query.

    scikit-learn's trees take an array of per-query radii; xplearn takes one
    with every algorithm.  Any framework's array is read on the host.
    """
    import numpy as np

    if getattr(radius, "ndim", None) is None and not isinstance(radius, list | tuple):
        return float(radius)
    r = np.asarray(to_numpy(radius), dtype=np.float64)
    if r.ndim == 0:
        return float(r)
    if r.shape != (n_queries,):
        msg = (
            f"radius must be a number or an array of one radius per query, "
            f"shape ({n_queries},); got shape {r.shape}."
        )
        raise ValueError(msg)
    return r


def radius_rows(
    est: Any, X: Any, radius: Any, sort_results: bool
) -> tuple[Edge, Any, list[Any], list[Any]]:
    """Each query's neighbours within ``radius`` of a fitted estimator ``est``.

    Returns ``(edge, device, dists, inds)``: the edge answering in the
    query's framework, the device of the answer, and per query a host numpy
    array of distances (compute dtype) and of int64 indices.  ``X=None``
    queries the fit data, each point without itself.
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est, "_fit_X")
    graph = graph_query(est, X)
    if graph is not None:  # a sparse precomputed graph, read on the host
        g_edge, G = graph
        r = check_radius(est.radius if radius is None else radius, G.shape[0])
        dists, inds = graph_radius(
            G, r, exclude_self=X is None, sort_results=sort_results
        )
        return g_edge, g_edge.device, dists, inds
    general = getattr(est, "_general_metric", None)
    precomputed = general is not None and general.name == "precomputed"
    if not precomputed and (is_scipy_sparse(X) or is_scipy_sparse(est._fit_X)):
        return _sparse_rows(est, X, radius, sort_results)
    if X is None:
        edge, Xc = Edge.of(est._fit_X)
    else:
        edge, Xc = est._query(X)
    r = check_radius(est.radius if radius is None else radius, int(Xc.shape[0]))
    name = est.effective_metric_
    p = est.effective_metric_params_.get("p", 2.0)
    if _dask.is_dask(est._fit_X):
        # Blockwise on the workers: only the pairs within the radius come
        # back, as host arrays (issue 14).
        dists, inds = _dask.radius_blocks(
            Xc,
            est._fit_X,
            r,
            name,
            p,
            exclude_self=X is None,
            sort_results=sort_results,
        )
        return edge, device_of(Xc), dists, inds
    dists, inds = dense_rows(
        (name, p, est._general_metric),
        Xc,
        est._fit_X,
        r,
        edge.xp,
        0,
        X is None,
        sort_results,
    )
    return edge, device_of(Xc), dists, inds


def dense_rows(
    metric: tuple[str, float, GeneralMetric | None],
    Xc: Any,
    Y: Any,
    r: Any,
    xp: Any,
    offset: int,
    exclude_self: bool,
    sort_results: bool,
) -> tuple[list[Any], list[Any]]:
    """Per query of ``Xc``: host (distances, indices) of ``Y``'s rows within ``r``.

    ``metric``: the fitted estimator's ``(effective_metric_, p, general
    metric or None)``.  ``offset``: the position of ``Xc``'s first row
    relative to ``Y``'s among the fitted rows, for ``exclude_self``.
    """
    import numpy as np

    name, p, general = metric
    if general is not None:
        name = general.name
        D, e = _general_distances(Xc, Y, general, xp), 0
    else:
        # Distances of the data at its safe power-of-two scale 2**-e,
        # compared with the radius at that scale: nothing overflows.
        D, e = pairwise_scaled(Xc, Y, name, p, xp, same=False)
    D = to_numpy(D)
    with np.errstate(over="ignore"):
        r_s = np.ldexp(
            np.broadcast_to(np.asarray(r, dtype=np.float64), (D.shape[0],)),
            -e * _RADIUS_POWER.get(name, 1),
        )
    # A radius past the dtype's largest float holds every finite distance;
    # compared in the distances' dtype, as a scalar radius is.
    fmax = float(np.finfo(D.dtype).max)
    inside = np.less_equal(D, np.minimum(r_s, fmax).astype(D.dtype)[:, None])
    host = name == "euclidean" or (sort_results and name == "sqeuclidean")
    X_h = to_numpy(Xc) if host else None
    Y_h = to_numpy(Y) if host else None
    if name == "euclidean":
        # The expansion's rounding must not move points across the radius.
        D = _exact_near_radius(X_h, Y_h, D, inside, r_s, e)
    return _split_rows(
        D,
        inside,
        e,
        name,
        exclude_self=exclude_self,
        offset=offset,
        sort_results=sort_results,
        exact=(X_h, Y_h) if sort_results and X_h is not None else None,
    )


def _sparse_rows(
    est: Any, X: Any, radius: Any, sort_results: bool
) -> tuple[Edge, Any, list[Any], list[Any]]:
    """:func:`radius_rows` where the queries or the fit data are scipy sparse.

    A tile of the sparse side is densified at a time (sized by the working
    memory, :func:`xplearn.neighbors._sparse.tile_rows`) and searched as
    dense data; each query's columns from the fit tiles are joined in index
    order (sorted by distance, then index, for ``sort_results``).
    """
    import numpy as np

    from ._sparse import host_edge, tile_rows

    general = est._general_metric
    if general is not None and general.name == "callable":
        msg = (
            "radius_neighbors with a callable metric on sparse data is not "
            "implemented: pass dense data (X.toarray())."
        )
        raise ValueError(msg)
    Y = est._fit_X
    if X is None:
        edge, Xc = host_edge(Y.dtype), Y
    else:
        edge, Xc = est._query(X)
    xp = edge.xp
    n, d = int(Xc.shape[0]), int(Xc.shape[1])
    m = int(Y.shape[0])
    r = check_radius(est.radius if radius is None else radius, n)
    dev = device_of(Y) if not is_scipy_sparse(Y) else None
    q_rows = tile_rows(n, d, 8, xp) if is_scipy_sparse(Xc) else n
    y_rows = tile_rows(m, d, 8, xp) if is_scipy_sparse(Y) else m

    def dense(Z: Any, dtype: Any) -> Any:
        if not is_scipy_sparse(Z):
            return Z
        D = Z.toarray()
        if dev is None:
            return D
        out = to_namespace(D, xp, device=dev)
        return xp.astype(out, dtype) if out.dtype != dtype else out

    metric = (
        est.effective_metric_,
        est.effective_metric_params_.get("p", 2.0),
        general,
    )
    dtype = Y.dtype
    dists: list[Any] = []
    inds: list[Any] = []
    for a in range(0, n, q_rows):
        b = min(a + q_rows, n)
        Q = dense(Xc[a:b], dtype)
        r_t = r if np.ndim(r) == 0 else r[a:b]
        parts = []
        for c in range(0, m, y_rows):
            Yt = dense(Y[c : min(c + y_rows, m)] if y_rows < m else Y, Q.dtype)
            pd, pi = dense_rows(metric, Q, Yt, r_t, xp, a - c, X is None, sort_results)
            parts.append((pd, [i + c for i in pi]))
        for j in range(b - a):
            idx = np.concatenate([pi[j] for _, pi in parts])
            dist = np.concatenate([pd[j] for pd, _ in parts])
            if sort_results:
                order = np.lexsort((idx, dist))
                idx, dist = idx[order], dist[order]
            dists.append(dist)
            inds.append(idx.astype(np.int64))
    out_dev = None if is_scipy_sparse(Xc) and dev is None else device_of(Q)
    return edge, out_dev, dists, inds


def _split_rows(
    D: Any,
    inside: Any,
    e: int,
    name: str,
    *,
    exclude_self: bool,
    offset: int = 0,
    sort_results: bool,
    exact: tuple[Any, Any] | None,
) -> tuple[list[Any], list[Any]]:
    """Per-query (distances, indices) of the host membership ``inside``.

    ``D`` holds the distances at the scale ``2**-e``.  ``exact``: the host
    data, whose sorted results are ordered by exact distances (ties to the
    lower index): the expansion's rounding would order equal distances by
    their rounding errors.
    """
    import numpy as np

    if exact is not None:
        Xs = times_pow2(exact[0].astype(np.float64), -e, np)
        Ys = times_pow2(exact[1].astype(np.float64), -e, np)
    D = scale_back(D, e, name, np)
    dists, inds = [], []
    for i in range(D.shape[0]):
        idx = np.flatnonzero(inside[i])
        if exclude_self:
            idx = idx[idx != i + offset]
        d = D[i][idx]
        if exact is not None and len(idx):
            sq = ((Ys[idx] - Xs[i]) ** 2).sum(axis=1)
            sq = sq if name == "sqeuclidean" else np.sqrt(sq)
            d = scale_back(sq.astype(D.dtype), e, name, np)
        if sort_results:
            order = np.lexsort((idx, d))
            idx, d = idx[order], d[order]
        dists.append(d)
        inds.append(idx.astype(np.int64))
    return dists, inds


def _general_distances(X: Any, Y: Any, general: GeneralMetric, xp: Any) -> Any:
    """Distances of ``X`` to ``Y`` for a general or precomputed metric."""
    return X if general.name == "precomputed" else general_pairwise(X, Y, general, xp)


def _exact_near_radius(X: Any, Y: Any, D: Any, inside: Any, r: Any, e: int) -> Any:
    """Decide by differences the pairs whose expansion distance is near ``r``.

    ``D`` holds the expansion's Euclidean distances of ``X · 2**-e`` and
    ``Y · 2**-e`` (host arrays, in the compute dtype) and ``r`` the radius of
    each query at that scale.  The expansion's squared distance is off by at
    most the rounding bound of :func:`xplearn.neighbors._search.rounding_bound`
    times ``‖x‖² + ‖y‖²``, which grows with a common offset of the data, not
    with the distance: every pair within twice that of ``r²`` is measured
    again by differences in float64: ``inside`` (the membership) is corrected
    in place, and ``D`` is returned corrected (a copy where it changes: the
    host view of a jax or TF array is read-only).
    """
    import numpy as np

    from ._search import rounding_bound

    Xs = times_pow2(X.astype(np.float64), -e, np)
    Ys = times_pow2(Y.astype(np.float64), -e, np)
    slack = 2.0 * rounding_bound(np, D.dtype, X.shape[1])
    eps = float(np.finfo(D.dtype).eps)
    XX, YY = (Xs * Xs).sum(axis=1), (Ys * Ys).sum(axis=1)
    with np.errstate(over="ignore", invalid="ignore"):
        D2, r2 = D.astype(np.float64) ** 2, (r * r)[:, None]
        margin = slack * (XX[:, None] + YY[None, :]) + 4.0 * eps * r2
        i, j = np.nonzero(np.abs(D2 - r2) <= margin)
    if len(i):
        exact = np.sqrt(((Xs[i] - Ys[j]) ** 2).sum(axis=1))
        inside[i, j] = exact <= r[i]
        D = D.copy()
        D[i, j] = exact
    return D


def radius_weights(dists: list[Any], weights: Any) -> Any:
    """Weights of each query's neighbours, flat (None for uniform).

    scikit-learn's rule: ``"distance"`` is 1/d, except that a query with
    neighbours at distance 0 gives those weight 1 and the others 0; a
    callable gets a numpy object array of the per-query distance arrays.
    """
    import numpy as np

    if weights in (None, "uniform"):
        return None
    if not dists:
        return np.zeros(0)
    if weights == "distance":
        out = []
        for row in dists:
            d = row.astype(np.float64)
            zero = d == 0
            out.append(zero.astype(np.float64) if zero.any() else 1.0 / d)
        return np.concatenate(out)
    if callable(weights):
        arg = np.empty(len(dists), dtype=object)
        for i, d in enumerate(dists):
            arg[i] = d
        got = weights(arg)
        return np.concatenate(
            [np.asarray(w, dtype=np.float64).reshape(-1) for w in got]
        )
    msg = f"weights must be 'uniform', 'distance' or a callable, got {weights!r}."
    raise ValueError(msg)
