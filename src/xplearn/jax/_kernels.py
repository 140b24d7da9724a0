"""The jit-safe kernels: exact k-NN search, pairwise distances, in jax operations.

The same answers as the eager kernels of :mod:`xplearn.neighbors._search`
and :mod:`xplearn.metrics._pairwise`, with static shapes and no host round
trip, as the TF graph kernels (:mod:`xplearn.tensorflow._graph`) have them:

* the data is taken to the eager path's exact power-of-two scale
  (:mod:`xplearn._scaling`), the exponent chosen on the device
  (``frexp``/``ldexp`` are exact);
* Euclidean search: a screen ``‖y_c‖² − 2 x_c·y_c`` of data centred on the
  database mean (a common offset does not enter its rounding) keeps
  ``k + 8`` candidates per query, re-ranked by their exact squared distances
  ``Σ (y − x)²`` summed in the widest float, equal distances by the lower
  index; a query whose certificate
  (:func:`xplearn.neighbors._search.certified`, the same allowances) cannot
  exclude every non-candidate is searched again exactly, by differences
  against every row, in a ``while_loop`` over blocks of such queries (none:
  no iteration);
* Euclidean distances: the centred expansion in the widest float, the pairs
  its rounding could spoil measured again by differences (``lax.cond``);
* the other metrics by their eager block formulas, then ``lax.top_k``
  (equal values lower index first).

Queries run in row tiles (``lax.map``) sized by the working-memory budget.
jax is imported inside the functions: importing this module loads no
framework.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xplearn._primitives import working_memory_bytes
from xplearn._scaling import safe_range
from xplearn._validation import float_dtypes, index_dtype
from xplearn.metrics._pairwise import EUCLIDEAN, distance_block
from xplearn.neighbors._search import certificate_allowances, rounding_bound

# Candidates kept per query beyond k for the exact re-ranking (the eager
# search keeps as many).
EXTRA = 8


def _jnp() -> Any:
    import jax.numpy as jnp

    return jnp


def budget() -> int:
    """Bytes of temporaries a tile may take (``config_context(working_memory=)``)."""
    return working_memory_bytes(_jnp(), None)


def wide_dtype() -> Any:
    """Return the widest float jax has now (float64 only with ``jax_enable_x64``)."""
    return float_dtypes(_jnp(), None)[0]


def indices_dtype() -> Any:
    """Dtype of returned indices: int64 with ``jax_enable_x64``, else int32."""
    return index_dtype(_jnp(), None)


# --------------------------------------------------------------------------
# Scaling (the run-time form of xplearn._scaling)
# --------------------------------------------------------------------------


def scale_exponent(arrays: list[Any], metric: str = "euclidean", p: float = 2.0) -> Any:
    """:func:`xplearn._scaling.scale_exponent`, as an int32 array on the device."""
    jnp = _jnp()
    M = jnp.max(jnp.stack([jnp.max(jnp.abs(a)) for a in arrays]))
    low, high = safe_range(arrays[0].dtype, jnp, arrays[0].shape[1], metric, p)
    keep = (M == 0) | ~jnp.isfinite(M) | ((low <= M) & (high >= M))
    _, e = jnp.frexp(M)
    return jnp.where(keep, jnp.zeros_like(e), e).astype(jnp.int32)


def times_pow2(X: Any, e: Any) -> Any:
    """``X · 2**e`` for an int32 array ``e`` (exact: ``ldexp``)."""
    return _jnp().ldexp(X, e)


def scale_back(D: Any, e: Any, metric: str) -> Any:
    """Distances of the scaled data back in the caller's units."""
    if metric == "cosine":
        return D
    return times_pow2(D, 2 * e if metric == "sqeuclidean" else e)


# --------------------------------------------------------------------------
# Tiling
# --------------------------------------------------------------------------


def map_rows(fn: Callable[[Any, Any], Any], X: Any, rows: int) -> Any:
    """``fn(tile, start)`` over row tiles of ``X`` (``lax.map``), concatenated.

    The last tile is padded with zero rows, whose results are dropped.
    ``fn`` returns an array or a tuple of arrays with the tile's rows first.
    """
    import jax

    jnp = _jnp()
    n, d = X.shape
    if rows >= n:
        return fn(X, jnp.asarray(0, dtype=jnp.int32))
    t = -(-n // rows)
    pad = t * rows - n
    if pad:
        X = jnp.concatenate([X, jnp.zeros((pad, d), dtype=X.dtype)], axis=0)
    starts = jnp.arange(t, dtype=jnp.int32) * rows
    out = jax.lax.map(lambda a: fn(a[0], a[1]), (jnp.reshape(X, (t, rows, d)), starts))
    return jax.tree_util.tree_map(
        lambda a: jnp.reshape(a, (t * rows, *a.shape[2:]))[:n], out
    )


def _rows_for(n: int, per_row: int) -> int:
    return max(1, min(n, budget() // max(1, per_row)))


def diff_sq(X: Any, Y: Any) -> Any:
    """``Σ (y − x)²`` of every row of ``X`` to every row of ``Y``, by differences.

    Column chunks of ``Y`` (``lax.map``) keep the ``rows × cols × d``
    difference within the budget.
    """
    import jax

    jnp = _jnp()
    (r, d), m = X.shape, Y.shape[0]
    size = X.dtype.itemsize
    cols = max(1, min(m, budget() // max(1, 2 * r * d * size)))

    def block(Yb: Any) -> Any:
        diff = Yb[None, :, :] - X[:, None, :]
        return jnp.sum(diff * diff, axis=2)

    if cols >= m:
        return block(Y)
    t = -(-m // cols)
    pad = t * cols - m
    Yp = jnp.concatenate([Y, jnp.zeros((pad, d), dtype=Y.dtype)], axis=0) if pad else Y
    parts = jax.lax.map(block, jnp.reshape(Yp, (t, cols, d)))  # (t, r, cols)
    return jnp.reshape(jnp.transpose(parts, (1, 0, 2)), (r, t * cols))[:, :m]


def smallest(D: Any, k: int) -> tuple[Any, Any]:
    """Return the ``k`` smallest of each row, ascending, ties lower index first."""
    import jax

    neg, idx = jax.lax.top_k(-D, k)
    return -neg, idx


# --------------------------------------------------------------------------
# k nearest neighbours
# --------------------------------------------------------------------------


def kneighbors(X: Any, Y: Any, k: int, metric: str, p: float) -> tuple[Any, Any]:
    """Exact ``k`` nearest rows of ``Y`` for every row of ``X``: (dist, ind).

    ``X`` and ``Y`` share a floating dtype; ``metric`` is canonical
    (:func:`xplearn.metrics.check_metric`).  Distances in that dtype,
    ascending; indices int64 (int32 without ``jax_enable_x64``).
    """
    jnp = _jnp()
    e = scale_exponent([X, Y], metric, p)
    Xs = times_pow2(X, -e)
    Ys = Xs if Y is X else times_pow2(Y, -e)
    if metric in EUCLIDEAN:
        dist, ind = euclidean_search(Xs, Ys, k)
        if metric == "euclidean":
            dist = jnp.sqrt(dist)
    else:
        dist, ind = _block_search(Xs, Ys, k, metric, p)
    return scale_back(dist, e, metric), ind.astype(indices_dtype())


def _block_search(X: Any, Y: Any, k: int, metric: str, p: float) -> tuple[Any, Any]:
    """Cosine, Manhattan, Chebyshev, Minkowski: the eager block, then top-k."""
    n, d = X.shape
    m, size = Y.shape[0], X.dtype.itemsize
    per_row = m * size * (3 if metric == "cosine" else d + 3)

    def tile(Xq: Any, _: Any) -> tuple[Any, Any]:
        return smallest(distance_block(Xq, Y, metric, p, _jnp()), k)

    out: tuple[Any, Any] = map_rows(tile, X, _rows_for(n, per_row))
    return out


def exact_topk(X: Any, Y: Any, k: int) -> tuple[Any, Any]:
    """Exact ``k`` nearest (squared) by differences against all of ``Y``.

    Summed and ranked in the widest float, as the eager search ranks (float32
    sums swap neighbours a unit in the last place apart); returned in
    ``X``'s dtype.
    """
    wide = wide_dtype()
    sq, ind = smallest(diff_sq(X.astype(wide), Y.astype(wide)), k)
    return sq.astype(X.dtype), ind


def certified(kth: Any, tau: Any, xx: Any, yy_max: Any, d: int) -> Any:
    """Per query: whether no non-candidate can come as close as the k-th.

    :func:`xplearn.neighbors._search.certified` with the screen error of the
    eager search (``x2 = yy = rounding_bound``), in the widest float jax has.
    """
    jnp = _jnp()
    wide = wide_dtype()
    v = float(jnp.finfo(kth.dtype).eps) / 2
    slop, eta_per_norm, near_factor = certificate_allowances(
        d, v, float(jnp.finfo(wide).eps)
    )
    slack = rounding_bound(jnp, kth.dtype, d)
    xx, tau, yy_max = (a.astype(wide) for a in (xx, tau, yy_max))
    x_norm = jnp.sqrt(xx * slop)
    y_norm = jnp.sqrt(yy_max * slop)
    error = slack * yy_max * slop + slack * xx * slop
    low = tau - error + xx / slop
    eta = eta_per_norm * (x_norm + y_norm)
    far = jnp.sqrt(jnp.clip(low, min=0.0)) - eta
    near = jnp.sqrt(kth.astype(wide) * near_factor)
    return near < far


def euclidean_search(X: Any, Y: Any, k: int) -> tuple[Any, Any]:
    """Exact ``k`` nearest, squared Euclidean: centred screen, exact re-rank.

    Data in the safe range (the caller scales it).  Every row of ``Y`` a
    candidate (``m <= k + 8``): exact distances to all.
    """
    jnp = _jnp()
    (n, d), m = X.shape, Y.shape[0]
    n_cand = min(m, k + EXTRA)
    size = X.dtype.itemsize
    if n_cand == m:

        def everything(Xq: Any, _: Any) -> tuple[Any, Any]:
            return exact_topk(Xq, Y, k)

        out: tuple[Any, Any] = map_rows(everything, X, _rows_for(n, 2 * m * d * 8))
        return out
    # Centred on the database mean: the screen's rounding grows with the
    # norms, which a common offset (1e4 + noise) makes far larger than the
    # distances.
    c = jnp.mean(Y, axis=0)
    Yc = Y - c
    YY = jnp.sum(Yc * Yc, axis=1)
    yy_max = jnp.max(YY)
    wide = wide_dtype()

    def tile(Xq: Any, _: Any) -> tuple[Any, Any, Any]:
        Xc = Xq - c
        screened = YY[None, :] - 2.0 * (Xc @ Yc.T)
        vals, cand = smallest(screened, n_cand)
        tau = vals[:, -1]  # every non-candidate's screened value is at least this
        # The candidates in index order: the stable sort below then puts the
        # lower index of equal distances first.
        cand = jnp.sort(cand, axis=1)
        # In the widest float, as the eager re-ranking (exact_topk).
        diff = jnp.take(Y, cand, axis=0).astype(wide) - Xq[:, None, :].astype(wide)
        exact = jnp.sum(diff * diff, axis=2)
        pos = jnp.argsort(exact, axis=1, stable=True)[:, :k]
        sq = jnp.take_along_axis(exact, pos, axis=1).astype(X.dtype)
        ind = jnp.take_along_axis(cand, pos, axis=1)
        ok = certified(sq[:, -1], tau, jnp.sum(Xc * Xc, axis=1), yy_max, d)
        return sq, ind, ok

    per_row = 3 * m * size + 2 * n_cand * d * 8 + 64
    sq, ind, ok = map_rows(tile, X, _rows_for(n, per_row))
    return redo(X, Y, k, ok, sq, ind)


def redo(X: Any, Y: Any, k: int, ok: Any, sq: Any, ind: Any) -> tuple[Any, Any]:
    """Search the rows without a certificate again, exactly, block by block.

    Exact duplicates and ties at the k-th neighbour land here.  The rows to
    redo are listed with a static size (``nonzero(size=n)``) and a
    ``while_loop`` runs over as many blocks as there are such rows: none,
    no iteration; results are scattered back (the padding is dropped).
    """
    import jax

    jnp = _jnp()
    n, m = X.shape[0], Y.shape[0]
    block = _rows_for(n, 2 * m * 8 + 64)  # (block, m) distances, widest float
    bad = ~ok
    count = jnp.sum(bad.astype(jnp.int32))
    rows = jnp.nonzero(bad, size=n, fill_value=n)[0].astype(jnp.int32)
    rows = jnp.concatenate([rows, jnp.full((block,), n, dtype=jnp.int32)])

    def body(state: tuple[Any, Any, Any]) -> tuple[Any, Any, Any]:
        j, sq, ind = state
        some = jax.lax.dynamic_slice(rows, (j,), (block,))
        v, i = exact_topk(jnp.take(X, some, axis=0, mode="clip"), Y, k)
        return (
            j + block,
            sq.at[some].set(v, mode="drop"),
            ind.at[some].set(i.astype(ind.dtype), mode="drop"),
        )

    start = jnp.asarray(0, dtype=jnp.int32)
    _, sq, ind = jax.lax.while_loop(lambda s: s[0] < count, body, (start, sq, ind))
    return sq, ind


# --------------------------------------------------------------------------
# Pairwise distances
# --------------------------------------------------------------------------


def pairwise(X: Any, Y: Any, metric: str, p: float, *, same: bool) -> Any:
    """Full distance matrix of ``X`` and ``Y`` (``same``: ``Y`` is ``X``).

    :func:`xplearn.metrics._pairwise._pairwise` in jax operations.
    """
    jnp = _jnp()
    e = scale_exponent([X, Y], metric, p)
    Xs = times_pow2(X, -e)
    Ys = Xs if Y is X else times_pow2(Y, -e)
    n, d = X.shape
    m, size = Y.shape[0], X.dtype.itemsize
    if metric in EUCLIDEAN:
        D = _euclidean_pairs(Xs, Ys, metric)
    else:
        per_row = m * size * (3 if metric == "cosine" else d + 3)

        def tile(Xq: Any, _: Any) -> Any:
            return distance_block(Xq, Ys, metric, p, jnp)

        D = map_rows(tile, Xs, _rows_for(n, per_row))
    if same and metric in EUCLIDEAN | {"cosine"}:
        # A point's distance to itself is exactly 0, whatever the rounding.
        D = jnp.where(jnp.eye(n, dtype=bool), jnp.zeros_like(D), D)
    return scale_back(D, e, metric)


def _euclidean_pairs(X: Any, Y: Any, metric: str) -> Any:
    """:class:`xplearn.metrics._pairwise._EuclideanPairs`, in jax operations.

    The centred expansion in the widest float; the pairs whose rounding
    bound exceeds ``rel`` of their squared distance are measured again by
    differences (a ``lax.cond`` per row tile: no tile without such a pair
    pays for it).
    """
    import jax

    jnp = _jnp()
    wide = wide_dtype()
    (n, d), m = X.shape, Y.shape[0]
    Yw = Y.astype(wide)
    c = jnp.mean(Yw, axis=0)
    Yc = Yw - c
    YY = jnp.sum(Yc * Yc, axis=1)
    w_eps = float(jnp.finfo(wide).eps)
    slack = rounding_bound(jnp, wide, d) + 4.0 * w_eps
    rel = 2.0**-25 if Y.dtype == jnp.float32 else 2.0**-40

    def tile(Xq: Any, _: Any) -> Any:
        Xw = Xq.astype(wide)
        Xc = Xw - c
        norms = jnp.sum(Xc * Xc, axis=1)[:, None] + YY[None, :]
        D = jnp.clip(norms - 2.0 * (Xc @ Yc.T), min=0.0)
        redo = slack * norms > rel * D
        D = jax.lax.cond(
            jnp.any(redo),
            lambda: jnp.where(redo, diff_sq(Xw, Yw), D),
            lambda: D,
        )
        D = jnp.sqrt(D) if metric == "euclidean" else D
        return D.astype(X.dtype)

    per_row = m * (6 * jnp.finfo(wide).bits // 8 + 1)
    return map_rows(tile, X, _rows_for(n, per_row))


def nearest(X: Any, C: Any) -> tuple[Any, Any, Any]:
    """Nearest row of ``C`` of each row of ``X`` and its squared distance.

    The exact search with ``k = 1``: the labels of the eager
    :func:`xplearn.neighbors._search.nearest_center` (ties to the lower
    index).  Squared distances at the data's scale ``2**-e``, and ``e``.
    """
    e = scale_exponent([X, C])
    sq, ind = euclidean_search(times_pow2(X, -e), times_pow2(C, -e), 1)
    return ind[:, 0].astype(indices_dtype()), sq[:, 0], e
