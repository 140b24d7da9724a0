"""The pivot-block pruned search returns the full search's answer, bit for bit.

Pruning only runs on large searches whose probe promises a saving; most of
these tests lower its thresholds so that small adversarial data goes through
it (on the backends it serves: numpy, torch on the CPU, eager TensorFlow),
and check that it ran.  The oracle is a float64 computation on the same
values, ties to the lower index.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xplearn
import xplearn.neighbors._pruned as pruned
from backends import assert_equal, assert_in_backend, knn_oracle
from xplearn.neighbors import KNeighborsClassifier, NearestNeighbors, kneighbors

K = 5


@pytest.fixture
def counted(monkeypatch):
    """Count pruned searches and the share of database rows they read."""
    calls = {"pruned": 0, "declined": 0, "read": 0, "rows": 0}
    real_search, real_rows = pruned.pruned_search, pruned._search_rows

    def spy(X, Y, k, xp, inner):
        out = real_search(X, Y, k, xp, inner)
        calls["pruned" if out is not None else "declined"] += 1
        calls["rows"] += X.shape[0] * Y.shape[0]
        return out

    def rows_spy(Xq, Y, rows, k, xp, inner):
        calls["read"] += Xq.shape[0] * rows.shape[0]
        return real_rows(Xq, Y, rows, k, xp, inner)

    monkeypatch.setattr("xplearn.neighbors._search.pruned_search", spy)
    monkeypatch.setattr(pruned, "_search_rows", rows_spy)
    return calls


@pytest.fixture
def forced(counted, monkeypatch):
    """Prune every host search, however small and whatever the probe says."""
    monkeypatch.setattr(pruned, "_MIN_ROWS", 0)
    monkeypatch.setattr(pruned, "_MIN_QUERIES", 0)
    monkeypatch.setattr(pruned, "_MAX_READ", 1.0)
    return counted


def _prunable(backend) -> bool:
    """numpy, torch on the CPU, and eager TensorFlow (computed on one of them)."""
    host = backend.variant != "cuda"
    return backend.name in ("numpy", "torch", "tensorflow") and host


def _clusters(rng, n, d, n_clusters=8, spread=1.0, scale=10.0) -> np.ndarray:
    centres = rng.standard_normal((n_clusters, d)) * scale
    return centres[rng.integers(0, n_clusters, n)] + spread * rng.standard_normal(
        (n, d)
    )


def _data(kind: str, rng) -> tuple[np.ndarray, np.ndarray]:
    """Database and queries (float32): clustered, and hard on every bound."""
    if kind == "offset":  # a common offset of 1e4: norms far above distances
        pts = _clusters(rng, 3200, 16) + 1e4
    elif kind == "near_duplicates":  # points 1e-4 apart inside clusters
        base = _clusters(rng, 320, 8)
        pts = np.repeat(base, 10, axis=0) + 1e-4 * rng.standard_normal((3200, 8))
        rng.shuffle(pts)
    elif kind == "grid":  # integer clusters: exact ties everywhere
        pts = np.round(_clusters(rng, 3200, 3, spread=1.5))
    elif kind == "d1":
        pts = _clusters(rng, 3200, 1)
    elif kind == "d1024":
        pts = _clusters(rng, 700, 1024, spread=3.0)
    else:  # "norms": clusters whose scales spread over 1e-3 … 1e3
        scale = 10.0 ** rng.uniform(-3, 3, size=(3200, 1))
        pts = _clusters(rng, 3200, 12) * scale
    pts = pts.astype(np.float32)
    q = 200 if kind != "d1024" else 50
    return pts[q:], pts[:q]


@pytest.mark.parametrize(
    "kind", ["offset", "near_duplicates", "grid", "d1", "d1024", "norms"]
)
def test_pruned_equals_full_search(backend, forced, kind) -> None:
    Y, X = _data(kind, np.random.default_rng(0))
    Xb, Yb = backend.asarray(X), backend.asarray(Y)
    with xplearn.config_context(pruning="off"):
        d_off, i_off = kneighbors(Xb, Yb, K)
    assert forced["pruned"] == 0
    d_on, i_on = kneighbors(Xb, Yb, K)
    assert forced["pruned"] == (1 if _prunable(backend) else 0)
    assert_in_backend(d_on, backend, "float32")
    assert_equal(i_on, xplearn.to_numpy(i_off), backend, dtype="int64")
    assert_equal(d_on, xplearn.to_numpy(d_off), backend, dtype="float32")
    ref, D = knn_oracle(X, Y, K)
    np.testing.assert_array_equal(xplearn.to_numpy(i_on), ref)
    best = np.take_along_axis(D, ref, axis=1)
    np.testing.assert_allclose(
        xplearn.to_numpy(d_on) ** 2, best, rtol=1e-5, atol=1e-5 * best.max()
    )


def test_float64_input(backend, forced) -> None:
    Y, X = _data("grid", np.random.default_rng(3))
    Y, X = Y.astype(np.float64) + 0.25, X.astype(np.float64)
    Xb, Yb = backend.asarray(X), backend.asarray(Y)
    with xplearn.config_context(pruning="off"):
        d_off, i_off = kneighbors(Xb, Yb, K)
    d_on, i_on = kneighbors(Xb, Yb, K)
    assert forced["pruned"] == (1 if _prunable(backend) else 0)
    assert_equal(i_on, xplearn.to_numpy(i_off), backend, dtype="int64")
    assert_equal(d_on, xplearn.to_numpy(d_off), backend, dtype="float64")
    np.testing.assert_array_equal(xplearn.to_numpy(i_on), knn_oracle(X, Y, K)[0])


def test_clusters_read_a_fraction(counted) -> None:
    """At the default thresholds, well-separated clusters take the pruned
    search and read about one cluster per query, with the exact answer."""
    rng = np.random.default_rng(4)
    pts = _clusters(rng, 21_000, 16, n_clusters=10).astype(np.float32)
    Y, X = pts[1000:], pts[:1000]
    _, ind = kneighbors(X, Y, 10)
    assert counted["pruned"] == 1
    assert counted["read"] < 0.3 * counted["rows"]
    np.testing.assert_array_equal(ind, knn_oracle(X, Y, 10)[0])


def test_gaussian_cloud_is_declined(counted) -> None:
    """No clusters: the probe finds every block near every query, and the
    plain search runs."""
    rng = np.random.default_rng(5)
    Y = rng.standard_normal((20_000, 16)).astype(np.float32)
    X = rng.standard_normal((300, 16)).astype(np.float32)
    _, ind = kneighbors(X, Y, 10)
    assert counted["declined"] == 1
    assert counted["pruned"] == 0
    assert counted["read"] == 0
    np.testing.assert_array_equal(ind, knn_oracle(X, Y, 10)[0])


def test_probe_runs_on_one_blas_thread(counted, monkeypatch) -> None:
    """The probe's and the blocks' products on the calling thread use one
    BLAS thread (a threaded product left OpenBLAS's threads spinning on the
    cores the searches after it need), and the count comes back after."""
    from threadpoolctl import threadpool_limits

    from xplearn.neighbors._search import host_workers_blas

    seen = []
    for name in ("_pivots", "_worth_it", "_sq_dist_all"):
        real = getattr(pruned, name)

        def spy(*args, _real=real, **kwargs):
            seen.append(host_workers_blas())
            return _real(*args, **kwargs)

        monkeypatch.setattr(pruned, name, spy)
    rng = np.random.default_rng(4)
    pts = _clusters(rng, 21_000, 16, n_clusters=10).astype(np.float32)
    Y, X = pts[1000:], pts[:1000]
    with threadpool_limits(2, user_api="blas"):
        if host_workers_blas() < 2:
            pytest.skip("BLAS runs on one thread here")
        _, ind = kneighbors(X, Y, 10)
        after = host_workers_blas()
    assert counted["pruned"] == 1
    assert seen == [1, 1, 1, 1]  # pivots, probe, its pivot distances, the queries'
    assert after == 2
    np.testing.assert_array_equal(ind, knn_oracle(X, Y, 10)[0])


def test_home_block_smaller_than_k(forced, monkeypatch) -> None:
    """A pivot on two outliers: queries there have a home block of two rows,
    no upper bound from it, and are searched against every other block."""
    rng = np.random.default_rng(6)
    Y = _clusters(rng, 2000, 4, n_clusters=3).astype(np.float32)
    Y[[500, 1500]] = [[100, 100, 100, 100], [100, 100, 100, 101]]
    X = np.array([[100, 100, 100, 100.5], [0, 0, 0, 0]], dtype=np.float32)
    X = np.concatenate([X, Y[:50] + 0.01])
    centres = np.concatenate([np.array([[100, 100, 100, 100.5]]), Y[::400]])
    monkeypatch.setattr(
        pruned, "_pivots", lambda Y, xp: xp.asarray(centres.astype(np.float32))
    )
    _, ind = kneighbors(X, Y, K)
    assert forced["pruned"] == 1
    ref, _ = knn_oracle(X, Y, K)
    np.testing.assert_array_equal(ind, ref)
    assert set(ind[0, :2]) == {500, 1500}


def test_self_query_and_classifier(forced) -> None:
    """``kneighbors()`` without queries (each point left out of its own
    neighbours) equals the oracle, ties included; a classifier's predictions
    equal scikit-learn's (on data without ties at the k-th neighbour)."""
    from sklearn.neighbors import KNeighborsClassifier as SkClassifier

    rng = np.random.default_rng(7)
    Y = np.round(_clusters(rng, 1500, 6, spread=2.0)).astype(np.float32)
    with xplearn.config_context(pruning="off"):
        want_d, want_i = NearestNeighbors(n_neighbors=K).fit(Y).kneighbors()
    got_d, got_i = NearestNeighbors(n_neighbors=K).fit(Y).kneighbors()
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_array_equal(got_d, want_d)
    _, D = knn_oracle(Y, Y, K)
    np.fill_diagonal(D, np.inf)
    np.testing.assert_array_equal(got_i, np.argsort(D, axis=1, kind="stable")[:, :K])
    Z = _clusters(rng, 1500, 6, spread=2.0).astype(np.float32)
    labels = rng.integers(0, 3, Z.shape[0])
    clf = KNeighborsClassifier(K).fit(Z, labels)
    sk = SkClassifier(K, algorithm="brute").fit(Z.astype(np.float64), labels)
    queries = Z[:300] + 0.01
    np.testing.assert_array_equal(clf.predict(queries), sk.predict(queries))
    assert forced["pruned"] == 2  # kneighbors() and predict


def test_pruning_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="pruning must be one of"):
        xplearn.set_config(pruning="always")
    with xplearn.config_context(pruning="off"):
        assert xplearn.get_config()["pruning"] == "off"


@settings(
    derandomize=True,
    deadline=None,
    max_examples=15,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    n_clusters=st.integers(1, 20),
    d=st.integers(1, 40),
    k=st.integers(1, 12),
    spread=st.sampled_from([1e-4, 1e-2, 1.0, 30.0]),
    log_scale=st.floats(-8, 8),
    offset=st.sampled_from([0.0, 1e4]),
    grid=st.booleans(),
    float64=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_pruned_property(
    forced, n_clusters, d, k, spread, log_scale, offset, grid, float64, seed
) -> None:
    """Random clustered data (near-duplicates, a common offset, grid ties,
    scales from 1e-8 to 1e8, float32 and float64): pruned == full search ==
    the float64 oracle."""
    rng = np.random.default_rng(seed)
    pts = _clusters(rng, 1400, d, n_clusters, spread=spread)
    if grid:
        pts = np.round(pts / spread) * spread
    pts = (pts + offset) * 10.0**log_scale
    pts = pts.astype(np.float64 if float64 else np.float32)
    X, Y = pts[:80], pts[80:]
    with xplearn.config_context(pruning="off"):
        d_off, i_off = kneighbors(X, Y, k)
    before = forced["pruned"]
    d_on, i_on = kneighbors(X, Y, k)
    assert forced["pruned"] == before + 1
    np.testing.assert_array_equal(i_on, i_off)
    np.testing.assert_array_equal(d_on, d_off)
    np.testing.assert_array_equal(i_on, knn_oracle(X, Y, k)[0])


def test_torch_cpu_is_pruned_on_numpy_views(forced, monkeypatch, torch) -> None:
    """torch CPU tensors are searched by numpy's pruned search on zero-copy
    views (its blocks run on the host pool) and answered in torch: the same
    answer as numpy input, the oracle's indices."""
    seen = []
    real = pruned.pruned_search

    def spy(X, Y, k, xp, inner):
        seen.append(type(X).__module__.split(".")[0])
        return real(X, Y, k, xp, inner)

    monkeypatch.setattr(pruned, "pruned_search", spy)
    rng = np.random.default_rng(11)
    Y, X = _data("offset", rng)
    dist, ind = kneighbors(torch.from_numpy(X), torch.from_numpy(Y), K)
    assert seen == ["numpy"]  # the torch call went straight to numpy's views
    assert forced["pruned"] == 1
    assert isinstance(ind, torch.Tensor)
    assert ind.dtype == torch.int64
    assert dist.dtype == torch.float32
    assert dist.device.type == "cpu"
    want_d, want_i = kneighbors(X, Y, K)
    np.testing.assert_array_equal(ind.numpy(), want_i)
    np.testing.assert_array_equal(dist.numpy(), want_d)
    np.testing.assert_array_equal(ind.numpy(), knn_oracle(X, Y, K)[0])
