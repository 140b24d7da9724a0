"""Pairwise distances with a sparse side (scipy CSR/CSC, torch sparse on the CPU).

scikit-learn's ``pairwise_distances`` takes sparse data for euclidean,
sqeuclidean, cosine and manhattan; so does xplearn, on the host (scipy's
matrices live there), without densifying a row:

- euclidean, sqeuclidean and manhattan are summed pair by pair over the
  features either row stores, as numpy sums the dense difference row
  (:class:`xplearn.neighbors._sparse_products.PairwiseSum`): the dense
  path's exact sums, bit for bit (the dense Euclidean kernel takes the
  GEMM expansion where its rounding bound allows; these are the sums it
  falls back to).  The cost grows with the stored values of each pair;
  ``n_features`` does not enter it;
- cosine is ``1 − q̂·ẑ`` by a sparse product of the rows divided by their
  norms, the shared features added in column order: scikit-learn's sparse
  cosine bit for bit.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

# Stored differences summed at a time (terms of the pairs of a tile).
_TERMS_PER_CHUNK = 2**22
_SPARSE_PAIRWISE = ("euclidean", "sqeuclidean", "cosine", "manhattan")


def sparse_dot_dense(A: Any, B: Any, out: Any) -> None:
    """Write ``A @ B`` of two CSR matrices of one float dtype into the dense ``out``.

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


def row_scaled(M: Any, scale: Any) -> Any:
    """Copy CSR ``M`` with each row's values divided by ``scale[row]``."""
    import numpy as np

    out = M.copy()
    out.data = M.data / np.repeat(scale, np.diff(M.indptr))
    return out


def row_norms(M: Any) -> Any:
    """Row norms, the stored squares added left to right; 1 for zero rows."""
    import numpy as np

    norms = np.sqrt(sequential_row_sums(M.multiply(M).tocsr()))
    return np.where(norms == 0.0, 1.0, norms)


def normalized_rows(M: Any) -> Any:
    """Copy CSR ``M`` with its rows divided by :func:`row_norms` (zero rows kept)."""
    return row_scaled(M, row_norms(M))


def is_sparse_input(X: Any) -> bool:
    """Whether ``X`` is scipy sparse or a torch sparse tensor."""
    from xplearn._sparse import is_scipy_sparse, is_torch_sparse

    return is_scipy_sparse(X) or is_torch_sparse(X)


def sparse_pairwise_distances(X: Any, Y: Any, metric: str, kwds: dict[str, Any]) -> Any:
    """:func:`~xplearn.metrics.pairwise_distances` where ``X`` or ``Y`` is sparse.

    A dense side is read as numpy.  The answer is numpy, or a CPU torch
    tensor where ``X`` is a torch tensor; float32 where both sides are
    float32, else float64.
    """
    import numpy as np
    import scipy.sparse as sp

    from xplearn._convert import to_numpy
    from xplearn._sparse import (
        check_sparse,
        is_torch_sparse,
        torch_from_host,
        torch_sparse_to_scipy,
    )

    from ._pairwise import check_metric

    name = None
    if isinstance(metric, str) and not set(kwds) - {"p"}:
        try:
            name, _ = check_metric(metric, kwds.get("p"))
        except ValueError:
            name = None
    if name not in _SPARSE_PAIRWISE:
        msg = (
            f"Metric {metric!r} does not take sparse input: sparse data takes "
            "'euclidean' ('l2'), 'sqeuclidean', 'cosine', 'manhattan' "
            "('cityblock', 'l1') or 'minkowski' with p=1 or 2; for another, "
            "pass dense data (X.toarray())."
        )
        raise TypeError(msg)
    torch_dtype = X.dtype if is_torch_sparse(X) else None
    if torch_dtype is None and type(X).__module__.startswith("torch"):
        torch_dtype = X.dtype

    def host(Z: Any, label: str) -> Any:
        if is_torch_sparse(Z):
            Z = torch_sparse_to_scipy(Z, label)
        if not sp.issparse(Z):
            Z = sp.csr_matrix(np.asarray(to_numpy(Z)))
        return check_sparse(Z)

    Xs = host(X, "X")
    Ys = Xs if Y is None else host(Y, "Y")
    if Xs.shape[1] != Ys.shape[1]:
        msg = (
            f"Y has {Ys.shape[1]} features, but X has {Xs.shape[1]} features "
            "(the same number is required)."
        )
        raise ValueError(msg)
    dtype = np.float32 if Xs.dtype == Ys.dtype == np.float32 else np.float64
    Xs, Ys = Xs.astype(np.float64), Ys.astype(np.float64)
    if name == "cosine":
        D = _cosine(Xs, Ys)
        if Y is None:
            np.fill_diagonal(D, 0.0)
    else:
        D = _summed(Xs, Ys, name)
    D = D.astype(dtype, copy=False)
    return D if torch_dtype is None else torch_from_host(D, torch_dtype)


def _cosine(X: Any, Y: Any) -> Any:
    import numpy as np

    Xn, Yn = normalized_rows(X), normalized_rows(Y)
    D = np.empty((X.shape[0], Y.shape[0]))
    sparse_dot_dense(Xn, Yn.T.tocsr(), D)
    np.subtract(1.0, D, out=D)
    return np.clip(D, 0.0, 2.0, out=D)


def _summed(X: Any, Y: Any, name: str) -> Any:
    """Euclidean, sqeuclidean or manhattan of every pair, summed as numpy sums."""
    import numpy as np

    n, m = X.shape[0], Y.shape[0]
    model = pairwise_sum_model(X.shape[1])
    per_row = max(1, m * (int(X.getnnz(axis=1).max(initial=0)) + Y.nnz // max(1, m)))
    rows = max(1, _TERMS_PER_CHUNK // per_row)
    D = np.empty((n, m))
    cols = np.arange(m)
    for a in range(0, n, rows):
        b = min(a + rows, n)
        r = np.repeat(np.arange(a, b), m)
        c = np.tile(cols, b - a)
        diff = (Y[c] - X[r]).tocsr()
        diff.sort_indices()
        terms = np.abs(diff.data) if name == "manhattan" else diff.data * diff.data
        if model is None:  # a numpy that sums otherwise: the dense rows
            dense = diff.toarray()
            sums = (np.abs(dense) if name == "manhattan" else dense * dense).sum(1)
        else:
            pair = np.repeat(np.arange(diff.shape[0]), np.diff(diff.indptr))
            sums = model.sums(pair, diff.indices, terms, diff.shape[0])
        D[a:b] = sums.reshape(b - a, m)
    return np.sqrt(D, out=D) if name == "euclidean" else D
