"""KMeans on dask without gathering: numpy's results, one compute per iteration."""

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_blobs

import xplearn
from counting import counting_dask
from xplearn.cluster import KMeans, kmeans

DATA = {
    "digits": load_digits().data[:900],
    "blobs": make_blobs(n_samples=1200, n_features=5, centers=7, random_state=0)[0],
}


def _weights(X, weighted):
    return np.random.default_rng(1).uniform(0.5, 2.0, len(X)) if weighted else None


def _same_fit(km, ref, X) -> None:
    assert xplearn.get_namespace(km.cluster_centers_).__name__.endswith("dask.array")
    assert xplearn.get_namespace(km.labels_).__name__.endswith("dask.array")
    assert km.labels_.chunks[0] == X.chunks[0]
    centers = xplearn.to_numpy(km.cluster_centers_)
    assert centers.dtype == ref.cluster_centers_.dtype
    np.testing.assert_allclose(centers, ref.cluster_centers_, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(km.labels_.compute(), ref.labels_)
    assert km.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(km.inertia_, ref.inertia_, rtol=1e-10)


@pytest.mark.parametrize("data", list(DATA))
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_kmeans_plusplus_same_seed_same_result_as_numpy(da, data, weighted) -> None:
    X = DATA[data]
    w = _weights(X, weighted)
    ref = KMeans(8, random_state=3).fit(X, sample_weight=w)
    Xd = da.from_array(X, chunks=250)
    wd = None if w is None else da.from_array(w, chunks=250)
    km = KMeans(8, random_state=3).fit(Xd, sample_weight=wd)
    _same_fit(km, ref, Xd)


def test_random_init_and_given_init_as_numpy(da) -> None:
    X = DATA["blobs"]
    Xd = da.from_array(X, chunks=300)
    ref = KMeans(5, init="random", n_init=3, random_state=0).fit(X)
    _same_fit(KMeans(5, init="random", n_init=3, random_state=0).fit(Xd), ref, Xd)
    init = X[:6]
    ref = KMeans(6, init=init, n_init=1).fit(X)
    _same_fit(KMeans(6, init=da.from_array(init), n_init=1).fit(Xd), ref, Xd)


def test_float32_stays_float32(da) -> None:
    X = DATA["blobs"].astype(np.float32)
    Xd = da.from_array(X, chunks=400)
    km = KMeans(4, random_state=0).fit(Xd)
    ref = KMeans(4, random_state=0).fit(X)
    assert km.cluster_centers_.dtype == np.float32
    np.testing.assert_allclose(
        xplearn.to_numpy(km.cluster_centers_), ref.cluster_centers_, rtol=1e-4
    )
    np.testing.assert_array_equal(km.labels_.compute(), ref.labels_)


def test_empty_cluster_relocated_as_on_numpy(da) -> None:
    """A centre far from every point empties at the first E-step: the farthest
    point takes it, on blocks as in memory."""
    X = DATA["blobs"]
    init = np.vstack([X[:3], [[1e3] * X.shape[1]]])
    ref = KMeans(4, init=init, n_init=1).fit(X)
    Xd = da.from_array(X, chunks=200)
    _same_fit(KMeans(4, init=init, n_init=1).fit(Xd), ref, Xd)


def test_one_compute_per_lloyd_iteration(da) -> None:
    X = DATA["blobs"]
    Xd = da.from_array(X, chunks=200)
    with counting_dask() as rounds:
        km = KMeans(7, init=X[:7], n_init=1, tol=0).fit(Xd)
    # Set-up: values and range, mean, tolerance; then one per iteration and
    # one for the inertia: the data is read blockwise, never gathered.
    assert km.n_iter_ > 3
    assert rounds.count == 3 + km.n_iter_ + 1
    with counting_dask() as rounds:
        km = KMeans(7, n_init=1, random_state=0, tol=0).fit(Xd)
    # k-means++: the first centre (row, persist, potential), two per other.
    assert rounds.count == 3 + (3 + 2 * 6) + km.n_iter_ + 1


def test_queries_come_back_as_dask_and_numpy(da) -> None:
    X = DATA["digits"]
    Xd = da.from_array(X, chunks=250)
    km = KMeans(6, random_state=0).fit(Xd)
    ref = KMeans(6, random_state=0).fit(X)
    with counting_dask() as rounds:
        labels = km.predict(Xd)
        D = km.transform(Xd)
    assert rounds.count == 2  # the finiteness checks; the answers are lazy
    assert labels.chunks[0] == Xd.chunks[0]
    np.testing.assert_array_equal(labels.compute(), ref.predict(X))
    np.testing.assert_allclose(D.compute(), ref.transform(X), rtol=1e-10)
    # numpy in, numpy out (contract 1), computed blockwise.
    out = km.predict(X[:50])
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, ref.predict(X[:50]))
    np.testing.assert_allclose(km.score(Xd), ref.score(X), rtol=1e-10)
    with counting_dask() as rounds:
        km.score(Xd)
    assert rounds.count == 2  # the finiteness check, the sum


def test_functional_kmeans_returns_dask(da) -> None:
    X = DATA["blobs"]
    centers, labels, inertia = kmeans(da.from_array(X, chunks=300), 3, random_state=0)
    ref = kmeans(X, 3, random_state=0)
    assert xplearn.get_namespace(centers).__name__.endswith("dask.array")
    np.testing.assert_array_equal(labels.compute(), ref[1])
    np.testing.assert_allclose(inertia, ref[2], rtol=1e-10)


def test_bad_input_raises_the_common_errors(da) -> None:
    X = DATA["blobs"].copy()
    X[5, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        KMeans(3).fit(da.from_array(X, chunks=300))
    with pytest.raises(ValueError, match="n_samples=4 should be >= n_clusters=5"):
        KMeans(5).fit(da.from_array(X[:4]))
    with pytest.raises(ValueError, match="Negative values"):
        KMeans(3).fit(da.from_array(DATA["blobs"]), sample_weight=-np.ones(len(X)))


def test_minibatch_as_numpy_many_batches_per_round(da) -> None:
    from xplearn.cluster import MiniBatchKMeans

    X = DATA["blobs"]
    Xd = da.from_array(X, chunks=300)
    kw = {"batch_size": 64, "random_state": 0, "max_no_improvement": None}
    ref = MiniBatchKMeans(5, max_iter=2, **kw).fit(X)
    with counting_dask() as rounds:
        mbk = MiniBatchKMeans(5, max_iter=2, **kw).fit(Xd)
    assert mbk.n_steps_ == ref.n_steps_ > 30
    # Range, validation and init rows, the batches (all in one window here),
    # regathers after reassignments, the inertia: far fewer than the steps.
    assert rounds.count < mbk.n_steps_ / 2
    np.testing.assert_allclose(
        xplearn.to_numpy(mbk.cluster_centers_), ref.cluster_centers_, rtol=1e-10
    )
    np.testing.assert_array_equal(mbk.labels_.compute(), ref.labels_)
    assert mbk.labels_.chunks[0] == Xd.chunks[0]
