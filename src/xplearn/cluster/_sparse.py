"""KMeans on scipy sparse matrices (CSR/CSC), a tile of rows at a time.

scikit-learn clusters sparse data (TF-IDF text) with the same Lloyd
iterations as dense data, without centring it.  Here the E-step is
``‖x‖² − 2 X_tile·Cᵀ + ‖c‖²`` (a sparse × dense product per tile of rows, so
only a tile of distances is ever dense), the M-step one sparse product
``onehot(labels)ᵀ · diag(w) · X``.  Everything stays on the host: scipy's
sparse matrices are numpy's.  ``algorithm="elkan"`` runs the same Lloyd
iterations (the same labels, centres and ``n_iter_``).  k-means++ draws the
same random numbers as the dense seeding, so a seed picks the same rows of
a matrix whether it is sparse or dense.

Where torch is installed, a large E-step's product runs on torch's CPU
kernel for sparse × dense products (MKL, multithreaded) through zero-copy
views of the CSR arrays (:func:`_torch_products`); the M-step's sums take
scikit-learn's one-pass sparse kernel where it is there (1.7 on).
"""

from __future__ import annotations

import warnings
from typing import Any

from xplearn._sparse import check_sparse, is_scipy_sparse

from ._lloyd import _converged

__all__ = ["check_sparse", "is_scipy_sparse"]

_TILE_ELEMENTS = 2**22  # distances per tile of rows (32 MiB of float64)


def sq_norms(X: Any) -> Any:
    """Squared row norms of a CSR matrix, as a dense vector."""
    import numpy as np

    return np.asarray(X.multiply(X).sum(axis=1), dtype=X.dtype).ravel()


def assign(X: Any, xnorms: Any, centers: Any) -> tuple[Any, Any]:
    """Nearest centre of each row and the squared distance to it, tile by tile.

    The expansion ranks the centres; rows whose runner-up is within its
    rounding bound of the winner are densified and redone by differences
    (ties to the lower index), so the labels are those of the dense path,
    whichever kernel computed the products (the bound holds for any order
    of summation).
    """
    import numpy as np

    from xplearn.neighbors._search import rounding_bound

    n, k = X.shape[0], centers.shape[0]
    cnorms = (centers * centers).sum(axis=1)
    slack = 2.0 * rounding_bound(np, centers.dtype, X.shape[1])
    cc_max = float(cnorms.max()) if k else 0.0
    rows = max(1, _TILE_ELEMENTS // max(k, 1))
    labels = np.empty(n, dtype=np.int64)
    dist = np.empty(n, dtype=centers.dtype)
    # −2·Cᵀ: scaling by −2 is exact, so the products are −2 times X·Cᵀ's.
    B = np.multiply(centers.T, -2.0, order="C")
    torch = B.dtype == X.dtype and _torch_applies(X, k)  # (torch mixes no dtypes)
    product = _torch_products if torch else _scipy_products
    for a in range(0, n, rows):
        b = min(a + rows, n)
        D = product(X, a, b, B)
        D += xnorms[a:b, None]
        D += cnorms[None, :]
        lab = np.argmin(D, axis=1)
        best = D[np.arange(b - a), lab]
        labels[a:b] = lab
        dist[a:b] = np.maximum(best, 0.0)
        if k > 1:
            D[np.arange(b - a), lab] = np.inf
            near = D.min(axis=1) - best <= slack * (xnorms[a:b] + cc_max)
            redo = a + np.flatnonzero(near)
            step = max(1, _TILE_ELEMENTS // max(1, k * X.shape[1]))
            for r in range(0, redo.size, step):
                rr = redo[r : r + step]
                diff = X[rr].toarray()[:, None, :] - centers[None, :, :]
                exact = (diff * diff).sum(axis=2)
                lab_r = np.argmin(exact, axis=1)
                labels[rr] = lab_r
                dist[rr] = exact[np.arange(rr.size), lab_r]
    return labels, dist


def _scipy_products(X: Any, a: int, b: int, B: Any) -> Any:
    """``X[a:b] @ B`` (dense ``B``) by scipy's kernel, as a fresh dense array."""
    import numpy as np

    Xt = X if (a, b) == (0, X.shape[0]) else X[a:b]  # (a slice copies its rows)
    return np.asarray(Xt @ B)


def _torch_applies(X: Any, k: int) -> bool:
    """Whether an E-step of CSR ``X`` against ``k`` centres runs on torch.

    The shared route's rule (:func:`~xplearn.neighbors._search.torch_route_applies`),
    with the work counted over the stored values, where the CSR index arrays
    share a dtype (torch's CSR asks it).
    """
    from xplearn.neighbors._search import torch_route_applies

    return X.indptr.dtype == X.indices.dtype and torch_route_applies(X.nnz * k)


def _torch_products(X: Any, a: int, b: int, B: Any) -> Any:
    """:func:`_scipy_products` on torch's CPU kernel, through zero-copy views.

    torch's sparse × dense product (MKL) inside
    :func:`~xplearn.neighbors._search.on_host_torch`: 52 against 140 ms
    for scipy's one-threaded kernel on a 50 000 × 20 000 TF-IDF matrix (5
    million stored values) against 64 centres (Xeon, 2 threads, medians of
    5).  The products are summed in another order than scipy's, within the
    rounding bound that :func:`assign` allows for.  The arrays are only
    read; a read-only matrix is viewed as it is.
    """
    import torch

    from xplearn.neighbors._search import on_host_torch

    indptr = X.indptr[a : b + 1]
    lo, hi = int(indptr[0]), int(indptr[-1])
    with warnings.catch_warnings():
        # torch warns that its CSR support is in beta, and that the arrays of a
        # read-only matrix are not writable: nothing here writes them.
        warnings.simplefilter("ignore", UserWarning)
        T = torch.sparse_csr_tensor(
            torch.from_numpy(indptr - indptr[0]),
            torch.from_numpy(X.indices[lo:hi]),
            torch.from_numpy(X.data[lo:hi]),
            size=(b - a, X.shape[1]),
            check_invariants=False,
        )
        Bt = torch.from_numpy(B)
    with on_host_torch():
        return (T @ Bt).numpy()


def distances(X: Any, centers: Any) -> Any:
    """Euclidean distances of every row to every centre (n × k, dense)."""
    import numpy as np

    D = np.asarray(X @ centers.T) * -2.0
    D += sq_norms(X)[:, None]
    D += (centers * centers).sum(axis=1)[None, :]
    return np.sqrt(np.maximum(D, 0.0))


def tolerance(X: Any, tol: float) -> float:
    """``tol`` times the mean feature variance of ``X`` (scikit-learn's)."""
    from sklearn.utils.sparsefuncs import mean_variance_axis

    return float(mean_variance_axis(X, axis=0)[1].mean()) * tol


def kmeans_plusplus_sparse(
    X: Any, k: int, xnorms: Any, w: Any, rs: Any, n_local_trials: int | None = None
) -> Any:
    """Greedy k-means++ on a CSR matrix: the dense seeding's draws, row indices."""
    import numpy as np

    n = X.shape[0]
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(k))
    w64 = w.astype(np.float64)
    # In float64 whatever X's dtype, as the dense seeding: float32 rounding
    # of the potentials would pick other rows than a dense float32 X does.
    xnorms = np.asarray(xnorms, dtype=np.float64)
    first = int(rs.choice(n, p=w64 / w64.sum()))
    indices = [first]

    def sqdist(rows: Any) -> Any:
        C = X[rows].astype(np.float64)
        D = np.asarray((C @ X.T).todense(), dtype=np.float64) * -2.0
        D += sq_norms(C)[:, None]
        D += xnorms[None, :]
        return np.maximum(D, 0.0)

    closest = sqdist(np.asarray([first]))[0]
    pot = float((closest * w64).sum())
    for _ in range(1, k):
        rand_vals = rs.uniform(size=n_local_trials) * pot
        cum = np.cumsum(closest.astype(np.float64) * w64)
        cand = np.minimum(np.searchsorted(cum, rand_vals), n - 1)
        D = np.minimum(closest[None, :], sqdist(cand))
        pots = D.astype(np.float64) @ w64
        best = int(np.argmin(pots))
        pot = float(pots[best])
        closest = D[best]
        indices.append(int(cand[best]))
    return np.asarray(indices)


def _relocate(X: Any, w: Any, labels: Any, dist: Any, sums: Any, totals: Any) -> None:
    """Move empty clusters to the farthest points (in place), as the dense path."""
    import numpy as np

    empty = np.flatnonzero(totals == 0)
    if empty.size == 0 or dist.max() == 0:
        return
    far = np.argsort(dist, kind="stable")[::-1][: empty.size]
    X_far = np.asarray(X[far].todense())
    for new, i, x in zip(empty, far, X_far, strict=True):
        old = labels[i]
        sums[old] -= x * w[i]
        sums[new] = x * w[i]
        totals[new] = w[i]
        totals[old] -= w[i]


def lloyd_sparse(
    X: Any, xnorms: Any, w: Any, centers: Any, max_iter: int, tol: float, verbose: int
) -> tuple[Any, float, Any, int]:
    """One Lloyd run on a CSR matrix: (labels, inertia, centers, n_iter)."""
    import numpy as np

    k = centers.shape[0]
    labels_old = None
    strict = False
    i = 0
    for i in range(max_iter):
        labels, dist = assign(X, xnorms, centers)
        sums, totals = segment_sums(X, labels, w, k)
        _relocate(X, w, labels, dist, sums, totals)
        nonempty = totals > 0
        safe = np.where(nonempty, totals, 1)[:, None]
        new = np.where(nonempty[:, None], sums / safe, centers)
        if verbose:
            print(f"Iteration {i}, inertia {float((w * dist).sum())}.")
        shift = float(((new - centers) ** 2).sum())
        centers = new
        strict = labels_old is not None and bool(np.array_equal(labels, labels_old))
        if _converged(i, strict, shift, tol, verbose):
            break
        labels_old = labels
    labels, dist = assign(X, xnorms, centers)
    return labels, float((w * dist).sum()), centers, i + 1


def _weights(sample_weight: Any, n: int, dtype: Any) -> Any:
    import numpy as np

    if sample_weight is None:
        return np.ones(n, dtype=dtype)
    w = np.asarray(sample_weight, dtype=dtype)
    if w.ndim == 0:
        return np.full(n, w, dtype=dtype)
    if w.shape != (n,):
        msg = f"sample_weight.shape == {w.shape}, expected {(n,)}!"
        raise ValueError(msg)
    if (w < 0).any() or not np.isfinite(w).all() or w.sum() == 0:
        msg = "sample_weight must be finite, non-negative and not all zero."
        raise ValueError(msg)
    return w


def init_centers(
    est: Any, X: Any, xnorms: Any, w: Any, rs: Any, edge: Any, given: Any = None
) -> Any:
    """Draw initial centres (dense numpy) of a CSR ``X`` as the dense path does."""
    import numpy as np

    n, k = X.shape[0], est.n_clusters
    if given is not None:
        return np.asarray(given)
    if isinstance(est.init, str) and est.init == "k-means++":
        return X[kmeans_plusplus_sparse(X, k, xnorms, w, rs)].toarray()
    if isinstance(est.init, str):  # random
        w64 = w.astype(np.float64)
        seeds = rs.choice(n, size=k, replace=False, p=w64 / w64.sum())
        return X[seeds].toarray()
    c = est.init(X, k, random_state=rs)
    c = c.toarray() if is_scipy_sparse(c) else c
    return np.asarray(est._checked_centers(edge.follow(c, "init"), X, edge))


def segment_sums(X: Any, labels: Any, w: Any, k: int) -> tuple[Any, Any]:
    """Weighted sums (dense k × d) of the CSR rows per label, and the weights.

    One sparse product ``onehot(labels)ᵀ · diag(w) · X`` written straight
    into a dense array by scikit-learn's one-pass kernel (where it is there:
    19 against 35 ms for scipy's product and densification at 50 000 ×
    20 000 with 5 million stored values, 64 labels); both add each sum's
    terms in row order, so the bits are the same.
    """
    import numpy as np
    import scipy.sparse as sp

    from xplearn.metrics._sparse import sparse_dot_dense

    n = X.shape[0]
    order = np.argsort(labels, kind="stable")  # each label's rows in order
    indptr = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=k))])
    onehot = sp.csr_matrix((w[order], order, indptr), shape=(k, n))
    if w.dtype == X.dtype:
        sums = np.empty((k, X.shape[1]), dtype=X.dtype)
        sparse_dot_dense(onehot, X, sums)
    else:  # (the kernel takes one dtype; scipy's product the wider)
        sums = np.asarray((onehot @ X).todense(), dtype=X.dtype)
    totals = np.bincount(labels, weights=w, minlength=k).astype(X.dtype)
    return sums, totals


def fit_sparse(est: Any, X: Any, sample_weight: Any) -> Any:
    """``KMeans.fit`` for a scipy sparse ``X``; fitted attributes are numpy."""
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils.validation import validate_data

    from xplearn._dispatch import Edge

    from ._checks import _check_n_clusters, _same_clustering
    from ._init import _check_random_state

    n_init = est._check_params()
    X = check_sparse(X)
    validate_data(est, X, skip_check_array=True, reset=True)
    n, k = X.shape[0], est.n_clusters
    _check_n_clusters(k, n)
    w = _weights(sample_weight, n, X.dtype)
    edge = Edge.of(np.zeros((1, 1), dtype=X.dtype))[0]
    given = None
    if not isinstance(est.init, str) and not callable(est.init):
        given = np.asarray(est._checked_centers(edge.follow(est.init, "init"), X, edge))
    rs = _check_random_state(est.random_state)
    xnorms = sq_norms(X)
    tol = tolerance(X, est.tol)
    best = None
    for _ in range(n_init):
        init = init_centers(est, X, xnorms, w, rs, edge, given)
        if est.verbose:
            print("Initialization complete")
        result = lloyd_sparse(
            X, xnorms, w, init.astype(X.dtype), est.max_iter, tol, est.verbose
        )
        if best is None or (
            result[1] < best[1] and not _same_clustering(result[0], best[0], k)
        ):
            best = result
    assert best is not None
    labels, inertia, centers, n_iter = best
    n_distinct = int((np.bincount(labels, minlength=k) > 0).sum())
    if n_distinct < k:
        warnings.warn(
            f"Number of distinct clusters ({n_distinct}) found smaller than "
            f"n_clusters ({k}). Possibly due to duplicate points in X.",
            ConvergenceWarning,
            stacklevel=3,
        )
    est.cluster_centers_ = centers
    est.labels_ = labels
    est.inertia_ = inertia
    est.n_iter_ = n_iter
    est._n_features_out = k
    return est


def query_sparse(est: Any, X: Any) -> Any:
    """Check a sparse query against fitted centres: CSR in their dtype."""
    import numpy as np
    from sklearn.utils.validation import check_is_fitted, validate_data

    from xplearn._convert import to_numpy

    check_is_fitted(est, "cluster_centers_")
    centers = np.asarray(to_numpy(est.cluster_centers_))
    X = check_sparse(X, dtype=centers.dtype)
    validate_data(est, X, skip_check_array=True, reset=False)
    return X, centers


def sparse_assign(X: Any, centers: Any) -> tuple[Any, Any]:
    """Labels and squared distances of a checked CSR query to the centres."""
    return assign(X, sq_norms(X), centers)
