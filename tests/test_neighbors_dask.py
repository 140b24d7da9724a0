"""Neighbours fitted on dask: the fit data stays dask, answers come back dask."""

import numpy as np
import pytest
from sklearn.datasets import load_iris

import xplearn
from counting import counting_dask
from xplearn.neighbors import (
    KNeighborsClassifier,
    KNeighborsRegressor,
    NearestNeighbors,
)

# iris with its decimal ties broken: a tie in decimal is a coin toss in
# binary, decided by the summation order of the exact distances.
X, Y = load_iris(return_X_y=True)
X = X + np.random.default_rng(0).normal(scale=1e-3, size=X.shape)


def _is_dask(a) -> bool:
    return xplearn.get_namespace(a).__name__.endswith("dask.array")


@pytest.mark.parametrize("chunks", [40, 150])
def test_kneighbors_blockwise_equals_numpy(da, chunks) -> None:
    Xd = da.from_array(X, chunks=chunks)
    Q = da.from_array(X[::3], chunks=17)
    nn = NearestNeighbors(n_neighbors=6).fit(Xd)
    assert _is_dask(nn._fit_X)  # never gathered
    ref = NearestNeighbors(n_neighbors=6).fit(X)
    with counting_dask() as rounds:
        d, i = nn.kneighbors(Q)
    assert rounds.count <= 1  # the query's finiteness check; the search is lazy
    assert _is_dask(d)
    assert _is_dask(i)
    assert d.chunks[0] == Q.chunks[0]
    assert i.dtype == np.int64
    rd, ri = ref.kneighbors(X[::3])
    np.testing.assert_array_equal(i.compute(), ri)
    np.testing.assert_allclose(d.compute(), rd, rtol=1e-12)
    # X=None: each point's own row left out, as in memory.
    d, i = nn.kneighbors()
    rd, ri = ref.kneighbors()
    np.testing.assert_array_equal(i.compute(), ri)
    # numpy queries are answered in numpy.
    out = nn.kneighbors(X[:5], return_distance=False)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, ref.kneighbors(X[:5])[1])


def test_ties_go_to_the_lower_global_index(da) -> None:
    """Duplicated rows in different blocks: the lower index comes first."""
    base = np.random.default_rng(1).normal(size=(10, 3))
    Xdup = np.vstack([base, base, base])
    nn = NearestNeighbors(n_neighbors=3).fit(da.from_array(Xdup, chunks=7))
    i = nn.kneighbors(base, return_distance=False)
    np.testing.assert_array_equal(i, np.arange(10)[:, None] + [0, 10, 20])


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_classifier_and_regressor_answer_in_dask(da, weights) -> None:
    Xd, yd = da.from_array(X, chunks=50), da.from_array(Y, chunks=50)
    Q = da.from_array(X[::4], chunks=20)
    clf = KNeighborsClassifier(weights=weights).fit(Xd, yd)
    ref = KNeighborsClassifier(weights=weights).fit(X, Y)
    pred = clf.predict(Q)
    assert _is_dask(pred)
    np.testing.assert_array_equal(pred.compute(), ref.predict(X[::4]))
    proba = clf.predict_proba(Q)
    np.testing.assert_allclose(proba.compute(), ref.predict_proba(X[::4]))
    reg = KNeighborsRegressor(weights=weights).fit(Xd, yd.astype(float))
    out = reg.predict(Q)
    assert _is_dask(out)
    ref_r = KNeighborsRegressor(weights=weights).fit(X, Y.astype(float))
    np.testing.assert_allclose(out.compute(), ref_r.predict(X[::4]), rtol=1e-12)


def test_bad_fit_data_raises(da) -> None:
    bad = X.copy()
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        NearestNeighbors().fit(da.from_array(bad, chunks=50))
