"""scipy sparse input (CSR/CSC) to the estimators and functions that take it.

The oracle is scikit-learn on the same sparse input and xplearn's own dense
path on ``X.toarray()``: the sparse paths must give the same labels and
neighbours (ties to the lower index) and leave the input untouched.
"""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.cluster as skc
from sklearn.datasets import make_blobs

from xplearn.cluster import KMeans, MiniBatchKMeans, kmeans_plusplus

sp = pytest.importorskip("scipy.sparse")

FORMATS = {"csr": sp.csr_matrix, "csc": sp.csc_array}


def _sparse_blobs(n: int = 300, d: int = 12, seed: int = 0) -> np.ndarray:
    X, _ = make_blobs(n, centers=4, n_features=d, random_state=seed)
    X[X < 0] = 0.0  # about half the entries zero
    return X


def _snapshot(Xs):
    return Xs.data.copy(), Xs.indices.copy(), Xs.indptr.copy()


def _assert_unchanged(Xs, snap) -> None:
    for a, b in zip((Xs.data, Xs.indices, Xs.indptr), snap, strict=True):
        np.testing.assert_array_equal(a, b)


# -- MiniBatchKMeans ---------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("init", ["k-means++", "random", "array"])
def test_minibatch_sparse_matches_dense_and_sklearn(fmt, dtype, init) -> None:
    X = _sparse_blobs().astype(dtype)
    Xs = FORMATS[fmt](X)
    snap = _snapshot(Xs)
    start = X[:4].copy() if init == "array" else init
    kw = {"init": start, "batch_size": 50, "random_state": 0, "n_init": 1}
    ours = MiniBatchKMeans(4, **kw).fit(Xs)
    dense = MiniBatchKMeans(4, **kw).fit(X)
    ref = skc.MiniBatchKMeans(4, **kw).fit(Xs)
    _assert_unchanged(Xs, snap)
    assert isinstance(ours.cluster_centers_, np.ndarray)
    assert ours.cluster_centers_.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_array_equal(ours.labels_, dense.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, dense.cluster_centers_, atol=tol)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, atol=tol)
    assert ours.n_steps_ == ref.n_steps_
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-5)
    np.testing.assert_array_equal(ours.predict(Xs), ref.predict(Xs))
    np.testing.assert_allclose(ours.transform(Xs), ref.transform(Xs), atol=tol * 10)
    assert ours.score(Xs) == pytest.approx(ref.score(Xs), rel=1e-5)


def test_minibatch_sparse_sample_weight_and_partial_fit() -> None:
    X = _sparse_blobs()
    Xs = sp.csr_matrix(X)
    w = np.random.default_rng(0).uniform(0.5, 2.0, X.shape[0])
    kw = {"batch_size": 50, "random_state": 0}
    ours = MiniBatchKMeans(4, **kw).fit(Xs, sample_weight=w)
    ref = skc.MiniBatchKMeans(4, **kw).fit(Xs, sample_weight=w)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, atol=1e-12)
    assert ours.score(Xs, sample_weight=w) == pytest.approx(
        ref.score(Xs, sample_weight=w)
    )
    ours = MiniBatchKMeans(4, random_state=0)
    ref = skc.MiniBatchKMeans(4, random_state=0)
    for i in range(3):
        part = sp.csr_matrix(X[100 * i : 100 * (i + 1)])
        ours.partial_fit(part, sample_weight=w[100 * i : 100 * (i + 1)])
        ref.partial_fit(part, sample_weight=w[100 * i : 100 * (i + 1)])
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, atol=1e-12)
    assert ours.n_steps_ == ref.n_steps_ == 3
    with pytest.raises(ValueError, match="expecting 12 features"):
        ours.partial_fit(sp.csr_matrix(X[:, :5]))


def test_minibatch_sparse_integer_input() -> None:
    X = np.round(_sparse_blobs()).astype(np.int64)
    ours = MiniBatchKMeans(4, batch_size=50, random_state=0).fit(sp.csr_matrix(X))
    dense = MiniBatchKMeans(4, batch_size=50, random_state=0).fit(X.astype(float))
    assert ours.cluster_centers_.dtype == np.float64
    np.testing.assert_array_equal(ours.labels_, dense.labels_)


# -- kmeans_plusplus and the sparse assignment -------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kmeans_plusplus_sparse(fmt, dtype) -> None:
    X = _sparse_blobs().astype(dtype)
    Xs = FORMATS[fmt](X)
    snap = _snapshot(Xs)
    w = np.random.default_rng(1).uniform(0.5, 2.0, X.shape[0])
    centers, idx = kmeans_plusplus(Xs, 5, sample_weight=w, random_state=3)
    _, dense_idx = kmeans_plusplus(X, 5, sample_weight=w, random_state=3)
    _, ref_idx = skc.kmeans_plusplus(Xs, 5, sample_weight=w, random_state=3)
    _assert_unchanged(Xs, snap)
    assert isinstance(centers, np.ndarray)
    assert centers.dtype == dtype
    np.testing.assert_array_equal(idx, dense_idx)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(centers, X[idx])
    with pytest.raises(ValueError, match="length of x_squared_norms"):
        kmeans_plusplus(Xs, 3, x_squared_norms=np.ones(5))
    with pytest.raises(ValueError, match="n_samples=300 should be >= n_clusters"):
        kmeans_plusplus(Xs, 301)


def test_sparse_predict_ties_go_to_the_lower_centre() -> None:
    # Far from the origin the expansion ‖x‖² − 2x·c + ‖c‖² rounds the two
    # equal distances differently; the exact re-check breaks the tie by index.
    base = 3.0e4
    C = np.array([[base, base + 1.0], [base, base - 1.0], [base + 5.0, base]])
    X = np.array([[base, base], [base + 5.0, base + 0.5]])
    km = KMeans(3, init=C, n_init=1, max_iter=1).fit(np.vstack([C, X]))
    km.cluster_centers_ = C
    labels = km.predict(sp.csr_matrix(X))
    np.testing.assert_array_equal(labels, km.predict(X))
    assert labels[0] == 0
