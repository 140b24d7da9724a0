"""Neighbours classification: the k-neighbours and radius-neighbours classifiers."""

from __future__ import annotations

import warnings
from typing import Any

from sklearn.base import ClassifierMixin

from xplearn._convert import to_namespace
from xplearn._dispatch import Edge
from xplearn._namespace import backend_name, device_of
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


class KNeighborsClassifier(
    ClassifierMixin,  # type: ignore[misc]
    _SupervisedNeighbors,
    SklearnKNeighborsMixin,  # type: ignore[misc]
):
    """k-nearest-neighbours vote on any backend (scikit-learn's API).

    Parameters
    ----------
    n_neighbors : int, default=5
        Neighbours that vote.
    weights : {"uniform", "distance"} or callable, default="uniform"
        Vote weights; a callable gets the distances (compute namespace).
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

    Attributes
    ----------
    classes_ : array or list of arrays
        Sorted labels (per output).  Numeric labels stay in the framework and
        device of ``y`` as given to ``fit`` (moved to X's); others are numpy.
    outputs_2d_ : bool
    n_features_in_ : int
    n_samples_fit_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from xplearn.neighbors import KNeighborsClassifier
    >>> X = np.array([[0.0], [1.0], [4.0], [5.0]])
    >>> clf = KNeighborsClassifier(n_neighbors=3).fit(X, ["a", "a", "b", "b"])
    >>> clf.predict(np.array([[0.5], [4.5]]))
    array(['a', 'b'], dtype='<U1')
    """

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.classifier_tags.multi_label = True
        return tags

    @takes_torch_sparse
    def fit(self, X: Any, y: Any) -> KNeighborsClassifier:
        """Store the training data and encode the labels.

        Parameters
        ----------
        X : array or sparse matrix of shape (n_samples, n_features)
            Any supported framework, or a scipy sparse matrix or array
            (CSR/CSC, kept as CSR on the host; see the class notes).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Labels of any type: numbers in any framework, strings, booleans.

        Returns
        -------
        self : KNeighborsClassifier
        """
        from xplearn._labels import check_targets, encode_labels

        edge, Xc = self._fit_state(X)
        _check_weights(self.weights)
        y2, self.outputs_2d_ = check_targets(y, edge, Xc.shape[0], numeric=False)
        classes, self._y = encode_labels(y2)
        self.classes_ = classes if self.outputs_2d_ else classes[0]
        return self

    def _votes(self, X: Any) -> tuple[Edge, list[Any]]:
        edge, _, dist, ind = self._loo_or_query(X)
        return edge, self.votes_of(dist, ind, edge.xp)

    def votes_of(
        self, dist: Any, ind: Any, xp: Any, *, traced: bool = False
    ) -> list[Any]:
        """Weighted votes per output of the neighbours ``(dist, ind)``.

        ``traced`` (inside ``jax.jit``): the check that a callable's weights
        are not all zero, which reads values, is left out.
        """
        from xplearn._labels import class_votes, neighbor_weights

        w = neighbor_weights(dist, self.weights, xp)
        zero = (
            not traced
            and callable(self.weights)
            and bool(xp.any(xp.sum(w, axis=1) == 0))
        )
        if zero:
            msg = (
                "All neighbors of some sample is getting zero weights. "
                "Please modify 'weights' to avoid this case if you are "
                "using a user-defined function."
            )
            raise ValueError(msg)
        classes = self.classes_ if self.outputs_2d_ else [self.classes_]
        codes = to_namespace(self._y, xp, device=device_of(ind))
        return [
            class_votes(codes[:, j], ind, w, int(c.shape[0]), xp, dist.dtype)
            for j, c in enumerate(classes)
        ]

    @takes_torch_sparse
    @traced_method
    def predict(self, X: Any) -> Any:
        """Predict the class labels of ``X``.

        Jittable for numeric labels: a jax tracer ``X`` is answered inside
        ``jax.jit`` with the eager labels (:mod:`xplearn.jax`).

        Parameters
        ----------
        X : array or sparse matrix of shape (n_queries, n_features) or None
            Any supported framework or scipy sparse.  None: leave-one-out predictions of
            the training points (each without itself), as scikit-learn.

        Returns
        -------
        y : array of shape (n_queries,) or (n_queries, n_outputs)
            Numeric labels in the query's framework and device; other labels
            as numpy arrays.
        """
        import numpy as np

        from xplearn._labels import lookup

        edge, votes = self._votes(X)
        xp = edge.xp
        classes = self.classes_ if self.outputs_2d_ else [self.classes_]
        preds = [
            lookup(c, xp.argmax(v, axis=1), xp)
            for c, v in zip(classes, votes, strict=True)
        ]
        if not self.outputs_2d_:
            return edge.to_caller(preds[0])
        if any(
            backend_name(p) == "numpy" and p.dtype.kind not in "biuf" for p in preds
        ):
            from xplearn._convert import to_numpy

            return np.stack([to_numpy(p) for p in preds], axis=1)
        return edge.to_caller(xp.stack(preds, axis=1))

    @takes_torch_sparse
    @traced_method
    def predict_proba(self, X: Any) -> Any:
        """Class probabilities (vote shares) of ``X``.

        Jittable: a jax tracer ``X`` is answered inside ``jax.jit``.

        Parameters
        ----------
        X : array or sparse matrix of shape (n_queries, n_features) or None
            Any supported framework or scipy sparse; None: leave-one-out on the training
            set.

        Returns
        -------
        p : array of shape (n_queries, n_classes), or a list per output
            In the query's framework and device; columns follow ``classes_``.
        """
        edge, votes = self._votes(X)
        xp = edge.xp
        probas = []
        for v in votes:
            total = xp.sum(v, axis=1, keepdims=True)
            probas.append(v / xp.where(total == 0, xp.ones_like(total), total))
        return edge.to_caller(probas if self.outputs_2d_ else probas[0])

    @takes_torch_sparse
    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy (subset accuracy for multi-output), as scikit-learn.

        Parameters
        ----------
        X : array or sparse matrix of shape (n_queries, n_features) or None
            Any supported framework or scipy sparse; None: leave-one-out on the training
            set.
        y : array-like of shape (n_queries,) or (n_queries, n_outputs)
            True labels.
        sample_weight : array-like of shape (n_queries,), optional
            Weights of the queries.

        Returns
        -------
        score : float
        """
        from sklearn.metrics import accuracy_score

        what = f"{type(self).__name__}.score (it compares with y on the host)"
        check_not_traced(X, "X", what)
        return _host_score(accuracy_score, y, self.predict(X), sample_weight)


class RadiusNeighborsClassifier(
    ClassifierMixin,  # type: ignore[misc]
    _RadiusSupervised,
    SklearnRadiusNeighborsMixin,  # type: ignore[misc]
):
    """Vote of the neighbours within a radius, on any backend (scikit-learn's API).

    Distances are computed in the framework and on the device of the fit
    data.  Each query's neighbours are a ragged list, which lives on the host
    as :meth:`radius_neighbors`' object arrays do: the votes are counted there
    and the answers moved to the query's framework and device.  Fitted on
    dask, the fit data stays on the workers: each call computes the pairs
    within the radius blockwise there (one ``compute``), votes on the host
    and returns dask arrays (computed, not lazy: the outlier errors and
    warnings depend on the neighbours found).

    Parameters
    ----------
    radius : float, default=1.0
        Range of the neighbourhoods (points on the boundary are in).
    weights : {"uniform", "distance"}, callable or None, default="uniform"
        Vote weights; a callable gets a numpy object array holding each
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
    outlier_label : label, list of labels, "most_frequent" or None, default=None
        Label of a query without neighbours in the radius: one label (per
        output), or the most frequent training label.  None raises
        ``ValueError`` for such a query.  A label that is not a class gives
        the query all-zero probabilities, with a warning.
    metric_params : dict, optional
        May hold ``p``.
    n_jobs : int, optional
        Unused, for compatibility.

    Attributes
    ----------
    classes_ : array or list of arrays
        Sorted labels (per output).  Numeric labels stay in the framework and
        device of ``y`` as given to ``fit`` (moved to X's); others are numpy.
    outlier_label_ : list or None
        The outlier label of each output.
    outputs_2d_ : bool
    n_features_in_ : int
    n_samples_fit_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from xplearn.neighbors import RadiusNeighborsClassifier
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> clf = RadiusNeighborsClassifier(radius=1.0).fit(X, [0, 0, 1, 1])
    >>> clf.predict(np.array([[1.5]]))
    array([0])
    >>> clf.predict_proba(np.array([[1.0]])).round(3)
    array([[0.667, 0.333]])
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
        outlier_label: Any = None,
        metric_params: dict[str, Any] | None = None,
        n_jobs: int | None = None,
    ) -> None:
        self.radius = radius
        self.weights = weights
        self.algorithm = algorithm
        self.leaf_size = leaf_size
        self.p = p
        self.metric = metric
        self.outlier_label = outlier_label
        self.metric_params = metric_params
        self.n_jobs = n_jobs

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.classifier_tags.multi_label = True
        return tags

    @takes_torch_sparse
    def fit(self, X: Any, y: Any) -> RadiusNeighborsClassifier:
        """Store the training data, encode the labels, settle the outlier label.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Any supported framework.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Labels of any type: numbers in any framework, strings, booleans.

        Returns
        -------
        self : RadiusNeighborsClassifier
        """
        import numpy as np

        from xplearn._convert import to_numpy
        from xplearn._labels import check_targets, encode_labels

        edge, Xc = self._fit_state(X)
        self._check_radius_params()
        y2, self.outputs_2d_ = check_targets(y, edge, Xc.shape[0], numeric=False)
        classes, self._y = encode_labels(y2)
        self.classes_ = classes if self.outputs_2d_ else classes[0]
        host_classes = [np.asarray(to_numpy(c)) for c in classes]
        label = self.outlier_label
        if label is None:
            self.outlier_label_ = None
        elif isinstance(label, str) and label == "most_frequent":
            codes = np.asarray(to_numpy(self._y))
            self.outlier_label_ = [
                c[np.bincount(codes[:, j]).argmax()] for j, c in enumerate(host_classes)
            ]
        else:
            self.outlier_label_ = _outlier_labels(label, host_classes)
        return self

    def _proba_host(self, X: Any) -> tuple[Edge, Any, Any, list[Any]]:
        """(edge, device, compute dtype, host float64 probabilities per output)."""
        import numpy as np

        from xplearn._convert import to_numpy

        from ._radius import radius_rows, radius_weights

        edge, dev, dists, inds = radius_rows(self, X, None, sort_results=False)
        n_q = len(inds)
        lengths = np.array([len(i) for i in inds], dtype=np.int64)
        outliers = np.flatnonzero(lengths == 0)
        if self.outlier_label_ is None and outliers.size > 0:
            msg = (
                f"No neighbors found for test samples {outliers!r}, you can try "
                "using larger radius, giving a label for outliers, or considering "
                "removing them from your dataset."
            )
            raise ValueError(msg)
        w = radius_weights(dists, self.weights)
        rows = np.repeat(np.arange(n_q), lengths)
        cols = np.concatenate(inds) if inds else np.zeros(0, np.int64)
        codes = np.asarray(to_numpy(self._y))[cols]
        classes = self.classes_ if self.outputs_2d_ else [self.classes_]
        probas = []
        for j, c in enumerate(classes):
            n_c = int(c.shape[0])
            proba = np.bincount(
                rows * n_c + codes[:, j], weights=w, minlength=n_q * n_c
            ).reshape(n_q, n_c)
            proba = proba.astype(np.float64)
            if outliers.size > 0:
                assert self.outlier_label_ is not None
                label = self.outlier_label_[j]
                hit = np.flatnonzero(np.asarray(to_numpy(c)) == label)
                if hit.size == 1:
                    proba[outliers, hit[0]] = 1.0
                else:
                    warnings.warn(
                        f"Outlier label {label} is not in training classes. All "
                        "class probabilities of outliers will be assigned with 0.",
                        UserWarning,
                        stacklevel=3,
                    )
            total = proba.sum(axis=1, keepdims=True)
            total[total == 0.0] = 1.0
            probas.append(proba / total)
        dtype = dists[0].dtype if dists else np.float64
        return edge, dev, dtype, probas

    @takes_torch_sparse
    def predict(self, X: Any) -> Any:
        """Predict the class labels of ``X``.

        Parameters
        ----------
        X : array of shape (n_queries, n_features) or None
            Any supported framework.  None: leave-one-out predictions of the
            training points (each without itself), as scikit-learn.

        Returns
        -------
        y : array of shape (n_queries,) or (n_queries, n_outputs)
            Numeric labels in the query's framework and device; other labels
            as numpy arrays.  A query whose probabilities are all zero (no
            neighbours) gets ``outlier_label_``.
        """
        import numpy as np

        from xplearn._convert import to_numpy

        edge, dev, _, probas = self._proba_host(X)
        classes = self.classes_ if self.outputs_2d_ else [self.classes_]
        host = [np.asarray(to_numpy(c)) for c in classes]
        preds = []
        for j, (c, proba) in enumerate(zip(host, probas, strict=True)):
            pred = c[proba.argmax(axis=1)]
            zero = np.flatnonzero((proba == 0).all(axis=1))
            if zero.size:
                if self.outlier_label_ is None:
                    # Neighbours, but a weights callable gave them all zero.
                    msg = (
                        f"All neighbors of test samples {zero!r} get zero "
                        "weights and no outlier_label is set. Please modify "
                        "'weights' or give an outlier_label."
                    )
                    raise ValueError(msg)
                pred[zero] = self.outlier_label_[j]
            preds.append(pred)
        out = np.stack(preds, axis=1) if self.outputs_2d_ else preds[0]
        if out.dtype.kind not in "biuf":
            return out  # non-numeric labels stay numpy, as in scikit-learn
        return edge.to_caller(to_namespace(out, edge.xp, device=dev))

    @takes_torch_sparse
    def predict_proba(self, X: Any) -> Any:
        """Class probabilities (weighted vote shares) of ``X``.

        Parameters
        ----------
        X : array of shape (n_queries, n_features) or None
            Any supported framework; None: leave-one-out on the training set.

        Returns
        -------
        p : array of shape (n_queries, n_classes), or a list per output
            In the query's framework, device and floating dtype; columns
            follow ``classes_``.
        """
        edge, dev, dtype, probas = self._proba_host(X)
        out = [
            edge.to_caller(to_namespace(p.astype(dtype), edge.xp, device=dev))
            for p in probas
        ]
        return out if self.outputs_2d_ else out[0]

    @takes_torch_sparse
    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy (subset accuracy for multi-output), as scikit-learn.

        Parameters
        ----------
        X : array of shape (n_queries, n_features) or None
            Any supported framework; None: leave-one-out on the training set.
        y : array-like of shape (n_queries,) or (n_queries, n_outputs)
            True labels.
        sample_weight : array-like of shape (n_queries,), optional
            Weights of the queries.

        Returns
        -------
        score : float
        """
        from sklearn.metrics import accuracy_score

        return _host_score(accuracy_score, y, self.predict(X), sample_weight)


def _outlier_labels(label: Any, classes: list[Any]) -> list[Any]:
    """One manual outlier label per output, checked as scikit-learn checks it."""
    import numpy as np

    def arraylike(x: Any) -> bool:
        return not isinstance(x, str) and (
            hasattr(x, "__len__") or hasattr(x, "shape") or hasattr(x, "__array__")
        )

    if arraylike(label):
        if len(label) != len(classes):
            msg = (
                f"The length of outlier_label: {label} is inconsistent with the "
                f"output length: {len(classes)}"
            )
            raise ValueError(msg)
        labels = list(label)
    else:
        labels = [label] * len(classes)
    for c, lab in zip(classes, labels, strict=True):
        if arraylike(lab):
            msg = (
                f"The outlier_label of classes {c} is supposed to be a scalar, "
                f"got {lab}."
            )
            raise TypeError(msg)
        if np.append(c, lab).dtype != c.dtype:
            msg = (
                f"The dtype of outlier_label {lab} is inconsistent with classes "
                f"{c} in y."
            )
            raise TypeError(msg)
    return labels
