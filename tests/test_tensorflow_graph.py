"""Fitted estimators queried inside tf.function, and KMeans fitted there.

The graph answers must be the eager ones: the same neighbours (ties to the
lower index), labels and cluster labels, distances to float32 rounding, for
estimators fitted on any backend.  Each test checks the type and dtype of
the graph's outputs first, then the values.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

import xplearn
from tfdata import DATA, dataset
from xplearn.cluster import KMeans, MiniBatchKMeans
from xplearn.neighbors import (
    KNeighborsClassifier,
    KNeighborsRegressor,
    NearestNeighbors,
)


def _graph(tf, fn):
    """``fn`` traced by tf.function, called on a float32 constant."""
    f = tf.function(fn)
    return lambda Q: f(tf.constant(Q))


def _check(tf, x, dtype):
    assert isinstance(x, tf.Tensor), type(x)
    assert x.dtype == dtype, (x.dtype, dtype)
    return x.numpy()


def _fit_data(backend, X):
    return backend.asarray(X)


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean"])
@pytest.mark.parametrize("data", DATA)
def test_kneighbors_equals_eager(tf, backend, data, metric) -> None:
    X, Q = dataset(data)
    nn = NearestNeighbors(n_neighbors=5, metric=metric).fit(_fit_data(backend, X))
    dist, ind = _graph(tf, nn.kneighbors)(Q)
    want_d, want_i = (xplearn.to_numpy(a) for a in nn.kneighbors(Q))
    np.testing.assert_array_equal(_check(tf, ind, tf.int64), want_i)
    # TF flushes subnormal results to zero on CPUs: squared distances of the
    # "tiny" data (1e-40) come out 0; the neighbours are those of the eager path.
    tiny = float(np.finfo(np.float32).tiny)
    np.testing.assert_allclose(
        _check(tf, dist, tf.float32), want_d, rtol=1e-6, atol=tiny
    )


@pytest.mark.parametrize("k", [1, 3, 20])
def test_kneighbors_k_and_self_distance(tf, k) -> None:
    X, _ = dataset("grid")
    nn = NearestNeighbors(n_neighbors=k).fit(X)
    f = _graph(tf, lambda q: nn.kneighbors(q, return_distance=False))
    np.testing.assert_array_equal(_check(tf, f(X), tf.int64), nn.kneighbors(X)[1])
    dist, ind = _graph(tf, lambda q: nn.kneighbors(q, n_neighbors=2))(X)
    assert (_check(tf, dist, tf.float32)[:, 0] == 0.0).all()  # exactly 0 to itself
    np.testing.assert_array_equal(ind.numpy()[:, 0], np.arange(X.shape[0]))


def test_float64_fit_answers_in_float64(tf) -> None:
    X, Q = dataset("offset")
    nn = NearestNeighbors(n_neighbors=4).fit(X.astype(np.float64))
    dist, ind = _graph(tf, nn.kneighbors)(Q.astype(np.float64))
    want_d, want_i = nn.kneighbors(Q.astype(np.float64))
    np.testing.assert_array_equal(_check(tf, ind, tf.int64), want_i)
    np.testing.assert_allclose(_check(tf, dist, tf.float64), want_d, rtol=1e-12)


@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("data", ["gauss", "grid", "duplicates"])
def test_classifier_equals_eager(tf, backend, data, weights) -> None:
    X, Q = dataset(data)
    y = (np.arange(X.shape[0]) * 7) % 3
    clf = KNeighborsClassifier(n_neighbors=4, weights=weights)
    clf.fit(_fit_data(backend, X), backend.asarray(y))
    pred, proba = _graph(tf, lambda q: (clf.predict(q), clf.predict_proba(q)))(Q)
    want = xplearn.to_numpy(clf.predict(Q))
    np.testing.assert_array_equal(_check(tf, pred, tf.as_dtype(want.dtype)), want)
    np.testing.assert_allclose(
        _check(tf, proba, tf.float32), xplearn.to_numpy(clf.predict_proba(Q)), rtol=1e-6
    )


def test_classifier_string_and_multi_output_labels(tf) -> None:
    X, Q = dataset("gauss")
    y = np.array(["ant", "bee", "cat"])[np.arange(X.shape[0]) % 3]
    clf = KNeighborsClassifier(n_neighbors=3).fit(X, y)
    pred = _check(tf, _graph(tf, clf.predict)(Q), tf.string)
    np.testing.assert_array_equal(pred.astype(str), clf.predict(Q))
    Y2 = np.stack([np.arange(X.shape[0]) % 2, np.arange(X.shape[0]) % 5], axis=1)
    multi = KNeighborsClassifier(n_neighbors=5, weights="distance").fit(X, Y2)
    pred, proba = _graph(tf, lambda q: (multi.predict(q), multi.predict_proba(q)))(Q)
    np.testing.assert_array_equal(_check(tf, pred, tf.int64), multi.predict(Q))
    assert len(proba) == 2
    for got, want in zip(proba, multi.predict_proba(Q), strict=True):
        np.testing.assert_allclose(_check(tf, got, tf.float32), want, rtol=1e-6)


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_regressor_equals_eager(tf, backend, weights) -> None:
    X, Q = dataset("duplicates")
    y = np.sin(X).sum(axis=1)
    reg = KNeighborsRegressor(n_neighbors=4, weights=weights)
    reg.fit(_fit_data(backend, X), backend.asarray(y.astype(np.float32)))
    got = _check(tf, _graph(tf, reg.predict)(Q), tf.float32)
    np.testing.assert_allclose(got, xplearn.to_numpy(reg.predict(Q)), rtol=1e-6)
    multi = KNeighborsRegressor(n_neighbors=3).fit(X, np.stack([y, -y], axis=1))
    got = _check(tf, _graph(tf, multi.predict)(Q), tf.float32)
    np.testing.assert_allclose(got, multi.predict(Q), rtol=1e-6)


@pytest.mark.parametrize("data", ["gauss", "offset", "grid", "huge"])
def test_kmeans_queries_equal_eager(tf, backend, data) -> None:
    X, Q = dataset(data)
    km = KMeans(n_clusters=5, random_state=0).fit(_fit_data(backend, X))
    w = np.linspace(0.5, 2.0, Q.shape[0]).astype(np.float32)
    labels, D, score = _graph(
        tf, lambda q: (km.predict(q), km.transform(q), km.score(q, sample_weight=w))
    )(Q)
    np.testing.assert_array_equal(
        _check(tf, labels, tf.int64), xplearn.to_numpy(km.predict(Q))
    )
    np.testing.assert_allclose(
        _check(tf, D, tf.float32), xplearn.to_numpy(km.transform(Q)), rtol=2e-6
    )
    # The score is a float32 tensor: past float32's range (the "huge" data,
    # about -1e52) it is -inf where the eager float is finite.
    with np.errstate(over="ignore"):
        want = np.float32(km.score(Q, sample_weight=w))
    np.testing.assert_allclose(_check(tf, score, tf.float32), want, rtol=1e-5)


def test_minibatch_kmeans_and_many_centres(tf) -> None:
    X, Q = dataset("gauss")
    mbk = MiniBatchKMeans(n_clusters=40, batch_size=64, random_state=0).fit(X)
    labels = _check(tf, _graph(tf, mbk.predict)(Q), tf.int64)
    np.testing.assert_array_equal(labels, mbk.predict(Q))  # screened: 40 > 1 + 8


def test_query_dtypes(tf) -> None:
    X, Q = dataset("gauss")
    nn = NearestNeighbors(n_neighbors=3).fit(X)
    _, want_i = nn.kneighbors(Q)
    dist, ind = _graph(tf, nn.kneighbors)(Q.astype(np.float64))
    _check(tf, dist, tf.float32)  # computed, and answered, in the fitted dtype
    np.testing.assert_array_equal(ind.numpy(), want_i)
    f = tf.function(nn.kneighbors)
    dist, ind = f(tf.cast(tf.constant(Q), tf.bfloat16))
    assert dist.dtype == tf.bfloat16
    assert ind.dtype == tf.int64
    grid = NearestNeighbors(n_neighbors=2).fit(dataset("grid")[0])
    ints = tf.constant([[3, 4], [0, 11]], dtype=tf.int32)
    ind = tf.function(lambda q: grid.kneighbors(q, return_distance=False))(ints)
    np.testing.assert_array_equal(ind.numpy(), grid.kneighbors(ints.numpy())[1])


def test_variable_query_and_keras_layer(tf) -> None:
    X, Q = dataset("gauss")
    clf = KNeighborsClassifier(n_neighbors=3).fit(X, np.arange(X.shape[0]) % 4)
    v = tf.Variable(Q)
    pred = tf.function(lambda: clf.predict(v))()
    np.testing.assert_array_equal(_check(tf, pred, tf.int64), clf.predict(Q))

    class Vote(tf.keras.layers.Layer):
        def call(self, inputs):
            return clf.predict(inputs)

    inputs = tf.keras.Input(shape=(X.shape[1],))
    model = tf.keras.Model(inputs, Vote()(inputs))
    np.testing.assert_array_equal(model.predict(Q, verbose=0), clf.predict(Q))


def test_tf_data_map(tf) -> None:
    X, Q = dataset("offset")
    km = KMeans(n_clusters=4, random_state=0).fit(X)
    ds = tf.data.Dataset.from_tensor_slices(Q).batch(10).map(km.predict)
    got = np.concatenate([b.numpy() for b in ds])
    np.testing.assert_array_equal(got, km.predict(Q))


def test_refit_rebuilds_the_graph_state(tf) -> None:
    X, Q = dataset("gauss")
    nn = NearestNeighbors(n_neighbors=2).fit(X)
    first = tf.function(lambda q: nn.kneighbors(q, return_distance=False))(Q)
    nn.fit(X[::-1].copy())
    again = tf.function(lambda q: nn.kneighbors(q, return_distance=False))(Q)
    np.testing.assert_array_equal(again.numpy(), nn.kneighbors(Q)[1])
    assert not np.array_equal(first.numpy(), again.numpy())


def test_errors(tf) -> None:
    from sklearn.exceptions import NotFittedError

    X, Q = dataset("gauss")
    q = tf.constant(Q)
    with pytest.raises(NotFittedError):
        NearestNeighbors().kneighbors(q)
    # In a graph a ValueError: autograph wraps other exception classes.
    with pytest.raises(ValueError, match="not fitted yet"):
        tf.function(NearestNeighbors().kneighbors)(q)
    manhattan = NearestNeighbors(metric="manhattan").fit(X)
    with pytest.raises(ValueError, match=r"graph kernels support 'euclidean'"):
        tf.function(manhattan.kneighbors)(q)
    callable_w = KNeighborsClassifier(weights=lambda d: d).fit(X, np.arange(300) % 2)
    with pytest.raises(ValueError, match="weights='uniform' or 'distance'"):
        tf.function(callable_w.predict)(q)
    nn = NearestNeighbors(n_neighbors=2).fit(X)
    with pytest.raises(ValueError, match="X has 4 features, but NearestNeighbors"):
        tf.function(nn.kneighbors)(q[:, :4])
    with pytest.raises(ValueError, match="Expected 2D array"):
        tf.function(nn.kneighbors)(q[0])
    with pytest.raises(ValueError, match="n_neighbors <= n_samples_fit"):
        tf.function(lambda x: nn.kneighbors(x, n_neighbors=301))(q)
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or infinity"):
        tf.function(nn.kneighbors)(tf.fill([2, 5], np.nan))
    with pytest.raises(TypeError, match="query methods of fitted estimators"):
        tf.function(nn.radius_neighbors)(q)


def test_hook_costs_no_tensorflow_import() -> None:
    code = (
        "import sys, numpy as np\n"
        "from xplearn.neighbors import KNeighborsClassifier\n"
        "from xplearn.cluster import KMeans\n"
        "import xplearn.tensorflow\n"
        "X = np.random.default_rng(0).normal(size=(50, 2))\n"
        "KNeighborsClassifier(3).fit(X, X[:, 0] > 0).predict(X)\n"
        "KMeans(2, random_state=0).fit(X).transform(X)\n"
        "print('tensorflow' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


# -- KMeans fitted in a graph ------------------------------------------------


def _blobs(n=600, d=3, centers=5, seed=0):
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(n, n_features=d, centers=centers, random_state=seed)
    return X


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shift", [0.0, 1e4])
def test_kmeans_fit_equals_estimator(tf, dtype, shift) -> None:
    from xplearn.tensorflow import kmeans

    X = (_blobs() + shift).astype(dtype)
    init = X[[0, 100, 200, 300, 400]]
    w = np.random.default_rng(0).uniform(0.5, 2.0, X.shape[0]).astype(dtype)
    km = KMeans(n_clusters=5, init=init, n_init=1).fit(X, sample_weight=w)
    fit = tf.function(lambda X, w: kmeans(X, 5, init=init, sample_weight=w))
    centers, labels, inertia, n_iter = fit(tf.constant(X), tf.constant(w))
    np.testing.assert_array_equal(_check(tf, labels, tf.int64), km.labels_)
    assert int(_check(tf, n_iter, tf.int32)) == km.n_iter_
    np.testing.assert_allclose(
        _check(tf, centers, tf.as_dtype(dtype)), km.cluster_centers_, rtol=1e-5
    )
    np.testing.assert_allclose(
        _check(tf, inertia, tf.as_dtype(dtype)), km.inertia_, rtol=1e-5
    )


def test_kmeans_fit_empty_clusters_and_duplicates(tf) -> None:
    from xplearn.tensorflow import kmeans

    X = np.array([[0, 0]] * 5 + [[1, 1]] * 3 + [[5, 5]] * 2, dtype=np.float32)
    for init in (
        np.array([[0, 0], [0, 0], [9, 9], [10, 10]], np.float32),  # two relocated
        np.array([[0, 0], [1, 1], [5, 5], [5, 5]], np.float32),  # one stays empty
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fewer distinct clusters: a warning
            km = KMeans(n_clusters=4, init=init, n_init=1).fit(X)
        centers, labels, inertia, n_iter = tf.function(
            lambda X, init=init: kmeans(X, 4, init=init)
        )(tf.constant(X))
        np.testing.assert_array_equal(labels.numpy(), km.labels_)
        np.testing.assert_allclose(centers.numpy(), km.cluster_centers_, atol=1e-6)
        assert int(n_iter) == km.n_iter_
        assert float(inertia) == pytest.approx(km.inertia_, abs=1e-6)


def test_kmeans_fit_float64_ties_and_max_iter(tf) -> None:
    from xplearn.tensorflow import kmeans

    g = np.arange(6.0)
    X = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)  # ties between centres
    init = np.array([[0.5, 0.5], [2.5, 0.5], [0.5, 2.5], [4.0, 4.0]])
    km = KMeans(n_clusters=4, init=init, n_init=1, max_iter=2).fit(X)
    centers, labels, _, n_iter = kmeans(tf.constant(X), 4, init=init, max_iter=2)
    np.testing.assert_array_equal(labels.numpy(), km.labels_)
    np.testing.assert_allclose(centers.numpy(), km.cluster_centers_, rtol=1e-12)
    assert int(n_iter) == km.n_iter_ == 2


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_kmeans_fit_seeded_init(tf, init) -> None:
    from sklearn.cluster import KMeans as SKKMeans

    from xplearn.tensorflow import kmeans

    X = _blobs(seed=3).astype(np.float32)
    fit = tf.function(lambda X: kmeans(X, 5, init=init, seed=7))
    c1, l1, inertia, n_iter = fit(tf.constant(X))
    c2, l2, _, _ = fit(tf.constant(X))
    np.testing.assert_array_equal(l1.numpy(), l2.numpy())  # same seed, same fit
    np.testing.assert_array_equal(c1.numpy(), c2.numpy())
    assert 1 <= int(n_iter) <= 300
    # The fit is a local optimum of Lloyd's: the estimator started from its
    # centres stops at once, with the same labels.
    km = KMeans(n_clusters=5, init=c1.numpy(), n_init=1).fit(X)
    np.testing.assert_array_equal(km.labels_, l1.numpy())
    if init == "k-means++":  # "random" may stop in a poor local optimum
        best = SKKMeans(5, n_init=10, random_state=0).fit(X).inertia_
        assert float(inertia) < 1.5 * best


def test_kmeans_fit_scaled_data(tf) -> None:
    from xplearn.tensorflow import kmeans

    X = (_blobs() * 1e25).astype(np.float32)
    init = X[[0, 100, 200, 300, 400]]
    km = KMeans(n_clusters=5, init=init, n_init=1).fit(X)
    centers, labels, inertia, _ = kmeans(tf.constant(X), 5, init=init)
    np.testing.assert_array_equal(labels.numpy(), km.labels_)
    np.testing.assert_allclose(centers.numpy(), km.cluster_centers_, rtol=1e-5)
    assert np.isinf(inertia.numpy())  # 1e52: past float32, as documented


def test_kmeans_fit_errors(tf) -> None:
    from xplearn.tensorflow import kmeans

    X = tf.constant(_blobs().astype(np.float32))
    with pytest.raises(ValueError, match="n_clusters must be an integer"):
        kmeans(X, 0)
    with pytest.raises(ValueError, match="init must be"):
        kmeans(X, 2, init="kmeans")
    with pytest.raises(ValueError, match="shape of the initial centers"):
        kmeans(X, 2, init=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="2-D tensor"):
        kmeans(X[:, 0], 2)
    with pytest.raises(ValueError, match="feature count must be known"):
        tf.function(
            lambda x: kmeans(x, 2),
            input_signature=[tf.TensorSpec([None, None], tf.float32)],
        ).get_concrete_function()
    with pytest.raises(tf.errors.InvalidArgumentError, match="n_clusters"):
        kmeans(X[:3], 5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or infinity"):
        kmeans(tf.fill([10, 2], np.nan), 2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="sample_weight"):
        kmeans(X, 2, sample_weight=-tf.ones([600]))
