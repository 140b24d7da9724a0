"""Unsupervised nearest neighbours: :class:`NearestNeighbors`."""

from __future__ import annotations

from typing import Any

from xplearn._sparse import takes_torch_sparse

from ._base import (
    SklearnKNeighborsMixin,
    SklearnRadiusNeighborsMixin,
    _KNeighborsBase,
)


class NearestNeighbors(
    _KNeighborsBase,
    SklearnKNeighborsMixin,  # type: ignore[misc]
    SklearnRadiusNeighborsMixin,  # type: ignore[misc]
):
    """Unsupervised nearest neighbours on any backend (scikit-learn's API).

    Exact (brute-force) search in the framework and on the device of the fit
    data; the fitted ``_fit_X`` stays there.

    Parameters
    ----------
    n_neighbors : int, default=5
        Neighbours for :meth:`kneighbors`.
    radius : float, default=1.0
        Range for :meth:`radius_neighbors`.
    algorithm : {"auto", "ball_tree", "kd_tree", "brute"}, default="auto"
        Accepted for compatibility: xplearn computes every one by exact
        brute force on every backend, which finds the neighbours a tree
        would (``_fit_method`` is ``"brute"``).
    leaf_size : int, default=30
        Checked as scikit-learn does (>= 1), otherwise unused: no tree is built.
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
    p : float, default=2
        Minkowski power.
    metric_params : dict, optional
        May hold ``p``.
    n_jobs : int, optional
        Accepted for compatibility; threads follow the framework's settings.

    Attributes
    ----------
    n_features_in_ : int
    n_samples_fit_ : int
    effective_metric_ : str
    effective_metric_params_ : dict

    Examples
    --------
    >>> import numpy as np
    >>> from xplearn.neighbors import NearestNeighbors
    >>> nn = NearestNeighbors(n_neighbors=1).fit(np.array([[0.0], [1.0], [5.0]]))
    >>> nn.kneighbors(np.array([[0.8]]), return_distance=False)
    array([[1]])
    """

    @takes_torch_sparse
    def fit(self, X: Any, y: Any = None) -> NearestNeighbors:
        """Store the training data (in its own framework and device).

        Parameters
        ----------
        X : array or sparse matrix of shape (n_samples, n_features)
            Any supported framework, or a scipy sparse matrix or array
            (CSR/CSC, kept as CSR on the host; see the class notes).
        y : ignored

        Returns
        -------
        self : NearestNeighbors
        """
        self._fit_state(X)
        return self
