"""scipy sparse input: detection and checks shared by the estimators that take it.

scipy's sparse matrices live on the host (their data are numpy arrays), so
the sparse paths compute with numpy; detection never imports scipy.
"""

from __future__ import annotations

import sys
from typing import Any


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
    if not np.isfinite(X.data).all():
        msg = "Input X contains NaN or infinity. Remove or impute those entries."
        raise ValueError(msg)
    if not X.has_canonical_format:
        # Sorting or summing entries in place would write into the caller's
        # arrays (csr_matrix shares them when no conversion is needed).
        X = X.copy()
        X.sum_duplicates()
    return X
