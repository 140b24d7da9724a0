"""MiniBatchKMeans on dask: the in-memory steps on batches gathered by index.

scikit-learn's batches are random rows of the whole data set, drawn on the
host; only those rows are gathered, many batches per round (issue 14).
"""

from __future__ import annotations

import copy
import math
from typing import Any

from xplearn._scaling import ldexp

from ._dask import (
    Frame,
    _block_w,
    _centred,
    _tree,
    _weight_blocks,
    _weights,
    check_dask_input,
    host_centers,
    is_dask,
    setup,
)

# --------------------------------------------------------------------------
# MiniBatchKMeans
# --------------------------------------------------------------------------

# Bytes of batch rows gathered per round.
_PREFETCH_BYTES = 2**26


class _Batches:
    """Rows of ``X`` drawn by index on the host, gathered many batches a round.

    The draws are scikit-learn's (``rs.choice(n, batch, p=p)``, one per
    step); the batches of the next steps are drawn ahead from a copy of the
    generator and gathered in one round.  A step whose draw differs (the
    reassignment drew from the generator in between) gathers again from
    there, so the sequence is exactly the in-memory one.
    """

    def __init__(self, X: Any, frame: Frame, p: Any, batch: int) -> None:
        self.X, self.frame, self.p, self.batch = X, frame, p, batch
        size = batch * X.shape[1] * frame.dtype.itemsize
        self.window = max(1, _PREFETCH_BYTES // max(1, size))
        self.queue: list[tuple[Any, Any]] = []

    def _fill(self, rs: Any, steps: int) -> None:
        import numpy as np

        ahead = copy.deepcopy(rs)
        n = self.X.shape[0]
        draws = [
            ahead.choice(n, self.batch, p=self.p, replace=True)
            for _ in range(min(self.window, steps))
        ]
        rows, pos = gather_rows(self.X, np.concatenate(draws), self.frame)
        self.queue = [
            (d, rows[pos[i * self.batch : (i + 1) * self.batch]])
            for i, d in enumerate(draws)
        ]

    def next(self, rs: Any, steps_left: int) -> Any:
        """Return the next batch's rows (in the frame); draws from ``rs``."""
        import numpy as np

        state = rs.get_state()
        if not self.queue:
            self._fill(rs, steps_left)
        drawn = rs.choice(self.X.shape[0], self.batch, p=self.p, replace=True)
        if not np.array_equal(drawn, self.queue[0][0]):
            rs.set_state(state)
            self._fill(rs, steps_left)
            rs.choice(self.X.shape[0], self.batch, p=self.p, replace=True)
        return self.queue.pop(0)[1]


def gather_rows(X: Any, idx: Any, frame: Frame) -> tuple[Any, Any]:
    """Rows ``idx`` of ``X`` in one round (scaled, not centred): (unique rows, pos).

    ``rows[pos]`` are the rows in the order of ``idx``.
    """
    import array_api_compat.numpy as npx
    import dask
    import numpy as np

    from xplearn._scaling import times_pow2

    uniq, pos = np.unique(idx, return_inverse=True)
    (rows,) = dask.compute(X[uniq])
    rows = times_pow2(np.asarray(rows).astype(frame.dtype, copy=False), -frame.e, npx)
    return rows, pos.reshape(-1)


def _take(X: Any, idx: Any, frame: Frame) -> Any:
    rows, pos = gather_rows(X, idx, frame)
    return rows[pos]


def _given(est: Any, d: int, dtype: Any) -> Any:
    """Return the array ``init`` on the host in ``dtype`` (None otherwise), checked."""
    import numpy as np

    from xplearn._convert import to_numpy

    init = est.init
    if isinstance(init, str) or callable(init):
        return None
    given = np.asarray(to_numpy(init))
    k = est.n_clusters
    if given.ndim != 2 or given.shape[0] != k:
        msg = (
            f"The shape of the initial centers {given.shape} does not match "
            f"the number of clusters {k}."
        )
        raise ValueError(msg)
    if given.shape[1] != d:
        msg = (
            f"The shape of the initial centers {given.shape} does not match "
            f"the number of features of the data {d}."
        )
        raise ValueError(msg)
    return given.astype(dtype, copy=True)


def _start(est: Any, X: Any, w_np: Any, frame: Frame, given: Any, n_init: int) -> None:
    """``MiniBatchKMeans._start``: init on random rows, best on a validation set."""
    import array_api_compat.numpy as npx
    import numpy as np

    from xplearn._dispatch import Edge
    from xplearn._primitives import sq_row_norms
    from xplearn.neighbors._search import nearest_center

    n, rs = X.shape[0], est._rs
    valid = rs.randint(0, n, est._init_size)
    X_valid, w_valid = _take(X, valid, frame), w_np[valid]
    edge, _ = Edge.of(X_valid)
    best, best_inertia = None, math.inf
    for _ in range(n_init):
        if est._init_size < n:
            idx = rs.randint(0, n, est._init_size)
            Xs, ws = _take(X, idx, frame), w_np[idx]
        else:  # a data set of at most 3 batches
            Xs, ws = _take(X, np.arange(n), frame), w_np
        norms = sq_row_norms(Xs, npx)
        centers = est._init_centers(Xs, norms, ws, rs, npx, edge, given)
        _, dist = nearest_center(X_valid, centers, npx)
        inertia = float(np.sum(dist * w_valid))
        if best is None or inertia < best_inertia:
            best, best_inertia = centers, inertia
    est.cluster_centers_ = best
    est._counts = np.zeros(est.n_clusters, dtype=frame.dtype)
    est._n_since_last_reassign = 0
    est._ewa_inertia = None
    est._ewa_inertia_min = None
    est._no_improvement = 0


def _finish(est: Any, X: Any, w: Any, frame: Frame, total: float) -> None:
    """Labels (lazy) and inertia (one round); centres back in X's units."""
    import array_api_compat.numpy as npx
    import dask
    import dask.array as da
    import numpy as np

    from xplearn._scaling import times_pow2

    est._n_features_out = est.n_clusters
    C = np.asarray(est.cluster_centers_)
    if est.compute_labels:
        Cd = dask.delayed(C)
        parts = [
            dask.delayed(_minibatch_inertia, pure=True)(xb, wb, Cd, frame)
            for xb, wb in zip(X.to_delayed().ravel(), _weight_blocks(w, X), strict=True)
        ]
        (inertia,) = dask.compute(_tree(parts, sum))
        est.inertia_ = ldexp(float(inertia), 2 * frame.e)
        est.labels_ = X.map_blocks(
            _minibatch_labels, C, frame, drop_axis=1, dtype=np.int64
        )
    elif est._ewa_inertia is not None:
        est.inertia_ = ldexp(est._ewa_inertia * total, 2 * frame.e)
    centers = times_pow2(C, frame.e, npx)
    est.cluster_centers_ = da.from_array(centers, chunks=centers.shape)


def fit_minibatch(estimator: Any, X: Any, sample_weight: Any) -> Any:
    """``MiniBatchKMeans.fit`` on a dask ``X``: the in-memory steps on batches.

    Rounds: the values' checks, the weights (only when given), the
    validation and initialisation rows, the batches (a window of
    ``_PREFETCH_BYTES`` a round, again after a reassignment drew from the
    generator) and the final inertia.
    """
    import array_api_compat.numpy as npx
    import dask
    import numpy as np

    from xplearn._scaling import times_pow2

    from ._checks import _check_n_clusters
    from ._init import _check_random_state

    est = estimator
    n_init = est._check_params()
    X, dtype = check_dask_input(est, X)
    n = X.shape[0]
    w = _weights(sample_weight, X, dtype)
    given = _given(est, X.shape[1], dtype)
    frame, _ = setup(X, w, dtype, centre=False, given=given)
    if given is not None:
        given = times_pow2(given, -frame.e, npx)
    est._scale = frame.e
    _check_n_clusters(est.n_clusters, n)
    est._batch_size, est._init_size = est._sizes(n)
    est._tol = 0.0
    if est.tol:
        scaled = X.map_blocks(_centred, frame, dtype=dtype)
        (var,) = dask.compute(scaled.var(axis=0).mean())
        est._tol = float(var) * est.tol
    est._rs = rs = _check_random_state(est.random_state)
    # The draws need every weight on the host: n floats (never X), none when
    # the weights are all one.
    if w is None:
        w_host = np.ones(n)
    else:
        (w_host,) = dask.compute(w.astype(np.float64))
    _start(est, X, w_host.astype(dtype), frame, given, n_init)
    n_steps = (int(est.max_iter) * n) // est._batch_size
    total = float(w_host.sum())
    batches = _Batches(X, frame, w_host / total, est._batch_size)
    unit = np.ones(est._batch_size, dtype=dtype)
    i = 0
    for i in range(n_steps):
        Xb = batches.next(rs, n_steps - i)
        inertia = est._step(Xb, unit, npx, est._random_reassign(npx))
        if est._converged(i, n_steps, n, inertia):
            break
    est.n_steps_ = i + 1
    est.n_iter_ = math.ceil((i + 1) * est._batch_size / n)
    _finish(est, X, w, frame, total)
    return est


def _minibatch_labels(Xb: Any, C: Any, frame: Frame) -> Any:
    import array_api_compat.numpy as npx
    import numpy as np

    from xplearn.neighbors._search import nearest_center

    return np.asarray(nearest_center(_centred(Xb, frame), C, npx)[0], dtype=np.int64)


def _minibatch_inertia(Xb: Any, wb: Any, C: Any, frame: Frame) -> float:
    import array_api_compat.numpy as npx
    import numpy as np

    from xplearn.neighbors._search import nearest_center

    _, dist = nearest_center(_centred(Xb, frame), C, npx)
    w = _block_w(wb, Xb.shape[0], np.float64)
    return float(np.dot(np.asarray(dist, dtype=np.float64), w))


def partial_fit_minibatch(estimator: Any, X: Any, sample_weight: Any) -> Any:
    """``MiniBatchKMeans.partial_fit`` of one dask batch.

    A mini-batch is sized for one machine: it is computed here and the step
    runs as in memory; the fitted centres stay a dask array.
    """
    import dask.array as da
    import numpy as np

    from xplearn._convert import to_numpy

    est = estimator
    if hasattr(est, "cluster_centers_"):
        est.cluster_centers_ = host_centers(est.cluster_centers_)
    w = sample_weight
    if w is not None and is_dask(w):
        w = to_numpy(w)
    est.partial_fit(np.asarray(X.compute()), sample_weight=w)
    C = np.asarray(est.cluster_centers_)
    est.cluster_centers_ = da.from_array(C, chunks=C.shape)
    est.labels_ = da.from_array(np.asarray(est.labels_), chunks=(X.chunks[0],))
    return est
