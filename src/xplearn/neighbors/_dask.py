"""Neighbours fitted on dask: the fit data stays in its blocks (issue 14).

Every block of queries is searched against every block of the fit data by
the numpy kernel (:func:`._search.search`, exact, ties to the lower index);
each pair gives its ``k`` best, offset to global row indices, and the
candidates of one block of queries are merged by a tree of tasks (the
smaller distance first, of equal distances the lower global index), so no
task holds more than a block of queries against a block of the fit data
(the kernel inside runs within ``working_memory``).  Nothing is computed
until the caller computes the result: ``kneighbors`` returns dask arrays
with the chunks of the queries.
"""

from __future__ import annotations

from typing import Any

from xplearn._namespace import backend_name

# Candidate lists merged per node of the tree.
_SPLIT_EVERY = 8


def is_dask(x: Any) -> bool:
    """Whether ``x`` is a dask array."""
    return backend_name(x) == "dask"


def fit_input(estimator: Any, X: Any) -> tuple[Any, Any]:
    """Validate a dask ``X`` for fit, keep it dask: ``(Edge, X)``.

    Shape and dtype now, the values (NaN, infinity) in one round; ``X`` is
    returned with one block of columns in its compute dtype.
    """
    import array_api_compat.numpy as npx
    import dask.array as da
    import numpy as np
    from sklearn.utils.validation import validate_data

    from xplearn._dispatch import Edge
    from xplearn._validation import check_array, check_non_empty, compute_dtype

    edge, Xc = Edge.of(X)
    if Xc.ndim != 2:
        check_array(Xc, edge.xp)  # raises the common message
    if any(np.isnan(c) for c in Xc.chunks[0]):
        msg = (
            "X has blocks of unknown length (a dask array from a boolean mask "
            "or a dataframe); call X.compute_chunk_sizes() first."
        )
        raise ValueError(msg)
    check_non_empty(Xc)
    dtype = compute_dtype(npx, np.dtype(Xc.dtype), "cpu")
    if Xc.dtype != dtype:
        Xc = Xc.astype(dtype)
    if len(Xc.chunks[1]) > 1:
        Xc = Xc.rechunk({1: -1})
    bad = int((~da.isfinite(Xc)).sum().compute())
    if bad:
        msg = (
            f"Input X contains NaN or infinity: {bad} non-finite value(s). "
            "Remove those samples or impute them (e.g. "
            "sklearn.impute.SimpleImputer) before calling xplearn."
        )
        raise ValueError(msg)
    validate_data(estimator, X, skip_check_array=True, reset=True)
    return edge, Xc


def _pair(Xb: Any, Yb: Any, k: int, metric: str, p: float, offset: int) -> Any:
    """Find the ``k`` nearest rows of one fit block for one query block."""
    import array_api_compat.numpy as npx
    import numpy as np

    from ._search import search

    d, i = search(Xb, Yb, min(k, Yb.shape[0]), metric, p, npx)
    return np.asarray(d), np.asarray(i, dtype=np.int64) + offset


def _merge(parts: list[Any], k: int) -> Any:
    """Merge candidate lists: smaller distance first, then the lower index."""
    import numpy as np

    if len(parts) == 1:
        return parts[0]
    d = np.concatenate([p[0] for p in parts], axis=1)
    i = np.concatenate([p[1] for p in parts], axis=1)
    # Sort by index, then stably by distance: ties keep the lower index first.
    by_index = np.argsort(i, axis=1, kind="stable")
    d, i = np.take_along_axis(d, by_index, 1), np.take_along_axis(i, by_index, 1)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, order, 1), np.take_along_axis(i, order, 1)


def _drop_self(found: Any, k: int, start: int) -> Any:
    """Drop each query's own row (``X=None``), as ``_NeighborsBase._search``.

    Where more duplicates than neighbours leave it out, the first column goes
    (scikit-learn's rule).
    """
    import numpy as np

    d, i = found
    n = i.shape[0]
    rows = np.arange(start, start + n)[:, None]
    keep = i != rows
    absent = keep.all(axis=1, keepdims=True)
    first = (np.arange(k + 1) == 0)[None, :]
    keep = np.where(absent, ~first, keep)
    return d[keep].reshape(n, k), i[keep].reshape(n, k)


def _part(found: Any, j: int) -> Any:
    return found[j]


def search_blocks(
    X: Any, Y: Any, k: int, metric: str, p: float, *, exclude_self: bool = False
) -> tuple[Any, Any]:
    """Search the dask fit data ``Y`` blockwise for dask queries ``X``.

    Returns lazy ``(distances, int64 indices)`` with the row chunks of ``X``.
    ``exclude_self``: ``X`` is ``Y`` and each row's own index is dropped.
    """
    import dask.array as da
    import numpy as np
    from dask import delayed

    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    kk = k + 1 if exclude_self else k
    yd = list(Y.to_delayed().ravel())
    y_off = np.concatenate([[0], np.cumsum(Y.chunks[0])]).tolist()
    x_off = np.concatenate([[0], np.cumsum(X.chunks[0])]).tolist()
    dists, inds = [], []
    for b, xb in enumerate(X.to_delayed().ravel()):
        parts = [
            delayed(_pair, pure=True)(xb, yb, kk, metric, p, y_off[j])
            for j, yb in enumerate(yd)
        ]
        while len(parts) > 1:
            parts = [
                delayed(_merge, pure=True)(parts[i : i + _SPLIT_EVERY], kk)
                for i in range(0, len(parts), _SPLIT_EVERY)
            ]
        found = parts[0]
        if exclude_self:
            found = delayed(_drop_self, pure=True)(found, k, x_off[b])
        n = X.chunks[0][b]
        dists.append(da.from_delayed(delayed(_part)(found, 0), (n, k), dtype=X.dtype))
        inds.append(da.from_delayed(delayed(_part)(found, 1), (n, k), dtype=np.int64))
    return da.concatenate(dists, axis=0), da.concatenate(inds, axis=0)
