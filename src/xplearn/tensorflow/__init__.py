"""TensorFlow all the way: fitted models in graphs, SavedModel and TFLite.

Three things, for estimators fitted on any backend (numpy, torch, jax …):

* **In-graph queries.**  Inside ``tf.function``, a Keras layer or a
  ``tf.data`` map, the query methods of fitted estimators
  (``NearestNeighbors.kneighbors``, ``KNeighborsClassifier.predict`` /
  ``predict_proba``, ``KNeighborsRegressor.predict``, ``KMeans.predict`` /
  ``transform`` / ``score``) answer symbolic tensors with TF-native kernels:
  nothing to call here, the estimators route the call.  The answers are the
  eager ones (exact search, ties to the lower index).
* **KMeans fitted in a graph**: :func:`kmeans`.
* **Export**: :func:`to_module`, :func:`save` (SavedModel, loaded without
  xplearn) and :func:`to_tflite` (builtin operations only).

Importing this package loads no framework; TensorFlow is imported by the
functions that use it.  The graph kernels support the metrics
``"euclidean"`` (``"l2"``, ``"minkowski"`` with ``p=2``) and
``"sqeuclidean"``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["kmeans", "save", "to_module", "to_tflite"]


def to_module(estimator: Any) -> Any:
    """Return a fitted estimator as a ``tf.Module`` with a signature per method.

    Each method is a ``tf.function`` taking ``X`` of shape
    ``(None, n_features)`` in the fitted data's dtype (any batch size) and
    returning a dict of named outputs:

    ==========================  ============================================
    estimator                   methods → outputs
    ==========================  ============================================
    NearestNeighbors            ``kneighbors`` → ``distances``, ``indices``
    KNeighborsClassifier        ``predict`` → ``labels``; ``predict_proba``
                                → ``probabilities`` (``probabilities_j`` per
                                output); ``kneighbors``
    KNeighborsRegressor         ``predict`` → ``predictions``; ``kneighbors``
    KMeans, MiniBatchKMeans     ``predict`` → ``labels``; ``transform`` →
                                ``distances``; ``score`` → ``score``
    ==========================  ============================================

    ``n_neighbors`` and ``weights`` are those of the estimator when the
    module is made.  Indices and KMeans labels are int64; NaN or infinity in
    ``X`` stops the call with ``InvalidArgumentError``.

    Parameters
    ----------
    estimator : fitted estimator
        A fitted xplearn ``NearestNeighbors``, ``KNeighborsClassifier``,
        ``KNeighborsRegressor``, ``KMeans`` or ``MiniBatchKMeans``, fitted
        on any backend, with metric ``"euclidean"`` or ``"sqeuclidean"``.

    Returns
    -------
    module : tf.Module
        The fitted arrays are its non-trainable variables (``module.fitted``);
        a classifier's labels are ``module.classes`` (one per output).

    Raises
    ------
    sklearn.exceptions.NotFittedError
        The estimator is not fitted.
    ValueError
        A metric without a graph kernel, or ``weights`` given as a callable.
    TypeError
        Another kind of estimator.

    Examples
    --------
    >>> import numpy as np
    >>> import tensorflow as tf
    >>> from xplearn.neighbors import KNeighborsClassifier
    >>> from xplearn.tensorflow import to_module
    >>> X = np.array([[0.0], [1.0], [4.0], [5.0]], dtype=np.float32)
    >>> clf = KNeighborsClassifier(n_neighbors=3).fit(X, [0, 0, 1, 1])
    >>> module = to_module(clf)
    >>> module.predict(tf.constant([[0.5], [4.5]]))["labels"].numpy()
    array([0, 1])
    """
    from ._export import build_module

    return build_module(estimator)


def save(estimator: Any, path: Any) -> None:
    """Write a fitted estimator as a SavedModel (see :func:`to_module`).

    ``tf.saved_model.load(path)`` answers without xplearn installed; the
    signatures (``model.signatures["predict"]`` …, ``"serving_default"`` the
    first method of :func:`to_module`'s table) take ``X`` and return the
    named outputs, so TF Serving and ``saved_model_cli`` can call them.

    Parameters
    ----------
    estimator : fitted estimator
        As for :func:`to_module`.
    path : str or path-like
        Directory to write.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> import tensorflow as tf
    >>> from xplearn.cluster import KMeans
    >>> from xplearn.tensorflow import save
    >>> X = np.array([[0.0], [0.2], [5.0], [5.2]], dtype=np.float32)
    >>> km = KMeans(n_clusters=2, random_state=0).fit(X)
    >>> path = tempfile.mkdtemp()
    >>> save(km, path)
    >>> loaded = tf.saved_model.load(path)
    >>> labels = loaded.signatures["predict"](X=tf.constant([[0.1], [5.1]]))["labels"]
    >>> bool(labels[0] != labels[1])
    True
    """
    from ._export import save as _save

    _save(estimator, path)


def to_tflite(estimator: Any, path: Any = None, *, weights: str = "float32") -> bytes:
    """Convert a fitted estimator to a TFLite model (builtin operations only).

    The conversion goes through the SavedModel of :func:`to_module`, so the
    flatbuffer has one signature runner per method, with the same input
    ``X`` (any batch size) and named outputs.  In float32 the neighbours,
    labels and cluster labels are those of the estimator; a float64 fit is
    cast to float32, with a warning.  TFLite has no operation that checks
    for NaN: a NaN query gets unspecified neighbours.  Nor has it float64
    arithmetic: neighbours whose distances lie within float32's rounding of
    each other (near-duplicates) are ordered by their float32 sums, the lower
    index first among equal ones, where the estimator orders them by float64
    sums; the set of neighbours is the same unless such a run reaches the
    k-th.

    Parameters
    ----------
    estimator : fitted estimator
        As for :func:`to_module`; a classifier's labels must be numbers.
    path : str or path-like, optional
        Also write the flatbuffer there.
    weights : {"float32", "float16"}, default="float32"
        ``"float16"`` stores the fitted arrays in half precision (half the
        size); they are computed on in float32, but the points have moved, so
        near ties may change neighbours.  int8 quantisation is not offered:
        it moves the points much farther.

    Returns
    -------
    flatbuffer : bytes
        The model, for ``ai_edge_litert.interpreter.Interpreter`` (or
        ``tf.lite.Interpreter``).

    Raises
    ------
    ValueError
        String class labels (the message says how to map them to codes),
        ``weights`` other than float32 or float16, and the errors of
        :func:`to_module`.

    Examples
    --------
    >>> import numpy as np
    >>> from xplearn.neighbors import NearestNeighbors
    >>> from xplearn.tensorflow import to_tflite
    >>> X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]], dtype=np.float32)
    >>> flatbuffer = to_tflite(NearestNeighbors(n_neighbors=2).fit(X))
    >>> flatbuffer[4:8]
    b'TFL3'
    """
    from ._export import to_tflite as _to_tflite

    return _to_tflite(estimator, path, weights=weights)


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
