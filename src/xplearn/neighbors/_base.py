"""The shared half of the neighbours estimators: fit, query, graphs.

:func:`kneighbors` is the functional search; ``_NeighborsBase`` holds what
every estimator shares (fit state, the query, ``kneighbors``,
``radius_neighbors`` and their graphs).  The kernels are ``_search``.
"""

from __future__ import annotations

import numbers
import operator
from typing import Any

from sklearn.base import BaseEstimator

from xplearn._convert import to_namespace
from xplearn._dispatch import Edge
from xplearn._namespace import device_of, is_lazy
from xplearn._primitives import sqrt_rounded
from xplearn._scaling import scale_back, times_pow2
from xplearn._sparse import check_sparse, is_scipy_sparse, takes_torch_sparse
from xplearn._traced import check_not_traced, is_jax_tracer, traced_method
from xplearn._validation import check_fit_input, check_n_features, check_query
from xplearn.metrics import EUCLIDEAN, check_metric, prepare_pair
from xplearn.metrics._general import GeneralMetric, general_metric

from . import _dask
from ._brute import general_search
from ._precomputed import (
    dense_query_of_graph,
    fit_graph,
    graph_kneighbors,
    graph_query,
    is_sparse,
)
from ._search import Database, search, search_lazy
from ._sparse import (
    callable_search,
    check_sparse_metric,
    host_edge,
    sparse_search,
)
from ._sparse import scale_exponent as sparse_scale_exponent
from ._sparse_products import FittedProducts, products_search


def check_n_neighbors(n_neighbors: Any, n_samples_fit: int) -> int:
    """Return ``n_neighbors`` as an int in ``[1, n_samples_fit]`` or raise."""
    if isinstance(n_neighbors, bool):
        msg = f"n_neighbors must be an integer, got {n_neighbors!r}."
        raise TypeError(msg)
    try:
        k = operator.index(n_neighbors)
    except TypeError:
        msg = (
            f"n_neighbors does not take {type(n_neighbors).__name__} value, "
            "enter integer value"
        )
        raise TypeError(msg) from None
    if k < 1:
        msg = f"Expected n_neighbors > 0. Got {k}"
        raise ValueError(msg)
    if k > n_samples_fit:
        msg = (
            f"Expected n_neighbors <= n_samples_fit, but n_neighbors = {k}, "
            f"n_samples_fit = {n_samples_fit}, n_samples = {n_samples_fit}. "
            f"Ask for at most {n_samples_fit} neighbours or add samples."
        )
        raise ValueError(msg)
    return k


def kneighbors(
    X: Any,
    Y: Any = None,
    n_neighbors: int = 5,
    *,
    metric: str = "euclidean",
    return_distance: bool = True,
    **kwds: Any,
) -> Any:
    """Find the ``n_neighbors`` nearest rows of ``Y`` for every row of ``X``.

    Exact (brute-force) search, natively in the framework and on the device of
    ``X``; ``Y`` follows ``X``.  Memory-bounded by
    ``config_context(working_memory=...)``.  Jittable: inside ``jax.jit``
    (``X`` or ``Y`` a jax tracer) the search runs with static shapes and no
    host round trip, with the same answers, for every metric below but
    scipy's, callables and ``"precomputed"`` (``TypeError``); NaN in a
    traced input is not reported (:mod:`xplearn.jax`).

    Parameters
    ----------
    X : array of shape (n_queries, n_features)
        The queries: numpy, torch, jax, cupy, dask, array-api-strict or
        TensorFlow.
    Y : array of shape (n_samples, n_features), optional
        The points searched; defaults to ``X`` (each point is then its own
        nearest neighbour, at distance exactly 0).
    n_neighbors : int, default=5
        ``1 <= n_neighbors <= n_samples``.
    metric : str, default="euclidean"
        Any metric of :func:`xplearn.metrics.pairwise_distances`.
    return_distance : bool, default=True
        Return ``(distances, indices)``; else only ``indices``.
    **kwds
        ``p`` for ``"minkowski"``.

    Returns
    -------
    distances : array of shape (n_queries, n_neighbors)
        Ascending, in the floating dtype of ``X``.  Sparse ``X`` or ``Y``
        (scipy CSR/CSC, torch sparse on the CPU) is searched as
        :class:`NearestNeighbors` searches it, on the host; the answer is in
        the framework of ``X``.
    indices : array of shape (n_queries, n_neighbors)
        int64 row indices into ``Y``; of equal distances the lower index comes
        first, on every backend.

    Raises
    ------
    ValueError
        ``n_neighbors`` < 1 or > n_samples, feature mismatch, NaN/inf, empty
        input, unknown metric.

    Examples
    --------
    >>> import numpy as np
    >>> from xplearn.neighbors import kneighbors
    >>> Y = np.array([[0.0], [1.0], [3.0]])
    >>> dist, ind = kneighbors(np.array([[0.9]]), Y, n_neighbors=2)
    >>> ind
    array([[1, 0]])
    >>> dist.round(2)
    array([[0.1, 0.9]])
    """
    if is_jax_tracer(X) or is_jax_tracer(Y):  # inside jax.jit: static shapes
        from xplearn.jax._functional import kneighbors as traced

        return traced(X, Y, n_neighbors, metric, return_distance, kwds)
    if _is_sparse_input(X) or _is_sparse_input(Y):
        return _kneighbors_sparse(X, Y, n_neighbors, metric, return_distance, kwds)
    general = general_metric(metric, kwds)
    if general is not None:
        return _kneighbors_general(X, Y, n_neighbors, general, return_distance)
    edge, Xc, Yc, name, p, out_dtype = prepare_pair(X, Y, metric, kwds)
    xp = edge.xp
    check_n_features(Xc, Yc.shape[1], "X", by="Y")
    k = check_n_neighbors(n_neighbors, Yc.shape[0])
    if is_lazy(xp):
        dist, ind = search_lazy(Xc, Yc, k, name, p, xp)
    else:
        dist, ind = search(Xc, Yc, k, name, p, xp)
    if dist.dtype != out_dtype:
        dist = xp.astype(dist, out_dtype)
    return edge.to_caller((dist, ind) if return_distance else ind)


def _is_sparse_input(X: Any) -> bool:
    from xplearn._sparse import is_torch_sparse

    return is_scipy_sparse(X) or is_torch_sparse(X)


def _kneighbors_sparse(
    X: Any,
    Y: Any,
    n_neighbors: int,
    metric: Any,
    return_distance: bool,
    kwds: dict[str, Any],
) -> Any:
    """:func:`kneighbors` with a sparse side: :class:`NearestNeighbors`' search.

    The estimator's sparse paths (scipy CSR/CSC, torch sparse on the CPU)
    answer in the framework of ``X``; ``Y`` None searches ``X`` itself (each
    point its own nearest neighbour).
    """
    from ._unsupervised import NearestNeighbors

    params = dict(kwds)
    p = params.pop("p", 2)
    nn = NearestNeighbors(
        n_neighbors=n_neighbors, metric=metric, p=p, metric_params=params or None
    )
    nn.fit(X if Y is None else Y)
    k = check_n_neighbors(n_neighbors, nn.n_samples_fit_)
    return nn.kneighbors(X, n_neighbors=k, return_distance=return_distance)


def _kneighbors_general(
    X: Any, Y: Any, n_neighbors: int, general: GeneralMetric, return_distance: bool
) -> Any:
    """:func:`kneighbors` for the metrics of :mod:`xplearn.metrics._general`."""
    from xplearn._validation import check_array, result_dtype

    edge, Xc = Edge.of(X)
    xp = edge.xp
    in_dtype = Xc.dtype
    finite = _finite_only(general)
    Xc = check_array(Xc, xp, ensure_finite=finite)
    Yc = (
        Xc
        if Y is None
        else check_array(
            edge.follow(Y, "Y"), xp, name="Y", dtype=Xc.dtype, ensure_finite=finite
        )
    )
    n_fit = Xc.shape[1] if general.name == "precomputed" else Yc.shape[0]
    if general.name != "precomputed":
        check_n_features(Xc, Yc.shape[1], "X", by="Y")
    k = check_n_neighbors(n_neighbors, n_fit)
    dist, ind = general_search(Xc, Yc, k, general, xp)
    out = result_dtype(xp, in_dtype, Xc.dtype)
    dist = xp.astype(dist, out) if dist.dtype != out else dist
    return edge.to_caller((dist, ind) if return_distance else ind)


# --------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------


def _sklearn_kneighbors_mixin() -> Any:
    """Return scikit-learn's marker class of k-neighbours estimators.

    Code that asks ``issubclass(est, KNeighborsMixin)`` (scikit-learn's own
    tests do) must see xplearn's k-neighbours estimators as such; they list
    it last among their bases, so every method is still xplearn's.
    """
    try:
        from sklearn.neighbors._base import KNeighborsMixin
    except ImportError:  # pragma: no cover - a scikit-learn that moved it
        return type("KNeighborsMixin", (), {})
    return KNeighborsMixin


SklearnKNeighborsMixin: Any = _sklearn_kneighbors_mixin()


def _sklearn_radius_neighbors_mixin() -> Any:
    """Return scikit-learn's marker class of radius-neighbours estimators.

    scikit-learn's ``radius_neighbors_graph`` takes a fitted estimator that
    is one; listed last among the bases, as the k-neighbours marker is.
    """
    try:
        from sklearn.neighbors._base import RadiusNeighborsMixin
    except ImportError:  # pragma: no cover - a scikit-learn that moved it
        return type("RadiusNeighborsMixin", (), {})
    return RadiusNeighborsMixin


SklearnRadiusNeighborsMixin: Any = _sklearn_radius_neighbors_mixin()


_TREES = ("ball_tree", "kd_tree")
_ALGORITHMS = frozenset({"auto", "brute", *_TREES})
# The string metrics scikit-learn's trees take: a tree algorithm with another
# is refused as scikit-learn refuses it, though xplearn would compute it.
_KD_METRICS = frozenset(
    {"chebyshev", "cityblock", "euclidean", "infinity", "l1", "l2", "manhattan"}
    | {"minkowski", "p"}
)
_TREE_METRICS = {
    "kd_tree": _KD_METRICS,
    "ball_tree": _KD_METRICS
    | {"braycurtis", "canberra", "dice", "hamming", "haversine", "jaccard"}
    | {"mahalanobis", "rogerstanimoto", "russellrao", "seuclidean"}
    | {"sokalmichener", "sokalsneath"},
}


class _NeighborsBase(BaseEstimator):  # type: ignore[misc]
    """Fit, query and ``radius_neighbors`` shared by the estimators."""

    def __init__(
        self,
        n_neighbors: int = 5,
        radius: float = 1.0,
        *,
        algorithm: str = "auto",
        leaf_size: int = 30,
        metric: str = "minkowski",
        p: float = 2,
        metric_params: dict[str, Any] | None = None,
        n_jobs: int | None = None,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.radius = radius
        self.algorithm = algorithm
        self.leaf_size = leaf_size
        self.metric = metric
        self.p = p
        self.metric_params = metric_params
        self.n_jobs = n_jobs

    def __getstate__(self) -> dict[str, Any]:
        # The search's operand of the fitted rows is rebuilt at the first
        # search after unpickling, not stored twice the size of the data.
        state: dict[str, Any] = super().__getstate__()
        if state.get("_database") is not None:
            state = {**state, "_database": None}
        return state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = True
        # A precomputed X is samples × samples: cross-validation must cut its
        # columns too (scikit-learn's _safe_split reads this tag).
        tags.input_tags.pairwise = self.metric == "precomputed"
        return tags

    # -- validation ---------------------------------------------------------

    def _metric(self) -> tuple[str, float]:
        """Check ``algorithm``, ``leaf_size`` and the metric; canonical (name, p).

        Every algorithm is computed by exact brute force: a tree would find
        the same neighbours, so ``"ball_tree"`` and ``"kd_tree"`` are accepted
        and refused only where scikit-learn's trees refuse (0 < p < 1).
        """
        import warnings

        if self.algorithm not in _ALGORITHMS:
            msg = (
                f"The 'algorithm' parameter of {type(self).__name__} must be a str "
                f"among {sorted(_ALGORITHMS)}. Got {self.algorithm!r} instead."
            )
            raise ValueError(msg)
        leaf: object = self.leaf_size
        if isinstance(leaf, bool) or not isinstance(leaf, numbers.Integral) or leaf < 1:
            msg = (
                f"The 'leaf_size' parameter of {type(self).__name__} must be an int "
                f"in the range [1, inf). Got {self.leaf_size!r} instead."
            )
            raise ValueError(msg)
        trees = _TREE_METRICS.get(self.algorithm)
        named = isinstance(self.metric, str)
        if trees is not None and named and self.metric not in trees:
            msg = (
                f"Metric '{self.metric}' not valid for algorithm "
                f"'{self.algorithm}': use algorithm='brute' or 'auto'."
            )
            raise ValueError(msg)
        params = dict(self.metric_params or {})
        p = self.p
        if "p" in params:
            if self.p is not None:  # scikit-learn warns even for the default
                warnings.warn(
                    "Parameter p is found in metric_params. The corresponding "
                    "parameter from __init__ is ignored.",
                    SyntaxWarning,
                    stacklevel=3,
                )
            p = params.pop("p")
        minkowski = self.metric in ("minkowski", "p")
        self._general_metric = general_metric(
            self.metric, {**params, "p": p} if minkowski else params
        )
        if self._general_metric is not None:
            return self._general_metric.name, 2.0
        if self.metric == "minkowski" and isinstance(p, int | float) and 0 < p < 1:
            if self.algorithm in _TREES:
                msg = (
                    f'algorithm="{self.algorithm}" does not support 0 < p < 1 for '
                    "the Minkowski metric. To resolve this problem either "
                    'set p >= 1 or algorithm="brute".'
                )
                raise ValueError(msg)
            warnings.warn(
                "Mind that for 0 < p < 1, Minkowski metrics are not distance "
                "metrics. Continuing the execution with `algorithm='brute'`.",
                UserWarning,
                stacklevel=3,
            )
        return check_metric(self.metric, p if minkowski else None)

    def _fit_state(self, X: Any) -> tuple[Edge, Any]:
        name, p = self._metric()
        general = self._general_metric
        precomputed = general is not None and general.name == "precomputed"
        self._products: FittedProducts | None = None
        self._database: Database | None = None
        if precomputed and is_sparse(X):
            # A sparse graph (a neighbours transformer's) stays scipy CSR.
            edge, Xc = fit_graph(self, X)
        elif is_scipy_sparse(fitted_data(X)):
            # CSR/CSC data is kept as CSR on the host; queries search it a
            # tile at a time (``_sparse``).
            edge, Xc = self._sparse_fit_input(fitted_data(X), name)
        elif _dask.is_dask(X) and general is None:
            # The fit data stays in its blocks (issue 14); the general metrics
            # search on the host.
            edge, Xc = _dask.fit_input(self, X)
        else:
            edge, Xc = check_fit_input(
                self, fitted_data(X), ensure_finite=_finite_only(general)
            )
        if precomputed and not is_sparse(Xc):
            check_precomputed(Xc, edge.xp)
        self._fit_X = Xc
        if general is None and name in EUCLIDEAN and not is_sparse(Xc):
            # Made at fit, so that a search leaves the estimator's attributes
            # as they are (scikit-learn's check_dict_unchanged); the search's
            # operand in it is built by the first search.  (None on dask and
            # jax, whose searches keep nothing.)
            self._database = Database.of(Xc, edge.xp, None)
        self.n_samples_fit_ = int(Xc.shape[0])
        self.effective_metric_ = name
        self.effective_metric_params_ = {"p": p} if name == "minkowski" else {}
        if general is not None:
            self.effective_metric_ = self.metric
            self.effective_metric_params_ = dict(general.params)
        # What scikit-learn's auto would pick may be a tree; xplearn always
        # searches by brute force (the same exact neighbours).
        self._fit_method = "brute"
        # The radius estimators have no n_neighbors.
        k: object = getattr(self, "n_neighbors", None)
        if isinstance(k, numbers.Integral) and int(k) < 1:
            msg = f"Expected n_neighbors > 0. Got {self.n_neighbors}"
            raise ValueError(msg)
        return edge, Xc

    def _sparse_fit_input(self, X: Any, name: str) -> tuple[Edge, Any]:
        """Check scipy sparse fit data: (a host Edge, X as CSR)."""
        import warnings

        from sklearn.utils.validation import validate_data

        if self.algorithm in _TREES:
            warnings.warn(
                "cannot use tree with sparse input: using brute force",
                UserWarning,
                stacklevel=4,
            )
        check_sparse_metric(self.metric, name, self._general_metric)
        Xc = check_sparse(X)
        validate_data(self, Xc, skip_check_array=True, reset=True)
        if self._general_metric is None and name in {*EUCLIDEAN, "cosine"}:
            # The sparse-product search's screen of the fitted rows, built once.
            self._products = FittedProducts(Xc, name)
        return host_edge(Xc.dtype), Xc

    def _precomputed(self) -> bool:
        general = self._general_metric
        return general is not None and general.name == "precomputed"

    def _fit_edge(self) -> tuple[Edge, Any]:
        """Edge of the fitted data and that data (X=None: leave-one-out)."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "_fit_X")
        if is_scipy_sparse(self._fit_X):
            return host_edge(self._fit_X.dtype), self._fit_X
        return Edge.of(self._fit_X)

    def _sparse_query(self, X: Any) -> tuple[Edge, Any]:
        """Check a query where the query or the fit data is scipy sparse.

        A sparse query stays CSR (in the fit data's dtype where that is
        sparse); against dense fit data it is densified a tile at a time in
        that data's namespace.  A dense query against sparse fit data is
        moved to the host, where the fit data is.
        """
        import numpy as np
        from sklearn.utils.validation import validate_data

        F = self._fit_X
        general = self._general_metric
        if not is_scipy_sparse(X):
            host = np.zeros((1, 1), dtype=F.dtype)
            edge, Xc = check_query(self, X, host, ensure_finite=_finite_only(general))
            if self._precomputed():
                check_precomputed(Xc, edge.xp)
            return edge, Xc
        if not is_scipy_sparse(F) and self.algorithm in _TREES:
            msg = (
                f"algorithm='{self.algorithm}' does not take sparse queries (as "
                "scikit-learn's trees do not): use algorithm='brute' or 'auto', "
                "or pass dense data (X.toarray())."
            )
            raise ValueError(msg)
        check_sparse_metric(self.metric, self.effective_metric_, general)
        Xc = check_sparse(X, dtype=F.dtype if is_scipy_sparse(F) else None)
        validate_data(self, Xc, skip_check_array=True, reset=False)
        edge = host_edge(Xc.dtype)
        if not is_scipy_sparse(F):
            fit_edge = Edge.of(F)[0]
            edge = edge.computing_in(np.zeros((0, 0)), fit_edge.xp, fit_edge.device)[0]
        return edge, Xc

    def _query(self, X: Any) -> tuple[Edge, Any]:
        """Edge answering in X's framework, computing where the fit data is."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "_fit_X")
        general = self._general_metric
        if is_sparse(self._fit_X) and self._precomputed():
            # Fitted on a sparse graph, queried by a dense distance matrix.
            return dense_query_of_graph(self, X)
        if is_scipy_sparse(X) or is_scipy_sparse(self._fit_X):
            return self._sparse_query(X)
        edge, Xc = check_query(
            self, X, self._fit_X, ensure_finite=_finite_only(general)
        )
        if general is not None and general.name == "precomputed":
            check_precomputed(Xc, edge.xp)
        return edge, Xc

    def _find(self, Xc: Any, k: int, xp: Any) -> tuple[Any, Any]:
        """Return the ``k`` nearest fitted rows of each row of ``Xc``: (dist, ind)."""
        general = self._general_metric
        name, p = self.effective_metric_, self.effective_metric_params_.get("p", 2.0)
        if is_scipy_sparse(Xc) or (
            is_scipy_sparse(self._fit_X) and not self._precomputed()
        ):
            if general is not None and general.name == "callable":
                return callable_search(Xc, self._fit_X, k, general, xp)
            # Data out of the safe range is searched at one power-of-two
            # scale for all tiles (the dense search's, see ``_scaling``).
            e = 0 if general else sparse_scale_exponent(Xc, self._fit_X, name, p, xp)
            products = getattr(self, "_products", None)
            if not e and products is not None:
                return products_search(
                    Xc, products, k, squared=name == "sqeuclidean", xp=xp
                )
            # Tiles are merged on squared Euclidean distances, the order the
            # dense search ranks by (two squares an ulp apart can share a root).
            sq = "sqeuclidean" if name == "euclidean" else name

            def find(Q: Any, Y: Any, kk: int) -> tuple[Any, Any]:
                if general is not None:
                    return general_search(Q, Y, kk, general, xp)
                if e:
                    Q, Y = times_pow2(Q, -e, xp), times_pow2(Y, -e, xp)
                return search(Q, Y, kk, sq, p, xp)

            dist, ind = sparse_search(Xc, self._fit_X, k, find, xp)
            dist = sqrt_rounded(dist, xp) if sq != name else dist
            return scale_back(dist, e, name, xp), ind
        if general is not None:
            return general_search(Xc, self._fit_X, k, general, xp)
        database = None
        if name in EUCLIDEAN:
            # What the search prepares of the fitted rows, kept for the next
            # (a new one only where a torch tensor was written into).
            held = getattr(self, "_database", None)
            database = Database.of(self._fit_X, xp, held)
            if database is not held:
                self._database = database
        return search(Xc, self._fit_X, k, name, p, xp, database)

    @takes_torch_sparse
    def radius_neighbors(
        self,
        X: Any = None,
        radius: Any = None,
        return_distance: bool = True,
        sort_results: bool = False,
    ) -> Any:
        """Neighbours within ``radius`` of each point (scikit-learn semantics).

        Not jittable: the output size depends on the data (``TypeError``
        for a jax tracer); use :meth:`kneighbors` with a fixed ``n_neighbors``
        under ``jax.jit``.

        Returns numpy object arrays of per-query arrays, as scikit-learn does;
        each per-query array is in the query's framework and device, except
        for dask: a ragged answer is no dask array, so dask queries (and
        ``X=None`` on dask fit data) get per-query numpy arrays, computed when
        called.  On dask fit data the search runs per block of queries and
        block of the fit data on the workers; only the pairs within the
        radius come back to the caller, never the fit data.

        Parameters
        ----------
        X : array, optional
            Queries; None for the training points (self excluded).
        radius : float or array of shape (n_queries,), optional
            Defaults to the constructor's.  An array gives each query its own
            radius (scikit-learn takes one with its trees; xplearn with every
            algorithm).
        return_distance : bool, default=True
            Return ``(distances, indices)`` or only indices.
        sort_results : bool, default=False
            Sort each query's neighbours by distance (then index).

        Returns
        -------
        neigh_dist : ndarray of shape (n_queries,), dtype object
        neigh_ind : ndarray of shape (n_queries,), dtype object
        """
        import numpy as np

        from ._radius import radius_rows

        _check_sort(sort_results, return_distance)
        check_not_traced(
            X, "X", "radius_neighbors (its output size depends on the data)"
        )
        edge, dev, dists, inds = radius_rows(self, X, radius, sort_results)
        xp = edge.xp
        out_d = np.empty(len(dists), dtype=object)
        out_i = np.empty(len(inds), dtype=object)
        for i, (d, ix) in enumerate(zip(dists, inds, strict=True)):
            # One by one: slice assignment would make numpy convert each array.
            if edge.caller == "dask":
                # Computed numpy arrays: a ragged answer is no dask array,
                # and a one-block dask array per query costs ~60 us each.
                out_d[i], out_i[i] = d, ix
                continue
            out_d[i] = edge.to_caller(to_namespace(d, xp, device=dev))
            out_i[i] = edge.to_caller(to_namespace(ix, xp, device=dev))
        return (out_d, out_i) if return_distance else out_i

    @takes_torch_sparse
    def radius_neighbors_graph(
        self,
        X: Any = None,
        radius: Any = None,
        mode: str = "connectivity",
        sort_results: bool = False,
    ) -> Any:
        """Sparse graph of the neighbours within ``radius`` (CSR).

        A torch query gives a ``torch.sparse_csr_tensor`` on its device; every
        other framework a ``scipy.sparse.csr_matrix`` on the host (sparse
        arrays are not in the Array API standard).  On dask fit data the
        graph is assembled from the pairs each block of queries finds within
        the radius on the workers (one ``compute``); the fit data stays there.

        Parameters
        ----------
        X : array, optional
            Queries; None for the training points (self excluded).
        radius : float or array of shape (n_queries,), optional
            Defaults to the constructor's.
        mode : {"connectivity", "distance"}
            Ones, or the distances, as values.
        sort_results : bool, default=False
            Sort each row's entries by distance.

        Returns
        -------
        graph : sparse matrix of shape (n_queries, n_samples_fit)
        """
        from ._csr import ragged_csr
        from ._radius import radius_rows

        check_not_traced(
            X, "X", "radius_neighbors_graph (its output size depends on the data)"
        )

        _check_mode(mode)
        edge, dev, dists, inds = radius_rows(self, X, radius, sort_results)
        torch_dev = dev if edge.caller == "torch" else None
        return ragged_csr(dists, inds, self.n_samples_fit_, mode, torch_dev)


class _KNeighborsBase(_NeighborsBase):
    """``kneighbors`` and its graph: the estimators that have ``n_neighbors``.

    The radius estimators have neither, as in scikit-learn.
    """

    def _search(
        self, Xc: Any, k: int, xp: Any, *, exclude_self: bool
    ) -> tuple[Any, Any]:
        """(dist, ind) in the compute namespace; ``exclude_self`` for X=None."""
        if _dask.is_dask(self._fit_X):
            name = self.effective_metric_
            p = self.effective_metric_params_.get("p", 2.0)
            return _dask.search_blocks(
                Xc, self._fit_X, k, name, p, exclude_self=exclude_self
            )
        if not exclude_self:
            return self._find(Xc, k, xp)
        dist, ind = self._find(Xc, k + 1, xp)
        # Drop each sample itself; with more duplicates at distance 0 than
        # neighbours it may be missing: drop the first column there instead
        # (scikit-learn's rule, so the answers are the same).
        n = ind.shape[0]
        rows = xp.reshape(xp.arange(n, dtype=ind.dtype, device=device_of(ind)), (n, 1))
        keep = ind != rows
        absent = xp.all(keep, axis=1, keepdims=True)
        first = xp.reshape(xp.arange(k + 1, device=device_of(ind)) == 0, (1, k + 1))
        keep = xp.where(absent, ~first, keep)
        return (
            xp.reshape(dist[keep], (n, k)),
            xp.reshape(ind[keep], (n, k)),
        )

    @takes_torch_sparse
    @traced_method
    def kneighbors(
        self,
        X: Any = None,
        n_neighbors: int | None = None,
        return_distance: bool = True,
    ) -> Any:
        """Find the K-neighbours of each point (scikit-learn semantics).

        Parameters
        ----------
        X : array of shape (n_queries, n_features), optional
            Any supported framework.  None: the training points, each
            excluded from its own neighbours.
        n_neighbors : int, optional
            Defaults to the constructor's.
        return_distance : bool, default=True
            Return ``(distances, indices)`` or only indices.

        Jittable: a jax tracer ``X`` (inside ``jax.jit``) is answered with
        static shapes and no host round trip (:mod:`xplearn.jax`).

        Returns
        -------
        neigh_dist : array of shape (n_queries, n_neighbors)
            In the query's framework and device (the fit data's for X=None).
        neigh_ind : array of shape (n_queries, n_neighbors)
            int64 indices into the training data; ties to the lower index.
        """
        k_in = self.n_neighbors if n_neighbors is None else n_neighbors
        graph = graph_query(self, X)
        if graph is not None:  # a sparse precomputed graph, read on the host
            g_edge, G = graph
            k = check_n_neighbors(k_in, self.n_samples_fit_ - (X is None))
            found = graph_kneighbors(G, k, g_edge, exclude_self=X is None)
            return g_edge.to_caller(found if return_distance else found[1])
        if X is None:
            edge, Xc = self._fit_edge()
            k = check_n_neighbors(k_in, self.n_samples_fit_ - 1)
            result = self._search(Xc, k, edge.xp, exclude_self=True)
        else:
            edge, Xc = self._query(X)
            k = check_n_neighbors(k_in, self.n_samples_fit_)
            result = self._search(Xc, k, edge.xp, exclude_self=False)
        dist, ind = result
        return edge.to_caller((dist, ind) if return_distance else ind)

    def _loo_or_query(self, X: Any) -> tuple[Edge, Any, Any, Any]:
        """(edge, Xc, dist, ind) of the query ``X``; None: leave-one-out.

        ``X=None`` is scikit-learn's leave-one-out: the training points, each
        without itself among its neighbours.
        """
        graph = graph_query(self, X)
        if graph is not None:  # a sparse precomputed graph, read on the host
            g_edge, G = graph
            k = check_n_neighbors(self.n_neighbors, self.n_samples_fit_ - (X is None))
            dist, ind = graph_kneighbors(G, k, g_edge, exclude_self=X is None)
            return g_edge, None, dist, ind
        if X is None:
            edge, Xc = self._fit_edge()
            k = check_n_neighbors(self.n_neighbors, self.n_samples_fit_ - 1)
            dist, ind = self._search(Xc, k, edge.xp, exclude_self=True)
        else:
            edge, Xc = self._query(X)
            k = check_n_neighbors(self.n_neighbors, self.n_samples_fit_)
            dist, ind = self._search(Xc, k, edge.xp, exclude_self=False)
        return edge, Xc, dist, ind

    @takes_torch_sparse
    def kneighbors_graph(
        self, X: Any = None, n_neighbors: int | None = None, mode: str = "connectivity"
    ) -> Any:
        """Sparse graph of the K-neighbours (CSR, n_queries × n_samples_fit).

        numpy and every other framework but torch: a ``scipy.sparse``
        ``csr_matrix`` on the host (sparse arrays are not in the Array API
        standard).  torch: a ``torch.sparse_csr_tensor`` on the query's device.

        Parameters
        ----------
        X : array, optional
            Queries; None for the training points (self excluded).
        n_neighbors : int, optional
            Defaults to the constructor's.
        mode : {"connectivity", "distance"}
            Ones, or the distances, as values.

        Returns
        -------
        graph : sparse matrix of shape (n_queries, n_samples_fit)
        """
        from ._csr import knn_csr

        _check_mode(mode)
        check_not_traced(X, "X", "kneighbors_graph (a sparse matrix)")
        dist, ind = self.kneighbors(X, n_neighbors, return_distance=True)
        return knn_csr(dist, ind, self.n_samples_fit_, mode)


def fitted_data(X: Any) -> Any:
    """Return the data behind a fitted neighbours estimator or tree, else ``X``.

    scikit-learn's ``fit`` takes a fitted ``NearestNeighbors`` (its own or
    xplearn's), ``BallTree`` or ``KDTree`` in place of ``X`` and reuses its
    data; xplearn searches that data by brute force.
    """
    if isinstance(X, _NeighborsBase):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(X, "_fit_X")
        return X._fit_X
    module = type(X).__module__
    if module.startswith("sklearn.neighbors"):
        if hasattr(X, "get_arrays"):  # BallTree, KDTree
            return X.get_arrays()[0]
        if hasattr(X, "_fit_X"):  # scikit-learn's fitted neighbours estimators
            return X._fit_X
    return X


def _check_mode(mode: Any) -> None:
    """Raise ``ValueError`` for a graph mode other than the two valid ones."""
    if mode not in ("connectivity", "distance"):
        msg = (
            'Unsupported mode, must be one of "connectivity", or "distance" but '
            f'got "{mode}" instead'
        )
        raise ValueError(msg)


def _finite_only(general: GeneralMetric | None) -> bool:
    """Whether the metric needs finite data (nan_euclidean takes NaN)."""
    return general is None or general.name != "nan_euclidean"


def check_precomputed(D: Any, xp: Any) -> None:
    """Raise ``ValueError`` if a precomputed distance matrix has negative values."""
    if bool(xp.any(D < 0)):
        msg = "Negative values in data passed to precomputed distance matrix."
        raise ValueError(msg)


class _SupervisedNeighbors(_KNeighborsBase):
    """Shared constructor of the classifier and the regressor (``weights``)."""

    def __init__(
        self,
        n_neighbors: int = 5,
        *,
        weights: Any = "uniform",
        algorithm: str = "auto",
        leaf_size: int = 30,
        p: float = 2,
        metric: str = "minkowski",
        metric_params: dict[str, Any] | None = None,
        n_jobs: int | None = None,
    ) -> None:
        super().__init__(
            n_neighbors=n_neighbors,
            algorithm=algorithm,
            leaf_size=leaf_size,
            metric=metric,
            p=p,
            metric_params=metric_params,
            n_jobs=n_jobs,
        )
        self.weights = weights


def _check_sort(sort_results: bool, return_distance: bool) -> None:
    """Raise scikit-learn's error for sorted results without distances."""
    if sort_results and not return_distance:
        msg = "return_distance must be True if sort_results is True."
        raise ValueError(msg)


def _check_weights(weights: Any) -> None:
    """Raise ``ValueError`` for weights other than uniform/distance/callable."""
    if weights not in ("uniform", "distance", None) and not callable(weights):
        msg = f"weights must be 'uniform', 'distance' or a callable, got {weights!r}."
        raise ValueError(msg)


def _host_score(metric: Any, y: Any, pred: Any, sample_weight: Any) -> float:
    """Compute a scikit-learn metric on host copies (a score is one float anyway)."""
    from xplearn._convert import to_numpy

    w = None if sample_weight is None else to_numpy(sample_weight)
    return float(metric(to_numpy(y), to_numpy(pred), sample_weight=w))


class _RadiusSupervised(_NeighborsBase):
    """Checks shared by the radius classifier and regressor (own constructors)."""

    def _check_radius_params(self) -> None:
        _check_weights(self.weights)
        check_radius_param(self)


def check_radius_param(est: Any) -> None:
    """Raise scikit-learn's ``ValueError`` for a ``radius`` that is not >= 0."""
    r = est.radius
    if isinstance(r, bool) or not isinstance(r, numbers.Real) or not float(r) >= 0:
        msg = (
            f"The 'radius' parameter of {type(est).__name__} must be a float in "
            f"the range [0.0, inf). Got {r!r} instead."
        )
        raise ValueError(msg)
