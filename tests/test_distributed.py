"""xplearn on a dask.distributed LocalCluster: numpy's answers, nothing gathered.

Each test starts, in a child process, a cluster of two worker processes on
loopback, one thread each, 1 GiB each, no spilling or pausing (a worker that
passes 95% of its limit is restarted, and the tests fail).  In a child:
importing distributed changes process-wide state (BLAS threads) that the
rest of the suite must not see.
"""

import os

import numpy as np
import pytest
from sklearn.datasets import make_blobs

import xplearn
from xplearn.cluster import KMeans, MiniBatchKMeans
from xplearn.neighbors import (
    KNeighborsClassifier,
    NearestNeighbors,
    RadiusNeighborsClassifier,
    RadiusNeighborsRegressor,
)

LIMIT = 2**30


def _cluster():
    """A 2-worker LocalCluster and its client (in the child process)."""
    import contextlib

    import dask
    import distributed

    memory = {
        "distributed.worker.memory.target": False,
        "distributed.worker.memory.spill": False,
        "distributed.worker.memory.pause": False,
        "distributed.worker.memory.terminate": 0.95,
    }
    stack = contextlib.ExitStack()
    stack.enter_context(dask.config.set(memory))
    cluster = stack.enter_context(
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            memory_limit=LIMIT,
        )
    )
    return stack, stack.enter_context(distributed.Client(cluster))


@pytest.fixture
def client(request):
    """Run the test's body in a child process with its own cluster.

    A cluster changes process-wide state (BLAS threads, dask's scheduler):
    the rest of the suite must not see it.
    """
    from conftest import _KEY

    if "dask" not in {b.name for b in request.config.stash[_KEY]}:
        pytest.skip("dask not among the requested --backends")
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("distributed") is None:  # not imported here
        # Part of the dask backend's tests: requested and missing is an error.
        pytest.fail(
            "dask is among the requested --backends but dask.distributed is "
            "not installed: pip install distributed (nox's dask session does)"
        )
    name = request.node.originalname
    here = os.path.dirname(__file__)
    env = dict(os.environ)
    # The xplearn this process imported (pytest puts src/ first on its
    # sys.path, not in the environment): the child and its workers must not
    # find another installed copy.
    src = os.path.dirname(os.path.dirname(xplearn.__file__))
    env["PYTHONPATH"] = os.pathsep.join(
        [here, src, *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
    )
    proc = subprocess.run(
        [sys.executable, "-c", f"import test_distributed as t; t._child({name!r})"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _child(name: str) -> None:
    stack, c = _cluster()
    with stack:
        globals()["_" + name](c)


def _rss() -> float:
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss


def test_estimators_on_the_cluster_equal_numpy(client) -> None:
    """Run in a child process (the ``client`` fixture)."""


def _test_estimators_on_the_cluster_equal_numpy(client) -> None:
    import dask.array as da

    X, y = make_blobs(n_samples=4000, n_features=6, centers=5, random_state=0)
    Xd = da.from_array(X, chunks=700).persist()
    km = KMeans(5, random_state=0).fit(Xd)
    ref = KMeans(5, random_state=0).fit(X)
    np.testing.assert_allclose(
        xplearn.to_numpy(km.cluster_centers_), ref.cluster_centers_, rtol=1e-10
    )
    np.testing.assert_array_equal(km.labels_.compute(), ref.labels_)
    assert km.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(km.inertia_, ref.inertia_, rtol=1e-10)
    np.testing.assert_array_equal(km.predict(Xd).compute(), ref.predict(X))
    mbk = MiniBatchKMeans(5, batch_size=256, random_state=0).fit(Xd)
    mref = MiniBatchKMeans(5, batch_size=256, random_state=0).fit(X)
    np.testing.assert_allclose(
        xplearn.to_numpy(mbk.cluster_centers_), mref.cluster_centers_, rtol=1e-10
    )
    d, i = NearestNeighbors(n_neighbors=4).fit(Xd).kneighbors(Xd[:500])
    rd, ri = NearestNeighbors(n_neighbors=4).fit(X).kneighbors(X[:500])
    np.testing.assert_array_equal(i.compute(), ri)
    np.testing.assert_allclose(d.compute(), rd, rtol=1e-12)
    clf = KNeighborsClassifier().fit(Xd, y)
    np.testing.assert_array_equal(
        clf.predict(Xd[::7]).compute(), KNeighborsClassifier().fit(X, y).predict(X[::7])
    )
    # The radius search: pairs per block on the workers, numpy's answers.
    nn = NearestNeighbors(radius=1.5).fit(Xd)
    ref_nn = NearestNeighbors(radius=1.5).fit(X)
    d, i = nn.radius_neighbors(Xd[::9], sort_results=True)
    rd, ri = ref_nn.radius_neighbors(X[::9], sort_results=True)
    assert sum(len(r) for r in ri) > 1000
    for a, b, c, e in zip(d, i, rd, ri, strict=True):
        np.testing.assert_array_equal(b, e)
        np.testing.assert_array_equal(a, c)
    G = nn.radius_neighbors_graph(mode="distance", sort_results=True)
    R = ref_nn.radius_neighbors_graph(mode="distance", sort_results=True)
    np.testing.assert_array_equal(G.indptr, R.indptr)
    np.testing.assert_array_equal(G.indices, R.indices)
    np.testing.assert_array_equal(G.data, R.data)
    rclf = RadiusNeighborsClassifier(0.8, outlier_label="most_frequent").fit(Xd, y)
    rref = RadiusNeighborsClassifier(0.8, outlier_label="most_frequent").fit(X, y)
    np.testing.assert_array_equal(rclf.predict(Xd[::7]).compute(), rref.predict(X[::7]))
    reg = RadiusNeighborsRegressor(1.0).fit(Xd, X[:, 0])
    np.testing.assert_allclose(
        reg.predict(Xd[::7]).compute(),
        RadiusNeighborsRegressor(1.0).fit(X, X[:, 0]).predict(X[::7]),
        rtol=1e-12,
    )


def test_radius_search_never_gathers_the_fit_data(client) -> None:
    """Run in a child process (the ``client`` fixture)."""


def _test_radius_search_never_gathers_the_fit_data(client) -> None:
    """128 MiB of float32 made on the workers: the radius queries, their
    graph and the radius classifier run there; this process receives the
    pairs within the radius, never the fit data (a gather would add 128 MiB
    to this process, the pairs of 64 queries a few MiB)."""
    import dask.array as da

    n = 2**21
    X = (
        da.random.default_rng(1)
        .standard_normal((n, 16), chunks=(2**18, 16))
        .astype(np.float32)
        .persist()
    )
    Q = X[:64].compute()
    # The labels are held on the host, as for every classifier fitted on
    # dask (one value per sample): fitted before the measure starts.
    y = (X[:, 0] > 0).astype(np.int64).persist()
    clf = RadiusNeighborsClassifier(1.5, outlier_label=0).fit(X, y)
    nn = NearestNeighbors(radius=1.5).fit(X)
    before = _rss()
    # Tiles of 64 MiB per task: the workers hold 1 GiB.
    with xplearn.config_context(working_memory=64):
        d, i = nn.radius_neighbors(Q, sort_results=True)
        G = nn.radius_neighbors_graph(Q)
        pred = clf.predict(Q)
    assert _rss() - before < 0.25 * n * 16 * 4
    # Each query finds itself first, at distance 0 (sorted by distance).
    np.testing.assert_array_equal([r[0] for r in i], np.arange(64))
    np.testing.assert_array_equal([r[0] for r in d], 0.0)
    assert G.shape == (64, n)
    np.testing.assert_array_equal(np.diff(G.indptr), [len(r) for r in i])
    assert pred.shape == (64,)
    # Both workers are alive: none passed its limit and was restarted.
    assert len(client.scheduler_info()["workers"]) == 2


@pytest.mark.slow  # 5 min on a busy 2-core machine: run with --runslow
def test_data_larger_than_a_worker_is_never_gathered(client) -> None:
    """Run in a child process (the ``client`` fixture)."""


def _test_data_larger_than_a_worker_is_never_gathered(client) -> None:
    """1.05 GiB of float32 made on the workers, each worker limited to 1 GiB:
    the fit and the queries run, and this process never holds the data."""
    import dask.array as da

    n = int(1.05 * LIMIT / (16 * 4))
    X = (
        da.random.default_rng(0)
        .standard_normal((n, 16), chunks=(2**16, 16))
        .astype(np.float32)
        .persist()
    )
    before = _rss()
    km = KMeans(3, max_iter=2, random_state=0).fit(X)
    labels = km.predict(X[:1000]).compute()
    nn = NearestNeighbors(n_neighbors=2).fit(X)
    ind = nn.kneighbors(X[:200], return_distance=False).compute()
    # The radius search reads every block of the fit data for each block of
    # queries (about 1 s a block for 200 queries on a busy 2-core machine,
    # 256 blocks): 50 queries still read them all, at a quarter of the time.
    with xplearn.config_context(working_memory=64):  # the workers hold 1 GiB
        rind = nn.radius_neighbors(X[:50], radius=1.0, return_distance=False)
    assert _rss() - before < 0.1 * LIMIT
    np.testing.assert_array_equal([r[0] for r in rind], np.arange(50))
    assert labels.shape == (1000,)
    np.testing.assert_array_equal(ind[:, 0], np.arange(200))
    # Both workers are alive: none passed its limit and was restarted.
    assert len(client.scheduler_info()["workers"]) == 2
