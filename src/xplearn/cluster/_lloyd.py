"""Lloyd iterations for KMeans, plain and bounded, written once against ``xp``.

:func:`_lloyd` is scikit-learn's ``algorithm="lloyd"``: every iteration one
E-step (nearest centre of every point) and one M-step (weighted means).
:func:`_elkan` (``algorithm="elkan"``) gives the same labels with far fewer
distance computations, skipping the points that the triangle inequality says
cannot change cluster.

The distances are the expansion ``‖c‖² − 2 x·c`` (``‖x‖²`` is the same for
every centre), one GEMM of the augmented operands ``[−2x, 1] @ [cᵀ; ‖c‖²]``
per cache-sized tile of rows (adding ``‖c‖²`` separately cost 5.5 ms a pass
more here).  numpy gets a fused kernel on a host thread pool
(:func:`_numpy_nearest`), the other namespaces the standard body; torch
scatters the M-step's sums with ``index_add_`` on accelerators.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from xplearn._convert import to_numpy
from xplearn._namespace import device_of, namespace_name
from xplearn._primitives import (
    segment_sums,
    sq_row_norms,
    working_memory_bytes,
)
from xplearn._validation import index_dtype
from xplearn.neighbors._search import (
    augment_centers,
    augment_queries,
    host_threads,
    host_workers,
    on_host_threads,
    rounding_bound,
)

from ._init import _host_floats
from ._screen import LloydScreen, screen_applies

# Distances per E-step tile on a CPU: the tile stays in cache from the GEMM
# to the argmin.
_CACHE_ELEMENTS = 2**18


class _Data:
    """One fit's samples and what every E-step reuses (built once per fit).

    With ``n_clusters`` given, float32 E-steps on a CPU are screened in
    bfloat16 where that is exact and faster (:mod:`._screen`).
    """

    def __init__(
        self,
        X: Any,
        w: Any,
        xp: ModuleType,
        n_clusters: int | None = None,
        elkan: bool = False,
    ) -> None:
        self.X = X  # the centred samples
        self.w = w  # their weights
        # [-2X, 1] and ‖x‖²; stored transposed where numpy's kernel reads it
        # so (Xa is then a view of [-2X, 1]ᵀ: see _numpy_nearest).
        if _transposed_layout(X, w, xp, n_clusters, elkan):
            self.Xa, self.XX = _transposed_operand(X, xp), sq_row_norms(X, xp)
        else:
            self.Xa, self.XX = augment_queries(X, xp, multiple=1)
        self.workers = host_workers(xp, X.shape[0])
        # Unit weights (no sample_weight) spare the M-step a weighted copy.
        self.unit = namespace_name(xp) == "torch" and bool(xp.all(w == 1))
        self.screen = None
        if n_clusters is not None and screen_applies(X, n_clusters, xp):
            self.screen = LloydScreen(X, self.XX)
        self.host = _host_view(self, xp)


# Where Lloyd's labels are computed transposed (centres x points,
# :func:`_numpy_nearest`): up to 48 centres at up to 64 features, where
# numpy's row-wise argmin costs more than the GEMM.  Whole fits of 20
# iterations, 2 threads, 200 000 points, float32, medians of 7 interleaved
# (the transposed copy in blocks, :func:`_transposed_operand`): 1.2x at 64
# features and 8 centres, 1.05-1.5x at 32-64 features and 16-48 centres;
# 1.5-2.1x at 8-16 features (100 000 points, 3-48 centres); 1.0-1.1x in
# float64.  Not from 64 centres on (0.85-1.05x: the labels' four passes over
# the tile cost what the argmin saves) nor above 64 features (0.93-1.04x at
# 96-256: the GEMM dominates and the transposed one is no faster).
_TRANSPOSED_CENTERS, _TRANSPOSED_FEATURES = 48, 64


def _transposed_layout(
    X: Any, w: Any, xp: ModuleType, n_clusters: int | None, elkan: bool
) -> bool:
    """Whether :func:`_numpy_nearest` should read the samples transposed.

    Lloyd fits on numpy, and the float32 torch CPU fits that run on numpy's
    side (:func:`_host_view`), with few centres and features
    (``_TRANSPOSED_CENTERS``, ``_TRANSPOSED_FEATURES``; float64 too).  Not
    Elkan: the points it searches again are gathered every iteration, and a
    gather of columns of the transpose cost more than the GEMM saved
    (0.85-0.96x at 64 centres).
    """
    if namespace_name(xp) != "numpy" and not _host_applies(X, w, xp):
        return False
    if elkan or n_clusters is None:
        return False
    return n_clusters <= _TRANSPOSED_CENTERS and X.shape[1] <= _TRANSPOSED_FEATURES


def _transposed_operand(X: Any, xp: ModuleType) -> Any:
    """``[−2·X, 1]`` as the transpose of a C-contiguous ``[−2·X, 1]ᵀ``.

    In ``X``'s namespace (a float32 torch CPU fit gets a torch view of the
    numpy array its numpy side reads).  Written in blocks of rows
    (``_TRANSPOSE_BLOCK`` elements) on the host threads: numpy's strided
    copy of the whole transpose at once ran at 2-8 ns an element once the
    rows outgrew the cache (200 000 x 64: 103 ms a fit, 5 ms an iteration
    of a 20-iteration fit), in blocks on two threads 22 ms, about what the
    row-wise ``[−2·X, 1]`` takes (26 ms).
    """
    import numpy as np

    torch = namespace_name(xp) == "torch"
    Xn = X.numpy() if torch else X
    n, d = Xn.shape
    XaT = np.empty((d + 1, n), dtype=Xn.dtype)
    rows = max(1, _TRANSPOSE_BLOCK // max(1, d))

    def share(lo: int, hi: int) -> None:
        for i in range(lo, hi, rows):
            j = min(i + rows, hi)
            np.multiply(Xn[i:j].T, -2.0, out=XaT[:d, i:j])
        XaT[d, lo:hi] = 1.0

    workers = host_threads(xp)
    on_host_threads(share, n, workers if n >= 2 * rows else 1)
    if torch:
        import torch as th

        return th.from_numpy(XaT).T
    return XaT.T


# Elements per block of the transposed copy (1 MiB of float32).
_TRANSPOSE_BLOCK = 2**18


def _host_applies(X: Any, w: Any, xp: ModuleType) -> bool:
    """Whether a torch fit of ``(X, w)`` runs on numpy's side (:func:`_host_view`)."""
    from xplearn._primitives import is_accelerator

    if namespace_name(xp) != "torch" or is_accelerator(xp, device_of(X)):
        return False
    return bool(X.dtype == xp.float32 and not (X.requires_grad or w.requires_grad))


def _host_view(data: _Data, xp: ModuleType) -> _Data | None:
    """Return the numpy side of a float32 torch CPU fit (zero-copy views), or None.

    torch on the CPU has no fused E-step: its plain body (GEMM, argmin,
    ``index_add_``) took 22 ms an iteration where numpy's fused kernel took
    14 ms (200 000 x 32, k = 64); and numpy's kernel between torch's own
    steps took 22-25 ms against numpy's 16 (Zen 4): torch's OpenMP threads,
    woken by its work on the labels, spin on the cores numpy's threads
    need.  So a Lloyd or Elkan run of such a fit is numpy's throughout
    (:func:`_lloyd`, :func:`._elkan._elkan`), with torch's thread count
    (``torch.set_num_threads`` still rules).
    """
    if not _host_applies(data.X, data.w, xp):
        return None
    view = object.__new__(_Data)
    arrays = (data.X, data.w, data.Xa, data.XX)
    view.X, view.w, view.Xa, view.XX = (a.numpy() for a in arrays)
    view.workers = host_threads(xp)
    view.unit = False
    view.screen = data.screen  # (it takes numpy and torch alike)
    view.host = None
    return view


def _on_host(
    run: Any, data: _Data, centers: Any, max_iter: int, tol: float, verbose: int
) -> tuple[Any, float, Any, int]:
    """``run`` (:func:`_lloyd` or Elkan's) on ``data.host``, answered in torch."""
    import array_api_compat.numpy as npx
    import torch

    labels, inertia, centers, n_iter = run(
        data.host, centers.numpy(), max_iter, tol, verbose, npx
    )
    return torch.from_numpy(labels), inertia, torch.from_numpy(centers), n_iter


def _operands(data: _Data, centers: Any, xp: ModuleType) -> tuple[Any, Any]:
    """``([Cᵀ; ‖c‖²; 0…], ‖c‖²)``: ``Xa @`` the first ranks the centres."""
    return augment_centers(centers, data.Xa.shape[1], xp)


def _tile_rows(xp: ModuleType, X: Any, k: int) -> int:
    """Rows per E-step tile: cache-sized on a CPU, the memory budget elsewhere."""
    n = int(X.shape[0])
    dev = device_of(X)
    if str(getattr(dev, "type", dev)).lower() in ("cpu", "none"):
        return max(1, min(n, _CACHE_ELEMENTS // k))
    size = int(xp.finfo(X.dtype).bits) // 8
    return max(1, min(n, working_memory_bytes(xp, dev) // (2 * k * size)))


def _labels(Xa: Any, Ca: Any, xp: ModuleType) -> Any:
    """First argmin of the expansion per row, in tiles: the Lloyd E-step.

    The expansion's rounding is left as it is (scikit-learn's Lloyd does the
    same); float64 goes through :func:`_search_bounds` instead.
    """
    n, k = Xa.shape[0], Ca.shape[1]
    rows = _tile_rows(xp, Xa, k)
    ix = index_dtype(xp, device_of(Xa))
    parts = [
        xp.astype(_argmin_rows(Xa[i : min(i + rows, n), :] @ Ca, xp), ix, copy=False)
        for i in range(0, n, rows)
    ]
    return parts[0] if len(parts) == 1 else xp.concat(parts)


def _argmin_rows(D: Any, xp: ModuleType) -> Any:
    """Return the first argmin of each row.

    torch's ``min(dim=1)``, which also returns the first minimum, ran 1.3×
    faster than its ``argmin`` over 64 columns here.
    """
    if namespace_name(xp) == "torch":
        return D.min(dim=1).indices
    return xp.argmin(D, axis=1)


def _nearest(data: _Data, centers: Any, xp: ModuleType, *, screen: bool = True) -> Any:
    """Labels of every point: exact in float64, the expansion's in float32.

    float64 breaks ties as exact arithmetic does: rows whose runner-up is
    within the expansion's rounding of the winner are searched again by
    differences, and equal distances go to the lower index (with decimal data
    such as iris, ties are common, and the GEMM's rounding would pick by
    column position).  float32 takes the expansion's argmin as it is, as
    scikit-learn does.
    """
    numpy = namespace_name(xp) == "numpy"
    if data.X.dtype == xp.float64:
        slack = 2.0 * rounding_bound(xp, data.X.dtype, data.X.shape[1])
        if not numpy:
            n, dev = data.X.shape[0], device_of(data.X)
            every = xp.arange(n, dtype=index_dtype(xp, dev), device=dev)
            return _search_bounds(data, every, centers, slack, xp)[0]
        Ca, cc = _operands(data, centers, xp)
        near = slack * (data.XX + xp.max(cc))
        labels, _, parts = _numpy_nearest(data.Xa, Ca, data.workers, near=near)
        close = [rows for _, found in parts for rows in found]
        if close:
            rows = xp.concat(close)
            labels[rows] = _exact_labels(data.X[rows], centers, xp)
        return labels
    labels = _screened(data, centers, xp) if screen else None
    if labels is not None:
        return labels
    Ca, _ = _operands(data, centers, xp)
    if numpy:
        return _numpy_nearest(data.Xa, Ca, data.workers)[0]
    return _labels(data.Xa, Ca, xp)


def _screened(data: _Data, centers: Any, xp: ModuleType, sums: bool = False) -> Any:
    """float32 labels through the bfloat16 screen, or None where it does not run.

    The points the screen cannot certify are labelled by the float32 path
    (the same kernels as :func:`_nearest`'s), so the labels are its labels.
    With ``sums`` (numpy), each host thread also sums its share, as the fused
    float32 pass does, with the same shares: returns ``(labels, sums,
    totals)`` then.
    """
    if data.screen is None:
        return None
    numpy = namespace_name(xp) == "numpy"
    Ca, _ = _operands(data, centers, xp)
    k = centers.shape[0]
    n = data.X.shape[0]
    if numpy:

        def finish(lo: int, hi: int, labels: Any, rows: Any, tail: int) -> Any:
            if rows.shape[0]:
                labels[rows] = _numpy_nearest(_take_rows(data.Xa, rows), Ca, 1)[0]
            if tail < hi:
                labels[tail:hi] = _numpy_nearest(data.Xa[tail:hi], Ca, 1)[0]
            if not sums:
                return None
            w = data.w[lo:hi]
            return segment_sums(data.X[lo:hi], labels[lo:hi], w, k, xp)

        workers = _shares(data.workers, n, k)
    else:
        import torch

        def finish(lo: int, hi: int, labels: Any, rows: Any, tail: int) -> Any:
            if rows.shape[0]:
                idx = torch.from_numpy(rows)
                labels[rows] = _labels(data.Xa[idx], Ca, xp).numpy()
            if tail < hi:
                labels[tail:hi] = _labels(data.Xa[tail:hi], Ca, xp).numpy()

        workers = torch.get_num_threads()
    got = data.screen.labels(centers, workers, finish)
    if got is None:
        return None
    labels, parts = got
    if not numpy:
        return torch.from_numpy(labels)
    if not sums:
        return labels
    return labels, sum(p[0] for p in parts), sum(p[1] for p in parts)


def _lloyd_pass(data: _Data, centers: Any, xp: ModuleType) -> tuple[Any, Any, Any]:
    """One E-step and the M-step's sums: (labels, sums per centre, weights)."""
    k = centers.shape[0]
    numpy = namespace_name(xp) == "numpy"
    if data.X.dtype != xp.float64:
        got = _screened(data, centers, xp, sums=numpy)
        if got is not None and numpy:
            return got  # type: ignore[no-any-return]
        if got is not None:
            sums, totals = _all_sums(data, got, k, xp)
            return got, sums, totals
    if data.X.dtype != xp.float64 and numpy:
        # Fused: each thread sums its own share as soon as it is labelled.
        Ca, _ = _operands(data, centers, xp)
        labels, _, parts = _numpy_nearest(data.Xa, Ca, data.workers, sums=data)
        sums = [p[0] for p in parts]
        return labels, sum(s[0] for s in sums), sum(s[1] for s in sums)
    labels = _nearest(data, centers, xp, screen=False)
    sums, totals = _all_sums(data, labels, k, xp)
    return labels, sums, totals


def _shares(workers: int, n: int, k: int) -> int:
    """Host threads for ``n`` rows and ``k`` centres on numpy.

    Below a few tiles per thread the hand-offs cost more than they save
    (8 000 rows: 2.2 ms on two threads, 1.6 ms on one).  One share per
    thread: four per thread ran 10% slower.  The fused E-step and
    :func:`_all_sums` split the same way, so their sums are rounded alike.
    """
    step = max(1, min(n, _CACHE_ELEMENTS // k))  # _tile_rows on a CPU
    return workers if n >= 8 * step else 1


def _all_sums(data: _Data, labels: Any, k: int, xp: ModuleType) -> tuple[Any, Any]:
    """:func:`segment_sums` of every point (numpy's shares on the host threads)."""
    n = data.X.shape[0]
    if namespace_name(xp) != "numpy" or _shares(data.workers, n, k) == 1:
        return segment_sums(data.X, labels, None if data.unit else data.w, k, xp)

    def share(lo: int, hi: int) -> tuple[Any, Any]:
        return segment_sums(data.X[lo:hi], labels[lo:hi], data.w[lo:hi], k, xp)

    parts = on_host_threads(share, n, data.workers)
    sums, totals = parts[0]
    for s, t in parts[1:]:
        sums, totals = sums + s, totals + t
    return sums, totals


def _take_rows(Xa: Any, rows: Any) -> Any:
    """Return numpy's ``Xa[rows]`` in ``Xa``'s layout (transposed stays so).

    ``np.take`` copies a whole non-C-contiguous array before it gathers.
    """
    import numpy as np

    if Xa.flags.c_contiguous:
        return np.take(Xa, rows, axis=0)
    return np.take(Xa.T, rows, axis=1).T


def _numpy_nearest(
    Xa: Any,
    Ca: Any,
    workers: int,
    *,
    second: bool = False,
    sums: Any = None,
    near: Any = None,
) -> tuple[Any, tuple[Any, Any], list[Any]]:
    """Nearest centre per row of ``Xa`` (and the best and runner-up entries).

    scikit-learn's Cython loop, in numpy: each host thread takes a contiguous
    share of rows and walks it in cache-sized tiles, with the GEMM into a
    reused buffer (fresh 1 MiB blocks page-fault: 54 ms against 16 ms for
    one pass here).  Labels alone, of a C-contiguous ``Xa``, take the
    row-wise argmin.  Otherwise (``second``, ``near``, or ``Xa`` the
    transpose of a C-contiguous ``Xaᵀ``: :func:`_transposed_layout`) each
    tile is computed transposed, centres × rows, so every minimum runs down
    the columns, where numpy vectorises across rows: a row-wise ``argmin``
    pays a call per row, which at 8-32 centres costs more than the GEMM
    (one thread, 100 000 rows, 8 centres, 32 features: 4.8 against 2.2 ms a
    pass; a row-wise ``min`` costs twice an argmin).  The label is then the
    first minimum, ``k − max((D == min) · (k − j))``.  (The GEMM's entries
    are the row-wise product's, bit for bit, with OpenBLAS here: each is one
    dot product summed in the same order.)  Each thread returns ``(sums,
    close)``: with ``sums`` (a :class:`_Data`), the weighted sums of its
    share per label; with ``near`` (the rounding bound per row), the rows
    with another entry within it of the minimum (one count per tile finds
    whether there are any; the others' label is the one entry that close).
    """
    import numpy as np

    n, k = Xa.shape[0], Ca.shape[1]
    workers = _shares(workers, n, k)
    XaT, CaT = Xa.T, np.ascontiguousarray(Ca.T)  # (for the transposed tiles)
    labels = np.empty(n, dtype=np.int64)
    best = np.empty(n, dtype=Xa.dtype) if second else None
    runner = np.empty(n, dtype=Xa.dtype) if second else None
    step = _tile_rows(np, Xa, k)
    code = np.uint8 if k < 2**8 else np.uint16 if k < 2**16 else np.uint32
    rev = (k - np.arange(k)).astype(code)[:, None]

    def tiles(lo: int, hi: int) -> list[Any]:
        buf = np.empty((min(step, hi - lo), k), dtype=Xa.dtype)
        for i in range(lo, hi, step):
            m = min(step, hi - i)
            D = np.matmul(Xa[i : i + m], Ca, out=buf[:m])
            np.argmin(D, axis=1, out=labels[i : i + m])
        return []

    def tiles_t(lo: int, hi: int) -> list[Any]:
        r = min(step, hi - lo)
        Dt, mark = np.empty((k, r), dtype=Xa.dtype), np.empty((k, r), dtype=code)
        # (Below 256 centres the flags are the marks' own bytes.)
        hits = mark.view(bool) if code == np.uint8 else np.empty((k, r), dtype=bool)
        low = np.empty(r, dtype=Xa.dtype)
        cols = np.arange(r) if second else None
        close = []
        for i in range(lo, hi, step):
            m = min(step, hi - i)
            D = np.matmul(CaT, XaT[:, i : i + m], out=Dt[:, :m])
            np.min(D, axis=0, out=low[:m])
            hit = hits[:, :m]
            if near is None:
                np.equal(D, low[:m], out=hit)
            else:
                np.less_equal(D, low[:m] + near[i : i + m], out=hit)
            if near is not None and np.count_nonzero(hit) > m:  # a near-tie
                many = np.count_nonzero(hit, axis=0) > 1
                close.append(i + np.flatnonzero(many))
            np.multiply(hit, rev, out=mark[:, :m])
            lab = np.subtract(k, mark[:, :m].max(axis=0), out=labels[i : i + m])
            if best is not None and runner is not None and cols is not None:
                best[i : i + m] = low[:m]
                D[lab, cols[:m]] = np.inf
                np.min(D, axis=0, out=runner[i : i + m])
        return close

    transposed = second or near is not None or not Xa.flags.c_contiguous

    def share(lo: int, hi: int) -> tuple[Any, list[Any]]:
        close = tiles_t(lo, hi) if transposed else tiles(lo, hi)
        if sums is None:
            return None, close
        part = segment_sums(sums.X[lo:hi], labels[lo:hi], sums.w[lo:hi], k, np)
        return part, close

    return labels, (best, runner), on_host_threads(share, n, workers)


def _chunk_rows(X: Any, xp: ModuleType) -> int:
    """Rows of ``X`` per chunk of a pass over it by differences.

    Cache-sized (``_CACHE_ELEMENTS``) on a host, where whole-array
    temporaries page-fault; all of them on an accelerator.
    """
    from xplearn._primitives import is_accelerator

    n, d = int(X.shape[0]), int(X.shape[1])
    if is_accelerator(xp, device_of(X)):
        return max(1, n)
    return max(1, _CACHE_ELEMENTS // max(1, d))


def _own_sq_dist(X: Any, centers: Any, labels: Any, xp: ModuleType) -> Any:
    """Squared distance of every row to its own centre, by differences.

    On a host a cache-sized chunk of rows at a time: the whole-array
    temporaries (the gathered centres and the differences, two copies of
    ``X``) page-faulted: at 200 000 x 128, 58-66 ms against 24-29 in
    chunks, and once 1.6 s (an empty cluster's relocation in a 20-iteration
    fit, while this VM's memory was being reclaimed: 2.7 s of system
    time).  The chunks' sums are the same.
    """
    n = X.shape[0]
    step = _chunk_rows(X, xp)
    parts = []
    for i in range(0, n, step):
        j = min(i + step, n)
        own = xp.take(centers, labels[i:j], axis=0)
        parts.append(sq_row_norms(X[i:j, :] - own, xp))
    return parts[0] if len(parts) == 1 else xp.concat(parts)


def _inertia(data: _Data, centers: Any, labels: Any, xp: ModuleType) -> float:
    """Sum of the weighted squared distances to the own centres (numpy: threaded)."""
    X, w = data.X, data.w
    # On a host a cache-sized chunk at a time: the whole-share temporaries
    # (two copies of X) page-faulted, 133 ms at 200 000 x 128 against 13.
    step = _chunk_rows(X, xp)

    def part(lo: int, hi: int) -> float:
        total = 0.0
        for i in range(lo, hi, step):
            j = min(i + step, hi)
            d = _own_sq_dist(X[i:j, :], centers, labels[i:j], xp)
            total += float(xp.sum(d * w[i:j]))
        return total

    workers = data.workers if namespace_name(xp) == "numpy" else 1
    return float(sum(on_host_threads(part, X.shape[0], workers)))


def _new_centers(
    data: _Data, labels: Any, centers: Any, sums: Any, totals: Any, xp: ModuleType
) -> Any:
    """Run the M-step: weighted means, empty clusters relocated.

    A relocation changes the centres only: labels (and so running sums by
    label) stay as they are, as in scikit-learn.  A cluster still empty
    (more clusters than distinct points) is placed on the heaviest cluster's
    centre (the first of equal weights), as scikit-learn 1.9 does, not at
    the origin.
    """
    if bool(xp.any(totals == 0)):
        dist = _own_sq_dist(data.X, centers, labels, xp)
        sums, totals = _relocate_empty(data.X, data.w, labels, dist, sums, totals, xp)
    empty = totals == 0
    safe = xp.where(empty, xp.ones_like(totals), totals)
    new = xp.astype(sums / safe[:, None], data.X.dtype)
    if bool(xp.any(empty)):
        heaviest = xp.take(new, xp.reshape(xp.argmax(totals), (1,)), axis=0)
        new = xp.where(empty[:, None], heaviest, new)
    return new


def _step(
    data: _Data,
    labels: Any,
    labels_old: Any,
    centers: Any,
    sums: Any,
    totals: Any,
    xp: ModuleType,
) -> tuple[Any, float, bool]:
    """Run the M-step and what the stopping rule needs, with one host read.

    ``(new centres, centre shift, labels unchanged)``.  On an accelerator
    each read of a device value stalls the queue of launched work: the
    empty-cluster test, the shift and the label comparison travel together,
    and only a fit with an empty cluster (rare) reads again.
    """
    empty = totals == 0
    safe = xp.where(empty, xp.ones_like(totals), totals)
    new = xp.astype(sums / safe[:, None], data.X.dtype)
    dt = new.dtype
    parts = [xp.astype(xp.any(empty), dt), xp.sum((new - centers) ** 2)]
    if labels_old is not None:
        parts.append(xp.astype(xp.all(labels == labels_old), dt))
    flags = _host_floats(xp.stack(parts))
    if flags[0]:
        new = _new_centers(data, labels, centers, sums, totals, xp)
        flags[1] = float(xp.sum((new - centers) ** 2))
    return new, float(flags[1]), labels_old is not None and bool(flags[2])


def _converged(i: int, strict: bool, shift: float, tol: float, verbose: int) -> bool:
    """scikit-learn's stopping rule, with its messages under ``verbose``."""
    if strict:
        if verbose:
            print(f"Converged at iteration {i}: strict convergence.")
        return True
    if shift <= tol:
        if verbose:
            print(
                f"Converged at iteration {i}: center shift {shift} within "
                f"tolerance {tol}."
            )
        return True
    return False


def _lloyd(
    data: _Data,
    centers: Any,
    max_iter: int,
    tol: float,
    verbose: int,
    xp: ModuleType,
) -> tuple[Any, float, Any, int]:
    """One Lloyd run: (labels, inertia, centers, n_iter) as scikit-learn's."""
    if data.host is not None:  # float32 torch on the CPU: numpy's run on views
        return _on_host(_lloyd, data, centers, max_iter, tol, verbose)
    labels_old = None
    strict = False
    i = 0
    for i in range(max_iter):
        labels, sums, totals = _lloyd_pass(data, centers, xp)
        if verbose:
            print(f"Iteration {i}, inertia {_inertia(data, centers, labels, xp)}.")
        new, shift, strict = _step(data, labels, labels_old, centers, sums, totals, xp)
        centers = new
        if _converged(i, strict, shift, tol, verbose):
            break
        labels_old = labels
    if not strict:  # a last E-step, so that labels_ match cluster_centers_
        labels = _nearest(data, centers, xp)
    return labels, _inertia(data, centers, labels, xp), centers, i + 1


def _count(mask: Any, xp: ModuleType) -> int:
    """Count the entries of ``mask`` that hold.

    Not ``count_nonzero``: array-api-compat 1.11, the oldest we support,
    fails on it for torch.
    """
    return int(xp.sum(xp.astype(mask, index_dtype(xp, device_of(mask)))))


def _relocate_empty(
    X: Any,
    w: Any,
    labels: Any,
    dist: Any,
    sums: Any,
    totals: Any,
    xp: ModuleType,
) -> tuple[Any, Any]:
    """Move empty clusters to the points farthest from their centres.

    scikit-learn's rule: the farthest points (by distance to their own centre)
    leave their cluster and each becomes the centre of one empty cluster.
    Of equally far points the higher index goes first, as scikit-learn's
    ``argpartition`` picks on small arrays (``[0, 1, 1]`` from three equal
    centres: points 2 then 1).  The choice is made on the host from exact
    distances, so every backend takes the same one.
    """
    import numpy as np

    totals_h = _host_floats(totals)
    empty = np.flatnonzero(totals_h == 0)
    if empty.size == 0:
        return sums, totals
    dist_h = _host_floats(dist)
    if dist_h.max() == 0:
        # More clusters than distinct points: every point sits on its centre
        # and moving one would only empty another cluster (scikit-learn 1.9
        # leaves them; :func:`xplearn.cluster._lloyd._new_centers` places them).
        return sums, totals
    far = np.argsort(dist_h, kind="stable")[::-1][: empty.size].copy()
    sums_h, w_h, labels_h = _host_floats(sums), _host_floats(w), to_numpy(labels)
    X_far = _host_floats(xp.take(X, xp.asarray(far, device=device_of(X)), axis=0))
    for new, i, x in zip(empty, far, X_far, strict=True):
        old = labels_h[i]
        sums_h[old] -= x * w_h[i]
        sums_h[new] = x * w_h[i]
        totals_h[new] = w_h[i]
        totals_h[old] -= w_h[i]
    dev = device_of(X)
    return (
        xp.asarray(sums_h.astype(to_numpy(sums).dtype), device=dev),
        xp.asarray(totals_h.astype(to_numpy(totals).dtype), device=dev),
    )


def _put(a: Any, mask: Any, idx: Any, values: Any, xp: ModuleType) -> Any:
    """Set ``a[idx] = values``, where ``idx`` is ``nonzero(mask)``; return ``a``.

    numpy and torch write in place (the loops below own these arrays); other
    namespaces get a new array by a gather (the standard has no scatter).
    """
    if namespace_name(xp) in ("numpy", "torch"):
        a[idx] = values
        return a
    pos = xp.cumulative_sum(xp.astype(mask, idx.dtype)) - 1
    return xp.where(mask, xp.take(values, xp.clip(pos, min=0), axis=0), a)


def _nearest_two(data: _Data, rows: Any, Ca: Any, xp: ModuleType) -> tuple[Any, ...]:
    """Labels of ``rows``, and their best and runner-up expansion entries."""
    whole = rows.shape[0] == data.Xa.shape[0]  # every row, in order: no gather
    numpy = namespace_name(xp) == "numpy"
    Xa = data.Xa
    if not whole:
        Xa = _take_rows(Xa, rows) if numpy else xp.take(Xa, rows, axis=0)
    if not numpy:
        return _nearest_two_standard(Xa, Ca, xp)
    lab, (best, sec), _ = _numpy_nearest(Xa, Ca, data.workers, second=True)
    return lab, best, sec


def _nearest_two_standard(Xa: Any, Ca: Any, xp: ModuleType) -> tuple[Any, ...]:
    """Compute :func:`_nearest_two` in the standard: argmin, best, runner-up."""
    n, k = Xa.shape[0], Ca.shape[1]
    step = _tile_rows(xp, Xa, k)
    ix = index_dtype(xp, device_of(Xa))
    cols = xp.arange(k, dtype=ix, device=device_of(Xa))
    torch = namespace_name(xp) == "torch"
    parts = []
    for i in range(0, n, step):
        D = Xa[i : min(i + step, n), :] @ Ca
        if torch:  # values and first indices in one reduction, then in place
            best, lab = D.min(dim=1)
            second = D.scatter_(1, lab[:, None], float("inf")).amin(dim=1)
            parts.append((lab, best, second))
            continue
        lab = xp.astype(xp.argmin(D, axis=1), ix)
        taken = cols[None, :] == lab[:, None]
        best = xp.min(D, axis=1)
        second = xp.min(xp.where(taken, xp.full_like(D, xp.inf), D), axis=1)
        parts.append((lab, best, second))
    if len(parts) == 1:
        return parts[0]
    return tuple(xp.concat([p[j] for p in parts]) for j in range(3))


def _search_bounds(
    data: _Data, rows: Any, centers: Any, slack: float, xp: ModuleType
) -> tuple[Any, Any, Any]:
    """Label ``rows``, with upper bounds to their centres and lower to the rest.

    Rows whose runner-up is within the expansion's rounding of the winner are
    searched again by differences (:func:`_exact_labels`), so equal distances
    go to the lower index; their lower bound then comes from the winner's.
    """
    Ca, cc = _operands(data, centers, xp)
    labels, best, second = _nearest_two(data, rows, Ca, xp)
    whole = rows.shape[0] == data.XX.shape[0]  # every row, in order
    XX = data.XX if whole else xp.take(data.XX, rows, axis=0)
    err = slack * (XX + xp.max(cc))
    close = second - best <= err
    if bool(xp.any(close)):
        sub = xp.nonzero(close)[0]
        Xs = xp.take(data.X, xp.take(rows, sub, axis=0), axis=0)
        labels = _put(labels, close, sub, _exact_labels(Xs, centers, xp), xp)
        second = xp.where(close, best, second)
    upper = xp.sqrt(xp.clip(best + XX + err, min=0.0))
    lower = xp.sqrt(xp.clip(second + XX - err, min=0.0))
    return labels, upper, lower


def _exact_labels(Xs: Any, centers: Any, xp: ModuleType) -> Any:
    """Nearest centre of a few rows by differences (first minimum on ties)."""
    n, (k, d) = Xs.shape[0], centers.shape
    step = max(1, _CACHE_ELEMENTS // (k * d))
    ix = index_dtype(xp, device_of(Xs))
    parts = []
    for i in range(0, n, step):
        diff = Xs[i : min(i + step, n), None, :] - centers[None, :, :]
        parts.append(xp.astype(xp.argmin(xp.sum(diff * diff, axis=2), axis=1), ix))
    return parts[0] if len(parts) == 1 else xp.concat(parts)
