"""Pairwise distances on any backend, matching scikit-learn and scipy.

``_pairwise`` holds the registry of the fast metrics and their blocks (the
Euclidean family by one GEMM, the others by broadcast differences);
``_general`` the metrics beyond them (scipy's family with ``metric_params``,
callables, ``DistanceMetric`` objects, precomputed distances).
"""

from ._general import GeneralMetric, general_block, general_metric, general_pairwise
from ._pairwise import (
    EUCLIDEAN,
    METRICS,
    Pair,
    _pairwise,
    bytes_per_pair,
    check_metric,
    distance_block,
    itemsize,
    pairwise_block_rows,
    pairwise_distances,
    pairwise_scaled,
    prepare_pair,
)

__all__ = [
    "EUCLIDEAN",
    "METRICS",
    "GeneralMetric",
    "Pair",
    "_pairwise",
    "bytes_per_pair",
    "check_metric",
    "distance_block",
    "general_block",
    "general_metric",
    "general_pairwise",
    "itemsize",
    "pairwise_block_rows",
    "pairwise_distances",
    "pairwise_scaled",
    "prepare_pair",
]
