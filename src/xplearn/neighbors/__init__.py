"""Exact k-nearest neighbours on any backend: a function and estimators.

:func:`kneighbors` is the functional search; :class:`NearestNeighbors`,
:class:`KNeighborsClassifier` and :class:`KNeighborsRegressor` are
scikit-learn estimators (same parameters, Pipeline and GridSearchCV work) that
take and return numpy, torch, jax, dask, array-api-strict or TensorFlow data.
The search kernels are ``_search`` and ``_screen``.  This package imports
scikit-learn; ``import xplearn`` does not import it.
"""

from ._base import check_n_neighbors, kneighbors
from ._classification import KNeighborsClassifier
from ._regression import KNeighborsRegressor
from ._unsupervised import NearestNeighbors

__all__ = [
    "KNeighborsClassifier",
    "KNeighborsRegressor",
    "NearestNeighbors",
    "check_n_neighbors",
    "kneighbors",
]
