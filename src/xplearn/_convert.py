"""Moving arrays between frameworks and devices.

This is the one module that may bring data to the host (contract 3 in
DESIGN.md).  The order of preference is always the same:

1. nothing to do: the array is already in the target namespace and device;
2. DLPack: ``xp.from_dlpack(x)`` shares memory where both sides allow it
   (numpy↔torch↔jax↔strict on the CPU, torch↔cupy↔jax on one GPU);
3. ``to_device`` within the target framework when only the device differs;
4. through numpy, which copies: dask (lazy, no DLPack), array-api-strict's
   non-CPU test devices, and any pair whose DLPack exchange is refused.

Zero-copy views can alias the caller's memory (a torch view of a TF tensor)
or be read-only (a numpy view of a TF or jax array).  xplearn never writes
into its inputs, so both are safe; code that converts and then writes must
copy first.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

from . import _tensorflow
from ._namespace import backend_name, device_of, namespace_name, namespace_of

# Errors a DLPack exchange raises when the pair of frameworks or devices, the
# dtype or the strides are refused; each one sends us to the numpy fallback.
_DLPACK_REFUSED = (
    BufferError,
    TypeError,
    RuntimeError,
    ValueError,
    NotImplementedError,
)


def to_numpy(x: Any) -> Any:
    """Return ``x`` as a numpy array, on the host.

    Zero-copy where the framework allows it (CPU torch, CPU jax, CPU
    TensorFlow, array-api-strict on its CPU device); a copy from a GPU, and a
    computation for dask.  The result may be a read-only view of, or share
    memory with, ``x``: copy it before writing into it.

    Parameters
    ----------
    x : array-like
        numpy, torch, jax, cupy, dask, array-api-strict or TensorFlow array,
        or a list, tuple or pandas object.

    Returns
    -------
    array : numpy.ndarray
        torch ``bfloat16`` becomes ``float32`` (numpy has no bfloat16).

    Examples
    --------
    >>> import numpy as np
    >>> import xplearn
    >>> xplearn.to_numpy([[1.0, 2.0]])
    array([[1., 2.]])
    """
    import numpy as np

    name = backend_name(x)
    if name in {"numpy", "sequence", "pandas"}:
        return np.asarray(x)
    if name == "tensorflow":
        return _tensorflow.to_host(x)
    if name == "torch":
        t = x.detach()
        if t.dtype == sys.modules["torch"].bfloat16:
            t = t.float()
        return t.cpu().resolve_conj().numpy()
    if name == "cupy":
        return x.get()
    if name == "dask":
        return np.asarray(x.compute())
    if name == "array_api_strict":
        cpu = sys.modules["array_api_strict"].Device("CPU_DEVICE")
        if x.device != cpu:
            x = x.to_device(cpu)
        return np.from_dlpack(x)
    if name == "scipy":
        msg = (
            "A sparse matrix was passed, but dense data is required. "
            "Use X.toarray() to convert it to a dense numpy array."
        )
        raise TypeError(msg)
    try:
        return np.from_dlpack(x)
    except (*_DLPACK_REFUSED, AttributeError):
        return np.asarray(x)


def _same_device(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - devices of unrelated kinds may not compare
        return False


def to_namespace(x: Any, xp: ModuleType, *, device: Any = None) -> Any:
    """Return ``x`` as an array of namespace ``xp``, on ``device``.

    Parameters
    ----------
    x : array-like
        An array of any supported framework (TensorFlow included), a list or a
        pandas object.
    xp : module
        Target Array API namespace (as returned by :func:`get_namespace`), or
        the ``tensorflow`` module to get an eager ``tf.Tensor`` back.
    device : device, optional
        Target device of ``xp``; by default the device the data is on when the
        target can hold it there (DLPack), else the target's default device.

    Returns
    -------
    array
        Shares memory with ``x`` where DLPack allows it; never a copy when
        ``x`` is already in ``xp`` on ``device``.

    Examples
    --------
    >>> import numpy as np
    >>> import xplearn
    >>> x = np.arange(6.0).reshape(2, 3)
    >>> xp = xplearn.get_namespace(x)
    >>> xplearn.to_namespace(x, xp) is x
    True
    """
    target = namespace_name(xp)
    if target == "tensorflow":
        return _tensorflow.from_compute(_from_tf_or_self(x))
    x = _from_tf_or_self(x)
    source = backend_name(x)
    if source in {"sequence", "pandas", "scipy", None}:
        x = to_numpy(x)
        source = "numpy"
    if source == target:
        if device is None or _same_device(device_of(x), device):
            return x
        import array_api_compat

        return array_api_compat.to_device(x, device)
    if source == "dask":
        x = to_numpy(x)
    if target == "dask":
        return xp.asarray(to_numpy(x))
    try:
        y = xp.from_dlpack(x)
    except _DLPACK_REFUSED:
        host = to_numpy(x)
        if not host.flags.writeable:
            # numpy < 2 cannot export read-only buffers by DLPack, and torch
            # warns on read-only numpy input: this fallback copies anyway.
            host = host.copy()
        return xp.asarray(host, device=device)
    if device is not None and not _same_device(device_of(y), device):
        import array_api_compat

        y = array_api_compat.to_device(y, device)
    return y


def _from_tf_or_self(x: Any) -> Any:
    if backend_name(x) == "tensorflow":
        return _tensorflow.to_compute(x)
    return x


def namespace_and_device(x: Any) -> tuple[ModuleType, Any]:
    """Compute namespace and device for one array (TF via the bridge)."""
    if backend_name(x) == "tensorflow":
        return _tensorflow.namespace_for_tf(), None
    return namespace_of(x), device_of(x)
