"""``algorithm="elkan"``: Lloyd's labels with far fewer distance computations.

Points whose triangle-inequality bounds say they cannot change cluster are
skipped; the others are searched again exactly (same labels as ``_lloyd``).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from xplearn._namespace import device_of, namespace_name
from xplearn._primitives import (
    segment_sums,
    segment_weights,
    sq_row_norms,
)
from xplearn._validation import float_dtypes, index_dtype
from xplearn.neighbors._search import (
    rounding_bound,
)

from ._lloyd import (
    _all_sums,
    _converged,
    _count,
    _Data,
    _inertia,
    _lloyd,
    _new_centers,
    _on_host,
    _own_sq_dist,
    _put,
    _search_bounds,
)


def _half_gaps(centers: Any, slack: float, xp: ModuleType) -> Any:
    """Halve the distance from each centre to its nearest other centre.

    A lower bound: the expansion's rounding is subtracted first.
    """
    CC = sq_row_norms(centers, xp)
    D = CC[:, None] + CC[None, :] - 2.0 * (centers @ centers.T)
    k = centers.shape[0]
    eye = xp.eye(k, dtype=xp.bool, device=device_of(centers))
    D = xp.where(eye, xp.full_like(D, xp.inf), D)
    low = xp.min(D, axis=1) - 2.0 * slack * xp.max(CC)
    return 0.5 * xp.sqrt(xp.clip(low, min=0.0))


def _elkan(
    data: _Data,
    centers: Any,
    max_iter: int,
    tol: float,
    verbose: int,
    xp: ModuleType,
) -> tuple[Any, float, Any, int]:
    """Lloyd's iterations that skip the points which cannot change cluster.

    ``algorithm="elkan"``: the labels, centres and ``n_iter`` of
    :func:`_lloyd`, with the triangle-inequality bounds in Hamerly's form (one
    upper bound to the own centre and one lower bound to every other centre,
    per point), which vectorises where Elkan's k lower bounds per point would
    not.  A point is looked at only when its upper bound exceeds both its
    lower bound and half the gap from its centre to the nearest other centre;
    when few are, their upper bounds are first made exact, and only the points
    still in doubt are searched against every centre.  The sums per centre
    are updated by the points that moved, in float64 where the device has it
    (recomputed in full otherwise).  The rounding of the expansion is taken
    off every lower bound, so no skip rests on rounding.  A float32 torch
    CPU fit runs on numpy's side of its data (:func:`._lloyd._host_view`).
    """
    if data.host is not None:  # float32 torch on the CPU: numpy's run on views
        return _on_host(_elkan, data, centers, max_iter, tol, verbose)
    X, w = data.X, data.w
    k = centers.shape[0]
    if k == 1 or namespace_name(xp) == "jax":
        # jax compiles every operation for each new shape, and the points in
        # doubt are a new count every iteration (a 4-second fit of digits
        # took 100 s): there Lloyd's iterations, with the same answer, win.
        return _lloyd(data, centers, max_iter, tol, verbose, xp)
    dev = device_of(X)
    acc = float_dtypes(xp, dev)[0]
    incremental = acc == xp.float64
    slack = 2.0 * rounding_bound(xp, X.dtype, X.shape[1])

    def search(rows: Any, centers: Any) -> tuple[Any, Any, Any]:
        return _search_bounds(data, rows, centers, slack, xp)

    every = xp.arange(X.shape[0], dtype=index_dtype(xp, dev), device=dev)
    labels, upper, lower = search(every, centers)
    sums, totals = (xp.astype(a, acc) for a in _all_sums(data, labels, k, xp))
    # Unit weights keep running totals exact (whole numbers in float64);
    # others are summed afresh, so that an empty cluster reads exactly 0.
    unit = incremental and bool(xp.all(w == 1))
    strict = False
    i = 0
    for i in range(max_iter):
        moved = True
        refresh = not incremental
        if i > 0:
            labels, upper, lower, change = _bounded_step(
                data, centers, labels, upper, lower, search, slack, xp
            )
            moved = change is not None
            # Past an eighth of the points moving, summing all is cheaper.
            if moved and 8 * change[0].shape[0] > X.shape[0]:
                refresh = True
            elif moved and not refresh:
                d_sums, d_totals = _moved_sums(data, change, k, acc, xp)
                sums, totals = sums + d_sums, totals + d_totals
        if refresh and moved:
            sums, totals = (xp.astype(a, acc) for a in _all_sums(data, labels, k, xp))
        elif not unit:
            totals = xp.astype(segment_weights(labels, w, k, xp), acc)
        new = _new_centers(data, labels, centers, sums, totals, xp)
        if verbose:
            print(f"Iteration {i}, inertia {_inertia(data, centers, labels, xp)}.")
        delta = xp.sqrt(xp.sum((new - centers) ** 2, axis=1))
        shift = float(xp.sum(delta * delta))
        upper = upper + xp.take(delta, labels, axis=0)
        lower = lower - _largest_other(delta, labels, xp)
        centers = new
        strict = i > 0 and not moved
        if _converged(i, strict, shift, tol, verbose):
            break
    if not strict:
        labels, *_ = _bounded_step(
            data, centers, labels, upper, lower, search, slack, xp
        )
    return labels, _inertia(data, centers, labels, xp), centers, i + 1


def _bounded_step(
    data: _Data,
    centers: Any,
    labels: Any,
    upper: Any,
    lower: Any,
    search: Any,
    slack: float,
    xp: ModuleType,
) -> tuple[Any, Any, Any, Any]:
    """Run the bounded E-step: (labels, upper, lower, change or None).

    ``change`` is (rows, old labels, new labels) of the points that moved.
    """
    gap = xp.maximum(xp.take(_half_gaps(centers, slack, xp), labels, axis=0), lower)
    mask = upper > gap
    count = _count(mask, xp)
    if count == 0:
        return labels, upper, lower, None
    n = labels.shape[0]
    if 2 * count > n:
        # Most points are loose: search them all, which also tightens the
        # bounds of the rest, and spares gathering and scattering rows.
        every = xp.arange(n, dtype=labels.dtype, device=device_of(labels))
        new, upper, lower = search(every, centers)
        changed = new != labels
        if not bool(xp.any(changed)):
            return new, upper, lower, None
        pick = xp.nonzero(changed)[0]
        old = xp.take(labels, pick, axis=0)
        return new, upper, lower, (pick, old, xp.take(new, pick, axis=0))
    rows = xp.nonzero(mask)[0]
    if 4 * count < n:
        # Few loose points: make their upper bound exact first.
        Xr, own = xp.take(data.X, rows, axis=0), xp.take(labels, rows, axis=0)
        exact = xp.sqrt(_own_sq_dist(Xr, centers, own, xp))
        upper = _put(upper, mask, rows, exact, xp)
        # The others keep upper <= gap, so this is the loose points whose
        # exact distance to their own centre still exceeds the bound.
        mask = upper > gap
        if not bool(xp.any(mask)):
            return labels, upper, lower, None
        rows = xp.nonzero(mask)[0]
    old = xp.take(labels, rows, axis=0)
    new, up, low = search(rows, centers)
    labels = _put(labels, mask, rows, new, xp)
    upper = _put(upper, mask, rows, up, xp)
    lower = _put(lower, mask, rows, low, xp)
    changed = new != old
    if not bool(xp.any(changed)):
        return labels, upper, lower, None
    pick = xp.nonzero(changed)[0]
    moved = (xp.take(rows, pick, axis=0), xp.take(old, pick, axis=0))
    return labels, upper, lower, (*moved, xp.take(new, pick, axis=0))


def _moved_sums(
    data: _Data, change: Any, k: int, acc: Any, xp: ModuleType
) -> tuple[Any, Any]:
    """Sum what the moved points add to their new centres and take from the old."""
    rows, old, new = change
    Xr = xp.astype(xp.take(data.X, rows, axis=0), acc)
    wr = xp.astype(xp.take(data.w, rows, axis=0), acc)
    add, add_w = segment_sums(Xr, new, wr, k, xp)
    sub, sub_w = segment_sums(Xr, old, wr, k, xp)
    return add - sub, add_w - sub_w


def _largest_other(delta: Any, labels: Any, xp: ModuleType) -> Any:
    """Per point, the largest shift among the centres other than its own."""
    top = xp.argmax(delta)
    first = xp.max(delta)
    rest = xp.where(
        xp.arange(delta.shape[0], device=device_of(delta)) == top,
        xp.zeros_like(delta),
        delta,
    )
    return xp.where(labels == top, xp.max(rest), first)
