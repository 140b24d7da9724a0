"""Neighbours regression: :class:`KNeighborsRegressor`."""

from __future__ import annotations

from typing import Any

from sklearn.base import RegressorMixin

from xplearn._convert import to_namespace
from xplearn._dispatch import Edge
from xplearn._namespace import device_of
from xplearn._tensorflow import graph_method

from ._base import (
    SklearnKNeighborsMixin,
    _check_weights,
    _host_score,
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

    @graph_method
    def predict(self, X: Any) -> Any:
        """Predict the (weighted) mean target of the neighbours.

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
        from xplearn._labels import neighbor_weights

        edge, _, dist, ind = self._loo_or_query(X)
        xp = edge.xp
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
        return edge.to_caller(pred if self.outputs_2d_ else pred[:, 0])

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
