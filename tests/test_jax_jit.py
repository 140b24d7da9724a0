"""xplearn inside ``jax.jit``: the eager answers, with no host round trip.

The jitted answers must be the eager ones (the same neighbours, ties to the
lower index; distances to float32 rounding) and agree with a float64
oracle (scipy's ``cdist``, by differences), on data made to break a naive
expansion: a common offset of 1e4 in float32, exact ties on an integer
grid, near-duplicates.  Each test checks the type and dtype of the jitted
outputs first, then the values.  Skipped unless jax is among --backends.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

import xplearn
from xplearn.cluster import KMeans, kmeans
from xplearn.metrics import pairwise_distances
from xplearn.neighbors import (
    KNeighborsClassifier,
    KNeighborsRegressor,
    NearestNeighbors,
    kneighbors,
)

METRICS = [
    ("euclidean", {}),
    ("sqeuclidean", {}),
    ("cosine", {}),
    ("manhattan", {}),
    ("chebyshev", {}),
    ("minkowski", {"p": 3}),
]
_SCIPY = {"manhattan": "cityblock", "minkowski": "minkowski"}


def _data(kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Queries and database of one adversarial kind, float32."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        X, Y = rng.normal(size=(60, 5)), rng.normal(size=(300, 5))
    elif kind == "offset":  # a naive expansion loses the distances to rounding
        X = rng.normal(size=(60, 5)) + 1e4
        Y = rng.normal(size=(300, 5)) + 1e4
    elif kind == "grid":  # exact ties everywhere: the lower index must win
        Y = rng.integers(0, 4, size=(300, 3)).astype(np.float64)
        X = rng.integers(0, 4, size=(60, 3)).astype(np.float64)
    else:  # near-duplicates: pairs 1e-3 apart, far from the origin
        base = rng.normal(size=(150, 4)) * 10 + 100
        Y = np.concatenate([base, base + 1e-3 * rng.normal(size=base.shape)])
        X = base[:60] + 1e-4
    return X.astype(np.float32), Y.astype(np.float32)


def _oracle(X: np.ndarray, Y: np.ndarray, metric: str, kwds: dict) -> np.ndarray:
    """float64 distances by differences (scipy)."""
    D = cdist(
        X.astype(np.float64), Y.astype(np.float64), _SCIPY.get(metric, metric), **kwds
    )
    # scipy's cosine of a zero row is NaN; scikit-learn's (and xplearn's) is 1
    return np.nan_to_num(D, nan=1.0) if metric == "cosine" else D


def _check(jax, x, dtype):
    assert isinstance(x, jax.Array), type(x)
    assert x.dtype == dtype, (x.dtype, dtype)
    return np.asarray(x)


def _index_dtype(jnp):
    return jnp.int64 if jnp.zeros(1, dtype=jnp.int64).dtype == jnp.int64 else jnp.int32


def _assert_neighbours(dist, ind, D, k, *, rtol=2e-6, atol=1e-6, ties=False):
    """``(dist, ind)`` are true k nearest of the oracle ``D``; ``ties``: exact ties."""
    want = np.sort(D, axis=1)[:, :k]
    np.testing.assert_allclose(dist, want, rtol=rtol, atol=atol)
    np.testing.assert_allclose(
        np.take_along_axis(D, ind.astype(np.int64), axis=1), want, rtol=rtol, atol=atol
    )
    if ties:  # equal distances: the lower index first
        np.testing.assert_array_equal(ind, np.argsort(D, axis=1, kind="stable")[:, :k])


@pytest.mark.parametrize("kind", ["random", "offset", "grid", "near_duplicates"])
@pytest.mark.parametrize(("metric", "kwds"), METRICS, ids=[m for m, _ in METRICS])
def test_kneighbors_equals_eager_and_oracle(jax, kind, metric, kwds) -> None:
    jnp = jax.numpy
    X, Y = _data(kind)
    if metric == "cosine" and kind in ("offset", "near_duplicates"):
        # every angle is ~1e-9: float32 cannot rank them, eager or not
        pytest.skip("cosine distances below float32 resolution")
    k = 6
    f = jax.jit(lambda a, b: kneighbors(a, b, k, metric=metric, **kwds))
    dist, ind = f(jnp.asarray(X), jnp.asarray(Y))
    d = _check(jax, dist, jnp.float32)
    i = _check(jax, ind, _index_dtype(jnp))
    d0, i0 = kneighbors(jnp.asarray(X), jnp.asarray(Y), k, metric=metric, **kwds)
    assert i0.dtype == ind.dtype
    if metric != "cosine":  # cosine: a GEMM, whose rounding follows its shape
        np.testing.assert_array_equal(i, np.asarray(i0))
    np.testing.assert_allclose(d, np.asarray(d0), rtol=1e-6, atol=1e-6)
    D = _oracle(X, Y, metric, kwds)
    scale = np.abs(D).max()
    _assert_neighbours(
        d,
        i,
        D,
        k,
        rtol=2e-6 if metric != "minkowski" else 1e-5,
        atol=1e-6 * scale,
        # cosine: proportional rows tie only up to the normalisation's rounding
        ties=kind == "grid" and metric != "cosine",
    )


def test_euclidean_offset_keeps_its_accuracy(jax) -> None:
    """A common offset of 1e4 in float32: distances exact in float32, not 1e-2 off."""
    jnp = jax.numpy
    X, Y = _data("offset")
    dist, ind = jax.jit(lambda a, b: kneighbors(a, b, 3))(
        jnp.asarray(X), jnp.asarray(Y)
    )
    D = _oracle(X, Y, "euclidean", {})
    want = np.sort(D, axis=1)[:, :3]
    # float32 resolution at the distances (~1), not at the offset (1e4 · 2**-24)
    np.testing.assert_allclose(np.asarray(dist), want, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(ind), np.argsort(D, axis=1)[:, :3])


def test_self_search_distance_zero_and_duplicates(jax) -> None:
    jnp = jax.numpy
    X, _ = _data("grid")
    dist, ind = jax.jit(lambda a: kneighbors(a, None, 4))(jnp.asarray(X))
    D = _oracle(X, X, "euclidean", {})
    _assert_neighbours(np.asarray(dist), np.asarray(ind), D, 4, ties=True)
    assert np.all(np.asarray(dist)[:, 0] == 0.0)


def test_tiles_and_redo_loop(jax) -> None:
    """A tiny budget: many row tiles, column chunks, and ties redone in blocks."""
    jnp = jax.numpy
    X, Y = _data("grid", seed=1)
    D = _oracle(X, Y, "euclidean", {})
    with xplearn.config_context(working_memory=0.01):
        dist, ind = jax.jit(lambda a, b: kneighbors(a, b, 5))(
            jnp.asarray(X), jnp.asarray(Y)
        )
        P = jax.jit(pairwise_distances)(jnp.asarray(X), jnp.asarray(Y))
    _assert_neighbours(np.asarray(dist), np.asarray(ind), D, 5, ties=True)
    np.testing.assert_allclose(np.asarray(P), D, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["random", "offset", "near_duplicates"])
@pytest.mark.parametrize(("metric", "kwds"), METRICS, ids=[m for m, _ in METRICS])
def test_pairwise_distances_equals_eager_and_oracle(jax, kind, metric, kwds) -> None:
    jnp = jax.numpy
    X, Y = _data(kind)
    if metric == "cosine" and kind != "random":
        pytest.skip("cosine distances below float32 resolution")
    f = jax.jit(lambda a, b: pairwise_distances(a, b, metric=metric, **kwds))
    D = _check(jax, f(jnp.asarray(X), jnp.asarray(Y)), jnp.float32)
    D0 = pairwise_distances(jnp.asarray(X), jnp.asarray(Y), metric=metric, **kwds)
    np.testing.assert_allclose(D, np.asarray(D0), rtol=1e-6, atol=1e-6)
    oracle = _oracle(X, Y, metric, kwds)
    np.testing.assert_allclose(D, oracle, rtol=1e-5, atol=1e-6 * np.abs(oracle).max())
    # Y omitted: the diagonal is exactly 0
    S = jax.jit(lambda a: pairwise_distances(a, metric=metric, **kwds))(jnp.asarray(X))
    if metric in ("euclidean", "sqeuclidean", "cosine"):
        assert np.all(np.diag(np.asarray(S)) == 0.0)


def test_vmap_over_query_batches(jax) -> None:
    jnp = jax.numpy
    X, Y = _data("grid")
    Q = jnp.asarray(X.reshape(4, 15, 3))
    dist, ind = jax.jit(jax.vmap(lambda q: kneighbors(q, jnp.asarray(Y), 4)))(Q)
    assert ind.shape == (4, 15, 4)
    for b in range(4):
        d0, i0 = kneighbors(Q[b], jnp.asarray(Y), 4)
        np.testing.assert_array_equal(np.asarray(ind[b]), np.asarray(i0))
        np.testing.assert_allclose(np.asarray(dist[b]), np.asarray(d0), rtol=1e-6)


def test_float64_with_x64(jax) -> None:
    """float64 (``jax_enable_x64``): an offset of 1e8, grid ties, KMeans ties."""
    enable_x64 = getattr(jax, "enable_x64", None)
    if enable_x64 is None:  # pragma: no cover - jax before the context manager
        pytest.skip("this jax has no jax.enable_x64 context")
    jnp = jax.numpy
    rng = np.random.default_rng(3)
    grid = rng.integers(0, 4, size=(200, 3)).astype(np.float64)
    with enable_x64(True):
        for Y in (grid, grid + 1e8, rng.normal(size=(200, 4)) + 1e8):
            X = Y[:40] + (0.0 if Y is not grid else 0.5)
            dist, ind = jax.jit(lambda a, b: kneighbors(a, b, 5))(
                jnp.asarray(X), jnp.asarray(Y)
            )
            d = _check(jax, dist, jnp.float64)
            i = _check(jax, ind, jnp.int64)
            d0, i0 = kneighbors(jnp.asarray(X), jnp.asarray(Y), 5)
            np.testing.assert_array_equal(i, np.asarray(i0))
            np.testing.assert_allclose(d, np.asarray(d0), rtol=1e-14)
            D = _oracle(X, Y, "euclidean", {})
            _assert_neighbours(d, i, D, 5, rtol=1e-12, atol=1e-12, ties=True)
        # KMeans: points equally far from two centres go to the lower index
        X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]])
        init = np.array([[1.0], [3.0]])
        f = jax.jit(lambda a: kmeans(a, 2, init=init, max_iter=1, tol=0.0))
        c, lab, inertia = f(jnp.asarray(X))
        c0, l0, in0 = kmeans(X, 2, init=init, max_iter=1, tol=0.0)
        np.testing.assert_array_equal(_check(jax, lab, jnp.int64), l0)
        np.testing.assert_allclose(_check(jax, c, jnp.float64), c0)
        assert float(inertia) == pytest.approx(in0, rel=1e-12)


def test_dtypes_follow_the_eager_policy(jax) -> None:
    jnp = jax.numpy
    X, Y = _data("random")
    half = jax.jit(lambda a, b: kneighbors(a, b, 2))(
        jnp.asarray(X, dtype=jnp.float16), jnp.asarray(Y)
    )
    _check(jax, half[0], jnp.float16)  # computed in float32, returned as given
    ints = jax.jit(pairwise_distances)(jnp.asarray(X[:5] * 10, jnp.int32))
    _check(jax, ints, jnp.asarray(0.0).dtype)  # the default float


def test_no_host_round_trip(jax) -> None:
    """Tracing and running move nothing between host and device."""
    jnp = jax.numpy
    X, Y = _data("grid")
    Xj, Yj, init = jnp.asarray(X), jnp.asarray(Y), jnp.asarray(Y[:4])
    nn = NearestNeighbors(n_neighbors=3).fit(Yj)
    km = KMeans(4, random_state=0, n_init=1).fit(Yj)
    calls = [
        jax.jit(lambda a, b: kneighbors(a, b, 3)),
        jax.jit(pairwise_distances),
        jax.jit(lambda a, b: nn.kneighbors(a)),
        jax.jit(lambda a, b: km.predict(a)),
        jax.jit(lambda a, b: kmeans(a, 4, init=b[:4], max_iter=20, tol=0.0)),
    ]
    args = [(Xj, Yj), (Xj, Yj), (Xj, Yj), (Xj, Yj), (Yj, init)]
    with jax.transfer_guard("disallow"):
        out = [f(*a) for f, a in zip(calls, args, strict=True)]
        jax.block_until_ready(out)
    jaxpr = str(jax.make_jaxpr(lambda a, b: kneighbors(a, b, 3))(Xj, Yj))
    assert "callback" not in jaxpr


# -- fitted estimators ---------------------------------------------------------


def _fit_on(jax, where, X):
    return jax.numpy.asarray(X) if where == "jax" else X


@pytest.mark.parametrize("where", ["numpy", "jax"])
@pytest.mark.parametrize("kind", ["random", "offset", "grid"])
def test_nearest_neighbors_equals_eager(jax, where, kind) -> None:
    jnp = jax.numpy
    X, Y = _data(kind)
    nn = NearestNeighbors(n_neighbors=4).fit(_fit_on(jax, where, Y))
    Q = jnp.asarray(X)
    dist, ind = jax.jit(nn.kneighbors)(Q)
    d = _check(jax, dist, jnp.float32)
    i = _check(jax, ind, _index_dtype(jnp))
    d0, i0 = nn.kneighbors(Q)
    np.testing.assert_array_equal(i, np.asarray(i0))
    np.testing.assert_allclose(d, np.asarray(d0), rtol=1e-6, atol=1e-6)
    only = jax.jit(lambda q: nn.kneighbors(q, n_neighbors=2, return_distance=False))
    np.testing.assert_array_equal(np.asarray(only(Q)), i[:, :2])
    _assert_neighbours(
        d, i, _oracle(X, Y, "euclidean", {}), 4, ties=kind == "grid", atol=1e-4
    )


@pytest.mark.parametrize("where", ["numpy", "jax"])
@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_classifier_and_regressor_equal_eager_and_sklearn(jax, where, weights) -> None:
    from sklearn.neighbors import KNeighborsClassifier as SkC
    from sklearn.neighbors import KNeighborsRegressor as SkR

    jnp = jax.numpy
    X, Y = _data("random")
    y = (Y[:, 0] + Y[:, 1] > 0).astype(np.int64) + 3 * (Y[:, 2] > 0.5)
    t = Y[:, 3] * 2.0
    clf = KNeighborsClassifier(5, weights=weights).fit(_fit_on(jax, where, Y), y)
    reg = KNeighborsRegressor(5, weights=weights).fit(_fit_on(jax, where, Y), t)
    Q = jnp.asarray(X)
    pred = np.asarray(jax.jit(clf.predict)(Q))
    proba = _check(jax, jax.jit(clf.predict_proba)(Q), jnp.float32)
    value = _check(jax, jax.jit(reg.predict)(Q), jnp.float32)
    np.testing.assert_array_equal(pred, np.asarray(clf.predict(Q)))
    np.testing.assert_allclose(proba, np.asarray(clf.predict_proba(Q)), rtol=1e-6)
    np.testing.assert_allclose(value, np.asarray(reg.predict(Q)), rtol=1e-5, atol=1e-6)
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    sk_c = SkC(5, weights=weights).fit(Y64, y)
    np.testing.assert_array_equal(pred, sk_c.predict(X64))
    np.testing.assert_allclose(proba, sk_c.predict_proba(X64), rtol=1e-5, atol=1e-6)
    sk_r = SkR(5, weights=weights).fit(Y64, t)
    np.testing.assert_allclose(value, sk_r.predict(X64), rtol=1e-5, atol=1e-6)


def test_classifier_multi_output_and_string_labels(jax) -> None:
    jnp = jax.numpy
    X, Y = _data("random")
    y2 = np.stack([(Y[:, 0] > 0).astype(int), (Y[:, 1] > 0).astype(int) + 7], axis=1)
    clf = KNeighborsClassifier(3).fit(Y, y2)
    Q = jnp.asarray(X)
    np.testing.assert_array_equal(
        np.asarray(jax.jit(clf.predict)(Q)), np.asarray(clf.predict(Q))
    )
    strings = KNeighborsClassifier(3).fit(Y, np.where(Y[:, 0] > 0, "a", "b"))
    with pytest.raises(TypeError, match="predict_proba"):
        jax.jit(strings.predict)(Q)
    np.testing.assert_allclose(
        np.asarray(jax.jit(strings.predict_proba)(Q)),
        np.asarray(strings.predict_proba(Q)),
    )


@pytest.mark.parametrize("where", ["numpy", "jax"])
@pytest.mark.parametrize("kind", ["random", "offset"])
def test_kmeans_queries_equal_eager(jax, where, kind) -> None:
    jnp = jax.numpy
    X, Y = _data(kind)
    km = KMeans(5, random_state=0, n_init=1).fit(_fit_on(jax, where, Y))
    Q = jnp.asarray(X)
    labels = _check(jax, jax.jit(km.predict)(Q), _index_dtype(jnp))
    np.testing.assert_array_equal(labels, np.asarray(km.predict(Q)))
    T = _check(jax, jax.jit(km.transform)(Q), jnp.float32)
    np.testing.assert_allclose(T, np.asarray(km.transform(Q)), rtol=1e-6, atol=1e-6)
    C = np.asarray(km.cluster_centers_, dtype=np.float64)
    np.testing.assert_allclose(T, cdist(X.astype(np.float64), C), rtol=1e-5)
    score = float(jax.jit(km.score)(Q))
    assert score == pytest.approx(km.score(Q), rel=1e-5)


def test_minibatch_and_supervised_kneighbors_equal_eager(jax) -> None:
    """The other fitted query methods: MiniBatchKMeans' predict / transform /
    score, the classifier's and regressor's kneighbors; the radius
    estimators' predict (data-dependent work) raises the clear TypeError."""
    from xplearn.cluster import MiniBatchKMeans
    from xplearn.neighbors import RadiusNeighborsClassifier, RadiusNeighborsRegressor

    jnp = jax.numpy
    X, Y = _data("random")
    Q = jnp.asarray(X)
    mbk = MiniBatchKMeans(12, batch_size=64, random_state=0).fit(Y)
    labels = _check(jax, jax.jit(mbk.predict)(Q), _index_dtype(jnp))
    np.testing.assert_array_equal(labels, np.asarray(mbk.predict(Q)))
    T = _check(jax, jax.jit(mbk.transform)(Q), jnp.float32)
    np.testing.assert_allclose(T, np.asarray(mbk.transform(Q)), rtol=1e-6, atol=1e-6)
    assert float(jax.jit(mbk.score)(Q)) == pytest.approx(mbk.score(Q), rel=1e-5)
    y = (Y[:, 0] > 0).astype(np.int64)
    for est in (
        KNeighborsClassifier(4).fit(Y, y),
        KNeighborsRegressor(4).fit(Y, Y[:, 0]),
    ):
        dist, ind = jax.jit(est.kneighbors)(Q)
        d0, i0 = est.kneighbors(Q)
        np.testing.assert_array_equal(
            _check(jax, ind, _index_dtype(jnp)), np.asarray(i0)
        )
        np.testing.assert_allclose(
            _check(jax, dist, jnp.float32), np.asarray(d0), rtol=1e-6, atol=1e-6
        )
    for est in (
        RadiusNeighborsClassifier(1.0, outlier_label=0).fit(Y, y),
        RadiusNeighborsRegressor(1.0).fit(Y, Y[:, 0]),
    ):
        with pytest.raises(TypeError, match="jax tracer"):
            jax.jit(est.predict)(Q)


# -- kmeans fitted under jit -------------------------------------------------


def _blobs(n=400, d=3, centers=4, offset=0.0, seed=0):
    rng = np.random.default_rng(seed)
    C = rng.normal(size=(centers, d)) * 5
    X = np.concatenate([c + rng.normal(size=(n // centers, d)) for c in C]) + offset
    return rng.permutation(X).astype(np.float32)


@pytest.mark.parametrize("tol", [0.0, 1e-4])
@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_kmeans_equals_eager_and_sklearn(jax, tol, offset) -> None:
    from sklearn.cluster import KMeans as SkKMeans

    jnp = jax.numpy
    X = _blobs(offset=offset)
    init = X[:4]
    f = jax.jit(
        lambda a, i: kmeans(a, 4, init=i, max_iter=50, tol=tol, return_n_iter=True)
    )
    centers, labels, inertia, n_iter = f(jnp.asarray(X), jnp.asarray(init))
    c = _check(jax, centers, jnp.float32)
    lab = _check(jax, labels, _index_dtype(jnp))
    c0, l0, in0, n0 = kmeans(
        jnp.asarray(X), 4, init=init, max_iter=50, tol=tol, return_n_iter=True
    )
    np.testing.assert_array_equal(lab, np.asarray(l0))
    np.testing.assert_allclose(c, np.asarray(c0), rtol=1e-6)
    assert int(n_iter) == n0
    assert float(inertia) == pytest.approx(in0, rel=1e-5)
    sk = SkKMeans(4, init=init.astype(np.float64), n_init=1, max_iter=50, tol=tol)
    sk.fit(X.astype(np.float64))
    np.testing.assert_array_equal(lab, sk.labels_)
    np.testing.assert_allclose(c, sk.cluster_centers_, rtol=1e-6, atol=1e-5)


def test_kmeans_max_iter_weights_and_empty_clusters(jax) -> None:
    jnp = jax.numpy
    X = np.array([[0, 0], [0, 0], [1, 1], [1, 1], [5, 5], [9, 9]], np.float32)
    init = np.zeros((3, 2), np.float32)  # two clusters start empty
    w = np.array([1, 2, 1, 1, 3, 1], np.float32)
    f = jax.jit(lambda a, s: kmeans(a, 3, init=init, sample_weight=s, tol=0.0))
    c, lab, inertia = f(jnp.asarray(X), jnp.asarray(w))
    c0, l0, in0 = kmeans(X, 3, init=init, sample_weight=w, tol=0.0)
    np.testing.assert_allclose(np.asarray(c), c0)
    np.testing.assert_array_equal(np.asarray(lab), l0)
    assert float(inertia) == pytest.approx(in0)
    X = _blobs()
    one = jax.jit(lambda a: kmeans(a, 4, init=a[:4], max_iter=1, return_n_iter=True))
    c1, l1, _, n1 = one(jnp.asarray(X))
    c0, l0, _, n0 = kmeans(X, 4, init=X[:4], max_iter=1, return_n_iter=True)
    assert int(n1) == n0 == 1
    np.testing.assert_array_equal(np.asarray(l1), l0)
    np.testing.assert_allclose(np.asarray(c1), c0, rtol=1e-6)


# -- what cannot be jitted ---------------------------------------------------


def test_errors(jax) -> None:
    jnp = jax.numpy
    X, Y = _data("random")
    Q = jnp.asarray(X)
    nn = NearestNeighbors(n_neighbors=3).fit(Y)
    with pytest.raises(TypeError, match=r"radius_neighbors .*output size"):
        jax.jit(nn.radius_neighbors)(Q)
    with pytest.raises(TypeError, match="kneighbors_graph"):
        jax.jit(nn.kneighbors_graph)(Q)
    with pytest.raises(TypeError, match=r"radius_neighbors_graph .*output size"):
        jax.jit(nn.radius_neighbors_graph)(Q)
    with pytest.raises(TypeError, match="jax tracer"):
        jax.jit(lambda q: NearestNeighbors().fit(q))(Q)
    with pytest.raises(TypeError, match="jax tracer"):
        jax.jit(lambda q: KMeans(2).fit(q))(Q)
    with pytest.raises(TypeError, match=r"cannot be computed under jax.jit"):
        jax.jit(lambda q: kneighbors(q, Y, 3, metric="braycurtis"))(Q)
    with pytest.raises(TypeError, match=r"cannot be computed under jax.jit"):
        jax.jit(lambda q: pairwise_distances(q, metric="precomputed"))(Q)
    scipy_nn = NearestNeighbors(n_neighbors=3, metric="canberra").fit(Y)
    with pytest.raises(TypeError, match=r"cannot be computed under jax.jit"):
        jax.jit(scipy_nn.kneighbors)(Q)
    with pytest.raises(TypeError, match="init as an array"):
        jax.jit(lambda q: kmeans(q, 3))(Q)
    with pytest.raises(TypeError, match=r"score \(it compares with y"):
        jax.jit(lambda q: KNeighborsRegressor(2).fit(Y, Y[:, 0]).score(q, Q[:, 0]))(Q)
    # shape errors are known while tracing: the eager exceptions
    with pytest.raises(ValueError, match="Expected n_neighbors <= n_samples_fit"):
        jax.jit(lambda q: kneighbors(q, Y[:2], 3))(Q)
    with pytest.raises(ValueError, match="features"):
        jax.jit(nn.kneighbors)(Q[:, :2])
    with pytest.raises(ValueError, match="2D array"):
        jax.jit(lambda q: kneighbors(q[0], Y, 3))(Q)
    with pytest.raises(ValueError, match="initial centers"):
        jax.jit(lambda q: kmeans(q, 3, init=q[:2]))(Q)
