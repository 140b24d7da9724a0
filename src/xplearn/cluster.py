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
every backend.  This module imports scikit-learn; ``import xplearn`` does not
import this module.
"""

from __future__ import annotations

import math
import numbers
import warnings
from types import ModuleType
from typing import Any

from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.base import ClassNamePrefixFeaturesOutMixin as _NamesOut

from ._dispatch import Edge
from ._kmeans import (
    _check_n_clusters,
    _check_random_state,
    _check_sample_weight,
    _host_floats,
    _is_int,
    _kmeans_plusplus,
    _same_clustering,
    _tolerance,
)
from ._lloyd import _count, _Data, _elkan, _lloyd
from ._namespace import device_of
from ._primitives import segment_sums, segment_weights, sq_row_norms
from ._scaling import ldexp, scale_exponent, times_pow2
from ._search import nearest_center, nearest_center_scaled
from ._validation import check_array, check_finite, check_fit_input, check_query


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
    X : array of shape (n_samples, n_features)
        Any supported framework.
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


def _check_norms(norms: Any, X: Any, xp: ModuleType) -> Any:
    """``x_squared_norms`` as a (n_samples,) array of ``X``'s dtype, or raise."""
    n = X.shape[0]
    if norms.ndim != 1 or norms.shape[0] != n:
        msg = (
            f"x_squared_norms has shape {tuple(norms.shape)}, expected ({n},): "
            "one squared norm per row of X (or leave it None)."
        )
        raise ValueError(msg)
    norms = xp.astype(norms, X.dtype, copy=True)
    check_finite(
        xp.reshape(norms, (-1, 1)), xp, "x_squared_norms", "Pass finite norms."
    )
    return norms


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
        operations compile for every new shape, it runs Lloyd's iterations.
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

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
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
        if self.n_init == "auto":
            return 10 if isinstance(self.init, str) and self.init == "random" else 1
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
            return 1
        return int(self.n_init)

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
        if centers.ndim != 2 or tuple(centers.shape) != (k, X.shape[1]):
            msg = (
                f"The shape of the initial centers {tuple(centers.shape)} does not "
                f"match the number of clusters {k} and features {X.shape[1]}."
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
        n_init = self._check_params()
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
        mean = xp.mean(Xs, axis=0)
        Xm = Xs - mean
        if given is not None:  # given in X's coordinates
            given = times_pow2(given, -e, xp) - mean
        data = _Data(Xm, w, xp)
        norms = data.XX
        # The mean feature variance is the mean squared norm of the centred
        # rows over the feature count (scikit-learn's scaling, without a pass).
        tol = float(xp.mean(norms)) / Xm.shape[1] * self.tol
        run = _elkan if self.algorithm == "elkan" else _lloyd
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

    def predict(self, X: Any) -> Any:
        """Index of the nearest centre of each sample.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Any supported framework.

        Returns
        -------
        labels : array of shape (n_samples,)
            In ``X``'s framework and device.
        """
        edge, Xc = self._query(X)
        return edge.to_caller(nearest_center(Xc, self.cluster_centers_, edge.xp)[0])

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
        edge, _ = Edge.of(X)
        return edge.to_caller(self.labels_)

    def transform(self, X: Any) -> Any:
        """Distances from each sample to every centre.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Any supported framework.

        Returns
        -------
        D : array of shape (n_samples, n_clusters)
            Euclidean distances, in ``X``'s framework and device.
        """
        from .metrics import _pairwise

        edge, Xc = self._query(X)
        return edge.to_caller(
            _pairwise(Xc, self.cluster_centers_, "euclidean", 2.0, edge.xp, same=False)
        )

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


__all__ = ["KMeans", "kmeans", "kmeans_plusplus"]


class MiniBatchKMeans(KMeans):
    """Mini-batch K-Means on any backend (scikit-learn's API and update rule).

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.
    init : {"k-means++", "random"}, array or callable, default="k-means++"
        Initial centres, computed on ``init_size`` random samples.
    max_iter : int, default=100
        Passes over the data (``max_iter * n_samples / batch_size`` steps).
    batch_size : int, default=1024
        Samples per step.
    verbose : int, default=0
        Print the batch and smoothed inertia per step.
    compute_labels : bool, default=True
        Compute ``labels_`` and ``inertia_`` on the full data after fitting.
    random_state : int, RandomState or None
        Drawn on the host: one seed, one result on every backend.
    tol : float, default=0.0
        Stop when the squared centre change is below this (times the mean
        feature variance); 0 disables it.
    max_no_improvement : int or None, default=10
        Stop after this many steps without improvement of the smoothed
        inertia; None disables it.
    init_size : int, optional
        Samples used for the initialisation (default ``3 * batch_size``).
    n_init : "auto" or int, default="auto"
        Initialisations tried (1 for "k-means++" or an array, 3 for
        "random"); the best on a validation subset wins.
    reassignment_ratio : float, default=0.01
        Centres whose count falls below this fraction of the largest are
        moved to random batch points.

    Attributes
    ----------
    cluster_centers_ : array of shape (n_clusters, n_features)
    labels_ : array of shape (n_samples,)
    inertia_ : float
    n_iter_ : int
    n_steps_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from xplearn.cluster import MiniBatchKMeans
    >>> X = np.array([[1.0, 2.0], [1.0, 4.0], [10.0, 2.0], [10.0, 4.0]])
    >>> mbk = MiniBatchKMeans(n_clusters=2, batch_size=4, random_state=0).fit(X)
    >>> sorted(mbk.cluster_centers_[:, 0].round().tolist())
    [1.0, 10.0]
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: Any = "k-means++",
        max_iter: int = 100,
        batch_size: int = 1024,
        verbose: int = 0,
        compute_labels: bool = True,
        random_state: Any = None,
        tol: float = 0.0,
        max_no_improvement: int | None = 10,
        init_size: int | None = None,
        n_init: Any = "auto",
        reassignment_ratio: float = 0.01,
    ) -> None:
        super().__init__(
            n_clusters=n_clusters,
            init=init,
            max_iter=max_iter,
            verbose=verbose,
            random_state=random_state,
            tol=tol,
            n_init=n_init,
        )
        self.max_no_improvement = max_no_improvement
        self.batch_size = batch_size
        self.compute_labels = compute_labels
        self.init_size = init_size
        self.reassignment_ratio = reassignment_ratio

    def _check_params(self) -> int:
        n_init = super()._check_params()
        if (
            self.n_init == "auto"
            and isinstance(self.init, str)
            and self.init == "random"
        ):
            n_init = 3
        if not _is_int(self.batch_size) or int(self.batch_size) < 1:
            msg = f"batch_size must be an integer >= 1, got {self.batch_size!r}."
            raise ValueError(msg)
        ratio: object = self.reassignment_ratio
        if not isinstance(ratio, numbers.Real) or float(ratio) < 0:
            msg = f"reassignment_ratio must be >= 0, got {self.reassignment_ratio!r}."
            raise ValueError(msg)
        return n_init

    def _sizes(self, n: int) -> tuple[int, int]:
        batch = min(int(self.batch_size), n)
        init_size = self.init_size if self.init_size is not None else 3 * batch
        if init_size < self.n_clusters:
            init_size = 3 * self.n_clusters
        return batch, min(int(init_size), n)

    def _init_subset(
        self,
        X: Any,
        w: Any,
        rs: Any,
        init_size: int,
        xp: ModuleType,
        edge: Edge,
        given: Any,
    ) -> Any:
        """Draw initial centres from ``init_size`` random samples (scikit-learn)."""
        n = X.shape[0]
        if init_size < n:
            idx = xp.asarray(rs.randint(0, n, init_size), device=device_of(X))
            X, w = xp.take(X, idx, axis=0), xp.take(w, idx)
        return self._init_centers(X, sq_row_norms(X, xp), w, rs, xp, edge, given)

    def _scaled(self, Xc: Any, edge: Edge, *, first: bool) -> tuple[Any, Any]:
        """``X`` in the frame the steps run in, and the array ``init`` there.

        The frame is ``X · 2**-e`` (see ``_scaling``), ``e`` fixed by the first
        data seen; the fitted centres are moved into it for the steps and
        back by :meth:`_finish`.
        """
        xp = edge.xp
        given = None
        if first:
            given = self._init_array(Xc, edge)
            self._scale = scale_exponent([Xc] if given is None else [Xc, given], xp)
            if given is not None:
                given = times_pow2(given, -self._scale, xp)
        else:
            self.cluster_centers_ = times_pow2(self.cluster_centers_, -self._scale, xp)
        return times_pow2(Xc, -self._scale, xp), given

    def _start(
        self, X: Any, w: Any, edge: Edge, given: Any, *, validate: bool = True
    ) -> None:
        """Draw the initial centres and reset the on-line state."""
        xp = edge.xp
        n_init = self._check_params()
        n = X.shape[0]
        _check_n_clusters(self.n_clusters, n)
        self._batch_size, self._init_size = self._sizes(n)
        self._tol = _tolerance(X, self.tol, xp)
        self._rs = _check_random_state(self.random_state)
        if not validate:  # partial_fit: one initialisation, as scikit-learn
            self.cluster_centers_ = self._init_subset(
                X, w, self._rs, self._init_size, xp, edge, given
            )
        else:
            valid = xp.asarray(
                self._rs.randint(0, n, self._init_size), device=edge.device
            )
            X_valid, w_valid = xp.take(X, valid, axis=0), xp.take(w, valid)
            best, best_inertia = None, math.inf
            for _ in range(n_init):
                centers = self._init_subset(
                    X, w, self._rs, self._init_size, xp, edge, given
                )
                _, dist = nearest_center(X_valid, centers, xp)
                inertia = float(xp.sum(dist * w_valid))
                if best is None or inertia < best_inertia:
                    best, best_inertia = centers, inertia
            self.cluster_centers_ = best
        self._counts = xp.zeros((self.n_clusters,), dtype=X.dtype, device=edge.device)
        self._n_since_last_reassign = 0
        self._ewa_inertia: float | None = None
        self._ewa_inertia_min: float | None = None
        self._no_improvement = 0

    def _random_reassign(self, xp: ModuleType) -> bool:
        self._n_since_last_reassign += self._batch_size
        if (
            bool(xp.any(self._counts == 0))
            or self._n_since_last_reassign >= 10 * self.n_clusters
        ):
            self._n_since_last_reassign = 0
            return True
        return False

    def _step(self, Xb: Any, wb: Any, xp: ModuleType, reassign: bool) -> float:
        """One mini-batch update of the centres; returns the batch inertia."""
        import numpy as np

        centers, counts = self.cluster_centers_, self._counts
        labels, dist = nearest_center(Xb, centers, xp)
        sums, wsum = segment_sums(Xb, labels, wb, self.n_clusters, xp)
        has = wsum > 0
        new_counts = counts + wsum
        safe = xp.where(has, new_counts, xp.ones_like(new_counts))
        moved = (centers * counts[:, None] + sums) / safe[:, None]
        centers = xp.where(has[:, None], moved, centers)
        counts = new_counts
        if reassign and self.reassignment_ratio > 0:
            counts_h = _host_floats(counts)
            to_reassign = counts_h < self.reassignment_ratio * counts_h.max()
            half = int(0.5 * Xb.shape[0])
            if to_reassign.sum() > 0.5 * Xb.shape[0]:
                to_reassign[np.argsort(counts_h)[half:]] = False
            n_re = int(to_reassign.sum())
            if n_re:
                picks = self._rs.choice(Xb.shape[0], replace=False, size=n_re)
                if self.verbose:
                    print(f"[MiniBatchKMeans] Reassigning {n_re} cluster centers.")
                src = np.zeros(self.n_clusters, dtype=np.int64)
                src[to_reassign] = picks
                dev = device_of(Xb)
                mask = xp.asarray(to_reassign, device=dev)
                new_rows = xp.take(Xb, xp.asarray(src, device=dev), axis=0)
                centers = xp.where(mask[:, None], new_rows, centers)
                # scikit-learn's "dirty hack": do not reset counts to zero.
                floor = float(counts_h[~to_reassign].min())
                counts = xp.where(mask, xp.full_like(counts, floor), counts)
        self._centers_shift = float(xp.sum((centers - self.cluster_centers_) ** 2))
        self.cluster_centers_, self._counts = centers, counts
        return float(xp.sum(dist * wb))

    def _converged(self, step: int, n_steps: int, n: int, batch_inertia: float) -> bool:
        """scikit-learn's early stopping: centre change, smoothed inertia."""
        batch_inertia /= self._batch_size
        step += 1
        if step == 1:
            if self.verbose:
                print(
                    f"Minibatch step {step}/{n_steps}: mean batch inertia: "
                    f"{batch_inertia}"
                )
            return False
        if self._ewa_inertia is None:
            self._ewa_inertia = batch_inertia
        else:
            alpha = min(self._batch_size * 2.0 / (n + 1), 1.0)
            self._ewa_inertia = self._ewa_inertia * (1 - alpha) + batch_inertia * alpha
        if self.verbose:
            print(
                f"Minibatch step {step}/{n_steps}: mean batch inertia: "
                f"{batch_inertia}, ewa inertia: {self._ewa_inertia}"
            )
        if self._tol > 0.0 and self._centers_shift <= self._tol:
            if self.verbose:
                print(f"Converged (small centers change) at step {step}/{n_steps}")
            return True
        if self._ewa_inertia_min is None or self._ewa_inertia < self._ewa_inertia_min:
            self._no_improvement = 0
            self._ewa_inertia_min = self._ewa_inertia
        else:
            self._no_improvement += 1
        if (
            self.max_no_improvement is not None
            and self._no_improvement >= self.max_no_improvement
        ):
            if self.verbose:
                print(
                    "Converged (lack of improvement in inertia) at step "
                    f"{step}/{n_steps}"
                )
            return True
        return False

    def _validated(
        self, X: Any, sample_weight: Any, *, reset: bool
    ) -> tuple[Edge, Any, Any]:
        if reset:
            edge, Xc = check_fit_input(self, X)
        else:
            edge, Xc = check_query(self, X, self.cluster_centers_)
        w = _check_sample_weight(sample_weight, edge, Xc.shape[0], Xc.dtype)
        return edge, Xc, w

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> MiniBatchKMeans:
        """Compute the centres by mini-batch steps over ``X``.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Any supported framework.
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative, not all zero.

        Returns
        -------
        self : MiniBatchKMeans
        """
        edge, Xc, w = self._validated(X, sample_weight, reset=True)
        xp = edge.xp
        n = Xc.shape[0]
        Xc, given = self._scaled(Xc, edge, first=True)
        self._start(Xc, w, edge, given)
        n_steps = (int(self.max_iter) * n) // self._batch_size
        # Batches are drawn with probability proportional to the weights and
        # then count once each (scikit-learn 1.9's sampling).
        w_host = _host_floats(w)
        total = float(w_host.sum())
        p = w_host / total
        unit = xp.ones((self._batch_size,), dtype=Xc.dtype, device=edge.device)
        i = 0
        for i in range(n_steps):
            drawn = self._rs.choice(n, self._batch_size, p=p, replace=True)
            idx = xp.asarray(drawn, device=edge.device)
            inertia = self._step(
                xp.take(Xc, idx, axis=0), unit, xp, self._random_reassign(xp)
            )
            if self._converged(i, n_steps, n, inertia):
                break
        self.n_steps_ = i + 1
        self.n_iter_ = math.ceil((i + 1) * self._batch_size / n)
        self._finish(Xc, w, xp, total)
        return self

    def _finish(self, Xc: Any, w: Any, xp: ModuleType, total: float) -> None:
        """Labels and inertia of the scaled ``Xc``; centres back in X's units."""
        self._n_features_out = self.n_clusters
        e = self._scale
        if self.compute_labels:
            self.labels_, dist = nearest_center(Xc, self.cluster_centers_, xp)
            self.inertia_ = ldexp(float(xp.sum(dist * w)), 2 * e)
        elif self._ewa_inertia is not None:
            self.inertia_ = ldexp(self._ewa_inertia * total, 2 * e)
        self.cluster_centers_ = times_pow2(self.cluster_centers_, e, xp)

    def partial_fit(
        self, X: Any, y: Any = None, sample_weight: Any = None
    ) -> MiniBatchKMeans:
        """Update the centres with one mini-batch ``X``.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Any supported framework; the first call fixes the framework and
            device of the fitted state.
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative, not all zero.

        Returns
        -------
        self : MiniBatchKMeans
        """
        first = not hasattr(self, "cluster_centers_")
        edge, Xc, w = self._validated(X, sample_weight, reset=first)
        xp = edge.xp
        Xc, given = self._scaled(Xc, edge, first=first)
        if first:
            self._start(Xc, w, edge, given, validate=False)
            self.n_steps_ = 0
        self._step(Xc, w, xp, self._random_reassign(xp))
        self.n_steps_ += 1
        self._ewa_inertia = None
        self._finish(Xc, w, xp, float(xp.sum(w)))
        return self
