"""KMeans argument checks shared by the estimators, the function and k-means++."""

from __future__ import annotations

import numbers
from types import ModuleType
from typing import Any

from xplearn._convert import to_numpy
from xplearn._dispatch import Edge
from xplearn._validation import check_finite


def _check_sample_weight(sample_weight: Any, edge: Edge, n: int, dtype: Any) -> Any:
    """Weights as a (n,) array of ``dtype`` on the compute device; ones if None."""
    xp = edge.xp
    if sample_weight is None:
        return xp.ones((n,), dtype=dtype, device=edge.device)
    if isinstance(sample_weight, numbers.Real):
        w = xp.full((n,), float(sample_weight), dtype=dtype, device=edge.device)
    else:
        w = edge.follow(sample_weight, "sample_weight")
        if w.ndim != 1 or w.shape[0] != n:
            msg = f"sample_weight.shape == {tuple(w.shape)}, expected ({n},)."
            raise ValueError(msg)
        w = xp.astype(w, dtype)
    if not bool(xp.all(xp.isfinite(w))):
        msg = "Input sample_weight contains NaN or infinity; pass finite weights."
        raise ValueError(msg)
    if bool(xp.any(w < 0)):
        msg = "Negative values in data passed to sample_weight: weights must be >= 0."
        raise ValueError(msg)
    if not bool(xp.any(w > 0)):
        msg = "Sample weights must contain at least one non-zero number."
        raise ValueError(msg)
    return w


def _is_int(v: object) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _check_n_clusters(n_clusters: Any, n_samples: int) -> int:
    if not _is_int(n_clusters):
        msg = f"n_clusters must be an integer, got {n_clusters!r}."
        raise TypeError(msg)
    n_clusters = int(n_clusters)
    if n_clusters < 1:
        msg = f"n_clusters must be >= 1, got {n_clusters}."
        raise ValueError(msg)
    if n_samples < n_clusters:
        msg = (
            f"n_samples={n_samples} should be >= n_clusters={n_clusters}. "
            "Ask for fewer clusters or pass more samples."
        )
        raise ValueError(msg)
    return int(n_clusters)


def _check_norms(norms: Any, X: Any, xp: ModuleType) -> Any:
    """``x_squared_norms`` as a (n_samples,) array of ``X``'s dtype, or raise."""
    n = X.shape[0]
    if norms.ndim != 1 or norms.shape[0] != n:
        msg = (
            f"The length of x_squared_norms {tuple(norms.shape)} should be equal "
            f"to the length of n_samples {n}: one squared norm per row of X "
            "(or leave it None)."
        )
        raise ValueError(msg)
    norms = xp.astype(norms, X.dtype, copy=True)
    check_finite(
        xp.reshape(norms, (-1, 1)), xp, "x_squared_norms", "Pass finite norms."
    )
    return norms


def _tolerance(X: Any, tol: float, xp: ModuleType) -> float:
    """``tol`` times the mean feature variance (scikit-learn's scaling)."""
    if tol == 0:
        return 0.0
    return float(xp.mean(xp.var(X, axis=0))) * tol


def _same_clustering(a: Any, b: Any, n_clusters: int) -> bool:
    """Whether two labelings are the same partition up to a permutation."""
    import numpy as np

    a_h, b_h = to_numpy(a), to_numpy(b)
    mapping = np.full(n_clusters, -1)
    for x, y in zip(a_h, b_h, strict=True):
        if mapping[x] == -1:
            mapping[x] = y
        elif mapping[x] != y:
            return False
    return True
