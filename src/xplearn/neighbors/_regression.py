"""Neighbours regression: the k-neighbours and radius-neighbours regressors."""

from __future__ import annotations

from typing import Any

from sklearn.base import RegressorMixin

from xplearn._convert import to_namespace
from xplearn._dispatch import Edge
from xplearn._namespace import device_of
from xplearn._sparse import takes_torch_sparse
from xplearn._traced import check_not_traced, traced_method

from ._base import (
    SklearnKNeighborsMixin,
    SklearnRadiusNeighborsMixin,
    _check_weights,
    _host_score,
    _RadiusSupervised,
    _SupervisedNeighbors,
)


class KNeighborsRegressor(
    RegressorMixin,  # type: ignore[misc]
    _SupervisedNeighbors,
    SklearnKNeighborsMixin,  # type: ignore[misc]
):
    """k-nearest-neighbours regression on any backend (scikit-learn's API).

    Parameters
    ----------
    n_neighbors : int, default=5
        Neighbours averaged.
    weights : {"uniform", "distance"} or callable, default="uniform"
        Averaging weights; a callable gets the distances (compute namespace).
    algorithm : {"auto", "ball_tree", "kd_tree", "brute"}, default="auto"
        Accepted for compatibility: xplearn computes every one by exact
        brute force on every backend, which finds the neighbours a tree
        would (``_fit_method`` is ``"brute"``).
    leaf_size : int, default=30
        Checked as scikit-learn does (>= 1), otherwise unused: no tree is built.
    p : float, default=2
        Minkowski power.
    metric : str, default="minkowski"
        Any metric of :func:`xplearn.metrics.pairwise_distances`.  With
        scipy sparse data (CSR/CSC fit data and/or queries): euclidean/l2,
        sqeuclidean, cosine, manhattan/cityblock/l1, minkowski with p = 1
        or 2, a callable (handed sparse rows, as scikit-learn does) or
        "precomputed" (a sparse neighbours graph: only its stored entries
        are neighbours); other metrics raise ``ValueError``.  Sparse data is
        searched a tile at a time, each tile densified for the dense
        kernels, so the neighbours and distances are those of
        ``X.toarray()`` (ties to the lower index) without densifying ``X``.
    metric_params : dict, optional
        May hold ``p``.
    n_jobs : int, optional
        Unused, for compatibility.

    Examples
    --------
    >>> import numpy as np
    >>> from xplearn.neighbors import KNeighborsRegressor
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> KNeighborsRegressor(n_neighbors=2).fit(X, [0.0, 0.0, 1.0, 1.0]).predict(X[:1])
    array([0.])
    """

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    @takes_torch_sparse
    def fit(self, X: Any, y: Any) -> KNeighborsRegressor:
        """Store the training data and targets.

        Parameters
        ----------
        X : array or sparse matrix of shape (n_samples, n_features)
            Any supported framework, or a scipy sparse matrix or array
            (CSR/CSC, kept as CSR on the host; see the class notes).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Numeric targets; they follow ``X`` to its framework and device.

        Returns
        -------
        self : KNeighborsRegressor
        """
        from xplearn._labels import check_targets

        edge, Xc = self._fit_state(X)
        _check_weights(self.weights)
        y2, self.outputs_2d_ = check_targets(y, edge, Xc.shape[0], numeric=True)
        xp = Edge.of(y2)[0].xp
        self._y = xp.astype(y2, Xc.dtype) if y2.dtype != Xc.dtype else y2
        return self

    @takes_torch_sparse
    @traced_method
    def predict(self, X: Any) -> Any:
        """Predict the (weighted) mean target of the neighbours.

        Jittable: a jax tracer ``X`` is answered inside ``jax.jit``.

        Parameters
        ----------
        X : array or sparse matrix of shape (n_queries, n_features) or None
            Any supported framework or scipy sparse; None: leave-one-out predictions of
            the training points (each without itself), as scikit-learn.

        Returns
        -------
        y : array of shape (n_queries,) or (n_queries, n_outputs)
            In the query's framework and device.
        """
        edge, _, dist, ind = self._loo_or_query(X)
        return edge.to_caller(self.average_of(dist, ind, edge.xp))

    def average_of(self, dist: Any, ind: Any, xp: Any) -> Any:
        """Weighted mean target of the neighbours ``(dist, ind)``."""
        from xplearn._labels import neighbor_weights

        k = ind.shape[1]
        Y = to_namespace(self._y, xp, device=device_of(ind))
        n, n_out = ind.shape[0], Y.shape[1]
        neigh = xp.reshape(xp.take(Y, xp.reshape(ind, (-1,)), axis=0), (n, k, n_out))
        w = neighbor_weights(dist, self.weights, xp)
        if w is None:
            pred = xp.mean(neigh, axis=1)
        else:
            w = xp.astype(w, neigh.dtype)[:, :, None]
            pred = xp.sum(neigh * w, axis=1) / xp.sum(w, axis=1)
        return pred if self.outputs_2d_ else pred[:, 0]

    @takes_torch_sparse
    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Coefficient of determination R² of the prediction, as scikit-learn.

        Parameters
        ----------
        X : array of shape (n_queries, n_features) or None
            Any supported framework; None: leave-one-out on the training set.
        y : array-like of shape (n_queries,) or (n_queries, n_outputs)
            True targets.
        sample_weight : array-like of shape (n_queries,), optional
            Weights of the queries.

        Returns
        -------
        score : float
        """
        from sklearn.metrics import r2_score

        what = f"{type(self).__name__}.score (it compares with y on the host)"
        check_not_traced(X, "X", what)
        return _host_score(r2_score, y, self.predict(X), sample_weight)


class RadiusNeighborsRegressor(
    RegressorMixin,  # type: ignore[misc]
    _RadiusSupervised,
    SklearnRadiusNeighborsMixin,  # type: ignore[misc]
):
    """Mean target of the neighbours within a radius, on any backend (scikit-learn's).

    Distances are computed in the framework and on the device of the fit
    data.  Each query's neighbours are a ragged list, which lives on the host
    as :meth:`radius_neighbors`' object arrays do: the averages are taken
    there and the answers moved to the query's framework and device.  Fitted
    on dask, the fit data stays on the workers: each call computes the pairs
    within the radius blockwise there (one ``compute``), averages on the host
    and returns dask arrays (computed, not lazy: the no-neighbour warning
    depends on the neighbours found).

    Parameters
    ----------
    radius : float, default=1.0
        Range of the neighbourhoods (points on the boundary are in).
    weights : {"uniform", "distance"}, callable or None, default="uniform"
        Averaging weights; a callable gets a numpy object array holding each
        query's distances as a numpy array (scikit-learn's convention) and
        returns the weights in the same shape.
    algorithm : {"auto", "ball_tree", "kd_tree", "brute"}, default="auto"
        Accepted for compatibility: xplearn computes every one by exact
        brute force on every backend, which finds the neighbours a tree
        would (``_fit_method`` is ``"brute"``).
    leaf_size : int, default=30
        Checked as scikit-learn does (>= 1), otherwise unused: no tree is built.
    p : float, default=2
        Minkowski power.
    metric : str, default="minkowski"
        Any metric of :func:`xplearn.metrics.pairwise_distances`.
    metric_params : dict, optional
        May hold ``p``.
    n_jobs : int, optional
        Unused, for compatibility.

    Attributes
    ----------
    outputs_2d_ : bool
    n_features_in_ : int
    n_samples_fit_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from xplearn.neighbors import RadiusNeighborsRegressor
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> reg = RadiusNeighborsRegressor(radius=1.0).fit(X, [0.0, 0.0, 1.0, 1.0])
    >>> reg.predict(np.array([[1.5]]))
    array([0.5])
    """

    def __init__(
        self,
        radius: float = 1.0,
        *,
        weights: Any = "uniform",
        algorithm: str = "auto",
        leaf_size: int = 30,
        p: float = 2,
        metric: str = "minkowski",
        metric_params: dict[str, Any] | None = None,
        n_jobs: int | None = None,
    ) -> None:
        self.radius = radius
        self.weights = weights
        self.algorithm = algorithm
        self.leaf_size = leaf_size
        self.p = p
        self.metric = metric
        self.metric_params = metric_params
        self.n_jobs = n_jobs

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    @takes_torch_sparse
    def fit(self, X: Any, y: Any) -> RadiusNeighborsRegressor:
        """Store the training data and targets.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Any supported framework.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Numeric targets; they follow ``X`` to its framework and device.

        Returns
        -------
        self : RadiusNeighborsRegressor
        """
        from xplearn._labels import check_targets

        edge, Xc = self._fit_state(X)
        self._check_radius_params()
        y2, self.outputs_2d_ = check_targets(y, edge, Xc.shape[0], numeric=True)
        xp = Edge.of(y2)[0].xp
        self._y = xp.astype(y2, Xc.dtype) if y2.dtype != Xc.dtype else y2
        return self

    @takes_torch_sparse
    def predict(self, X: Any) -> Any:
        """Predict the (weighted) mean target of the neighbours in the radius.

        A query without neighbours is predicted NaN, with scikit-learn's
        warning.

        Parameters
        ----------
        X : array of shape (n_queries, n_features) or None
            Any supported framework; None: leave-one-out predictions of the
            training points (each without itself), as scikit-learn.

        Returns
        -------
        y : array of shape (n_queries,) or (n_queries, n_outputs)
            In the query's framework and device, in the fit data's floating
            dtype.
        """
        import warnings

        import numpy as np

        from xplearn._convert import to_numpy

        from ._radius import radius_rows, radius_weights

        edge, dev, dists, inds = radius_rows(self, X, None, sort_results=False)
        n_q = len(inds)
        lengths = np.array([len(i) for i in inds], dtype=np.int64)
        rows = np.repeat(np.arange(n_q), lengths)
        cols = np.concatenate(inds) if inds else np.zeros(0, np.int64)
        Y = np.asarray(to_numpy(self._y))
        w = radius_weights(dists, self.weights)
        w = np.ones(len(cols)) if w is None else w
        total = np.bincount(rows, weights=w, minlength=n_q)
        if np.any((total == 0) & (lengths > 0)):
            # numpy.average's error, which scikit-learn's predict raises.
            msg = "Weights sum to zero, can't be normalized"
            raise ZeroDivisionError(msg)
        sums = np.stack(
            [
                np.bincount(
                    rows, weights=w * Y[cols, j].astype(np.float64), minlength=n_q
                )
                for j in range(Y.shape[1])
            ],
            axis=1,
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            pred = sums / total[:, None]
        empty = lengths == 0
        if empty.any():
            pred[empty] = np.nan
            warnings.warn(
                "One or more samples have no neighbors within specified radius; "
                "predicting NaN.",
                UserWarning,
                stacklevel=2,
            )
        pred = pred.astype(Y.dtype)
        out = to_namespace(
            pred if self.outputs_2d_ else pred[:, 0], edge.xp, device=dev
        )
        return edge.to_caller(out)

    @takes_torch_sparse
    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Coefficient of determination R² of the prediction, as scikit-learn.

        Parameters
        ----------
        X : array or sparse matrix of shape (n_queries, n_features) or None
            Any supported framework or scipy sparse; None: leave-one-out on the training
            set.
        y : array-like of shape (n_queries,) or (n_queries, n_outputs)
            True targets.
        sample_weight : array-like of shape (n_queries,), optional
            Weights of the queries.

        Returns
        -------
        score : float
        """
        from sklearn.metrics import r2_score

        return _host_score(r2_score, y, self.predict(X), sample_weight)
