"""Neighbour graphs: the graph functions and the neighbours transformers.

:func:`kneighbors_graph`, :func:`radius_neighbors_graph`,
:class:`KNeighborsTransformer` and :class:`RadiusNeighborsTransformer`, as
scikit-learn's.

Graphs are sparse CSR matrices (``_csr``): a torch query gives a
``torch.sparse_csr_tensor`` on its device, every other framework a
``scipy.sparse.csr_matrix`` on the host, as scikit-learn's.  Sparse arrays
are not in the Array API standard, so this is a deliberate exception to
"output follows input" (DESIGN contract 1) for numpy's peers: jax, dask,
array-api-strict and TensorFlow queries get scipy graphs.
"""

from __future__ import annotations

from typing import Any

from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin

from xplearn._sparse import takes_torch_sparse

from ._base import (
    SklearnKNeighborsMixin,
    SklearnRadiusNeighborsMixin,
    _check_mode,
    _KNeighborsBase,
    _NeighborsBase,
    check_radius_param,
)
from ._csr import host_graph
from ._unsupervised import NearestNeighbors

_MODES = ("connectivity", "distance")


def _check_params(est: Any, metric: Any, p: Any, metric_params: Any) -> None:
    """Raise if a fitted estimator given as ``X`` has other metric parameters."""
    params = est.get_params()
    for name, value in (("metric", metric), ("p", p), ("metric_params", metric_params)):
        if value != params[name]:
            msg = (
                f"Got {value} for {name}, while the estimator has {params[name]} "
                "for the same parameter."
            )
            raise ValueError(msg)


def _query_include_self(est: Any, include_self: Any, mode: str) -> Any:
    """Return the query of a graph function: the fit data, or None (no self)."""
    if include_self == "auto":
        include_self = mode == "connectivity"
    if not isinstance(include_self, bool):
        msg = f"include_self must be a bool or 'auto', got {include_self!r}."
        raise ValueError(msg)
    return est._fit_X if include_self else None


def kneighbors_graph(
    X: Any,
    n_neighbors: int,
    *,
    mode: str = "connectivity",
    metric: str = "minkowski",
    p: float = 2,
    metric_params: dict[str, Any] | None = None,
    include_self: bool | str = False,
    n_jobs: int | None = None,
) -> Any:
    """Graph of the k nearest neighbours of each point of ``X``.

    Parameters
    ----------
    X : array of shape (n_samples, n_features) or fitted estimator
        Any supported framework, or a fitted xplearn neighbours estimator
        (its fit data and metric are used).
    n_neighbors : int
        Neighbours of each sample.
    mode : {"connectivity", "distance"}, default="connectivity"
        Ones, or the distances, as values.
    metric : str, default="minkowski"
        Any metric of :func:`xplearn.metrics.pairwise_distances`.
    p : float, default=2
        Minkowski power.
    metric_params : dict, optional
        More metric parameters.
    include_self : bool or "auto", default=False
        Whether each sample is its own first neighbour; "auto": True for
        ``mode="connectivity"``, False for ``mode="distance"``.
    n_jobs : int, optional
        Unused, for compatibility.

    Returns
    -------
    A : sparse matrix of shape (n_samples, n_samples)
        CSR: a torch sparse CSR tensor on the device of torch data, else a
        ``scipy.sparse.csr_matrix`` (see the module notes).

    Examples
    --------
    >>> import numpy as np
    >>> from xplearn.neighbors import kneighbors_graph
    >>> A = kneighbors_graph(np.array([[0.0], [3.0], [1.0]]), 2, include_self=True)
    >>> A.toarray()
    array([[1., 0., 1.],
           [0., 1., 1.],
           [1., 0., 1.]])
    """
    _check_mode(mode)
    if isinstance(X, _NeighborsBase) and not isinstance(X, _KNeighborsBase):
        msg = (
            f"X must be an array or a fitted k-neighbours estimator; "
            f"{type(X).__name__} has no kneighbors_graph."
        )
        raise TypeError(msg)
    if isinstance(X, _KNeighborsBase):
        _check_params(X, metric, p, metric_params)
        est = X
    else:
        est = NearestNeighbors(
            n_neighbors=n_neighbors,
            metric=metric,
            p=p,
            metric_params=metric_params,
            n_jobs=n_jobs,
        ).fit(X)
    query = _query_include_self(est, include_self, mode)
    graph = est.kneighbors_graph(X=query, n_neighbors=n_neighbors, mode=mode)
    return host_graph(graph, est._fit_X if X is est else X)


def radius_neighbors_graph(
    X: Any,
    radius: float,
    *,
    mode: str = "connectivity",
    metric: str = "minkowski",
    p: float = 2,
    metric_params: dict[str, Any] | None = None,
    include_self: bool | str = False,
    n_jobs: int | None = None,
) -> Any:
    """Graph of the neighbours within ``radius`` of each point of ``X``.

    Parameters
    ----------
    X : array of shape (n_samples, n_features) or fitted estimator
        Any supported framework, or a fitted xplearn neighbours estimator.
    radius : float
        Range of the neighbourhoods (points on the boundary are in).
    mode : {"connectivity", "distance"}, default="connectivity"
        Ones, or the distances, as values.
    metric : str, default="minkowski"
        Any metric of :func:`xplearn.metrics.pairwise_distances`.
    p : float, default=2
        Minkowski power.
    metric_params : dict, optional
        More metric parameters.
    include_self : bool or "auto", default=False
        Whether each sample is its own neighbour; "auto": True for
        ``mode="connectivity"``, False for ``mode="distance"``.
    n_jobs : int, optional
        Unused, for compatibility.

    Returns
    -------
    A : sparse matrix of shape (n_samples, n_samples)
        CSR: a torch sparse CSR tensor on the device of torch data, else a
        ``scipy.sparse.csr_matrix`` (see the module notes).

    Examples
    --------
    >>> import numpy as np
    >>> from xplearn.neighbors import radius_neighbors_graph
    >>> X = np.array([[0.0], [3.0], [1.0]])
    >>> radius_neighbors_graph(X, 1.5, include_self=True).toarray()
    array([[1., 0., 1.],
           [0., 1., 0.],
           [1., 0., 1.]])
    """
    _check_mode(mode)
    if isinstance(X, _NeighborsBase):
        _check_params(X, metric, p, metric_params)
        est = X
    else:
        est = NearestNeighbors(
            radius=radius,
            metric=metric,
            p=p,
            metric_params=metric_params,
            n_jobs=n_jobs,
        ).fit(X)
    query = _query_include_self(est, include_self, mode)
    graph = est.radius_neighbors_graph(query, radius, mode)
    return host_graph(graph, est._fit_X if X is est else X)


def _check_transformer_mode(est: Any) -> None:
    if est.mode not in _MODES:
        msg = (
            f"The 'mode' parameter of {type(est).__name__} must be a str among "
            f"{{'connectivity', 'distance'}}. Got {est.mode!r} instead."
        )
        raise ValueError(msg)


class KNeighborsTransformer(
    ClassNamePrefixFeaturesOutMixin,  # type: ignore[misc]
    TransformerMixin,  # type: ignore[misc]
    _KNeighborsBase,
    SklearnKNeighborsMixin,  # type: ignore[misc]
):
    """Transform ``X`` into the graph of its k nearest neighbours.

    For a ``Pipeline`` ahead of an estimator with ``metric="precomputed"``.
    With ``mode="distance"`` each row holds ``n_neighbors + 1`` entries (the
    sample itself counts as a neighbour, scikit-learn's convention).

    Parameters
    ----------
    mode : {"distance", "connectivity"}, default="distance"
        Distances, or ones, as values.
    n_neighbors : int, default=5
        Neighbours of each sample (one more with ``mode="distance"``).
    algorithm : {"auto", "ball_tree", "kd_tree", "brute"}, default="auto"
        Accepted for compatibility: computed by exact brute force.
    leaf_size : int, default=30
        Checked as scikit-learn does (>= 1), otherwise unused.
    metric : str, default="minkowski"
        Any metric of :func:`xplearn.metrics.pairwise_distances`.
    p : float, default=2
        Minkowski power.
    metric_params : dict, optional
        May hold ``p``.
    n_jobs : int, optional
        Unused, for compatibility.

    Attributes
    ----------
    n_features_in_ : int
    n_samples_fit_ : int
    effective_metric_ : str
    effective_metric_params_ : dict

    Examples
    --------
    >>> import numpy as np
    >>> from xplearn.neighbors import KNeighborsTransformer
    >>> X = np.array([[0.0], [1.0], [3.0]])
    >>> KNeighborsTransformer(n_neighbors=1).fit_transform(X).toarray()
    array([[0., 1., 0.],
           [1., 0., 0.],
           [0., 2., 0.]])
    """

    def __init__(
        self,
        *,
        mode: str = "distance",
        n_neighbors: int = 5,
        algorithm: str = "auto",
        leaf_size: int = 30,
        metric: str = "minkowski",
        p: float = 2,
        metric_params: dict[str, Any] | None = None,
        n_jobs: int | None = None,
    ) -> None:
        self.mode = mode
        self.n_neighbors = n_neighbors
        self.algorithm = algorithm
        self.leaf_size = leaf_size
        self.metric = metric
        self.p = p
        self.metric_params = metric_params
        self.n_jobs = n_jobs

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # scikit-learn's array API check wants the output in the input's
        # namespace; a graph is sparse (scipy CSR, torch sparse CSR), which
        # the standard has no array for.  The input may be any framework.
        tags.array_api_support = False
        return tags

    @takes_torch_sparse
    def fit(self, X: Any, y: Any = None) -> KNeighborsTransformer:
        """Store the training data (in its own framework and device).

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Any supported framework.
        y : ignored

        Returns
        -------
        self : KNeighborsTransformer
        """
        _check_transformer_mode(self)
        self._fit_state(X)
        self._n_features_out = self.n_samples_fit_
        return self

    @takes_torch_sparse
    def transform(self, X: Any) -> Any:
        """Graph of the neighbours of each row of ``X`` among the fit data.

        Parameters
        ----------
        X : array of shape (n_queries, n_features)
            Any supported framework.

        Returns
        -------
        Xt : sparse matrix of shape (n_queries, n_samples_fit)
            CSR (torch sparse CSR for torch, else scipy); each row holds
            ``n_neighbors`` entries, one more with ``mode="distance"``.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "_fit_X")
        add_one = self.mode == "distance"
        return self.kneighbors_graph(
            X, mode=self.mode, n_neighbors=self.n_neighbors + add_one
        )

    @takes_torch_sparse
    def fit_transform(self, X: Any, y: Any = None) -> Any:
        """Fit on ``X``, then transform it.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Any supported framework.
        y : ignored

        Returns
        -------
        Xt : sparse matrix of shape (n_samples, n_samples)
        """
        return self.fit(X).transform(X)


class RadiusNeighborsTransformer(
    ClassNamePrefixFeaturesOutMixin,  # type: ignore[misc]
    TransformerMixin,  # type: ignore[misc]
    _NeighborsBase,
    SklearnRadiusNeighborsMixin,  # type: ignore[misc]
):
    """Transform ``X`` into the graph of its neighbours within a radius.

    For a ``Pipeline`` ahead of an estimator with ``metric="precomputed"``;
    each row's entries are sorted by distance.

    Parameters
    ----------
    mode : {"distance", "connectivity"}, default="distance"
        Distances, or ones, as values.
    radius : float, default=1.0
        Range of the neighbourhoods (points on the boundary are in).
    algorithm : {"auto", "ball_tree", "kd_tree", "brute"}, default="auto"
        Accepted for compatibility: computed by exact brute force.
    leaf_size : int, default=30
        Checked as scikit-learn does (>= 1), otherwise unused.
    metric : str, default="minkowski"
        Any metric of :func:`xplearn.metrics.pairwise_distances`.
    p : float, default=2
        Minkowski power.
    metric_params : dict, optional
        May hold ``p``.
    n_jobs : int, optional
        Unused, for compatibility.

    Attributes
    ----------
    n_features_in_ : int
    n_samples_fit_ : int
    effective_metric_ : str
    effective_metric_params_ : dict

    Examples
    --------
    >>> import numpy as np
    >>> from xplearn.neighbors import RadiusNeighborsTransformer
    >>> X = np.array([[0.0], [1.0], [3.0]])
    >>> RadiusNeighborsTransformer(radius=1.5).fit_transform(X).toarray()
    array([[0., 1., 0.],
           [1., 0., 0.],
           [0., 0., 0.]])
    """

    def __init__(
        self,
        *,
        mode: str = "distance",
        radius: float = 1.0,
        algorithm: str = "auto",
        leaf_size: int = 30,
        metric: str = "minkowski",
        p: float = 2,
        metric_params: dict[str, Any] | None = None,
        n_jobs: int | None = None,
    ) -> None:
        self.mode = mode
        self.radius = radius
        self.algorithm = algorithm
        self.leaf_size = leaf_size
        self.metric = metric
        self.p = p
        self.metric_params = metric_params
        self.n_jobs = n_jobs

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # scikit-learn's array API check wants the output in the input's
        # namespace; a graph is sparse (scipy CSR, torch sparse CSR), which
        # the standard has no array for.  The input may be any framework.
        tags.array_api_support = False
        return tags

    @takes_torch_sparse
    def fit(self, X: Any, y: Any = None) -> RadiusNeighborsTransformer:
        """Store the training data (in its own framework and device).

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Any supported framework.
        y : ignored

        Returns
        -------
        self : RadiusNeighborsTransformer
        """
        _check_transformer_mode(self)
        check_radius_param(self)
        self._fit_state(X)
        self._n_features_out = self.n_samples_fit_
        return self

    @takes_torch_sparse
    def transform(self, X: Any) -> Any:
        """Graph of the neighbours within ``radius`` of each row of ``X``.

        Parameters
        ----------
        X : array of shape (n_queries, n_features)
            Any supported framework.

        Returns
        -------
        Xt : sparse matrix of shape (n_queries, n_samples_fit)
            CSR (torch sparse CSR for torch, else scipy), each row sorted by
            distance.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "_fit_X")
        return self.radius_neighbors_graph(X, mode=self.mode, sort_results=True)

    @takes_torch_sparse
    def fit_transform(self, X: Any, y: Any = None) -> Any:
        """Fit on ``X``, then transform it.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Any supported framework.
        y : ignored

        Returns
        -------
        Xt : sparse matrix of shape (n_samples, n_samples)
        """
        return self.fit(X).transform(X)
