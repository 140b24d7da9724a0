"""Metrics beyond the GEMM family, in the caller's namespace where possible.

scipy's dense metrics that scikit-learn's brute force takes (braycurtis,
canberra, correlation, hamming, the boolean ones, seuclidean, mahalanobis,
weighted minkowski, haversine, nan_euclidean), with their ``metric_params``
(``V``, ``VI``, ``w``, ``p``); user callables; scikit-learn
``DistanceMetric`` objects; and ``"precomputed"`` distances.  Blocks are
broadcast differences (the boolean metrics and correlation one GEMM) written
against ``xp``, in row chunks sized by the working-memory budget.  Callables
and ``DistanceMetric`` objects take numpy rows, as in scikit-learn, so they
run on the host and their distances move back to the data's device.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any, NamedTuple

from xplearn._namespace import device_of
from xplearn._primitives import working_memory_bytes

BOOLEAN = frozenset(
    {"jaccard", "dice", "rogerstanimoto", "russellrao", "sokalsneath"}
    | {"sokalmichener", "yule"}
)
# Names and the metric_params each accepts.
PARAMS: dict[str, frozenset[str]] = {
    "braycurtis": frozenset(),
    "canberra": frozenset(),
    "correlation": frozenset(),
    "hamming": frozenset(),
    "seuclidean": frozenset({"V"}),
    "mahalanobis": frozenset({"VI", "V"}),
    "minkowski": frozenset({"p", "w"}),
    "haversine": frozenset(),
    "nan_euclidean": frozenset({"missing_values"}),
    **{name: frozenset() for name in BOOLEAN},
}
GENERAL = frozenset(PARAMS)
ALIASES = {"p": "minkowski"}


class GeneralMetric(NamedTuple):
    """A metric outside the fast kernels.

    ``name``: a name of :data:`PARAMS`, ``"callable"``, ``"distance_metric"``
    or ``"precomputed"``; ``params``: its keyword parameters; ``func``: the
    callable or ``DistanceMetric`` object.
    """

    name: str
    params: dict[str, Any]
    func: Any = None


def is_distance_metric(metric: Any) -> bool:
    """Whether ``metric`` is a scikit-learn ``DistanceMetric`` object."""
    return type(metric).__module__.startswith("sklearn.metrics") and hasattr(
        metric, "pairwise"
    )


def general_metric(metric: Any, params: dict[str, Any]) -> GeneralMetric | None:
    """Return the :class:`GeneralMetric` of ``metric`` and ``params``, or None.

    None: the fast kernels take it (a name of ``METRICS`` without params
    other than ``p``).  Raises ``ValueError`` for an unknown metric or a
    parameter the metric does not take.
    """
    from ._pairwise import METRICS

    if is_distance_metric(metric):
        return GeneralMetric("distance_metric", {}, metric)
    if callable(metric):
        return GeneralMetric("callable", dict(params), metric)
    if not isinstance(metric, str):
        msg = (
            f"metric must be a string, a callable or a DistanceMetric, got {metric!r}."
        )
        raise ValueError(msg)
    if metric == "precomputed":
        return GeneralMetric("precomputed", {})
    name = ALIASES.get(metric, metric)
    extra = set(params) - {"p"}
    if name in METRICS and not extra:
        return None
    if name in METRICS and name not in GENERAL:
        msg = (
            f"Unexpected keyword argument(s) {sorted(extra)} for metric {name!r}; "
            "only p is accepted."
        )
        raise TypeError(msg)
    if name not in GENERAL:
        known = sorted(METRICS | GENERAL | {"precomputed"})
        msg = f"Unknown metric {metric!r}. xplearn supports {known} and callables."
        raise ValueError(msg)
    bad = set(params) - PARAMS[name]
    if bad:
        msg = (
            f"Unsupported metric_params {sorted(bad)} for metric {name!r}; it takes "
            f"{sorted(PARAMS[name]) or 'none'}."
        )
        raise ValueError(msg)
    return GeneralMetric(name, dict(params))


def with_defaults(g: GeneralMetric, X: Any, Y: Any, xp: ModuleType) -> GeneralMetric:
    """Fill in ``V`` / ``VI`` from ``X`` and ``Y`` stacked, as scikit-learn does."""
    if g.name == "seuclidean" and "V" not in g.params:
        XY = xp.concat([X, Y], axis=0)
        return g._replace(params={**g.params, "V": xp.var(XY, axis=0, correction=1)})
    if g.name == "mahalanobis" and "VI" not in g.params:
        import numpy as np

        from xplearn._convert import to_namespace, to_numpy

        XY = np.concatenate([to_numpy(X), to_numpy(Y)]).astype(np.float64)
        VI = np.linalg.inv(np.cov(XY.T)).T
        return g._replace(
            params={**g.params, "VI": to_namespace(VI, xp, device=device_of(X))}
        )
    return g


def _param(value: Any, like: Any, xp: ModuleType) -> Any:
    """Return a metric parameter in ``like``'s namespace, device and dtype."""
    import numpy as np

    from xplearn._convert import to_namespace, to_numpy

    # metric_params may come in any framework (a torch V on a GPU): through
    # the conversion module, not np.asarray.
    host = np.asarray(to_numpy(value), dtype=np.float64)
    arr = to_namespace(host, xp, device=device_of(like))
    return xp.astype(arr, like.dtype)


def general_block(X: Any, Y: Any, g: GeneralMetric, xp: ModuleType) -> Any:
    """Distances between the rows of ``X`` and of ``Y`` (one block)."""
    name, prm = g.name, g.params
    if name in ("callable", "distance_metric"):
        return _host_block(X, Y, g, xp)
    if name in BOOLEAN:
        return _boolean_block(X, Y, name, xp)
    if name == "correlation":
        Xc = X - xp.mean(X, axis=1, keepdims=True)
        Yc = Y - xp.mean(Y, axis=1, keepdims=True)
        nx = xp.sqrt(xp.sum(Xc * Xc, axis=1))[:, None]
        ny = xp.sqrt(xp.sum(Yc * Yc, axis=1))[None, :]
        return xp.clip(1.0 - (Xc @ Yc.T) / (nx * ny), min=0.0, max=2.0)
    if name == "haversine":
        if X.shape[1] != 2:
            msg = "Haversine distance only valid in 2 dimensions"
            raise ValueError(msg)
        s0 = xp.sin(0.5 * (X[:, None, 0] - Y[None, :, 0]))
        s1 = xp.sin(0.5 * (X[:, None, 1] - Y[None, :, 1]))
        cos = xp.cos(X[:, None, 0]) * xp.cos(Y[None, :, 0])
        return 2.0 * xp.asin(xp.sqrt(s0 * s0 + cos * s1 * s1))
    if name == "nan_euclidean":
        diff = X[:, None, :] - Y[None, :, :]
        present = ~xp.isnan(diff)
        sq = xp.sum(xp.where(present, diff * diff, xp.zeros_like(diff)), axis=2)
        count = xp.sum(xp.astype(present, X.dtype), axis=2)
        scale = X.shape[1] / xp.where(count == 0, xp.ones_like(count), count)
        nan = xp.full_like(sq, math.nan)
        return xp.where(count == 0, nan, xp.sqrt(sq * scale))
    diff = X[:, None, :] - Y[None, :, :]
    if name == "braycurtis":
        den = xp.sum(xp.abs(X[:, None, :] + Y[None, :, :]), axis=2)
        return xp.sum(xp.abs(diff), axis=2) / den
    if name == "canberra":
        den = xp.abs(X)[:, None, :] + xp.abs(Y)[None, :, :]
        zero = den == 0
        terms = xp.abs(diff) / xp.where(zero, xp.ones_like(den), den)
        return xp.sum(xp.where(zero, xp.zeros_like(terms), terms), axis=2)
    if name == "hamming":
        return xp.mean(xp.astype(diff != 0, X.dtype), axis=2)
    if name == "seuclidean":
        V = _param(prm["V"], X, xp)
        return xp.sqrt(xp.sum(diff * diff / V, axis=2))
    if name == "mahalanobis":
        VI = _param(prm["VI"] if "VI" in prm else _inverse(prm["V"]), X, xp)
        q = xp.sum((diff @ VI) * diff, axis=2)
        return xp.sqrt(xp.clip(q, min=0.0))
    # minkowski with weights
    p = float(prm.get("p", 2.0))
    w = _param(prm["w"], X, xp) if "w" in prm else None
    a = xp.abs(diff)
    if math.isinf(p):
        return xp.max(a if w is None else a * w, axis=2)
    powered = a**p if w is None else w * a**p
    return xp.sum(powered, axis=2) ** (1.0 / p)


def _inverse(V: Any) -> Any:
    import numpy as np

    from xplearn._convert import to_numpy

    return np.linalg.inv(np.asarray(to_numpy(V), dtype=np.float64))


def _boolean_block(X: Any, Y: Any, name: str, xp: ModuleType) -> Any:
    """Boolean dissimilarities of ``X != 0`` and ``Y != 0`` by one GEMM."""
    Xb, Yb = xp.astype(X != 0, X.dtype), xp.astype(Y != 0, X.dtype)
    ntt = Xb @ Yb.T
    ntf = xp.sum(Xb, axis=1)[:, None] - ntt
    nft = xp.sum(Yb, axis=1)[None, :] - ntt
    d = float(X.shape[1])
    nff = d - ntt - ntf - nft
    neq = ntf + nft

    def ratio(num: Any, den: Any, empty: float = 0.0) -> Any:
        # scipy's value where both vectors are all False: 0, or nan (0/0).
        zero = den == 0
        out = num / xp.where(zero, xp.ones_like(den), den)
        return xp.where(zero, xp.full_like(out, empty), out)

    if name == "jaccard":
        return ratio(neq, ntt + neq)
    if name == "dice":
        return ratio(neq, 2.0 * ntt + neq, math.nan)
    if name in ("rogerstanimoto", "sokalmichener"):
        return ratio(2.0 * neq, ntt + nff + 2.0 * neq)
    if name == "russellrao":
        return (d - ntt) / d
    if name == "sokalsneath":
        return ratio(2.0 * neq, ntt + 2.0 * neq, math.nan)
    # yule
    return ratio(2.0 * ntf * nft, ntt * nff + ntf * nft)


def _host_block(X: Any, Y: Any, g: GeneralMetric, xp: ModuleType) -> Any:
    """Callables and DistanceMetric objects take numpy rows: on the host."""
    import numpy as np

    from xplearn._convert import to_namespace, to_numpy

    Xh, Yh = np.asarray(to_numpy(X)), np.asarray(to_numpy(Y))
    if g.name == "distance_metric":
        dtype = np.float32 if type(g.func).__name__.endswith("32") else np.float64
        D = np.asarray(g.func.pairwise(Xh.astype(dtype), Yh.astype(dtype)))
    else:
        D = np.empty((Xh.shape[0], Yh.shape[0]), dtype=np.float64)
        for i in range(Xh.shape[0]):
            for j in range(Yh.shape[0]):
                D[i, j] = g.func(Xh[i], Yh[j], **g.params)
    return to_namespace(D.astype(Xh.dtype), xp, device=device_of(X))


def general_rows(X: Any, Y: Any, xp: ModuleType) -> int:
    """Rows of ``X`` per block so that a broadcast block fits the budget."""
    size = int(xp.finfo(X.dtype).bits) // 8
    per_row = int(Y.shape[0]) * (int(X.shape[1]) + 2) * size * 3
    budget = working_memory_bytes(xp, device_of(X))
    return max(1, min(int(X.shape[0]), budget // max(per_row, 1)))


def general_pairwise(X: Any, Y: Any, g: GeneralMetric, xp: ModuleType) -> Any:
    """Full distance matrix of a :class:`GeneralMetric`, in row chunks."""
    g = with_defaults(g, X, Y, xp)
    rows, n = general_rows(X, Y, xp), X.shape[0]
    blocks = [
        general_block(X[i : min(i + rows, n), :], Y, g, xp) for i in range(0, n, rows)
    ]
    return blocks[0] if len(blocks) == 1 else xp.concat(blocks, axis=0)


def pairwise_general(X: Any, Y: Any, g: GeneralMetric) -> Any:
    """:func:`xplearn.metrics.pairwise_distances` for a :class:`GeneralMetric`."""
    from xplearn._dispatch import Edge
    from xplearn._validation import check_array, check_n_features, result_dtype

    edge, Xc = Edge.of(X)
    xp = edge.xp
    in_dtype = Xc.dtype
    finite = g.name != "nan_euclidean"
    Xc = check_array(Xc, xp, ensure_finite=finite)
    if Y is None:
        Yc = Xc
    else:
        Yc = check_array(
            edge.follow(Y, "Y"), xp, name="Y", dtype=Xc.dtype, ensure_finite=finite
        )
    check_n_features(Yc, Xc.shape[1], "Y", by="X")
    D = Xc if g.name == "precomputed" else general_pairwise(Xc, Yc, g, xp)
    out = result_dtype(xp, in_dtype, Xc.dtype)
    return edge.to_caller(xp.astype(D, out) if D.dtype != out else D)
