"""Neighbours fitted on dask: the fit data stays dask, answers come back dask."""

import numpy as np
import pytest
from sklearn.datasets import load_iris

import xplearn
from counting import counting_dask, recording_dask
from xplearn.neighbors import (
    KNeighborsClassifier,
    KNeighborsRegressor,
    NearestNeighbors,
    RadiusNeighborsClassifier,
    RadiusNeighborsRegressor,
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


@pytest.mark.parametrize(
    ("dtype", "scale"),
    [("float32", 0), ("float64", 0), ("float64", -1000), ("float64", 1000)],
)
@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean"])
def test_blocks_merge_in_the_float64_order(da, metric, dtype, scale) -> None:
    """Points on a sphere around the queries: distances a few units in the
    last place apart, equal once rounded or rooted.  The blocks' lists merge
    by their float64 squares, so the answer is numpy's bit for bit and the
    float64 order (merged on the rounded distances, 22% of the float32
    neighbours were out of that order), leave-one-out too; float64 data at
    2**±1000, whose squares underflow or overflow, too (merged at the
    pair's power-of-two scale)."""
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(4)
    v = rng.standard_normal((1200, 32))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    pts = (v * (1 + 1e-7 * rng.standard_normal((1200, 1)))).astype(dtype)
    pts[:100] *= 1e-5
    sq = cdist(
        pts[:100].astype(np.float64), pts[100:].astype(np.float64), "sqeuclidean"
    )
    pts *= 2.0**scale  # (exact)
    F, Q = pts[100:], pts[:100]
    nn = NearestNeighbors(n_neighbors=7, metric=metric)
    d, i = nn.fit(da.from_array(F, chunks=250)).kneighbors(da.from_array(Q, chunks=40))
    ref = NearestNeighbors(n_neighbors=7, metric=metric).fit(F).kneighbors(Q)
    np.testing.assert_array_equal(i.compute(), ref[1])
    np.testing.assert_array_equal(d.compute(), ref[0])
    want = np.argsort(sq, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(i.compute(), want)
    d, i = nn.kneighbors()  # leave-one-out, over the blocks
    ref = NearestNeighbors(n_neighbors=7, metric=metric).fit(F).kneighbors()
    np.testing.assert_array_equal(i.compute(), ref[1])
    np.testing.assert_array_equal(d.compute(), ref[0])


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


def _gathered(est, rounds) -> bool:
    """Whether a compute returned the fit data (an array of its shape)."""
    return tuple(est._fit_X.shape) in rounds.shapes


@pytest.mark.parametrize("sort_results", [False, True])
@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "manhattan"])
def test_radius_neighbors_blockwise_equals_numpy(da, metric, sort_results) -> None:
    """Pairs found per block of queries and block of the fit data: numpy's
    indices and order; the fit data is never computed.

    Distances are numpy's exactly where they are exact (sorted Euclidean
    results are measured by differences, Manhattan always); the unsorted
    Euclidean ones come from the expansion, whose matrix product rounds by
    the shape of the tile (a block here, a working-memory chunk in numpy).
    """
    radius = {"euclidean": 0.5, "sqeuclidean": 0.25, "manhattan": 0.8}[metric]
    exact = sort_results or metric == "manhattan"

    def same(a, c):
        if exact:
            np.testing.assert_array_equal(a, c)
        else:
            np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-15)

    nn = NearestNeighbors(radius=radius, metric=metric).fit(da.from_array(X, chunks=40))
    assert _is_dask(nn._fit_X)
    ref = NearestNeighbors(radius=radius, metric=metric).fit(X)
    Q = da.from_array(X[::3], chunks=17)
    with recording_dask() as rounds:
        d, i = nn.radius_neighbors(Q, sort_results=sort_results)
    # The query's finiteness check, then the search: the fit data's blocks
    # are inputs of tasks (on the workers), never results sent to the caller.
    assert rounds.count <= 2
    assert not _gathered(nn, rounds)
    rd, ri = ref.radius_neighbors(X[::3], sort_results=sort_results)
    assert d.dtype == object
    assert len(i) == len(ri)
    for a, b, c, e in zip(d, i, rd, ri, strict=True):
        # Ragged answers are no dask arrays: computed numpy per query.
        assert isinstance(a, np.ndarray)
        assert isinstance(b, np.ndarray)
        assert b.dtype == np.int64
        np.testing.assert_array_equal(b, e)
        same(a, c)
    # X=None: the fit data against itself, each point without itself.
    with recording_dask() as rounds:
        d, i = nn.radius_neighbors(sort_results=sort_results)
    assert not _gathered(nn, rounds)
    rd, ri = ref.radius_neighbors(sort_results=sort_results)
    for a, b, c, e in zip(d, i, rd, ri, strict=True):
        np.testing.assert_array_equal(b, e)
        same(a, c)
    # numpy queries, per-query radii.
    radii = np.linspace(0.5, 1.5, 20) * radius
    d, i = nn.radius_neighbors(X[:20], radius=radii, sort_results=sort_results)
    rd, ri = ref.radius_neighbors(X[:20], radius=radii, sort_results=sort_results)
    for a, b, c, e in zip(d, i, rd, ri, strict=True):
        np.testing.assert_array_equal(b, e)
        same(a, c)


@pytest.mark.parametrize("mode", ["connectivity", "distance"])
def test_radius_graph_from_block_pairs(da, mode) -> None:
    nn = NearestNeighbors(radius=0.6).fit(da.from_array(X, chunks=33))
    ref = NearestNeighbors(radius=0.6).fit(X)
    for q, rq in [(da.from_array(X[::2], chunks=30), X[::2]), (None, None)]:
        with recording_dask() as rounds:
            G = nn.radius_neighbors_graph(q, mode=mode, sort_results=True)
        assert not _gathered(nn, rounds)
        R = ref.radius_neighbors_graph(rq, mode=mode, sort_results=True)
        assert G.format == "csr"
        assert G.shape == R.shape
        np.testing.assert_array_equal(G.indptr, R.indptr)
        np.testing.assert_array_equal(G.indices, R.indices)
        np.testing.assert_array_equal(G.data, R.data)


def test_radius_ties_across_blocks_go_to_the_lower_index(da) -> None:
    base = np.random.default_rng(2).normal(size=(10, 3))
    nn = NearestNeighbors(radius=1e-9).fit(
        da.from_array(np.vstack([base, base, base]), chunks=7)
    )
    d, i = nn.radius_neighbors(base, sort_results=True)
    for j in range(10):
        np.testing.assert_array_equal(i[j], [j, j + 10, j + 20])
        np.testing.assert_array_equal(d[j], 0.0)


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_radius_estimators_fitted_on_dask(da, weights) -> None:
    Xd, yd = da.from_array(X, chunks=50), da.from_array(Y, chunks=50)
    Q = da.from_array(X[::4], chunks=20)
    kw = {"weights": weights, "outlier_label": "most_frequent"}
    clf = RadiusNeighborsClassifier(0.4, **kw).fit(Xd, yd)
    ref = RadiusNeighborsClassifier(0.4, **kw).fit(X, Y)
    with recording_dask() as rounds:
        pred = clf.predict(Q)
    assert not _gathered(clf, rounds)
    assert _is_dask(pred)
    np.testing.assert_array_equal(pred.compute(), ref.predict(X[::4]))
    np.testing.assert_array_equal(clf.predict(None).compute(), ref.predict(None))
    proba = clf.predict_proba(Q)
    assert _is_dask(proba)
    # "distance" weights: the expansion's distances round by the tile shape.
    np.testing.assert_allclose(proba.compute(), ref.predict_proba(X[::4]), rtol=1e-12)
    reg = RadiusNeighborsRegressor(0.6, weights=weights).fit(Xd, yd.astype(float))
    ref_r = RadiusNeighborsRegressor(0.6, weights=weights).fit(X, Y.astype(float))
    out = reg.predict(Q)
    assert _is_dask(out)
    np.testing.assert_allclose(out.compute(), ref_r.predict(X[::4]), rtol=1e-12)
