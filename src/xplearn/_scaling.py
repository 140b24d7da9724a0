"""Exact power-of-two scaling that keeps every distance computation in range.

Squared distances square the data: float32 values past ~1e19 (float64 past
~1e154) overflow to ``inf`` in ``‖x‖²`` or ``x·y``, and values below ~1e-13
(float64 ~1e-139) lose their squared differences to underflow.  Either way
the ranking is lost: every distance reads ``inf`` (or 0) and the neighbours
are whichever comes first.

Multiplying by a power of two is exact in binary floating point (as long as
the result is a normal number), and every metric is homogeneous in the data:
Euclidean distances scale by ``2**e``, squared ones by ``4**e``, cosine not
at all.  So the kernels run on ``X · 2**-e`` and ``Y · 2**-e`` with ``e``
chosen from the largest magnitude so that it lands in ``[0.5, 1)``; the
neighbours, labels and ties are then those of data in the comfortable range,
and the distances are scaled back, where only a distance that truly exceeds
the dtype's range becomes ``inf``.  Data already in the safe range is left
alone (one max-reduction per call decides).
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from ._namespace import namespace_name

# Metrics of absolute differences: no squares to overflow or underflow.
_LINEAR = frozenset({"manhattan", "chebyshev"})


def max_abs(X: Any, xp: ModuleType) -> float:
    """Largest magnitude in ``X`` (a Python float; 0.0 for an all-zero array)."""
    name = namespace_name(xp)
    if name == "numpy":
        # Two reductions, no |X| temporary.
        return max(float(X.max()), -float(X.min()))
    if name == "torch" and X.numel():
        # One pass, no |X| temporary (xp.abs cost 0.9 ms on 2 000 × 512);
        # detached: a scale is no part of a caller's autograd graph.
        low, high = X.detach().aminmax()
        return max(float(high), -float(low))
    return float(xp.max(xp.abs(X)))


def safe_range(
    dtype: Any,
    xp: ModuleType,
    n_features: int,
    metric: str = "euclidean",
    p: float = 2.0,
) -> tuple[float, float]:
    """Magnitudes ``(low, high)`` of the data between which no scaling is needed.

    ``high``: ``d`` terms of ``(2·M)**p`` stay a factor 4 below the largest
    float, so ``‖x‖² + ‖y‖² − 2 x·y`` and its partial sums cannot overflow
    (Manhattan: ``d`` terms of ``2·M``; Chebyshev: one).  ``low``: the square
    (``p``-th power) of a difference at the rounding level of ``M`` is still
    a normal number; differences and their sums need no such floor.
    """
    fi = xp.finfo(dtype)
    big, tiny, eps = float(fi.max), float(fi.smallest_normal), float(fi.eps)
    d = max(n_features, 1)
    if metric in _LINEAR:
        return 0.0, 0.5 * big / (4.0 * (d if metric == "manhattan" else 1))
    power = p if metric == "minkowski" else 2.0
    if power < 1:
        # 0 < p < 1: the powers shrink, the p-th root of their sum grows to at
        # most d**(1/p)·2M (in logs: d**(1/p) alone may exceed the float range).
        log_high = math.log(0.125 * big) - math.log(d) / power
        return 0.0, math.exp(max(log_high, math.log(tiny)))
    return tiny ** (1.0 / power) / eps, 0.5 * (big / (4.0 * d)) ** (1.0 / power)


def scale_exponent(
    arrays: list[Any],
    xp: ModuleType,
    metric: str = "euclidean",
    p: float = 2.0,
    known: float = 0.0,
) -> int:
    """Return ``e`` such that ``arrays · 2**-e`` keep the distances in range.

    0 when the largest magnitude is already in :func:`safe_range` (or the
    data is all zeros); otherwise ``e`` puts the largest magnitude in
    ``[0.5, 1)``.  Every metric needs it at the top of the range: two
    distances that both overflow to ``inf`` can no longer be ranked.
    ``known``: the largest magnitude of other data searched with them (an
    array whose :func:`max_abs` was taken before).
    """
    M = max([known, *(max_abs(a, xp) for a in arrays)])
    if M == 0.0 or not math.isfinite(M):
        return 0
    low, high = safe_range(arrays[0].dtype, xp, arrays[0].shape[1], metric, p)
    if low <= M <= high:
        return 0
    return math.frexp(M)[1]


def times_pow2(X: Any, e: int, xp: ModuleType) -> Any:
    """Return ``X · 2**e``, exact unless the result leaves the dtype's range.

    A new array (the input is never written into).  Done in steps whose
    factor is itself a normal number of the dtype (``2**134`` is not a
    float32); a result beyond the largest float is ``inf``, as it should be,
    without numpy's overflow warning.
    """
    if e == 0:
        return X
    step = math.frexp(float(xp.finfo(X.dtype).max))[1] - 2  # 126 for float32
    if namespace_name(xp) in ("numpy", "array_api_strict"):  # numpy underneath
        import numpy as np

        with np.errstate(over="ignore", under="ignore"):
            return _steps(X, e, step)
    return _steps(X, e, step)


def _steps(X: Any, e: int, step: int) -> Any:
    while e:
        part = max(-step, min(step, e))
        X = X * (2.0**part)
        e -= part
    return X


def scale_back(D: Any, e: int, metric: str, xp: ModuleType) -> Any:
    """Distances of the scaled data back in the units of the caller's data."""
    if e == 0 or metric == "cosine":
        return D
    return times_pow2(D, 2 * e if metric == "sqeuclidean" else e, xp)


def ldexp(value: float, e: int) -> float:
    """``value · 2**e`` as a Python float, ``inf`` when it exceeds float64."""
    try:
        return math.ldexp(value, e)
    except OverflowError:
        return math.copysign(math.inf, value)
