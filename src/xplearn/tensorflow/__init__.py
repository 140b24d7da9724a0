"""TensorFlow all the way: fitted models in graphs, KMeans fitted in one.

* **In-graph queries.**  Inside ``tf.function``, a Keras layer or a
  ``tf.data`` map, the query methods of fitted estimators
  (``NearestNeighbors.kneighbors``, ``KNeighborsClassifier.predict`` /
  ``predict_proba``, ``KNeighborsRegressor.predict``, ``KMeans.predict`` /
  ``transform`` / ``score``), fitted on any backend (numpy, torch, jax …),
  answer symbolic tensors with TF-native kernels: nothing to call here, the
  estimators route the call.  The answers are the eager ones (exact search,
  ties to the lower index).
* **KMeans fitted in a graph**: :func:`kmeans`.

Importing this package loads no framework; TensorFlow is imported by the
functions that use it.  The graph kernels support the metrics
``"euclidean"`` (``"l2"``, ``"minkowski"`` with ``p=2``) and
``"sqeuclidean"``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["kmeans"]


def kmeans(
    X: Any,
    n_clusters: int,
    *,
    init: Any = "k-means++",
    max_iter: int = 300,
    tol: float = 1e-4,
    sample_weight: Any = None,
    seed: Any = None,
) -> tuple[Any, Any, Any, Any]:
    """K-means clustering in TensorFlow operations, usable inside ``tf.function``.

    scikit-learn's Lloyd iterations (and xplearn's :class:`~xplearn.cluster.
    KMeans`): the data is centred on its mean, ``tol`` is scaled by the mean
    feature variance, the loop (a ``tf.while_loop``) stops on strict
    convergence (labels unchanged) or when the centres move less than the
    tolerance, a last assignment makes the labels match the centres, and
    empty clusters take the points farthest from their centres.  Given the
    same initial centres the result is :class:`~xplearn.cluster.KMeans`'s
    (``n_init=1``), to float rounding.

    Parameters
    ----------
    X : tf.Tensor of shape (n_samples, n_features)
        Eager or symbolic; integers and bools compute in float32.
    n_clusters : int
        Number of clusters (a Python int: it sets shapes).
    init : {"k-means++", "random"} or array of shape (n_clusters, n_features)
        Initial centres.  ``"k-means++"`` is scikit-learn's greedy
        k-means++ and ``"random"`` picks distinct rows, both with TF's
        stateless random numbers (so they differ from the eager estimator's
        numpy draws).
    max_iter : int, default=300
        Most Lloyd iterations.
    tol : float, default=1e-4
        Centre-shift tolerance, times the mean feature variance.
    sample_weight : tf.Tensor of shape (n_samples,), optional
        Non-negative weights.
    seed : int or tf.Tensor of shape (2,), optional
        Seed of the stateless random numbers; None draws one per call.

    Returns
    -------
    centers : tf.Tensor of shape (n_clusters, n_features)
        In ``X``'s floating dtype.
    labels : tf.Tensor of shape (n_samples,)
        int64.
    inertia : tf.Tensor
        Scalar, ``X``'s dtype: the weighted sum of squared distances to the
        own centre.
    n_iter : tf.Tensor
        Scalar int32: Lloyd iterations run.

    Examples
    --------
    >>> import numpy as np
    >>> import tensorflow as tf
    >>> from xplearn.tensorflow import kmeans
    >>> X = tf.constant([[0.0], [0.2], [5.0], [5.2]])
    >>> fit = tf.function(lambda X: kmeans(X, 2, seed=0))
    >>> centers, labels, inertia, n_iter = fit(X)
    >>> sorted(round(float(c), 1) for c in centers[:, 0])
    [0.1, 5.1]
    >>> round(float(inertia), 2)
    0.04
    """
    import tensorflow as tf

    from ._kmeans import kmeans as _kmeans

    # Called as it is inside the user's tf.function: autograph would convert
    # the Python that builds the graph (tf.while_loop and all) for nothing.
    unconverted = tf.autograph.experimental.do_not_convert(_kmeans)
    fit: tuple[Any, Any, Any, Any] = unconverted(
        X,
        n_clusters,
        init=init,
        max_iter=max_iter,
        tol=tol,
        sample_weight=sample_weight,
        seed=seed,
    )
    return fit
