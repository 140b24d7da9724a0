"""k-means++ seeding: the public :func:`kmeans_plusplus` and its ``xp`` body.

Random numbers are drawn on the host with numpy (a RandomState from
``random_state``) and only indices move to the device, so one seed gives one
initialisation on every backend.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from xplearn._convert import to_numpy
from xplearn._dispatch import Edge
from xplearn._namespace import device_of
from xplearn._primitives import sq_row_norms, working_memory_bytes
from xplearn._scaling import scale_exponent, times_pow2
from xplearn._validation import check_array, float_dtypes

from ._checks import _check_n_clusters, _check_norms, _check_sample_weight


def _check_random_state(random_state: Any) -> Any:
    from sklearn.utils import check_random_state

    return check_random_state(random_state)


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
    import numpy as np

    n = X.shape[0]
    dev = device_of(X)
    if float_dtypes(xp, dev)[0] != xp.float64:
        # No float64 on the device (jax without x64, MPS): the draws run on a
        # host copy in float64 (zero-copy for jax on a CPU), so that the seed
        # picks the same centres as everywhere else; only indices come back.
        import array_api_compat.numpy as np_xp

        from xplearn._convert import to_numpy

        norms = None if x_squared_norms is None else to_numpy(x_squared_norms)
        _, idx_h = _kmeans_plusplus(
            np.asarray(to_numpy(X), dtype=np.float64),
            n_clusters,
            norms,
            np.asarray(to_numpy(sample_weight), dtype=np.float64),
            random_state,
            n_local_trials,
            np_xp,
        )
        idx = xp.asarray(to_numpy(idx_h), device=dev)
        return xp.take(X, idx, axis=0), idx
    # Distances and potentials in the widest float of the device: the draws
    # compare a uniform number with cumulative sums whose steps are about
    # 1/n of the total, so float32 rounding (which differs between numpy's
    # and torch's GEMMs) picked different centres on different backends
    # (200 000 × 32, the 7th of 10).  X is widened once where that fits the
    # working memory (float64 data is used as it is), else tile by tile.
    wide = float_dtypes(xp, dev)[0]
    whole = X.dtype == wide or 2 * X.shape[1] * n * 8 <= working_memory_bytes(xp, dev)
    Xw = xp.astype(X, wide, copy=False) if whole else None
    step = n if whole else max(1, min(n, 2**16))

    def widened(i: int) -> Any:
        j = min(i + step, n)
        return Xw[i:j, :] if Xw is not None else xp.astype(X[i:j, :], wide)

    if x_squared_norms is None:
        parts = [sq_row_norms(widened(i), xp) for i in range(0, n, step)]
        x_squared_norms = parts[0] if len(parts) == 1 else xp.concat(parts)
    xx = xp.astype(x_squared_norms, wide)
    w = xp.astype(sample_weight, wide)
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))
    w_host = _host_floats(sample_weight)
    first = int(random_state.choice(n, p=w_host / w_host.sum()))
    indices = [first]

    def sqdist(rows: Any) -> Any:
        C = xp.astype(xp.take(X, rows, axis=0), wide)
        cc = sq_row_norms(C, xp)[:, None]
        parts = [
            cc - 2.0 * (C @ widened(i).T) + xx[None, i : min(i + step, n)]
            for i in range(0, n, step)
        ]
        D = parts[0] if len(parts) == 1 else xp.concat(parts, axis=1)
        return xp.clip(D, min=0.0)

    closest = sqdist(xp.asarray([first], device=dev))[0, :]
    pot = float(xp.sum(closest * w))
    for _ in range(1, n_clusters):
        rand_vals = random_state.uniform(size=n_local_trials) * pot
        # Cumulative sums on the host in float64 (scikit-learn's stable_cumsum).
        cum = np.cumsum(_host_floats(closest) * w_host)
        cand = np.minimum(np.searchsorted(cum, rand_vals), n - 1)
        D = xp.minimum(closest[None, :], sqdist(xp.asarray(cand, device=dev)))
        pots = _host_floats(D @ w)
        best = int(np.argmin(pots))
        pot = float(pots[best])
        closest = D[best, :]
        indices.append(int(cand[best]))
    idx = xp.asarray(indices, device=dev)
    return xp.take(X, idx, axis=0), idx


def kmeans_plusplus(
    X: Any,
    n_clusters: int,
    *,
    sample_weight: Any = None,
    x_squared_norms: Any = None,
    random_state: Any = None,
    n_local_trials: int | None = None,
) -> tuple[Any, Any]:
    """Pick initial centres by greedy k-means++ (scikit-learn's semantics).

    Parameters
    ----------
    X : array or sparse matrix of shape (n_samples, n_features)
        Any supported framework, or a scipy sparse matrix or array (CSR or
        CSC: seeded on the host, a sparse product per step; the centres
        come back as a dense numpy array, as scikit-learn's).
    n_clusters : int
        Number of centres.
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative weights.
    x_squared_norms : array-like of shape (n_samples,), optional
        Squared row norms of ``X``, if already computed.
    random_state : int, RandomState or None
        Seed; the draws are made on the host with numpy, so one seed gives
        the same centres on every backend.
    n_local_trials : int, optional
        Candidates per step; default ``2 + log(n_clusters)``.

    Returns
    -------
    centers : array of shape (n_clusters, n_features)
        In ``X``'s framework, device and dtype.
    indices : array of shape (n_clusters,)
        Row indices of the centres in ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from xplearn.cluster import kmeans_plusplus
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [9.0, 9.0], [9.1, 9.0]])
    >>> centers, idx = kmeans_plusplus(X, 2, random_state=0)
    >>> sorted((centers[:, 0] > 5).tolist())
    [False, True]
    """
    from ._sparse import is_scipy_sparse

    if is_scipy_sparse(X):
        return _kmeans_plusplus_csr(
            X, n_clusters, sample_weight, x_squared_norms, random_state, n_local_trials
        )
    edge, Xc = Edge.of(X)
    xp = edge.xp
    Xc = check_array(Xc, xp)
    k = _check_n_clusters(n_clusters, Xc.shape[0])
    w = _check_sample_weight(sample_weight, edge, Xc.shape[0], Xc.dtype)
    norms = (
        None
        if x_squared_norms is None
        else _check_norms(edge.follow(x_squared_norms, "x_squared_norms"), Xc, xp)
    )
    centers, idx = _kmeans_plusplus(
        Xc, k, norms, w, _check_random_state(random_state), n_local_trials, xp
    )
    out: tuple[Any, Any] = edge.to_caller((centers, idx))
    return out


def _kmeans_plusplus_csr(
    X: Any,
    n_clusters: int,
    sample_weight: Any,
    x_squared_norms: Any,
    random_state: Any,
    n_local_trials: int | None,
) -> tuple[Any, Any]:
    """:func:`kmeans_plusplus` of a scipy sparse ``X``: numpy centres, indices."""
    import numpy as np

    from . import _sparse

    Xc = _sparse.check_sparse(X)
    k = _check_n_clusters(n_clusters, Xc.shape[0])
    edge = Edge.of(np.zeros((1, 1), dtype=Xc.dtype))[0]
    w = _check_sample_weight(sample_weight, edge, Xc.shape[0], Xc.dtype)
    norms = (
        _sparse.sq_norms(Xc)
        if x_squared_norms is None
        else _check_norms(edge.follow(x_squared_norms, "x_squared_norms"), Xc, edge.xp)
    )
    idx = _sparse.kmeans_plusplus_sparse(
        Xc, k, norms, w, _check_random_state(random_state), n_local_trials
    )
    return Xc[idx].toarray(), idx
