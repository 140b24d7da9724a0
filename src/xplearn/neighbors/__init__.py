"""Exact nearest neighbours on any backend: functions, estimators, graphs.

:func:`kneighbors` is the functional search; :class:`NearestNeighbors`,
:class:`KNeighborsClassifier`, :class:`KNeighborsRegressor`,
:class:`RadiusNeighborsClassifier`, :class:`RadiusNeighborsRegressor`,
:class:`KNeighborsTransformer` and :class:`RadiusNeighborsTransformer` are
scikit-learn estimators (same parameters, Pipeline and GridSearchCV work) that
take and return numpy, torch, jax, dask, array-api-strict or TensorFlow data;
:func:`kneighbors_graph` and :func:`radius_neighbors_graph` build sparse
neighbour graphs.  The search kernels are ``_search`` and ``_screen``.  This
package imports scikit-learn; ``import xplearn`` does not import it.
"""

from ._base import check_n_neighbors, kneighbors
from ._classification import KNeighborsClassifier, RadiusNeighborsClassifier
from ._graph import (
    KNeighborsTransformer,
    RadiusNeighborsTransformer,
    kneighbors_graph,
    radius_neighbors_graph,
)
from ._regression import KNeighborsRegressor, RadiusNeighborsRegressor
from ._unsupervised import NearestNeighbors

__all__ = [
    "KNeighborsClassifier",
    "KNeighborsRegressor",
    "KNeighborsTransformer",
    "NearestNeighbors",
    "RadiusNeighborsClassifier",
    "RadiusNeighborsRegressor",
    "RadiusNeighborsTransformer",
    "check_n_neighbors",
    "kneighbors",
    "kneighbors_graph",
    "radius_neighbors_graph",
]
