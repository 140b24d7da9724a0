"""Neighbours classification: :class:`KNeighborsClassifier`."""

from __future__ import annotations

from typing import Any

from sklearn.base import ClassifierMixin

from xplearn._convert import to_namespace
from xplearn._dispatch import Edge
from xplearn._namespace import backend_name, device_of
from xplearn._tensorflow import graph_method

from ._base import (
    SklearnKNeighborsMixin,
    _check_weights,
    _host_score,
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
        from xplearn._labels import class_votes, neighbor_weights

        edge, _, dist, ind = self._loo_or_query(X)
        xp = edge.xp
        w = neighbor_weights(dist, self.weights, xp)
        zero = w is not None and bool(xp.any(xp.sum(w, axis=1) == 0))
        if zero and callable(self.weights):
            msg = (
                "All neighbors of some sample is getting zero weights. "
                "Please modify 'weights' to avoid this case if you are "
                "using a user-defined function."
            )
            raise ValueError(msg)
        classes = self.classes_ if self.outputs_2d_ else [self.classes_]
        codes = to_namespace(self._y, xp, device=device_of(ind))
        votes = [
            class_votes(codes[:, j], ind, w, int(c.shape[0]), xp, dist.dtype)
            for j, c in enumerate(classes)
        ]
        return edge, votes

    @graph_method
    def predict(self, X: Any) -> Any:
        """Predict the class labels of ``X``.

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

    @graph_method
    def predict_proba(self, X: Any) -> Any:
        """Class probabilities (vote shares) of ``X``.

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

        return _host_score(accuracy_score, y, self.predict(X), sample_weight)
