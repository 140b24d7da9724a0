"""k-means++, the empty-cluster rule and the shared KMeans checks, against ``xp``.

The private half of ``cluster``: functions that take validated compute
arrays and ``xp``.  Random numbers are drawn on the host with numpy (a
RandomState from ``random_state``) and only indices move to the device.
"""

from __future__ import annotations

import numbers
from types import ModuleType
from typing import Any

from ._convert import to_numpy
from ._dispatch import Edge
from ._namespace import device_of
from ._primitives import sq_row_norms
from ._scaling import scale_exponent, times_pow2


def _check_random_state(random_state: Any) -> Any:
    from sklearn.utils import check_random_state

    return check_random_state(random_state)


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


def _host_floats(x: Any) -> Any:
    """Copy to the host as float64, writable (numpy views of jax or TF data are not)."""
    import numpy as np

    return np.array(to_numpy(x), dtype=np.float64)


def _kmeans_plusplus(
    X: Any,
    n_clusters: int,
    x_squared_norms: Any,
    sample_weight: Any,
    random_state: Any,
    n_local_trials: int | None,
    xp: ModuleType,
) -> tuple[Any, Any]:
    """Greedy k-means++ (scikit-learn's); random draws on the host.

    ``x_squared_norms`` may be None (computed here).  Data out of the safe
    range is seeded at an exact power-of-two scale (:mod:`._scaling`), with
    norms of the scaled rows; the centres are rows of ``X`` itself.
    """
    e = scale_exponent([X], xp)
    if e:
        Xs = times_pow2(X, -e, xp)
        _, idx = _kmeans_plusplus(
            Xs, n_clusters, None, sample_weight, random_state, n_local_trials, xp
        )
        return xp.take(X, idx, axis=0), idx
    if x_squared_norms is None:
        x_squared_norms = sq_row_norms(X, xp)
    import numpy as np

    n = X.shape[0]
    dev = device_of(X)
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))
    w_host = _host_floats(sample_weight)
    first = int(random_state.choice(n, p=w_host / w_host.sum()))
    indices = [first]

    def sqdist(rows: Any) -> Any:
        C = xp.take(X, rows, axis=0)
        D = sq_row_norms(C, xp)[:, None] - 2.0 * (C @ X.T) + x_squared_norms[None, :]
        return xp.clip(D, min=0.0)

    closest = sqdist(xp.asarray([first], device=dev))[0, :]
    pot = float(xp.sum(closest * sample_weight))
    for _ in range(1, n_clusters):
        rand_vals = random_state.uniform(size=n_local_trials) * pot
        # Cumulative sums on the host in float64 (scikit-learn's stable_cumsum).
        cum = np.cumsum(_host_floats(closest) * w_host)
        cand = np.minimum(np.searchsorted(cum, rand_vals), n - 1)
        D = xp.minimum(closest[None, :], sqdist(xp.asarray(cand, device=dev)))
        pots = _host_floats(D @ sample_weight)
        best = int(np.argmin(pots))
        pot = float(pots[best])
        closest = D[best, :]
        indices.append(int(cand[best]))
    idx = xp.asarray(indices, device=dev)
    return xp.take(X, idx, axis=0), idx


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


def _relocate_empty(
    X: Any,
    w: Any,
    labels: Any,
    dist: Any,
    sums: Any,
    totals: Any,
    xp: ModuleType,
) -> tuple[Any, Any]:
    """Move empty clusters to the points farthest from their centres.

    scikit-learn's rule: the farthest points (by distance to their own centre)
    leave their cluster and each becomes the centre of one empty cluster.
    Of equally far points the higher index goes first, as scikit-learn's
    ``argpartition`` picks on small arrays (``[0, 1, 1]`` from three equal
    centres: points 2 then 1).  The choice is made on the host from exact
    distances, so every backend takes the same one.
    """
    import numpy as np

    totals_h = _host_floats(totals)
    empty = np.flatnonzero(totals_h == 0)
    if empty.size == 0:
        return sums, totals
    dist_h = _host_floats(dist)
    if dist_h.max() == 0:
        # More clusters than distinct points: every point sits on its centre
        # and moving one would only empty another cluster (scikit-learn 1.9
        # leaves them; :func:`xplearn._lloyd._new_centers` places them).
        return sums, totals
    far = np.argsort(dist_h, kind="stable")[::-1][: empty.size].copy()
    sums_h, w_h, labels_h = _host_floats(sums), _host_floats(w), to_numpy(labels)
    X_far = _host_floats(xp.take(X, xp.asarray(far, device=device_of(X)), axis=0))
    for new, i, x in zip(empty, far, X_far, strict=True):
        old = labels_h[i]
        sums_h[old] -= x * w_h[i]
        sums_h[new] = x * w_h[i]
        totals_h[new] = w_h[i]
        totals_h[old] -= w_h[i]
    dev = device_of(X)
    return (
        xp.asarray(sums_h.astype(to_numpy(sums).dtype), device=dev),
        xp.asarray(totals_h.astype(to_numpy(totals).dtype), device=dev),
    )


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
