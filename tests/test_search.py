"""The search kernels on an accelerator: how many operations, not how fast.

A GPU search is bound by kernel launches and host synchronisations.  These
tests count the torch operations a search dispatches (``TorchDispatchMode``
works on the CPU) with the accelerator's tile plan switched on, so they run
without a GPU: the count may grow with the number of tiles by a small
constant, never with the rows inside a tile, and the host synchronisations
(``aten::_local_scalar_dense``: ``bool(t)``, ``float(t)``) do not grow at all.
"""

from collections import Counter

import numpy as np
import pytest
from scipy.spatial.distance import cdist

import xplearn
import xplearn.neighbors._search as search
from xplearn.neighbors import kneighbors

# Per (row tile × column tile): the GEMM, the group selection and the merge.
PER_TILE = 32
# Per row tile: the centred queries, the re-ranking and the certificates.
PER_ROW_TILE = 48


def _count_ops(torch, X, Y, k):
    from torch.utils._python_dispatch import TorchDispatchMode

    counts: Counter[str] = Counter()

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            counts[str(func.overloadpacket.__name__)] += 1
            return func(*args, **(kwargs or {}))

    with Count():
        dist, ind = kneighbors(X, Y, n_neighbors=k, return_distance=True)
    return counts, (dist, ind)


@pytest.fixture
def pretend_accelerator(monkeypatch):
    """The accelerator tile plan on the CPU, with tiles scaled down 256×.

    1 GiB tiles of a 1M-row search would take seconds on a CPU; 4 MiB tiles
    16 384 rows wide give the same structure (several row and column tiles)
    on a few MB of data.
    """
    monkeypatch.setattr(search, "is_accelerator", lambda xp, device: True)
    monkeypatch.setattr(search, "_DEVICE_TILE_BYTES", 2**22)
    monkeypatch.setattr(search, "_DEVICE_TILE_COLS", 16_384)


def test_operations_grow_with_tiles_not_rows(torch, pretend_accelerator):
    gen = torch.Generator().manual_seed(0)
    n, d, k = 256, 8, 10
    X = torch.randn(n, d, generator=gen)
    tiles, ops, syncs = [], [], []
    with xplearn.config_context(screening="off", working_memory=1024):
        for m in (2**15, 2**17):
            Y = torch.randn(m, d, generator=gen)
            counts, (dist, ind) = _count_ops(torch, X, Y, k)
            rows, cols = search.euclidean_tiles(n, m, k + 8, d, 4, 2**30, True)
            n_row, n_col = -(-n // rows), len(search.column_bounds(m, cols))
            tiles.append((n_row, n_col))
            ops.append(sum(counts.values()))
            syncs.append(counts["_local_scalar_dense"])
            # Exact as ever: the same answer as float64 differences.
            ref = cdist(X.double().numpy(), Y.double().numpy(), "sqeuclidean")
            want = np.argsort(ref, axis=1, kind="stable")[:, :k]
            np.testing.assert_array_equal(ind.numpy(), want)
            exact = np.sqrt(np.take_along_axis(ref, want, axis=1))
            # float32 sums of d squares: (d + 2) roundings at most.
            np.testing.assert_allclose(dist.numpy(), exact, rtol=(d + 2) * 2**-24)
    (r1, c1), (r2, c2) = tiles
    assert r1 == r2 == 4, tiles
    assert (c1, c2) == (2, 8), tiles
    # Every tile costs a bounded number of operations ...
    assert ops[0] <= 64 + r1 * (PER_ROW_TILE + PER_TILE * c1), ops
    # ... and four times the rows cost only the extra tiles' operations.
    assert ops[1] - ops[0] <= PER_TILE * (r2 * c2 - r1 * c1), ops
    # Host synchronisations: a fixed few per search, none per tile.
    assert syncs[0] == syncs[1] <= 8, syncs


@pytest.mark.real_tile_plan
def test_device_tiles_are_large():
    """The issue's GPU shapes take a handful of ~1 GiB tiles, not hundreds."""
    budget = 20 * 2**30  # a quarter of an H100's free memory
    for m, d in ((1_000_000, 128), (1_000_000, 64), (200_000, 512)):
        rows, cols = search.euclidean_tiles(10_000, m, 18, d, 4, budget, True)
        n_tiles = -(-10_000 // rows) * len(search.column_bounds(m, cols))
        assert n_tiles <= 64, (m, d, rows, cols)
        assert rows * cols * 4 <= search._DEVICE_TILE_BYTES
    # The CPU keeps its cache-sized tiles.
    rows, cols = search.euclidean_tiles(10_000, 100_000, 18, 64, 4, 2**30, False)
    assert rows * cols <= search._TILE_ELEMENTS


def test_rerank_chunks_agree(torch):
    """The CPU's chunked re-ranking equals one pass over all candidates."""
    import array_api_compat.torch as xp

    gen = torch.Generator().manual_seed(1)
    Y = torch.randn(500, 64, generator=gen) + 1e4
    X = torch.randn(300, 64, generator=gen) + 1e4
    idx = torch.stack([torch.randperm(500, generator=gen)[:18] for _ in range(300)])
    whole = ((Y[idx] - X[:, None, :]) ** 2).sum(dim=2)
    chunked = search._exact_sq(X, Y, idx, xp)
    assert torch.equal(whole, chunked)
    wide = ((Y[idx].double() - X[:, None, :].double()) ** 2).sum(dim=2)
    assert torch.equal(wide, search._exact_sq(X, Y, idx, xp, torch.float64))


def _hard_data(kind, rng):
    """Float32 database and queries that defeat a careless expansion."""
    if kind == "offset":  # a common offset of 1e4: norms far above distances
        pts = rng.standard_normal((2200, 16)) + 1e4
    elif kind == "near_duplicates":  # clusters of points 1e-4 apart
        base = np.repeat(rng.standard_normal((220, 8)), 10, axis=0)
        pts = base + 1e-4 * rng.standard_normal(base.shape)
    elif kind == "grid":  # integers: exact ties everywhere
        pts = rng.integers(0, 4, size=(2200, 3)).astype(float)
    elif kind == "sphere":  # queries at the centre of a sphere: distances
        # a few float32 units in the last place apart, where a float32 sum
        # orders 60% of the rows differently from float64
        v = rng.standard_normal((2200, 64))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        pts = v * (1 + 1e-7 * rng.standard_normal((2200, 1)))
        pts[:200] *= 1e-5
    else:  # "norms": row norms spread over 1e-3 … 1e3
        pts = rng.standard_normal((2200, 12)) * 10.0 ** rng.uniform(-3, 3, (2200, 1))
    pts = pts.astype(np.float32)
    return pts[200:], pts[:200]


KINDS = ["offset", "near_duplicates", "grid", "norms", "sphere"]


@pytest.mark.parametrize("kind", KINDS)
def test_accelerator_tiles_are_exact(backend, monkeypatch, kind):
    """The accelerator's tile plan (here several row and column tiles) gives
    the float64 answer on every backend: indices, ties to the lower index."""
    from backends import assert_in_backend

    monkeypatch.setattr(search, "is_accelerator", lambda xp, device: True)
    monkeypatch.setattr(search, "_DEVICE_TILE_BYTES", 2**16)
    monkeypatch.setattr(search, "_DEVICE_TILE_COLS", 512)
    Y, X = _hard_data(kind, np.random.default_rng(3))
    with xplearn.config_context(screening="off"):
        dist, ind = kneighbors(backend.asarray(X), backend.asarray(Y), n_neighbors=7)
    assert_in_backend(ind, backend, "int64")
    assert_in_backend(dist, backend, "float32")
    ref = cdist(X.astype(np.float64), Y.astype(np.float64), "sqeuclidean")
    want = np.argsort(ref, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(xplearn.to_numpy(ind), want)
    exact = np.sqrt(np.take_along_axis(ref, want, axis=1))
    np.testing.assert_allclose(xplearn.to_numpy(dist), exact, rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("screening", ["off", "auto"])
@pytest.mark.parametrize("kind", KINDS)
def test_order_is_float64s(backend, kind, screening):
    """The CPU tile plan, screened or not, orders neighbours as float64 does
    on the same float32 values, also where their float32 distances differ by
    a unit in the last place ("sphere": a float32 re-ranking got 118 of the
    200 rows in another order)."""
    Y, X = _hard_data(kind, np.random.default_rng(4))
    with xplearn.config_context(screening=screening):
        dist, ind = kneighbors(backend.asarray(X), backend.asarray(Y), n_neighbors=7)
    ref = cdist(X.astype(np.float64), Y.astype(np.float64), "sqeuclidean")
    want = np.argsort(ref, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(xplearn.to_numpy(ind), want)
    exact = np.sqrt(np.take_along_axis(ref, want, axis=1))
    np.testing.assert_allclose(xplearn.to_numpy(dist), exact, rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("kind", KINDS)
def test_database_rows_on_host_threads(backend, monkeypatch, kind):
    """The database operand built in place (numpy: in shares on the host
    threads, here forced on small data) gives the float64 answer, the same
    as one share, and leaves the caller's arrays unchanged."""
    from backends import assert_in_backend
    from xplearn._dispatch import Edge

    built = []
    real = search._database_rows

    def spy(Y, c, pad, xp):
        block, YY = real(Y, c, pad, xp)
        built.append((tuple(block.shape), pad))
        return block, YY

    monkeypatch.setattr(search, "_database_rows", spy)
    monkeypatch.setattr(search, "_TORCH_MIN_WORK", 2**62)  # numpy's own path
    Y, X = _hard_data(kind, np.random.default_rng(7))
    before = (X.copy(), Y.copy())
    Yb, Xb = backend.asarray(Y), backend.asarray(X)
    answers = []
    for share in (2**62, 64):  # one share; several, on the host threads
        monkeypatch.setattr(search, "_BLOCK_SHARE", share)
        with xplearn.config_context(screening="off", pruning="off"):
            answers.append(kneighbors(Xb, Yb, n_neighbors=7))
    # (An accelerator's torch search adds the norms in the GEMM: no block;
    # dask searches its blocks' numpy arrays, out of this spy's view.)
    if backend.name != "dask":
        edge, Yc = Edge.of(Yb)
        assert bool(built) != search.is_accelerator(edge.xp, xplearn.device(Yc))
    assert all(w == Y.shape[1] + 1 + p for (_, w), p in built)
    dist, ind = answers[1]
    assert_in_backend(ind, backend, "int64")
    assert_in_backend(dist, backend, "float32")
    np.testing.assert_array_equal(
        xplearn.to_numpy(ind), xplearn.to_numpy(answers[0][1])
    )
    np.testing.assert_array_equal(
        xplearn.to_numpy(dist), xplearn.to_numpy(answers[0][0])
    )
    ref = cdist(X.astype(np.float64), Y.astype(np.float64), "sqeuclidean")
    want = np.argsort(ref, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(xplearn.to_numpy(ind), want)
    exact = np.sqrt(np.take_along_axis(ref, want, axis=1))
    np.testing.assert_allclose(xplearn.to_numpy(dist), exact, rtol=1e-6, atol=1e-30)
    np.testing.assert_array_equal(X, before[0])
    np.testing.assert_array_equal(Y, before[1])


@pytest.mark.parametrize("kind", ["gaussian", "grid"])
def test_rerank_nearest_equals_rerank_of_all(monkeypatch, kind):
    """Re-ranking the k + 2 best-screened candidates first answers as the
    re-ranking of all of them: on Gaussian data every row is certified by the
    shortcut alone; on an integer grid (ties at the k-th) the rows it cannot
    certify are re-ranked over all their candidates."""
    import array_api_compat.numpy as xp

    rng = np.random.default_rng(5)
    if kind == "grid":
        Y = rng.integers(0, 3, size=(400, 3)).astype(np.float32)
        X = rng.integers(0, 3, size=(60, 3)).astype(np.float32)
    else:
        Y = rng.standard_normal((400, 16)).astype(np.float32)
        X = rng.standard_normal((60, 16)).astype(np.float32)
    k, c = 5, 13
    screened = cdist(X, Y, "sqeuclidean") - (X.astype(np.float64) ** 2).sum(1)[:, None]
    idx = np.argsort(screened, axis=1, kind="stable")[:, :c]
    idx = np.ascontiguousarray(rng.permuted(idx, axis=1))  # unordered, as selected
    vals = np.take_along_axis(screened, idx, axis=1)
    sizes = []
    real = search.rerank

    def spy(Xq, Yr, ids, kk, xpr):
        sizes.append(ids.shape)
        return real(Xq, Yr, ids, kk, xpr)

    monkeypatch.setattr(search, "rerank", spy)
    xx = (X * X).sum(1)
    yy_max = float((Y * Y).sum(1).max())
    err = search.ScreenError(x2=1e-6, yy=1e-6)

    def certify(kth, tau, sel):
        x = xx if sel is None else xx[sel]
        return search.certified(kth, tau, x, yy_max, Y.shape[1], err, xp)

    d, i, ok = search.rerank_nearest(X, Y, vals, idx, k, k + 2, certify, xp)
    want_d, want_i = real(X, Y, idx, k, xp)
    np.testing.assert_array_equal(i, want_i)
    np.testing.assert_array_equal(d, want_d)
    assert sizes[0] == (60, k + 2)  # the shortcut ran first
    if kind == "gaussian":
        assert len(sizes) == 1
        assert ok.all()
    else:  # ties at the k-th: some rows took every candidate, none certified
        assert len(sizes) == 2
        assert sizes[1][1] == c
        np.testing.assert_array_equal(ok, certify(want_d[:, -1], vals.max(1), None))


@pytest.mark.parametrize("data", ["gaussian", "clustered"])
def test_search_keeps_the_autograd_graph(torch, data):
    """Tensors that require grad: the same answer, and distances to differentiate.

    The float32 search wrote its products into reused buffers (``out=``),
    which autograd refuses: kneighbors raised on such tensors.  Clustered
    data takes the pruned search.
    """
    from sklearn.datasets import make_blobs

    if data == "gaussian":
        gen = torch.Generator().manual_seed(3)
        pts = torch.randn(2300, 512, generator=gen)
    else:
        blobs, _ = make_blobs(20_000, 16, centers=50, cluster_std=0.5, random_state=0)
        pts = torch.tensor(blobs, dtype=torch.float32)
    Y = pts[300:].clone().requires_grad_(True)
    X = pts[:300].clone().requires_grad_(True)
    dist, ind = kneighbors(X, Y, n_neighbors=10, return_distance=True)
    plain, plain_ind = kneighbors(X.detach(), Y.detach(), n_neighbors=10)
    assert torch.equal(ind, plain_ind)
    assert torch.equal(dist.detach(), plain)
    assert dist.requires_grad
    dist.sum().backward()
    # d‖x − y‖/dx = (x − y)/‖x − y‖, summed over the neighbours.
    diff = X.detach().double()[:, None, :] - Y.detach().double()[ind]
    want = (diff / diff.norm(dim=2, keepdim=True)).sum(dim=1)
    np.testing.assert_allclose(X.grad.double().numpy(), want.numpy(), atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_numpy_on_torch_views_answers_as_numpy(torch, monkeypatch, kind):
    """Large numpy searches run on torch's kernels through zero-copy views:
    the answer is numpy arrays with the bits of numpy's own kernels and the
    float64 order, from read-only and strided inputs, which stay unchanged."""
    ran = []
    real = search._on_torch_views

    def spy(X, Y, k, *rest):
        ran.append(X.shape)
        return real(X, Y, k, *rest)

    monkeypatch.setattr(search, "_on_torch_views", spy)
    Y, X = _hard_data(kind, np.random.default_rng(6))
    Y2 = np.repeat(Y, 2, axis=1)[:, ::2]  # a strided view, equal to Y
    Y2.flags.writeable = False
    X.flags.writeable = False
    before = (X.copy(), Y.copy())
    monkeypatch.setattr(search, "_TORCH_MIN_WORK", 2**62)
    with xplearn.config_context(pruning="off"):
        own = kneighbors(X, Y, n_neighbors=7)
    assert not ran
    monkeypatch.setattr(search, "_TORCH_MIN_WORK", 1)
    with xplearn.config_context(pruning="off"):
        dist, ind = kneighbors(X, Y2, n_neighbors=7)
    assert ran == [X.shape]
    assert type(dist) is np.ndarray
    assert dist.dtype == np.float32
    assert type(ind) is np.ndarray
    assert ind.dtype == np.int64
    np.testing.assert_array_equal(ind, own[1])
    np.testing.assert_array_equal(dist, own[0])
    ref = cdist(X.astype(np.float64), Y.astype(np.float64), "sqeuclidean")
    want = np.argsort(ref, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(ind, want)
    np.testing.assert_array_equal(X, before[0])
    np.testing.assert_array_equal(Y2, before[1])


def test_numpy_on_torch_views_threads(torch, monkeypatch):
    """torch runs a numpy search on as many threads as numpy's BLAS may use,
    and only from the main thread (a worker thread keeps numpy's kernels:
    each thread would start an OpenMP team of its own)."""
    import threading

    from threadpoolctl import threadpool_limits

    monkeypatch.setattr(search, "_TORCH_MIN_WORK", 1)
    seen = []
    real = search._euclidean

    def spy(X, Y, k, xp, *rest):
        seen.append((type(X).__module__.split(".")[0], torch.get_num_threads()))
        return real(X, Y, k, xp, *rest)

    monkeypatch.setattr(search, "_euclidean", spy)
    rng = np.random.default_rng(7)
    Y = rng.standard_normal((3000, 8)).astype(np.float32)
    X = rng.standard_normal((100, 8)).astype(np.float32)
    before = torch.get_num_threads()
    with threadpool_limits(limits=1, user_api="blas"):
        want = kneighbors(X, Y, n_neighbors=4)
    assert seen == [("torch", 1)]
    assert torch.get_num_threads() == before
    seen.clear()
    got = []
    worker = threading.Thread(
        target=lambda: got.append(kneighbors(X, Y, n_neighbors=4))
    )
    worker.start()
    worker.join()
    assert [s[0] for s in seen] == ["numpy"]
    np.testing.assert_array_equal(got[0][1], want[1])
    np.testing.assert_array_equal(got[0][0], want[0])
