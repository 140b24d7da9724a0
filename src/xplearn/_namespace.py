"""Recognise which framework an array belongs to, without importing any.

The lookup goes from an object's *class* to a backend name through the
top-level module names of the class and its bases, cached per class, in the
manner of array-api-compat's ``_helpers``.  A framework that the caller has not
imported cannot have produced the object, so nothing here ever imports one; the
namespace module (``array_api_compat.torch`` …) is imported only once an
array of that framework is in hand.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Final

# Top-level module of a class (or of one of its bases) → backend name.
_MODULE_TO_BACKEND: Final = {
    "numpy": "numpy",
    "torch": "torch",
    "jax": "jax",
    "jaxlib": "jax",
    "cupy": "cupy",
    "dask": "dask",
    "array_api_strict": "array_api_strict",
    "tensorflow": "tensorflow",
    "pandas": "pandas",
    "scipy": "scipy",
}

BACKENDS: Final = (
    "numpy",
    "array_api_strict",
    "torch",
    "jax",
    "dask",
    "tensorflow",
    "cupy",
)
"""Every array backend xplearn knows, in the order tests and the CLI use."""


_TYPE_CACHE: dict[type, str | None] = {}


def _backend_of_type(cls: type) -> str | None:
    try:
        return _TYPE_CACHE[cls]
    except KeyError:
        pass
    name = None
    for base in cls.__mro__:
        top = base.__module__.partition(".")[0]
        if top in _MODULE_TO_BACKEND:
            name = _MODULE_TO_BACKEND[top]
            break
    _TYPE_CACHE[cls] = name
    return name


def backend_name(x: Any) -> str | None:
    """Name of the framework ``x`` belongs to, or None for other objects.

    Lists and tuples give ``"sequence"``; pandas objects ``"pandas"``; scipy
    objects (sparse matrices) ``"scipy"``.
    """
    if isinstance(x, list | tuple):
        return "sequence"
    return _backend_of_type(type(x))


def is_array(x: object) -> bool:
    """Whether ``x`` is an array of a framework xplearn computes on."""
    name = backend_name(x)
    return name is not None and name not in {"sequence", "pandas", "scipy"}


def namespace_of(x: Any) -> ModuleType:
    """Array API namespace that computes on ``x`` (a non-TF array).

    TensorFlow tensors never reach here: the bridge in ``_tensorflow`` turns
    them into torch or numpy first.
    """
    import array_api_compat

    xp: ModuleType = array_api_compat.array_namespace(x)
    return xp


def namespace_name(xp: ModuleType) -> str:
    """Backend name of an Array API namespace (``"torch"`` for compat.torch)."""
    name = xp.__name__
    if name.startswith("array_api_compat."):
        name = name.removeprefix("array_api_compat.")
    if name.startswith("jax"):
        return "jax"
    return name.partition(".")[0]


def device_of(x: Any) -> Any:
    """Device of a non-TF array (``"cpu"`` for numpy, as array-api-compat)."""
    import array_api_compat

    return array_api_compat.device(x)


def is_lazy(xp: ModuleType) -> bool:
    """Whether values of ``xp``'s arrays are unknown until computed (dask)."""
    return namespace_name(xp) == "dask"
