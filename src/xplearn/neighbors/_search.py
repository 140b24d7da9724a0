"""Exact k-nearest-neighbour search kernels, written once against ``xp``.

The search runs over tiles of queries × database rows; each tile's distances
go straight to a candidate selection and are merged with the running best, so
no n×m matrix larger than the working-memory budget is formed.

For the Euclidean family the tile values come from one GEMM of augmented
operands, ``[−2x, 1] · [y; ‖y‖²] = ‖y‖² − 2 x·y`` (``‖x‖²`` is constant per
query and left out of the ranking).  That expansion loses precision on near
ties, most of all in float32, so each query keeps a few more candidates than
asked for and they are re-ranked by their exact distance ``Σ (x − y)²``; rows
where a non-candidate could still tie or beat the k-th are redone exactly.
Indices then agree with a float64 reference, a point's distance to itself is
exactly 0, and distances are exact in the input dtype.

Callers validate first: these functions take compute arrays and ``xp``.
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
import threading
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any, NamedTuple

from xplearn._namespace import device_of, namespace_name
from xplearn._primitives import (
    column_means,
    group_candidates,
    is_accelerator,
    merge_candidates,
    merge_topk,
    sq_row_norms,
    sqrt_rounded,
    take_rows,
    tile_sizes,
    topk_candidates,
    topk_smallest,
    working_memory_bytes,
)
from xplearn._scaling import max_abs, scale_back, scale_exponent, times_pow2
from xplearn._validation import float_dtypes, index_dtype
from xplearn.metrics import EUCLIDEAN, distance_block, itemsize

from ._pruned import prune_applies, pruned_search
from ._screen import _MIN_WORK as _SCREEN_MIN_WORK
from ._screen import screen_applies, screened_search

# Extra candidates kept per query for the exact re-ranking (Euclidean family).
_REFINE_EXTRA = 8
# Of them, the best-screened k + _FIRST are re-ranked first (rerank_nearest).
_FIRST = 2
# Gathered candidate elements per re-ranking chunk on a CPU (1 MiB of float32:
# the L2 cache of one core).
_RERANK_ELEMENTS = 2**18
# Euclidean tiles: columns per tile (a multiple of the group size) and
# elements per tile (64 MiB of float32), tuned on a 2-core Zen 5 with
# benchmarks/run.py: wide tiles amortise the selection's per-call cost.
_GROUP = 256
_TILE_COLS = 131_072
_TILE_ELEMENTS = 2**24
# Accelerator tiles, as FAISS GPU sizes them (``chooseTileSize``): about
# 1 GiB, up to 262 144 database rows wide, so a search is a handful of GEMMs
# and selections, not thousands of small kernel launches.
_DEVICE_TILE_BYTES = 2**30
_DEVICE_TILE_COLS = 262_144
# Elements of the database operand a host thread builds at least
# (:func:`_database_rows`).
_BLOCK_SHARE = 2**20


def _exact_sq(Xq: Any, Y: Any, idx: Any, xp: ModuleType, dtype: Any = None) -> Any:
    """Exact squared distances from each query to its candidate rows of ``Y``.

    By differences, ``Σ (y − x)²``, computed in ``dtype`` (default: the
    input's).  On a CPU a chunk of queries at a time, so the gathered
    candidates stay in cache through the subtraction, the squares and the sum
    (one pass over all of them cost four trips to memory: 19 of the 48 ms of
    a 1 000 × 2 000 × 512 search); on an accelerator in one go.
    """
    n, c = idx.shape
    d = Y.shape[1]
    step = n
    if not is_accelerator(xp, device_of(Xq)):
        step = max(1, _RERANK_ELEMENTS // max(1, c * d))
        if namespace_name(xp) == "torch" and n > step and not _needs_grad(Xq, Y):
            return _exact_sq_torch_cpu(Xq, Y, idx, step, dtype)
    parts = []
    for i in range(0, n, step):
        j = min(i + step, n)
        flat = xp.reshape(idx[i:j, :], (-1,))
        cand = xp.reshape(xp.take(Y, flat, axis=0), (j - i, c, d))
        q = Xq[i:j, None, :]
        if dtype is not None and dtype != Y.dtype:
            cand, q = xp.astype(cand, dtype), xp.astype(q, dtype)
        parts.append(_sum_sq_diff(cand, q, xp))
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)


def _needs_grad(*arrays: Any) -> bool:
    """Whether a torch tensor among ``arrays`` records a graph (no ``out=``)."""
    return any(getattr(a, "requires_grad", False) for a in arrays)


def _exact_sq_torch_cpu(Xq: Any, Y: Any, idx: Any, step: int, dtype: Any) -> Any:
    """:func:`_exact_sq` for torch on a CPU: the chunks share their buffers.

    The same operations as the general loop (gather, cast, subtract, square,
    sum), so the same bits, written into buffers reused from chunk to chunk:
    fresh tensors for each chunk cost page faults (5.5 against 4.6 ms for
    1 000 queries x 12 candidates x 512 here, medians of 30).
    """
    import torch

    n, c = idx.shape
    d = Y.shape[1]
    wide = Y.dtype if dtype is None else dtype
    out = torch.empty((n, c), dtype=wide)
    gathered = torch.empty((step * c, d), dtype=Y.dtype)
    cand = gathered if wide == Y.dtype else torch.empty((step * c, d), dtype=wide)
    Xw = Xq.to(wide)
    for i in range(0, n, step):
        j = min(i + step, n)
        r = (j - i) * c
        torch.index_select(Y, 0, idx[i:j, :].reshape(-1), out=gathered[:r])
        if cand is not gathered:
            cand[:r].copy_(gathered[:r])
        block = cand[:r].view(j - i, c, d)
        block.sub_(Xw[i:j, None, :]).square_()
        torch.sum(block, dim=-1, out=out[i:j])
    return out


def _sum_sq_diff(cand: Any, q: Any, xp: ModuleType) -> Any:
    """``Σ (cand − q)²`` over the last axis; ``cand`` is a fresh gather, overwritten.

    numpy and torch work in place: every fresh temporary of a chunk costs
    page faults on a host whose memory is reclaimed between calls
    (PERF-NOTES), which cost more than the arithmetic.  A torch graph
    (``requires_grad``) gets the same operations out of place.
    """
    name = namespace_name(xp)
    if name == "torch":
        if _needs_grad(cand, q):
            diff = cand - q
            return (diff * diff).sum(dim=-1)
        cand.sub_(q)
        return cand.mul_(cand).sum(dim=-1)
    if name == "numpy":
        import numpy as np

        np.subtract(cand, q, out=cand)
        np.multiply(cand, cand, out=cand)
        return np.sum(cand, axis=-1)
    diff = cand - q
    return xp.sum(diff * diff, axis=-1)


def _sorted_k(exact: Any, idx: Any, k: int, xp: ModuleType) -> tuple[Any, Any]:
    pos = xp.argsort(exact, axis=1, stable=True)[:, :k]
    return take_rows(exact, pos, xp), take_rows(idx, pos, xp)


def rerank(Xq: Any, Y: Any, idx: Any, k: int, xp: ModuleType) -> tuple[Any, Any]:
    """Exact squared distances of the candidates, the ``k`` best, ties by index.

    ``idx`` holds distinct candidate columns per row.  A stable sort of a few
    candidates, in index order, breaks ties by the lower index with no
    data-dependent branch (no host synchronisation on an accelerator).

    The order is that of a float64 computation on the same values (where the
    device has float64): a float32 sum is off by a few units in the last
    place, which swaps two neighbours whose true distances are that close
    (one query in a thousand at 1M × 128 on an H100).  An accelerator sums
    every candidate in float64 (a small cost beside the GEMM, and no host
    read); a CPU sums in the input's precision and redoes in float64 only the
    rows whose k + 1 best are within the float32 sums' rounding of each other
    (float64 everywhere cost 12 of 25 ms at 1 000 × 2 000 × 512).

    The ``k`` distances returned are the float64 sums (the widest float the
    device has), on every device: a function of the query and the neighbour
    alone, so every route to the same neighbours (the float32 search, the
    bfloat16 screen with any centre, the exact redo of uncertified rows)
    returns the same bits.  (Float32 sums where float64 did not decide the
    order made the last bit depend on which candidates a screen had kept.)
    The searches pass them on in that float; :func:`search` rounds them to
    the input's dtype once, after the root for Euclidean distances.
    """
    idx = take_rows(idx, xp.argsort(idx, axis=1), xp)
    dev = device_of(Xq)
    wide = float_dtypes(xp, dev)[0]
    if Xq.dtype == wide:
        return _sorted_k(_exact_sq(Xq, Y, idx, xp), idx, k, xp)
    if is_accelerator(xp, dev) or idx.shape[1] <= 2 * k:
        # (On a CPU also where the candidates are few beside k: one float64
        # pass costs less than a float32 one and float64 again for the k.)
        return _sorted_k(_exact_sq(Xq, Y, idx, xp, wide), idx, k, xp)
    exact = _exact_sq(Xq, Y, idx, xp)
    vals, ids = _sorted_k(exact, idx, min(k + 1, idx.shape[1]), xp)
    # Σ of d rounded squares of rounded differences: relative error below
    # (d + 2)·u; two values closer than twice that may be in either order.
    u = float(xp.finfo(Xq.dtype).eps) / 2
    tol = 2.0 * (Y.shape[1] + 2) * u
    close = xp.any(vals[:, 1:] - vals[:, :-1] <= tol * vals[:, 1:], axis=1)
    ids = ids[:, :k]
    if bool(xp.any(close)):
        rows = xp.nonzero(close)[0]
        sub = xp.take(idx, rows, axis=0)
        _, w_ids = _sorted_k(
            _exact_sq(xp.take(Xq, rows, axis=0), Y, sub, xp, wide), sub, k, xp
        )
        ids = _replace_rows(ids, close, w_ids, xp)
    return _exact_sq(Xq, Y, ids, xp, wide), ids


def rerank_nearest(
    Xq: Any,
    Y: Any,
    screened: Any,
    idx: Any,
    k: int,
    first: int,
    certify: Any,
    xp: ModuleType,
) -> tuple[Any, Any, Any]:
    """:func:`rerank` the ``first`` best-screened candidates; all only where needed.

    ``screened`` holds the candidates' screened values (a lower one is
    nearer; ``-inf`` where a value's order is unknown), ``idx`` their
    columns, and ``certify(kth, tau, rows)`` is the caller's
    :func:`certified` for the query rows ``rows`` (None: all): whether
    every column with a screened value of at least ``tau`` is provably
    farther than the k-th exact distance ``kth``.

    Most queries' k nearest are among their ``first`` best-screened
    candidates, and the candidates after those are then treated as the
    columns left out: certified against the least of them, the exact
    distances of the rest are never computed (the float32 search with
    ``first = k + 2``: 35.6 against 39.5 ms at 1 000 x 2 000 x 512; the
    bfloat16 screen's bound is too wide for it to pay there).  Rows
    that this does not certify are re-ranked over all their candidates and
    certified against the largest kept value, as without the shortcut.
    Either way the answer is :func:`rerank`'s over all the candidates:
    certified rows have it, and the exact distances depend on the query
    and the neighbour alone.  Returns ``(distances, indices, certified)``.
    """
    c = idx.shape[1]
    tau = xp.max(screened, axis=1)
    if first >= c or is_accelerator(xp, device_of(Xq)):
        # (An accelerator would wait on the host for the test below.)
        vals, ids = rerank(Xq, Y, idx, k, xp)
        return vals, ids, certify(vals[:, -1], tau, None)
    pos = xp.argsort(screened, axis=1, stable=True)[:, : first + 1]
    vals, ids = rerank(Xq, Y, take_rows(idx, pos[:, :first], xp), k, xp)
    ok = certify(vals[:, -1], take_rows(screened, pos, xp)[:, first], None)
    if bool(xp.all(ok)):
        return vals, ids, ok
    rows = xp.nonzero(~ok)[0]
    wv, wi = rerank(xp.take(Xq, rows, axis=0), Y, xp.take(idx, rows, axis=0), k, xp)
    w_ok = certify(wv[:, -1], xp.take(tau, rows, axis=0), rows)
    again = ~ok
    return (
        _replace_rows(vals, again, wv, xp),
        _replace_rows(ids, again, wi, xp),
        _replace_rows(ok[:, None], again, w_ok[:, None], xp)[:, 0],
    )


def rounding_bound(xp: ModuleType, dtype: Any, n_features: int) -> float:
    """Relative rounding bound of the expansion (per unit of ‖x‖² + max ‖y‖²).

    A worst-case bound, not a typical one: a dot product of length ``d + 1``
    summed in any order is off by at most ``γ = (d + 1)·u`` times
    ``Σ |xᵢ yᵢ|`` (``u = eps / 2``), so ``‖y‖² − 2 x·y`` with ``‖y‖²`` itself
    rounded is off by at most ``(d + 1)·u·(‖x‖² + 3‖y‖²)``, below
    ``1.5·(d + 2)·eps·(‖x‖² + ‖y‖²)``.  A probabilistic ``√d`` bound is
    tighter on random data, and adversarial data (offsets, grids: every
    partial sum rounding the same way) breaks it.
    """
    eps = float(xp.finfo(dtype).eps)
    return float(1.5 * (n_features + 2) * eps)


def euclidean_tiles(
    n: int,
    m: int,
    n_cand: int,
    n_features: int,
    size: int,
    budget: int,
    accelerator: bool,
    elements: int = _TILE_ELEMENTS,
) -> tuple[int, int]:
    """Rows and columns of the query × database tiles of the Euclidean search.

    On a CPU about ``elements`` per tile (default ``_TILE_ELEMENTS``), as
    wide as ``_TILE_COLS``; on an accelerator about ``_DEVICE_TILE_BYTES``,
    as wide as ``_DEVICE_TILE_COLS``.  Never above the working-memory budget,
    which also pays for the re-ranking gather.
    """
    if accelerator:
        cols = min(m, _DEVICE_TILE_COLS)
        elements = max(1, min(budget, _DEVICE_TILE_BYTES) // size)
    else:
        cols = min(m, _TILE_COLS)
    if _GROUP <= cols < m:  # (the whole database: column_bounds cuts it)
        cols -= cols % _GROUP
    per_row = cols * size + n_cand * (n_features + 2) * size + 64
    rows = min(n, max(1, elements // cols), max(1, budget // per_row))
    return max(1, rows), cols


def column_bounds(m: int, cols: int, n_cand: int = 0) -> list[tuple[int, int]]:
    """Cut ``m`` columns into tiles of width ``cols``.

    A ragged end is cut to a multiple of the group size, and what is left
    (less than one group) is a tile of its own, where the whole-group part is
    wide enough for :func:`~xplearn._primitives.group_candidates` to take it
    (``4·group·n_cand`` columns); a narrower tile stays whole: one GEMM and
    one selection beat two (a 2 000-row database was cut in 1 792 + 208).
    """
    bounds, j = [], 0
    while j < m:
        w = min(cols, m - j)
        whole = w - w % _GROUP
        if w > _GROUP and w % _GROUP and whole >= 4 * _GROUP * n_cand:
            w = whole
        bounds.append((j, j + w))
        j += w
    return bounds


def _approx_block(Xa: Any, Ya: Any, xp: ModuleType, out: Any) -> Any:
    """``‖y‖² − 2 x·y`` for a tile as one GEMM.

    ``Xa = [−2·X, 1]`` and ``Ya = [Yᵀ; ‖y‖²]``: the norms ride in the GEMM's
    extra inner dimension, so no second pass over the tile adds them.  For
    torch on an accelerator ``Xa = X`` and ``Ya = (Yᵀ, ‖y‖²)``: ``addmm``
    adds the norms in the GEMM's epilogue, and nobody builds the augmented
    copies; its one extra rounding is within :func:`rounding_bound`.
    """
    name = namespace_name(xp)
    if isinstance(Ya, tuple):
        import torch

        YT, YY = Ya
        # Into a reused buffer: fresh n×m temporaries per tile cost page
        # faults that halve the GEMM rate (PERF-NOTES.md).
        return torch.addmm(YY[None, :], Xa, YT, alpha=-2.0, out=out)
    if out is not None and name == "torch":
        import torch

        return torch.mm(Xa, Ya, out=out)
    if out is not None and name == "numpy":
        import numpy as np

        return np.matmul(Xa, Ya, out=out)
    return Xa @ Ya


def _columns(Ya: Any, j0: int, j1: int) -> Any:
    """Columns ``j0:j1`` of the database operand of :func:`_approx_block`."""
    if isinstance(Ya, tuple):
        return Ya[0][:, j0:j1], Ya[1][j0:j1]
    return Ya[:, j0:j1]


def screen_candidates(
    Xa: Any,
    Ya: Any,
    n_cand: int,
    bounds: list[tuple[int, int]],
    buf: Any,
    xp: ModuleType,
    key: Any = None,
    group: int = _GROUP,
) -> tuple[Any, Any]:
    """Select the ``n_cand`` smallest screened values per row, and their columns.

    One GEMM ``Xa @ Ya[:, j0:j1]`` per column tile of ``bounds`` (into the
    reused ``buf`` where given), a group or plain candidate selection, and a
    merge with the tiles before (unordered).  Every column left out has a value at least
    the largest kept.  The float32 search and the bfloat16 screen share it;
    ``key(D)``, where given, is what is selected on (and returned) in place of
    each tile's values; ``group`` (a divisor of ``_GROUP``) is the group
    selection's group size.
    """
    r = Xa.shape[0]
    ix = index_dtype(xp, device_of(Xa))
    best: tuple[Any, Any] | None = None
    for j0, j1 in bounds:
        w = j1 - j0
        out = None if buf is None else _buffer_view(buf, r, w, xp)
        D = _approx_block(Xa, _columns(Ya, j0, j1), xp, out)
        if key is not None:
            D = key(D)
        n_c = min(n_cand, w)
        if w % group == 0 and w >= 4 * group * n_c:
            vals, idx = group_candidates(D, n_c, group, xp)
        else:
            vals, idx = topk_candidates(D, n_c, xp)
            idx = xp.astype(idx, ix)
        if j0:
            idx = idx + j0
        best = (
            (vals, idx)
            if best is None
            else merge_candidates(*best, vals, idx, n_cand, xp)
        )
    assert best is not None
    return best


def _buffer_view(buf: Any, r: int, w: int, xp: ModuleType) -> Any:
    """Return a C-contiguous (r, w) view at the start of a reused buffer."""
    return xp.reshape(xp.reshape(buf, (-1,))[: r * w], (r, w))


def _exact_rows(
    Xb: Any, Y: Any, k: int, xp: ModuleType, budget: int
) -> tuple[Any, Any]:
    """Exact k nearest (squared, widest float) for some rows, against all of ``Y``.

    By differences, a block of rows against a chunk of ``Y`` at a time (the
    ``rows × cols × d`` difference within the budget): a row at a time cost
    a framework call per row, minutes for ten thousand rows full of ties.
    """
    n, (m, d) = Xb.shape[0], Y.shape
    wide = float_dtypes(xp, device_of(Xb))[0]  # as _exact_sq, for the same order
    per_pair = max(1, d * 8 * 3)
    cols = min(m, max(1, budget // per_pair))
    rows = max(1, min(n, budget // (per_pair * cols)))
    out_v, out_i = [], []
    for i in range(0, n, rows):
        x = xp.astype(Xb[i : min(i + rows, n), None, :], wide)
        parts = []
        for j in range(0, m, cols):
            diff = xp.astype(Y[None, j : min(j + cols, m), :], wide) - x
            parts.append(xp.sum(diff * diff, axis=2))
        dist = parts[0] if len(parts) == 1 else xp.concat(parts, axis=1)
        v, ix = topk_smallest(dist, k, xp)
        out_v.append(v)
        out_i.append(ix)
    if len(out_v) == 1:
        return out_v[0], out_i[0]
    return xp.concat(out_v, axis=0), xp.concat(out_i, axis=0)


def _replace_rows(A: Any, rows_mask: Any, B: Any, xp: ModuleType) -> Any:
    """Replace the rows of ``A`` where ``rows_mask`` holds by ``B``'s, in order."""
    n = A.shape[0]
    ix = index_dtype(xp, device_of(A))
    pos = xp.cumulative_sum(xp.astype(rows_mask, ix)) - 1
    perm = xp.where(rows_mask, n + pos, xp.arange(n, dtype=ix, device=device_of(A)))
    return xp.take(xp.concat([A, B], axis=0), perm, axis=0)


class ScreenError(NamedTuple):
    """Coefficients of a screen's error bound (see :func:`certified`).

    ``|screened − σ| <= xy·‖x_c‖·max‖y_c‖ + yy·max‖y_c‖² + x2·‖x_c‖²
    + value·|screened| + floor``.
    """

    xy: Any = 0.0  # (a float, or one per query)
    yy: float = 0.0
    x2: float = 0.0
    value: float = 0.0
    floor: float = 0.0


def certified(
    kth: Any,
    tau: Any,
    xx: Any,
    yy_max: float,
    d: int,
    err: ScreenError,
    xp: ModuleType,
    *,
    local: bool = False,
) -> Any:
    """Per query: whether every non-candidate is provably farther than the k-th.

    The screens (the float32 expansion here, bfloat16 in ``_screen``) rank
    the rows of ``Y − c`` for a query ``x − c`` (``c`` the database mean, the
    differences rounded to the input dtype) by ``σ = ‖y_c‖² − 2 x_c·y_c``,
    computed with an error bounded by ``err``.  Every non-candidate has a
    screened value of at least ``tau``; ``xx`` is the computed ``‖x_c‖²``,
    ``yy_max`` the largest computed ``‖y_c‖²``, ``d`` the feature count;
    ``kth`` the k-th exact squared distance as computed from the differences
    of the data.

    Every non-candidate's true ``σ`` is then at least ``low = tau − error``
    (the bound grows with ``|screened|`` more slowly than the value does, so
    the least value gives the least bound), its distance to ``x`` at least
    ``sqrt(low + ‖x_c‖²) − η`` with ``η`` the centring's rounding, and the
    query is certified when that exceeds the k-th distance with the rounding
    of its computation: no non-candidate can come closer, or tie, even as
    computed.  The test runs in the widest float the device has.

    ``local=True`` adds a second, equally rigorous bound that does not use
    ``yy_max``: a row farther than the query's neighbours has a larger norm,
    ``‖y_c‖ <= ‖x_c‖ + D`` with ``D`` its distance, so the error terms in
    ``‖y_c‖`` grow with ``D`` itself, and ``D² >= low(D)`` is a quadratic
    inequality whose positive root bounds ``D`` from below.  Where the centre
    is near the query but far from much of the database (a pivot among
    clusters: the bfloat16 screen) this bound is far tighter.  The query is
    certified where either bound proves it.
    """
    from xplearn._validation import float_dtypes

    v = float(xp.finfo(kth.dtype).eps) / 2  # the input's unit roundoff
    wide = float_dtypes(xp, device_of(kth))[0]
    slop, eta_per_norm, near_factor = certificate_allowances(
        d, v, float(xp.finfo(wide).eps)
    )
    xx = xp.astype(xx, wide)
    tau = xp.astype(tau, wide)
    x_norm = xp.sqrt(xx * slop)
    y_norm = math.sqrt(yy_max * slop)
    error = (
        err.xy * x_norm * y_norm
        + err.yy * yy_max * slop
        + err.x2 * xx * slop
        + err.value * xp.abs(tau)
        + err.floor
    )
    low = tau - error + xx / slop
    # Back from the rounded centred vectors to the data's differences.
    eta = eta_per_norm * (x_norm + y_norm)
    far = xp.sqrt(xp.clip(low, min=0.0)) - eta
    if local:
        far = xp.maximum(far, _local_far(tau, xx, x_norm, slop, eta_per_norm, err, xp))
    near = xp.sqrt(xp.astype(kth, wide) * near_factor)
    return near < far


def _local_far(
    tau: Any,
    xx: Any,
    x_norm: Any,
    slop: float,
    eta_per_norm: float,
    err: ScreenError,
    xp: ModuleType,
) -> Any:
    """Least data distance of a non-candidate, with ``‖y_c‖ <= X + D`` (see certified).

    With ``X`` an upper bound of ``‖x_c‖`` and ``s >= tau`` a non-candidate's
    screened value, its true distance ``D`` (of the centred vectors) obeys
    ``D² >= L − xy·X·(X + D) − yy·(X + D)²`` with
    ``L = tau − value·|tau| − x2·X² − floor + ‖x_c‖²_low`` (``s − value·|s|``
    grows with ``s``), that is ``A·D² + B·D + C >= 0`` with ``A = 1 + yy``,
    ``B = (xy + 2·yy)·X`` and ``C = (xy + yy)·X² − L``: ``D`` is at least the
    positive root when ``C < 0``.  The centring's rounding, ``eta_per_norm``
    per unit of ``‖x_c‖ + ‖y_c‖ <= 2X + D``, is taken off last.
    """
    big_l = tau - err.value * xp.abs(tau) - err.x2 * x_norm * x_norm - err.floor
    big_l = big_l + xx / slop
    a = 1.0 + err.yy
    b = (err.xy + 2.0 * err.yy) * x_norm
    c = (err.xy + err.yy) * x_norm * x_norm - big_l
    disc = xp.clip(b * b - 4.0 * a * c, min=0.0)
    root = (xp.sqrt(disc) - b) / (2.0 * a)
    # The root's own float64 rounding: a few units in the last place.
    root = xp.where(c < 0.0, root * (1.0 - 1e-12), xp.zeros_like(root))
    return root * (1.0 - eta_per_norm) - 2.0 * eta_per_norm * x_norm


def certificate_allowances(
    d: int, v: float, w_eps: float
) -> tuple[float, float, float]:
    """Return the rounding allowances of :func:`certified` (the TF graph shares them).

    ``v`` is the input's unit roundoff and ``w_eps`` the epsilon of the float
    the test runs in.  Returns ``(slop, eta_per_norm, near_factor)``: the
    relative rounding of computed squared norms, the centring's rounding per
    unit of norm, and the factor on the k-th computed squared distance that
    covers the exact distances' own rounding.
    """
    slop = 1.0 + 2.0 * (d + 2) * v + 8.0 * w_eps
    eps = (d + 4) * 1.01 * v + 8.0 * w_eps
    return slop, 1.01 * v, (1.0 + eps) / (1.0 - eps)


def _redo_uncertified(
    Xq: Any,
    Y: Any,
    k: int,
    xp: ModuleType,
    found: tuple[Any, Any],
    ok: Any,
    budget: int,
) -> tuple[Any, Any]:
    """Redo exactly the rows without a certificate (see :func:`certified`).

    Exact duplicates and ties at the k-th neighbour land here, and come back
    with the lower index first.  One host synchronisation per search (the
    test whether any row needs it), after every tile has run.
    """
    vals, idx = found
    if bool(xp.all(ok)):
        return vals, idx
    redo = xp.nonzero(~ok)[0]  # a boolean mask must index alone (standard)
    fv, fi = _exact_rows(xp.take(Xq, redo, axis=0), Y, k, xp, budget)
    return _replace_rows(vals, ~ok, fv, xp), _replace_rows(idx, ~ok, fi, xp)


def _euclidean(
    X: Any, Y: Any, k: int, xp: ModuleType, database: Database | None = None
) -> tuple[Any, Any]:
    """Exact k nearest, squared Euclidean: expansion filter + exact re-rank.

    Each row tile: one GEMM and one candidate selection per column tile, the
    exact re-ranking of the candidates and their certificates, with no host
    synchronisation; the rows without a certificate are redone after all
    tiles.  Tiles are cache-sized on a CPU and memory-sized on an
    accelerator (:func:`euclidean_tiles`).  ``database``: where the operand
    of ``Y`` built by an earlier search is kept (:class:`Database`).
    """
    n, m, d = X.shape[0], Y.shape[0], X.shape[1]
    dev = device_of(X)
    n_cand = min(m, k + _REFINE_EXTRA)
    budget = working_memory_bytes(xp, dev)
    workers = host_workers(xp, n)
    rows, cols = euclidean_tiles(
        n, m, n_cand, d, itemsize(X, xp), budget // workers, is_accelerator(xp, dev)
    )
    # A tile for every worker (one tile of 1 000 queries ran its selection
    # and re-ranking on one core: 46 against 33 ms at 1 000 x 2 000 x 512).
    rows = min(rows, -(-n // workers))
    bounds = column_bounds(m, cols, n_cand)
    # (See _approx_block.)  On a CPU, torch too takes the augmented GEMM:
    # addmm's epilogue re-reads the tile, which has left the cache there
    # (Xeon, 2 threads, medians of 6 interleaved searches: 1.29 against 1.58 s
    # at 100 000 x 64, 1.55 against 1.65 at 50 000 x 256, 22.5 against 22.4
    # ms at 2 000 x 512).
    fused = namespace_name(xp) == "torch" and is_accelerator(xp, dev)
    native = namespace_name(xp) in {"numpy", "torch"}
    pad = -(d + 1) % 8
    if database is None:
        c, Ya, yy_max = _database_operand(Y, xp, fused)
    else:
        c, Ya, yy_max = database.operand(Y, xp, fused)
    slack = rounding_bound(xp, X.dtype, d)
    local = threading.local()

    def tile(i: int) -> tuple[Any, ...]:
        Xq = X[i : min(i + rows, n), :]
        r = Xq.shape[0]
        buf = getattr(local, "buf", None)
        if native and buf is None:
            buf = local.buf = xp.empty((rows * cols,), dtype=X.dtype, device=dev)
        Xc = Xq - c
        if fused:
            Xa = Xc
        else:
            ones = xp.ones((r, 1 + pad), dtype=X.dtype, device=dev)  # pad: × 0 in Ya
            Xa = xp.concat([-2.0 * Xc, ones], axis=1)
        best = screen_candidates(Xa, Ya, n_cand, bounds, buf, xp)
        if m <= n_cand:
            return rerank(Xq, Y, best[1], k, xp)
        xx = sq_row_norms(Xc, xp)

        def certify(kth: Any, tau: Any, sel: Any) -> Any:
            x = xx if sel is None else xp.take(xx, sel, axis=0)
            return certified(
                kth, tau, x, yy_max, d, ScreenError(x2=slack, yy=slack), xp
            )

        # The expansion's rounding is far below the gaps between neighbours:
        # the k + 2 best-screened candidates nearly always hold the k nearest
        # and certify them (all but 2 of 1 000 queries at 1 000 x 2 000 x
        # 512; k + 0: 97), and the other candidates' exact distances are not
        # computed: 35.6 against 39.5 ms a search there (torch, interleaved).
        return rerank_nearest(Xq, Y, best[0], best[1], k, k + _FIRST, certify, xp)

    # numpy's selection (min, argpartition) is single-threaded: query tiles
    # run on a pool, each with a one-thread BLAS, as scikit-learn does.
    found = _map_tiles(tile, range(0, n, rows), xp, n)
    if m <= n_cand:
        return found[0], found[1]
    return _redo_uncertified(X, Y, k, xp, found[:2], found[2], budget)


def _database_operand(Y: Any, xp: ModuleType, fused: bool) -> tuple[Any, Any, float]:
    """Build the screen's operand of the database ``Y``: ``(c, Ya, max ‖y − c‖²)``.

    The screen runs on data centred on the database mean ``c``: its rounding
    grows with the norms, which a common offset (coordinates, 1e4 + noise)
    makes far larger than the distances.  ``fused`` (torch on an
    accelerator, :func:`_approx_block`): ``Ya = ((Y − c)ᵀ, ‖y − c‖²)``;
    otherwise the transposed view of ``[Y − c, ‖y − c‖², 0…]``.
    """
    c = column_means(Y, xp)
    if fused:
        Yc = Y - c
        YY = sq_row_norms(Yc, xp)
        Ya: Any = (Yc.T, YY)
    else:
        # [Y − c, ‖y − c‖², 0…] row by row, built once, and its transpose
        # taken as a view (the GEMM reads it transposed): building the
        # (d + 1 + pad) × m copy itself was a strided pass over Y, 4.3 of 28
        # ms at 1 000 x 2 000 x 512 on numpy against 0.3 ms.  The inner
        # dimension is padded with zeros to a multiple of 8, where BLAS
        # kernels run ~15% faster than at d + 1.
        Yt, YY = _database_rows(Y, c, -(Y.shape[1] + 1) % 8, xp)
        Ya = Yt.T
    return c, Ya, float(xp.max(YY))


def _version(Y: Any) -> int | None:
    """Return torch's count of in-place writes to ``Y``'s storage (else None)."""
    version = getattr(Y, "_version", None)
    return version if isinstance(version, int) else None


class Database:
    """What the Euclidean search keeps of fitted rows ``Y`` between searches.

    The largest magnitude of ``Y`` (for :func:`search`'s scale) and, built
    at the first search that needs it, the screen's operand
    (:func:`_database_operand`): preparing it is a few passes over ``Y``,
    most of the time of a search of a few queries (100 000 × 64, one
    query: about 8 of 12 ms); and the bfloat16 screen's centres and rows
    (:mod:`._screen`).  A fitted estimator holds one (:meth:`of`); it costs
    up to ``(d + 8)/d`` times the memory of ``Y`` for the operand (padding
    included) and half that for the bfloat16 rows.

    The rows are not copied, as scikit-learn's estimators do not copy them:
    written into after ``fit``, the estimator must be fitted again.  A
    torch tensor's version counter tells :meth:`fits` of such a write.
    """

    def __init__(self, Y: Any, xp: ModuleType) -> None:
        self.Y = Y
        self.version = _version(Y)
        self.max_abs = max_abs(Y, xp)
        self._operands: dict[tuple[str, bool], tuple[Any, Any, float]] = {}
        # The bfloat16 screen's centres and databases (:mod:`._screen`), and
        # the work of the searches that could have used them (:meth:`screens`).
        self.screen: dict[bool, Any] = {}
        self.screen_work = 0

    @classmethod
    def of(cls, Y: Any, xp: ModuleType, held: Database | None) -> Database | None:
        """Return the Database of ``Y`` (``held`` where it still fits), or None.

        None where the search keeps nothing between calls: namespaces
        other than numpy, torch and cupy (a jax array may be a tracer) and
        data that autograd records.
        """
        if held is not None and held.fits(Y):
            return held
        if namespace_name(xp) not in {"numpy", "torch", "cupy"} or _needs_grad(Y):
            return None
        return cls(Y, xp)

    def fits(self, Y: Any) -> bool:
        """Whether this is ``Y``'s Database and ``Y`` is as it was."""
        return Y is self.Y and _version(Y) == self.version

    def screens(self, X: Any, Y: Any, k: int, xp: ModuleType) -> bool:
        """Whether the bfloat16 screen should search ``X``, too small for it alone.

        A search below the screen's ``_MIN_WORK`` does not pay for building
        the bfloat16 rows, but searches of the same rows share them: once
        the searches that the screen would take with kept rows add
        up to ``_MIN_WORK`` the rows are built, and every such search after
        that is screened: see :func:`._screen.screen_applies` for which.
        """
        n, d = X.shape
        work = n * Y.shape[0] * d
        if work >= _SCREEN_MIN_WORK or not screen_applies(X, Y, k, xp, kept=True):
            return False
        if self.screen_work < _SCREEN_MIN_WORK:
            self.screen_work += work
        return self.screen_work >= _SCREEN_MIN_WORK

    def operand(self, Y: Any, xp: ModuleType, fused: bool) -> tuple[Any, Any, float]:
        """:func:`_database_operand` of ``Y`` (these rows, or a view of them)."""
        key = (namespace_name(xp), fused)
        found = self._operands.get(key)
        if found is None:
            found = self._operands[key] = _database_operand(Y, xp, fused)
        return found


def _database_rows(Y: Any, c: Any, pad: int, xp: ModuleType) -> tuple[Any, Any]:
    """``[Y − c, ‖y − c‖², 0 × pad]`` row by row, and the squared norms.

    numpy and torch write the centred rows straight into the block (one
    pass that writes, instead of a centred copy and then a concatenation of
    it: at 100 000 × 64 a search of one query spent most of its time
    building the database operand).  Other namespaces concatenate.
    """
    m, d = Y.shape
    dev = device_of(Y)
    name = namespace_name(xp)
    if name not in {"numpy", "torch"}:
        Yc = Y - c
        YY = sq_row_norms(Yc, xp)
        zeros = xp.zeros((m, pad), dtype=Y.dtype, device=dev)
        return xp.concat([Yc, YY[:, None], zeros], axis=1), YY
    block = xp.empty((m, d + 1 + pad), dtype=Y.dtype, device=dev)
    if name == "torch":
        import torch

        Yc = block[:, :d]
        torch.sub(Y, c, out=Yc)
        YY = sq_row_norms(Yc, xp)
        block[:, d] = YY
        block[:, d + 1 :] = 0
        return block, YY
    import numpy as np

    YY = np.empty((m,), dtype=Y.dtype)

    def rows(lo: int, hi: int) -> None:
        part = block[lo:hi]
        np.subtract(Y[lo:hi], c, out=part[:, :d])
        YY[lo:hi] = sq_row_norms(part[:, :d], xp)
        part[:, d] = YY[lo:hi]
        part[:, d + 1 :] = 0

    # On the host threads from _BLOCK_SHARE elements each: the writes
    # page-fault the fresh block, one thread at a time otherwise (100 000 x
    # 64: 10.2 against 5.5 ms on two threads).
    workers = max(1, min(host_workers_blas(), m * d // _BLOCK_SHARE))
    on_host_threads(rows, m, workers)
    return block, YY


def host_workers(xp: ModuleType, n: int) -> int:
    """Threads for the query tiles: numpy only, as many as BLAS may use."""
    if namespace_name(xp) != "numpy" or n < 2:
        return 1
    return host_workers_blas()


def host_threads(xp: ModuleType) -> int:
    """Host threads of numpy work on ``xp``'s data: numpy's BLAS, or torch's count.

    torch's CPU data runs numpy kernels on zero-copy views (KMeans' host
    side, k-means++); it gets as many threads as torch would use.
    """
    if namespace_name(xp) == "torch":
        import torch

        return max(1, torch.get_num_threads())
    return host_workers_blas()


def host_workers_blas() -> int:
    """Return the fewest threads any loaded BLAS may use (at least 1)."""
    # The controller is built once (threadpool_info() rescans the loaded
    # libraries, milliseconds a call); each library's thread count is read
    # live, so a caller's threadpool_limits still counts.
    blas = [
        int(lib.num_threads)
        for lib in _blas_controller().lib_controllers
        if lib.user_api == "blas"
    ]
    return max(1, min(blas or [1]))


def search(
    X: Any,
    Y: Any,
    k: int,
    metric: str,
    p: float,
    xp: ModuleType,
    database: Database | None = None,
) -> tuple[Any, Any]:
    """Search validated compute arrays; return ``(distances, int64 indices)``.

    Data whose squares would overflow or underflow is searched at an exact
    power-of-two scale (:mod:`._scaling`), so the neighbours are those of
    exact arithmetic and only a distance beyond the dtype's range is ``inf``.
    ``database``: ``Y``'s :class:`Database` (an estimator's), whose parts the
    Euclidean search reuses instead of computing them again.
    """
    if database is not None and (metric not in EUCLIDEAN or not database.fits(Y)):
        database = None
    if database is None:
        e = scale_exponent([X, Y], xp, metric, p)
    else:
        e = scale_exponent([X], xp, metric, p, known=database.max_abs)
    if e:
        same = X is Y
        X = times_pow2(X, -e, xp)
        Y = X if same else times_pow2(Y, -e, xp)
        database = None  # kept for the data as it is, not scaled
    dist, ind = _search_in_range(X, Y, k, metric, p, xp, database)
    return scale_back(dist, e, metric, xp), ind


def _plain_euclidean(
    X: Any,
    Y: Any,
    k: int,
    xp: ModuleType,
    database: Database | None = None,
    few: bool | None = None,
) -> tuple[Any, Any]:
    """Exact k nearest (squared): the bfloat16 screen where it applies, else float32.

    Large numpy searches run on torch's CPU kernels where torch is installed
    (:func:`_on_torch_views`).  ``database``: see :func:`_euclidean`;
    ``few``: :meth:`Database.screens`'s answer, where already asked.
    """
    if few is None:
        few = database is not None and database.screens(X, Y, k, xp)
    if _torch_applies(X, Y, xp, few):
        return _on_torch_views(X, Y, k, database, few)
    if few or screen_applies(X, Y, k, xp):
        fallback = functools.partial(_euclidean, database=database)
        kept = None if database is None else database.screen
        return screened_search(X, Y, k, xp, fallback, kept)
    return _euclidean(X, Y, k, xp, database)


def _torch_applies(X: Any, Y: Any, xp: ModuleType, screened: bool = False) -> bool:
    """Whether a numpy search should run on torch (:func:`_on_torch_views`).

    Large float32 searches (:func:`torch_route_applies`), and smaller ones
    that a kept database screens (``screened``: :meth:`Database.screens`;
    torch's re-ranking of the candidates beat numpy's there: 3.5 against
    7.3 ms for 10 queries at 100 000 x 64); the float64 ones stay on numpy,
    whose kernels were as fast there (1.57 against 1.76 s at 100 000 x 64,
    5 000 queries).
    """
    if namespace_name(xp) != "numpy" or X.dtype != xp.float32:
        return False
    n, d = X.shape
    return torch_route_applies(_TORCH_MIN_WORK if screened else n * Y.shape[0] * d)


# Host work of at least this many multiply-adds runs on torch: the bfloat16
# screen's threshold, so that only searches whose screen check imports torch
# already import it.
_TORCH_MIN_WORK = _SCREEN_MIN_WORK


def torch_route_applies(work: int) -> bool:
    """Whether numpy/scipy work of ``work`` multiply-adds should run on torch.

    The route of large host work onto torch's CPU kernels through zero-copy
    views (the dense k-NN search, the sparse KMeans E-step): from
    ``_TORCH_MIN_WORK`` on, called from the main thread, where torch is
    installed.  torch's OpenMP team belongs to the thread that starts it, and
    one started from each of a pool's threads spun on the cores the others
    needed (a later torch search ran 37-41 against 21-22 ms), so the host
    pool's and dask's threads keep numpy's and scipy's kernels.  Run the work
    inside :func:`on_host_torch`.
    """
    import importlib.util

    if work < _TORCH_MIN_WORK:
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    return importlib.util.find_spec("torch") is not None


@contextlib.contextmanager
def on_host_torch() -> Iterator[None]:
    """Run torch on as many threads as numpy's BLAS may use, without autograd.

    So a caller's ``threadpoolctl.threadpool_limits`` still rules the work
    that :func:`torch_route_applies` sends to torch.
    """
    import torch

    with torch_threads(host_workers_blas()), torch.no_grad():
        yield


def _on_torch_views(
    X: Any, Y: Any, k: int, database: Database | None = None, few: bool = False
) -> tuple[Any, Any]:
    """:func:`_plain_euclidean` of numpy arrays, on torch's CPU kernels.

    Through zero-copy views, inside :func:`on_host_torch`, answered in
    numpy.  torch's GEMM (oneDNN/MKL) and selection ran the same search
    10-25% faster than numpy's (OpenBLAS, argpartition on the host pool):
    Xeon, 2 threads, 10 000 queries, k = 10, medians of 3 interleaved: 1.64
    against 1.82 s at 100 000 x 64, 1.94 against 2.29 s at 50 000 x 256,
    0.75 against 0.96 s at 50 000 x 32; 28.7 against 36.2 ms at 1 000
    queries x 2 000 x 512.  The answer is numpy's kernels' (both re-rank by
    the same float64 squares; only their order of summation differs, which
    can move a float32 distance by a unit in the last place a few times in a
    billion: docs/performance.md).
    """
    import array_api_compat.torch as torch_xp

    from xplearn._convert import to_namespace

    Xt, Yt = (to_namespace(a, torch_xp) for a in (X, Y))
    with on_host_torch():
        dist, ind = _plain_euclidean(Xt, Yt, k, torch_xp, database, few)
    return dist.numpy(), ind.numpy()


def _search_in_range(
    X: Any,
    Y: Any,
    k: int,
    metric: str,
    p: float,
    xp: ModuleType,
    database: Database | None = None,
) -> tuple[Any, Any]:
    """:func:`search` on data whose distances cannot overflow or underflow."""
    if metric in EUCLIDEAN:
        graph = _needs_grad(X, Y)
        if graph:  # the neighbours by the graph-free search, below their distances
            X, Y, (Xg, Yg) = X.detach(), Y.detach(), (X, Y)
        found = None
        if prune_applies(X, Y, k, xp):
            found = pruned_search(X, Y, k, xp, _plain_euclidean)
        if found is None:
            dist, ind = _plain_euclidean(X, Y, k, xp, None if graph else database)
        else:
            dist, ind = found
        if graph:
            # The same exact sums as every route's re-ranking, so the same
            # bits, recorded for autograd (the search's reused out= buffers
            # and in-place chunks would break the graph).
            X, Y = Xg, Yg
            dist = _exact_sq(X, Y, ind, xp, float_dtypes(xp, device_of(X))[0])
        # The exact squared distances come in the widest float (float64
        # where the device has it): the root is taken there and rounded
        # once, as a float64 computation rounds it (the root of a rounded
        # square was a unit in the last place off for 13% of float32 values).
        if metric == "euclidean":
            dist = sqrt_rounded(dist, xp)
        return xp.astype(dist, X.dtype, copy=False), ind
    n, m = X.shape[0], Y.shape[0]
    size = itemsize(X, xp)
    # Per tile element: the distance, top-k scratch and index array, the tie
    # mask; broadcast metrics also hold the n×m×d difference.
    per_element = 2 * size + 8 + 1
    if metric != "cosine":
        per_element += X.shape[1] * size
    rows, cols = tile_sizes(n, m, per_element, working_memory_bytes(xp, device_of(X)))
    out_vals, out_idx = [], []
    for i in range(0, n, rows):
        Xq = X[i : min(i + rows, n), :]
        best: tuple[Any, Any] | None = None
        for j in range(0, m, cols):
            D = distance_block(Xq, Y[j : min(j + cols, m), :], metric, p, xp)
            vals, idx = topk_smallest(D, min(k, D.shape[1]), xp)
            if j:
                idx = idx + j
            best = (vals, idx) if best is None else merge_topk(*best, vals, idx, k, xp)
        assert best is not None
        out_vals.append(best[0])
        out_idx.append(best[1])
    dist = out_vals[0] if len(out_vals) == 1 else xp.concat(out_vals, axis=0)
    ind = out_idx[0] if len(out_idx) == 1 else xp.concat(out_idx, axis=0)
    return dist, ind


def search_lazy(
    X: Any, Y: Any, k: int, metric: str, p: float, xp: ModuleType
) -> tuple[Any, Any]:
    """dask: each block of queries against all of ``Y``, by the numpy kernel."""
    import array_api_compat.numpy as np_xp
    import numpy as np

    from xplearn._convert import to_numpy

    Yn = to_numpy(Y)  # every query block needs all of Y; X stays distributed
    Xr = X.rechunk({1: -1})

    def block(b: Any) -> Any:
        d, i = search(b, Yn, k, metric, p, np_xp)
        # One output per block: distances and indices side by side in
        # float64 (exact for indices below 2**53).
        return np.concatenate([d.astype(np.float64), i.astype(np.float64)], axis=1)

    both = Xr.map_blocks(
        block,
        chunks=(Xr.chunks[0], (2 * k,)),
        dtype=np.float64,
        meta=np.empty((0, 0), dtype=np.float64),
    )
    return xp.astype(both[:, :k], X.dtype), xp.astype(
        both[:, k:], index_dtype(xp, device_of(X))
    )


def augment_queries(X: Any, xp: ModuleType, multiple: int = 8) -> tuple[Any, Any]:
    """``([−2·X, 1, 0…], ‖x‖²)`` for :func:`nearest_center`, built once per fit.

    The width is padded to a ``multiple`` (8: OpenBLAS ran the k-NN's wide
    GEMM 15% slower at ``d + 1``; KMeans' narrow one, 64 centres, ran 15%
    faster unpadded).
    """
    n, d = X.shape
    pad = -(d + 1) % multiple
    if namespace_name(xp) == "numpy":  # written in place: no -2·X temporary
        import numpy as np

        Xa = np.empty((n, d + 1 + pad), dtype=X.dtype)
        np.multiply(X, -2.0, out=Xa[:, :d])
        Xa[:, d:] = 1.0
        return Xa, sq_row_norms(X, xp)
    ones = xp.ones((n, 1 + pad), dtype=X.dtype, device=device_of(X))
    return xp.concat([-2.0 * X, ones], axis=1), sq_row_norms(X, xp)


def augment_centers(C: Any, width: int, xp: ModuleType) -> tuple[Any, Any]:
    """``([Cᵀ; ‖c‖²; 0…], ‖c‖²)``: the right operand matching ``augment_queries``.

    ``width`` is the augmented queries' column count, so ``Xa @ Ca`` is
    ``‖c‖² − 2 x·c`` for every pair.
    """
    k, d = C.shape
    CC = sq_row_norms(C, xp)
    zeros = xp.zeros((width - d - 1, k), dtype=C.dtype, device=device_of(C))
    return xp.concat([C.T, CC[None, :], zeros], axis=0), CC


def nearest_center(X: Any, C: Any, xp: ModuleType) -> tuple[Any, Any]:
    """Find the nearest row of ``C`` for every row of ``X`` (KMeans.predict).

    Returns the labels and their exact squared distances.  One augmented GEMM
    per cache-sized row tile gives ``‖c‖² − 2 x·c``; the argmin is the label
    (the first minimum: ties go to the lower index).  Rows whose runner-up is
    within the expansion's rounding of the winner are redone exactly, so the
    labels equal an exact search's; the distance is ``Σ (x − c_label)²``.
    Data out of the safe range is labelled at an exact power-of-two scale
    (:mod:`._scaling`); a distance beyond the dtype's range is ``inf``.
    """
    labels, dist, e = nearest_center_scaled(X, C, xp)
    return labels, times_pow2(dist, 2 * e, xp)


def nearest_center_scaled(X: Any, C: Any, xp: ModuleType) -> tuple[Any, Any, int]:
    """:func:`nearest_center` of ``X · 2**-e`` and ``C · 2**-e``, and ``e``.

    The squared distances stay at that scale, where they cannot overflow
    (sums of them, such as an inertia, are scaled back as Python floats).
    """
    e = scale_exponent([X, C], xp)
    if e:
        X, C = times_pow2(X, -e, xp), times_pow2(C, -e, xp)
    labels, dist = _nearest_center_in_range(X, C, xp)
    return labels, dist, e


def _nearest_center_in_range(X: Any, C: Any, xp: ModuleType) -> tuple[Any, Any]:
    """:func:`nearest_center` for data whose squares stay in range.

    The tiles only label and flag; the flagged rows are redone, and the
    distances taken, once after the tiles (no host synchronisation inside the
    tile loop).
    """
    n, d = X.shape
    k = C.shape[0]
    dev = device_of(X)
    Xa, XX = augment_queries(X, xp)
    Ca, CC = augment_centers(C, Xa.shape[1], xp)
    slack = 2.0 * rounding_bound(xp, X.dtype, d)
    cc_max = xp.max(CC)
    ix = index_dtype(xp, dev)
    cols = xp.arange(k, dtype=ix, device=dev)
    budget = working_memory_bytes(xp, dev)
    if is_accelerator(xp, dev):
        # Three n×k temporaries per tile (distances, mask, masked copy).
        rows = max(1, min(n, budget // (3 * k * itemsize(X, xp))))
    else:
        # Tiles of ~2**18 distances stay in cache between the GEMM and the argmin.
        rows = max(1, min(n, 2**18 // max(k, 1)))

    def tile(i: int) -> tuple[Any, Any, Any]:
        j = min(i + rows, n)
        D = Xa[i:j, :] @ Ca
        labels = xp.astype(xp.argmin(D, axis=1), ix)
        diff = X[i:j, :] - xp.take(C, labels, axis=0)
        dist = xp.sum(diff * diff, axis=1)
        if k == 1:
            return labels, dist, xp.zeros(labels.shape, dtype=xp.bool, device=dev)
        best = take_rows(D, labels[:, None], xp)[:, 0]
        # An array, not the scalar xp.inf: scalars in where() are only
        # standard from 2024.12.
        taken = cols[None, :] == labels[:, None]
        runner = xp.min(xp.where(taken, xp.full_like(D, xp.inf), D), axis=1)
        return labels, dist, runner - best <= slack * (XX[i:j] + cc_max)

    labels, dist, unsafe = _map_tiles(tile, range(0, n, rows), xp, n)
    if bool(xp.any(unsafe)):
        redo = xp.nonzero(unsafe)[0]  # a boolean mask must index alone
        Xr = xp.take(X, redo, axis=0)
        _, fi = _exact_rows(Xr, C, 1, xp, budget)
        diff = Xr - xp.take(C, fi[:, 0], axis=0)
        fv = xp.sum(diff * diff, axis=1)
        labels = _replace_rows(labels[:, None], unsafe, fi, xp)[:, 0]
        dist = _replace_rows(dist[:, None], unsafe, fv[:, None], xp)[:, 0]
    return labels, dist


def _map_tiles(
    fn: Any, starts: Sequence[int], xp: ModuleType, n: int
) -> tuple[Any, ...]:
    """Run ``fn`` (one row tile → a tuple of arrays) on every tile, concatenated.

    numpy's reductions are single-threaded, so for numpy the tiles run on a
    thread pool with a one-thread BLAS (and torch, where loaded: its top-k
    selects numpy's candidates) each (see :func:`host_workers`).
    """
    workers = host_workers(xp, n)
    if workers > 1 and len(starts) > 1 and not _in_pool():
        with _one_thread_each():
            results = list(_pool(workers).map(fn, starts))
    else:
        results = [fn(i) for i in starts]
    if len(results) == 1:
        first: tuple[Any, ...] = results[0]
        return first
    return tuple(xp.concat(list(parts), axis=0) for parts in zip(*results, strict=True))


def on_host_threads(fn: Any, n: int, workers: int) -> list[Any]:
    """``fn(lo, hi)`` on ``workers`` contiguous shares of ``range(n)``, in order.

    The shares run on a lasting pool of threads with a one-thread BLAS (and
    torch) each, as the query tiles of :func:`_map_tiles` do; one worker
    runs ``fn(0, n)`` here.
    """
    if workers <= 1 or n < 2 or _in_pool():
        return [fn(0, n)]
    bounds = [n * t // workers for t in range(workers + 1)]
    with _one_thread_each():
        return list(_pool(workers).map(fn, bounds[:-1], bounds[1:]))


def _in_pool() -> bool:
    """Whether this thread is one of the pool's (nested work then runs inline).

    A task that waited on tasks of the same pool could wait for ever, both
    threads waiting (dask's threads can lift the BLAS limit meanwhile).
    """
    return threading.current_thread().name.startswith("xplearn")


_BLAS: list[Any] = []
_POOLS: dict[tuple[int, int], Any] = {}
_LOCK = threading.Lock()


def _pool(workers: int) -> Any:
    """Return a lasting pool of ``workers`` threads.

    Starting threads costs about 1 ms each, as much as a whole E-step of a
    few thousand rows.  Tasks on it never wait on other tasks, so callers may
    share it.  Pools are kept per process: a child made by ``fork`` has none
    of its parent's threads, and would wait on them for ever.
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    key = (os.getpid(), workers)
    with _LOCK:
        if key not in _POOLS:
            _POOLS[key] = ThreadPoolExecutor(workers, "xplearn")
        return _POOLS[key]


def _blas_controller() -> Any:
    """Return the process's ``ThreadpoolController``, built once.

    Building one rescans the loaded libraries (about 1 ms); a library loaded
    later (BLAS is loaded with numpy, before any search) is not seen.
    """
    from threadpoolctl import ThreadpoolController

    with _LOCK:
        if not _BLAS:
            _BLAS.append(ThreadpoolController())
    return _BLAS[0]


def one_blas_thread() -> Any:
    """Limit BLAS to one thread, as a context (on the cached controller).

    Also for small products on the calling thread before work on other
    threads: after a product on several threads, OpenBLAS's threads spin
    for a while waiting for the next (up to 2^28 cycles by default), on the
    cores that the host pool's threads or torch's OpenMP threads then wait
    for.  Here (2 cores) a numpy product of 3 000 x 64 x 16 before a torch
    ``aminmax`` made the pair take 7.3 ms against 0.1 with one BLAS thread;
    the pruned search's probe before a 20 000 x 64 search with 2 000
    queries, 164 against 109 ms (medians of 9).
    """
    return _blas_controller().limit(limits=1, user_api="blas")


@contextlib.contextmanager
def _one_thread_each() -> Iterator[None]:
    """One BLAS thread, and one torch thread where torch is loaded, as a context.

    For the host workers of :func:`_map_tiles` and :func:`on_host_threads`:
    each is one thread of the pool, and a torch call on two threads from
    each would put twice as many threads as cores to work (their spinning
    OpenMP threads slow the others).
    """
    with contextlib.ExitStack() as stack:
        stack.enter_context(one_blas_thread())
        if "torch" in sys.modules:
            stack.enter_context(torch_threads(1))
        yield


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[int]:
    """Run torch on ``n`` threads inside; yield the count it had (the workers).

    torch's setting is process-wide; it is restored on the way out.
    """
    import torch

    with _THREADS_LOCK:
        before = torch.get_num_threads()
        if before != n:
            torch.set_num_threads(n)
    try:
        yield before
    finally:
        with _THREADS_LOCK:
            if before != n:
                torch.set_num_threads(before)


_THREADS_LOCK = threading.Lock()
