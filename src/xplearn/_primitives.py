"""Operations the Array API standard lacks, in one place.

Each primitive has a body written against the standard only, and native fast
paths on top for the namespaces where it matters (numpy, torch, jax).
``tests/test_primitives.py`` checks that every fast path agrees with the
standard body.

* :func:`topk_smallest`: the ``k`` smallest entries of each row, sorted
  ascending, ties broken by the lower column index on every backend;
* :func:`sq_row_norms`: squared Euclidean norm of each row;
* :func:`working_memory_bytes` and :func:`tile_sizes`: how large an n×m block
  may be under the configured budget; :func:`is_accelerator`: whether tiles
  are sized by device memory rather than by the CPU's cache.
"""

from __future__ import annotations

import contextlib
import sys
from types import ModuleType
from typing import Any

from ._config import get_config
from ._namespace import namespace_name
from ._validation import index_dtype

_HOST_DEFAULT_MIB = 1024
# On a GPU the default budget is this fraction of the free device memory.
_GPU_FRACTION = 0.25


def is_accelerator(xp: ModuleType, device: Any) -> bool:
    """Whether ``device`` is an accelerator (GPU): tiles from memory, not cache.

    torch on any device but the CPU (CUDA, ROCm, MPS, XPU), cupy, and jax on
    a GPU or TPU.  On an accelerator a search is bound by kernel launches and
    host synchronisations, not by cache misses: few large tiles win there.
    """
    name = namespace_name(xp)
    if name == "torch":
        return getattr(device, "type", "cpu") != "cpu"
    if name == "cupy":
        return True
    if name == "jax":
        return getattr(device, "platform", "cpu") != "cpu"
    return False


def working_memory_bytes(xp: ModuleType, device: Any) -> int:
    """Budget in bytes for temporary blocks on ``device``."""
    mib = get_config()["working_memory"]
    if mib is not None:
        return int(mib * 2**20)
    name = namespace_name(xp)
    if name == "torch" and getattr(device, "type", "cpu") == "cuda":
        free, _ = sys.modules["torch"].cuda.mem_get_info(device)
        return int(free * _GPU_FRACTION)
    if name == "cupy":
        free, _ = sys.modules["cupy"].cuda.runtime.memGetInfo()
        return int(free * _GPU_FRACTION)
    return _HOST_DEFAULT_MIB * 2**20


def tile_sizes(
    n_rows: int, n_cols: int, bytes_per_element: int, budget: int
) -> tuple[int, int]:
    """Rows and columns of the n×m tiles that fit ``budget``.

    ``bytes_per_element`` counts every temporary a tile element needs (the
    distance, sort indices, masks).  Columns are split only when fewer than
    64 rows of all columns would fit.
    """
    elements = max(1, budget // max(1, bytes_per_element))
    cols = n_cols if n_cols * 64 <= elements else max(1, elements // 64)
    rows = max(1, min(n_rows, elements // cols))
    return rows, cols


def sqrt_rounded(x: Any, xp: ModuleType) -> Any:
    """Square roots, correctly rounded (IEEE 754's ``sqrt``) on every backend.

    torch's CPU kernel is not: on 10⁶ float32 values 17% of its roots were
    a unit in the last place off numpy's (and 1.4% in float64), so the same
    exact squared distances came back as different Euclidean distances on
    numpy and torch.  There, float32 (and narrower) roots are taken in
    float64 and rounded once (a root of a 24-bit number is never within
    2⁻⁴⁹ of a rounding midpoint, far beyond float64's error, so the result
    is the correctly rounded root), and float64 roots are numpy's, on a
    zero-copy view.  A tensor that requires grad keeps torch's own float64
    root (the graph stays intact).  Other backends' ``sqrt`` is IEEE's.
    """
    if namespace_name(xp) != "torch" or getattr(_dev(x), "type", "") != "cpu":
        return xp.sqrt(x)  # (the device's kernel, not the pretended one)
    torch = sys.modules["torch"]
    if x.dtype != torch.float64:
        return torch.sqrt(x.to(torch.float64)).to(x.dtype)
    if x.requires_grad:
        return torch.sqrt(x)
    import numpy as np

    return torch.from_numpy(np.sqrt(x.numpy()))


def sq_row_norms(X: Any, xp: ModuleType) -> Any:
    """Squared Euclidean norm of each row of a 2-D array."""
    if namespace_name(xp) == "numpy":
        import numpy as np

        return np.einsum("ij,ij->i", X, X)  # no n×d temporary
    return xp.sum(X * X, axis=1)


def take_rows(A: Any, idx: Any, xp: ModuleType) -> Any:
    """``A[i, idx[i, j]]`` for every i, j (``take_along_axis`` on axis 1)."""
    # take_along_axis is standard from 2024.12; array-api-strict set to an
    # older version has the attribute but raises when it is called.
    if (
        hasattr(xp, "take_along_axis")
        and getattr(xp, "__array_api_version__", "") >= "2024.12"
    ):
        return xp.take_along_axis(A, idx, axis=1)
    # Standard before 2024.12: gather from the flattened array.
    n, m = A.shape
    offsets = xp.reshape(xp.arange(n, dtype=idx.dtype, device=_dev(A)) * m, (n, 1))
    flat = xp.reshape(idx + offsets, (-1,))
    return xp.reshape(xp.take(xp.reshape(A, (-1,)), flat), idx.shape)


def _dev(x: Any) -> Any:
    from ._namespace import device_of

    return device_of(x)


def topk_smallest(D: Any, k: int, xp: ModuleType) -> tuple[Any, Any]:
    """Return the ``k`` smallest values of each row of ``D`` and their columns.

    Sorted ascending; equal values in order of their column index, so the
    lower index wins a tie on every backend.  Indices are int64.

    Parameters
    ----------
    D : array, shape (n, m)
        Real floating values.
    k : int
        ``1 <= k <= m``.
    xp : module
        ``D``'s namespace.
    """
    name = namespace_name(xp)
    m = D.shape[1]
    if k >= m:
        return topk_smallest_standard(D, k, xp)
    if name == "numpy":
        return _topk_numpy(D, k)
    if name == "torch":
        return _topk_torch(D, k)
    if name == "jax":
        import jax

        # lax.top_k returns equal values lower-index first (documented).
        neg, idx = jax.lax.top_k(-D, k)
        return -neg, xp.astype(idx, index_dtype(xp, _dev(D)))
    if name == "cupy" and (view := _torch_view(D)) is not None:
        return _from_torch_view(_topk_torch(view, k))
    return topk_smallest_standard(D, k, xp)


def _torch_view(a: Any) -> Any:
    """Return a zero-copy torch view of a cupy array (DLPack), or ``None``.

    cupy has no top-k: its ``argpartition`` sorts each row in full, which
    made a cupy search 2.4–2.9× slower than the same search in torch on an
    H100 (benchmarks/results/gpu.md).  Where torch with CUDA is installed the
    selections run on a view of the same device memory; without it, cupy
    sorts.
    """
    torch = _cuda_torch()
    if torch is None:
        return None
    try:
        return torch.from_dlpack(a)
    except (RuntimeError, TypeError, BufferError):  # pragma: no cover
        return None


def _from_torch_view(result: tuple[Any, Any]) -> tuple[Any, Any]:
    cupy = sys.modules["cupy"]
    return cupy.from_dlpack(result[0]), cupy.from_dlpack(result[1])


_CUDA_TORCH: list[Any] = []


def _cuda_torch() -> Any:
    """torch, if it is installed with CUDA (imported once, then cached)."""
    if not _CUDA_TORCH:
        found = None
        try:
            import torch

            if torch.cuda.is_available():
                found = torch
        except ImportError:
            pass
        _CUDA_TORCH.append(found)
    return _CUDA_TORCH[0]


def topk_smallest_standard(D: Any, k: int, xp: ModuleType) -> tuple[Any, Any]:
    """Standard-only body of :func:`topk_smallest`: a stable full argsort."""
    idx = xp.argsort(D, axis=1, stable=True)[:, :k]
    idx = xp.astype(idx, index_dtype(xp, _dev(D)))
    return take_rows(D, idx, xp), idx


def _topk_numpy(D: Any, k: int) -> tuple[Any, Any]:
    import numpy as np

    part = np.argpartition(D, k - 1, axis=1)[:, :k]
    part.sort(axis=1)  # index order, so the stable sort below breaks ties by index
    vals = np.take_along_axis(D, part, axis=1)
    order = np.argsort(vals, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1).astype(np.int64, copy=False)
    vals = np.take_along_axis(vals, order, axis=1)
    # argpartition picks an arbitrary one of several values equal to the k-th:
    # redo the rows where an unselected column ties with the k-th value.
    tied = np.count_nonzero(vals[:, -1:] >= D, axis=1) > k
    if tied.any():
        rows = np.flatnonzero(tied)
        idx[rows] = np.argsort(D[rows], axis=1, kind="stable")[:, :k]
        vals[rows] = np.take_along_axis(D[rows], idx[rows], axis=1)
    return vals, idx


def _topk_torch(D: Any, k: int) -> tuple[Any, Any]:
    torch = sys.modules["torch"]
    vals, idx = torch.topk(D, k, dim=1, largest=False, sorted=True)
    # torch.topk orders equal values arbitrarily: sort by (value, index).
    idx, perm = torch.sort(idx, dim=1)
    vals = torch.gather(vals, 1, perm)
    vals, order = torch.sort(vals, dim=1, stable=True)
    idx = torch.gather(idx, 1, order)
    tied = (vals[:, -1:] >= D).sum(dim=1) > k
    if bool(tied.any()):
        rows = torch.nonzero(tied).flatten()
        sub = torch.argsort(D[rows], dim=1, stable=True)[:, :k]
        idx[rows] = sub
        vals[rows] = torch.gather(D[rows], 1, sub)
    return vals, idx


def topk_candidates(D: Any, n: int, xp: ModuleType) -> tuple[Any, Any]:
    """Return the ``n`` smallest values of each row and their columns, unordered.

    Which of several equal values at the boundary is kept is unspecified: this
    is a filter for callers that re-rank exactly afterwards.  Cheaper than
    :func:`topk_smallest` (no sort, no tie pass).  numpy's are selected by
    torch where torch is already loaded (never imported for it).
    """
    m = D.shape[1]
    if n >= m:
        cols = xp.broadcast_to(
            xp.arange(m, dtype=index_dtype(xp, _dev(D)), device=_dev(D)), D.shape
        )
        return D, cols
    name = namespace_name(xp)
    if name == "numpy" and "torch" in sys.modules and _torch_can_view(D):
        # torch's top-k on a zero-copy view where torch is loaded: 3.9 ms
        # against 11.5 for numpy's argpartition on 500 x 2 000 (one thread
        # each; xplearn's host workers run torch on one thread).
        torch = sys.modules["torch"]
        vals, idx = torch.topk(
            torch.from_numpy(D), n, dim=1, largest=False, sorted=False
        )
        return vals.numpy(), idx.numpy()
    if name == "numpy":
        import numpy as np

        idx = np.argpartition(D, n - 1, axis=1)[:, :n]
        return np.take_along_axis(D, idx, axis=1), idx
    if name == "torch":
        vals, idx = sys.modules["torch"].topk(D, n, dim=1, largest=False, sorted=False)
        return vals, idx
    if name == "cupy" and (view := _torch_view(D)) is not None:
        torch = sys.modules["torch"]
        return _from_torch_view(torch.topk(view, n, dim=1, largest=False, sorted=False))
    return topk_smallest(D, n, xp)


def _torch_can_view(D: Any) -> bool:
    """Whether ``torch.from_numpy`` takes the numpy array ``D`` as it is."""
    return bool(
        D.dtype.kind == "f"
        and D.dtype.isnative
        and D.flags.writeable  # (torch warns on read-only arrays)
        and min(D.strides, default=0) >= 0
    )


def column_means(Y: Any, xp: ModuleType) -> Any:
    """Mean of each column of ``Y`` (2-D, at least one row).

    cupy reduces a C-ordered array along its first axis with one thread block
    per column: 23 ms for 1M × 64 on an H100, against 0.1 ms in torch; there
    a product with a row of ones does it (the mean only centres the data
    before a search, so its rounding does not matter).  numpy too: its
    reduction along the first axis adds one row at a time, 4.4 ms at
    200 000 × 16 and 9.9 at 200 000 × 64 (float32, Xeon), against 0.5 and
    1.8 for BLAS's product on two threads (about twice that on the one
    used here), which is also the closer to the float64 mean (its blocks
    accumulate apart: 5e-6 against 9e-6 relative there).
    """
    name = namespace_name(xp)
    if name not in {"cupy", "numpy"}:
        return xp.mean(Y, axis=0)
    m = Y.shape[0]
    ones = xp.ones((1, m), dtype=Y.dtype, device=_dev(Y))
    # numpy's on one BLAS thread: OpenBLAS's threads spin for a while after
    # a threaded call, on the cores the host pool's threads then need (a
    # KMeans fit at 200 000 x 32, k = 64 took 390 against 345 ms).
    from xplearn.neighbors._search import one_blas_thread

    with one_blas_thread() if name == "numpy" else contextlib.nullcontext():
        return (ones @ Y)[0, :] / m


def group_candidates(D: Any, n: int, group: int, xp: ModuleType) -> tuple[Any, Any]:
    """:func:`topk_candidates` for wide blocks, by way of group minima.

    The columns of ``D`` (a multiple of ``group`` wide) are cut into runs of
    ``group``; the ``n`` smallest values of a row all lie in the ``n`` groups
    with the smallest minima, so one min-reduction over the block and a top-n
    over ``n·group`` values replace a top-n over the whole row.  (Strided
    groups reduce faster but gather much slower: contiguous runs win.)
    """
    r, w = D.shape
    n_groups = w // group
    mins = xp.min(xp.reshape(D, (r, n_groups, group)), axis=2)
    _, gid = topk_candidates(mins, n, xp)
    ix = index_dtype(xp, _dev(D))
    gid = xp.astype(gid, ix)
    offsets = xp.reshape(xp.arange(r, dtype=ix, device=_dev(D)) * n_groups, (r, 1))
    rows = xp.take(
        xp.reshape(D, (r * n_groups, group)), xp.reshape(gid + offsets, (-1,)), axis=0
    )
    vals, pos = topk_candidates(xp.reshape(rows, (r, n * group)), n, xp)
    pos = xp.astype(pos, ix)
    return vals, take_rows(gid, pos // group, xp) * group + pos % group


def merge_candidates(
    best_vals: Any, best_idx: Any, vals: Any, idx: Any, n: int, xp: ModuleType
) -> tuple[Any, Any]:
    """Keep the ``n`` smallest of two candidate lists per row (no order)."""
    all_vals = xp.concat([best_vals, vals], axis=1)
    all_idx = xp.concat([best_idx, idx], axis=1)
    top, pos = topk_candidates(all_vals, n, xp)
    return top, take_rows(all_idx, xp.astype(pos, all_idx.dtype), xp)


def merge_topk(
    best_vals: Any, best_idx: Any, vals: Any, idx: Any, k: int, xp: ModuleType
) -> tuple[Any, Any]:
    """Merge two sorted candidate lists per row, keeping the ``k`` smallest.

    ``best_*`` must hold lower indices than ``vals``/``idx`` (an earlier tile),
    so position order is index order and stable selection keeps the
    lower-index tie-break.
    """
    all_vals = xp.concat([best_vals, vals], axis=1)
    all_idx = xp.concat([best_idx, idx], axis=1)
    top_vals, pos = topk_smallest(all_vals, min(k, all_vals.shape[1]), xp)
    return top_vals, take_rows(all_idx, pos, xp)


def segment_sums(
    X: Any, labels: Any, weights: Any, n_segments: int, xp: ModuleType
) -> tuple[Any, Any]:
    """Weighted sums of the rows of ``X`` per label, and the weight per label.

    ``weights=None`` means unit weights.  Returns ``(sums (n_segments, d),
    totals (n_segments,))`` with
    ``sums[j] = Σ_{labels[i] = j} weights[i]·X[i]``.  torch scatters with
    ``index_add_`` on accelerators and takes numpy's kernel on CPU views;
    numpy multiplies by the transposed one-hot matrix in
    scipy's sparse form (one scatter-add pass: 6 ms at 200 000 × 32 with 64
    segments here, against 49 ms for the dense one-hot product, 80 ms for a
    flattened ``bincount`` and 147 ms for sort + ``reduceat``); the standard
    body multiplies a weighted one-hot matrix by ``X`` in cache-sized chunks.
    """
    d = X.shape[1]
    dev = _dev(X)
    name = namespace_name(xp)
    if name == "numpy":
        if weights is None:
            weights = xp.ones((X.shape[0],), dtype=X.dtype)
        return _segment_sums_numpy(X, labels, weights, n_segments)
    if name == "torch" and not is_accelerator(xp, dev) and not X.requires_grad:
        # On the host the numpy kernel on zero-copy views: 1.6 ms at
        # 200 000 × 32 with 64 segments here, against 17 ms for index_add_
        # (PERF-NOTES); the sums are then numpy's to the last bit.
        torch = sys.modules["torch"]
        if weights is None:
            weights = torch.ones((X.shape[0],), dtype=X.dtype)
        sums, totals = _segment_sums_numpy(
            X.detach().numpy(),
            labels.numpy(),
            weights.detach().numpy(),
            n_segments,
        )
        return torch.from_numpy(sums), torch.from_numpy(totals)
    if name == "torch":
        torch = sys.modules["torch"]
        sums = torch.zeros((n_segments, d), dtype=X.dtype, device=dev)
        if weights is None:  # unit weights: no weighted copy of X
            sums.index_add_(0, labels, X)
            totals = torch.bincount(labels, minlength=n_segments).to(X.dtype)
            return sums, totals
        sums.index_add_(0, labels, X * weights[:, None])
        totals = torch.zeros((n_segments,), dtype=X.dtype, device=dev)
        totals.index_add_(0, labels, weights)
        return sums, totals
    if weights is None:
        weights = xp.ones((X.shape[0],), dtype=X.dtype, device=dev)
    if name == "cupy":
        # Atomic adds, as torch's index_add_: the one-hot products of the
        # standard body took 190 ms an iteration at 1M × 64, k=256 on an H100.
        import cupyx

        sums = xp.zeros((n_segments, d), dtype=X.dtype, device=dev)
        cupyx.scatter_add(sums, labels, X * weights[:, None])
        totals = xp.zeros((n_segments,), dtype=X.dtype, device=dev)
        cupyx.scatter_add(totals, labels, weights)
        return sums, totals
    if name == "jax" and is_accelerator(xp, dev):
        # A scatter-add on a GPU (on a CPU, XLA's scatter is slower than the
        # one-hot products of the standard body).
        import jax

        sums = jax.ops.segment_sum(X * weights[:, None], labels, n_segments)
        return sums, jax.ops.segment_sum(weights, labels, n_segments)
    return segment_sums_standard(X, labels, weights, n_segments, xp)


def segment_weights(labels: Any, weights: Any, n_segments: int, xp: ModuleType) -> Any:
    """Sum the weights per label: the ``totals`` of :func:`segment_sums` alone."""
    if namespace_name(xp) == "numpy":
        import numpy as np

        totals = np.bincount(labels, weights=weights, minlength=n_segments)
        return totals.astype(weights.dtype, copy=False)
    column = xp.reshape(weights, (-1, 1))
    return segment_sums(column, labels, xp.ones_like(weights), n_segments, xp)[0][:, 0]


def _segment_sums_numpy(
    X: Any, labels: Any, weights: Any, n_segments: int
) -> tuple[Any, Any]:
    """Compute :func:`segment_sums` for numpy: a sparse one-hot matrix product."""
    import numpy as np
    from scipy import sparse

    n = X.shape[0]
    # scipy does not check the column indices of a CSR it is handed, and a
    # label out of range writes out of bounds (a heap corruption, not an
    # exception): check them, two cheap reductions.
    if n and (int(labels.min()) < 0 or int(labels.max()) >= n_segments):
        msg = (
            f"labels must lie in [0, {n_segments}); got "
            f"[{int(labels.min())}, {int(labels.max())}]."
        )
        raise IndexError(msg)
    onehot = sparse.csr_array(
        (weights, labels, np.arange(n + 1)), shape=(n, n_segments)
    )
    sums = np.asarray(onehot.T @ X, dtype=X.dtype)
    totals = np.bincount(labels, weights=weights, minlength=n_segments)
    return sums, totals.astype(X.dtype, copy=False)


def segment_sums_standard(
    X: Any, labels: Any, weights: Any, n_segments: int, xp: ModuleType
) -> tuple[Any, Any]:
    """Standard-only body of :func:`segment_sums`: one-hot products in chunks."""
    n, d = X.shape
    dev = _dev(X)
    ids = xp.arange(n_segments, dtype=labels.dtype, device=dev)
    itemsize = int(xp.finfo(X.dtype).bits) // 8
    # Cache-sized one-hot blocks (~2**18 entries), never above the budget.
    budget_rows = working_memory_bytes(xp, dev) // max(1, n_segments * itemsize * 2)
    step = max(1, min(n, budget_rows))
    if not is_accelerator(xp, dev):
        step = max(1, min(step, 2**18 // max(1, n_segments)))
    sums = xp.zeros((n_segments, d), dtype=X.dtype, device=dev)
    totals = xp.zeros((n_segments,), dtype=X.dtype, device=dev)
    for i in range(0, n, step):
        j = min(i + step, n)
        onehot = (
            xp.astype(labels[i:j, None] == ids[None, :], X.dtype) * weights[i:j, None]
        )
        sums = sums + onehot.T @ X[i:j, :]
        totals = totals + xp.sum(onehot, axis=0)
    return sums, totals
