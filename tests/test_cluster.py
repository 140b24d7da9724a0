"""KMeans: scikit-learn's checks and results, reproducible on every backend."""

import numpy as np
import pytest
import sklearn
from sklearn import cluster as skc
from sklearn.datasets import load_digits, load_iris, make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

import xplearn
from backends import assert_close, assert_in_backend
from xplearn.cluster import KMeans, MiniBatchKMeans, kmeans, kmeans_plusplus

DATA = {
    "digits": load_digits().data,
    "iris": load_iris().data,
    "blobs": make_blobs(n_samples=1500, n_features=6, centers=7, random_state=0)[0],
}


@parametrize_with_checks(
    [
        KMeans(n_clusters=3, n_init=2, max_iter=5),
        MiniBatchKMeans(n_clusters=3, n_init=2, max_iter=5, batch_size=10),
    ],
    expected_failed_checks=lambda est: {
        # scikit-learn expects the same failure of its own (MiniBatch)KMeans: weights
        # change the random initialisation, repeated samples do not.
        "check_sample_weight_equivalence_on_dense_data": (
            "sample_weight is not equivalent to removing/repeating samples."
        ),
        "check_sample_weight_equivalence_on_sparse_data": (
            "sample_weight is not equivalent to removing/repeating samples."
        ),
    },
)
def test_sklearn_compatible(estimator, check) -> None:
    check(estimator)


def fitted(backend):
    """Where fitted attributes live: with the data given to fit, except TF
    (computed on torch or numpy, zero-copy)."""
    from backends import Backend
    from xplearn._tensorflow import compute_backend

    if backend.name == "tensorflow":
        return Backend(compute_backend())
    return backend


def _init(X, k):
    return X[np.random.default_rng(0).choice(len(X), k, replace=False)]


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
@pytest.mark.parametrize("data", list(DATA))
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_same_init_equals_sklearn(backend, data, weighted, algorithm) -> None:
    X = DATA[data]
    init = _init(X, 8)
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(X)) if weighted else None
    # The bounds of "elkan" skip work, never change the answer: both
    # algorithms must give scikit-learn's Lloyd result.
    ref = skc.KMeans(8, init=init, n_init=1).fit(X, sample_weight=w)
    km = KMeans(8, init=backend.asarray(init), n_init=1, algorithm=algorithm).fit(
        backend.asarray(X), sample_weight=None if w is None else backend.asarray(w)
    )
    assert_in_backend(km.labels_, fitted(backend))
    np.testing.assert_array_equal(xplearn.to_numpy(km.labels_), ref.labels_)
    assert km.n_iter_ == ref.n_iter_
    assert_close(
        km.cluster_centers_,
        ref.cluster_centers_,
        fitted(backend),
        dtype="float64",
        rtol=1e-7,
        atol=1e-9,
    )
    assert km.inertia_ == pytest.approx(ref.inertia_, rel=1e-7)


def test_kmeans_plusplus_equals_sklearn() -> None:
    X = DATA["blobs"]
    centers, idx = kmeans_plusplus(X, 7, random_state=3)
    ref_c, ref_i = skc.kmeans_plusplus(X, 7, random_state=3)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(centers, ref_c)


def test_same_seed_same_labels_on_every_backend(backend) -> None:
    X = DATA["blobs"]
    ref = KMeans(7, random_state=42).fit(X)
    km = KMeans(7, random_state=42).fit(backend.asarray(X))
    np.testing.assert_array_equal(xplearn.to_numpy(km.labels_), ref.labels_)
    assert km.inertia_ == pytest.approx(ref.inertia_, rel=1e-7)
    _, idx = kmeans_plusplus(backend.asarray(X), 7, random_state=5)
    np.testing.assert_array_equal(
        xplearn.to_numpy(idx), kmeans_plusplus(X, 7, random_state=5)[1]
    )


@pytest.mark.parametrize("working_memory", [None, 16])
def test_kmeans_plusplus_large_float32_same_on_every_backend(
    backend, working_memory
) -> None:
    """200 000 float32 rows: each draw's steps are ~1/n of the potential, so
    float32 rounding (numpy's and torch's GEMMs differ) once picked another
    7th centre on torch; the draws now run in the device's widest float
    (widened at once, or tile by tile under a 16 MiB working memory; on a
    host float64 copy where the device has no float64, as jax without x64).
    The data is ``xplearn demo``'s blobs, where torch and jax once differed."""
    rng = np.random.default_rng(0)
    centres = 3 * rng.standard_normal((10, 32), dtype=np.float32)
    y = rng.integers(0, 10, 202_000)
    X = (centres[y] + rng.standard_normal((202_000, 32), dtype=np.float32))[:200_000]
    _, ref = kmeans_plusplus(X, 10, random_state=0)
    ref_labels = KMeans(10, n_init=1, max_iter=2, random_state=0).fit(X).labels_
    with xplearn.config_context(working_memory=working_memory):
        _, idx = kmeans_plusplus(backend.asarray(X), 10, random_state=0)
        km = KMeans(10, n_init=1, max_iter=2, random_state=0)
        km.fit(backend.asarray(X))  # seeded on the centred data
    np.testing.assert_array_equal(xplearn.to_numpy(idx), ref)
    np.testing.assert_array_equal(xplearn.to_numpy(km.labels_), ref_labels)


def test_kmeans_plusplus_without_float64_on_the_device(monkeypatch, torch) -> None:
    """A device without float64 (jax without x64, MPS; here torch told so)
    seeds on a host float64 copy: the same centres and labels as numpy.  (The
    test suite's jax runs with x64, so it cannot show this itself.)"""
    import xplearn.cluster._init as init

    rng = np.random.default_rng(0)
    centres = 3 * rng.standard_normal((10, 32), dtype=np.float32)
    y = rng.integers(0, 10, 202_000)
    X = (centres[y] + rng.standard_normal((202_000, 32), dtype=np.float32))[:200_000]
    ref = KMeans(10, n_init=1, max_iter=2, random_state=0).fit(X)
    real = init.float_dtypes

    def no_float64_on_torch(xp, device):
        return (xp.float32,) if "torch" in xp.__name__ else real(xp, device)

    monkeypatch.setattr(init, "float_dtypes", no_float64_on_torch)
    # torch's CPU data is seeded on numpy's host path: skip it to reach this one.
    monkeypatch.setattr(init, "_host_data", lambda X, xp: None)
    km = KMeans(10, n_init=1, max_iter=2, random_state=0).fit(torch.asarray(X))
    assert km.labels_.device == torch.device("cpu")
    np.testing.assert_array_equal(km.labels_.numpy(), ref.labels_)


def _seeding_data(case: str) -> tuple[np.ndarray, np.ndarray]:
    """Adversarial data for k-means++ (offsets, near-duplicates, exact ties,
    one feature with norms over 1e-3...1e3, zero weights) and its weights."""
    rng = np.random.default_rng(7)
    w = np.ones(3000)
    if case == "offset":
        X = (1e4 + rng.standard_normal((3000, 8))).astype(np.float32)
    elif case == "near_duplicates":
        base = rng.standard_normal((60, 8))
        X = base[rng.integers(0, 60, 3000)] + 1e-4 * rng.standard_normal((3000, 8))
        X = X.astype(np.float32)
    elif case == "grid_ties":
        X = rng.integers(0, 4, (3000, 3)).astype(np.float64)
    elif case == "d1":
        X = rng.choice([-1, 1], (3000, 1)) * 10 ** rng.uniform(-3, 3, (3000, 1))
        X = X.astype(np.float32)
    else:  # weights, some zero
        X = rng.standard_normal((3000, 5))
        w = rng.uniform(0, 3, 3000) * (rng.uniform(size=3000) > 0.2)
    return X, w


@pytest.mark.parametrize(
    "case", ["offset", "near_duplicates", "grid_ties", "d1", "weights"]
)
def test_kmeans_plusplus_host_blocks_equal_the_xp_body(monkeypatch, case) -> None:
    """numpy (and torch's CPU data) seed on the host in blocks of rows, on
    host threads, with one product a block; the draws must equal the
    ``xp`` body's (the path of accelerators and array-api-strict) and
    scikit-learn's on float64 data: whole or widened block by block, one or
    two threads, norms given or not."""
    import array_api_compat.numpy as np_xp

    import xplearn.cluster._init as init

    X, w = _seeding_data(case)
    norms = np.einsum("ij,ij->i", X, X)
    monkeypatch.setattr(init, "_SEED_BLOCK_ELEMENTS", 2**9)  # 50-500 rows a block
    monkeypatch.setattr(init, "_SEED_BLOCKS_PER_THREAD", 1)
    for given in (None, norms):
        real = init._host_data
        monkeypatch.setattr(init, "_host_data", lambda X, xp: None)
        _, ref = init._kmeans_plusplus(
            X, 12, given, w, np.random.RandomState(3), None, np_xp
        )
        monkeypatch.setattr(init, "_host_data", real)
        ref = ref.tolist()
        if given is None and X.dtype == np.float64:
            _, sk = skc.kmeans_plusplus(X, 12, sample_weight=w, random_state=3)
            assert ref == sk.tolist()
        for workers in (1, 2):
            for budget in (0, 2**30):  # widened block by block, or once
                idx = init._host_seeds(
                    X, 12, given, w, np.random.RandomState(3), None, workers, budget
                )
                assert idx == ref, (given is None, workers, budget)
    assert np.all(w[ref] > 0)


def test_random_init_and_n_init(backend) -> None:
    X = DATA["iris"]
    ref = skc.KMeans(3, init="random", n_init=4, random_state=0).fit(X)
    km = KMeans(3, init="random", n_init=4, random_state=0).fit(backend.asarray(X))
    assert km.inertia_ == pytest.approx(ref.inertia_, rel=1e-7)


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
def test_empty_cluster_is_relocated(backend, algorithm) -> None:
    """A centre far from every point gets no point: it must move to the
    farthest point, never stay put, go to the origin or become NaN."""
    X = np.concatenate([np.full((20, 2), 5.0), np.full((20, 2), 10.0)])
    X += np.random.default_rng(0).normal(scale=0.1, size=X.shape)
    init = np.array([[5.0, 5.0], [10.0, 10.0], [-100.0, -100.0]])
    km = KMeans(3, init=backend.asarray(init), n_init=1, algorithm=algorithm)
    km.fit(backend.asarray(X))
    C = xplearn.to_numpy(km.cluster_centers_)
    assert np.all(np.isfinite(C))
    assert not np.any(np.all(np.isclose(C, 0.0), axis=1))
    assert np.all(np.abs(C) < 20)  # the far centre was relocated into the data
    assert len(np.unique(xplearn.to_numpy(km.labels_))) == 3
    ref = skc.KMeans(3, init=init, n_init=1).fit(X)
    assert km.inertia_ == pytest.approx(ref.inertia_, rel=1e-7)


def test_elkan_skips_points_that_cannot_move(backend, monkeypatch) -> None:
    """The bounds are real: after the first iterations only a fraction of the
    points is searched, and the answer is still Lloyd's, in float32 too."""
    from xplearn.cluster import _lloyd

    X, _ = make_blobs(n_samples=3000, n_features=8, centers=12, random_state=1)
    X = X.astype(np.float32)
    init = _init(X, 12)
    searched = []
    real = _lloyd._nearest_two

    def counting(data, rows, *args):
        searched.append(int(rows.shape[0]))
        return real(data, rows, *args)

    monkeypatch.setattr(_lloyd, "_nearest_two", counting)
    fit = {"init": backend.asarray(init), "n_init": 1, "tol": 0.0}
    km = KMeans(12, algorithm="elkan", **fit).fit(backend.asarray(X))
    if backend.name in {"jax", "dask"}:
        # jax runs Lloyd's iterations (shapes stay fixed), dask too (its
        # blocks would carry the bounds from one round to the next).
        assert searched == []
    else:
        assert searched[0] == len(X)  # the first search sees every point
        assert sum(searched) < 0.5 * len(X) * len(searched)
    ref = KMeans(12, algorithm="lloyd", **fit).fit(backend.asarray(X))
    assert_in_backend(km.cluster_centers_, fitted(backend), "float32")
    np.testing.assert_array_equal(
        xplearn.to_numpy(km.labels_), xplearn.to_numpy(ref.labels_)
    )
    assert km.n_iter_ == ref.n_iter_
    assert km.inertia_ == pytest.approx(ref.inertia_, rel=1e-5)


def test_elkan_with_zero_weights_equals_sklearn(backend) -> None:
    """Weights other than 1 take the path that re-sums the weights per
    cluster each iteration; zero weights must not count a cluster as filled."""
    X = DATA["blobs"]
    init = _init(X, 7)
    w = np.random.default_rng(2).uniform(0.0, 3.0, len(X))
    w[::3] = 0.0
    ref = skc.KMeans(7, init=init, n_init=1).fit(X, sample_weight=w)
    km = KMeans(7, init=backend.asarray(init), n_init=1, algorithm="elkan")
    km.fit(backend.asarray(X), sample_weight=backend.asarray(w))
    np.testing.assert_array_equal(xplearn.to_numpy(km.labels_), ref.labels_)
    assert km.n_iter_ == ref.n_iter_
    assert km.inertia_ == pytest.approx(ref.inertia_, rel=1e-7)


def test_float64_ties_go_to_the_lower_index(backend) -> None:
    """Midpoints of centre pairs far from the origin: the differences are
    exact (a true tie) but the GEMM expansion rounds, and picked the other
    centre for about a third of them.  Every backend must pick the lower one."""
    from xplearn._dispatch import Edge
    from xplearn.cluster._lloyd import _Data, _nearest, _search_bounds
    from xplearn.neighbors._search import rounding_bound

    if backend.name == "dask":
        pytest.skip(
            "the in-memory kernel; dask runs it on numpy blocks: the numpy case"
        )

    rng = np.random.default_rng(0)
    C = np.unique(rng.integers(-20, 20, size=(16, 3)).astype(float) + 1e8, axis=0)
    i, j = np.triu_indices(len(C), 1)
    X = (C[i] + C[j]) / 2
    D = ((X[:, None] - C[None]) ** 2).sum(-1)
    X = X[(D.min(1, keepdims=True) == D).sum(1) >= 2]  # the true ties only
    expected = ((X[:, None] - C[None]) ** 2).sum(-1).argmin(1)
    edge, Xc = Edge.of(backend.asarray(X))
    xp = edge.xp
    if Xc.dtype != xp.float64:
        pytest.skip("no float64 on this backend")
    Cc, w = edge.follow(C, "C"), edge.follow(np.ones(len(X)), "w")
    data = _Data(Xc, w, xp)
    np.testing.assert_array_equal(xplearn.to_numpy(_nearest(data, Cc, xp)), expected)
    # The search of algorithm="elkan" breaks them the same way.
    every = xp.arange(len(X), device=xplearn.device(Xc))
    slack = 2.0 * rounding_bound(xp, Xc.dtype, 3)
    labels = _search_bounds(data, every, Cc, slack, xp)[0]
    np.testing.assert_array_equal(xplearn.to_numpy(labels), expected)


def _fit_in_child(X):
    return float(KMeans(64, random_state=0, n_init=1, max_iter=5).fit(X).inertia_)


def test_fit_in_a_forked_child() -> None:
    """The host thread pool is per process: a child made by fork (the default
    start method on Linux up to Python 3.13) must not wait on its parent's
    threads."""
    import multiprocessing
    import sys
    import warnings

    if sys.platform != "linux":
        pytest.skip("the fork start method is Linux's")
    if "jax" in sys.modules:
        pytest.skip("jax, loaded by this session, forbids fork (its own threads)")
    X = make_blobs(n_samples=40_000, n_features=4, centers=64, random_state=0)[0]
    parent = _fit_in_child(X)  # starts the pool in this process
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
        with multiprocessing.get_context("fork").Pool(1) as pool:
            child = pool.apply_async(_fit_in_child, (X,)).get(timeout=120)
    assert child == pytest.approx(parent)


def test_init_array_not_aliased(backend) -> None:
    X = DATA["iris"]
    init = _init(X, 3)
    user = backend.asarray(init)
    km = KMeans(3, init=user, n_init=1).fit(backend.asarray(X))
    np.testing.assert_array_equal(xplearn.to_numpy(user), init)
    assert km.cluster_centers_ is not user


def test_predict_transform_score(backend) -> None:
    X = DATA["iris"]
    init = _init(X, 3)
    km = KMeans(3, init=backend.asarray(init), n_init=1).fit(backend.asarray(X))
    ref = skc.KMeans(3, init=init, n_init=1).fit(X)
    Q = X[::3]
    pred = km.predict(backend.asarray(Q))
    assert_in_backend(pred, backend)
    np.testing.assert_array_equal(xplearn.to_numpy(pred), ref.predict(Q))
    assert_close(
        km.transform(backend.asarray(Q)),
        ref.transform(Q),
        backend,
        rtol=1e-7,
        atol=1e-9,
    )
    assert km.score(backend.asarray(Q)) == pytest.approx(ref.score(Q), rel=1e-7)
    labels = km.fit_predict(backend.asarray(X))
    assert_in_backend(labels, backend)


def test_float32_stays_float32(backend) -> None:
    X = DATA["blobs"].astype(np.float32)
    km = KMeans(7, random_state=0).fit(backend.asarray(X))
    assert_in_backend(km.cluster_centers_, fitted(backend), "float32")


def test_functional_kmeans(backend) -> None:
    X = DATA["iris"]
    centers, _labels, inertia, n_iter = kmeans(
        backend.asarray(X), 3, random_state=0, return_n_iter=True
    )
    ref = skc.k_means(X, 3, random_state=0, return_n_iter=True)
    assert_in_backend(centers, backend)
    assert inertia == pytest.approx(ref[2], rel=1e-7)
    assert n_iter == ref[3]


def test_verbose_prints_inertia(capsys) -> None:
    KMeans(3, random_state=0, verbose=1).fit(DATA["iris"])
    out = capsys.readouterr().out
    assert "Iteration 0, inertia" in out
    assert "Converged at iteration" in out


def test_bad_input(backend) -> None:
    X = DATA["iris"]
    with pytest.raises(ValueError, match="n_samples=5 should be >= n_clusters=8"):
        KMeans(8).fit(backend.asarray(X[:5]))
    with pytest.raises(
        ValueError, match="Negative values in data passed to sample_weight"
    ):
        KMeans(3).fit(
            backend.asarray(X), sample_weight=backend.asarray(-np.ones(len(X)))
        )
    with pytest.raises(ValueError, match="at least one non-zero"):
        KMeans(3).fit(
            backend.asarray(X), sample_weight=backend.asarray(np.zeros(len(X)))
        )
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        KMeans(3).fit(backend.asarray(bad))
    km = KMeans(3, random_state=0).fit(backend.asarray(X))
    with pytest.raises(ValueError, match="X has 3 features, but KMeans is expecting 4"):
        km.predict(backend.asarray(X[:, :3]))
    with pytest.raises(NotFittedError):
        KMeans(3).predict(backend.asarray(X))


# Our MiniBatchKMeans follows scikit-learn 1.9's sampling (batches drawn with
# probability proportional to the weights); older releases draw differently.
SKLEARN_19 = pytest.mark.skipif(
    tuple(int(v) for v in sklearn.__version__.split(".")[:2]) < (1, 9),
    reason="MiniBatchKMeans reproduces scikit-learn >= 1.9's sampling",
)


@SKLEARN_19
@pytest.mark.parametrize(
    "kw",
    [{"init": "array"}, {"init": "k-means++"}, {"init": "random"}],
    ids=lambda kw: kw["init"],
)
def test_minibatch_equals_sklearn(backend, kw) -> None:
    """Same seed, same batches (drawn on the host), same update: same result."""
    X = DATA["blobs"]
    init = _init(X, 7) if kw["init"] == "array" else kw["init"]
    n_init = 1 if kw["init"] == "array" else "auto"
    ref = skc.MiniBatchKMeans(
        7, init=init, n_init=n_init, batch_size=256, random_state=0
    ).fit(X)
    mbk = MiniBatchKMeans(
        7,
        init=backend.asarray(init) if kw["init"] == "array" else init,
        n_init=n_init,
        batch_size=256,
        random_state=0,
    ).fit(backend.asarray(X))
    assert mbk.n_steps_ == ref.n_steps_
    assert mbk.n_iter_ == ref.n_iter_
    np.testing.assert_array_equal(xplearn.to_numpy(mbk.labels_), ref.labels_)
    assert_close(
        mbk.cluster_centers_,
        ref.cluster_centers_,
        fitted(backend),
        rtol=1e-7,
        atol=1e-9,
    )
    assert mbk.inertia_ == pytest.approx(ref.inertia_, rel=1e-7)


@SKLEARN_19
def test_minibatch_partial_fit_equals_sklearn(backend) -> None:
    X = DATA["digits"]
    ours, ref = (
        MiniBatchKMeans(8, random_state=0),
        skc.MiniBatchKMeans(8, random_state=0),
    )
    for i in range(0, len(X), 400):
        ours.partial_fit(backend.asarray(X[i : i + 400]))
        ref.partial_fit(X[i : i + 400])
    assert ours.n_steps_ == ref.n_steps_
    assert_close(
        ours.cluster_centers_,
        ref.cluster_centers_,
        fitted(backend),
        rtol=1e-7,
        atol=1e-9,
    )
    pred = ours.predict(backend.asarray(X[:50]))
    assert_in_backend(pred, backend)
    np.testing.assert_array_equal(xplearn.to_numpy(pred), ref.predict(X[:50]))


@SKLEARN_19
def test_minibatch_weights_equal_sklearn(backend) -> None:
    X = DATA["iris"]
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(X))
    ref = skc.MiniBatchKMeans(3, batch_size=32, random_state=0).fit(X, sample_weight=w)
    mbk = MiniBatchKMeans(3, batch_size=32, random_state=0).fit(
        backend.asarray(X), sample_weight=backend.asarray(w)
    )
    assert mbk.inertia_ == pytest.approx(ref.inertia_, rel=1e-7)


def test_minibatch_bad_input(backend) -> None:
    X = DATA["iris"]
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(X))
    mbk = MiniBatchKMeans(3, batch_size=32, random_state=0).fit(backend.asarray(X))
    with pytest.raises(ValueError, match="n_samples=2 should be >= n_clusters=3"):
        MiniBatchKMeans(3).fit(backend.asarray(X[:2]))
    with pytest.raises(ValueError, match="Negative values"):
        MiniBatchKMeans(3).fit(backend.asarray(X), sample_weight=backend.asarray(-w))
    with pytest.raises(
        ValueError, match="X has 2 features, but MiniBatchKMeans is expecting 4"
    ):
        mbk.predict(backend.asarray(X[:, :2]))


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_kmeans_matches_sklearn_and_dense(algorithm, fmt) -> None:
    import scipy.sparse as sp

    X, _ = make_blobs(300, centers=4, n_features=8, random_state=0)
    X[X < 0] = 0.0
    Xs = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    ours = KMeans(4, random_state=0, algorithm=algorithm).fit(Xs)
    ref = skc.KMeans(4, random_state=0, algorithm=algorithm).fit(Xs)
    dense = KMeans(4, random_state=0, algorithm=algorithm).fit(X)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, atol=1e-12)
    np.testing.assert_allclose(
        ours.cluster_centers_, dense.cluster_centers_, atol=1e-12
    )
    assert ours.n_iter_ == ref.n_iter_
    assert ours.inertia_ == pytest.approx(ref.inertia_)
    np.testing.assert_array_equal(ours.predict(Xs), ref.predict(Xs))
    np.testing.assert_allclose(ours.transform(Xs), ref.transform(Xs), atol=1e-12)
    assert ours.score(Xs) == pytest.approx(ref.score(Xs))


def test_kmeans_warnings_and_messages() -> None:
    X, _ = make_blobs(60, centers=3, n_features=2, random_state=0)
    with pytest.warns(RuntimeWarning, match="doesn't make sense for a single"):
        KMeans(1, algorithm="elkan").fit(X)
    with pytest.warns(RuntimeWarning, match="should be larger than n_clusters"):
        MiniBatchKMeans(5, init_size=3, n_init=1).fit(X)
    with pytest.raises(ValueError, match="number of features of the data"):
        KMeans(3, init=np.zeros((3, 5))).fit(X)
    with pytest.raises(ValueError, match="length of x_squared_norms"):
        kmeans_plusplus(X, 3, x_squared_norms=np.ones(5))


@pytest.mark.parametrize(("Est", "runs"), [(KMeans, 10), (MiniBatchKMeans, 3)])
def test_callable_init_auto_runs_like_sklearn(Est, runs) -> None:
    X, _ = make_blobs(60, centers=3, n_features=2, random_state=0)
    calls = []

    def init(X, k, random_state):
        calls.append(1)
        return X[:k]

    est = Est(3, init=init, n_init="auto", random_state=0).fit(X)
    assert est._n_init == runs
    assert len(calls) == runs


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
def test_torch_cpu_float32_lloyd_takes_numpy_fused_kernel(
    monkeypatch, torch, request, algorithm
) -> None:
    """torch on the CPU has no fused E-step: a float32 Lloyd (or Elkan) run is numpy's,
    on zero-copy views (threads: torch's), and answers in torch, as numpy
    does.  On an accelerator (``--pretend-accelerator``) torch keeps its own
    kernels: numpy cannot view device memory."""
    import xplearn.cluster._lloyd as lloyd

    X = make_blobs(20_000, n_features=8, centers=12, random_state=3)[0]
    X = X.astype(np.float32)
    init = _init(X, 12)
    ref = KMeans(12, init=init, n_init=1, algorithm=algorithm).fit(X)
    calls = []
    real = lloyd._numpy_nearest

    def spy(Xa, Ca, workers, **kw):
        calls.append((type(Xa).__module__, workers))
        return real(Xa, Ca, workers, **kw)

    monkeypatch.setattr(lloyd, "_numpy_nearest", spy)
    km = KMeans(12, init=torch.asarray(init), n_init=1, algorithm=algorithm)
    km.fit(torch.asarray(X))
    if request.config.getoption("--pretend-accelerator"):
        assert calls == []
    else:
        assert calls
    assert all(mod == "numpy" for mod, _ in calls)
    assert all(w == torch.get_num_threads() for _, w in calls)
    assert km.labels_.dtype == torch.int64
    assert km.labels_.device.type == "cpu"
    assert km.cluster_centers_.dtype == torch.float32
    # (float32 takes the expansion's argmin as it is, as scikit-learn does:
    # torch's and numpy's centring of the samples round differently, so a
    # row on the edge between two centres may go either way.)
    assert np.mean(km.labels_.numpy() == ref.labels_) >= 0.999
    np.testing.assert_allclose(
        km.cluster_centers_.numpy(), ref.cluster_centers_, rtol=0, atol=1e-2
    )
    assert km.inertia_ == pytest.approx(ref.inertia_, rel=1e-5)


@pytest.mark.parametrize("k", [1, 2, 8, 64, 300])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_nearest_transposed_tiles_equal_row_wise(k, dtype) -> None:
    """numpy's E-step kernel computed transposed (centres x points, from
    ``[-2X, 1]ᵀ``) gives the row-wise kernel's labels: the first minimum of
    the expansion, on an integer grid full of exact ties, for tile counts
    that do not divide the points, with 256 centres and more (16-bit marks);
    its best and runner-up entries and near-ties too."""
    import xplearn.cluster._lloyd as lloyd

    rng = np.random.default_rng(k)
    n, d = 5_003, 5
    X = rng.integers(-3, 4, size=(n, d)).astype(dtype)
    C = rng.integers(-3, 4, size=(k, d)).astype(dtype)
    Xa = np.hstack([-2 * X, np.ones((n, 1), dtype)])  # C-contiguous: row-wise
    XaT = np.ascontiguousarray(Xa.T)  # XaT.T: transposed layout
    Ca = np.vstack([C.T, (C * C).sum(axis=1)[None, :]]).astype(dtype)
    D = Xa @ Ca
    for workers in (1, 2):
        row = lloyd._numpy_nearest(Xa, Ca, workers)[0]
        col = lloyd._numpy_nearest(XaT.T, Ca, workers)[0]
        np.testing.assert_array_equal(row, np.argmin(D, axis=1))
        np.testing.assert_array_equal(col, row)
        lab, (best, runner), _ = lloyd._numpy_nearest(XaT.T, Ca, workers, second=True)
        np.testing.assert_array_equal(lab, row)
        np.testing.assert_array_equal(best, D.min(axis=1))
        if k > 1:
            D2 = D.copy()
            D2[np.arange(n), row] = np.inf
            np.testing.assert_array_equal(runner, D2.min(axis=1))
        near = np.full(n, 0.5, dtype)
        lab, _, parts = lloyd._numpy_nearest(XaT.T, Ca, workers, near=near)
        np.testing.assert_array_equal(lab, row)
        close = np.concatenate([c for _, found in parts for c in found] or [[]])
        within = ((D.min(axis=1, keepdims=True) + 0.5 >= D).sum(axis=1) > 1).nonzero()
        np.testing.assert_array_equal(np.sort(close).astype(np.int64), within[0])


def _layouts_agree(monkeypatch, dtype, k: int, wrap, host: bool = True) -> None:
    """Lloyd fits on the transposed and the row-wise layout are equal, bit for
    bit, on blobs and on a grid of ties (``wrap``: numpy to the framework;
    ``host``: whether numpy's kernel runs)."""
    import xplearn.cluster._lloyd as lloyd

    blobs = make_blobs(6_000, n_features=6, centers=k, random_state=k)[0]
    grid = np.random.default_rng(k).integers(0, 3, size=(6_000, 6))
    layouts = []
    real = lloyd._numpy_nearest

    def spy(Xa, *args, **kw):
        layouts.append(Xa.flags.c_contiguous)
        return real(Xa, *args, **kw)

    chosen = lloyd._transposed_layout
    monkeypatch.setattr(lloyd, "_numpy_nearest", spy)
    for X in (blobs.astype(dtype), grid.astype(dtype)):
        init = X[np.random.default_rng(1).choice(len(X), k, replace=False)]
        fits = {}
        for layout in ("transposed", "row-wise"):
            # (not monkeypatch.undo(): it would also undo --pretend-accelerator)
            rule = chosen if layout == "transposed" else (lambda *a: False)
            monkeypatch.setattr(lloyd, "_transposed_layout", rule)
            layouts.clear()
            fits[layout] = KMeans(k, init=wrap(init), n_init=1, tol=0.0).fit(wrap(X))
            assert set(layouts) == ({layout == "row-wise"} if host else set())
        a, b = fits["transposed"], fits["row-wise"]
        np.testing.assert_array_equal(np.asarray(a.labels_), np.asarray(b.labels_))
        np.testing.assert_array_equal(
            np.asarray(a.cluster_centers_), np.asarray(b.cluster_centers_)
        )
        assert a.inertia_ == b.inertia_
        assert a.n_iter_ == b.n_iter_


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [3, 8, 40])
def test_lloyd_transposed_layout_same_fit(monkeypatch, dtype, k) -> None:
    """A numpy Lloyd fit whose samples are laid out transposed (few centres or
    few features) has the labels, centres, inertia and iteration count of the
    row-wise layout, bit for bit, on blobs and on a grid of ties."""
    _layouts_agree(monkeypatch, dtype, k, lambda a: a)


@pytest.mark.parametrize("k", [3, 8, 40])
def test_lloyd_transposed_layout_same_fit_torch(monkeypatch, torch, request, k) -> None:
    """The same for a float32 torch CPU fit, which runs numpy's kernel on
    views of the transposed layout (on an accelerator, ``--pretend-
    accelerator``, torch keeps its own kernels: no layout is transposed)."""
    host = not request.config.getoption("--pretend-accelerator")
    _layouts_agree(monkeypatch, np.float32, k, torch.asarray, host)


@pytest.mark.parametrize("d", [1, 7, 64])
def test_transposed_operand_in_blocks(monkeypatch, d) -> None:
    """The transposed samples ``[-2X, 1]ᵀ`` written in blocks of rows on the
    host threads (ragged last blocks, shares that do not divide the rows)
    equal the whole transpose, and leave ``X`` unchanged."""
    import array_api_compat.numpy as npx
    from threadpoolctl import threadpool_limits

    import xplearn.cluster._lloyd as lloyd

    monkeypatch.setattr(lloyd, "_TRANSPOSE_BLOCK", 5 * d)  # 5 rows a block
    X = np.random.default_rng(d).standard_normal((1_003, d)).astype(np.float32)
    X.setflags(write=False)
    want = np.vstack([-2 * X.T, np.ones((1, len(X)), np.float32)])
    for threads in (1, 2):
        with threadpool_limits(threads, user_api="blas"):
            Xa = lloyd._transposed_operand(X, npx)
        assert Xa.shape == (len(X), d + 1)
        assert Xa.T.flags.c_contiguous
        np.testing.assert_array_equal(Xa.T, want)
