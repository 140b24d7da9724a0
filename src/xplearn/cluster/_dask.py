"""KMeans on dask arrays without gathering the data (issue 14).

The data stays where it is, in the blocks of the caller's dask array (on the
workers of a ``dask.distributed`` cluster, or in this process); only
``k × d`` sums, a few rows and per-block digests ever come back.

* **Lloyd**: each iteration is one ``dask.compute`` of a graph whose tasks run
  the numpy E-step and the M-step's weighted sums on one block each
  (``_lloyd._lloyd_pass``, the kernel of the in-memory fit), reduced by a tree
  (``split_every`` blocks per node) to the ``k × d`` sums and ``k`` weights.
  The new centres, the empty-cluster relocation and the stopping rule run on
  the host on those, as scikit-learn's.  Strict convergence (labels
  unchanged) is decided from a 16-byte digest of each block's labels, so the
  labels are never stored nor sent.  The farthest points that an empty
  cluster would take are found in the same pass: a block where some cluster
  is empty locally sends its own farthest few (a cluster empty globally is
  empty in every block), so a relocation costs no second round.
* **k-means++**: scikit-learn's greedy seeding over blocks, with the same
  random draws as the in-memory fit (``random_state`` drawn on the host): a
  draw is located in the per-block totals of the potential on the host, then
  within its block on the worker.  Two rounds per centre (one ``compute`` for
  the candidates' potentials, one ``persist`` of the distances to the
  closest centre, which stay on the workers).
* **Frame**: as in memory, the data is clustered centred on its mean and at
  an exact power-of-two scale (``_scaling``); each task centres its own block
  (the data is never copied in that frame).

Costs: three rounds to validate and set up (finiteness and range; mean;
tolerance), ``2·(k − 1) + 1`` for k-means++, one per Lloyd iteration and one
at the end (inertia and cluster counts).  ``labels_`` is a lazy dask array
with the chunks of ``X`` (the last E-step, recomputed from ``X`` when
computed); ``cluster_centers_`` a one-block dask array.  Persist ``X`` on the
cluster first (``X = X.persist()``), or every round reads it again from its
source.

``MiniBatchKMeans`` samples its batches by index on the host, as in memory,
and gathers those rows only (many batches per round).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from xplearn._namespace import backend_name
from xplearn._scaling import ldexp, safe_range

# Blocks combined per node of the reduction tree.
_SPLIT_EVERY = 8


def is_dask(x: Any) -> bool:
    """Whether ``x`` is a dask array."""
    return backend_name(x) == "dask"


# --------------------------------------------------------------------------
# Validation and the frame
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """Where the iterations run: ``(X · 2**-e) − mean`` in ``dtype``.

    A plain object, not a tuple: dask passes it to the tasks as it is.
    """

    dtype: Any
    e: int
    mean: Any  # host array, shape (d,), at the scale 2**-e


def _centred(Xb: Any, frame: Frame) -> Any:
    """One block in the frame: cast, scaled by ``2**-e``, centred."""
    import array_api_compat.numpy as npx

    from xplearn._scaling import times_pow2

    X = Xb.astype(frame.dtype, copy=False)
    return times_pow2(X, -frame.e, npx) - frame.mean


def check_dask_input(estimator: Any, X: Any) -> tuple[Any, Any]:
    """Validate a dask ``X`` for fit; return ``(X, compute dtype)``, nothing computed.

    Shape and dtype only (the values are checked by :func:`setup` in its
    first round); ``X`` comes back with one block of columns.
    """
    import array_api_compat.numpy as npx
    import numpy as np
    from sklearn.utils.validation import validate_data

    from xplearn._validation import check_non_empty, compute_dtype

    if X.ndim > 2:
        msg = (
            f"Found array with dim {X.ndim}, while a 2D array was expected: "
            f"X has shape {tuple(X.shape)}. Reshape it to (n_samples, n_features)."
        )
        raise ValueError(msg)
    if X.ndim != 2:
        msg = (
            f"Expected 2D array, got {X.ndim}D array instead: X has shape "
            f"{tuple(X.shape)}. Reshape your data either using "
            "array.reshape(-1, 1) if your data has a single feature or "
            "array.reshape(1, -1) if it contains a single sample."
        )
        raise ValueError(msg)
    if any(math.isnan(c) for c in X.chunks[0]):
        msg = (
            "X has blocks of unknown length (a dask array from a boolean mask "
            "or a dataframe); call X.compute_chunk_sizes() first."
        )
        raise ValueError(msg)
    check_non_empty(X)
    dtype = compute_dtype(npx, np.dtype(X.dtype), "cpu")
    validate_data(estimator, X, skip_check_array=True, reset=True)
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return X, np.dtype(dtype)


def _weights(sample_weight: Any, X: Any, dtype: Any) -> Any:
    """``sample_weight`` as a dask array chunked as ``X``'s rows, or None."""
    import dask.array as da
    import numpy as np

    from xplearn._convert import to_numpy

    if sample_weight is None:
        return None
    n = X.shape[0]
    if isinstance(sample_weight, int | float) and not isinstance(sample_weight, bool):
        return da.full((n,), float(sample_weight), dtype=dtype, chunks=X.chunks[0])
    w = sample_weight if is_dask(sample_weight) else to_numpy(sample_weight)
    if w.ndim != 1 or w.shape[0] != n:
        msg = f"sample_weight.shape == {tuple(w.shape)}, expected ({n},)."
        raise ValueError(msg)
    if not is_dask(w):
        return da.from_array(np.asarray(w, dtype=dtype), chunks=(X.chunks[0],))
    return w.astype(dtype).rechunk((X.chunks[0],))


def _weight_blocks(w: Any, X: Any) -> list[Any]:
    """Delayed weight blocks aligned with ``X``'s (None entries: unit weights)."""
    if w is None:
        return [None] * len(X.chunks[0])
    return list(w.to_delayed().ravel())


def _block_w(wb: Any, n: int, dtype: Any) -> Any:
    import numpy as np

    return np.ones(n, dtype=dtype) if wb is None else wb


def setup(
    X: Any, w: Any, dtype: Any, *, centre: bool = True, given: Any = None
) -> tuple[Frame, Any]:
    """Check the values of ``X`` and ``w``; return the frame and weight totals.

    Two rounds: (1) finiteness, range and the weights' checks; (2) the mean
    of the scaled data (not without ``centre``).  The weight totals are per
    block, in float64.  ``given`` (host initial centres) joins the range.
    """
    import dask
    import dask.array as da
    import numpy as np

    fin = da.isfinite(X).all(axis=1)
    checks: dict[str, Any] = {
        "bad": (~fin).sum(),
        "first": da.argmin(fin),
        "hi": da.nanmax(da.where(da.isfinite(X), X, -np.inf).astype(dtype)),
        "lo": da.nanmin(da.where(da.isfinite(X), X, np.inf).astype(dtype)),
    }
    if w is not None:
        checks["w_finite"] = da.isfinite(w).all()
        checks["w_neg"] = (w < 0).any()
        checks["w_pos"] = (w > 0).any()
        checks["w_blocks"] = w.astype(np.float64).map_blocks(
            lambda b: np.array([b.sum()]), chunks=((1,) * len(X.chunks[0]),)
        )
    (got,) = dask.compute(checks)
    if int(got["bad"]):
        row = int(got["first"])
        msg = (
            f"Input X contains NaN or infinity: {int(got['bad'])} row(s) with "
            f"non-finite values, the first at row {row}. Remove those samples or "
            "impute them (e.g. sklearn.impute.SimpleImputer) before calling "
            "xplearn."
        )
        raise ValueError(msg)
    if w is not None:
        if not bool(got["w_finite"]):
            msg = "Input sample_weight contains NaN or infinity; pass finite weights."
            raise ValueError(msg)
        if bool(got["w_neg"]):
            msg = (
                "Negative values in data passed to sample_weight: weights must be >= 0."
            )
            raise ValueError(msg)
        if not bool(got["w_pos"]):
            msg = "Sample weights must contain at least one non-zero number."
            raise ValueError(msg)
        w_blocks = np.asarray(got["w_blocks"], dtype=np.float64)
    else:
        w_blocks = np.asarray(X.chunks[0], dtype=np.float64)
    M = max(float(got["hi"]), -float(got["lo"]))
    if given is not None:
        M = max(M, float(np.max(np.abs(given))))
    e = _exponent(M, dtype, X.shape[1])
    frame0 = Frame(dtype, e, np.zeros(X.shape[1], dtype=dtype))
    if not centre:
        return frame0, w_blocks
    scaled = X.map_blocks(_centred, frame0, dtype=dtype)
    (mean,) = dask.compute(scaled.mean(axis=0, dtype=dtype))
    return Frame(dtype, e, np.asarray(mean, dtype=dtype)), w_blocks


def _exponent(M: float, dtype: Any, d: int) -> int:
    """:func:`xplearn._scaling.scale_exponent` from the largest magnitude."""
    import array_api_compat.numpy as npx

    if M == 0.0 or not math.isfinite(M):
        return 0
    low, high = safe_range(dtype, npx, d)
    if low <= M <= high:
        return 0
    return math.frexp(M)[1]


def _tree(parts: list[Any], combine: Any, *args: Any) -> Any:
    """Reduce delayed ``parts`` in order by a tree of ``combine`` tasks."""
    from dask import delayed

    while len(parts) > 1:
        parts = [
            delayed(combine, pure=True)(parts[i : i + _SPLIT_EVERY], *args)
            for i in range(0, len(parts), _SPLIT_EVERY)
        ]
    return parts[0]


# --------------------------------------------------------------------------
# Queries: predict, transform, score
# --------------------------------------------------------------------------


def uses_dask(estimator: Any, X: Any) -> bool:
    """Whether a query runs here: dask query or centres fitted on dask."""
    centers = getattr(estimator, "cluster_centers_", None)
    return is_dask(X) or (centers is not None and is_dask(centers))


def host_centers(C: Any) -> Any:
    """Return the fitted centres on the host.

    ``cluster_centers_`` fitted on dask is one block that holds a host
    array: it is read here, in this process, without a round to a cluster.
    """
    import numpy as np

    from xplearn._convert import to_numpy

    if is_dask(C):
        return np.asarray(C.compute(scheduler="sync"))
    return np.asarray(to_numpy(C))


def _query(estimator: Any, X: Any) -> tuple[Any, Any, Any]:
    """(edge answering in X's framework, X as dask, host centres)."""
    import dask.array as da
    import numpy as np
    from sklearn.utils.validation import check_is_fitted

    from xplearn._convert import to_numpy
    from xplearn._dispatch import Edge
    from xplearn._validation import check_array

    check_is_fitted(estimator, "cluster_centers_")
    C = host_centers(estimator.cluster_centers_)
    edge, Xc = Edge.of(X)
    if not is_dask(Xc):
        Xc = check_array(Xc, edge.xp)
        Xc = da.from_array(np.asarray(to_numpy(Xc)))
    else:  # one round: NaN/inf raise here, as on every backend (contract 7)
        Xc = check_array(Xc, edge.xp)
    from sklearn.utils.validation import validate_data

    validate_data(estimator, X, skip_check_array=True, reset=False)
    if len(Xc.chunks[1]) > 1:
        Xc = Xc.rechunk({1: -1})
    return edge, Xc.astype(C.dtype), C


def _checked(Xb: Any) -> Any:
    import numpy as np

    if not np.all(np.isfinite(Xb)):
        msg = (
            "Input X contains NaN or infinity. Remove those samples or impute "
            "them (e.g. sklearn.impute.SimpleImputer) before calling xplearn."
        )
        raise ValueError(msg)
    return Xb


def _predict_block(Xb: Any, C: Any) -> Any:
    import array_api_compat.numpy as npx
    import numpy as np

    from xplearn.neighbors._search import nearest_center

    return np.asarray(nearest_center(_checked(Xb), C, npx)[0], dtype=np.int64)


def _transform_block(Xb: Any, C: Any) -> Any:
    import array_api_compat.numpy as npx

    from xplearn.metrics import _pairwise

    return _pairwise(_checked(Xb), C, "euclidean", 2.0, npx, same=False)


def _score_block(Xb: Any, wb: Any, C: Any) -> float:
    import array_api_compat.numpy as npx
    import numpy as np

    from xplearn.neighbors._search import nearest_center_scaled

    _, dist, e = nearest_center_scaled(_checked(Xb), C, npx)
    w = _block_w(wb, Xb.shape[0], np.float64)
    return ldexp(float(np.dot(np.asarray(dist, dtype=np.float64), w)), 2 * e)


def predict(estimator: Any, X: Any) -> Any:
    """Labels of a dask (or any) ``X`` against centres fitted on dask."""
    import numpy as np

    edge, Xc, C = _query(estimator, X)
    labels = Xc.map_blocks(_predict_block, C, drop_axis=1, dtype=np.int64)
    return edge.to_caller(labels)


def transform(estimator: Any, X: Any) -> Any:
    """Distances to the centres, blockwise."""
    edge, Xc, C = _query(estimator, X)
    D = Xc.map_blocks(
        _transform_block, C, chunks=(Xc.chunks[0], (C.shape[0],)), dtype=C.dtype
    )
    return edge.to_caller(D)


def score(estimator: Any, X: Any, sample_weight: Any) -> float:
    """Opposite of the inertia, one compute."""
    import dask
    from dask import delayed

    _, Xc, C = _query(estimator, X)
    w = _weights(sample_weight, Xc, C.dtype)
    parts = [
        delayed(_score_block, pure=True)(xb, wb, C)
        for xb, wb in zip(Xc.to_delayed().ravel(), _weight_blocks(w, Xc), strict=True)
    ]
    (total,) = dask.compute(_tree(parts, sum))
    return -float(total)


# --------------------------------------------------------------------------
# The estimators' entry points (the fits live in their own modules)
# --------------------------------------------------------------------------


def fit_kmeans(estimator: Any, X: Any, sample_weight: Any, n_init: int) -> Any:
    """``KMeans.fit`` on a dask ``X`` (:mod:`._dask_lloyd`)."""
    from ._dask_lloyd import fit_kmeans as fit

    return fit(estimator, X, sample_weight, n_init)


def fit_minibatch(estimator: Any, X: Any, sample_weight: Any) -> Any:
    """``MiniBatchKMeans.fit`` on a dask ``X`` (:mod:`._dask_minibatch`)."""
    from ._dask_minibatch import fit_minibatch as fit

    return fit(estimator, X, sample_weight)


def partial_fit_minibatch(estimator: Any, X: Any, sample_weight: Any) -> Any:
    """``MiniBatchKMeans.partial_fit`` of one dask batch (:mod:`._dask_minibatch`)."""
    from ._dask_minibatch import partial_fit_minibatch as fit

    return fit(estimator, X, sample_weight)
