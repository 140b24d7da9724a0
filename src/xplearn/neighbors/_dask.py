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

The radius search (:func:`radius_blocks`) has a ragged answer, which no dask
array holds: each pair of blocks gives its pairs within the radius (counts,
global indices, distances), the pairs of one block of queries are joined by
a tree of tasks, and one ``compute`` brings the pair lists, and nothing of
the fit data, to the caller.
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
    """Find the ``k`` nearest rows of one fit block for one query block.

    Returns ``(exponents, mantissas, distances, global indices)``; the
    first two (:func:`_merge_key`) order the blocks' lists when they are
    merged.
    """
    import array_api_compat.numpy as npx
    import numpy as np

    from ._search import search

    d, i = search(Xb, Yb, min(k, Yb.shape[0]), metric, p, npx)
    d, i = np.asarray(d), np.asarray(i, dtype=np.int64)
    return (*_merge_key(Xb, Yb, d, i, metric), d, i + offset)


def _merge_key(Xb: Any, Yb: Any, d: Any, i: Any, metric: str) -> tuple[Any, Any]:
    """Return the values by which one block's neighbours merge with another's.

    Euclidean: the exact squares in float64, the sums the search ranks by,
    as binary exponents and mantissas (``m · 2**q``, ``m`` in [0.5, 1); a
    zero's exponent below all others).  Two float32 distances an ulp apart,
    or equal once rounded, may come from squares in the other order (a root
    also merges squares an ulp apart): lists merged on the distances
    disagreed with a float64 search on 22% of the neighbours of points on a
    sphere.  The squares are of the data at the block pair's power-of-two
    scale (:mod:`xplearn._scaling`), the exponent then corrected, so float64
    data whose squares would overflow or underflow is ordered exactly too.
    Other metrics: the distances, which their search ranks by.
    """
    import array_api_compat.numpy as npx
    import numpy as np

    from xplearn._scaling import scale_exponent, times_pow2
    from xplearn.metrics import EUCLIDEAN

    from ._search import _exact_sq

    if metric not in EUCLIDEAN:
        return np.zeros(d.shape, dtype=np.int64), d
    e = scale_exponent([Xb, Yb], npx)
    if e:  # scaled in float64, where it is exact
        Xb, Yb = (times_pow2(a.astype(np.float64), -e, npx) for a in (Xb, Yb))
    sq = np.asarray(_exact_sq(Xb, Yb, i, npx, np.float64))
    mantissa, exponent = np.frexp(sq)
    exponent = np.where(sq == 0, np.iinfo(np.int32).min, exponent + 2 * e)
    return exponent.astype(np.int64), mantissa


def _merge(parts: list[Any], k: int) -> Any:
    """Merge candidate lists: smaller key first, then the lower index."""
    import numpy as np

    if len(parts) == 1:
        return parts[0]
    both = [np.concatenate([p[j] for p in parts], axis=1) for j in range(4)]
    exponent, mantissa, _, i = both
    # By exponent, then mantissa, then index: ties keep the lower index first.
    order = np.lexsort((i, mantissa, exponent), axis=1)[:, :k]
    return tuple(np.take_along_axis(a, order, 1) for a in both)


def _drop_self(found: Any, k: int, start: int) -> Any:
    """Drop each query's own row (``X=None``), as ``_NeighborsBase._search``.

    Where more duplicates than neighbours leave it out, the first column goes
    (scikit-learn's rule).
    """
    import numpy as np

    i = found[-1]
    n = i.shape[0]
    rows = np.arange(start, start + n)[:, None]
    keep = i != rows
    absent = keep.all(axis=1, keepdims=True)
    first = (np.arange(k + 1) == 0)[None, :]
    keep = np.where(absent, ~first, keep)
    return tuple(a[keep].reshape(n, k) for a in found)


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
        dists.append(da.from_delayed(delayed(_part)(found, 2), (n, k), dtype=X.dtype))
        inds.append(da.from_delayed(delayed(_part)(found, 3), (n, k), dtype=np.int64))
    return da.concatenate(dists, axis=0), da.concatenate(inds, axis=0)


# Bytes of temporaries per (query, fit row) pair of a radius tile: the
# distance, the float64 squares and margins of the near-radius test, masks.
_RADIUS_PAIR_BYTES = 64


def _radius_pair(
    Xb: Any,
    Yb: Any,
    r: Any,
    metric: tuple[str, float],
    offsets: tuple[int, int],
    flags: tuple[bool, bool],
    budget: int,
) -> tuple[Any, Any, Any]:
    """Find the pairs of one query block and one fit block within the radius.

    Returns ``(counts, indices, distances)``: per query its number of
    neighbours in this block, then their global int64 indices and their
    distances, query after query (the numpy kernel's order and values).
    ``offsets``: the global row of ``Xb``'s and of ``Yb``'s first row;
    ``flags``: ``(exclude_self, sort_results)``; the blocks are searched in
    tiles whose temporaries fit ``budget`` bytes.
    """
    import array_api_compat.numpy as npx
    import numpy as np

    from xplearn._primitives import tile_sizes

    from ._radius import dense_rows

    name, p = metric
    exclude_self, sort_results = flags
    q0, y0 = offsets
    n, m = int(Xb.shape[0]), int(Yb.shape[0])
    rows, cols = tile_sizes(n, m, _RADIUS_PAIR_BYTES, budget)
    out = []
    for a in range(0, n, rows):
        b = min(a + rows, n)
        r_t = r if np.ndim(r) == 0 else r[a:b]
        parts = []
        for c in range(0, m, cols):
            dists, inds = dense_rows(
                (name, p, None),
                Xb[a:b],
                Yb[c : min(c + cols, m)],
                r_t,
                npx,
                q0 + a - y0 - c,
                exclude_self,
                sort_results,
            )
            counts = np.array([len(i) for i in inds], dtype=np.int64)
            idx = np.concatenate(inds) if inds else np.zeros(0, np.int64)
            dist = np.concatenate(dists) if dists else np.zeros(0, Xb.dtype)
            parts.append((counts, idx + (y0 + c), dist))
        out.append(_radius_merge(parts, sort_results))
    return (
        np.concatenate([o[0] for o in out]),
        np.concatenate([o[1] for o in out]),
        np.concatenate([o[2] for o in out]),
    )


def _radius_merge(parts: list[Any], sort_results: bool) -> tuple[Any, Any, Any]:
    """Join per-query pair lists of consecutive fit blocks, in block order.

    Indices stay ascending within a query (each part's are, and the parts
    hold increasing index ranges); ``sort_results``: by distance, then index.
    """
    import numpy as np

    if len(parts) == 1:
        return parts[0]  # type: ignore[no-any-return]
    n = len(parts[0][0])
    rows = np.concatenate([np.repeat(np.arange(n), c) for c, _, _ in parts])
    idx = np.concatenate([i for _, i, _ in parts])
    dist = np.concatenate([d for _, _, d in parts])
    if sort_results:
        order = np.lexsort((idx, dist, rows))
    else:
        order = np.argsort(rows, kind="stable")
    counts = np.sum([c for c, _, _ in parts], axis=0).astype(np.int64)
    return counts, idx[order], dist[order]


def radius_blocks(
    X: Any,
    Y: Any,
    r: Any,
    name: str,
    p: float,
    *,
    exclude_self: bool,
    sort_results: bool,
) -> tuple[list[Any], list[Any]]:
    """Each dask query's neighbours within ``r`` in the dask fit data ``Y``.

    One task per block of queries and block of the fit data finds the pairs
    within the radius (:func:`._radius.dense_rows`, the numpy path's kernel,
    in tiles whose temporaries fit the caller's ``working_memory``), a tree
    of tasks joins them per block of queries, and one ``compute``
    brings the pair lists to the caller: ``Y`` itself never leaves the
    workers.  Returns, per query, host numpy arrays of distances and of
    int64 indices, as :func:`._radius.radius_rows`.  ``r``: a float or a
    numpy array of one radius per query.
    """
    import array_api_compat.numpy as npx
    import dask
    import numpy as np
    from dask import delayed

    from xplearn._primitives import working_memory_bytes

    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    # The caller's working memory, read here: the workers' config is theirs.
    budget = working_memory_bytes(npx, None)
    yd = list(Y.to_delayed().ravel())
    y_off = np.concatenate([[0], np.cumsum(Y.chunks[0])]).tolist()
    x_off = np.concatenate([[0], np.cumsum(X.chunks[0])]).tolist()
    blocks = []
    for b, xb in enumerate(X.to_delayed().ravel()):
        r_b = r if np.ndim(r) == 0 else r[x_off[b] : x_off[b + 1]]
        parts = [
            delayed(_radius_pair, pure=True)(
                xb,
                yb,
                r_b,
                (name, p),
                (x_off[b], y_off[j]),
                (exclude_self, sort_results),
                budget,
            )
            for j, yb in enumerate(yd)
        ]
        while len(parts) > 1:
            parts = [
                delayed(_radius_merge, pure=True)(
                    parts[i : i + _SPLIT_EVERY], sort_results
                )
                for i in range(0, len(parts), _SPLIT_EVERY)
            ]
        blocks.append(parts[0])
    dists: list[Any] = []
    inds: list[Any] = []
    for counts, idx, dist in dask.compute(*blocks):
        cut = np.cumsum(counts)[:-1]
        inds.extend(np.split(idx, cut))
        dists.extend(np.split(dist, cut))
    return dists, inds
