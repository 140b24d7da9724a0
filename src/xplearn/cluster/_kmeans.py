"""KMeans on any backend, reproducible across frameworks.

Lloyd iterations written once against ``xp`` (``_lloyd``): the assignment
(E-step) is one GEMM of augmented operands and an argmin per cache-sized tile
of rows (numpy: a fused kernel on a host thread pool), the update (M-step) a
weighted segment sum (``_primitives.segment_sums``: torch ``index_add_``,
numpy a sparse scatter-add, else a one-hot product).  ``algorithm="elkan"``
gives the same labels while skipping, by triangle-inequality bounds, the
points that cannot change cluster.  Semantics follow scikit-learn's
``KMeans``: the data is centred on its mean, ``tol`` is scaled by the mean
feature variance, the loop stops on strict convergence (labels unchanged) or
on the centre shift, and a last E-step makes ``labels_`` match
``cluster_centers_``.  Empty clusters are moved to the points farthest from
their centres, never left at the origin.

Random numbers are drawn on the host with numpy from ``random_state`` and the
chosen indices moved to the device, so one seed gives one initialisation on
every backend.  This package imports scikit-learn; ``import xplearn`` does not
import this package.
"""

from __future__ import annotations

import numbers
import warnings
from types import ModuleType
from typing import Any

from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.base import ClassNamePrefixFeaturesOutMixin as _NamesOut

from xplearn._dispatch import Edge
from xplearn._namespace import device_of
from xplearn._primitives import column_means, segment_weights
from xplearn._scaling import ldexp, scale_exponent, times_pow2
from xplearn._sparse import takes_torch_sparse
from xplearn._traced import is_jax_tracer, traced_method
from xplearn._validation import check_finite, check_fit_input, check_query
from xplearn.neighbors._search import nearest_center, nearest_center_scaled

from . import _dask
from ._checks import (
    _check_n_clusters,
    _check_sample_weight,
    _is_int,
    _same_clustering,
)
from ._elkan import _elkan
from ._init import _check_random_state, _host_floats, _kmeans_plusplus
from ._lloyd import _count, _Data, _lloyd
from ._sparse import _weights, fit_sparse, is_scipy_sparse, query_sparse, sparse_assign
from ._sparse import distances as sparse_distances


class KMeans(_NamesOut, TransformerMixin, ClusterMixin, BaseEstimator):  # type: ignore[misc]
    """K-Means clustering on any backend (scikit-learn's API and results).

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.
    init : {"k-means++", "random"}, array or callable, default="k-means++"
        Initial centres; an array is copied, never aliased.
    n_init : "auto" or int, default="auto"
        Runs from different initialisations (1 for "k-means++" or an array,
        10 for "random"); the lowest inertia wins.
    max_iter : int, default=300
        Lloyd iterations per run.
    tol : float, default=1e-4
        Centre-shift tolerance, times the mean feature variance of ``X``.
    verbose : int, default=0
        Print the inertia per iteration.
    random_state : int, RandomState or None
        Drawn on the host: one seed, one result on every backend.
    copy_x : bool, default=True
        Accepted for compatibility: xplearn never modifies ``X``.
    algorithm : {"lloyd", "elkan"}, default="lloyd"
        ``"lloyd"`` computes every point's distance to every centre in each
        iteration.  ``"elkan"`` gives the same labels, centres and
        ``n_iter_`` but skips the points that the triangle inequality shows
        cannot change cluster (Hamerly's one-lower-bound form of Elkan's
        bounds, which vectorises); usually much faster to convergence, at
        three arrays of ``n_samples`` more memory.  On jax, whose eager
        operations compile for every new shape, and on dask, whose blocks
        would carry the bounds between rounds, it runs Lloyd's iterations.
        In float64 ties between equally distant centres go to the lower index
        (exact search); float32 takes the GEMM's rounding, as scikit-learn
        does, except that ``"elkan"`` re-checks near-ties exactly.

    Attributes
    ----------
    cluster_centers_ : array of shape (n_clusters, n_features)
        In the framework and device of the data given to ``fit``.
    labels_ : array of shape (n_samples,)
    inertia_ : float
    n_iter_ : int
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from xplearn.cluster import KMeans
    >>> X = np.array([[1.0, 2.0], [1.0, 4.0], [10.0, 2.0], [10.0, 4.0]])
    >>> km = KMeans(n_clusters=2, random_state=0).fit(X)
    >>> sorted(km.cluster_centers_[:, 0].tolist())
    [1.0, 10.0]
    """

    # Fitted on a torch sparse tensor, these come back as torch (_sparse).
    _torch_sparse_fitted: tuple[str, ...] = ("cluster_centers_", "labels_")

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: Any = "k-means++",
        n_init: Any = "auto",
        max_iter: int = 300,
        tol: float = 1e-4,
        verbose: int = 0,
        random_state: Any = None,
        copy_x: bool = True,
        algorithm: str = "lloyd",
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.copy_x = copy_x
        self.algorithm = algorithm

    # Runs of n_init="auto" for "random" and callable inits (scikit-learn's).
    _default_n_init = 10

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        tags.input_tags.allow_nan = False
        # scipy sparse X (CSR/CSC), on the host: ``_sparse``.
        tags.input_tags.sparse = True
        return tags

    def _check_params(self) -> int:
        if self.algorithm not in ("lloyd", "elkan"):
            msg = f"algorithm must be 'lloyd' or 'elkan', got {self.algorithm!r}."
            raise ValueError(msg)
        if not _is_int(self.max_iter) or int(self.max_iter) < 1:
            msg = f"max_iter must be an integer >= 1, got {self.max_iter!r}."
            raise ValueError(msg)
        tol: object = self.tol
        if not isinstance(tol, numbers.Real) or float(tol) < 0:
            msg = f"tol must be a number >= 0, got {self.tol!r}."
            raise ValueError(msg)
        init_is_array = not isinstance(self.init, str) and not callable(self.init)
        if isinstance(self.init, str) and self.init not in ("k-means++", "random"):
            msg = (
                "init must be 'k-means++', 'random', an array or a callable, "
                f"got {self.init!r}."
            )
            raise ValueError(msg)
        if self.algorithm == "elkan" and self.n_clusters == 1:
            warnings.warn(
                "algorithm='elkan' doesn't make sense for a single "
                "cluster. Using 'lloyd' instead.",
                RuntimeWarning,
                stacklevel=3,
            )
        if self.n_init == "auto":
            # scikit-learn: 1 for k-means++ or an array, else the default.
            plus = isinstance(self.init, str) and self.init == "k-means++"
            self._n_init = 1 if plus or init_is_array else self._default_n_init
            return self._n_init
        if not _is_int(self.n_init) or int(self.n_init) < 1:
            msg = f"n_init must be 'auto' or an integer >= 1, got {self.n_init!r}."
            raise ValueError(msg)
        if init_is_array and self.n_init != 1:
            warnings.warn(
                "Explicit initial center position passed: performing only one init "
                f"in {type(self).__name__} instead of n_init={self.n_init}.",
                RuntimeWarning,
                stacklevel=3,
            )
            self._n_init = 1
            return 1
        self._n_init = int(self.n_init)
        return self._n_init

    def _init_array(self, X: Any, edge: Edge) -> Any:
        """Return the explicit ``init`` array, checked, in ``X``'s dtype; else None.

        Checked as ``X`` is (shape, finiteness) before anything uses it: a NaN
        centre would otherwise label no point at all.
        """
        if isinstance(self.init, str) or callable(self.init):
            return None
        return self._checked_centers(edge.follow(self.init, "init"), X, edge)

    def _checked_centers(self, centers: Any, X: Any, edge: Edge) -> Any:
        """Return initial centres as a new array of ``X``'s dtype, or raise."""
        xp = edge.xp
        k = self.n_clusters
        shape = tuple(centers.shape)
        if centers.ndim != 2 or shape[0] != k:
            msg = (
                f"The shape of the initial centers {shape} does not match the "
                f"number of clusters {k}."
            )
            raise ValueError(msg)
        if shape[1] != X.shape[1]:
            msg = (
                f"The shape of the initial centers {shape} does not match the "
                f"number of features of the data {X.shape[1]}."
            )
            raise ValueError(msg)
        centers = xp.astype(centers, X.dtype, copy=True)  # never alias the user's
        check_finite(centers, xp, "init", "Pass finite initial centres.")
        return centers

    def _init_centers(
        self,
        X: Any,
        norms: Any,
        w: Any,
        rs: Any,
        xp: ModuleType,
        edge: Edge,
        given: Any = None,
    ) -> Any:
        """Draw initial centres in the frame of ``X`` (``given``: an array ``init``)."""
        n, k = X.shape[0], self.n_clusters
        if given is not None:
            return given
        if isinstance(self.init, str) and self.init == "k-means++":
            return _kmeans_plusplus(X, k, norms, w, rs, None, xp)[0]
        if isinstance(self.init, str) and self.init == "random":
            w_h = _host_floats(w)
            seeds = rs.choice(n, size=k, replace=False, p=w_h / w_h.sum())
            return xp.take(X, xp.asarray(seeds, device=device_of(X)), axis=0)
        centers = self.init(X, k, random_state=rs)
        return self._checked_centers(edge.follow(centers, "init"), X, edge)

    @takes_torch_sparse
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> KMeans:
        """Compute the clustering.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Any supported framework.
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative, not all zero.

        Returns
        -------
        self : KMeans
        """
        if is_scipy_sparse(X):
            return fit_sparse(self, X, sample_weight)  # type: ignore[no-any-return]
        n_init = self._check_params()
        if _dask.is_dask(X):  # blockwise, never gathered (issue 14)
            return _dask.fit_kmeans(self, X, sample_weight, n_init)  # type: ignore[no-any-return]
        edge, Xc = check_fit_input(self, X)
        xp = edge.xp
        _check_n_clusters(self.n_clusters, Xc.shape[0])
        w = _check_sample_weight(sample_weight, edge, Xc.shape[0], Xc.dtype)
        given = self._init_array(Xc, edge)
        rs = _check_random_state(self.random_state)
        # Data whose squares would overflow or underflow is clustered at an
        # exact power-of-two scale: the same labels, nothing leaves the range.
        e = scale_exponent([Xc] if given is None else [Xc, given], xp)
        Xs = times_pow2(Xc, -e, xp)
        # Centre the data: the expansion's distances are more accurate there.
        mean = column_means(Xs, xp)
        Xm = Xs - mean
        if given is not None:  # given in X's coordinates
            given = times_pow2(given, -e, xp) - mean
        elkan = self.algorithm == "elkan" and self.n_clusters > 1
        data = _Data(Xm, w, xp, self.n_clusters, elkan=elkan)
        norms = data.XX
        # The mean feature variance is the mean squared norm of the centred
        # rows over the feature count (scikit-learn's scaling, without a pass).
        tol = float(xp.mean(norms)) / Xm.shape[1] * self.tol
        run = _elkan if elkan else _lloyd
        best = None
        for _ in range(n_init):
            init = self._init_centers(Xm, norms, w, rs, xp, edge, given)
            if self.verbose:
                print("Initialization complete")
            labels, inertia, centers, n_iter = run(
                data, init, self.max_iter, tol, self.verbose, xp
            )
            if best is None or (
                inertia < best[1]
                and not _same_clustering(labels, best[0], self.n_clusters)
            ):
                best = (labels, inertia, centers, n_iter)
        assert best is not None
        labels, inertia, centers, n_iter = best
        counts = segment_weights(labels, xp.ones_like(w), self.n_clusters, xp)
        n_distinct = _count(counts > 0, xp)
        if n_distinct < self.n_clusters:
            from sklearn.exceptions import ConvergenceWarning

            warnings.warn(
                f"Number of distinct clusters ({n_distinct}) found smaller than "
                f"n_clusters ({self.n_clusters}). Possibly due to duplicate "
                "points in X.",
                ConvergenceWarning,
                stacklevel=2,
            )
        self.cluster_centers_ = times_pow2(centers + mean, e, xp)
        self.labels_ = labels
        # Beyond float64 (float64 data past ~1e154) the inertia is inf.
        self.inertia_ = ldexp(inertia, 2 * e)
        self.n_iter_ = n_iter
        self._n_features_out = self.n_clusters
        return self

    def _query(self, X: Any) -> tuple[Edge, Any]:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "cluster_centers_")
        edge, Xc = check_query(self, X, self.cluster_centers_)
        return edge, Xc

    @takes_torch_sparse
    @traced_method
    def predict(self, X: Any) -> Any:
        """Index of the nearest centre of each sample.

        Jittable: a jax tracer ``X`` is answered inside ``jax.jit`` (exact
        nearest centre, ties to the lower index).

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Any supported framework.

        Returns
        -------
        labels : array of shape (n_samples,)
            In ``X``'s framework and device.
        """
        if is_scipy_sparse(X):
            return sparse_assign(*query_sparse(self, X))[0]
        if _dask.uses_dask(self, X):
            return _dask.predict(self, X)
        edge, Xc = self._query(X)
        return edge.to_caller(nearest_center(Xc, self.cluster_centers_, edge.xp)[0])

    @takes_torch_sparse
    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """Fit and return ``labels_`` in ``X``'s framework.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Any supported framework.
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights.

        Returns
        -------
        labels : array of shape (n_samples,)
        """
        self.fit(X, sample_weight=sample_weight)
        if is_scipy_sparse(X):
            return self.labels_
        edge, _ = Edge.of(X)
        return edge.to_caller(self.labels_)

    @takes_torch_sparse
    @traced_method
    def transform(self, X: Any) -> Any:
        """Distances from each sample to every centre.

        Jittable: a jax tracer ``X`` is answered inside ``jax.jit``.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Any supported framework.

        Returns
        -------
        D : array of shape (n_samples, n_clusters)
            Euclidean distances, in ``X``'s framework and device.
        """
        from xplearn.metrics import _pairwise

        if is_scipy_sparse(X):
            return sparse_distances(*query_sparse(self, X))
        if _dask.uses_dask(self, X):
            return _dask.transform(self, X)
        edge, Xc = self._query(X)
        return edge.to_caller(
            _pairwise(Xc, self.cluster_centers_, "euclidean", 2.0, edge.xp, same=False)
        )

    @takes_torch_sparse
    def fit_transform(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """Fit, then return the distances to the centres.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Any supported framework.
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights.

        Returns
        -------
        D : array of shape (n_samples, n_clusters)
        """
        return self.fit(X, sample_weight=sample_weight).transform(X)

    @takes_torch_sparse
    @traced_method
    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Opposite of the inertia of ``X`` on the fitted centres.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Any supported framework.
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights.

        Returns
        -------
        score : float
        """
        if is_scipy_sparse(X):
            Xs, centers = query_sparse(self, X)
            w = _weights(sample_weight, Xs.shape[0], Xs.dtype)
            return -float((w * sparse_assign(Xs, centers)[1]).sum())
        if _dask.uses_dask(self, X):
            return _dask.score(self, X, sample_weight)
        edge, Xc = self._query(X)
        w = _check_sample_weight(sample_weight, edge, Xc.shape[0], Xc.dtype)
        # At the data's safe scale: the sum is representable in float64 even
        # where the squared distances are not in float32.
        _, dist, e = nearest_center_scaled(Xc, self.cluster_centers_, edge.xp)
        return -ldexp(float(edge.xp.sum(dist * w)), 2 * e)


def kmeans(
    X: Any,
    n_clusters: int,
    *,
    sample_weight: Any = None,
    init: Any = "k-means++",
    n_init: Any = "auto",
    max_iter: int = 300,
    verbose: bool = False,
    tol: float = 1e-4,
    random_state: Any = None,
    copy_x: bool = True,
    algorithm: str = "lloyd",
    return_n_iter: bool = False,
) -> tuple[Any, ...]:
    """K-means clustering, the functional form (scikit-learn's ``k_means``).

    Jittable with an array ``init``: inside ``jax.jit`` (``X``, ``init`` or
    ``sample_weight`` a jax tracer) Lloyd's iterations run in a
    ``lax.while_loop`` with the same stopping rule (strict convergence,
    ``tol``, ``max_iter``) and give the eager result; ``inertia`` and
    ``best_n_iter`` are then 0-d jax arrays.  k-means++ and "random" draw on
    the host and raise ``TypeError`` there; ``verbose``, ``random_state``,
    ``copy_x`` and ``algorithm`` (both give Lloyd's labels) are not used.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Any supported framework.
    n_clusters : int
        Number of clusters.
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative weights.
    init, n_init, max_iter, verbose, tol, random_state, copy_x, algorithm
        As :class:`KMeans`.
    return_n_iter : bool, default=False
        Also return the number of iterations.

    Returns
    -------
    centroid : array of shape (n_clusters, n_features)
    label : array of shape (n_samples,)
    inertia : float
    best_n_iter : int
        Only with ``return_n_iter=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from xplearn.cluster import kmeans
    >>> X = np.array([[0.0], [0.2], [5.0], [5.2]])
    >>> centers, labels, inertia = kmeans(X, 2, random_state=0)
    >>> round(inertia, 2)
    0.04
    """
    if any(is_jax_tracer(a) for a in (X, init, sample_weight)):
        # Inside jax.jit: a lax.while_loop over Lloyd iterations.
        from xplearn.jax._kmeans import kmeans as traced

        return traced(
            X,
            n_clusters,
            sample_weight=sample_weight,
            init=init,
            n_init=n_init,
            max_iter=max_iter,
            tol=tol,
            return_n_iter=return_n_iter,
        )
    km = KMeans(
        n_clusters=n_clusters,
        init=init,
        n_init=n_init,
        max_iter=max_iter,
        verbose=verbose,
        tol=tol,
        random_state=random_state,
        copy_x=copy_x,
        algorithm=algorithm,
    ).fit(X, sample_weight=sample_weight)
    edge, _ = Edge.of(X)
    centers, labels = edge.to_caller((km.cluster_centers_, km.labels_))
    if return_n_iter:
        return centers, labels, km.inertia_, km.n_iter_
    return centers, labels, km.inertia_
