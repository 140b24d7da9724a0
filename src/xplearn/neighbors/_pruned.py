"""Exact k-NN search pruned by pivot blocks, for clustered data on the host.

On clustered data (classes, blobs) a query's neighbours all lie in its own
cluster, yet the plain search computes its distance to every database row.
Here the database is cut into *blocks*, one per pivot (a coarse k-means of a
sample of the rows), each with a rigorous radius ``R_p`` (every row of block
``p`` lies within ``R_p`` of pivot ``p``).  The queries are grouped by their
nearest pivot, their *home* block:

1. each group is searched exactly against its home block alone, which gives
   an upper bound ``ub`` of each query's k-th neighbour distance (the k-th
   distance among some rows is at least the k-th among all of them);
2. by the triangle inequality, a row of block ``p`` is at least
   ``‖x − p‖ − R_p`` from the query; every block where that lower bound
   exceeds ``ub`` (strictly, with the rounding of every quantity covered)
   cannot hold a neighbour nor a tie, and is skipped;
3. the queries that still need other blocks are searched exactly against the
   union of those blocks, and the two exact candidate lists are re-ranked
   together by :func:`~xplearn.neighbors._search.rerank`, the function that
   ends every other search.

Each sub-search is the plain exact search (float32 expansion, or the
bfloat16 screen where it applies) on rows kept in their original order, so
ties still go to the lower index, and every row skipped is provably farther
than the k-th neighbour: the answers, indices and distances, are those of
the full search, bit for bit.  Only the time changes.

Before any of this, a probe (a few hundred queries against a sample of the
database, milliseconds) estimates the share of the database the pruned
search would read; above :data:`_MAX_READ` (spread-out data such as a
Gaussian cloud, where every block is near every query) the plain search
runs instead.  ``config_context(pruning="off")`` turns it off.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from xplearn._config import get_config
from xplearn._namespace import device_of, namespace_name
from xplearn._primitives import sq_row_norms

# Pivots (blocks), the database sample they are fitted on, Lloyd iterations.
_BLOCKS = 16
_SAMPLE = 4096
# ... at most this many sample elements (rows × features): 2 048 rows at d=256.
_SAMPLE_ELEMENTS = 2**19
_ITERATIONS = 8
# Below these sizes the plain search's cost is too small to be worth a probe.
_MIN_ROWS = 16_384
_MIN_QUERIES = 128
# Queries of the probe that estimates the share of the database read.
_PROBE = 512
# Estimated share of the database read above which the plain search runs.
_MAX_READ = 0.5
# Elements of a float64 temporary (the exact distances to the pivots).
_CHUNK = 2**21


def prune_applies(X: Any, Y: Any, k: int, xp: ModuleType) -> bool:
    """Whether :func:`pruned_search` may run (it may still decline)."""
    if get_config()["pruning"] == "off":
        return False
    if namespace_name(xp) not in {"numpy", "torch"}:
        return False
    from . import _search  # (its is_accelerator: tests pretend through it)

    if getattr(_search, "is_accelerator")(xp, device_of(X)):  # noqa: B009
        return False
    n, m = int(X.shape[0]), int(Y.shape[0])
    return m >= _MIN_ROWS and n >= _MIN_QUERIES and 4 * _BLOCKS * k <= m


def pruned_search(
    X: Any, Y: Any, k: int, xp: ModuleType, inner: Any
) -> tuple[Any, Any] | None:
    """Exact k nearest (squared distances, indices), pruned by pivot blocks.

    ``X`` and ``Y`` are host compute arrays (numpy, or torch on the CPU) in
    the safe range of :mod:`xplearn._scaling`; ``inner(X, Y, k, xp)`` is the
    plain exact search, run on the blocks.  Returns None, having done only
    the probe, where pruning is not expected to pay.
    """
    import numpy as np

    from xplearn._convert import to_numpy

    from ._search import _map_tiles, one_blas_thread

    if namespace_name(xp) == "torch" and not (X.requires_grad or Y.requires_grad):
        return _on_numpy_views(X, Y, k, inner)
    m, d = Y.shape
    # The probe and the blocks' geometry are small products on this thread:
    # with a one-thread BLAS, so that no BLAS thread is left spinning on a
    # core that the searches after it need (:func:`._search.one_blas_thread`).
    with one_blas_thread():
        S = _sample(Y, xp)
        P = _pivots(S, xp)
        S_assign, S_r = _sample_blocks(S, P, xp)
        if not _worth_it(X, S, S_assign, S_r, P, k, m, xp):
            return None
        assign = _assign(Y, P, xp)
        r2 = _sq_dist_to(Y, P, assign, xp)
        assign_np = np.asarray(to_numpy(assign), dtype=np.int64)
        perm = np.argsort(assign_np, kind="stable")  # rows by block, in index order
        sizes = np.bincount(assign_np, minlength=P.shape[0])
        starts = np.concatenate([[0], np.cumsum(sizes)])
        r2_np = np.asarray(to_numpy(r2), dtype=np.float64)[perm]
        nonempty = sizes > 0
        radius = np.zeros(P.shape[0])  # (an empty block is never read)
        radius[nonempty] = np.maximum.reduceat(r2_np, starts[:-1][nonempty])
        delta = _relative_rounding(d)
        radius = np.sqrt(radius * (1.0 + delta)) * (1.0 + delta)
        # Lower bounds of every query's distance to every pivot (float64).
        to_pivot = np.sqrt(_sq_dist_all(X, P, xp) * (1.0 - delta)) * (1.0 - delta)
        to_pivot[:, ~nonempty] = np.inf
        home = np.argmin(to_pivot, axis=1)
        lower = to_pivot - radius[None, :]  # least distance to a row of each block
        near_factor = _near_factor(X, xp)

    def rows_of(blocks: Any) -> Any:
        parts = [perm[starts[b] : starts[b + 1]] for b in blocks]
        return np.sort(np.concatenate(parts)) if len(parts) > 1 else parts[0]

    def group(b: int) -> tuple[Any, Any, Any]:
        q = np.flatnonzero(home == b)
        Xq = xp.take(X, _like(q, xp, X), axis=0)
        rows = rows_of([b])
        v, i = _search_rows(Xq, Y, rows, k, xp, inner)
        kth = to_numpy(v[:, -1]) if v.shape[1] == k else np.full(q.shape[0], np.inf)
        upper = np.sqrt(np.asarray(kth, dtype=np.float64) * near_factor)
        upper = upper * (1.0 + delta)
        need = lower[q] <= upper[:, None]
        need[:, b] = False
        far = np.flatnonzero(need.any(axis=1))
        if far.shape[0]:
            blocks = np.flatnonzero(need[far].any(axis=0))
            v, i = _join(Xq, Y, far, v, i, rows_of(blocks), k, xp, inner)
        return _like(q, xp, X), v, i

    # numpy's selection is serial: its groups run on the host pool, with a
    # one-thread BLAS each, as the plain search's query tiles do.
    counts = np.bincount(home, minlength=P.shape[0])
    groups = [int(b) for b in np.argsort(-counts, kind="stable") if counts[b]]
    queries, dist, ind = _map_tiles(group, groups, xp, X.shape[0])
    back = xp.argsort(queries)
    return xp.take(dist, back, axis=0), xp.take(ind, back, axis=0)


def _on_numpy_views(X: Any, Y: Any, k: int, inner: Any) -> tuple[Any, Any] | None:
    """:func:`pruned_search` of torch CPU tensors on numpy's zero-copy views.

    The blocks' searches are independent, and numpy runs them on the host
    pool, a one-thread BLAS and torch each, where torch ran them one after
    another on its own threads: 50 000 x 32 (10 classes), 10 000 queries,
    k = 10 took 217 ms on numpy and 297 on torch (medians of 6, interleaved,
    2-core Zen 4).  The answer is the same either way (every route ends in
    the same exact re-ranking); it comes back as torch tensors, sharing
    numpy's memory.
    """
    import array_api_compat.numpy as npx
    import torch

    got = pruned_search(X.numpy(), Y.numpy(), k, npx, inner)
    if got is None:
        return None
    return torch.from_numpy(got[0]), torch.from_numpy(got[1])


def _search_rows(
    Xq: Any, Y: Any, rows: Any, k: int, xp: ModuleType, inner: Any
) -> tuple[Any, Any]:
    """Exact ``min(k, len(rows))`` nearest of queries ``Xq`` among ``rows`` of ``Y``.

    ``rows`` ascend, so ties go to the lower original index; indices come
    back as rows of ``Y``.
    """
    rows_x = _like(rows, xp, Xq)
    v, i = inner(Xq, xp.take(Y, rows_x, axis=0), min(k, int(rows.shape[0])), xp)
    flat = xp.take(rows_x, xp.reshape(i, (-1,)), axis=0)
    return v, xp.reshape(flat, i.shape)


def _join(
    Xq: Any,
    Y: Any,
    far: Any,
    v: Any,
    i: Any,
    rows: Any,
    k: int,
    xp: ModuleType,
    inner: Any,
) -> tuple[Any, Any]:
    """Search queries ``Xq[far]`` among ``rows`` too; re-rank both candidate lists.

    The home block's exact k and the other blocks' exact k together hold the
    k nearest of all the rows not skipped; :func:`rerank` orders them as
    every search does (exact distances, ties to the lower index).
    """
    from ._search import _replace_rows, rerank

    far_x = _like(far, xp, Xq)
    Xf = xp.take(Xq, far_x, axis=0)
    _, i2 = _search_rows(Xf, Y, rows, k, xp, inner)
    cand = xp.concat([xp.take(i, far_x, axis=0), i2], axis=1)
    fv, fi = rerank(Xf, Y, cand, k, xp)
    if far.shape[0] == Xq.shape[0]:  # (always so where the home had < k rows)
        return fv, fi
    mask = xp.zeros((int(Xq.shape[0]),), dtype=xp.bool, device=device_of(Xq))
    mask[far_x] = True  # numpy and torch: our own new array
    return _replace_rows(v, mask, fv, xp), _replace_rows(i, mask, fi, xp)


def _like(a: Any, xp: ModuleType, X: Any) -> Any:
    """Return host numpy indices as an index array of ``xp`` (zero-copy for torch)."""
    from xplearn._convert import to_namespace

    return to_namespace(a, xp, device=device_of(X))


def _relative_rounding(d: int) -> float:
    """Relative error of a float64 sum of ``d`` squared differences, with room."""
    return 2.0 * (d + 4) * 2.0**-53


def _near_factor(X: Any, xp: ModuleType) -> float:
    """Factor on a computed k-th squared distance covering every route's rounding.

    :func:`~xplearn.neighbors._search.certified`'s allowance for the input
    dtype, squared: a skipped row must be farther than the k-th neighbour as
    any exact route computes it, not only in exact arithmetic.
    """
    from ._search import certificate_allowances

    v = float(xp.finfo(X.dtype).eps) / 2
    _, _, near = certificate_allowances(X.shape[1], v, 2.0**-52)
    return near * near


def _sample(Y: Any, xp: ModuleType) -> Any:
    """Return an evenly strided sample of the rows of ``Y`` (a contiguous copy)."""
    rows = max(256, min(_SAMPLE, _SAMPLE_ELEMENTS // max(1, Y.shape[1])))
    step = max(1, Y.shape[0] // rows)
    return xp.asarray(Y[::step, :][:rows, :], copy=True)


def _pivots(S_: Any, xp: ModuleType) -> Any:
    """Coarse k-means centres of the sample ``S_`` (its dtype, namespace, device).

    k-means++ seeding (a fixed seed: the same pivots on every backend and
    every run), then a few Lloyd iterations, in numpy on the host (a few
    thousand rows: milliseconds).  Any centres give exact answers; these only
    make blocks that match the clusters (from evenly spread seeds, one pivot
    often ended between two clusters, and their queries read both).
    """
    import numpy as np

    from xplearn._convert import to_namespace, to_numpy

    S = np.asarray(to_numpy(S_))
    s = S.shape[0]
    rng = np.random.default_rng(0)
    ss = np.einsum("ij,ij->i", S, S)

    def sq_to(c: Any) -> Any:  # (by the expansion: no s × d temporaries)
        return np.clip(ss + c @ c - 2.0 * (S @ c), 0.0, None).astype(np.float64)

    chosen = [int(rng.integers(s))]
    d2 = sq_to(S[chosen[0]])
    while len(chosen) < min(_BLOCKS, s) and d2.sum() > 0:
        chosen.append(int(rng.choice(s, p=d2 / d2.sum())))
        d2 = np.minimum(d2, sq_to(S[chosen[-1]]))
    C = S[chosen]
    for _ in range(_ITERATIONS):
        labels = np.argmin(np.sum(C * C, axis=1) - 2.0 * (S @ C.T), axis=1)
        onehot = labels[:, None] == np.arange(C.shape[0])[None, :]
        counts = onehot.sum(axis=0)
        sums = onehot.T.astype(S.dtype) @ S
        kept = counts > 0
        C[kept] = sums[kept] / counts[kept, None]
    return to_namespace(C, xp, device=device_of(S_))


def _assign(Y: Any, P: Any, xp: ModuleType) -> Any:
    """Nearest pivot of each row, by the float expansion (any choice is valid)."""
    pp = sq_row_norms(P, xp)[None, :]
    step = max(1, _CHUNK // max(1, P.shape[0]))
    parts = [
        xp.argmin(pp - 2.0 * (Y[i : i + step, :] @ P.T), axis=1)
        for i in range(0, Y.shape[0], step)
    ]
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)


def _sq_dist_to(Y: Any, P: Any, assign: Any, xp: ModuleType) -> Any:
    """float64 ``Σ (y − p)²`` from each row to its own pivot, by differences."""
    f64 = xp.float64
    step = max(1, _CHUNK // max(1, Y.shape[1]))
    parts = []
    for i in range(0, Y.shape[0], step):
        piv = xp.take(P, assign[i : i + step], axis=0)
        diff = xp.astype(Y[i : i + step, :], f64) - xp.astype(piv, f64)
        parts.append(xp.sum(diff * diff, axis=1))
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)


def _sq_dist_all(X: Any, P: Any, xp: ModuleType) -> Any:
    """Lower bounds of ``‖x − p‖²`` for every row of ``X`` and every pivot (numpy).

    One float64 product on the host, ``‖x‖² + ‖p‖² − 2 x·p``: each of its
    ``d + 2``-term sums is off by at most ``(d + 2)·u`` times the sum of the
    terms' magnitudes, at most ``2·(‖x‖² + ‖p‖²)`` (``u = 2**-53``), so that
    much, doubled for room, comes off.
    """
    import numpy as np

    from xplearn._convert import to_numpy

    X64 = np.asarray(to_numpy(X), dtype=np.float64)
    P64 = np.asarray(to_numpy(P), dtype=np.float64)
    xx = np.einsum("ij,ij->i", X64, X64)[:, None]
    pp = np.einsum("ij,ij->i", P64, P64)[None, :]
    D = xx + pp - 2.0 * (X64 @ P64.T)
    slack = 4.0 * (X.shape[1] + 4) * 2.0**-53
    return np.clip(D - slack * (xx + pp), 0.0, None)


def _sample_blocks(S: Any, P: Any, xp: ModuleType) -> tuple[Any, Any]:
    """Return the sample rows' pivots and their distances to them (numpy)."""
    import numpy as np

    from xplearn._convert import to_numpy

    a = _assign(S, P, xp)
    r = np.sqrt(np.asarray(to_numpy(_sq_dist_to(S, P, a, xp)), dtype=np.float64))
    return np.asarray(to_numpy(a), dtype=np.int64), r


def _worth_it(
    X: Any,
    S: Any,
    S_assign: Any,
    S_r: Any,
    P: Any,
    k: int,
    m: int,
    xp: ModuleType,
) -> bool:
    """Estimate, on a probe, whether the pruned search reads under ``_MAX_READ``.

    Not a bound, an estimate: the blocks' sizes and radii from the sample,
    and each probe query's k-th distance as the ``⌈k·s/m⌉``-th among the
    ``s`` sample rows (as many sample rows as the k nearest are expected to
    hold).  Only the time depends on it.
    """
    import numpy as np

    from xplearn._convert import to_numpy

    n, s, p = X.shape[0], S.shape[0], P.shape[0]
    Q = X[:: max(1, n // _PROBE), :][:_PROBE, :]
    D = sq_row_norms(S, xp)[None, :] - 2.0 * (Q @ S.T)
    rank = min(s, max(1, math.ceil(k * s / m)))
    # (Selected in D's own dtype, then widened: the same value.  A min where
    # the rank is 1: numpy's partition took 21 ms for 512 x 4 096 here.)
    Dn = np.asarray(to_numpy(D))
    D = Dn.min(axis=1) if rank == 1 else np.partition(Dn, rank - 1, axis=1)[:, rank - 1]
    D = D.astype(np.float64)
    qq = np.asarray(to_numpy(sq_row_norms(Q, xp)), dtype=np.float64)
    kth = np.sqrt(np.clip(D + qq, 0.0, None))
    share = np.bincount(S_assign, minlength=p) / s
    radius = np.full(p, -np.inf)
    np.maximum.at(radius, S_assign, S_r)
    to_pivot = np.sqrt(_sq_dist_all(Q, P, xp))  # (a lower bound: fine here)
    to_pivot[:, share == 0] = np.inf
    home = np.argmin(to_pivot, axis=1)
    need = to_pivot - radius[None, :] <= kth[:, None]
    need[np.arange(Q.shape[0]), home] = True
    return float(np.mean(need @ share)) <= _MAX_READ
