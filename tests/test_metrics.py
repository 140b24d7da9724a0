import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.datasets import load_digits
from sklearn.metrics import pairwise_distances as sk_pairwise

import xplearn
from backends import assert_close, assert_in_backend
from xplearn.metrics import pairwise_distances

RNG = np.random.default_rng(0)
X = RNG.normal(size=(37, 6))
Y = RNG.normal(size=(23, 6))

METRICS = [
    ("euclidean", {}),
    ("l2", {}),
    ("sqeuclidean", {}),
    ("cosine", {}),
    ("manhattan", {}),
    ("cityblock", {}),
    ("l1", {}),
    ("chebyshev", {}),
    ("minkowski", {"p": 3}),
    ("minkowski", {"p": 1.5}),
]


def _reference(A, B, metric, kwds):
    return sk_pairwise(A, B, metric=metric, **kwds)


@pytest.mark.parametrize(("metric", "kwds"), METRICS, ids=str)
def test_matches_scikit_learn_float64(backend, metric, kwds) -> None:
    D = pairwise_distances(
        backend.asarray(X), backend.asarray(Y), metric=metric, **kwds
    )
    assert_close(
        D,
        _reference(X, Y, metric, kwds),
        backend,
        dtype="float64",
        rtol=1e-10,
        atol=1e-12,
    )


@pytest.mark.parametrize("metric", ["euclidean", "cityblock", "chebyshev", "cosine"])
def test_matches_scipy_cdist(backend, metric) -> None:
    D = pairwise_distances(backend.asarray(X), backend.asarray(Y), metric=metric)
    assert_close(
        D, cdist(X, Y, metric=metric), backend, dtype="float64", rtol=1e-10, atol=1e-12
    )


@pytest.mark.parametrize(("metric", "kwds"), METRICS[:5], ids=str)
def test_float32_stays_float32(backend, metric, kwds) -> None:
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    D = pairwise_distances(
        backend.asarray(X32), backend.asarray(Y32), metric=metric, **kwds
    )
    assert_close(
        D,
        _reference(X, Y, metric, kwds),
        backend,
        dtype="float32",
        rtol=1e-4,
        atol=1e-5,
    )


def test_self_distance_exactly_zero_and_never_negative(backend) -> None:
    digits = load_digits().data[:200]
    for metric in ("euclidean", "sqeuclidean", "cosine"):
        D = xplearn.to_numpy(pairwise_distances(backend.asarray(digits), metric=metric))
        assert np.all(np.diag(D) == 0.0), metric
        assert D.min() >= 0.0, metric


def test_y_follows_x(backend) -> None:
    D = pairwise_distances(backend.asarray(X), Y)  # Y is numpy
    assert_close(D, cdist(X, Y), backend, dtype="float64", rtol=1e-10)


def test_integer_input_gives_default_float(backend) -> None:
    Xi = np.arange(12).reshape(4, 3)
    D = pairwise_distances(backend.asarray(Xi), metric="manhattan")
    assert_in_backend(D, backend)
    np.testing.assert_allclose(xplearn.to_numpy(D), cdist(Xi, Xi, "cityblock"))


def test_chunked_equals_unchunked(backend) -> None:
    A = RNG.normal(size=(300, 8))
    with xplearn.config_context(working_memory=0.01):  # 10 KiB: many chunks
        D = pairwise_distances(
            backend.asarray(A), backend.asarray(A[:50]), metric="manhattan"
        )
    assert_close(D, cdist(A, A[:50], "cityblock"), backend, rtol=1e-10)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"metric": "mystery"}, "Unknown metric"),
        ({"metric": "seuclidean", "VI": np.eye(6)}, "Unsupported metric_params"),
        ({"metric": "minkowski", "p": 0}, "p must be a number > 0"),
    ],
)
def test_bad_metric(backend, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        pairwise_distances(backend.asarray(X), **kwargs)


def test_bad_input(backend) -> None:
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        pairwise_distances(backend.asarray(bad))
    with pytest.raises(ValueError, match="Input Y contains NaN"):
        pairwise_distances(backend.asarray(X), backend.asarray(bad))
    with pytest.raises(ValueError, match="Y has 5 features, but X has 6"):
        pairwise_distances(backend.asarray(X), backend.asarray(Y[:, :5]))
    with pytest.raises(ValueError, match="0 sample"):
        pairwise_distances(backend.asarray(X[:0]))


def test_unexpected_keyword() -> None:
    with pytest.raises(TypeError, match="only p"):
        pairwise_distances(X, w=1)


_W = RNG.random(6) + 0.5
GENERAL = [
    ("braycurtis", {}),
    ("canberra", {}),
    ("correlation", {}),
    ("hamming", {}),
    ("seuclidean", {"V": _W}),
    ("mahalanobis", {"VI": np.diag(_W)}),
    ("minkowski", {"p": 3, "w": _W}),
    ("minkowski", {"p": 0.5}),
]
BOOLEAN = ["jaccard", "dice", "rogerstanimoto", "russellrao", "sokalsneath", "yule"]


@pytest.mark.parametrize(("metric", "kwds"), GENERAL, ids=str)
def test_general_metrics_match_scipy(backend, metric, kwds) -> None:
    D = pairwise_distances(
        backend.asarray(X), backend.asarray(Y), metric=metric, **kwds
    )
    assert_close(D, cdist(X, Y, metric, **kwds), backend, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("metric", BOOLEAN)
def test_boolean_metrics_match_scipy(backend, metric) -> None:
    A, B = (X > 0).astype(np.float64), (Y > 0.3).astype(np.float64)
    D = pairwise_distances(backend.asarray(A), backend.asarray(B), metric=metric)
    ref = cdist(A.astype(bool), B.astype(bool), metric)
    assert_close(D, ref, backend, rtol=1e-12)


def test_haversine_nan_euclidean_callable(backend) -> None:
    A, B = X[:, :2], Y[:, :2]
    D = pairwise_distances(backend.asarray(A), backend.asarray(B), metric="haversine")
    assert_close(D, sk_pairwise(A, B, metric="haversine"), backend, rtol=1e-12)
    with pytest.raises(ValueError, match="only valid in 2 dimensions"):
        pairwise_distances(backend.asarray(X), metric="haversine")
    N = X.copy()
    N[0, 1] = np.nan
    D = pairwise_distances(
        backend.asarray(N), backend.asarray(Y), metric="nan_euclidean"
    )
    ref = sk_pairwise(N, Y, metric="nan_euclidean")
    assert_close(D, ref, backend, rtol=1e-12)

    def l1(a, b):
        return float(np.abs(a - b).sum())

    D = pairwise_distances(backend.asarray(X), backend.asarray(Y[:4]), metric=l1)
    assert_close(D, cdist(X, Y[:4], "cityblock"), backend, rtol=1e-12)
