"""Pairwise distances on any backend, matching scikit-learn and scipy.

Euclidean-family metrics use the matrix-product expansion
``‖x‖² + ‖y‖² − 2 x·y`` (one GEMM, clamped at 0, the diagonal of ``X`` against
itself set to exactly 0); the others a broadcast form, in row chunks sized by
the working-memory budget.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any, NamedTuple

from xplearn._dispatch import Edge
from xplearn._namespace import is_lazy, namespace_name
from xplearn._primitives import (
    column_means,
    sq_row_norms,
    sqrt_rounded,
    working_memory_bytes,
)
from xplearn._scaling import scale_back, scale_exponent, times_pow2
from xplearn._traced import is_jax_tracer
from xplearn._validation import check_array, check_n_features, result_dtype

EUCLIDEAN = frozenset({"euclidean", "l2", "sqeuclidean"})
_ALIASES = {
    "l2": "euclidean",
    "l1": "manhattan",
    "cityblock": "manhattan",
    "infinity": "chebyshev",  # scikit-learn's tree names
    "p": "minkowski",
}
METRICS = frozenset(
    {"euclidean", "l2", "sqeuclidean", "cosine", "manhattan", "cityblock", "l1"}
    | {"chebyshev", "infinity", "minkowski", "p"}
)


def check_metric(metric: Any, p: Any = None) -> tuple[str, float]:
    """Canonical metric name and Minkowski ``p``; ``ValueError`` if unknown."""
    if not isinstance(metric, str) or metric not in METRICS:
        msg = (
            f"Unknown metric {metric!r}. xplearn supports {sorted(METRICS)}; "
            "for other metrics use scikit-learn through xplearn.to_numpy."
        )
        raise ValueError(msg)
    name = _ALIASES.get(metric, metric)
    if name != "minkowski":
        return name, 2.0
    p = 2.0 if p is None else p
    if isinstance(p, bool) or not isinstance(p, int | float) or not p > 0:
        msg = f"Minkowski p must be a number > 0 (or inf), got p={p!r}."
        raise ValueError(msg)
    if p == 1:
        return "manhattan", 1.0
    if p == 2:
        return "euclidean", 2.0
    if math.isinf(p):
        return "chebyshev", math.inf
    return "minkowski", float(p)


class _EuclideanPairs:
    """Euclidean distances to the rows of ``Y``, accurate in the input dtype.

    The expansion ``‖x‖² + ‖y‖² − 2 x·y`` is one GEMM, but its rounding is
    relative to the norms, not to the distance: float32 points 1e6 from the
    origin and 1 apart came out 256 apart.  So the data is centred on ``Y``'s
    mean, float32 is computed in float64 where the device has it (as
    scikit-learn does), and every pair whose rounding bound
    (:func:`xplearn.neighbors._search.rounding_bound`) exceeds ``rel`` of its squared
    distance (near-duplicates far from the mean) is computed again by
    differences.  ``rel``: 2**-25 of float32 input (half its unit roundoff),
    2**-40 of float64.
    """

    def __init__(self, Y: Any, xp: ModuleType) -> None:
        from xplearn._validation import float_dtypes
        from xplearn.neighbors._search import rounding_bound

        self.xp, self.Y = xp, Y
        self.wide = float_dtypes(xp, _device(Y))[0]
        Yw = xp.astype(Y, self.wide)
        self.c = column_means(Yw, xp)
        self.Yc = Yw - self.c
        self.YY = sq_row_norms(self.Yc, xp)
        d = Y.shape[1]
        w_eps = float(xp.finfo(self.wide).eps)
        self.slack = rounding_bound(xp, self.wide, d) + 4.0 * w_eps  # + centring
        self.rel = 2.0**-25 if Y.dtype == xp.float32 else 2.0**-40

    def block(self, X: Any, metric: str, diagonal: int | None = None) -> Any:
        """Distances (``metric``: euclidean or sqeuclidean) of ``X``'s rows.

        ``diagonal``: ``X`` is ``Y[diagonal:]``, and the pairs of a row with
        itself need no second look (the caller sets them to 0).
        """
        xp, Y = self.xp, self.Y
        Xc = xp.astype(X, self.wide) - self.c
        XX = sq_row_norms(Xc, xp)
        norms = XX[:, None] + self.YY[None, :]
        D = xp.clip(norms - 2.0 * (Xc @ self.Yc.T), min=0.0)
        redo = self.slack * norms > self.rel * D
        if diagonal is not None:
            dev = _device(D)
            r = xp.arange(X.shape[0], device=dev)[:, None] + diagonal
            redo = redo & (r != xp.arange(Y.shape[0], device=dev)[None, :])
        if bool(xp.any(redo)):
            D = _redo_pairs(X, Y, D, redo, xp)
        D = sqrt_rounded(D, xp) if metric == "euclidean" else D
        return xp.astype(D, X.dtype) if D.dtype != X.dtype else D


def _redo_pairs(X: Any, Y: Any, D: Any, redo: Any, xp: ModuleType) -> Any:
    """``D`` with the ``redo`` pairs' squared distances by differences (in D's dtype).

    numpy and torch gather and scatter the pairs; the standard has no
    scatter, so other namespaces recompute the rows that hold one (in
    budget-sized groups) and gather them back into place.
    """
    if namespace_name(xp) in ("numpy", "torch"):
        i, j = xp.nonzero(redo)
        diff = xp.astype(xp.take(X, i, axis=0), D.dtype) - xp.astype(
            xp.take(Y, j, axis=0), D.dtype
        )
        D = xp.asarray(D, copy=True)
        D[i, j] = xp.sum(diff * diff, axis=1)
        return D
    has = xp.any(redo, axis=1)
    rows = xp.nonzero(has)[0]
    Xr = xp.astype(xp.take(X, rows, axis=0), D.dtype)
    Yw = xp.astype(Y, D.dtype)
    (m, d), size = Y.shape, int(xp.finfo(D.dtype).bits) // 8
    step = max(1, working_memory_bytes(xp, _device(D)) // (2 * m * d * size))
    r = Xr.shape[0]
    parts = [
        xp.sum((Xr[a : min(a + step, r), None, :] - Yw[None, :, :]) ** 2, axis=2)
        for a in range(0, r, step)
    ]
    exact = parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)
    ix = rows.dtype
    pos = xp.clip(xp.cumulative_sum(xp.astype(has, ix)) - 1, min=0)
    return xp.where(redo, xp.take(exact, pos, axis=0), D)


def distance_block(X: Any, Y: Any, metric: str, p: float, xp: ModuleType) -> Any:
    """Distances between every row of ``X`` and of ``Y`` (one block, no chunking).

    ``metric`` and ``p`` are canonical (see :func:`check_metric`).
    """
    if metric in EUCLIDEAN:
        return _EuclideanPairs(Y, xp).block(X, metric)
    if metric == "cosine":
        Xn = _normalize_rows(X, xp)
        Yn = Xn if Y is X else _normalize_rows(Y, xp)
        return xp.clip(1.0 - Xn @ Yn.T, min=0.0, max=2.0)
    if namespace_name(xp) in ("numpy", "array_api_strict"):  # numpy underneath
        import numpy as np

        # A sum of absolute differences beyond the largest float is inf, the
        # true answer in the dtype (only squares are scaled, see _scaling):
        # no overflow warning for it.
        with np.errstate(over="ignore"):
            return _broadcast_block(X, Y, metric, p, xp)
    return _broadcast_block(X, Y, metric, p, xp)


def _broadcast_block(X: Any, Y: Any, metric: str, p: float, xp: ModuleType) -> Any:
    """Manhattan, Chebyshev and Minkowski distances by broadcast differences."""
    diff = xp.abs(X[:, None, :] - Y[None, :, :])
    if metric == "manhattan":
        return xp.sum(diff, axis=2)
    if metric == "chebyshev":
        return xp.max(diff, axis=2)
    return xp.sum(diff**p, axis=2) ** (1.0 / p)


def _normalize_rows(X: Any, xp: ModuleType) -> Any:
    norms = xp.sqrt(sq_row_norms(X, xp))
    # Zero rows stay zero (cosine distance 1 to everything), as scikit-learn.
    norms = xp.where(norms == 0, xp.ones_like(norms), norms)
    return X / norms[:, None]


def bytes_per_pair(metric: str, itemsize: int, n_features: int) -> int:
    """Temporary bytes one (x, y) pair of a block costs."""
    if metric in EUCLIDEAN:
        return 4 * 8 + 1  # distance, norms and bound in float64, the mask
    if metric == "cosine":
        return 2 * itemsize
    return (n_features + 2) * itemsize  # the broadcast difference


def pairwise_block_rows(X: Any, Y: Any, metric: str, xp: ModuleType) -> int:
    """Rows of ``X`` per chunk so that one chunk's temporaries fit the budget."""
    budget = working_memory_bytes(xp, _device(X))
    per_row = int(Y.shape[0]) * bytes_per_pair(metric, itemsize(X, xp), X.shape[1])
    return max(1, min(int(X.shape[0]), budget // per_row))


def itemsize(X: Any, xp: ModuleType) -> int:
    """Bytes per element of a floating array."""
    return int(xp.finfo(X.dtype).bits) // 8


def _device(X: Any) -> Any:
    from xplearn._namespace import device_of

    return device_of(X)


def _pairwise(
    X: Any, Y: Any, metric: str, p: float, xp: ModuleType, *, same: bool
) -> Any:
    """Full distance matrix, computed in row chunks.

    Data whose squares would overflow or underflow is measured at an exact
    power-of-two scale (:mod:`._scaling`) and the distances scaled back.
    """
    D, e = pairwise_scaled(X, Y, metric, p, xp, same=same)
    return scale_back(D, e, metric, xp)


def pairwise_scaled(
    X: Any, Y: Any, metric: str, p: float, xp: ModuleType, *, same: bool
) -> tuple[Any, int]:
    """Distances of ``X · 2**-e`` and ``Y · 2**-e``, and ``e`` (see ``_scaling``).

    ``e`` is 0 for data in the safe range.  Scaled distances never overflow,
    so callers that compare them (radius queries) do so before scaling back.
    """
    e = scale_exponent([X, Y], xp, metric, p)
    if e:
        alias = Y is X
        X = times_pow2(X, -e, xp)
        Y = X if alias else times_pow2(Y, -e, xp)
    return _pairwise_in_range(X, Y, metric, p, xp, same=same), e


def _pairwise_in_range(
    X: Any, Y: Any, metric: str, p: float, xp: ModuleType, *, same: bool
) -> Any:
    """Full distance matrix of data in the safe range, in row chunks."""
    rows = pairwise_block_rows(X, Y, metric, xp)
    n = X.shape[0]
    if metric in EUCLIDEAN:
        pairs = _EuclideanPairs(Y, xp)  # Y's centred form, built once

        def block(i: int) -> Any:
            return pairs.block(X[i : min(i + rows, n), :], metric, i if same else None)
    else:

        def block(i: int) -> Any:
            return distance_block(X[i : min(i + rows, n), :], Y, metric, p, xp)

    blocks = [block(i) for i in range(0, n, rows)]
    D = blocks[0] if len(blocks) == 1 else xp.concat(blocks, axis=0)
    if same and metric in EUCLIDEAN | {"cosine"}:
        # A point's distance to itself is exactly 0, whatever the rounding.
        eye = xp.eye(n, dtype=xp.bool, device=_device(D))
        D = xp.where(eye, xp.zeros_like(D), D)
    return D


class Pair(NamedTuple):
    """Validated inputs of a distance computation between ``X`` and ``Y``."""

    edge: Edge
    X: Any
    Y: Any
    metric: str
    p: float
    out_dtype: Any


def prepare_pair(X: Any, Y: Any, metric: Any, kwds: dict[str, Any]) -> Pair:
    """Check the metric, then ``X`` (which decides) and ``Y`` (which follows).

    ``Y=None`` means ``X`` itself; ``Y`` is cast to ``X``'s compute dtype.
    The feature counts are the caller's to compare (the wording differs).
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
    return Pair(edge, Xc, Yc, name, p, result_dtype(xp, in_dtype, Xc.dtype))


def pairwise_distances(
    X: Any, Y: Any = None, *, metric: str = "euclidean", **kwds: Any
) -> Any:
    """Distances between the rows of ``X`` and the rows of ``Y``.

    Computed natively in the framework of ``X`` and on its device; ``Y``
    follows ``X``.  Definitions and names are scikit-learn's and scipy's.
    Jittable for the fast kernels' metrics (euclidean to minkowski below):
    inside ``jax.jit`` a traced ``X`` or ``Y`` gets the same distances with
    static shapes and no host round trip; the others raise ``TypeError``
    there (:mod:`xplearn.jax`).

    Parameters
    ----------
    X : array of shape (n_samples_X, n_features)
        numpy, torch, jax, cupy, dask, array-api-strict or TensorFlow.
    Y : array of shape (n_samples_Y, n_features), optional
        Defaults to ``X``, in which case the diagonal is exactly 0.
    metric : str, callable or DistanceMetric, default="euclidean"
        ``"euclidean"`` (``"l2"``), ``"sqeuclidean"``, ``"cosine"``,
        ``"manhattan"`` (``"cityblock"``, ``"l1"``), ``"chebyshev"`` or
        ``"minkowski"`` by the fast kernels; scipy's ``"braycurtis"``,
        ``"canberra"``, ``"correlation"``, ``"hamming"``, ``"jaccard"``,
        ``"dice"``, ``"rogerstanimoto"``, ``"russellrao"``,
        ``"sokalsneath"``, ``"sokalmichener"``, ``"yule"``,
        ``"seuclidean"``, ``"mahalanobis"``, ``"haversine"``,
        ``"nan_euclidean"`` in ``X``'s namespace too; a callable or a
        scikit-learn ``DistanceMetric`` (numpy rows, on the host);
        ``"precomputed"`` (``X`` is returned, checked).
    **kwds
        ``p`` for ``"minkowski"`` (default 2; ``0 < p``), ``w`` weights,
        ``V`` for ``"seuclidean"``, ``VI`` for ``"mahalanobis"``, or the
        callable's keyword arguments.

    Returns
    -------
    D : array of shape (n_samples_X, n_samples_Y)
        In the framework, device and floating dtype of ``X`` (integer input
        gives the framework's default float).  Never negative.

    Notes
    -----
    Sparse input (scipy CSR/CSC, or a torch sparse tensor on the CPU, as
    ``X`` or ``Y``) takes ``"euclidean"``, ``"sqeuclidean"``, ``"cosine"``
    and ``"manhattan"`` (and their aliases), as scikit-learn's does, and is
    computed on the host without densifying a row (:mod:`._sparse`): the
    answer is a dense numpy array (a CPU tensor for torch ``X``), float32
    where both sides are.  Euclidean and manhattan are the dense
    difference sums bit for bit; cosine is scikit-learn's sparse cosine.

    Raises
    ------
    ValueError
        Unknown metric, bad ``p``, NaN/inf, empty input, feature mismatch.

    Examples
    --------
    >>> import numpy as np
    >>> from xplearn.metrics import pairwise_distances
    >>> pairwise_distances(np.array([[0.0, 0.0], [3.0, 4.0]]))
    array([[0., 5.],
           [5., 0.]])
    """
    from ._general import general_metric, pairwise_general
    from ._sparse import is_sparse_input, sparse_pairwise_distances

    if is_jax_tracer(X) or is_jax_tracer(Y):  # inside jax.jit: static shapes
        from xplearn.jax._functional import pairwise_distances as traced

        return traced(X, Y, metric, kwds)
    if is_sparse_input(X) or is_sparse_input(Y):  # on the host (scipy's kernels)
        return sparse_pairwise_distances(X, Y, metric, kwds)
    general = general_metric(metric, kwds)
    if general is not None:
        return pairwise_general(X, Y, general)
    edge, Xc, Yc, name, p, out_dtype = prepare_pair(X, Y, metric, kwds)
    xp = edge.xp
    check_n_features(Yc, Xc.shape[1], "Y", by="X")
    if is_lazy(xp):
        D = _pairwise_lazy(Xc, Yc, name, p, xp, same=Y is None)
    else:
        D = _pairwise(Xc, Yc, name, p, xp, same=Y is None)
    if D.dtype != out_dtype:
        D = xp.astype(D, out_dtype)
    return edge.to_caller(D)


def _pairwise_lazy(
    X: Any, Y: Any, metric: str, p: float, xp: ModuleType, *, same: bool
) -> Any:
    """dask: each block of rows of X against all of Y, by the numpy kernel."""
    import array_api_compat.numpy as np_xp
    import numpy as np

    from xplearn._convert import to_numpy

    Yn = to_numpy(Y)  # Y is needed whole by every block; X stays distributed.
    Xr = X.rechunk({1: -1})

    def block(b: Any, block_info: Any = None) -> Any:
        D = _pairwise(b, Yn, metric, p, np_xp, same=False)
        if same and metric in EUCLIDEAN | {"cosine"}:
            i0 = block_info[0]["array-location"][0][0]
            r = np.arange(b.shape[0])
            D[r, r + i0] = 0.0
        return D

    return Xr.map_blocks(
        block, chunks=(Xr.chunks[0], (Yn.shape[0],)), dtype=Yn.dtype, meta=Yn[:0, :0]
    )
