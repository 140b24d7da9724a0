"""Fitted estimators' query methods called with jax tracers (inside ``jax.jit``).

:func:`xplearn._traced.traced_method` sends a call whose ``X`` is a jax
tracer here, as it sends symbolic TF tensors to
:mod:`xplearn.tensorflow._hook`.  The fitted state is concrete: it becomes
jax constants of the trace (an estimator fitted on numpy or torch is read
into jax: under ``jit`` everything computes where jax does).  The query is
checked from its shape and dtype as the eager path checks it, and answered
by the kernels of :mod:`._kernels`: the eager answers (exact neighbours,
ties to the lower index), as jax arrays.
"""

from __future__ import annotations

from typing import Any

from xplearn._traced import JAX_JITTABLE

from . import _kernels
from ._functional import as_jax, check_traced_array


def traced_call(estimator: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    """Answer ``estimator.method(*args, **kwargs)`` for a traced ``X``."""
    call = _CALLS.get(method)
    if call is None:  # pragma: no cover - every routed method has an entry
        msg = f"{type(estimator).__name__}.{method} cannot run under jax.jit."
        raise TypeError(msg)
    return call(estimator, *args, **kwargs)


def _fitted(estimator: Any, attribute: str) -> Any:
    """Return the fitted array ``attribute`` as a jax constant (checked fitted)."""
    from sklearn.utils.validation import check_is_fitted

    from xplearn.neighbors._dask import is_dask

    check_is_fitted(estimator, attribute)
    F = getattr(estimator, attribute)
    if is_dask(F):
        msg = (
            f"{type(estimator).__name__} was fitted on a dask array, which cannot "
            "be a constant of a jax.jit trace. Fit it on a jax or numpy array "
            "to query it under jax.jit."
        )
        raise TypeError(msg)
    return as_jax(F, attribute)


def _query(estimator: Any, X: Any, F: Any) -> tuple[Any, Any]:
    """Check a traced query against the fitted array ``F``; cast to its dtype.

    Returns the query and the dtype floating results go back in.
    """
    Xc, _ = check_traced_array(X, "X")
    if Xc.dtype != F.dtype:
        Xc = Xc.astype(F.dtype)
    d = int(F.shape[1])
    if Xc.shape[1] != d:
        msg = (
            f"X has {Xc.shape[1]} features, but {type(estimator).__name__} is "
            f"expecting {d} features as input. Pass X with the same {d} columns."
        )
        raise ValueError(msg)
    # float16/bfloat16 queries compute in the fitted dtype and come back in
    # their own (contract 2); the others in the fitted dtype, as eagerly.
    low = str(X.dtype) in ("float16", "bfloat16")
    return Xc, X.dtype if low else None


def _back(result: Any, dtype: Any) -> Any:
    """Floating arrays of ``result`` cast to ``dtype`` (None: as they are)."""
    import jax.numpy as jnp

    if dtype is None:
        return result
    if isinstance(result, tuple | list):
        return type(result)(_back(r, dtype) for r in result)
    return (
        result.astype(dtype) if jnp.issubdtype(result.dtype, jnp.floating) else result
    )


def _neighbors(estimator: Any, X: Any, n_neighbors: Any) -> tuple[Any, Any, Any]:
    """``(dist, ind, back)``: the neighbours of a traced query among the fit data."""
    from xplearn.neighbors._base import check_n_neighbors

    F = _fitted(estimator, "_fit_X")
    general = getattr(estimator, "_general_metric", None)
    if general is not None:
        msg = (
            f"metric={estimator.metric!r} cannot be computed under jax.jit: the "
            "jit-safe kernels are 'euclidean' (and 'l2', 'minkowski'), "
            "'sqeuclidean', 'cosine', 'manhattan' and 'chebyshev'. Query outside "
            "the jitted function, or fit with one of those metrics."
        )
        raise TypeError(msg)
    Xc, back = _query(estimator, X, F)
    k = check_n_neighbors(
        estimator.n_neighbors if n_neighbors is None else n_neighbors,
        int(estimator.n_samples_fit_),
    )
    name = estimator.effective_metric_
    p = estimator.effective_metric_params_.get("p", 2.0)
    dist, ind = _kernels.kneighbors(Xc, F, k, name, p)
    return dist, ind, back


def _kneighbors(
    estimator: Any, X: Any, n_neighbors: Any = None, return_distance: bool = True
) -> Any:
    dist, ind, back = _neighbors(estimator, X, n_neighbors)
    return (_back(dist, back), ind) if return_distance else ind


def _predict(estimator: Any, X: Any) -> Any:
    from xplearn.cluster import KMeans
    from xplearn.neighbors import KNeighborsClassifier

    if isinstance(estimator, KMeans):
        C = _fitted(estimator, "cluster_centers_")
        Xc, _ = _query(estimator, X, C)
        return _kernels.nearest(Xc, C)[0]
    dist, ind, back = _neighbors(estimator, X, None)
    if isinstance(estimator, KNeighborsClassifier):
        return _classes(estimator, dist, ind)
    return _back(estimator.average_of(dist, ind, _jnp()), back)


def _jnp() -> Any:
    import jax.numpy as jnp

    return jnp


def _classes(estimator: Any, dist: Any, ind: Any) -> Any:
    """Return a classifier's predicted labels: numeric classes only (no strings)."""
    from xplearn._labels import lookup
    from xplearn._namespace import backend_name

    jnp = _jnp()
    classes = estimator.classes_ if estimator.outputs_2d_ else [estimator.classes_]
    for c in classes:
        if backend_name(c) == "numpy" and c.dtype.kind not in "biuf":
            msg = (
                f"{type(estimator).__name__} was fitted with {c.dtype} labels, "
                "which a jax array cannot hold: predict cannot return them under "
                "jax.jit. Use predict_proba (columns follow classes_), or fit "
                "with integer class codes."
            )
            raise TypeError(msg)
    votes = estimator.votes_of(dist, ind, jnp, traced=True)
    preds = [
        lookup(c, jnp.argmax(v, axis=1), jnp)
        for c, v in zip(classes, votes, strict=True)
    ]
    return preds[0] if not estimator.outputs_2d_ else jnp.stack(preds, axis=1)


def _predict_proba(estimator: Any, X: Any) -> Any:
    jnp = _jnp()
    dist, ind, back = _neighbors(estimator, X, None)
    probas = []
    for v in estimator.votes_of(dist, ind, jnp, traced=True):
        total = jnp.sum(v, axis=1, keepdims=True)
        probas.append(v / jnp.where(total == 0, jnp.ones_like(total), total))
    return _back(probas if estimator.outputs_2d_ else probas[0], back)


def _transform(estimator: Any, X: Any) -> Any:
    C = _fitted(estimator, "cluster_centers_")
    Xc, back = _query(estimator, X, C)
    return _back(_kernels.pairwise(Xc, C, "euclidean", 2.0, same=False), back)


def _score(estimator: Any, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
    """KMeans' score: minus the (weighted) inertia, a 0-d jax array."""
    from xplearn.cluster import KMeans

    if not isinstance(estimator, KMeans):
        msg = (
            f"{type(estimator).__name__}.score compares with y on the host and "
            "cannot run under jax.jit: call it outside the jitted function "
            f"(under jit xplearn answers {JAX_JITTABLE})."
        )
        raise TypeError(msg)
    jnp = _jnp()
    C = _fitted(estimator, "cluster_centers_")
    Xc, _ = _query(estimator, X, C)
    _, sq, e = _kernels.nearest(Xc, C)
    if sample_weight is not None:
        w = as_jax(sample_weight, "sample_weight")
        if w.ndim != 1 or w.shape[0] != Xc.shape[0]:
            msg = (
                f"sample_weight has shape {tuple(w.shape)}; it needs one weight "
                f"per row of X, shape ({Xc.shape[0]},)."
            )
            raise ValueError(msg)
        sq = sq * w.astype(sq.dtype)
    # At the data's safe scale, summed in the widest float, then scaled back.
    total = jnp.sum(sq.astype(_kernels.wide_dtype()))
    return -_kernels.times_pow2(total, 2 * e)


_CALLS = {
    "kneighbors": _kneighbors,
    "predict": _predict,
    "predict_proba": _predict_proba,
    "transform": _transform,
    "score": _score,
}
