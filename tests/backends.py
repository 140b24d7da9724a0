"""Backends under test: build their arrays from numpy, check results against numpy.

Every assertion checks namespace, device and dtype *before* values, so a silent
fallback to numpy (or to the default device) fails a test.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np

import xplearn
from xplearn._namespace import backend_name

ALL_BACKENDS = (
    "numpy",
    "array_api_strict",
    "torch",
    "jax",
    "dask",
    "tensorflow",
    "cupy",
)


@dataclass(frozen=True)
class Backend:
    """A framework, and the device and flavour its test arrays get."""

    name: str
    variant: str = ""

    @property
    def id(self) -> str:
        return f"{self.name}:{self.variant}" if self.variant else self.name

    @property
    def module(self) -> Any:
        return importlib.import_module(self.name)

    @property
    def device(self) -> Any:
        """The device this backend's arrays are on, as xplearn.device reports it."""
        if self.name == "array_api_strict":
            xs = self.module
            return xs.Device("device1" if self.variant == "device1" else "CPU_DEVICE")
        if self.name == "torch":
            import torch

            return torch.device("cuda:0" if self.variant == "cuda" else "cpu")
        if self.name == "jax":
            import jax

            return jax.devices()[0]
        return self.probe_device()

    def probe_device(self) -> Any:
        return xplearn.device(self.asarray(np.zeros((1, 1))))

    def asarray(self, data: Any, dtype: Any = None) -> Any:
        """Build this backend's array from numpy data (copy, own memory).

        ``dtype`` is a name (``"float32"``) or None to keep numpy's.
        """
        a = np.array(data, dtype=dtype)
        if self.name == "numpy":
            if self.variant == "readonly":
                a.flags.writeable = False
            return a
        if self.name == "array_api_strict":
            return self.module.asarray(a, device=self.device)
        if self.name == "torch":
            import torch

            return torch.asarray(a, device=self.device)
        if self.name == "jax":
            import jax.numpy as jnp

            return jnp.asarray(a)
        if self.name == "dask":
            import dask.array as da

            return da.from_array(
                a, chunks=max(1, (a.shape[0] + 1) // 2) if a.ndim else ()
            )
        if self.name == "tensorflow":
            import tensorflow as tf

            return tf.constant(a)
        if self.name == "cupy":
            import cupy

            return cupy.asarray(a)
        raise AssertionError(self.name)

    def is_own(self, x: Any) -> bool:
        """Whether ``x`` is an array of this backend (not a silent numpy)."""
        if self.name == "tensorflow":
            import tensorflow as tf

            return isinstance(x, tf.Tensor) and not isinstance(x, np.ndarray)
        return backend_name(x) == self.name


def variants_of(name: str) -> list[Backend]:
    """The test variants of one requested backend."""
    out = [Backend(name)]
    if name == "numpy":
        out.append(Backend(name, "readonly"))
    elif name == "array_api_strict":
        out.append(Backend(name, "device1"))
    elif name == "torch":
        import torch

        if torch.cuda.is_available():
            out.append(Backend(name, "cuda"))
    elif name == "jax":
        import jax

        # float64 must stay float64 on every backend that has it.
        jax.config.update("jax_enable_x64", True)
    return out


def dtype_name(dtype: Any) -> str:
    """``"float32"`` for numpy, torch, jax, strict and TF dtypes alike."""
    name = getattr(dtype, "name", None)
    if isinstance(name, str):
        return name
    return str(dtype).rpartition(".")[2]


def assert_in_backend(x: Any, backend: Backend, dtype: str | None = None) -> None:
    """Namespace, device and (optionally) dtype of ``x`` are ``backend``'s."""
    assert backend.is_own(x), f"expected a {backend.id} array, got {type(x)!r}"
    got = xplearn.device(x)
    want = backend.device
    if backend.name == "tensorflow":
        assert str(got).endswith("CPU:0") == str(want).endswith("CPU:0"), (got, want)
    else:
        assert got == want, f"result on device {got!r}, input was on {want!r}"
    if dtype is not None:
        assert dtype_name(x.dtype) == dtype, (
            f"dtype {dtype_name(x.dtype)}, expected {dtype}"
        )


def ragged_backend(backend: Backend) -> Backend:
    """Where the per-query arrays of a ragged answer (``radius_neighbors``) are.

    dask queries get numpy arrays, computed: a ragged answer is no dask array.
    """
    return Backend("numpy") if backend.name == "dask" else backend


def assert_close(
    actual: Any,
    desired: Any,
    backend: Backend,
    *,
    dtype: str | None = None,
    rtol: float | None = None,
    atol: float = 0.0,
) -> None:
    """Check namespace, device, dtype, then values against a numpy reference."""
    assert_in_backend(actual, backend, dtype)
    got = xplearn.to_numpy(actual)
    if rtol is None:
        rtol = 1e-5 if dtype_name(got.dtype) in {"float32", "float16"} else 1e-10
    np.testing.assert_allclose(got, desired, rtol=rtol, atol=atol)


def assert_equal(
    actual: Any, desired: Any, backend: Backend, *, dtype: str | None = None
) -> None:
    """Check namespace, device, dtype, then exact values."""
    assert_in_backend(actual, backend, dtype)
    np.testing.assert_array_equal(xplearn.to_numpy(actual), desired)


def knn_oracle(X: np.ndarray, Y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices by float64 distances of the values, ties to the lower index.

    Returns the indices of the ``k`` nearest and the full matrix of squared
    distances.
    """
    D = ((X.astype(np.float64)[:, None, :] - Y.astype(np.float64)[None]) ** 2).sum(-1)
    return np.argsort(D, axis=1, kind="stable")[:, :k], D
