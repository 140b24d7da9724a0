"""Fitted estimators' query methods called with symbolic TF tensors.

``xplearn._traced.traced_method`` sends a call whose ``X`` is symbolic
(inside ``tf.function``, a Keras layer, a ``tf.data`` map) here.  The
estimator's state becomes eager TF constants once per fitted state (made
under ``tf.init_scope`` and captured by the user's graph, never copied into
it), the query is validated as the eager path validates it, and the method's
graph is built by :class:`._model.GraphModel`.

Errors are built-in exception types raised while tracing, so they reach
the user as they are: autograph turns other classes (scikit-learn's
``NotFittedError`` among them) into its ``StagingError``.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from ._model import GraphModel, check_weights, fitted_state

# estimator → (the fitted arrays the model was built from, the model).  A
# refit replaces those arrays, and the model is built again.
_MODELS: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], GraphModel]] = (
    weakref.WeakKeyDictionary()
)
_LOCK = threading.Lock()


def _sources(estimator: Any) -> tuple[Any, ...]:
    names = ("_fit_X", "_y", "classes_", "cluster_centers_", "effective_metric_")
    return tuple(getattr(estimator, n, None) for n in names)


def model_of(estimator: Any) -> GraphModel:
    """Return the estimator's :class:`GraphModel` of eager constants, cached per fit."""
    import tensorflow as tf

    sources = _sources(estimator)
    with _LOCK:
        cached = _MODELS.get(estimator)
        if cached is not None and all(
            a is b for a, b in zip(cached[0], sources, strict=True)
        ):
            return cached[1]
    from sklearn.exceptions import NotFittedError

    try:
        state = fitted_state(estimator)
    except NotFittedError as exc:
        # NotFittedError is a ValueError: an except clause for either
        # catches this one too, eager or in a graph.
        raise ValueError(str(exc)) from None
    with tf.init_scope():  # eager constants, captured by the graph being traced
        model = GraphModel(state, lambda a, name: tf.constant(a, name=name))
    with _LOCK:
        _MODELS[estimator] = (sources, model)
    return model


def check_graph_input(
    X: Any, n_features: int, dtype: Any, estimator: str, *, finite: bool = True
) -> tuple[Any, Any]:
    """Validate a (symbolic) query and cast it to the model's dtype.

    Returns ``X`` and the dtype floating results go back in (bfloat16 and
    float16 input computes in the model's dtype and comes back in its own,
    as on the eager path), or None.  A rank or feature count known while
    tracing is checked then; the feature count of an unknown shape is
    checked when the graph runs.  ``finite``: NaN and infinity stop the
    graph with a message (``tf.debugging.check_numerics``; TFLite has no
    such operation).
    """
    import tensorflow as tf

    if isinstance(X, tf.Variable):
        X = X.value()
    X = tf.convert_to_tensor(X)
    rank = X.shape.rank
    if rank is not None and rank != 2:
        msg = (
            f"Expected 2D array, got {rank}D array instead: X has shape "
            f"{X.shape}. Reshape your data either using tf.reshape(x, [-1, 1]) "
            "if your data has a single feature or tf.reshape(x, [1, -1]) if it "
            "contains a single sample."
        )
        raise ValueError(msg)
    d = X.shape[1] if rank == 2 else None
    if d is not None and d != n_features:
        msg = (
            f"X has {d} features, but {estimator} is expecting {n_features} "
            f"features as input. Pass X with the same {n_features} columns."
        )
        raise ValueError(msg)
    X = tf.ensure_shape(X, [None, n_features])
    back = None
    if X.dtype in (tf.float16, tf.bfloat16):
        back = X.dtype
    elif X.dtype.is_complex:
        msg = (
            f"Complex data not supported (dtype {X.dtype.name}); pass real-valued data."
        )
        raise ValueError(msg)
    elif not (X.dtype.is_floating or X.dtype.is_integer or X.dtype.is_bool):
        msg = (
            f"Unsupported dtype {X.dtype.name}: xplearn needs numeric data "
            "(floats, integers or booleans). Encode string columns first, e.g. "
            "with tf.keras.layers.StringLookup."
        )
        raise ValueError(msg)
    if X.dtype != dtype:
        X = tf.cast(X, dtype)
    if finite:
        X = tf.debugging.check_numerics(
            X,
            "Input X contains NaN or infinity. Remove those samples or impute "
            "them before calling xplearn",
        )
    return X, back


def _back(result: Any, dtype: Any) -> Any:
    """Cast the floating tensors of ``result`` to ``dtype`` (None: leave them)."""
    import tensorflow as tf

    if dtype is None:
        return result
    if isinstance(result, tuple | list):
        return type(result)(_back(r, dtype) for r in result)
    return tf.cast(result, dtype) if result.dtype.is_floating else result


def _n_neighbors(estimator: Any, n_neighbors: Any) -> int:
    from xplearn.neighbors import check_n_neighbors

    k = estimator.n_neighbors if n_neighbors is None else n_neighbors
    return check_n_neighbors(k, int(estimator.n_samples_fit_))


def graph_call(estimator: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    """Answer ``estimator.method(*args, **kwargs)`` for a symbolic ``X``."""
    return _CALLS[method](estimator, *args, **kwargs)


def _kneighbors(
    estimator: Any, X: Any, n_neighbors: Any = None, return_distance: bool = True
) -> Any:
    model = model_of(estimator)
    k = _n_neighbors(estimator, n_neighbors)
    X, back = _input(model, X)
    dist, ind = model.kneighbors(X, k)
    return _back((dist, ind), back) if return_distance else ind


def _input(model: GraphModel, X: Any) -> tuple[Any, Any]:
    s = model.state
    return check_graph_input(X, s.n_features, model.dtype, s.estimator)


def _predict(estimator: Any, X: Any) -> Any:
    model = model_of(estimator)
    X, back = _input(model, X)
    kind = model.state.kind
    if kind == "kmeans":
        return model.predict_clusters(X)
    k = _n_neighbors(estimator, None)
    weights = check_weights(estimator)
    if kind == "classifier":
        return _back(model.predict_classes(X, k, weights), back)
    if kind == "regressor":
        return _back(model.predict_values(X, k, weights), back)
    msg = f"{type(estimator).__name__} has no predict."  # pragma: no cover
    raise AttributeError(msg)


def _predict_proba(estimator: Any, X: Any) -> Any:
    model = model_of(estimator)
    X, back = _input(model, X)
    weights = check_weights(estimator)
    k = _n_neighbors(estimator, None)
    return _back(model.predict_proba(X, k, weights), back)


def _transform(estimator: Any, X: Any) -> Any:
    model = model_of(estimator)
    X, back = _input(model, X)
    return _back(model.transform(X), back)


def _score(estimator: Any, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
    import tensorflow as tf

    model = model_of(estimator)
    X, back = _input(model, X)
    w = None
    if sample_weight is not None:
        w = tf.ensure_shape(tf.cast(sample_weight, model.dtype), [None])
        # An op of the traced function: automatic control dependencies run it.
        tf.debugging.assert_non_negative(
            w, message="Negative values in data passed to sample_weight"
        )
    return _back(model.score(X, w), back)


_CALLS = {
    "kneighbors": _kneighbors,
    "predict": _predict,
    "predict_proba": _predict_proba,
    "transform": _transform,
    "score": _score,
}
