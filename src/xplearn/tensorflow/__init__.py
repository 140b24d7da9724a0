"""TensorFlow all the way: fitted models in graphs.

Inside ``tf.function``, a Keras layer or a ``tf.data`` map, the query
methods of fitted estimators (``NearestNeighbors.kneighbors``,
``KNeighborsClassifier.predict`` / ``predict_proba``,
``KNeighborsRegressor.predict``, ``KMeans.predict`` / ``transform`` /
``score``), fitted on any backend (numpy, torch, jax …), answer symbolic
tensors with TF-native kernels: nothing to call here, the estimators route
the call.  The answers are the eager ones (exact search, ties to the lower
index).

Importing this package loads no framework; TensorFlow is imported by the
functions that use it.  The graph kernels support the metrics
``"euclidean"`` (``"l2"``, ``"minkowski"`` with ``p=2``) and
``"sqeuclidean"``.
"""

from __future__ import annotations

__all__: list[str] = []
