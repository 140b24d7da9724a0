"""Exact search for the metrics the fast kernels do not take.

The metrics of :mod:`xplearn.metrics._general` (scipy's family with
``metric_params``, callables, ``DistanceMetric`` objects) and precomputed
distances: each block of query rows gets its full row of distances (sized by
the working-memory budget) and keeps its ``k`` smallest, ties to the lower
index (:func:`xplearn._primitives.topk_smallest`).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from xplearn._primitives import topk_smallest
from xplearn.metrics._general import (
    GeneralMetric,
    general_block,
    general_rows,
    with_defaults,
)


def general_search(
    X: Any, Y: Any, k: int, g: GeneralMetric, xp: ModuleType
) -> tuple[Any, Any]:
    """Return the ``k`` nearest rows of ``Y`` to each row of ``X``: (dist, ind).

    For ``"precomputed"``, ``X`` holds the distances to the rows of ``Y``.
    """
    n = X.shape[0]
    if g.name == "precomputed":
        rows = max(1, min(n, 2**24 // max(1, int(X.shape[1]))))
    else:
        g = with_defaults(g, X, Y, xp)
        rows = general_rows(X, Y, xp)
    dists, inds = [], []
    for i in range(0, n, rows):
        Xi = X[i : min(i + rows, n), :]
        D = Xi if g.name == "precomputed" else general_block(Xi, Y, g, xp)
        d, j = topk_smallest(D, k, xp)
        dists.append(d)
        inds.append(j)
    if len(dists) == 1:
        return dists[0], inds[0]
    return xp.concat(dists, axis=0), xp.concat(inds, axis=0)
