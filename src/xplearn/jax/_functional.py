"""The functional API under ``jax.jit``: validation with static shapes, then kernels.

:func:`xplearn.neighbors.kneighbors` and
:func:`xplearn.metrics.pairwise_distances` send a call here when ``X`` or
``Y`` is a jax tracer.  What can be checked from shapes and dtypes is
checked as the eager path checks it (the same exceptions and messages);
values cannot be read inside a trace, so NaN and infinity are not detected
(they give NaN distances).
"""

from __future__ import annotations

from typing import Any

from xplearn._traced import is_jax_tracer
from xplearn._validation import (
    check_n_features,
    check_non_empty,
    compute_dtype,
    result_dtype,
)

from . import _kernels

# Metrics with jit-safe kernels, by canonical name.
JIT_METRICS = ("euclidean", "sqeuclidean", "cosine", "manhattan", "chebyshev")
_METRIC_LIST = (
    "'euclidean' ('l2'), 'sqeuclidean', 'cosine', 'manhattan' ('cityblock', "
    "'l1'), 'chebyshev' and 'minkowski'"
)


def as_jax(x: Any, name: str) -> Any:
    """``x`` as a jax array (a tracer as it is; other arrays are constants)."""
    import jax.numpy as jnp

    if is_jax_tracer(x) or type(x).__module__.startswith("jax"):
        return x
    from xplearn._convert import to_namespace

    return to_namespace(x, jnp)


def check_traced_array(X: Any, name: str = "X", dtype: Any = None) -> tuple[Any, Any]:
    """Check a (traced) sample matrix from its shape and dtype; cast it.

    Returns ``X`` in its compute dtype (``dtype`` if given) and the dtype
    floating results go back in (contract 2: float16/bfloat16 come back
    as they came).
    """
    import jax.numpy as jnp

    if X.ndim != 2:
        msg = (
            f"Expected 2D array, got {X.ndim}D array instead: {name} has shape "
            f"{tuple(X.shape)}. Reshape your data either using "
            "array.reshape(-1, 1) if your data has a single feature or "
            "array.reshape(1, -1) if it contains a single sample."
        )
        raise ValueError(msg)
    check_non_empty(X, name)
    target = dtype if dtype is not None else compute_dtype(jnp, X.dtype, None)
    out = result_dtype(jnp, X.dtype, target)
    return (X if X.dtype == target else X.astype(target)), out


def check_jit_metric(metric: Any, kwds: dict[str, Any]) -> tuple[str, float]:
    """Canonical (metric, p) of a metric with jit-safe kernels, or raise.

    The scipy metrics, callables and ``"precomputed"`` raise ``TypeError``
    naming what can be jitted.
    """
    from xplearn.metrics import check_metric
    from xplearn.metrics._general import general_metric

    if general_metric(metric, dict(kwds)) is not None:
        shown = metric if isinstance(metric, str) else type(metric).__name__
        msg = (
            f"metric={shown!r} cannot be computed under jax.jit: xplearn has "
            f"jit-safe kernels for {_METRIC_LIST} only. Call it outside the "
            "jitted function, or pick one of those metrics."
        )
        raise TypeError(msg)
    unknown = set(kwds) - {"p"}
    if unknown:
        msg = f"Unexpected keyword argument(s) {sorted(unknown)}; only p is accepted."
        raise TypeError(msg)
    return check_metric(metric, kwds.get("p"))


def _pair(X: Any, Y: Any) -> tuple[Any, Any, Any]:
    """``(X, Y, out_dtype)``: ``X`` decides the dtype, ``Y`` follows."""
    Xc, out = check_traced_array(as_jax(X, "X"), "X")
    if Y is None:
        return Xc, Xc, out
    Yc, _ = check_traced_array(as_jax(Y, "Y"), "Y", dtype=Xc.dtype)
    return Xc, Yc, out


def kneighbors(
    X: Any,
    Y: Any,
    n_neighbors: int,
    metric: Any,
    return_distance: bool,
    kwds: dict[str, Any],
) -> Any:
    """:func:`xplearn.neighbors.kneighbors` for traced input."""
    from xplearn.neighbors._base import check_n_neighbors

    name, p = check_jit_metric(metric, kwds)
    Xc, Yc, out = _pair(X, Y)
    check_n_features(Xc, Yc.shape[1], "X", by="Y")
    k = check_n_neighbors(n_neighbors, Yc.shape[0])
    dist, ind = _kernels.kneighbors(Xc, Yc, k, name, p)
    dist = dist.astype(out) if dist.dtype != out else dist
    return (dist, ind) if return_distance else ind


def pairwise_distances(X: Any, Y: Any, metric: Any, kwds: dict[str, Any]) -> Any:
    """:func:`xplearn.metrics.pairwise_distances` for traced input."""
    name, p = check_jit_metric(metric, kwds)
    Xc, Yc, out = _pair(X, Y)
    check_n_features(Yc, Xc.shape[1], "Y", by="X")
    D = _kernels.pairwise(Xc, Yc, name, p, same=Y is None)
    return D.astype(out) if D.dtype != out else D
