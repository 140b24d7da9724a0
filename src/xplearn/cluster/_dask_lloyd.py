"""KMeans.fit on dask blocks: Lloyd's iterations and k-means++ (issue 14).

See :mod:`._dask` for the plan: one ``compute`` per Lloyd iteration, the
per-block E-step and sums reduced by a tree, the strict-convergence test by
digests of the blocks' labels, the relocation candidates in the same pass.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from typing import Any, NamedTuple

from xplearn._scaling import ldexp

from ._dask import (
    Frame,
    _block_w,
    _centred,
    _tree,
    _weight_blocks,
    _weights,
    check_dask_input,
    setup,
)

# --------------------------------------------------------------------------
# The per-block kernels (run on the workers, on numpy blocks)
# --------------------------------------------------------------------------


def _block_data(Xb: Any, wb: Any, frame: Frame) -> Any:
    """``_lloyd._Data`` of one block, in the frame, on one thread."""
    import array_api_compat.numpy as npx

    from ._lloyd import _Data

    Xm = _centred(Xb, frame)
    data = _Data(Xm, _block_w(wb, Xm.shape[0], frame.dtype), npx)
    data.workers = 1  # dask runs the blocks in parallel
    return data


class _Pass(NamedTuple):
    """One Lloyd pass reduced over blocks."""

    sums: Any
    totals: Any
    far: tuple[Any, ...] | None  # (dist, index, rows, weights, labels)
    digests: list[bytes]
    inertia: float


def _lloyd_block(
    Xb: Any, wb: Any, C: Any, frame: Frame, offset: int, verbose: bool
) -> _Pass:
    """E-step and M-step sums of one block; its farthest points if needed."""
    import array_api_compat.numpy as npx
    import numpy as np

    from ._lloyd import _lloyd_pass, _own_sq_dist

    data = _block_data(Xb, wb, frame)
    labels, sums, totals = _lloyd_pass(data, C, npx)
    labels = np.asarray(labels, dtype=np.int64)
    n_empty = int(np.count_nonzero(np.asarray(totals) == 0))
    far = None
    inertia = 0.0
    if n_empty or verbose:
        dist = np.asarray(_own_sq_dist(data.X, C, labels, npx), dtype=np.float64)
        inertia = float(np.dot(dist, data.w))
        if n_empty:
            # The farthest first, of equal distances the higher index (the
            # in-memory order: a reversed stable argsort).
            top = np.argsort(dist, kind="stable")[::-1][:n_empty]
            far = (dist[top], top + offset, data.X[top], data.w[top], labels[top])
    digest = hashlib.blake2b(labels.tobytes(), digest_size=16).digest()
    return _Pass(np.asarray(sums), np.asarray(totals), far, [digest], inertia)


def _merge_far(a: Any, b: Any, k: int) -> Any:
    import numpy as np

    if a is None or b is None:
        return a if b is None else b
    cat = [np.concatenate([x, y]) for x, y in zip(a, b, strict=True)]
    order = np.lexsort((-cat[1], -cat[0]))[:k]
    return tuple(c[order] for c in cat)


def _combine_passes(parts: list[_Pass], k: int) -> _Pass:
    sums, totals, far, digests, inertia = parts[0]
    digests = list(digests)
    for p in parts[1:]:
        sums, totals = sums + p.sums, totals + p.totals
        far = _merge_far(far, p.far, k)
        digests += p.digests
        inertia += p.inertia
    return _Pass(sums, totals, far, digests, inertia)


def _labels_block(Xb: Any, C: Any, frame: Frame) -> Any:
    """Nearest centre of every row of one block (the last E-step)."""
    import array_api_compat.numpy as npx
    import numpy as np

    from ._lloyd import _nearest

    data = _block_data(Xb, None, frame)
    return np.asarray(_nearest(data, C, npx), dtype=np.int64)


def _final_block(Xb: Any, wb: Any, C: Any, C_lab: Any, frame: Frame) -> Any:
    """Inertia of one block (labels from ``C_lab``, distances to ``C``), counts."""
    import array_api_compat.numpy as npx
    import numpy as np

    from ._lloyd import _nearest, _own_sq_dist

    data = _block_data(Xb, wb, frame)
    labels = np.asarray(_nearest(data, C_lab, npx), dtype=np.int64)
    dist = _own_sq_dist(data.X, C, labels, npx)
    counts = np.bincount(labels, minlength=C.shape[0])
    return float(np.dot(np.asarray(dist, dtype=np.float64), data.w)), counts


def _sum_pairs(parts: list[Any]) -> Any:
    out = parts[0]
    for p in parts[1:]:
        out = (out[0] + p[0], out[1] + p[1])
    return out


# --------------------------------------------------------------------------
# k-means++ over blocks
# --------------------------------------------------------------------------


def _sqdist_block(Xb: Any, rows: Any, frame: Frame) -> Any:
    """``‖c‖² − 2 c·x + ‖x‖²`` of ``rows`` × the block (clipped at 0), as in memory."""
    import numpy as np

    Xm = _centred(Xb, frame)
    xx = np.einsum("ij,ij->i", Xm, Xm)
    cc = np.einsum("ij,ij->i", rows, rows)
    D = cc[:, None] - 2.0 * (rows @ Xm.T) + xx[None, :]
    return np.clip(D, 0.0, None)


def _closest_block(Xb: Any, closest: Any, row: Any, frame: Frame) -> Any:
    import numpy as np

    D = _sqdist_block(Xb, row[None, :], frame)[0]
    return D if closest is None else np.minimum(closest, D)


def _pick_in_block(closest: Any, wb: Any, n: int, target: float, side: str) -> int:
    """Local index of the first cumulative weighted potential past ``target``."""
    import numpy as np

    p = np.ones(n) if closest is None else closest.astype(np.float64)
    if wb is not None:
        p = p * wb.astype(np.float64)
    cum = np.cumsum(p)
    return int(min(np.searchsorted(cum, target, side=side), cum.shape[0] - 1))  # type: ignore[call-overload]


def _locate(cum_blocks: Any, target: float, side: str) -> tuple[int, float]:
    """Block holding the global cumulative position ``target``, and the rest."""
    import numpy as np

    b = int(np.searchsorted(cum_blocks, target, side=side))  # type: ignore[call-overload]
    if b >= cum_blocks.shape[0]:  # past the end (rounding): the last row
        return cum_blocks.shape[0] - 1, math.inf
    return b, target - (float(cum_blocks[b - 1]) if b else 0.0)


def _row(Xb: Any, i: int, frame: Frame) -> Any:
    return _centred(Xb[i : i + 1], frame)[0]


def _potential(closest: Any, wb: Any) -> float:
    import numpy as np

    w = _block_w(wb, closest.shape[0], closest.dtype)
    return float(np.asarray(closest @ w, dtype=np.float64))


def _trial_pots(Xb: Any, wb: Any, closest: Any, rows: Any, frame: Frame) -> Any:
    """Potential of the block for each candidate row (``min(closest, D) @ w``)."""
    import numpy as np

    D = _sqdist_block(Xb, rows, frame)
    if closest is not None:
        D = np.minimum(closest[None, :], D)
    w = _block_w(wb, D.shape[1], D.dtype)
    return np.asarray(D @ w, dtype=np.float64)


def kmeans_plusplus_blocks(
    X: Any,
    wd: list[Any],
    w_blocks: Any,
    frame: Frame,
    k: int,
    rs: Any,
) -> Any:
    """Greedy k-means++ (scikit-learn's) over the blocks; centres in the frame."""
    import dask
    import numpy as np
    from dask import delayed

    xd = list(X.to_delayed().ravel())
    n_trials = 2 + int(np.log(k))
    # The first centre: choice(n, p=w / Σw) draws one uniform (legacy
    # RandomState) and takes the first cumulative weight past it.
    u = float(rs.random_sample())
    cum_w = np.cumsum(w_blocks)
    b, t = _locate(cum_w, u * float(cum_w[-1]), "right")
    i = delayed(_pick_in_block)(None, wd[b], X.chunks[0][b], t, "right")
    row_d = delayed(_row)(xd[b], i, frame)
    (row,) = dask.compute(row_d)
    rows = [np.asarray(row)]
    (closest,) = dask.persist(
        [delayed(_closest_block)(xb, None, row, frame) for xb in xd]
    )
    (T,) = dask.compute(
        [delayed(_potential)(cb, wb) for cb, wb in zip(closest, wd, strict=True)]
    )
    T = np.asarray(T, dtype=np.float64)
    for _ in range(1, k):
        pot = float(T.sum())
        rand = rs.uniform(size=n_trials) * pot
        cum_blocks = np.cumsum(T)
        cand_rows = []
        for r in rand:
            b, t = _locate(cum_blocks, float(r), "left")
            if math.isinf(t):
                j: Any = X.chunks[0][b] - 1
            else:
                j = delayed(_pick_in_block)(
                    closest[b], wd[b], X.chunks[0][b], t, "left"
                )
            cand_rows.append(delayed(_row)(xd[b], j, frame))
        cand = delayed(np.stack)(cand_rows)
        pots_d = [
            delayed(_trial_pots)(xb, wb, cb, cand, frame)
            for xb, wb, cb in zip(xd, wd, closest, strict=True)
        ]
        cand_h, pots_b = dask.compute(cand, pots_d)
        pots_b = np.stack(pots_b)  # blocks × trials
        best = int(np.argmin(pots_b.sum(axis=0)))
        T = pots_b[:, best]
        row = np.asarray(cand_h[best])
        rows.append(row)
        (closest,) = dask.persist(
            [
                delayed(_closest_block)(xb, cb, row, frame)
                for xb, cb in zip(xd, closest, strict=True)
            ]
        )
    return np.stack(rows)


# --------------------------------------------------------------------------
# KMeans.fit
# --------------------------------------------------------------------------


def _host_centers(C: Any, X: Any, frame: Frame, estimator: Any) -> Any:
    """Check an explicit init (array or callable result); host centres in the frame."""
    import numpy as np

    from xplearn._convert import to_numpy
    from xplearn._scaling import times_pow2

    k, d = estimator.n_clusters, X.shape[1]
    C = np.asarray(to_numpy(C))
    if C.ndim != 2 or C.shape[0] != k:
        msg = (
            f"The shape of the initial centers {C.shape} does not match the "
            f"number of clusters {k}."
        )
        raise ValueError(msg)
    if C.shape[1] != d:
        msg = (
            f"The shape of the initial centers {C.shape} does not match the "
            f"number of features of the data {d}."
        )
        raise ValueError(msg)
    C = C.astype(frame.dtype, copy=True)
    if not np.all(np.isfinite(C)):
        msg = "Input init contains NaN or infinity. Pass finite initial centres."
        raise ValueError(msg)
    import array_api_compat.numpy as npx

    return times_pow2(C, -frame.e, npx) - frame.mean


def _init(
    estimator: Any, X: Any, wd: list[Any], w: Any, w_blocks: Any, frame: Frame, rs: Any
) -> Any:
    """Draw the initial centres in the frame, as the in-memory fit does."""
    import dask
    import numpy as np

    init, k = estimator.init, estimator.n_clusters
    if isinstance(init, str) and init == "k-means++":
        return kmeans_plusplus_blocks(X, wd, w_blocks, frame, k, rs)
    if isinstance(init, str) and init == "random":
        # choice(replace=False, p=...) needs every weight: n floats (never X)
        # come to the host, none when the weights are all one.
        n = X.shape[0]
        if w is None:
            p = np.full(n, 1.0 / n)
        else:
            (wh,) = dask.compute(w.astype(np.float64))
            p = wh / wh.sum()
        seeds = rs.choice(n, size=k, replace=False, p=p)
        order = np.argsort(seeds)
        (rows,) = dask.compute(X[np.sort(seeds)])
        rows = np.asarray(rows)[np.argsort(order)]
        return _host_centers(rows, X, frame, estimator)
    if callable(init):
        Xm = X.map_blocks(_centred, frame, dtype=frame.dtype)
        C = init(Xm, k, random_state=rs)
        import array_api_compat.numpy as npx

        from xplearn._convert import to_numpy
        from xplearn._scaling import times_pow2

        # Given in the frame: back to X's units for the common check.
        C = times_pow2(np.asarray(to_numpy(C)) + frame.mean, frame.e, npx)
        return _host_centers(C, X, frame, estimator)
    return _host_centers(init, X, frame, estimator)  # an array: k × d


def _relocate(p: _Pass) -> tuple[Any, Any]:
    """``_lloyd._relocate_empty`` on the reduced pass (host, small arrays)."""
    import numpy as np

    sums, totals = p.sums.astype(np.float64), p.totals.astype(np.float64)
    empty = np.flatnonzero(totals == 0)
    if empty.size == 0 or p.far is None:
        return p.sums, p.totals
    dist, _, rows, w, labels = p.far
    if dist.max() == 0:
        return p.sums, p.totals
    for new, x, wi, old in zip(empty, rows, w, labels, strict=False):
        sums[old] -= x * wi
        sums[new] = x * wi
        totals[new] = wi
        totals[old] -= wi
    return sums.astype(p.sums.dtype), totals.astype(p.totals.dtype)


def _new_centers(p: _Pass, dtype: Any) -> Any:
    """``_lloyd._new_centers`` on the host: weighted means, relocation."""
    import numpy as np

    sums, totals = p.sums, p.totals
    if np.any(totals == 0):
        sums, totals = _relocate(p)
    empty = totals == 0
    safe = np.where(empty, 1, totals)
    new = (sums / safe[:, None]).astype(dtype)
    if np.any(empty):
        new[empty] = new[int(np.argmax(totals))]
    return new


def _lloyd_run(
    X: Any, wd: list[Any], C: Any, frame: Frame, max_iter: int, tol: float, verbose: int
) -> tuple[Any, Any, int, bool]:
    """Lloyd iterations, one compute each; (centres, label centres, n_iter, strict)."""
    import dask
    from dask import delayed

    from ._lloyd import _converged

    xd = list(X.to_delayed().ravel())
    offsets = [sum(X.chunks[0][:b]) for b in range(len(xd))]
    k = C.shape[0]
    digests_old = None
    strict = False
    C_lab = C
    i = 0
    for i in range(max_iter):
        Cd = delayed(C)
        parts = [
            delayed(_lloyd_block, pure=True)(xb, wb, Cd, frame, off, bool(verbose))
            for xb, wb, off in zip(xd, wd, offsets, strict=True)
        ]
        (p,) = dask.compute(_tree(parts, _combine_passes, k))
        new = _new_centers(p, frame.dtype)
        if verbose:
            print(f"Iteration {i}, inertia {p.inertia}.")
        shift = float(((new - C) ** 2).sum())
        C_lab, C = C, new
        strict = digests_old is not None and p.digests == digests_old
        if _converged(i, strict, shift, tol, verbose):
            break
        digests_old = p.digests
    if not strict:
        C_lab = C
    return C, C_lab, i + 1, strict


def fit_kmeans(estimator: Any, X: Any, sample_weight: Any, n_init: int) -> Any:
    """``KMeans.fit`` on a dask ``X``: fitted attributes are dask arrays."""
    import array_api_compat.numpy as npx
    import dask
    import dask.array as da
    import numpy as np
    from dask import delayed

    from xplearn._scaling import times_pow2

    from ._checks import _check_n_clusters
    from ._init import _check_random_state

    if estimator.algorithm == "elkan":
        # Elkan's bounds are n-sized state carried between iterations; on
        # blocks they would be a persist per iteration: Lloyd's passes give
        # the same labels and centres.
        pass
    X, dtype = check_dask_input(estimator, X)
    _check_n_clusters(estimator.n_clusters, X.shape[0])
    w = _weights(sample_weight, X, dtype)
    init = estimator.init
    given = None
    if not isinstance(init, str) and not callable(init):
        from xplearn._convert import to_numpy

        given = np.asarray(to_numpy(init))
    frame, w_blocks = setup(X, w, dtype, given=given)
    wd = _weight_blocks(w, X)
    xd = list(X.to_delayed().ravel())
    # The mean squared norm of the centred rows over d times tol (as in memory).
    norms = X.map_blocks(
        lambda b, f: np.einsum("ij,ij->i", _centred(b, f), _centred(b, f)),
        frame,
        drop_axis=1,
        dtype=dtype,
    )
    (mean_norm,) = dask.compute(norms.mean())
    tol = float(mean_norm) / X.shape[1] * estimator.tol
    rs = _check_random_state(estimator.random_state)
    best = None
    for _ in range(n_init):
        init = _init(estimator, X, wd, w, w_blocks, frame, rs)
        if estimator.verbose:
            print("Initialization complete")
        C, C_lab, n_iter, _ = _lloyd_run(
            X, wd, init, frame, int(estimator.max_iter), tol, estimator.verbose
        )
        Cd, Ld = delayed(C), delayed(C_lab)
        parts = [
            delayed(_final_block, pure=True)(xb, wb, Cd, Ld, frame)
            for xb, wb in zip(xd, wd, strict=True)
        ]
        ((inertia, counts),) = dask.compute(_tree(parts, _sum_pairs))
        # Lower inertia wins (the in-memory fit also compares the partitions,
        # which here would bring every label to the host).
        if best is None or inertia < best[1]:
            best = (C, inertia, C_lab, n_iter, counts)
    assert best is not None
    C, inertia, C_lab, n_iter, counts = best
    n_distinct = int(np.count_nonzero(counts))
    if n_distinct < estimator.n_clusters:
        from sklearn.exceptions import ConvergenceWarning

        warnings.warn(
            f"Number of distinct clusters ({n_distinct}) found smaller than "
            f"n_clusters ({estimator.n_clusters}). Possibly due to duplicate "
            "points in X.",
            ConvergenceWarning,
            stacklevel=3,
        )
    centers = times_pow2(C + frame.mean, frame.e, npx)
    estimator.cluster_centers_ = da.from_array(centers, chunks=centers.shape)
    estimator.labels_ = X.map_blocks(
        _labels_block, C_lab, frame, drop_axis=1, dtype=np.int64
    )
    estimator.inertia_ = ldexp(float(inertia), 2 * frame.e)
    estimator.n_iter_ = n_iter
    estimator._n_features_out = estimator.n_clusters
    return estimator
