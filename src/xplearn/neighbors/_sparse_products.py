"""Exact Euclidean and cosine k-NN of scipy CSR data by sparse products.

Both searches screen with the products ``q·z`` of every query with every
fitted row (:class:`SparseGram`: the zeros skipped) and re-rank the rows
that the screen's rounding bound cannot exclude by their exact value:

- Euclidean: ``Σ (z − q)²`` summed exactly as the dense search sums it
  (numpy's pairwise summation over the ``d`` features, zeros included),
  read off the stored values alone (:class:`PairwiseSum`), so the sparse
  and dense paths give the same neighbours and bit-for-bit the same
  distances;
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

import itertools
import threading
from types import ModuleType
from typing import Any

from xplearn._primitives import working_memory_bytes

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


def sparse_dot_dense(A: Any, B: Any, out: Any) -> None:
    """Write ``A @ B`` of two float64 CSR matrices into the dense array ``out``.

    scikit-learn's one-pass kernel (``sparse_matmul_to_dense``, from 1.7)
    where it is there, else scipy's product, densified.  Both add, for each
    entry, the products in the column order of ``A``'s row.
    """
    try:
        from sklearn.utils.sparsefuncs import sparse_matmul_to_dense
    except ImportError:  # scikit-learn < 1.7
        out[...] = (A @ B).toarray()
        return
    if A.nnz == 0 or B.nnz == 0:
        out[...] = 0.0
        return
    sparse_matmul_to_dense(A, B, out=out)


def sequential_row_sums(M: Any) -> Any:
    """Sum of each row's stored values, added left to right (scipy's matvec)."""
    import numpy as np

    return np.asarray(M @ np.ones(M.shape[1], dtype=M.dtype))


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


class PairwiseSum:
    """numpy's pairwise sum of a length-``d`` row, from its nonzero terms alone.

    ``np.sum(a)`` over a contiguous row of ``n`` values splits it in two
    (the first half cut to a multiple of 8) until a part holds at most 128
    values; a part of 8 to 128 values is added in 8 interleaved
    accumulators (``r[i % 8] += a[i]``) combined as
    ``((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))``, its last
    ``n % 8`` values then added one by one; a part under 8 values is added
    one by one.  Adding 0 rounds nothing, so the sum of a row that is zero
    but for a few terms is that tree evaluated on those terms alone.  The
    dense search re-ranks by such sums (``Σ (y − x)²`` over ``d``); summing
    the stored terms alike gives its distances bit for bit.
    :meth:`agrees_with_numpy` checks the model against the installed numpy.
    """

    def __init__(self, d: int) -> None:
        import numpy as np

        self.d = d
        leaf_of = np.empty(d, dtype=np.int64)
        lane_of = np.empty(d, dtype=np.int64)
        leaves: list[int] = []  # node of each leaf
        ops: list[tuple[int, int, int]] = []  # (node, left, right)
        count = [0]

        def build(lo: int, n: int) -> int:
            node = count[0]
            count[0] += 1
            if n <= 128:
                leaf_of[lo : lo + n] = len(leaves)
                leaves.append(node)
                whole = n - n % 8 if n >= 8 else 0
                lane_of[lo : lo + n] = 8  # one by one after the lanes
                lane_of[lo : lo + whole] = np.arange(whole) % 8
                return node
            half = n // 2
            half -= half % 8
            left = build(lo, half)
            right = build(lo + half, n - half)
            ops.append((node, left, right))
            return node

        build(0, max(d, 1))
        self.leaf_of, self.lane_of = leaf_of, lane_of
        self.leaf_node = np.asarray(leaves, dtype=np.int64)
        self.ops = ops  # children before parents (post-order)
        self.n_nodes = count[0]

    def sums(self, pair: Any, col: Any, term: Any, n_pairs: int) -> Any:
        """Sum each pair's row pairwise, given its nonzero terms.

        ``pair``, ``col``, ``term``: the terms, in increasing ``col`` within
        each pair (the order of a canonical CSR row).
        """
        import numpy as np

        n_leaves = self.leaf_node.size
        leaf = self.leaf_of[col]
        lane = self.lane_of[col]
        key = pair * n_leaves + leaf
        parts, where = np.unique(key, return_inverse=True)
        lanes = np.zeros((parts.size, 9))
        in_lane = lane < 8
        _sequential_add(
            lanes.reshape(-1),
            where[in_lane] * 9 + lane[in_lane],
            term[in_lane],
        )
        r = lanes
        res = ((r[:, 0] + r[:, 1]) + (r[:, 2] + r[:, 3])) + (
            (r[:, 4] + r[:, 5]) + (r[:, 6] + r[:, 7])
        )
        _sequential_add(res, where[~in_lane], term[~in_lane])
        if not self.ops:
            out = np.zeros(n_pairs)
            out[parts // n_leaves] = res
            return out
        nodes = np.zeros((self.n_nodes, n_pairs))
        nodes[self.leaf_node[parts % n_leaves], parts // n_leaves] = res
        for node, left, right in self.ops:
            np.add(nodes[left], nodes[right], out=nodes[node])
        return nodes[0]

    def agrees_with_numpy(self) -> bool:
        """Whether the model sums like the installed numpy (random rows, d)."""
        import numpy as np

        rng = np.random.default_rng(0)
        d = self.d
        rows = rng.random((4, d)) * 2.0 ** rng.integers(-30, 30, (4, d))
        rows[rng.random((4, d)) < 0.5] = 0.0
        want = np.sum(rows * rows, axis=1)
        pair, col = np.nonzero(rows)
        got = self.sums(pair, col, rows[pair, col] ** 2, 4)
        return bool(np.array_equal(got, want))


def _sequential_add(out: Any, group: Any, value: Any) -> None:
    """``out[g] += v`` for each term, in the given order within each group."""
    import numpy as np

    if group.size == 0:
        return
    order = np.argsort(group, kind="stable")
    g = group[order]
    v = value[order]
    rank = np.arange(g.size) - np.searchsorted(g, g, side="left")
    # Terms of equal rank belong to distinct groups: one vector add each.
    by_rank = np.argsort(rank, kind="stable")
    bounds = np.searchsorted(rank[by_rank], np.arange(int(rank.max()) + 2))
    for a, b in itertools.pairwise(bounds):
        sel = by_rank[a:b]
        out[g[sel]] += v[sel]


_SUMS: dict[int, PairwiseSum | None] = {}
_SUMS_LOCK = threading.Lock()


def pairwise_sum_model(d: int) -> PairwiseSum | None:
    """Return the checked :class:`PairwiseSum` of ``d`` (None: numpy differs)."""
    with _SUMS_LOCK:
        if d not in _SUMS:
            model = PairwiseSum(d)
            _SUMS[d] = model if model.agrees_with_numpy() else None
        return _SUMS[d]


def _row_scaled(M: Any, scale: Any) -> Any:
    """Copy CSR ``M`` with each row's values divided by ``scale[row]``."""
    import numpy as np

    out = M.copy()
    out.data = M.data / np.repeat(scale, np.diff(M.indptr))
    return out


def _norms(M: Any) -> Any:
    """Row norms, the stored squares added left to right; 1 for zero rows."""
    import numpy as np

    norms = np.sqrt(sequential_row_sums(M.multiply(M).tocsr()))
    return np.where(norms == 0.0, 1.0, norms)


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
            self.norms = _norms(self.Y64)
            self.gram = SparseGram(_row_scaled(self.Y64, self.norms))
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
        Xs = _row_scaled(Xs, _norms(Xs))
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
    sums the dense difference row (:class:`PairwiseSum`).
    """
    import numpy as np

    if fitted.metric == "cosine":
        assert fitted.norms is not None
        Yr = _row_scaled(fitted.Y64[c], fitted.norms[c])
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
