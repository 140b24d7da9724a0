"""The in-graph kernels: exact k-NN search and distances to centres in TF ops.

The same answers as the eager kernels of :mod:`xplearn.neighbors._search`,
built from operations that TensorFlow graphs and TFLite's builtin set both
have (matmul, ``top_k``, gather, ``while_loop``, ``cond``):

* the data is searched at the eager path's power-of-two scale
  (:mod:`xplearn._scaling`), chosen at run time from the query batch and the
  fitted data, so data past float32's squares keeps its neighbours;
* a screen ``‖y_c‖² − 2 x_c·y_c`` (one matmul) keeps ``k + 8`` candidates,
  which are re-ranked by their exact squared distances ``Σ (y − x)²``, equal
  distances by the lower index (``tf.math.top_k`` puts the lower index
  first, documented; the tests check TFLite's ``TOPK_V2`` does too);
* a query whose certificate (:func:`xplearn.neighbors._search.certified`,
  here in the input's precision) cannot exclude every non-candidate is
  searched again exactly, by differences against every fitted row, in a
  ``while_loop`` over blocks of such queries.

Nothing here validates: callers check the input first.  TensorFlow is
imported inside the functions, so that importing this module (pytest's
doctest collection does) needs no TensorFlow.
"""

from __future__ import annotations

import math
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np

from xplearn._scaling import safe_range
from xplearn.neighbors._search import certificate_allowances, rounding_bound

# Candidates kept per query beyond k for the exact re-ranking (the eager
# float32 search keeps as many).
EXTRA = 8
# Bytes the temporaries of one block of the exact search may take.  The
# graph runs on phones as well as servers: a fixed budget, not the host's.
BUDGET = 32 * 2**20
# The exact re-ranking sums in float64, as the eager search orders (float32
# sums swap neighbours a rounding apart), except while a TFLite model is
# traced: TFLite has no float64 arithmetic, so its models order neighbours
# closer than float32's rounding by their float32 sums (documented).
WIDE_RERANK: ContextVar[bool] = ContextVar("xplearn_tf_wide_rerank", default=True)


def _widen(*arrays: Any) -> tuple[Any, ...]:
    """``arrays`` in float64 for the exact re-ranking (see :data:`WIDE_RERANK`)."""
    import tensorflow as tf

    if not WIDE_RERANK.get() or arrays[0].dtype == tf.float64:
        return arrays
    return tuple(tf.cast(a, tf.float64) for a in arrays)


def pow2_table(dtype: Any) -> tuple[Any, int]:
    """Every power of two of ``dtype``, subnormals to ``inf``, and the lowest exponent.

    ``2**n`` is ``table[n - low]``, exact (``numpy.ldexp``); TF's ``pow``
    need not be.
    """
    fi = np.finfo(dtype)
    low = int(fi.minexp) - int(fi.nmant)  # 2**low: the smallest subnormal
    high = int(fi.maxexp)  # 2**maxexp overflows to inf
    with np.errstate(over="ignore"):
        table = np.ldexp(np.ones(high - low + 1, dtype=dtype), np.arange(low, high + 1))
    return table.astype(dtype), low


class Scale:
    """Exact power-of-two scaling of ``dtype`` data with ``d`` features, in TF ops.

    The run-time form of :mod:`xplearn._scaling`: the exponent is chosen
    from tensors' values as the graph runs, with the eager path's rule.
    """

    def __init__(self, dtype: Any, d: int) -> None:
        import tensorflow as tf

        self.np_dtype = np.dtype(dtype)
        self.d = d
        table, self.low = pow2_table(self.np_dtype)
        self.table = tf.constant(table)
        self.top = int(table.shape[0]) - 1

    def pow2(self, n: Any) -> Any:
        """``2**n`` for an int32 tensor ``n`` (clipped to the dtype's range)."""
        import tensorflow as tf

        return tf.gather(self.table, tf.clip_by_value(n - self.low, 0, self.top))

    def times_pow2(self, X: Any, e: Any) -> Any:
        """``X · 2**e`` for an int32 tensor ``e``, in the eager path's exact steps.

        Each factor is a normal number of the dtype (``2**134`` is not a
        float32), as :func:`xplearn._scaling.times_pow2` does it.
        """
        import tensorflow as tf

        step = int(np.frexp(np.finfo(self.np_dtype).max)[1]) - 2
        first = tf.clip_by_value(e, -step, step)
        return X * self.pow2(first) * self.pow2(e - first)

    def exponent(self, M: Any) -> Any:
        """:func:`xplearn._scaling.scale_exponent` for the largest magnitude ``M``.

        0 (int32) while ``M`` lies in the safe range (or is 0), else the
        exponent that puts it in ``[0.5, 1)``.
        """
        import tensorflow as tf

        lo, hi = safe_range(self.np_dtype, np, self.d)
        keep = ((lo <= M) & (hi >= M)) | tf.equal(M, 0.0)
        safe = tf.where(keep, tf.ones_like(M), M)
        # frexp's exponent: floor(log2 M) + 1 in floating point, then
        # corrected against exact powers of two (the logarithm may be one off).
        e = tf.cast(tf.floor(tf.math.log(safe) / math.log(2.0)), tf.int32) + 1
        e = tf.where(safe >= self.pow2(e), e + 1, e)
        e = tf.where(safe < self.pow2(e - 1), e - 1, e)
        return tf.where(keep, tf.zeros_like(e), e)


def max_abs(X: Any) -> Any:
    """Largest magnitude in ``X`` (``-inf`` for an empty batch)."""
    import tensorflow as tf

    return tf.reduce_max(tf.abs(X))


@dataclass
class Index:
    """A fitted matrix ``Y`` prepared for :func:`search`, as TF tensors.

    ``Y`` is kept as fitted.  The screen's operands were computed once, on
    the host, at ``Y``'s own safe scale ``2**-e``: ``Yc = Y·2**-e − c``
    (``c`` is 0 for data near the origin; then ``Yc`` is the same tensor as
    ``Y`` and costs nothing), ``YY = ‖Yc‖²`` and its maximum.
    """

    Y: Any
    Yc: Any
    YY: Any
    c: Any
    yy_max: Any
    max_abs: Any
    scale: Scale
    e: int
    centred: bool

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_samples, n_features)`` of the fitted data."""
        m, d = self.Y.shape
        return int(m), int(d)


def scale_exponent(X: Any, index: Index) -> Any:
    """:func:`xplearn._scaling.scale_exponent` of ``[X, Y]``, at run time (int32)."""
    import tensorflow as tf

    return index.scale.exponent(tf.maximum(max_abs(X), index.max_abs))


def scale_back(D: Any, e: Any, power: int, index: Index) -> Any:
    """Distances at the scale ``2**-e`` back in the data's units (``power``: 1 or 2)."""
    return index.scale.times_pow2(D, power * e)


def _operands(index: Index, e: Any) -> tuple[Any, Any, Any, Any, Any]:
    """``(Ys, Yc, YY, c, yy_max)`` for the run-time scale ``e``.

    The stored operands where ``e`` is the fitted data's own scale (always,
    unless a query batch is far larger or smaller than the fitted data);
    else computed from ``Y`` at that scale.
    """
    import tensorflow as tf

    # Read here, outside the branches: a branch that reads a variable itself
    # gets its own frozen copy of it in a TFLite model (the fitted data twice).
    Y, Yc0, YY0, c0, yy_max0 = (
        tf.convert_to_tensor(t)
        for t in (index.Y, index.Yc, index.YY, index.c, index.yy_max)
    )

    def stored() -> tuple[Any, ...]:
        Ys = Y if index.e == 0 else index.scale.times_pow2(Y, tf.constant(-index.e))
        return Ys, Yc0, YY0, c0, yy_max0

    def rescaled() -> tuple[Any, ...]:
        Ys = index.scale.times_pow2(Y, -e)
        c = tf.reduce_mean(Ys, axis=0) if index.centred else tf.zeros_like(c0)
        Yc = Ys - c
        YY = tf.reduce_sum(Yc * Yc, axis=1)
        return Ys, Yc, YY, c, tf.reduce_max(YY)

    Ys, Yc, YY, c, yy_max = tf.cond(tf.equal(e, index.e), stored, rescaled)
    return Ys, Yc, YY, c, yy_max


def search(X: Any, index: Index, k: int) -> tuple[Any, Any, Any]:
    """Exact ``k`` nearest rows of the index for every row of ``X``.

    Returns the squared distances at the scale ``2**-e``, ascending; the
    int32 indices, equal distances in index order; and ``e`` (int32), with
    which :func:`scale_back` gives the distances in the data's units.
    """
    import tensorflow as tf

    m, d = index.shape
    e = scale_exponent(X, index)
    Xs = index.scale.times_pow2(X, -e)
    Ys, Yc, YY, c, yy_max = _operands(index, e)
    n_cand = min(m, k + EXTRA)
    if n_cand == m:  # every row is a candidate: exact distances to all
        sq, ind = exact_topk(Xs, Ys, k)
        return sq, ind, e
    Xc = Xs - c
    screened = YY[None, :] - 2.0 * tf.matmul(Xc, Yc, transpose_b=True)
    neg, cand = tf.math.top_k(-screened, n_cand)
    tau = -neg[:, -1]  # every non-candidate's screened value is at least this
    # The candidates in index order, so that the stable top-k below keeps
    # the lower index of equal distances first.
    cand = -tf.math.top_k(-cand, n_cand).values
    neg_sq, pos = tf.math.top_k(-exact_sq(*_widen(Xs, tf.gather(Ys, cand))), k)
    sq, ind = tf.cast(-neg_sq, Xs.dtype), tf.gather(cand, pos, batch_dims=1)
    ok = certified(sq[:, -1], tau, tf.reduce_sum(Xc * Xc, axis=1), yy_max, d)
    sq, ind = _redo(Xs, Ys, k, ok, sq, ind)
    return sq, ind, e


# Up to this many features the squares are summed one by one, left to right:
# numpy (pairwise summation starts at 8 terms), torch, TF's reduce_sum and
# the eager path all sum so; TFLite's SUM does not, and then orders points
# at equal-looking distances (one rounding apart) differently.
SEQUENTIAL_SUM = 7


def exact_sq(X: Any, Y: Any) -> Any:
    """``Σ (y − x)²`` of each query (n, d) to its rows of ``Y`` (n or 1, c, d).

    Summed left to right up to :data:`SEQUENTIAL_SUM` features, as the
    eager path sums; past that in TF's (and TFLite's) own order, which
    differs from numpy's and torch's (as theirs differ from each other) by
    a rounding: distances that close may be ordered differently.
    """
    import tensorflow as tf

    diff = Y - X[:, None, :]
    sq = diff * diff
    d = int(sq.shape[-1])
    if d > SEQUENTIAL_SUM:
        return tf.reduce_sum(sq, axis=2)
    total = sq[:, :, 0]
    for j in range(1, d):
        total = total + sq[:, :, j]
    return total


def certified(kth: Any, tau: Any, xx: Any, yy_max: Any, d: int) -> Any:
    """Per query: whether no non-candidate can come as close as the k-th.

    :func:`xplearn.neighbors._search.certified` with the screen error of
    the float32 search (``x2 = yy = rounding_bound``), computed in the
    input's own precision (TFLite has no float64 arithmetic): the ``8·eps``
    terms that cover the test's own rounding then take the input's epsilon,
    which only makes the test more cautious.
    """
    import tensorflow as tf

    dtype = np.dtype(kth.dtype.as_numpy_dtype)
    eps = float(np.finfo(dtype).eps)
    slack = rounding_bound(np, dtype, d)
    slop, eta_per_norm, near_factor = certificate_allowances(d, eps / 2, eps)
    x_norm = tf.sqrt(xx * slop)
    y_norm = tf.sqrt(yy_max * slop)
    error = slack * yy_max * slop + slack * xx * slop
    low = tau - error + xx / slop
    eta = eta_per_norm * (x_norm + y_norm)
    far = tf.sqrt(tf.maximum(low, 0.0)) - eta
    near = tf.sqrt(kth * near_factor)
    return near < far


def _blocks(m: int, d: int, size: int) -> tuple[list[tuple[int, int]], int]:
    """Column chunks of the exact search, and queries per block (:data:`BUDGET`)."""
    cols = min(m, max(1, BUDGET // (2 * d * size)))
    rows = max(1, BUDGET // (2 * cols * d * size + m * size))
    return [(j, min(j + cols, m)) for j in range(0, m, cols)], rows


def exact_topk(X: Any, Y: Any, k: int) -> tuple[Any, Any]:
    """Exact ``k`` nearest (squared) by differences against all of ``Y``.

    Equal distances in index order.  The queries come in blocks
    (:func:`_redo`) or are few; the columns go in chunks of the budget.
    """
    import tensorflow as tf

    dtype = X.dtype
    X, Y = _widen(X, Y)
    m, d = int(Y.shape[0]), int(Y.shape[1])
    chunks, _ = _blocks(m, d, Y.dtype.size)
    parts = [exact_sq(X, Y[None, a:b, :]) for a, b in chunks]
    D = parts[0] if len(parts) == 1 else tf.concat(parts, axis=1)
    neg, ind = tf.math.top_k(-D, k)
    return tf.cast(-neg, dtype), ind


def _redo(X: Any, Y: Any, k: int, ok: Any, sq: Any, ind: Any) -> tuple[Any, Any]:
    """Search the rows without a certificate again, exactly, block by block.

    Exact duplicates and ties at the k-th neighbour land here.  No row to
    redo: the loop runs no iteration.
    """
    import tensorflow as tf

    m, d = int(Y.shape[0]), int(Y.shape[1])
    _, block = _blocks(m, d, Y.dtype.size)
    rows = tf.cast(tf.reshape(tf.where(tf.logical_not(ok)), [-1]), tf.int32)
    r = tf.shape(rows)[0]

    def body(j: Any, sq: Any, ind: Any) -> tuple[Any, Any, Any]:
        some = rows[j : j + block]
        v, i = exact_topk(tf.gather(X, some), Y, k)
        at = some[:, None]
        return (
            j + block,
            tf.tensor_scatter_nd_update(sq, at, v),
            tf.tensor_scatter_nd_update(ind, at, i),
        )

    _, sq, ind = tf.while_loop(
        lambda j, *_: j < r, body, (tf.constant(0), sq, ind), parallel_iterations=1
    )
    return sq, ind


def first_min(D: Any) -> Any:
    """Column of the first minimum of each row (int32), whatever ``argmin`` does.

    ``tf.math.argmin`` does not promise which of equal minima it returns.
    """
    import tensorflow as tf

    cols = tf.range(tf.shape(D)[1], dtype=tf.int32)
    low = tf.reduce_min(D, axis=1, keepdims=True)
    wide = tf.shape(D)[1] * tf.ones_like(cols)[None, :]
    return tf.reduce_min(tf.where(tf.equal(D, low), cols[None, :], wide), axis=1)


def first_max(D: Any) -> Any:
    """Column of the first maximum of each row (int32)."""
    return first_min(-D)
