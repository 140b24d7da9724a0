"""Neighbour graphs as sparse CSR: scipy on the host, torch on its device.

Sparse arrays are not in the Array API standard.  A graph of a torch query
is a ``torch.sparse_csr_tensor`` on the query's device (torch has sparse CSR
tensors on every device); every other framework's graph is a
``scipy.sparse.csr_matrix`` on the host, as scikit-learn's is.  Values are
float64 in scipy graphs (scikit-learn's) and the distances' dtype in torch.
"""

from __future__ import annotations

from typing import Any

from xplearn._convert import to_numpy
from xplearn._namespace import backend_name


def knn_csr(dist: Any, ind: Any, n_cols: int, mode: str) -> Any:
    """CSR graph of k neighbours per row from ``(dist, ind)`` (n_queries, k)."""
    n, k = ind.shape
    if backend_name(ind) == "torch":
        import torch

        crow = torch.arange(0, n * k + 1, k, device=ind.device)
        vals = (
            dist.reshape(-1)
            if mode == "distance"
            else torch.ones(n * k, dtype=dist.dtype, device=ind.device)
        )
        return torch_csr(crow, ind.reshape(-1), vals, (n, n_cols))
    import numpy as np
    import scipy.sparse as sp

    d, i = to_numpy(dist), to_numpy(ind)
    data = d.reshape(-1).astype(np.float64) if mode == "distance" else np.ones(n * k)
    return sp.csr_matrix(
        (data, i.reshape(-1), np.arange(0, n * k + 1, k)), shape=(n, n_cols)
    )


def ragged_csr(
    dists: list[Any], inds: list[Any], n_cols: int, mode: str, torch_device: Any
) -> Any:
    """CSR graph of host per-row neighbour lists (distances and int64 indices).

    ``torch_device``: the device of a torch query (the graph is a torch
    sparse CSR tensor there), or None for a scipy graph.
    """
    import numpy as np

    indptr = np.zeros(len(inds) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in inds], out=indptr[1:])
    cols = np.concatenate(inds) if inds else np.zeros(0, np.int64)
    dtype = dists[0].dtype if dists else np.float64
    if mode == "distance":
        data = np.concatenate(dists) if dists else np.zeros(0)
    else:
        data = np.ones(len(cols), dtype=dtype)
    shape = (len(inds), n_cols)
    if torch_device is not None:
        import torch

        dev = torch_device
        vals = torch.asarray(data, device=dev)
        return torch_csr(
            torch.asarray(indptr, device=dev),
            torch.asarray(cols, device=dev),
            vals,
            shape,
        )
    import scipy.sparse as sp

    return sp.csr_matrix((data.astype(np.float64), cols, indptr), shape=shape)


def torch_csr(crow: Any, col: Any, vals: Any, shape: tuple[int, int]) -> Any:
    """Build a ``torch.sparse_csr_tensor`` (without torch's beta warning)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        # "Sparse CSR tensor support is in beta state": we rely on it only
        # to hand back a sparse tensor on the query's device.
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, vals, size=shape)


def host_graph(graph: Any, caller: Any) -> Any:
    """``graph`` as scipy CSR unless ``caller`` (the user's data) is torch.

    A graph function given TensorFlow data queries the fit data, which is
    held in its compute framework (torch where installed): the graph goes
    back to scipy, as for every framework but torch.
    """
    if backend_name(graph) != "torch" or backend_name(caller) == "torch":
        return graph
    import scipy.sparse as sp

    shape = tuple(graph.shape)
    return sp.csr_matrix(
        (
            to_numpy(graph.values()).astype("float64"),
            to_numpy(graph.col_indices()),
            to_numpy(graph.crow_indices()),
        ),
        shape=shape,
    )
