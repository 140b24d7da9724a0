"""Targets of the neighbours estimators: label encoding, votes and averages.

Numeric labels (ints, floats, bools) in any framework are encoded on the
compute device (``unique_values`` + ``searchsorted``); other labels (strings,
objects) are encoded on the host with numpy and their ``classes_`` is a numpy
array, as scikit-learn has it.
"""

from __future__ import annotations

import warnings
from types import ModuleType
from typing import Any

from ._convert import to_namespace, to_numpy
from ._dispatch import Edge
from ._namespace import backend_name, device_of, is_lazy
from ._primitives import working_memory_bytes
from ._validation import check_finite, index_dtype


def _is_numeric_labels(y: Any) -> bool:
    kind = backend_name(y)
    if kind in {"numpy", "sequence", "pandas"}:
        import numpy as np

        return np.asarray(y).dtype.kind in "biuf"
    if kind == "tensorflow":
        return bool(y.dtype.is_floating or y.dtype.is_integer or y.dtype.is_bool)
    return True


def check_targets(
    y: Any, edge: Edge, n_samples: int, *, numeric: bool
) -> tuple[Any, bool]:
    """``y`` as a 2-D array (n_samples, n_outputs) and whether it was 2-D.

    ``numeric`` targets (regression) follow ``X`` to the compute namespace;
    labels stay wherever :func:`encode_labels` wants them.  Whether it was
    2-D: a regressor's column vector counts as 2-D, a classifier's does not.
    """
    if y is None:
        msg = "requires y to be passed, but the target y is None."
        raise ValueError(msg)
    if numeric or _is_numeric_labels(y):
        y = edge.follow(y, "y")
        if is_lazy(edge.xp):
            y = to_numpy(y)
        xp = edge.xp if not is_lazy(edge.xp) else _numpy_xp()
    else:
        import numpy as np

        y = np.asarray(to_numpy(y))
        xp = _numpy_xp()
    if y.ndim not in (1, 2):
        msg = (
            f"y must be 1-D or 2-D (n_samples, n_outputs); got shape {tuple(y.shape)}."
        )
        raise ValueError(msg)
    if y.shape[0] != n_samples:
        msg = (
            "Found input variables with inconsistent numbers of samples: "
            f"[{n_samples}, {y.shape[0]}]. X and y need one row per sample."
        )
        raise ValueError(msg)
    # A column vector stays 2-D for a regressor (predictions (n, 1), as
    # scikit-learn's); a classifier ravels it, with scikit-learn's warning.
    outputs_2d = y.ndim == 2 and (numeric or y.shape[1] != 1)
    if y.ndim == 2 and y.shape[1] == 1 and not numeric:
        from sklearn.exceptions import DataConversionWarning

        warnings.warn(
            "A column-vector y was passed when a 1d array was expected. Please "
            "change the shape of y to (n_samples,), for example using ravel().",
            DataConversionWarning,
            stacklevel=4,
        )
    if y.ndim == 1:
        y = xp.reshape(y, (-1, 1))
    if xp.isdtype(y.dtype, "real floating"):
        check_finite(y, xp, "y")
    return y, outputs_2d


def _numpy_xp() -> ModuleType:
    import array_api_compat.numpy as np_xp

    return np_xp


def encode_labels(y2: Any) -> tuple[list[Any], Any]:
    """Classes of each output and the labels as int64 class indices.

    ``y2`` is (n_samples, n_outputs), numeric in the compute namespace or
    numpy of any dtype.  Returns (list of classes per output, encoded (n,
    n_outputs) int64 in ``y2``'s namespace).
    """
    import array_api_compat

    xp = array_api_compat.array_namespace(y2)
    if xp.isdtype(y2.dtype, "real floating") and bool(xp.any(y2 != xp.round(y2))):
        msg = (
            "Unknown label type: continuous. Classifiers need discrete labels; "
            "for a continuous target use KNeighborsRegressor."
        )
        raise ValueError(msg)
    if backend_name(y2) == "numpy" and y2.dtype.kind not in "biuf":
        import numpy as np

        classes, codes = [], []
        for j in range(y2.shape[1]):
            c, enc = np.unique(y2[:, j], return_inverse=True)
            classes.append(c)
            codes.append(enc.astype(np.int64))
        return classes, np.stack(codes, axis=1)
    classes, codes = [], []
    for j in range(y2.shape[1]):
        # take, not y2[:, j]: a contiguous copy (torch.searchsorted warns on
        # strided input).
        pick = xp.asarray([j], device=device_of(y2))
        col = xp.reshape(xp.take(y2, pick, axis=1), (-1,))
        is_bool = xp.isdtype(col.dtype, "bool")
        if is_bool:  # searchsorted takes no bools: encode as 0/1
            col = xp.astype(col, index_dtype(xp, device_of(y2)))
        c = xp.sort(xp.unique_values(col))
        codes.append(xp.astype(xp.searchsorted(c, col), index_dtype(xp, device_of(y2))))
        classes.append(xp.astype(c, xp.bool) if is_bool else c)
    return classes, xp.stack(codes, axis=1)


def neighbor_weights(dist: Any, weights: Any, xp: ModuleType) -> Any:
    """Weights of each neighbour (None for uniform), as scikit-learn's.

    ``"distance"``: 1/d, except that a query with neighbours at distance 0
    gives those weight 1 and the others 0.
    """
    if weights in (None, "uniform"):
        return None
    if weights == "distance":
        zero = dist == 0
        inv = 1.0 / xp.where(zero, xp.ones_like(dist), dist)
        any_zero = xp.any(zero, axis=1, keepdims=True)
        return xp.where(any_zero, xp.astype(zero, dist.dtype), inv)
    if callable(weights):
        return weights(dist)
    msg = f"weights must be 'uniform', 'distance' or a callable, got {weights!r}."
    raise ValueError(msg)


def class_votes(
    codes: Any, ind: Any, w: Any, n_classes: int, xp: ModuleType, dtype: Any
) -> Any:
    """Weighted votes (n_queries, n_classes) of the neighbours' class codes.

    ``codes`` is one output's (n_samples,) int64 codes; a one-hot sum per
    chunk of queries, sized by the working-memory budget.
    """
    n, k = ind.shape
    dev = device_of(ind)
    classes = xp.arange(n_classes, dtype=codes.dtype, device=dev)
    per_query = max(1, k * n_classes * 8)
    step = max(1, min(n, working_memory_bytes(xp, dev) // per_query))
    out = []
    for i in range(0, n, step):
        sl = ind[i : min(i + step, n), :]
        lab = xp.take(codes, xp.reshape(sl, (-1,)))
        lab = xp.reshape(lab, sl.shape)
        onehot = xp.astype(lab[:, :, None] == classes[None, None, :], dtype)
        if w is not None:
            onehot = onehot * xp.astype(w[i : min(i + step, n), :], dtype)[:, :, None]
        out.append(xp.sum(onehot, axis=1))
    return out[0] if len(out) == 1 else xp.concat(out, axis=0)


def lookup(classes: Any, idx: Any, xp: ModuleType) -> Any:
    """``classes[idx]`` in ``classes``' namespace (numpy classes: on the host)."""
    if backend_name(classes) == "numpy" and classes.dtype.kind not in "biuf":
        return classes[to_numpy(idx)]
    return xp.take(to_namespace(classes, xp, device=device_of(idx)), idx)
