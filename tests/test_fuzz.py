"""Differential fuzz tests: xplearn against exact oracles and scikit-learn.

hypothesis draws small problems (n <= 40, d <= 5) on integer grids, where ties
and duplicates are common and the exact answer is known.  A ``Transform``
turns grid coordinates ``G`` into the data, ``G * scale + offset``:

* a power-of-two scale (2**-1070 subnormals up to 2**1020, where sums of
  coordinates overflow) or an offset of 1e6 keeps every distance an exact
  multiple of the grid's, so the grid's answer *is* the data's, ties included;
* a decimal scale (1e-310, 1e160, 1e20, ...) rounds the data, so there the
  grid's answer is demanded up to the grid's ties.

Oracles: distances by ``cdist`` on the grid in float64 and neighbours by a
stable argsort of exact integer keys (ties to the lower index, xplearn's
contract); a distance beyond the dtype's range is ``inf``, and only then.
KMeans is compared with scikit-learn given the same parameters, on data where
scikit-learn's answer does not hang on a rounding (``reference_kmeans`` below
replays its Lloyd loop and says so), and every backend with xplearn on numpy.
Bad input must raise what scikit-learn raises on the same numpy input and
never write into the caller's arrays.

Examples are derandomised (the same on every run) and bounded in number.
Cases that crashed the interpreter run in a child process, so a crash fails
one test, not the run.
"""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sklearn
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.distance import cdist
from sklearn import cluster as skc
from sklearn import neighbors as skn
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import pairwise_distances as sk_pairwise_distances

import xplearn
from backends import (
    Backend,
    assert_close,
    assert_equal,
    assert_in_backend,
    ragged_backend,
    variants_of,
)
from xplearn.cluster import KMeans, kmeans_plusplus
from xplearn.metrics import pairwise_distances
from xplearn.neighbors import (
    KNeighborsClassifier,
    KNeighborsRegressor,
    NearestNeighbors,
    kneighbors,
)

TESTS = Path(__file__).resolve().parent


# Examples per backend, as a share of the fast backends' (numpy, torch):
# eager jax compiles every new shape, dask builds a graph per call.  On the
# slowest, a failure is reported as found, not shrunk (shrinking runs the test
# hundreds of times); numpy and torch shrink the same failures.  Eager jax
# spends seconds compiling each new shape, so it runs only a few examples per
# test (at least 2) to keep the file within ~3 minutes there.
EXAMPLE_SHARE = {"jax": 0.02, "dask": 0.25, "array_api_strict": 0.5, "tensorflow": 0.5}


def fuzz(max_examples: int, backend: Backend | None = None) -> Any:
    """hypothesis settings of this file: derandomised (the same examples on
    every run), no example database, a bounded number of examples.  Backend
    tests run hypothesis inside the test (``check``) to take ``backend``'s
    share of ``max_examples``."""
    share = 1.0 if backend is None else EXAMPLE_SHARE.get(backend.name, 1.0)
    return settings(
        derandomize=True,
        database=None,
        deadline=None,
        max_examples=max(2 if share < 0.05 else 5, round(max_examples * share)),
        phases=[p for p in Phase if p is not Phase.shrink or share >= 0.5],
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
        ],
        print_blob=True,
    )


# --------------------------------------------------------------------------
# Strategies: integer grids, the transforms that make them test data, and
# the problems drawn from them
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Transform:
    """Grid coordinates G become the data ``G * scale + offset``.

    ``exact``: the data's distances are exactly the grid's times ``scale``
    (a power of two, or an offset the dtype represents exactly), so the
    grid's ties and order are the data's.
    """

    name: str
    scale: float
    offset: float = 0.0
    exact: bool = True

    def __repr__(self) -> str:
        return f"Transform({self.name!r})"

    def data(self, G: np.ndarray, dtype: str) -> np.ndarray:
        return (G * self.scale + self.offset).astype(dtype)

    def subnormal(self, dtype: str) -> bool:
        """Whether the data has subnormal numbers (XLA, so jax, flushes them
        to zero: a documented limitation, README's backend table)."""
        return self.offset == 0 and self.scale < float(np.finfo(dtype).tiny)

    def distances(self, D: np.ndarray, metric: str, dtype: str) -> np.ndarray:
        """The data's distances from the grid's ``D``, rounded to ``dtype``."""
        f = 1.0 if metric == "cosine" else self.scale
        with np.errstate(over="ignore", under="ignore"):
            out = D * f
            if metric == "sqeuclidean":
                out = out * f
            return out.astype(dtype)


TRANSFORMS = {
    "float64": (
        Transform("x1", 1.0),
        Transform("x2**-1000", 2.0**-1000),  # squares underflow
        Transform("x2**-1030", 2.0**-1030),  # subnormal
        Transform("x2**-1070", 2.0**-1070),  # 4 significant bits left
        Transform("x2**498", 2.0**498),
        Transform("x2**510", 2.0**510),  # squared norms overflow
        Transform("x2**531", 2.0**531),  # squares overflow
        Transform("x2**1020", 2.0**1020),  # sums of coordinates overflow
        Transform("+1e6", 1.0, offset=1e6),
        Transform("/1024+1e6", 2.0**-10, offset=1e6),
        Transform("x1e-300", 1e-300, exact=False),
        Transform("x1e-310", 1e-310, exact=False),
        Transform("x1e150", 1e150, exact=False),
        Transform("x1e160", 1e160, exact=False),
    ),
    "float32": (
        Transform("x1", 1.0),
        Transform("x2**-100", 2.0**-100),  # squares underflow
        Transform("x2**-140", 2.0**-140),  # subnormal
        Transform("x2**62", 2.0**62),  # squared norms overflow
        Transform("x2**66", 2.0**66),  # squares overflow
        Transform("x2**125", 2.0**125),  # sums of coordinates overflow
        Transform("+1e6", 1.0, offset=1e6),
        Transform("/16+1e6", 2.0**-4, offset=1e6),
        Transform("x1e-30", 1e-30, exact=False),
        Transform("x1e20", 1e20, exact=False),
    ),
}


# KMeans averages: only scales where a mean keeps (nearly) all its bits.
KMEANS_TRANSFORMS = {
    "float64": ("x1", "x2**-1000", "x2**-1030", "x2**510", "x2**531", "+1e6"),
    "float32": ("x1", "x2**-100", "x2**62", "x2**66", "+1e6"),
}
METRICS = ("euclidean", "sqeuclidean", "manhattan", "chebyshev", "cosine", "minkowski")
# Supervised estimators: metrics whose order is exact (cosine's is not).
SUPERVISED_METRICS = tuple(m for m in METRICS if m != "cosine")


def metric_kwargs(metric: str) -> dict[str, Any]:
    return {"p": 3} if metric == "minkowski" else {}


@dataclass
class Problem:
    """A neighbour search: fit on the grid GX, query GQ, as ``dtype`` data."""

    GX: np.ndarray
    GQ: np.ndarray
    k: int
    metric: str
    dtype: str
    transform: Transform

    @property
    def data(self) -> np.ndarray:
        """The fit points."""
        return self.transform.data(self.GX, self.dtype)

    @property
    def queries(self) -> np.ndarray:
        return self.transform.data(self.GQ, self.dtype)

    @property
    def kwargs(self) -> dict[str, Any]:
        return metric_kwargs(self.metric)

    @property
    def exact_order(self) -> bool:
        """Whether the exact neighbour indices are known (not only up to ties)."""
        return self.metric != "cosine" and self.transform.exact

    def tolerances(self) -> tuple[float, float]:
        """(rtol, atol) for distances: exact up to rounding, a few subnormals."""
        f32 = self.dtype == "float32"
        rtol = 1e-5 if f32 else (1e-12 if self.transform.exact else 1e-9)
        atol = 8 * float(np.finfo(self.dtype).smallest_subnormal)
        if self.metric == "cosine":
            atol = 2e-6 if f32 else (1e-12 if self.transform.exact else 1e-9)
        return rtol, atol


def grids(n: int, d: int, r: int) -> st.SearchStrategy[np.ndarray]:
    return arrays(np.int64, (n, d), elements=st.integers(-r, r))


@st.composite
def problems(
    draw: st.DrawFn,
    metrics: tuple[str, ...] = METRICS,
    min_n: int = 1,
    dtypes: tuple[str, ...] = ("float64", "float32"),
    transformed: bool = True,
) -> Problem:
    """Grid data, queries (some of them fit points, so duplicates), k; in
    ``dtypes``, transformed (scaled or offset) or the grid itself."""
    dtype = draw(st.sampled_from(dtypes))
    metric = draw(st.sampled_from(metrics))
    choices = [
        t for t in TRANSFORMS[dtype] if metric != "cosine" or t.offset == 0
    ]  # cosine is not translation-invariant: an offset makes it all near-ties
    transform = draw(st.sampled_from(choices)) if transformed else choices[0]
    d = draw(st.integers(1, 5))
    r = draw(st.integers(1, 3))
    n = draw(st.integers(min_n, 40))
    GX = draw(grids(n, d, r))
    fresh = draw(grids(draw(st.integers(0, 6)), d, r))
    picked = draw(
        st.lists(st.integers(0, n - 1), min_size=0 if len(fresh) else 1, max_size=6)
    )
    GQ = np.concatenate([GX[picked], fresh])
    k = draw(st.integers(1, n))
    return Problem(GX, GQ, k, metric, dtype, transform)


@st.composite
def radius_problems(draw: st.DrawFn) -> tuple[Problem, float]:
    """A problem and a radius (in grid units) well between two distances."""
    p = draw(problems())
    D = np.concatenate(
        [
            grid_distances(p.GQ, p.GX, p.metric).ravel(),
            grid_distances(p.GX, p.GX, p.metric).ravel(),
        ]
    )
    values = np.unique(np.append(D, 0.0))
    # Distances within 1e-9 are one value (cosine's rounding of equal ones).
    starts = np.flatnonzero(np.diff(values, prepend=-1.0) > 1e-9)
    lo = values[np.append(starts[1:] - 1, len(values) - 1)]  # last of each value
    hi = np.append(values[starts[1:]], 2 * values[-1] + 1)  # next value
    i = draw(st.integers(0, len(lo) - 1))
    u = draw(st.floats(0.05, 0.95))
    return p, float(lo[i] + u * (hi[i] - lo[i]))


INT_LABELS = np.array([7, -2, 3])
STR_LABELS = np.array(["b", "c", "a"])


@st.composite
def classification_problems(draw: st.DrawFn) -> tuple[Problem, str, str, np.ndarray]:
    p = draw(problems(metrics=SUPERVISED_METRICS))
    weights = draw(st.sampled_from(["uniform", "distance"]))
    kind = draw(st.sampled_from(["int", "multioutput", "str"]))
    n_classes = draw(st.integers(1, 3))
    columns = 2 if kind == "multioutput" else 1
    codes = draw(
        arrays(np.int64, (len(p.GX), columns), elements=st.integers(0, n_classes - 1))
    )
    return p, weights, kind, codes


@st.composite
def regression_problems(draw: st.DrawFn) -> tuple[Problem, str, np.ndarray]:
    p = draw(problems(metrics=SUPERVISED_METRICS))
    weights = draw(st.sampled_from(["uniform", "distance"]))
    shape = draw(st.sampled_from([(len(p.GX),), (len(p.GX), 2), (len(p.GX), 1)]))
    y = draw(arrays(np.int64, shape, elements=st.integers(-5, 5))).astype(np.float64)
    return p, weights, y


# Lloyd iterations at most: these grids converge in a few; fewer than the
# default 300 bound the cost of a run that oscillates.
MAX_ITER = 50


@dataclass
class KMeansProblem:
    """KMeans on grid data G (weights w or None) from an explicit initial
    grid ``init``, or from k-means++ with ``seed`` when ``init`` is None."""

    G: np.ndarray
    k: int
    init: np.ndarray | None
    seed: int
    w: np.ndarray | None
    algorithm: str
    dtype: str
    transform: Transform

    @property
    def data(self) -> np.ndarray:
        return self.transform.data(self.G, self.dtype)

    def estimator_kwargs(self, backend: Backend) -> dict[str, Any]:
        init: Any = "k-means++"
        if self.init is not None:
            init = backend.asarray(self.transform.data(self.init, self.dtype))
        return {
            "init": init,
            "n_init": 1,
            "random_state": self.seed,
            "max_iter": MAX_ITER,
            "algorithm": self.algorithm,
        }

    def inertia_atol(self, rtol: float) -> float:
        """Rounding allowance of ``inertia_``: ``rtol`` of the weighted squared
        norms of the data (finite: an overflowing inertia must be inf)."""
        w = np.ones(len(self.G)) if self.w is None else self.w
        norms = float(w @ (self.G**2).sum(axis=1)) + 1.0
        return min(rtol * norms * self.transform.scale * self.transform.scale, 1e300)

    def sklearn_kwargs(self) -> dict[str, Any]:
        """scikit-learn's parameters on the grid itself."""
        init = "k-means++" if self.init is None else self.init.astype(np.float64)
        return {
            "init": init,
            "n_init": 1,
            "random_state": self.seed,
            "max_iter": MAX_ITER,
        }

    def sample_weight(self, backend: Backend) -> Any:
        return None if self.w is None else backend.asarray(self.w.astype(self.dtype))


@st.composite
def kmeans_problems(draw: st.DrawFn, dtypes: tuple[str, ...]) -> KMeansProblem:
    """Grid data with duplicates, sometimes fewer distinct points than
    clusters; an initialisation from the data's rows, from grid points or
    k-means++; integer weights with zeros."""
    dtype = draw(st.sampled_from(dtypes))
    names = KMEANS_TRANSFORMS[dtype]
    transform = draw(st.sampled_from([t for t in TRANSFORMS[dtype] if t.name in names]))
    d = draw(st.integers(1, 3))
    r = draw(st.integers(1, 4))
    n = draw(st.integers(1, 30))
    G = draw(grids(n, d, r))
    k = draw(st.integers(1, min(n, 5)))
    how = draw(st.sampled_from(["rows", "grid", "k-means++"]))
    init = None
    if how == "rows":
        init = G[draw(st.lists(st.integers(0, n - 1), min_size=k, max_size=k))]
    elif how == "grid":
        init = draw(grids(k, d, r))
    seed = draw(st.integers(0, 2**16))
    w = None
    if draw(st.booleans()):
        w = draw(arrays(np.int64, (n,), elements=st.integers(0, 3)))
        w[int(np.argmax(w))] = max(1, int(w.max()))  # not all zero
    algorithm = draw(st.sampled_from(["lloyd", "elkan"]))
    return KMeansProblem(G, k, init, seed, w, algorithm, dtype, transform)


@dataclass
class BadCase:
    """A call of ``op`` on arrays some of which are made bad."""

    op: str
    arrays: dict[str, np.ndarray | None]
    k: int
    algorithm: str = "lloyd"
    # Invalid although scikit-learn may accept it (KMeans takes negative
    # weights unchecked, and scikit-learn < 1.9 all-zero weights too):
    # xplearn's contract is a ValueError.
    invalid: bool = False


VALUE_FAULTS = ("nan", "inf", "-inf")


def _spoil(draw: st.DrawFn, a: np.ndarray) -> np.ndarray:
    """``a`` with one entry NaN or ±inf."""
    a = a.astype(np.float64)
    if a.size:
        flat = a.reshape(-1)
        flat[draw(st.integers(0, a.size - 1))] = float(
            draw(st.sampled_from(VALUE_FAULTS))
        )
    return a


def _other_features(a: np.ndarray) -> np.ndarray:
    return a[:, :-1] if a.shape[1] > 1 else np.concatenate([a, a], axis=1)


NEIGHBOUR_OPS = (
    "kneighbors",
    "NearestNeighbors",
    "NearestNeighbors(X=None)",
    "radius_neighbors",
    "KNeighborsClassifier",
    "KNeighborsRegressor",
    "pairwise_distances",
)
NEIGHBOUR_FAULTS = (
    "bad value in X",
    "bad value in Q",
    "bad value in y",
    "empty X",
    "empty Q",
    "1-D X",
    "1-D Q",
    "Q has other features",
    "y of other length",
    "k > n_samples",
    "k = 0",
)


@st.composite
def neighbour_bad_cases(draw: st.DrawFn) -> BadCase:
    op = draw(st.sampled_from(NEIGHBOUR_OPS))
    faults = draw(st.sets(st.sampled_from(NEIGHBOUR_FAULTS), min_size=1, max_size=2))
    d, n = draw(st.integers(1, 4)), draw(st.integers(1, 8))
    X = draw(grids(n, d, 3)).astype(np.float64)
    Q = draw(grids(draw(st.integers(1, 5)), d, 3)).astype(np.float64)
    y = draw(arrays(np.int64, (n,), elements=st.integers(0, 2)))
    if op == "KNeighborsRegressor":
        y = y.astype(np.float64)
    k = draw(st.integers(1, n))
    # Values first, then shapes (a NaN in an emptied array is no NaN).
    if "bad value in X" in faults:
        X = _spoil(draw, X)
    if "bad value in Q" in faults:
        Q = _spoil(draw, Q)
    if "bad value in y" in faults:
        y = _spoil(draw, y)
    if "Q has other features" in faults:
        Q = _other_features(Q)
    if "empty X" in faults:
        X, y = X[:0], y[:0]
    if "empty Q" in faults:
        Q = Q[:0]
    if "1-D X" in faults:
        X = X[:, 0]
    if "1-D Q" in faults:
        Q = Q[:, 0]
    if "y of other length" in faults:
        y = y[:-1] if len(y) else y[:1]
    if "k > n_samples" in faults:
        k = n + draw(st.integers(1, 2))
    if "k = 0" in faults:
        k = 0
    return BadCase(op, {"X": X, "Q": Q, "y": y}, k)


KMEANS_FAULTS = (
    "bad value in X",
    "bad value in init",
    "bad value in weights",
    "bad value in Q",
    "empty X",
    "1-D X",
    "n_clusters > n_samples",
    "init with another row",
    "init with another feature",
    "1-D init",
    "weights of other length",
    "2-D weights",
    "negative weight",
    "zero weights",
    "Q has other features",
)


@st.composite
def kmeans_bad_cases(draw: st.DrawFn) -> BadCase:
    faults = draw(st.sets(st.sampled_from(KMEANS_FAULTS), min_size=1, max_size=2))
    d, n = draw(st.integers(1, 3)), draw(st.integers(1, 8))
    k = draw(st.integers(1, n)) + (
        draw(st.integers(1, 2)) if "n_clusters > n_samples" in faults else 0
    )
    X = draw(grids(n, d, 3)).astype(np.float64)
    Q = draw(grids(draw(st.integers(1, 4)), d, 3)).astype(np.float64)
    wants_init = draw(st.booleans()) or any("init" in f for f in faults)
    init = draw(grids(k, d, 3)).astype(np.float64) if wants_init else None
    w = None
    if draw(st.booleans()) or any("weight" in f for f in faults):
        w = draw(arrays(np.int64, (n,), elements=st.integers(1, 3))).astype(np.float64)
    if "bad value in X" in faults:
        X = _spoil(draw, X)
    if "bad value in init" in faults:
        init = _spoil(draw, init)
    if "bad value in weights" in faults:
        w = _spoil(draw, w)
    if "bad value in Q" in faults:
        Q = _spoil(draw, Q)
    if "negative weight" in faults:
        w[draw(st.integers(0, n - 1))] = -1.0
    if "zero weights" in faults:
        w = np.zeros_like(w)
    if "Q has other features" in faults:
        Q = _other_features(Q)
    if "init with another row" in faults:
        init = np.concatenate([init, init[:1]])
    if "init with another feature" in faults:
        init = np.concatenate([init, init[:, :1]], axis=1)
    if "1-D init" in faults:
        init = init[:, 0]
    if "weights of other length" in faults:
        w = np.append(w, 1.0)
    if "2-D weights" in faults:
        w = w[:, None]
    if "empty X" in faults:
        X = X[:0]
    if "1-D X" in faults:
        X = X[:, 0]
    algorithm = draw(st.sampled_from(["lloyd", "elkan"]))
    arrays_ = {"X": X, "Q": Q, "init": init, "w": w}
    invalid = "negative weight" in faults or "zero weights" in faults
    return BadCase("KMeans", arrays_, k, algorithm, invalid)


# --------------------------------------------------------------------------
# Oracles: exact neighbours on the grid; scikit-learn's KMeans, replayed
# --------------------------------------------------------------------------


def grid_distances(GQ: np.ndarray, GX: np.ndarray, metric: str) -> np.ndarray:
    """float64 distances between grid points (cdist; exact up to its rounding).

    Cosine follows scikit-learn: a zero vector is at distance 1 from all.
    """
    A, B = GQ.astype(np.float64), GX.astype(np.float64)
    if metric == "cosine":
        nA, nB = np.linalg.norm(A, axis=1), np.linalg.norm(B, axis=1)
        A = A / np.where(nA == 0, 1.0, nA)[:, None]
        B = B / np.where(nB == 0, 1.0, nB)[:, None]
        return np.clip(1.0 - A @ B.T, 0.0, 2.0)
    name = "cityblock" if metric == "manhattan" else metric
    return cdist(A, B, name, **metric_kwargs(metric))


def grid_keys(GQ: np.ndarray, GX: np.ndarray, metric: str) -> np.ndarray:
    """Integers in the order of the exact distances (cosine: its distances)."""
    if metric == "cosine":
        return grid_distances(GQ, GX, metric)
    diff = np.abs(GQ[:, None, :] - GX[None, :, :])
    if metric in ("euclidean", "sqeuclidean"):
        return (diff**2).sum(axis=2)
    if metric == "manhattan":
        return diff.sum(axis=2)
    if metric == "chebyshev":
        return diff.max(axis=2)
    return (diff**3).sum(axis=2)  # minkowski, p=3


def oracle_neighbours(keys: np.ndarray, k: int, exclude_self: bool) -> np.ndarray:
    """The k smallest keys per row, ties to the lower index; with
    ``exclude_self``, scikit-learn's X=None rule: the k + 1 nearest, less the
    point itself, or less the first of them where more duplicates than k + 1
    leave the point out."""
    keys = keys.astype(np.float64)
    if not exclude_self:
        return np.argsort(keys, axis=1, kind="stable")[:, :k]
    near = np.argsort(keys, axis=1, kind="stable")[:, : k + 1]
    keep = near != np.arange(len(near))[:, None]
    keep[keep.all(axis=1), 0] = False
    return near[keep].reshape(len(near), k)


def neighbour_weights(
    p: Problem, weights: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The oracle's neighbours of p's queries, scikit-learn's vote weights
    (``distance``: 1/d, or 1 for the neighbours at distance 0 and 0 for the
    others if there are any) from the grid, so scale-invariant, and the
    queries whose neighbours are known: all, but on rounded (decimal-scaled)
    data only those not tied at the k-th neighbour."""
    keys = grid_keys(p.GQ, p.GX, p.metric)
    ind = oracle_neighbours(keys, p.k, False)
    s = np.sort(keys, axis=1)
    known = np.ones(len(keys), bool)
    if not p.exact_order and p.k < keys.shape[1]:
        known = s[:, p.k - 1] < s[:, p.k]
    D = np.take_along_axis(grid_distances(p.GQ, p.GX, p.metric), ind, axis=1)
    if weights == "uniform":
        return ind, np.ones_like(D), known
    # "distance" weights are defined in the dtype where the data's distances
    # and their reciprocals are: no overflow to inf, no nonzero distance
    # rounded to 0, no subnormal weight (jax flushes those to 0).
    dd = p.transform.distances(D, p.metric, p.dtype)
    with np.errstate(divide="ignore", over="ignore"):
        inv = 1 / dd
    ok = np.isfinite(dd) & ((dd > 0) == (D > 0))
    ok &= (dd == 0) | (np.isfinite(inv) & (inv >= np.finfo(p.dtype).tiny))
    assume(bool(ok.all()))
    zero = D == 0
    with np.errstate(divide="ignore"):
        w = np.where(zero.any(axis=1, keepdims=True), zero * 1.0, 1.0 / D)
    return ind, w, known


def vote_tolerance(dtype: str) -> float:
    return 1e-5 if dtype == "float32" else 1e-9


def codes_of(labels: np.ndarray) -> np.ndarray:
    """Index of each label in the sorted classes."""
    return np.searchsorted(np.unique(labels), labels)


def untied(keys: np.ndarray, k: int) -> np.ndarray:
    """Rows whose k+1 smallest keys are distinct: any exact search, whatever
    its tie rule, returns the same neighbours in the same order there."""
    s = np.sort(keys, axis=1)[:, : k + 1]
    return np.all(np.diff(s, axis=1) > 0, axis=1)


@dataclass
class Reference:
    labels: np.ndarray
    centers: np.ndarray
    inertia: float
    n_iter: int


def reference_kmeans(kp: KMeansProblem, tie_rtol: float) -> Reference | None:
    """scikit-learn 1.9's KMeans (k-means++ then Lloyd) replayed on the grid
    in float64, or None where its answer hangs on a rounding, or on an order
    it leaves to numpy:

    * a point (nearly) as close to two centres, except to two equal initial
      centres (equal inputs: the lower index on every implementation);
    * tied k-means++ candidates at different points;
    * empty clusters whose relocation has several different choices;
    * empty clusters with every point on its centre (scikit-learn relocates
      nothing then), unless the data's mean, so its centring, is exact;
    * the centre shift at the tolerance;
    * an empty cluster left before the biggest one (scikit-learn copies that
      one's unnormalised sum there).
    """
    G = kp.G.astype(np.float64)
    w = np.ones(len(G)) if kp.w is None else kp.w.astype(np.float64)
    if kp.init is None:
        idx = _reference_plusplus(G, kp.k, w, kp.seed)
        if idx is None:
            return None
        C = G[idx]
    else:
        C = kp.init.astype(np.float64)
    return _reference_lloyd(G, w, C, tie_rtol, exact_mean=_dyadic_mean(kp.G))


def _dyadic_mean(G: np.ndarray) -> bool:
    """Whether the mean of the integer grid G is a short binary fraction, so
    that centring it is exact in floating point."""
    n = len(G)
    dens = [n // math.gcd(int(s), n) for s in G.sum(axis=0)]
    return all(d & (d - 1) == 0 for d in dens)


def _reference_plusplus(
    G: np.ndarray, k: int, w: np.ndarray, seed: int
) -> np.ndarray | None:
    """scikit-learn's greedy k-means++ on the grid (exact integers)."""
    rs = np.random.RandomState(seed)
    n = len(G)
    trials = 2 + int(np.log(k))
    idx = [int(rs.choice(n, p=w / w.sum()))]
    closest = ((G - G[idx[0]]) ** 2).sum(axis=1)
    pot = closest @ w
    for _ in range(1, k):
        if pot == 0 and G.shape[1] > 1:
            # Every point is on a centre: scikit-learn's draw among its
            # expansion's rounding errors (exactly 0 only in one dimension).
            return None
        rand = rs.uniform(size=trials) * pot
        cand = np.minimum(np.searchsorted(np.cumsum(w * closest), rand), n - 1)
        D = np.minimum(closest, ((G[cand][:, None, :] - G[None]) ** 2).sum(axis=2))
        pots = D @ w
        best = int(np.argmin(pots))
        tied = cand[pots == pots[best]]
        if np.any(G[tied] != G[cand[best]]):
            return None
        pot, closest = pots[best], D[best]
        idx.append(int(cand[best]))
    return np.array(idx)


def _near_tie(
    D: np.ndarray, labels: np.ndarray, origin: list[tuple[Any, ...]], rtol: float
) -> bool:
    """Whether a point is (nearly) as close to another centre as to its own,
    but for centres of one origin: equal on every implementation (equal
    initial rows, a copy, relocations to equal points), so a true tie."""
    best = D[np.arange(len(D)), labels][:, None]
    same = np.array([[a == b for b in origin] for a in origin])
    return bool(np.any(~same[labels] & (D - best <= rtol * D)))


def _reference_lloyd(
    G: np.ndarray, w: np.ndarray, C: np.ndarray, rtol: float, *, exact_mean: bool
) -> Reference | None:
    n, k = len(G), len(C)
    tol = float(np.mean(np.var(G, axis=0))) * 1e-4
    labels_old = np.full(n, -1)
    strict = False
    origin: list[tuple[Any, ...]] = [("init", *c) for c in C]
    for n_iter in range(1, MAX_ITER + 1):
        D = ((G[:, None, :] - C[None]) ** 2).sum(axis=2)
        labels = np.argmin(D, axis=1)
        if _near_tie(D, labels, origin, rtol):
            return None
        sums = np.zeros_like(C)
        np.add.at(sums, labels, G * w[:, None])
        totals = np.bincount(labels, weights=w, minlength=k)
        dist = D[np.arange(n), labels]
        moved = _relocate(G, w, labels, dist, sums, totals, exact_mean=exact_mean)
        if moved is None:
            return None
        big = int(np.argmax(totals))
        new = np.empty_like(C)
        for j in range(k):
            if totals[j] > 0:
                new[j] = sums[j] / totals[j]
                origin[j] = moved.get(j, ("mean", n_iter, j))
            elif j < big:  # scikit-learn copies the biggest cluster's sum here
                return None
            else:  # a copy of the biggest cluster's centre
                new[j], origin[j] = new[big], origin[big]
        shift = float(((new - C) ** 2).sum())
        C = new
        if np.array_equal(labels, labels_old):
            strict = True
            break
        if abs(shift - tol) <= rtol * tol:
            return None
        if shift <= tol:
            break
        labels_old = labels
    D = ((G[:, None, :] - C[None]) ** 2).sum(axis=2)
    if not strict:
        labels = np.argmin(D, axis=1)
        if _near_tie(D, labels, origin, rtol):
            return None
    inertia = float((w * D[np.arange(n), labels]).sum())
    return Reference(labels, C, inertia, n_iter)


def _relocate(
    G: np.ndarray,
    w: np.ndarray,
    labels: np.ndarray,
    dist: np.ndarray,
    sums: np.ndarray,
    totals: np.ndarray,
    *,
    exact_mean: bool,
) -> dict[int, tuple[Any, ...]] | None:
    """scikit-learn's relocation of empty clusters to the farthest points, in
    place: {cluster: origin of its new centre}, None where ambiguous."""
    empty = np.flatnonzero(totals == 0)
    if empty.size == 0:
        return {}
    if dist.max() == 0:
        # No relocation, if the centred data leave every point exactly on
        # its centre in floating point too.
        return {} if exact_mean else None
    far = np.argsort(-dist, kind="stable")[: empty.size]
    candidates = np.flatnonzero(dist >= dist[far[-1]])
    rows = np.column_stack([G, w, labels])[candidates]
    if np.any(rows != rows[0]) and (candidates.size > 1 or empty.size > 1):
        return None
    for new, f in zip(empty, far, strict=True):
        sums[labels[f]] -= G[f] * w[f]
        sums[new] = G[f] * w[f]
        totals[labels[f]] -= w[f]
        totals[new] = w[f]
    return {int(j): ("point", *G[f], w[f]) for j, f in zip(empty, far, strict=True)}


# --------------------------------------------------------------------------
# Checks shared by the tests
# --------------------------------------------------------------------------


def fitted(backend: Backend) -> Backend:
    """Where an estimator's fitted state (and results of X=None) lives: with
    the fit data, except TensorFlow (computed on torch or numpy)."""
    if backend.name == "tensorflow":
        from xplearn._tensorflow import compute_backend

        return Backend(compute_backend())
    return backend


def representable(backend: Backend, transform: Transform, dtype: str) -> bool:
    """Whether ``backend`` holds the data: XLA (jax) flushes subnormal numbers
    to zero, a documented limitation (README, backend table)."""
    return backend.name != "jax" or not transform.subnormal(dtype)


def check_kneighbors(
    result: Any, p: Problem, on: Backend, *, k: int, exclude_self: bool = False
) -> None:
    """``result`` = (dist, ind) on ``on``: the exact k nearest neighbours of
    p's queries (of its fit points when ``exclude_self``) and their distances."""
    dist, ind = result
    assert_in_backend(dist, on, p.dtype)
    assert_in_backend(ind, on, "int64")
    GQ = p.GX if exclude_self else p.GQ
    keys = grid_keys(GQ, p.GX, p.metric)
    want = oracle_neighbours(keys, k, exclude_self)
    got = xplearn.to_numpy(ind)
    assert got.shape == want.shape
    rtol, atol = p.tolerances()
    if p.exact_order:
        np.testing.assert_array_equal(got, want)
    else:  # the exact neighbours up to ties
        assert all(len(set(row)) == k for row in got.tolist()), got
        if exclude_self:
            assert not np.any(got == np.arange(len(got))[:, None]), got
        np.testing.assert_allclose(
            np.take_along_axis(keys, got, axis=1),
            np.take_along_axis(keys, want, axis=1),
            rtol=0,
            atol=atol if p.metric == "cosine" else 0,
        )
    D = np.take_along_axis(grid_distances(GQ, p.GX, p.metric), want, axis=1)
    np.testing.assert_allclose(
        xplearn.to_numpy(dist),
        p.transform.distances(D, p.metric, p.dtype),
        rtol=rtol,
        atol=atol,
    )


def check_radius(
    result: Any, p: Problem, on: Backend, r_grid: float, *, exclude_self: bool
) -> None:
    """Exact membership (true distance <= radius), sorted by distance then
    index, and the distances, per query."""
    dists, inds = result
    GQ = p.GX if exclude_self else p.GQ
    D = grid_distances(GQ, p.GX, p.metric)
    keys = grid_keys(GQ, p.GX, p.metric)
    rtol, atol = p.tolerances()
    assert len(inds) == len(dists) == len(GQ)
    for i, (d, ind) in enumerate(zip(dists, inds, strict=True)):
        assert_in_backend(d, ragged_backend(on), p.dtype)
        assert_in_backend(ind, ragged_backend(on), "int64")
        want = np.flatnonzero(D[i] <= r_grid)
        if exclude_self:
            want = want[want != i]
        want = want[np.lexsort((want, keys[i][want]))]
        got, got_d = xplearn.to_numpy(ind), xplearn.to_numpy(d)
        if p.exact_order:
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_array_equal(np.sort(got), np.sort(want))
        assert np.all(np.diff(got_d) >= 0), got_d
        np.testing.assert_allclose(
            got_d, p.transform.distances(D[i][want], p.metric, p.dtype), rtol, atol
        )


def _fit_recording(est: Any, X: Any, w: Any) -> tuple[Any, bool]:
    """Fit; return the estimator and whether it warned of fewer distinct
    clusters than asked for (any other warning stays an error)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", ConvergenceWarning)
        # Both libraries say so, and run Lloyd's algorithm instead.
        warnings.filterwarnings(
            "ignore", "algorithm='elkan' doesn't make sense", RuntimeWarning
        )
        est.fit(X, sample_weight=w)
    for m in seen:
        if not issubclass(m.category, ConvergenceWarning):
            warnings.warn_explicit(m.message, m.category, m.filename, m.lineno)
    return est, any(issubclass(m.category, ConvergenceWarning) for m in seen)


ESTIMATORS = {  # name: (scikit-learn's, xplearn's)
    "NearestNeighbors": (skn.NearestNeighbors, NearestNeighbors),
    "KNeighborsClassifier": (skn.KNeighborsClassifier, KNeighborsClassifier),
    "KNeighborsRegressor": (skn.KNeighborsRegressor, KNeighborsRegressor),
}


def _neighbour_call(case: BadCase, a: dict[str, Any], lib: str) -> None:
    """Run ``case.op`` with scikit-learn (``lib="sklearn"``) or xplearn."""
    sk = lib == "sklearn"
    X, Q, y, k = a["X"], a["Q"], a["y"], case.k
    if case.op == "kneighbors":
        if sk:
            skn.NearestNeighbors(n_neighbors=k, algorithm="brute").fit(X).kneighbors(Q)
        else:
            kneighbors(Q, X, k)
    elif case.op == "pairwise_distances":
        (sk_pairwise_distances if sk else pairwise_distances)(Q, X)
    elif case.op == "radius_neighbors":
        ESTIMATORS["NearestNeighbors"][not sk]().fit(X).radius_neighbors(Q, 2.0)
    elif case.op == "NearestNeighbors(X=None)":
        ESTIMATORS["NearestNeighbors"][not sk](n_neighbors=k).fit(X).kneighbors()
    elif case.op == "NearestNeighbors":
        ESTIMATORS["NearestNeighbors"][not sk](n_neighbors=k).fit(X).kneighbors(Q)
    else:
        ESTIMATORS[case.op][not sk](n_neighbors=k).fit(X, y).predict(Q)


def _kmeans_call(case: BadCase, a: dict[str, Any], lib: str) -> None:
    cls = skc.KMeans if lib == "sklearn" else KMeans
    init = "k-means++" if a["init"] is None else a["init"]
    est = cls(case.k, init=init, n_init=1, random_state=0, algorithm=case.algorithm)
    est.fit(a["X"], sample_weight=a["w"]).predict(a["Q"])


def check_bad_input(case: BadCase, backend: Backend, call: Any) -> None:
    """xplearn raises (ValueError/TypeError as scikit-learn does) exactly when
    scikit-learn raises on the same numpy input, and writes into no input."""
    theirs = ours = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the property is about exceptions
        try:
            call(
                case,
                {n: None if v is None else v.copy() for n, v in case.arrays.items()},
                "sklearn",
            )
        except Exception as exc:  # noqa: BLE001 - any exception is compared
            theirs = exc
        inputs = {
            n: None if v is None else backend.asarray(v) for n, v in case.arrays.items()
        }
        try:
            call(case, inputs, "xplearn")
        except Exception as exc:  # noqa: BLE001 - any exception is compared
            ours = exc
    for name, v in inputs.items():
        if v is not None:
            np.testing.assert_array_equal(
                xplearn.to_numpy(v), case.arrays[name], err_msg=f"{name} was written"
            )
    if theirs is None and case.invalid:
        assert isinstance(ours, ValueError), f"xplearn raised {ours!r}, no ValueError"
        return
    if theirs is None:
        assert ours is None, f"xplearn raised {ours!r}; scikit-learn does not"
        return
    assert ours is not None, f"scikit-learn raises {theirs!r}; xplearn does not"
    expected = tuple(t for t in (ValueError, TypeError) if isinstance(theirs, t))
    assert isinstance(ours, expected or type(theirs)), (
        f"xplearn raised {ours!r}; scikit-learn raises {theirs!r}"
    )


def run_python(
    code: str, *, warnings_are_errors: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child interpreter (by default warnings are errors
    there, as in this suite); fail with its output unless it exits 0."""
    flags = ["-W", "error"] if warnings_are_errors else []
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, *flags, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=TESTS.parent,
        env={**os.environ, "PYTHONPATH": path},  # this file and backends.py
        check=False,
    )
    how = f"signal {-proc.returncode}" if proc.returncode < 0 else proc.returncode
    assert proc.returncode == 0, (
        f"child process exited with {how}"
        f"\n--- stdout (tail) ---\n{proc.stdout[-4000:]}"
        f"\n--- stderr (tail) ---\n{proc.stderr[-4000:]}"
    )
    return proc


# --------------------------------------------------------------------------
# Neighbours: exact answers on every backend
# --------------------------------------------------------------------------


def test_kneighbors_function(backend) -> None:
    """``kneighbors(Q, X, k, metric=...)`` (and ``kneighbors(X, None, k)``)
    returns the exact neighbours, ties to the lower index, and their
    distances in the input dtype (``inf`` only beyond its range)."""

    @fuzz(150, backend)
    @given(p=problems(), self_query=st.booleans())
    def check(p, self_query) -> None:
        assume(representable(backend, p.transform, p.dtype))
        if self_query:
            p = dataclasses.replace(p, GQ=p.GX)
            result = kneighbors(
                backend.asarray(p.data), None, p.k, metric=p.metric, **p.kwargs
            )
        else:
            result = kneighbors(
                backend.asarray(p.queries),
                backend.asarray(p.data),
                p.k,
                metric=p.metric,
                **p.kwargs,
            )
        check_kneighbors(result, p, backend, k=p.k)

    check()


def test_nearest_neighbors_kneighbors(backend) -> None:
    """``NearestNeighbors(metric=...).kneighbors(Q)`` returns the exact
    neighbours; ``kneighbors()`` (X=None) those of every fit point among the
    others: its duplicates count, itself does not."""

    @fuzz(150, backend)
    @given(p=problems(min_n=2))
    def check(p) -> None:
        assume(representable(backend, p.transform, p.dtype))
        nn = NearestNeighbors(n_neighbors=p.k, metric=p.metric, p=3 if p.kwargs else 2)
        nn.fit(backend.asarray(p.data))
        check_kneighbors(nn.kneighbors(backend.asarray(p.queries)), p, backend, k=p.k)
        k = min(p.k, len(p.GX) - 1)
        check_kneighbors(
            nn.kneighbors(n_neighbors=k), p, fitted(backend), k=k, exclude_self=True
        )

    check()


def test_radius_neighbors(backend) -> None:
    """``radius_neighbors(Q, radius, sort_results=True)`` returns exactly the
    points within the radius (radii drawn well away from every distance),
    sorted by distance then index; X=None excludes only the point itself."""

    @fuzz(150, backend)
    @given(case=radius_problems())
    def check(case) -> None:
        p, r_grid = case
        assume(representable(backend, p.transform, p.dtype))
        radius = float(p.transform.distances(np.array(r_grid), p.metric, "float64"))
        info = np.finfo(p.dtype)
        assume(float(info.tiny) <= radius <= float(info.max))  # representable
        nn = NearestNeighbors(metric=p.metric, p=3 if p.kwargs else 2)
        nn.fit(backend.asarray(p.data))
        result = nn.radius_neighbors(
            backend.asarray(p.queries), radius, sort_results=True
        )
        check_radius(result, p, backend, r_grid, exclude_self=False)
        result = nn.radius_neighbors(radius=radius, sort_results=True)
        check_radius(result, p, fitted(backend), r_grid, exclude_self=True)

    check()


def test_pairwise_distances(backend) -> None:
    """``pairwise_distances(Q, X)`` equals scipy's ``cdist`` in float64 on
    every backend; ``pairwise_distances(X)`` has an exactly zero diagonal."""

    @fuzz(150, backend)
    @given(p=problems())
    def check(p) -> None:
        assume(representable(backend, p.transform, p.dtype))
        rtol, atol = p.tolerances()
        D = pairwise_distances(
            backend.asarray(p.queries),
            backend.asarray(p.data),
            metric=p.metric,
            **p.kwargs,
        )
        want = grid_distances(p.GQ, p.GX, p.metric)
        assert_close(
            D, p.transform.distances(want, p.metric, p.dtype), backend, dtype=p.dtype,
            rtol=rtol, atol=atol,
        )  # fmt: skip
        D = pairwise_distances(backend.asarray(p.data), metric=p.metric, **p.kwargs)
        want = grid_distances(p.GX, p.GX, p.metric)
        np.fill_diagonal(want, 0.0)
        assert_close(
            D, p.transform.distances(want, p.metric, p.dtype), backend, dtype=p.dtype,
            rtol=rtol, atol=atol,
        )  # fmt: skip
        assert np.all(np.diag(xplearn.to_numpy(D)) == 0)

    check()


def test_classifier(backend) -> None:
    """``KNeighborsClassifier`` (uniform/distance weights; int, multi-output
    and string labels) predicts the vote of the exact neighbours, ties to the
    lower class; ``predict_proba`` is the vote share.  With distance weights
    near-tied votes are not compared (their sums round differently), on
    decimal-scaled data neither queries tied at the k-th neighbour."""

    @fuzz(150, backend)
    @given(case=classification_problems())
    def check(case) -> None:
        p, weights, kind, codes = case
        assume(representable(backend, p.transform, p.dtype))
        values = STR_LABELS if kind == "str" else INT_LABELS
        Y = values[codes]
        y = Y if kind == "multioutput" else Y[:, 0]
        ind, w, known = neighbour_weights(p, weights)
        clf = KNeighborsClassifier(
            n_neighbors=p.k, weights=weights, metric=p.metric, p=3 if p.kwargs else 2
        )
        clf.fit(backend.asarray(p.data), y if kind == "str" else backend.asarray(y))
        pred = clf.predict(backend.asarray(p.queries))
        proba = clf.predict_proba(backend.asarray(p.queries))
        if kind == "str":
            assert isinstance(pred, np.ndarray)  # non-numeric labels come back as numpy
        else:
            assert_in_backend(pred, backend, "int64")
        got = xplearn.to_numpy(pred).reshape(len(p.GQ), -1)
        probas = proba if kind == "multioutput" else [proba]
        assert len(probas) == Y.shape[1]
        for j in range(Y.shape[1]):
            classes = np.unique(Y[:, j])
            votes = np.zeros((len(p.GQ), len(classes)))
            np.add.at(votes, (np.arange(len(p.GQ))[:, None], codes_of(Y[:, j])[ind]), w)
            assert_in_backend(probas[j], backend, p.dtype)
            np.testing.assert_allclose(
                xplearn.to_numpy(probas[j])[known],
                (votes / votes.sum(axis=1, keepdims=True))[known],
                rtol=vote_tolerance(p.dtype),
                atol=1e-12,
            )
            top = np.sort(votes, axis=1)[:, ::-1]
            decided = known & (
                np.ones(len(top), bool)
                if weights == "uniform" or len(classes) == 1
                else top[:, 0] - top[:, 1] > vote_tolerance(p.dtype) * top[:, 0]
            )
            np.testing.assert_array_equal(
                got[decided, j], classes[np.argmax(votes, axis=1)][decided]
            )

    check()


def test_regressor(backend) -> None:
    """``KNeighborsRegressor`` (uniform/distance) predicts the (weighted) mean
    target of the exact neighbours, in the shape of y: (n,) gives
    (n_queries,), (n, 2) and the column vector (n, 1) keep their columns, as
    in scikit-learn, without a warning.  On decimal-scaled data only queries
    not tied at the k-th neighbour are compared."""

    @fuzz(150, backend)
    @given(case=regression_problems())
    def check(case) -> None:
        p, weights, y = case
        assume(representable(backend, p.transform, p.dtype))
        ind, w, known = neighbour_weights(p, weights)
        reg = KNeighborsRegressor(
            n_neighbors=p.k, weights=weights, metric=p.metric, p=3 if p.kwargs else 2
        )
        reg.fit(backend.asarray(p.data), backend.asarray(y))
        pred = reg.predict(backend.asarray(p.queries))
        assert_in_backend(pred, backend, p.dtype)
        assert tuple(pred.shape) == (len(p.GQ), *y.shape[1:])
        Y = y.reshape(len(y), -1)
        want = (Y[ind] * w[:, :, None]).sum(axis=1) / w.sum(axis=1)[:, None]
        np.testing.assert_allclose(
            xplearn.to_numpy(pred).reshape(want.shape)[known],
            want[known],
            rtol=vote_tolerance(p.dtype),
            atol=1e-5 if p.dtype == "float32" else 1e-12,
        )

    check()


# --------------------------------------------------------------------------
# The neighbour oracle's semantics are scikit-learn's (numpy, float64)
# --------------------------------------------------------------------------


@fuzz(100)
@given(
    p=problems(dtypes=("float64",), transformed=False),
    weights=st.sampled_from(["uniform", "distance"]),
)
def test_neighbours_equal_sklearn(p, weights) -> None:
    """On float64 grid data xplearn's NearestNeighbors, pairwise_distances,
    KNeighborsClassifier and KNeighborsRegressor equal scikit-learn's (brute
    force), on the queries whose neighbours do not depend on a tie rule."""
    X, Q, kw = p.data, p.queries, {"metric": p.metric, "p": 3 if p.kwargs else 2}
    keys = grid_keys(p.GQ, p.GX, p.metric)
    if p.metric == "cosine":  # equal cosines differ by a rounding
        keys = np.round(keys, 9)
    ok = untied(keys, min(p.k, len(X) - 1))
    d, i = NearestNeighbors(n_neighbors=p.k, **kw).fit(X).kneighbors(Q)
    ref_d, ref_i = (
        skn.NearestNeighbors(n_neighbors=p.k, algorithm="brute", **kw)
        .fit(X)
        .kneighbors(Q)
    )
    np.testing.assert_allclose(d, ref_d, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(i[ok], ref_i[ok])
    np.testing.assert_allclose(
        pairwise_distances(Q, X, metric=p.metric, **p.kwargs),
        sk_pairwise_distances(Q, X, metric=p.metric, **p.kwargs),
        rtol=1e-12,
        atol=1e-12,
    )
    if p.metric == "cosine":
        return
    y = (p.GX.sum(axis=1) % 3).astype(np.int64)
    ours = KNeighborsClassifier(p.k, weights=weights, **kw).fit(X, y)
    ref = skn.KNeighborsClassifier(p.k, weights=weights, algorithm="brute", **kw)
    ref.fit(X, y)
    proba = ref.predict_proba(Q)
    top = np.sort(proba, axis=1)[:, ::-1]
    decided = ok & ((top[:, 0] - top[:, 1] > 1e-9) if top.shape[1] > 1 else True)
    np.testing.assert_array_equal(ours.predict(Q)[decided], ref.predict(Q)[decided])
    np.testing.assert_allclose(ours.predict_proba(Q)[ok], proba[ok], atol=1e-12)
    ours_r = KNeighborsRegressor(p.k, weights=weights, **kw).fit(X, y * 1.5)
    ref_r = skn.KNeighborsRegressor(p.k, weights=weights, algorithm="brute", **kw)
    np.testing.assert_allclose(
        ours_r.predict(Q)[ok], ref_r.fit(X, y * 1.5).predict(Q)[ok], atol=1e-12
    )


# --------------------------------------------------------------------------
# KMeans: scikit-learn's answer, and the same on every backend
# --------------------------------------------------------------------------


SKLEARN_19 = pytest.mark.skipif(
    tuple(int(v) for v in sklearn.__version__.split(".")[:2]) < (1, 9),
    reason="xplearn and the reference follow scikit-learn 1.9's empty clusters",
)


@SKLEARN_19
@fuzz(150)
@given(kp=kmeans_problems(dtypes=("float64",)))
def test_kmeans_equals_sklearn(kp) -> None:
    """``KMeans`` (lloyd and elkan; an explicit init or k-means++ with a
    seed; weights with zeros; duplicates; more clusters than distinct points)
    equals ``sklearn.cluster.KMeans`` with the same parameters on the grid:
    labels and n_iter_ exactly, centres and inertia scaled by the transform,
    the same ConvergenceWarning.  Only where scikit-learn's answer is
    well-defined (see ``reference_kmeans``), which the reference checks
    against scikit-learn first."""
    ref = reference_kmeans(kp, tie_rtol=1e-9)
    assume(ref is not None)
    G = kp.G.astype(np.float64)
    sk, sk_warned = _fit_recording(skc.KMeans(kp.k, **kp.sklearn_kwargs()), G, kp.w)
    assert ref.n_iter == sk.n_iter_, "the test's reference disagrees with sklearn"
    np.testing.assert_array_equal(ref.labels, sk.labels_)
    ours, warned = _fit_recording(
        KMeans(kp.k, **kp.estimator_kwargs(Backend("numpy"))),
        kp.data,
        kp.sample_weight(Backend("numpy")),
    )
    np.testing.assert_array_equal(ours.labels_, sk.labels_)
    assert ours.n_iter_ == sk.n_iter_
    s = kp.transform.scale
    np.testing.assert_allclose(
        ours.cluster_centers_,
        kp.transform.data(sk.cluster_centers_, "float64"),
        rtol=1e-9,
        atol=1e-12 * s,
    )
    with np.errstate(over="ignore", under="ignore"):
        inertia = sk.inertia_ * s * s
    assert ours.inertia_ == pytest.approx(inertia, rel=1e-9, abs=kp.inertia_atol(1e-12))
    assert warned == sk_warned


def test_kmeans_same_on_every_backend(backend) -> None:
    """``KMeans`` on any backend equals ``KMeans`` on numpy (same seed or
    init: same labels, n_iter_, centres and inertia) and the reference's
    labels and n_iter_, where no step hangs on a rounding of the dtype."""

    @fuzz(60, backend)
    @given(kp=kmeans_problems(dtypes=("float64", "float32")))
    def check(kp) -> None:
        assume(representable(backend, kp.transform, kp.dtype))
        ref = reference_kmeans(kp, tie_rtol=vote_tolerance(kp.dtype))
        assume(ref is not None)
        numpy = Backend("numpy")
        base, _ = _fit_recording(
            KMeans(kp.k, **kp.estimator_kwargs(numpy)),
            kp.data,
            kp.sample_weight(numpy),
        )
        km, _ = _fit_recording(
            KMeans(kp.k, **kp.estimator_kwargs(backend)),
            backend.asarray(kp.data),
            kp.sample_weight(backend),
        )
        on = fitted(backend)
        assert_equal(km.labels_, base.labels_, on, dtype="int64")
        assert km.n_iter_ == base.n_iter_
        rtol = 1e-5 if kp.dtype == "float32" else 1e-9
        s = kp.transform.scale
        assert_close(
            km.cluster_centers_, base.cluster_centers_, on, dtype=kp.dtype, rtol=rtol,
            atol=rtol * s,
        )  # fmt: skip
        assert km.inertia_ == pytest.approx(
            base.inertia_, rel=rtol, abs=kp.inertia_atol(rtol)
        )
        np.testing.assert_array_equal(base.labels_, ref.labels)
        assert base.n_iter_ == ref.n_iter

    check()


def test_kmeans_plusplus(backend) -> None:
    """``kmeans_plusplus`` picks scikit-learn's points from the same seed and
    weights (on the grid its potentials are exact integers), at any scale."""

    @fuzz(60, backend)
    @given(kp=kmeans_problems(dtypes=("float64", "float32")))
    def check(kp) -> None:
        assume(representable(backend, kp.transform, kp.dtype))
        G = kp.G.astype(np.float64)
        _, ref_idx = skc.kmeans_plusplus(
            G, kp.k, random_state=kp.seed, sample_weight=kp.w
        )
        centers, idx = kmeans_plusplus(
            backend.asarray(kp.data),
            kp.k,
            random_state=kp.seed,
            sample_weight=kp.sample_weight(backend),
        )
        assert_equal(idx, ref_idx, backend, dtype="int64")
        assert_equal(centers, kp.data[ref_idx], backend, dtype=kp.dtype)

    check()


# --------------------------------------------------------------------------
# Bad input: scikit-learn's exception, and the caller's arrays untouched
# --------------------------------------------------------------------------


def test_neighbours_bad_input(backend) -> None:
    """NaN/inf in X, Q or y, empty or 1-D arrays, another feature count, a y
    of another length, k > n_samples or k = 0: every neighbour entry point
    raises when, and only when, scikit-learn does, with its exception type,
    and never writes into the caller's arrays."""

    @fuzz(150, backend)
    @given(case=neighbour_bad_cases())
    def check(case) -> None:
        check_bad_input(case, backend, _neighbour_call)

    check()


def _kmeans_bad_input(backend_id: str) -> None:
    """Run in a child process by ``test_kmeans_bad_input``."""
    name, _, variant = backend_id.partition(":")
    variants_of(name)  # backend set-up (jax float64)
    backend = Backend(name, variant)

    @fuzz(150, backend)
    @given(case=kmeans_bad_cases())
    def check(case: BadCase) -> None:
        print(case, flush=True)  # the last case before a crash
        check_bad_input(case, backend, _kmeans_call)

    check()


def test_kmeans_bad_input(backend) -> None:
    """NaN/inf in X, init, sample_weight or the query, empty or 1-D X,
    n_clusters > n_samples, an init or weights of the wrong shape, negative or
    all-zero weights, another feature count at predict: ``KMeans`` raises when,
    and only when, scikit-learn does, with its exception type (negative
    weights, which scikit-learn's KMeans takes unchecked: ValueError), and
    writes into no input.  In a child process: NaN in an init crashed the
    interpreter.  (Warnings are ignored there: the property is exceptions.)"""
    run_python(
        f"import test_fuzz\ntest_fuzz._kmeans_bad_input({backend.id!r})\n",
        warnings_are_errors=False,
    )


# --------------------------------------------------------------------------
# Regressions from the issue
# --------------------------------------------------------------------------


def test_nan_in_init_raises_in_a_child_process() -> None:
    """NaN in an explicit init raises ValueError naming NaN, twice in a row,
    and leaves the interpreter sound (it crashed at the next collection)."""
    run_python(
        """
import gc
import numpy as np
from sklearn.datasets import make_blobs
from xplearn.cluster import KMeans
X, _ = make_blobs(2000, 4, centers=3, random_state=0)
init = X[:2].copy()
init[0, 1] = np.nan
for _ in range(2):
    try:
        KMeans(2, init=init, n_init=1).fit(X)
    except ValueError as exc:
        assert "NaN" in str(exc), exc
    else:
        raise AssertionError("NaN in init: no ValueError")
assert np.isnan(init[0, 1]) and np.array_equal(init[1], X[1])
gc.collect()
print("raised twice")
"""
    )


def test_kmeans_at_huge_scale_in_a_child_process() -> None:
    """KMeans fits standard-normal data times 1e160 (it crashed) and, times
    2**531 or 2**-531, gives exactly the labels of the unscaled data."""
    proc = run_python(
        """
import numpy as np
from xplearn.cluster import KMeans
X = np.random.default_rng(0).standard_normal((3000, 4))
km = KMeans(3, n_init=1).fit(X * 1e160)
assert np.all(np.isfinite(km.cluster_centers_)), km.cluster_centers_
labels = [KMeans(3, n_init=1, random_state=0).fit(X * s).labels_
          for s in (1.0, 2.0**531, 2.0**-531)]
assert np.array_equal(labels[0], labels[1]), "x 2**531 changed the labels"
assert np.array_equal(labels[0], labels[2]), "x 2**-531 changed the labels"
print("same labels")
"""
    )
    assert "same labels" in proc.stdout


@pytest.mark.parametrize(("dtype", "scale"), [("float32", 1e20), ("float64", 1e160)])
def test_huge_data_self_is_nearest(backend, dtype, scale) -> None:
    """float32 data times 1e20, float64 times 1e160: each query is its own
    nearest neighbour at distance 0, the next one is the exact one, and
    pairwise distances have a zero diagonal, no NaN and the exact values."""
    X = (np.random.default_rng(0).standard_normal((50, 4)) * scale).astype(dtype)
    e = math.frexp(scale)[1]
    exact = cdist(X[:3].astype(np.float64) * 2.0**-e, X * 2.0**-e) * 2.0**e
    rtol = 1e-5 if dtype == "float32" else 1e-12
    dist, ind = kneighbors(backend.asarray(X[:3]), backend.asarray(X), 2)
    assert_equal(ind, np.argsort(exact, axis=1)[:, :2], backend, dtype="int64")
    assert_close(dist, np.sort(exact, axis=1)[:, :2], backend, dtype=dtype, rtol=rtol)
    assert np.all(xplearn.to_numpy(dist)[:, 0] == 0)
    D = pairwise_distances(backend.asarray(X[:2]), backend.asarray(X[:3]))
    assert_close(D, exact[:2, :3].astype(dtype), backend, dtype=dtype, rtol=rtol)
    assert np.all(np.diag(xplearn.to_numpy(D)) == 0)
    assert not np.any(np.isnan(xplearn.to_numpy(D)))


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
@pytest.mark.parametrize(("dtype", "scale"), [("float32", 1e20), ("float64", 1e160)])
def test_kmeans_at_huge_scale(backend, dtype, scale, algorithm) -> None:
    """KMeans on float32 data times 1e20 (float64 times 1e160), where squares
    overflow, gives exactly what it gives on the same data times 2**-e (an
    exact rescaling where nothing overflows): labels, n_iter_ (it stopped
    after one iteration, issue 9) and centres; inertia_ scaled, inf only beyond
    float64's range."""
    X = (np.random.default_rng(0).standard_normal((300, 4)) * scale).astype(dtype)
    e = math.frexp(scale)[1]
    small = X * np.asarray(2.0**-e, dtype=dtype)
    assert np.array_equal(small * np.asarray(2.0**e, dtype=dtype), X)  # exact
    base = KMeans(3, n_init=1, random_state=0, algorithm=algorithm).fit(small)
    km = KMeans(3, n_init=1, random_state=0, algorithm=algorithm)
    km.fit(backend.asarray(X))
    assert base.n_iter_ > 1
    assert km.n_iter_ == base.n_iter_
    on = fitted(backend)
    assert_equal(km.labels_, base.labels_, on, dtype="int64")
    centres = base.cluster_centers_ * np.asarray(2.0**e, dtype=dtype)
    if backend.name == "numpy":  # the power-of-two rescaling is bit-exact
        assert_equal(km.cluster_centers_, centres, on, dtype=dtype)
    else:
        rtol = 1e-5 if dtype == "float32" else 1e-12
        assert_close(km.cluster_centers_, centres, on, dtype=dtype, rtol=rtol)
    with np.errstate(over="ignore"):
        inertia = float(np.ldexp(np.float64(base.inertia_), 2 * e))
    rel = 1e-5 if dtype == "float32" else 1e-9
    assert km.inertia_ == pytest.approx(inertia, rel=rel)


def test_subnormal_data_self_is_nearest(backend) -> None:
    """Grid data times 1e-310 (subnormal): each point's nearest neighbour is
    itself at distance 0, the next one at the grid distance 1 (times 1e-310)."""
    if backend.name == "jax":
        pytest.skip("XLA flushes subnormal numbers to zero (README, backend table)")
    G = np.stack(np.meshgrid(*[np.arange(3)] * 3, indexing="ij"), -1).reshape(-1, 3)
    X = G * 1e-310
    dist, ind = kneighbors(backend.asarray(X), backend.asarray(X), 2)
    assert_in_backend(dist, backend, "float64")
    assert_equal(ind[:, 0], np.arange(len(X)), backend, dtype="int64")
    np.testing.assert_array_equal(xplearn.to_numpy(dist)[:, 0], 0.0)
    np.testing.assert_allclose(xplearn.to_numpy(dist)[:, 1], 1e-310, rtol=1e-9)


def test_radius_boundary_near_1e6(backend) -> None:
    """Near 1e6 the distance 0.42426 must not be rounded across a radius:
    0.423 finds nothing, 0.4243 the point; also with X=None."""
    X = np.array([[999999.8, 1000000.3, 999999.7]])
    Q = np.array([[999999.9, 999999.9, 999999.6]])
    true = cdist(Q, X)[0, 0]
    assert 0.423 < true < 0.4243
    nn = NearestNeighbors().fit(backend.asarray(X))
    both = NearestNeighbors().fit(backend.asarray(np.concatenate([X, Q])))
    for radius, want, want_both in [(0.423, [], [[], []]), (0.4243, [0], [[1], [0]])]:
        dist, ind = nn.radius_neighbors(backend.asarray(Q), radius=radius)
        on = ragged_backend(backend)
        assert_equal(ind[0], want, on, dtype="int64")
        assert_close(dist[0], [true] * len(want), on, dtype="float64", rtol=1e-9)
        _, ind = both.radius_neighbors(radius=radius)
        for got, w in zip(ind, want_both, strict=True):
            assert_equal(got, w, ragged_backend(fitted(backend)), dtype="int64")


def test_regressor_column_vector_target(backend) -> None:
    """y of shape (n, 1) predicts shape (n_queries, 1), as scikit-learn, and
    warns nothing."""
    rng = np.random.default_rng(0)
    X, Q, y = (
        rng.normal(size=(30, 3)),
        rng.normal(size=(7, 3)),
        rng.normal(size=(30, 1)),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pred = KNeighborsRegressor(3).fit(backend.asarray(X), backend.asarray(y))
        pred = pred.predict(backend.asarray(Q))
    ref = skn.KNeighborsRegressor(3).fit(X, y).predict(Q)
    assert ref.shape == (7, 1)
    assert_close(pred, ref, backend, dtype="float64", rtol=1e-10)


@SKLEARN_19
@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
def test_kmeans_equal_initial_centres(backend, algorithm) -> None:
    """Three equal initial centres on [0, 1, 1]: scikit-learn's 2 iterations
    and centres [0, 1, 1] (two clusters relocated to equal points), on every
    backend."""
    X, init = np.array([[0.0], [1.0], [1.0]]), np.zeros((3, 1))
    with pytest.warns(ConvergenceWarning):
        ref = skc.KMeans(3, init=init, n_init=1).fit(X)
    assert ref.n_iter_ == 2
    np.testing.assert_array_equal(ref.cluster_centers_.ravel(), [0.0, 1.0, 1.0])
    km = KMeans(3, init=backend.asarray(init), n_init=1, algorithm=algorithm)
    with pytest.warns(ConvergenceWarning):
        km.fit(backend.asarray(X))
    assert_equal(km.labels_, ref.labels_, fitted(backend), dtype="int64")
    assert_equal(km.cluster_centers_, ref.cluster_centers_, fitted(backend))
    assert km.n_iter_ == ref.n_iter_
    assert km.inertia_ == ref.inertia_
