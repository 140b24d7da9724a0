"""Sparse precomputed neighbour graphs (``metric="precomputed"``, sparse X).

What :class:`KNeighborsTransformer` and :class:`RadiusNeighborsTransformer`
produce for a ``Pipeline``: each row's stored entries are its only candidate
neighbours.  A scipy sparse matrix, or a torch sparse tensor (a transformer's
graph of torch data), is read on the host as scipy CSR: a graph's rows are
ragged lists, as the radius search's are.  The answers go to the graph's
framework and device (numpy for scipy); a fitted graph is kept as scipy CSR.
"""

from __future__ import annotations

import sys
from typing import Any

from xplearn._convert import to_namespace, to_numpy
from xplearn._dispatch import Edge


def is_sparse(X: Any) -> bool:
    """Whether ``X`` is a scipy sparse matrix or a torch sparse tensor.

    Neither framework is imported to find out.
    """
    sp = sys.modules.get("scipy.sparse")
    if sp is not None and sp.issparse(X):
        return True
    torch = sys.modules.get("torch")
    return (
        torch is not None and isinstance(X, torch.Tensor) and X.layout != torch.strided
    )


def _edge_of(X: Any) -> Edge:
    """Return the edge answering for graph ``X``: numpy, or torch on its device."""
    import numpy as np

    torch = sys.modules.get("torch")
    if torch is not None and isinstance(X, torch.Tensor):
        return Edge.of(torch.empty((0, 0), dtype=torch.int64, device=X.device))[0]
    return Edge.of(np.zeros((0, 0)))[0]


def _to_scipy(X: Any) -> Any:
    """Return a torch sparse tensor as scipy CSR (scipy input unchanged)."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(X, torch.Tensor):
        return X
    import scipy.sparse as sp

    csr = X if X.layout == torch.sparse_csr else X.to_sparse_csr()
    return sp.csr_matrix(
        (
            to_numpy(csr.values()),
            to_numpy(csr.col_indices()),
            to_numpy(csr.crow_indices()),
        ),
        shape=tuple(csr.shape),
    )


def fit_graph(est: Any, X: Any) -> tuple[Edge, Any]:
    """Check a sparse graph to fit: square, kept as scipy CSR on the host."""
    import numpy as np

    G = check_graph(X)
    if G.shape[0] != G.shape[1]:
        msg = (
            "Precomputed matrix must be square. Input is a "
            f"{G.shape[0]}x{G.shape[1]} matrix."
        )
        raise ValueError(msg)
    est.n_features_in_ = int(G.shape[1])
    est.__dict__.pop("feature_names_in_", None)
    return Edge.of(np.zeros((0, 0)))[0], G


def graph_query(est: Any, X: Any) -> tuple[Edge, Any] | None:
    """Return (edge, graph) where a query reads a sparse graph, else None.

    ``X=None`` reads the fitted graph; a sparse query with
    ``metric="precomputed"`` is checked (its columns are the fitted samples).
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est, "_fit_X")
    general = getattr(est, "_general_metric", None)
    if general is None or general.name != "precomputed":
        return None  # sparse features (not a graph) are searched by _sparse
    if X is None:
        return (_edge_of(est._fit_X), est._fit_X) if is_sparse(est._fit_X) else None
    if is_sparse(X):
        return _edge_of(X), check_graph(X, est.n_samples_fit_)
    return None


def dense_query_of_graph(est: Any, X: Any) -> tuple[Edge, Any]:
    """Check a dense precomputed query of an estimator fitted on a graph."""
    from xplearn._validation import check_array

    from ._base import check_precomputed

    edge, Xc = Edge.of(X)
    Xc = check_array(Xc, edge.xp)
    if Xc.shape[1] != est.n_samples_fit_:
        msg = (
            "Precomputed metric requires shape (n_queries, n_indexed). Got "
            f"{tuple(Xc.shape)} for {est.n_samples_fit_} indexed."
        )
        raise ValueError(msg)
    check_precomputed(Xc, edge.xp)
    return edge, Xc


def check_graph(X: Any, n_cols: int | None = None) -> Any:
    """``X`` as CSR with each row's entries sorted by distance, checked.

    As scikit-learn: csr/csc/coo/lil only (others lose explicit zeros), no
    negative or non-finite distances; rows not sorted by value are sorted
    with scikit-learn's ``EfficiencyWarning``.  ``n_cols``: the columns a
    query graph must have (the fitted samples).
    """
    import numpy as np
    from sklearn.neighbors import sort_graph_by_row_values

    X = _to_scipy(X)
    if X.format not in ("csr", "csc", "coo", "lil"):
        msg = (
            f"Sparse matrix in {X.format!r} format is not supported due to its "
            "handling of explicit zeros"
        )
        raise TypeError(msg)
    copied = X.format != "csr"
    graph = X.tocsr()
    if graph.data.dtype.kind not in "f":
        graph = graph.astype(np.float64)
        copied = True
    if not np.isfinite(graph.data).all():
        msg = "Input contains NaN or infinity in the precomputed distance matrix."
        raise ValueError(msg)
    if (graph.data < 0).any():
        msg = "Negative values in data passed to precomputed distance matrix."
        raise ValueError(msg)
    if n_cols is not None and graph.shape[1] != n_cols:
        msg = (
            f"Precomputed metric requires shape (n_queries, n_indexed). Got "
            f"{graph.shape} for {n_cols} indexed."
        )
        raise ValueError(msg)
    # sorts in place unless asked to copy: never the caller's matrix.
    graph = sort_graph_by_row_values(graph, copy=not copied, warn_when_not_sorted=True)
    # Equal distances in a row: the lower index first (xplearn's rule on
    # every path; scikit-learn keeps the stored order).  scikit-learn hands
    # an already sorted graph back as it is: never reorder the caller's.
    if graph is X:
        graph = graph.copy()
    rows = np.repeat(np.arange(graph.shape[0]), np.diff(graph.indptr))
    order = np.lexsort((graph.indices, graph.data, rows))
    graph.indices, graph.data = graph.indices[order], graph.data[order]
    return graph


def graph_kneighbors(
    G: Any, k: int, edge: Edge, *, exclude_self: bool
) -> tuple[Any, Any]:
    """Return the first ``k`` stored entries of each row: (distances, indices).

    In ``edge``'s compute namespace and device; int64 indices.

    ``exclude_self``: ``G`` is the fitted graph queried by itself (X=None);
    each sample is dropped from its own row (the first entry where there are
    more duplicates at distance 0 than neighbours, scikit-learn's rule).
    """
    import numpy as np

    n = G.shape[0]
    want = k + 1 if exclude_self else k
    nnz = np.diff(G.indptr)
    if n and nnz.min() < want:
        msg = (
            f"{want} neighbors per samples are required, but some samples have "
            f"only {nnz.min()} neighbors in precomputed graph matrix. Decrease "
            "number of neighbors used or recompute the graph with more neighbors."
        )
        raise ValueError(msg)
    pos = G.indptr[:-1, None] + np.arange(want)[None, :]
    dist = G.data[pos].reshape(n, want)
    ind = G.indices[pos].reshape(n, want).astype(np.int64)
    if exclude_self:
        keep = ind != np.arange(n)[:, None]
        keep[keep.all(axis=1), 0] = False
        dist, ind = dist[keep].reshape(n, k), ind[keep].reshape(n, k)
    xp, dev = edge.xp, edge.device
    return to_namespace(dist, xp, device=dev), to_namespace(ind, xp, device=dev)


def graph_radius(
    G: Any, r: Any, *, exclude_self: bool, sort_results: bool
) -> tuple[list[Any], list[Any]]:
    """Each row's stored entries within ``r`` (a float or one per row)."""
    import numpy as np

    radii = np.broadcast_to(np.asarray(r, dtype=np.float64), (G.shape[0],))
    dists, inds = [], []
    for i in range(G.shape[0]):
        lo, hi = G.indptr[i], G.indptr[i + 1]
        d, idx = G.data[lo:hi], G.indices[lo:hi].astype(np.int64)
        inside = d <= radii[i]
        if exclude_self:
            inside &= idx != i
        d, idx = d[inside], idx[inside]
        if sort_results:
            order = np.lexsort((idx, d))
            d, idx = d[order], idx[order]
        dists.append(d)
        inds.append(idx)
    return dists, inds
