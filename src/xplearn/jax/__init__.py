"""xplearn under ``jax.jit``: the jit-safe kernels behind the public API.

Nothing to call here: the public functions and the fitted estimators'
query methods see a jax tracer (an array inside ``jax.jit``, ``vmap`` …)
and answer it with kernels of static shapes and no host round trip, as they
answer symbolic TF tensors with :mod:`xplearn.tensorflow`'s
(:mod:`xplearn._traced` is the one dispatch of both).

Jittable (the eager answers: the same neighbours, ties to the lower index,
the same distances to float rounding, as jax arrays):

* :func:`xplearn.neighbors.kneighbors` and
  :func:`xplearn.metrics.pairwise_distances` for the metrics
  ``"euclidean"`` (``"l2"``), ``"sqeuclidean"``, ``"cosine"``,
  ``"manhattan"`` (``"cityblock"``, ``"l1"``), ``"chebyshev"`` and
  ``"minkowski"``; the other metrics raise ``TypeError``;
* fitted estimators' ``NearestNeighbors.kneighbors``,
  ``KNeighborsClassifier.predict`` / ``predict_proba`` (``predict`` with
  numeric labels), ``KNeighborsRegressor.predict``, ``KMeans.predict`` /
  ``transform`` / ``score``, for an estimator fitted (outside ``jit``) on
  any backend; its fitted arrays become constants of the trace;
* :func:`xplearn.cluster.kmeans` with an array ``init`` (``max_iter`` and
  ``tol`` as usual: a ``lax.while_loop`` over Lloyd's iterations).

Not jittable, with a ``TypeError`` that says so: ``fit`` of every estimator,
``radius_neighbors`` (its output size depends on the data),
``kneighbors_graph``, k-means++ and "random" initialisation (drawn on the
host).  Values cannot be read inside a trace, so NaN or infinity in a
traced query is not reported (it gives NaN distances).

Importing this package loads no framework.
"""

from __future__ import annotations

__all__: list[str] = []
