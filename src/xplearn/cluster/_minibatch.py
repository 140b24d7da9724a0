"""Mini-batch K-Means: :class:`MiniBatchKMeans` (scikit-learn's update rule)."""

from __future__ import annotations

import math
import numbers
import warnings
from types import ModuleType
from typing import Any

from xplearn._dispatch import Edge
from xplearn._namespace import device_of
from xplearn._primitives import segment_sums, sq_row_norms
from xplearn._scaling import ldexp, scale_exponent, times_pow2
from xplearn._sparse import takes_torch_sparse
from xplearn._validation import check_fit_input, check_query
from xplearn.neighbors._search import nearest_center

from . import _dask, _sparse
from ._checks import (
    _check_n_clusters,
    _check_sample_weight,
    _is_int,
    _tolerance,
)
from ._init import _check_random_state, _host_floats
from ._kmeans import KMeans


def _nearest(X: Any, C: Any, xp: ModuleType) -> tuple[Any, Any]:
    """Labels and squared distances to the nearest centres; X dense or CSR."""
    if _sparse.is_scipy_sparse(X):
        return _sparse.sparse_assign(X, C)
    return nearest_center(X, C, xp)


def _rows(X: Any, idx: Any, xp: ModuleType) -> Any:
    """Rows ``idx`` (host integers) of ``X``; a CSR ``X`` stays CSR."""
    if _sparse.is_scipy_sparse(X):
        return X[idx]
    return xp.take(X, xp.asarray(idx, device=device_of(X)), axis=0)


class MiniBatchKMeans(KMeans):
    """Mini-batch K-Means on any backend (scikit-learn's API and update rule).

    Takes any supported framework, or a scipy sparse matrix or array (CSR
    or CSC, kept sparse on the host; each mini-batch is a sparse product with
    the centres, as scikit-learn computes it).

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

    # Fitted on a torch sparse tensor: the labels come back as torch; the
    # centres stay numpy with the host state partial_fit goes on from.
    _torch_sparse_fitted = ("labels_",)

    _default_n_init = 3

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
            warnings.warn(
                f"init_size={init_size} should be larger than n_clusters="
                f"{self.n_clusters}. Setting it to min(3*n_clusters, n_samples)",
                RuntimeWarning,
                stacklevel=3,
            )
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
            idx = rs.randint(0, n, init_size)
            X, w = _rows(X, idx, xp), _rows(w, idx, xp)
        if _sparse.is_scipy_sparse(X):
            return _sparse.init_centers(
                self, X, _sparse.sq_norms(X), w, rs, edge, given
            ).astype(X.dtype)
        return self._init_centers(X, sq_row_norms(X, xp), w, rs, xp, edge, given)

    def _scaled(self, Xc: Any, edge: Edge, *, first: bool) -> tuple[Any, Any]:
        """``X`` in the frame the steps run in, and the array ``init`` there.

        The frame is ``X · 2**-e`` (see ``_scaling``), ``e`` fixed by the first
        data seen; the fitted centres are moved into it for the steps and
        back by :meth:`_finish`.
        """
        xp = edge.xp
        given = None
        if _sparse.is_scipy_sparse(Xc):  # CSR: scikit-learn's arithmetic, unscaled
            if first:
                self._scale = 0
                given = self._init_array(Xc, edge)
            return Xc, given
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
        if _sparse.is_scipy_sparse(X):
            self._tol = _sparse.tolerance(X, self.tol) if self.tol else 0.0
        else:
            self._tol = _tolerance(X, self.tol, xp)
        self._rs = _check_random_state(self.random_state)
        if not validate:  # partial_fit: one initialisation, as scikit-learn
            self.cluster_centers_ = self._init_subset(
                X, w, self._rs, self._init_size, xp, edge, given
            )
        else:
            valid = self._rs.randint(0, n, self._init_size)
            X_valid, w_valid = _rows(X, valid, xp), _rows(w, valid, xp)
            best, best_inertia = None, math.inf
            for _ in range(n_init):
                centers = self._init_subset(
                    X, w, self._rs, self._init_size, xp, edge, given
                )
                _, dist = _nearest(X_valid, centers, xp)
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
        labels, dist = _nearest(Xb, centers, xp)
        if _sparse.is_scipy_sparse(Xb):
            sums, wsum = _sparse.segment_sums(Xb, labels, wb, self.n_clusters)
        else:
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
                mask = xp.asarray(to_reassign, device=device_of(centers))
                new_rows = _rows(Xb, src, xp)
                if _sparse.is_scipy_sparse(new_rows):
                    new_rows = new_rows.toarray()
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
        if _sparse.is_scipy_sparse(X):
            import numpy as np
            from sklearn.utils.validation import validate_data

            if reset:
                Xc = _sparse.check_sparse(X)
                validate_data(self, Xc, skip_check_array=True, reset=True)
            else:
                Xc = _sparse.query_sparse(self, X)[0]
            edge = Edge.of(np.zeros((1, 1), dtype=Xc.dtype))[0]
            w = _check_sample_weight(sample_weight, edge, Xc.shape[0], Xc.dtype)
            return edge, Xc, w
        if reset:
            edge, Xc = check_fit_input(self, X)
        else:
            edge, Xc = check_query(self, X, self.cluster_centers_)
        w = _check_sample_weight(sample_weight, edge, Xc.shape[0], Xc.dtype)
        return edge, Xc, w

    @takes_torch_sparse
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> MiniBatchKMeans:
        """Compute the centres by mini-batch steps over ``X``.

        Parameters
        ----------
        X : array or sparse matrix of shape (n_samples, n_features)
            Any supported framework, or a scipy sparse matrix or array
            (CSR/CSC).
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative, not all zero.

        Returns
        -------
        self : MiniBatchKMeans
        """
        if _dask.is_dask(X):  # batches gathered by index (issue 14)
            return _dask.fit_minibatch(self, X, sample_weight)  # type: ignore[no-any-return]
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
            inertia = self._step(
                _rows(Xc, drawn, xp), unit, xp, self._random_reassign(xp)
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
            self.labels_, dist = _nearest(Xc, self.cluster_centers_, xp)
            self.inertia_ = ldexp(float(xp.sum(dist * w)), 2 * e)
        elif self._ewa_inertia is not None:
            self.inertia_ = ldexp(self._ewa_inertia * total, 2 * e)
        self.cluster_centers_ = times_pow2(self.cluster_centers_, e, xp)

    @takes_torch_sparse
    def partial_fit(
        self, X: Any, y: Any = None, sample_weight: Any = None
    ) -> MiniBatchKMeans:
        """Update the centres with one mini-batch ``X``.

        Parameters
        ----------
        X : array or sparse matrix of shape (n_samples, n_features)
            Any supported framework or scipy sparse (CSR/CSC); the first call fixes the
            framework and device of the fitted state.
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative, not all zero.

        Returns
        -------
        self : MiniBatchKMeans
        """
        if _dask.is_dask(X):
            return _dask.partial_fit_minibatch(self, X, sample_weight)  # type: ignore[no-any-return]
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
