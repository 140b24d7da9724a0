import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.datasets import load_digits, make_blobs
from sklearn.neighbors import NearestNeighbors

import xplearn
from backends import assert_close, assert_in_backend
from xplearn.neighbors import kneighbors

DIGITS = load_digits().data
BLOBS, _ = make_blobs(n_samples=1500, n_features=16, centers=12, random_state=0)


def _sklearn(Q, Y, k, metric="euclidean", **kw):
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute", metric=metric, **kw)
    return nn.fit(Y).kneighbors(Q)


def _assert_same_neighbours(ind, dist_ref, Q, Y, metric="euclidean", **kw):
    """Indices equal the reference up to ties: the distances they point at
    equal the reference distances, row by row."""
    ind = xplearn.to_numpy(ind)
    pointed = np.take_along_axis(cdist(Q, Y, metric=metric, **kw), ind, axis=1)
    np.testing.assert_allclose(pointed, dist_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("data", ["digits", "blobs"])
def test_matches_scikit_learn_float64(backend, data) -> None:
    A = DIGITS if data == "digits" else BLOBS
    Q, Y = A[:200], A
    dist, ind = kneighbors(backend.asarray(Q), backend.asarray(Y), 10)
    _ref_d, ref_i = _sklearn(Q, Y, 10)
    exact = np.sort(cdist(Q, Y), axis=1)[:, :10]
    assert_close(dist, exact, backend, dtype="float64", rtol=1e-10)
    assert_in_backend(ind, backend, "int64")
    _assert_same_neighbours(ind, exact, Q, Y)
    if data == "blobs":  # continuous data has no ties: indices are equal
        np.testing.assert_array_equal(xplearn.to_numpy(ind), ref_i)


@pytest.mark.parametrize(
    ("metric", "kw"),
    [
        ("sqeuclidean", {}),
        ("cosine", {}),
        ("manhattan", {}),
        ("chebyshev", {}),
        ("minkowski", {"p": 3}),
    ],
)
def test_other_metrics(backend, metric, kw) -> None:
    Q, Y = BLOBS[:50], BLOBS[:400]
    dist, ind = kneighbors(
        backend.asarray(Q), backend.asarray(Y), 5, metric=metric, **kw
    )
    ref_d, ref_i = _sklearn(Q, Y, 5, metric=metric, **({"p": kw["p"]} if kw else {}))
    assert_close(dist, ref_d, backend, dtype="float64", rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(xplearn.to_numpy(ind), ref_i)


@pytest.mark.parametrize("data", ["digits", "blobs"])
def test_float32_recall_against_float64(backend, data) -> None:
    A = DIGITS if data == "digits" else BLOBS
    Q, Y = A[:300], A
    dist, ind = kneighbors(
        backend.asarray(Q.astype(np.float32)), backend.asarray(Y.astype(np.float32)), 10
    )
    assert_in_backend(dist, backend, "float32")
    exact = np.sort(cdist(Q, Y), axis=1)[:, :10]
    # Recall by distance (robust to ties): how many returned neighbours are
    # within the true k-th distance.
    pointed = np.take_along_axis(cdist(Q, Y), xplearn.to_numpy(ind), axis=1)
    recall = np.mean(pointed <= exact[:, -1:] * (1 + 1e-6) + 1e-6)
    assert recall >= 0.999, recall
    np.testing.assert_allclose(xplearn.to_numpy(dist), exact, rtol=1e-4, atol=1e-4)


def test_self_is_nearest_at_exactly_zero(backend) -> None:
    Y = BLOBS[:300].astype(np.float32)
    dist, ind = kneighbors(backend.asarray(Y), None, 3)
    assert np.all(xplearn.to_numpy(dist)[:, 0] == 0.0)
    np.testing.assert_array_equal(xplearn.to_numpy(ind)[:, 0], np.arange(300))


def test_ties_go_to_lower_index(backend) -> None:
    Y = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [5.0, 5.0]])
    _dist, ind = kneighbors(backend.asarray(np.zeros((2, 2))), backend.asarray(Y), 3)
    np.testing.assert_array_equal(xplearn.to_numpy(ind), [[0, 1, 2], [0, 1, 2]])
    Yd = np.repeat(BLOBS[:20], 3, axis=0)  # every point three times
    _, ind = kneighbors(backend.asarray(BLOBS[:20]), backend.asarray(Yd), 3)
    np.testing.assert_array_equal(
        xplearn.to_numpy(ind), 3 * np.arange(20)[:, None] + np.arange(3)
    )


@pytest.mark.parametrize("mib", [0.02, 0.0005])
def test_tiled_equals_untiled(backend, mib) -> None:
    """Tiny budgets force many query tiles, and then database tiles too."""
    Q, Y = BLOBS[:64], BLOBS[:900]
    with xplearn.config_context(working_memory=mib):
        dist, ind = kneighbors(backend.asarray(Q), backend.asarray(Y), 7)
    _, ref_i = _sklearn(Q, Y, 7)
    # Distances from scipy: scikit-learn's expansion is not exactly 0 at self.
    assert_close(dist, np.sort(cdist(Q, Y), axis=1)[:, :7], backend, rtol=1e-10)
    np.testing.assert_array_equal(xplearn.to_numpy(ind), ref_i)


def test_return_distance_false(backend) -> None:
    ind = kneighbors(
        backend.asarray(BLOBS[:10]), backend.asarray(BLOBS), 2, return_distance=False
    )
    assert_in_backend(ind, backend, "int64")


def test_float16_returns_float16(backend) -> None:
    if backend.name == "array_api_strict":
        pytest.skip("array_api_strict has no float16 dtype")
    dist, _ = kneighbors(backend.asarray(BLOBS[:10].astype(np.float16)), None, 2)
    assert_in_backend(dist, backend, "float16")


def test_y_follows_x(backend) -> None:
    dist, ind = kneighbors(backend.asarray(BLOBS[:20]), BLOBS.tolist(), 4)
    assert_in_backend(dist, backend, "float64")
    np.testing.assert_array_equal(
        xplearn.to_numpy(ind), _sklearn(BLOBS[:20], BLOBS, 4)[1]
    )


@pytest.mark.parametrize(
    ("k", "exc", "match"),
    [
        (0, ValueError, "Expected n_neighbors > 0"),
        (-1, ValueError, "Expected n_neighbors > 0"),
        (11, ValueError, "n_neighbors <= n_samples_fit"),
        (2.5, TypeError, "does not take float value"),
        (True, TypeError, "must be an integer"),
    ],
)
def test_bad_n_neighbors(backend, k, exc, match) -> None:
    with pytest.raises(exc, match=match):
        kneighbors(backend.asarray(BLOBS[:3]), backend.asarray(BLOBS[:10]), k)


def test_bad_input(backend) -> None:
    bad = BLOBS[:10].copy()
    bad[4, 1] = np.inf
    with pytest.raises(ValueError, match="Input Y contains infinity"):
        kneighbors(backend.asarray(BLOBS[:3]), backend.asarray(bad), 2)
    with pytest.raises(ValueError, match="Input X contains infinity"):
        kneighbors(backend.asarray(bad), backend.asarray(BLOBS[:10]), 2)
    with pytest.raises(ValueError, match="X has 15 features, but Y has 16"):
        kneighbors(backend.asarray(BLOBS[:3, :15]), backend.asarray(BLOBS[:10]), 2)
    with pytest.raises(ValueError, match="0 sample"):
        kneighbors(backend.asarray(BLOBS[:0]), backend.asarray(BLOBS[:10]), 2)
    with pytest.raises(ValueError, match="0 sample"):
        kneighbors(backend.asarray(BLOBS[:3]), backend.asarray(BLOBS[:0]), 2)


def test_inputs_not_written(backend) -> None:
    Q, Y = BLOBS[:30].copy(), BLOBS[:200].copy()
    Xb, Yb = backend.asarray(Q), backend.asarray(Y)
    kneighbors(Xb, Yb, 5)
    np.testing.assert_array_equal(xplearn.to_numpy(Xb), Q)
    np.testing.assert_array_equal(xplearn.to_numpy(Yb), Y)


@pytest.mark.slow
def test_200k_by_200k_memory_bounded() -> None:
    """200 000 × 200 000 (d=16) with the default budget, peak RSS < 2 GiB."""
    import subprocess
    import sys

    code = (
        "import resource, numpy as np\n"
        "from xplearn.neighbors import kneighbors\n"
        "Y = np.random.default_rng(0).normal(size=(200_000, 16)).astype(np.float32)\n"
        "d, i = kneighbors(Y, Y, 10)\n"
        "assert (i[:, 0] == np.arange(len(Y))).all()\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    peak_gib = int(out.stdout.split()[-1]) / 2**20
    print(f"peak RSS {peak_gib:.2f} GiB")
    assert peak_gib < 2.0
