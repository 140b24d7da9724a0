"""A fitted estimator's state, on the host and as TF tensors, and its methods.

:func:`fitted_state` reads what the query methods need from an estimator
fitted on any backend (numpy copies on the host, checked: fitted, a metric
the graph kernels have, weights they can compute).  :class:`GraphModel`
holds that state as TF tensors (constants for a call inside ``tf.function``,
variables for an exported module) and builds the methods' graphs with
:mod:`._graph`; the hook and the export both use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._graph import Index, Scale, scale_back, scale_exponent, search

# Metrics the graph kernels answer exactly, by their canonical names
# (xplearn.metrics.check_metric: "l2" and "minkowski" with p=2 are euclidean).
GRAPH_METRICS = ("euclidean", "sqeuclidean")
_METRIC_NAMES = "'euclidean' (or 'l2', or 'minkowski' with p=2) and 'sqeuclidean'"


@dataclass
class IndexArrays:
    """Host arrays of a :class:`._graph.Index` (see there)."""

    Y: Any
    Yc: Any  # None: the same array as Y
    YY: Any
    c: Any
    yy_max: Any
    max_abs: Any
    e: int
    centred: bool


def index_arrays(Y: Any) -> IndexArrays:
    """Prepare the fitted matrix ``Y`` (numpy, float32 or float64) for search.

    The screen runs at ``Y``'s safe scale, on data centred on its mean when
    the mean lies farther from the origin than the points lie from the mean
    on average (an offset makes the screen's rounding, which grows with the
    norms, exclude fewer rows); data near the origin is not centred, so that
    the screen multiplies by ``Y`` itself and a model holds ``Y`` once.
    """
    import array_api_compat.numpy as np_xp

    from xplearn._scaling import scale_exponent as host_exponent
    from xplearn._scaling import times_pow2 as host_times_pow2

    dtype = Y.dtype
    e = host_exponent([Y], np_xp)
    Ys = host_times_pow2(Y, -e, np_xp)
    c = Ys.mean(axis=0, dtype=np.float64)
    # The mean squared distance to the mean is mean ‖y‖² − ‖c‖² (no m × d
    # temporary): centre where ‖c‖² exceeds it.
    mean_sq = float(np.einsum("ij,ij->", Ys, Ys, dtype=np.float64)) / Ys.shape[0]
    centred = 2.0 * float(c @ c) > mean_sq
    c = c.astype(dtype) if centred else np.zeros(Y.shape[1], dtype=dtype)
    Yc = Ys - c if centred else Ys
    YY = np.einsum("ij,ij->i", Yc, Yc).astype(dtype)
    return IndexArrays(
        Y=Y,
        Yc=None if Yc is Y else np.ascontiguousarray(Yc, dtype=dtype),
        YY=YY,
        c=c,
        yy_max=np.asarray(YY.max(), dtype=dtype),
        max_abs=np.asarray(np.abs(Y).max(), dtype=dtype),
        e=e,
        centred=centred,
    )


@dataclass
class FittedState:
    """What the query methods of a fitted estimator need, as host arrays.

    ``kind``: "neighbors", "classifier", "regressor" or "kmeans".  For
    neighbours the index is over the training points, for KMeans over the
    centres.
    """

    kind: str
    estimator: str
    index: IndexArrays
    metric: str
    n_features: int
    outputs_2d: bool = False
    codes: Any = None  # classifier: (n_samples, n_outputs) int32 class codes
    classes: list[Any] = field(default_factory=list)  # classifier, per output
    targets: Any = None  # regressor: (n_samples, n_outputs) in the data's dtype


def _host(x: Any) -> Any:
    from xplearn._convert import to_numpy

    return np.asarray(to_numpy(x))


def _kind(estimator: Any) -> str:
    from xplearn.cluster import KMeans
    from xplearn.neighbors import (
        KNeighborsClassifier,
        KNeighborsRegressor,
        NearestNeighbors,
    )

    for cls, kind in (
        (KNeighborsClassifier, "classifier"),
        (KNeighborsRegressor, "regressor"),
        (NearestNeighbors, "neighbors"),
        (KMeans, "kmeans"),  # MiniBatchKMeans too
    ):
        if isinstance(estimator, cls):
            return kind
    msg = (
        f"{type(estimator).__name__} has no TensorFlow graph form; xplearn."
        "tensorflow takes fitted xplearn NearestNeighbors, KNeighborsClassifier, "
        "KNeighborsRegressor, KMeans and MiniBatchKMeans."
    )
    raise TypeError(msg)


def check_metric(estimator: Any) -> str:
    """Return the fitted metric's canonical name, or raise naming the ones we have."""
    metric = str(estimator.effective_metric_)
    if metric not in GRAPH_METRICS:
        msg = (
            f"{type(estimator).__name__} was fitted with metric={metric!r}, which "
            f"has no TensorFlow graph kernel; the graph kernels support "
            f"{_METRIC_NAMES}. Fit with one of those, or call the estimator "
            "eagerly (outside tf.function, or through tf.py_function)."
        )
        raise ValueError(msg)
    return metric


def check_weights(estimator: Any) -> str:
    """Return the estimator's ``weights`` as "uniform" or "distance", or raise."""
    weights = getattr(estimator, "weights", "uniform")
    if weights in (None, "uniform"):
        return "uniform"
    if weights == "distance":
        return "distance"
    msg = (
        f"{type(estimator).__name__}(weights={weights!r}) cannot run in a "
        "TensorFlow graph: a Python callable computes on eager arrays. Use "
        "weights='uniform' or 'distance', or call the estimator eagerly."
    )
    raise ValueError(msg)


def fitted_state(estimator: Any) -> FittedState:
    """Read and check the state of a fitted estimator (host copies).

    Raises scikit-learn's ``NotFittedError`` for an estimator not fitted,
    ``TypeError`` for another kind of estimator and ``ValueError`` for a
    metric or weights the graph kernels do not have.
    """
    from sklearn.utils.validation import check_is_fitted

    kind = _kind(estimator)
    name = type(estimator).__name__
    if kind == "kmeans":
        check_is_fitted(estimator, "cluster_centers_")
        C = _float_host(estimator.cluster_centers_)
        return FittedState(
            kind, name, index_arrays(C), "euclidean", int(estimator.n_features_in_)
        )
    check_is_fitted(estimator, "_fit_X")
    metric = check_metric(estimator)
    if kind != "neighbors":
        check_weights(estimator)
    Y = _float_host(estimator._fit_X)
    state = FittedState(kind, name, index_arrays(Y), metric, int(Y.shape[1]))
    if kind == "classifier":
        state.outputs_2d = bool(estimator.outputs_2d_)
        classes = estimator.classes_ if state.outputs_2d else [estimator.classes_]
        state.classes = [_host(c) for c in classes]
        state.codes = _host(estimator._y).astype(np.int32)
    elif kind == "regressor":
        state.outputs_2d = bool(estimator.outputs_2d_)
        state.targets = _host(estimator._y).astype(Y.dtype)
    return state


def _float_host(x: Any) -> Any:
    a = _host(x)
    if a.dtype not in (np.float32, np.float64):  # never: fit keeps these two
        a = a.astype(np.float32)
    return np.ascontiguousarray(a)


class GraphModel:
    """A :class:`FittedState` as TF tensors, with the query methods' graphs.

    ``make(array, name)`` turns each host array into a tensor: ``tf.constant``
    for calls inside the user's ``tf.function`` (made eagerly, then
    captured), a non-trainable ``tf.Variable`` for an exported module (saved
    in the SavedModel's variables, frozen into constants by the TFLite
    converter).  ``n_neighbors`` and ``weights`` are arguments of the
    methods: an estimator's parameters may change after ``fit``.
    """

    def __init__(self, state: FittedState, make: Any) -> None:
        import tensorflow as tf

        self.state = state
        a = state.index
        self.dtype = tf.as_dtype(a.Y.dtype)
        Y = make(a.Y, "fit_X" if state.kind != "kmeans" else "cluster_centers")
        self.index = Index(
            Y=Y,
            Yc=Y if a.Yc is None else make(a.Yc, "screen_operand"),
            YY=make(a.YY, "screen_norms"),
            c=make(a.c, "screen_centre"),
            yy_max=make(a.yy_max, "screen_norm_max"),
            max_abs=make(a.max_abs, "max_abs"),
            scale=Scale(a.Y.dtype, int(a.Y.shape[1])),
            e=a.e,
            centred=a.centred,
        )
        self.codes: Any = None if state.codes is None else make(state.codes, "codes")
        self.classes = [tf.constant(_tf_labels(c)) for c in state.classes]
        self.targets = None if state.targets is None else make(state.targets, "y")

    # -- neighbours ------------------------------------------------------------

    def _neighbors(self, X: Any, k: int) -> tuple[Any, Any]:
        """Distances in the data's units (the fitted metric) and int32 indices."""
        import tensorflow as tf

        sq, ind, e = search(X, self.index, k)
        if self.state.metric == "euclidean":
            return scale_back(tf.sqrt(sq), e, 1, self.index), ind
        return scale_back(sq, e, 2, self.index), ind

    def kneighbors(self, X: Any, k: int) -> tuple[Any, Any]:
        """``(distances, int64 indices)`` of the ``k`` nearest training points."""
        import tensorflow as tf

        dist, ind = self._neighbors(X, k)
        return dist, tf.cast(ind, tf.int64)

    @staticmethod
    def _weights(dist: Any, weights: str) -> Any:
        """scikit-learn's neighbour weights (None for uniform)."""
        import tensorflow as tf

        if weights == "uniform":
            return None
        zero = tf.equal(dist, 0.0)
        inv = 1.0 / tf.where(zero, tf.ones_like(dist), dist)
        any_zero = tf.reduce_any(zero, axis=1, keepdims=True)
        return tf.where(any_zero, tf.cast(zero, dist.dtype), inv)

    def _votes(self, X: Any, k: int, weights: str) -> list[Any]:
        """Weighted class votes (n, n_classes) of every output."""
        import tensorflow as tf

        dist, ind = self._neighbors(X, k)
        w = self._weights(dist, weights)
        votes = []
        for j, c in enumerate(self.classes):
            codes = tf.gather(self.codes[:, j], ind)
            onehot = tf.one_hot(codes, int(c.shape[0]), dtype=dist.dtype)
            if w is not None:
                onehot = onehot * w[:, :, None]
            votes.append(tf.reduce_sum(onehot, axis=1))
        return votes

    def predict_classes(self, X: Any, k: int, weights: str) -> Any:
        """Class labels (the first of equal votes), in the labels' dtype."""
        import tensorflow as tf

        from ._graph import first_max

        preds = [
            tf.gather(c, first_max(v))
            for c, v in zip(self.classes, self._votes(X, k, weights), strict=True)
        ]
        return tf.stack(preds, axis=1) if self.state.outputs_2d else preds[0]

    def predict_proba(self, X: Any, k: int, weights: str) -> Any:
        """Vote shares per class (a list per output for multi-output)."""
        import tensorflow as tf

        probas = []
        for v in self._votes(X, k, weights):
            total = tf.reduce_sum(v, axis=1, keepdims=True)
            probas.append(
                v / tf.where(tf.equal(total, 0.0), tf.ones_like(total), total)
            )
        return probas if self.state.outputs_2d else probas[0]

    def predict_values(self, X: Any, k: int, weights: str) -> Any:
        """Predict the (weighted) mean of the neighbours' targets (the regressor)."""
        import tensorflow as tf

        dist, ind = self._neighbors(X, k)
        neigh = tf.gather(self.targets, ind)  # (n, k, n_outputs)
        w = self._weights(dist, weights)
        if w is None:
            pred = tf.reduce_mean(neigh, axis=1)
        else:
            w = w[:, :, None]
            pred = tf.reduce_sum(neigh * w, axis=1) / tf.reduce_sum(w, axis=1)
        return pred if self.state.outputs_2d else pred[:, 0]

    # -- KMeans ----------------------------------------------------------------

    def predict_clusters(self, X: Any) -> Any:
        """Index of the nearest centre (int64, ties to the lower index)."""
        import tensorflow as tf

        _, ind, _ = search(X, self.index, 1)
        return tf.cast(ind[:, 0], tf.int64)

    def transform(self, X: Any) -> Any:
        """Euclidean distances to every centre, by differences, at the safe scale."""
        import tensorflow as tf

        from ._graph import exact_sq

        e = scale_exponent(X, self.index)
        Xs = self.index.scale.times_pow2(X, -e)
        Cs = self.index.scale.times_pow2(self.index.Y, -e)
        return scale_back(tf.sqrt(exact_sq(Xs, Cs[None, :, :])), e, 1, self.index)

    def score(self, X: Any, sample_weight: Any = None) -> Any:
        """Opposite of the (weighted) inertia of ``X``: a scalar of the data's dtype."""
        import tensorflow as tf

        sq, _, e = search(X, self.index, 1)
        d = sq[:, 0]
        total = tf.reduce_sum(d if sample_weight is None else d * sample_weight)
        return -scale_back(total, e, 2, self.index)


def _tf_labels(classes: Any) -> Any:
    """Class labels as an array TF takes: strings as bytes, numbers as they are."""
    if classes.dtype.kind in "biuf":
        return classes
    return np.array([str(c).encode() for c in classes], dtype=object)
