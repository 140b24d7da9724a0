"""Exact Euclidean and cosine k-NN of scipy CSR data by sparse products.

Both searches screen with the products ``q·z`` of every query with every
fitted row (:class:`SparseGram`: the zeros skipped) and re-rank the rows
that the screen's rounding bound cannot exclude by their exact value:

- Euclidean: ``Σ (z − q)²`` summed exactly as the dense search sums it
  (numpy's pairwise summation over the ``d`` features, zeros included),
  read off the stored values alone
  (:class:`xplearn.metrics._sparse.PairwiseSum`), so the sparse and dense
  paths give the same neighbours and bit-for-bit the same distances;
- cosine: ``1 − Σ q̂ᵢ ẑᵢ`` over the shared features, added left to right in
  column order, of rows divided by their norms (a left-to-right sum of the
  stored squares): what scikit-learn's sparse cosine computes (its product
  kernel adds in that order), ties to the lower index.

The products are split by column (:class:`SparseGram`): the features that
most rows hold (the common words of a TF-IDF matrix) are a dense block
multiplied by BLAS, the rest a sparse product, which then skips the pairs
whose only shared features are common ones; the screen's bound holds for
any order of summation.  scipy's matrices live on the host: this is numpy.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from xplearn._primitives import working_memory_bytes
from xplearn.metrics._sparse import (
    pairwise_sum_model,
    row_norms,
    row_scaled,
    sequential_row_sums,
    sparse_dot_dense,
)

# A feature becomes a dense column of the screen when more than this
# fraction of the fitted rows hold it: a BLAS product does a dense column
# for every pair at ~1/100 of the cost per pair of the sparse product's
# scattered updates, which a feature held by a fraction f of the rows costs
# for about f² of the pairs (measured on 2 Zen cores: 0.1 fastest of 0.02,
# 0.05, 0.1, 0.2, 0.4 on a TF-IDF matrix, 3.1x the all-sparse product).
_DENSE_FRACTION = 0.1
# Candidate pairs re-ranked at a time (bounds the term and node arrays).
_PAIRS_PER_CHUNK = 4096
# Products per query tile: 16 MiB of float64 a buffer, three buffers a
# thread (fresh arrays of 100 MB and more cost their page faults).
_TILE_ELEMENTS = 2**21


def drop_columns(M: Any, drop: Any) -> Any:
    """Copy CSR ``M`` without the stored values of the ``drop`` columns."""
    import numpy as np
    import scipy.sparse as sp

    keep = ~drop[M.indices]
    rows = np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))
    counts = np.bincount(rows[keep], minlength=M.shape[0])
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(M.indptr.dtype)
    return sp.csr_matrix(
        (M.data[keep], M.indices[keep], indptr), shape=M.shape, copy=False
    )


class SparseGram:
    """Products ``Q @ Zᵀ`` of CSR rows with the rows of a fixed CSR ``Z``.

    Built once per fitted matrix: the columns that more than
    ``_DENSE_FRACTION`` of ``Z``'s rows hold (as many as the working-memory
    budget allows, the most held first) are kept dense, ``m × f``, and
    multiplied by BLAS; the other columns are transposed once for the sparse
    product.  ``Z``: float64 CSR, canonical.
    """

    def __init__(self, Z: Any) -> None:
        import numpy as np

        m, d = Z.shape
        held = np.bincount(Z.indices, minlength=d)
        order = np.argsort(-held, kind="stable")
        f = int(np.count_nonzero(held > _DENSE_FRACTION * m))
        f = min(f, working_memory_bytes(np, None) // (4 * 8 * max(1, m)))
        self.dense_cols = np.sort(order[:f])
        self.is_dense = np.zeros(d, dtype=bool)
        self.is_dense[self.dense_cols] = True
        self.Zd = np.ascontiguousarray(Z[:, self.dense_cols].toarray()) if f else None
        self.ZrT = drop_columns(Z, self.is_dense).T.tocsr()
        self.shape = Z.shape

    def products(self, Q: Any, out: Any, tmp: Any) -> Any:
        """``Q @ Zᵀ`` into ``out`` (``Q``: float64 CSR; ``tmp``: scratch alike)."""
        import numpy as np

        sparse_dot_dense(drop_columns(Q, self.is_dense), self.ZrT, out)
        if self.Zd is not None:
            out += np.matmul(Q[:, self.dense_cols].toarray(), self.Zd.T, out=tmp)
        return out


class FittedProducts:
    """What the sparse-product searches keep of CSR fit data ``Y``.

    ``metric``: ``"euclidean"`` (and ``"sqeuclidean"``) or ``"cosine"``.
    The screen's :class:`SparseGram` is of the float64 rows (Euclidean) or
    of the rows divided by their norms (cosine); the exact re-ranking reads
    ``Y`` itself.
    """

    def __init__(self, Y: Any, metric: str) -> None:
        import numpy as np

        self.metric = metric
        self.dtype = Y.dtype
        self.Y64 = Y.astype(np.float64, copy=False)
        if metric == "cosine":
            self.norms = row_norms(self.Y64)
            self.gram = SparseGram(row_scaled(self.Y64, self.norms))
            self.sq_norms = None
        else:
            self.norms = None
            self.gram = SparseGram(self.Y64)
            self.sq_norms = sequential_row_sums(self.Y64.multiply(self.Y64).tocsr())


def products_search(
    X: Any, fitted: FittedProducts, k: int, *, squared: bool, xp: ModuleType
) -> tuple[Any, Any]:
    """Exact k-NN of the rows of ``X`` among the fitted CSR rows (module notes).

    Per tile of queries the products with every fitted row are one
    :meth:`SparseGram.products`; every row whose screened value is within
    the rounding bounds of the ``k``-th smallest is a candidate, so no row
    that could be among the ``k`` nearest is left out; the candidates' exact
    values are then computed and the ``k`` smallest kept, ties to the lower
    index.  ``X``: CSR or dense numpy; distances in the fitted dtype.

    Tiles of about ``_TILE_ELEMENTS`` products run on as many threads as
    BLAS may use (:func:`~xplearn.neighbors._search.on_host_threads`), each
    reusing its buffers: a fresh 100 MB array costs its page faults, and
    the selection and the BLAS product release the GIL.
    """
    import numpy as np
    import scipy.sparse as sp

    from xplearn._sparse import is_scipy_sparse

    from ._search import host_workers, on_host_threads

    dtype = fitted.dtype
    n = X.shape[0]
    m = fitted.Y64.shape[0]
    Xs = (X if is_scipy_sparse(X) else sp.csr_matrix(X)).astype(np.float64)
    if fitted.metric == "cosine":
        Xs = row_scaled(Xs, row_norms(Xs))
    workers = host_workers(np, n)
    budget = working_memory_bytes(xp, None) // (3 * 8 * m * workers)
    rows = max(1, min(n, _TILE_ELEMENTS // m, budget))
    starts = range(0, n, rows)
    dist = np.empty((n, k), dtype=np.float64)
    ind = np.empty((n, k), dtype=np.int64)

    def share(lo: int, hi: int) -> None:
        bufs = np.empty((3, min(rows, n), m))
        for a in starts[lo:hi]:
            b = min(a + rows, n)
            dist[a:b], ind[a:b] = _tile(Xs[a:b], fitted, k, bufs[:, : b - a])

    on_host_threads(share, len(starts), workers)
    if not (squared or fitted.metric == "cosine"):
        dist = np.sqrt(dist)
    return xp.asarray(dist.astype(dtype, copy=False)), xp.asarray(ind)


def _tile(Q: Any, fitted: FittedProducts, k: int, bufs: Any) -> tuple[Any, Any]:
    """Find the ``k`` nearest of a tile of float64 CSR queries: (dist, ind)."""
    import numpy as np

    from ._search import rounding_bound

    d = Q.shape[1]
    slack = rounding_bound(np, np.float64, d)
    A = fitted.gram.products(Q, bufs[0], bufs[1])
    work = bufs[2]
    if fitted.metric == "cosine":
        # 1 − s and its clip are within ``delta`` of the exact clipped
        # distance; a row can beat or tie the k-th only within 2·delta.
        np.subtract(1.0, A, out=A)
        np.clip(A, 0.0, 2.0, out=A)
        np.copyto(work, A)
        work.partition(k - 1, axis=1)
        thr = work[:, k - 1] + 2.0 * (slack + 4.0 * float(np.finfo(np.float64).eps))
    else:
        assert fitted.sq_norms is not None
        gamma = rounding_bound(np, fitted.dtype, d)
        qq = sequential_row_sums(Q.multiply(Q).tocsr())
        A *= -2.0
        A += qq[:, None]
        A += fitted.sq_norms[None, :]
        np.copyto(work, A)
        work.partition(k - 1, axis=1)
        kth = work[:, k - 1]
        bound = slack * (qq + float(fitted.sq_norms.max()))
        thr = (np.maximum(kth, 0.0) + bound) * (1.0 + 3.0 * gamma) + bound
    # The candidates' mask reuses the partition's buffer.
    mask = work.view(bool)[:, : A.shape[1]]
    r, c = np.nonzero(np.greater_equal(thr[:, None], A, out=mask))
    exact = np.empty(r.size, dtype=np.float64)
    for i in range(0, r.size, _PAIRS_PER_CHUNK):
        j = min(i + _PAIRS_PER_CHUNK, r.size)
        exact[i:j] = _exact_values(Q[r[i:j]], c[i:j], fitted)
    order = np.lexsort((c, exact, r))
    r, c, exact = r[order], c[order], exact[order]
    pos = np.searchsorted(r, np.arange(Q.shape[0]))[:, None] + np.arange(k)[None, :]
    return exact[pos], c[pos]


def _exact_values(Qr: Any, c: Any, fitted: FittedProducts) -> Any:
    """Exact distances of the pairs (row ``i`` of ``Qr``, fitted row ``c[i]``).

    Cosine: ``1 − Σ q̂ᵢ ẑᵢ`` over the shared features left to right,
    clipped to [0, 2].  Euclidean: the squared distance summed as numpy
    sums the dense difference row (:class:`xplearn.metrics._sparse.PairwiseSum`).
    """
    import numpy as np

    if fitted.metric == "cosine":
        assert fitted.norms is not None
        Yr = row_scaled(fitted.Y64[c], fitted.norms[c])
        s = sequential_row_sums(Qr.multiply(Yr).tocsr())
        return np.clip(1.0 - s, 0.0, 2.0)
    D = (fitted.Y64[c] - Qr).tocsr()
    D.sort_indices()
    model = pairwise_sum_model(D.shape[1])
    if model is None:  # a numpy that sums otherwise: sum the dense rows
        out = np.empty(D.shape[0])
        step = max(1, 2**22 // max(1, D.shape[1]))
        for i in range(0, D.shape[0], step):
            diff = D[i : i + step].toarray()
            out[i : i + step] = (diff * diff).sum(axis=1)
        return out
    pair = np.repeat(np.arange(D.shape[0]), np.diff(D.indptr))
    return model.sums(pair, D.indices, D.data * D.data, D.shape[0])
