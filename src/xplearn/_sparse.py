"""Sparse input: detection and checks shared by the estimators that take it.

scipy's sparse matrices live on the host (their data are numpy arrays), so
the sparse paths compute with numpy; detection never imports scipy.  torch
sparse tensors on the CPU are read as scipy CSR over the same arrays
(:func:`takes_torch_sparse`) and answered in torch.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def is_scipy_sparse(X: Any) -> bool:
    """Whether ``X`` is a scipy sparse matrix or array (without importing scipy)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and bool(sparse.issparse(X))


def check_sparse(X: Any, dtype: Any = None) -> Any:
    """``X`` as CSR of a floating dtype (float32 kept), checked finite and non-empty."""
    import numpy as np
    import scipy.sparse as sp

    if X.ndim != 2:  # pragma: no cover - scipy sparse is 2-D
        msg = f"Found array with dim {X.ndim}. Expected 2D sparse matrix."
        raise ValueError(msg)
    if dtype is None:
        dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    X = sp.csr_matrix(X, dtype=dtype)
    n, d = X.shape
    if n < 1 or d < 1:
        msg = f"Found array with {n} sample(s) and {d} feature(s) (shape={X.shape})."
        raise ValueError(msg)
    try:
        # The index arrays are read by compiled kernels that trust them (a
        # column index past the end is read out of bounds): checked once here.
        X.check_format(full_check=True)
    except ValueError as e:
        msg = (
            f"X is not a valid CSR matrix ({e}): build it with scipy.sparse "
            "from valid (data, indices, indptr) arrays."
        )
        raise ValueError(msg) from e
    if not np.isfinite(X.data).all():
        msg = "Input X contains NaN or infinity. Remove or impute those entries."
        raise ValueError(msg)
    if not X.has_canonical_format:
        # Sorting or summing entries in place would write into the caller's
        # arrays (csr_matrix shares them when no conversion is needed).
        X = X.copy()
        X.sum_duplicates()
    return X


def is_torch_sparse(X: Any) -> bool:
    """Whether ``X`` is a torch tensor of a sparse layout (COO, CSR, CSC, BSR…)."""
    torch = sys.modules.get("torch")
    return (
        torch is not None and isinstance(X, torch.Tensor) and X.layout != torch.strided
    )


def torch_sparse_to_scipy(X: Any, name: str = "X") -> Any:
    """Read a CPU torch sparse tensor as scipy CSR (CSR: its arrays, no copy).

    scipy's sparse kernels run on the host, so a sparse tensor on another
    device is refused.  A CSR tensor's values and indices are shared (read,
    never written: the sparse paths copy before any in-place step); other
    layouts are converted to CSR first (a copy); float16 and bfloat16
    values are read as float32.
    """
    import scipy.sparse as sp

    torch = sys.modules["torch"]
    if X.device.type != "cpu":
        msg = (
            f"{name} is a sparse torch tensor on {X.device}; xplearn searches "
            "sparse data on the host, with scipy's sparse kernels. Move it with "
            f"{name}.cpu(), or pass dense data ({name}.to_dense())."
        )
        raise TypeError(msg)
    if X.dim() != 2:
        msg = f"Found array with dim {X.dim()}. Expected a 2D sparse tensor."
        raise ValueError(msg)
    X = X.detach()
    if X.layout != torch.sparse_csr:
        X = X.coalesce() if X.layout == torch.sparse_coo else X
        with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            X = X.to_sparse_csr()
    values = X.values()
    if values.dtype in (torch.float16, torch.bfloat16):
        values = values.to(torch.float32)
    return sp.csr_matrix(
        (values.numpy(), X.col_indices().numpy(), X.crow_indices().numpy()),
        shape=tuple(X.shape),
        copy=False,
    )


def torch_from_host(out: Any, dtype: Any) -> Any:
    """Turn a sparse path's answer into torch: numeric arrays as CPU tensors.

    numpy arrays become tensors (sharing memory), scipy sparse matrices
    torch sparse CSR, object arrays (radius neighbours) element by element,
    tuples item by item; string labels stay numpy, as for every framework.
    Floating answers of float16/bfloat16 input go back in that ``dtype``.
    """
    import numpy as np

    torch = sys.modules["torch"]
    half = dtype in (torch.float16, torch.bfloat16)
    if isinstance(out, tuple):
        return tuple(torch_from_host(o, dtype) for o in out)
    if is_scipy_sparse(out):
        from xplearn.neighbors._csr import torch_csr

        csr = out.tocsr()
        values = torch.from_numpy(np.array(csr.data))
        return torch_csr(
            torch.from_numpy(np.array(csr.indptr, dtype=np.int64)),
            torch.from_numpy(np.array(csr.indices, dtype=np.int64)),
            values.to(dtype) if half else values,
            csr.shape,
        )
    if not isinstance(out, np.ndarray):
        return out
    if out.dtype == object:
        conv = np.empty(out.shape, dtype=object)
        for i, o in enumerate(out.flat):
            conv.flat[i] = torch_from_host(o, dtype)
        return conv
    if out.dtype.kind not in "biuf":
        return out
    t = torch.from_numpy(out if out.flags.writeable else out.copy())
    return t.to(dtype) if half and t.is_floating_point() else t


# Fitted attributes that go back to torch after a fit on a torch sparse
# tensor, named by the estimator class (``_torch_sparse_fitted``): KMeans'
# centres and labels.  The fitted rows of the neighbours estimators stay
# scipy CSR, which the sparse search reads, and MiniBatchKMeans keeps its
# centres on the host with the rest of the state partial_fit goes on from.
_TORCH_FITTED = ("cluster_centers_", "labels_")


def takes_torch_sparse(method: Callable[P, R]) -> Callable[P, R]:
    """Let ``method`` take a CPU torch sparse tensor ``X`` (its first argument).

    ``X`` is read as a scipy CSR matrix (:func:`torch_sparse_to_scipy`),
    ``method`` runs the scipy sparse path, and its answer comes back as
    torch (:func:`torch_from_host`); a ``fit`` also turns the fitted
    attributes the class names in ``_torch_sparse_fitted`` to torch.
    """
    name = method.__name__

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        X: Any = args[1] if len(args) > 1 else kwargs.get("X")
        if not is_torch_sparse(X):
            return method(*args, **kwargs)
        torch = sys.modules["torch"]
        dtype = X.dtype
        Xs = torch_sparse_to_scipy(X)
        if len(args) > 1:
            args = (args[0], Xs, *args[2:])  # type: ignore[assignment]
        else:
            kwargs["X"] = Xs
        est = args[0]
        fitting = name.startswith(("fit", "partial_fit"))
        if fitting:  # partial_fit goes on from centres it made torch
            from ._convert import to_numpy

            for attr in _TORCH_FITTED:
                value = getattr(est, attr, None)
                if isinstance(value, torch.Tensor):
                    setattr(est, attr, to_numpy(value))
        back = getattr(type(est), "_torch_sparse_fitted", ())
        out = method(*args, **kwargs)
        if fitting:
            for attr in back:
                value = getattr(est, attr, None)
                if value is not None and not is_torch_sparse(value):
                    setattr(est, attr, torch_from_host(value, dtype))
        if out is est:
            return out
        result: R = torch_from_host(out, dtype)
        return result

    return call
