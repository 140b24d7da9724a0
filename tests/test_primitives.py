"""Each fast path agrees with the standard-only body, ties included."""

import sys
import warnings

import array_api_compat.numpy as npx
import numpy as np
import pytest

import xplearn
from xplearn._dispatch import Edge
from xplearn._primitives import (
    merge_topk,
    sq_row_norms,
    tile_sizes,
    topk_candidates,
    topk_smallest,
    topk_smallest_standard,
    working_memory_bytes,
)

# Integer-valued data: many exact ties, which is where top-k paths disagree.
TIED = np.random.default_rng(0).integers(0, 5, size=(40, 30)).astype(np.float64)


@pytest.mark.parametrize("torch_loaded", [True, False])
@pytest.mark.parametrize("n", [1, 4, 17])
def test_numpy_candidates_are_the_n_smallest(monkeypatch, n, torch_loaded) -> None:
    """numpy's candidates come from torch's top-k where torch is loaded (never
    imported for it), else from argpartition: either way the n smallest
    values of each row, ties at the boundary kept either way, as numpy."""
    rng = np.random.default_rng(n)
    D = rng.integers(0, 6, size=(50, 40)).astype(np.float32)
    calls = []
    if torch_loaded:
        torch = pytest.importorskip("torch")
        real = torch.topk

        def spy(*args, **kwargs):
            calls.append(args[1])
            return real(*args, **kwargs)

        monkeypatch.setattr(torch, "topk", spy)
    else:
        monkeypatch.delitem(sys.modules, "torch", raising=False)
    vals, idx = topk_candidates(D, n, npx)
    assert calls == ([n] if torch_loaded else [])
    assert isinstance(vals, np.ndarray)
    assert isinstance(idx, np.ndarray)
    assert vals.dtype == np.float32
    assert idx.dtype == np.int64
    assert vals.shape == idx.shape == (50, n)
    np.testing.assert_array_equal(np.take_along_axis(D, idx, axis=1), vals)
    np.testing.assert_array_equal(np.sort(vals, axis=1), np.sort(D, axis=1)[:, :n])
    assert all(len(set(row)) == n for row in idx.tolist())  # distinct columns


@pytest.mark.parametrize(
    "make",
    [
        lambda D: D[:, ::-1],  # negative strides
        lambda D: D.astype(D.dtype.newbyteorder()),  # not native
        lambda D: np.lib.stride_tricks.as_strided(D, writeable=False),  # read-only
    ],
    ids=["reversed", "byteswapped", "readonly"],
)
def test_numpy_candidates_of_arrays_torch_cannot_view(make) -> None:
    pytest.importorskip("torch")
    D = make(np.random.default_rng(0).standard_normal((20, 30)).astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vals, idx = topk_candidates(D, 5, npx)
    np.testing.assert_array_equal(np.take_along_axis(D, idx, axis=1), vals)
    np.testing.assert_array_equal(np.sort(vals, axis=1), np.sort(D, axis=1)[:, :5])


@pytest.mark.parametrize("k", [1, 3, 10, 30])
def test_topk_fast_path_matches_standard(backend, k) -> None:
    if backend.name == "dask":
        pytest.skip("dask runs the numpy kernel per block (tested under numpy)")
    edge, D = Edge.of(backend.asarray(TIED))
    vals, idx = topk_smallest(D, k, edge.xp)
    svals, sidx = topk_smallest_standard(D, k, edge.xp)
    np.testing.assert_array_equal(xplearn.to_numpy(idx), xplearn.to_numpy(sidx))
    np.testing.assert_array_equal(xplearn.to_numpy(vals), xplearn.to_numpy(svals))
    ref = np.argsort(TIED, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(xplearn.to_numpy(idx), ref)
    assert "int64" in str(idx.dtype)


def test_merge_keeps_lower_index_on_ties(backend) -> None:
    if backend.name == "dask":
        pytest.skip("dask runs the numpy kernel per block (tested under numpy)")
    edge, D = Edge.of(backend.asarray(TIED))
    xp = edge.xp
    a = topk_smallest(D[:, :15], 4, xp)
    b = topk_smallest(D[:, 15:], 4, xp)
    _vals, idx = merge_topk(a[0], a[1], b[0], b[1] + 15, 4, xp)
    ref = np.argsort(TIED, axis=1, kind="stable")[:, :4]
    np.testing.assert_array_equal(xplearn.to_numpy(idx), ref)


def test_sq_row_norms(backend) -> None:
    edge, X = Edge.of(backend.asarray(TIED))
    got = xplearn.to_numpy(sq_row_norms(X, edge.xp))
    np.testing.assert_allclose(got, (TIED**2).sum(axis=1))


def test_tile_sizes_fit_budget() -> None:
    rows, cols = tile_sizes(10_000, 200_000, 17, 2**30)
    assert rows * cols * 17 <= 2**30
    assert cols == 200_000
    rows, cols = tile_sizes(10, 10**9, 17, 2**20)  # huge database: split columns
    assert rows * cols * 17 <= 2**20
    assert cols < 10**9


def test_working_memory_follows_config() -> None:
    xp = xplearn.get_namespace(np.ones(1))
    assert working_memory_bytes(xp, "cpu") == 1024 * 2**20
    with xplearn.config_context(working_memory=3):
        assert working_memory_bytes(xp, "cpu") == 3 * 2**20


def test_segment_sums_fast_path_matches_standard(backend) -> None:
    from xplearn._primitives import (
        segment_sums,
        segment_sums_standard,
        segment_weights,
    )

    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    labels = rng.integers(0, 6, 50)
    labels[labels == 4] = 5  # segment 4 stays empty
    w = rng.uniform(0.5, 2.0, 50)
    edge, Xc = Edge.of(backend.asarray(X))
    xp = edge.xp
    lab, wc = edge.follow(labels, "labels"), edge.follow(w, "w")
    sums, totals = segment_sums(Xc, lab, wc, 6, xp)
    s_std, t_std = segment_sums_standard(Xc, lab, wc, 6, xp)
    ref = np.zeros((6, 3))
    np.add.at(ref, labels, X * w[:, None])
    np.testing.assert_allclose(xplearn.to_numpy(sums), ref, rtol=1e-12)
    np.testing.assert_allclose(xplearn.to_numpy(s_std), ref, rtol=1e-12)
    np.testing.assert_allclose(
        xplearn.to_numpy(totals), np.bincount(labels, w, minlength=6)
    )
    np.testing.assert_allclose(xplearn.to_numpy(t_std), xplearn.to_numpy(totals))
    assert xplearn.to_numpy(totals)[4] == 0
    weights = segment_weights(lab, wc, 6, xp)
    np.testing.assert_allclose(xplearn.to_numpy(weights), xplearn.to_numpy(totals))
    # weights=None: unit weights (torch skips the weighted copy of X)
    s_one, t_one = segment_sums(Xc, lab, None, 6, xp)
    ref = np.zeros((6, 3))
    np.add.at(ref, labels, X)
    np.testing.assert_allclose(xplearn.to_numpy(s_one), ref, rtol=1e-12)
    np.testing.assert_array_equal(
        xplearn.to_numpy(t_one), np.bincount(labels, minlength=6)
    )
    assert t_one.dtype == Xc.dtype


def test_column_means(backend) -> None:
    from xplearn._primitives import column_means

    X = np.random.default_rng(0).normal(size=(40, 5)) + 1e3
    edge, Xc = Edge.of(backend.asarray(X))
    got = column_means(Xc, edge.xp)
    assert got.dtype == Xc.dtype
    np.testing.assert_allclose(xplearn.to_numpy(got), X.mean(axis=0), rtol=1e-12)


def test_index_dtype_without_int64(strict) -> None:
    from xplearn._validation import index_dtype

    assert index_dtype(strict, strict.Device("CPU_DEVICE")) == strict.int64
    assert index_dtype(strict, strict.Device("no_x64")) == strict.int32


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sqrt_is_correctly_rounded(backend, dtype) -> None:
    """IEEE's root on every backend (torch's CPU kernel is a unit in the last
    place off for 17% of float32 values), so the same squared distances give
    the same Euclidean distances everywhere; and the k-NN distances are those
    roots of the squared ones."""
    from backends import assert_in_backend
    from xplearn._primitives import sqrt_rounded
    from xplearn.neighbors import kneighbors

    rng = np.random.default_rng(8)
    v = rng.uniform(0.0, 1.0, 20_000) * 10.0 ** rng.integers(-30, 30, 20_000)
    v = v.astype(dtype)
    edge, x = Edge.of(backend.asarray(v))
    if str(x.dtype).rpartition(".")[2] != dtype:
        pytest.skip(f"no {dtype} on this backend")
    # (On the compute namespace: eager TensorFlow computes on torch or numpy.)
    got = xplearn.to_numpy(sqrt_rounded(x, edge.xp))
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, np.sqrt(v))
    Y = rng.standard_normal((300, 7)).astype(dtype)
    X = rng.standard_normal((40, 7)).astype(dtype)
    d, i = kneighbors(backend.asarray(X), backend.asarray(Y), 5)
    assert_in_backend(d, backend, dtype)
    sq, j = kneighbors(backend.asarray(X), backend.asarray(Y), 5, metric="sqeuclidean")
    i = xplearn.to_numpy(i)
    np.testing.assert_array_equal(i, xplearn.to_numpy(j))
    sq = xplearn.to_numpy(sq)
    if dtype == "float64":  # (summed in another order than numpy's)
        np.testing.assert_array_equal(xplearn.to_numpy(d), np.sqrt(sq))
        return
    # float32: the root of the float64 squared distance, rounded once (where
    # the backend has float64), not the root of the rounded square.
    exact = ((X[:, None, :].astype(np.float64) - Y[i].astype(np.float64)) ** 2).sum(2)
    wide = Edge.of(backend.asarray(v.astype(np.float64)))[1]
    want = np.sqrt(exact) if wide.dtype == edge.xp.float64 else np.sqrt(sq)
    np.testing.assert_array_equal(xplearn.to_numpy(d), want.astype(dtype))
    np.testing.assert_array_equal(sq, exact.astype(dtype))
