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
from xplearn.neighbors import KNeighborsClassifier, NearestNeighbors

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
    env["PYTHONPATH"] = os.pathsep.join(
        [here, *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
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


@pytest.mark.slow  # 95 s on a busy 2-core machine: run with --runslow
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
    assert _rss() - before < 0.1 * LIMIT
    assert labels.shape == (1000,)
    np.testing.assert_array_equal(ind[:, 0], np.arange(200))
    # Both workers are alive: none passed its limit and was restarted.
    assert len(client.scheduler_info()["workers"]) == 2
