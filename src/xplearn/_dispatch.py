"""The public edge: detect once, compute in one namespace, answer in the caller's.

Every public function of xplearn, and every function a downstream author
decorates with :func:`tensor_agnostic`, goes through :class:`Edge`:

* the first array (``X``) decides the compute namespace and device; an eager
  TensorFlow tensor is bridged to torch or numpy (``_tensorflow``);
* the other arrays (``y``, ``sample_weight``, …) follow ``X``: they are moved
  to its namespace and device, except that two arrays of one framework on two
  devices are an error (almost always a bug in the caller's code);
* results go back to the framework and device of ``X``.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any, ParamSpec, TypeVar, overload

from . import _tensorflow
from ._convert import _same_device, namespace_and_device, to_namespace, to_numpy
from ._namespace import backend_name, device_of, is_array, namespace_name

_FRAMEWORK_LIST = "numpy, torch, jax, cupy, dask, array-api-strict or TensorFlow"


def _is_ignored(x: object) -> bool:
    return x is None or isinstance(x, bool | int | float | complex | str)


def _is_non_numeric(x: Any) -> bool:
    return backend_name(x) == "numpy" and x.dtype.kind not in "biufc"


def _check_supported(x: Any, name: str) -> None:
    """Raise ``TypeError`` for objects that are not dense arrays we can take."""
    kind = backend_name(x)
    if kind == "scipy":
        msg = (
            f"A sparse matrix was passed as {name}, but dense data is required. "
            "Use X.toarray() to convert it to a dense numpy array."
        )
        raise TypeError(msg)
    if kind == "tensorflow":
        _tensorflow.check_eager(x, name)
        return
    if kind == "torch" and x.layout != sys.modules["torch"].strided:
        msg = (
            f"{name} is a sparse torch tensor ({x.layout}); dense data is "
            "required. Convert it with x.to_dense()."
        )
        raise TypeError(msg)
    if kind is None and not hasattr(x, "__array__"):
        msg = (
            f"{name} must be an array ({_FRAMEWORK_LIST}), a list or a pandas "
            f"object; got {type(x).__module__}.{type(x).__qualname__}."
        )
        raise TypeError(msg)


def _prepare(x: Any, name: str) -> Any:
    """Turn lists and pandas objects into numpy; reject what we cannot take."""
    _check_supported(x, name)
    if backend_name(x) in {"sequence", "pandas", None}:
        # None here: an unknown type with __array__ (array-likes such as
        # xarray or scikit-learn's _NotAnArray) — numpy's protocol converts it.
        return to_numpy(x)
    return x


@dataclass(frozen=True)
class Edge:
    """Where a call's data came from and where it is computed.

    Transient: built per call and never stored on an estimator (modules and
    devices do not pickle).
    """

    xp: ModuleType
    device: Any
    caller: str
    caller_xp: ModuleType | None
    caller_device: Any
    # TF bfloat16 input is computed in float32; floats go back as bfloat16.
    tf_cast_back: str | None = None

    @classmethod
    def of(cls, X: Any, name: str = "X") -> tuple[Edge, Any]:
        """Edge decided by ``X``, and ``X`` in the compute namespace."""
        X = _prepare(X, name)
        caller = backend_name(X)
        assert caller is not None
        if caller == "tensorflow":
            Xc = _tensorflow.to_compute(X, name)
            xp, _ = namespace_and_device(Xc)
            back = "bfloat16" if _tensorflow.is_bfloat16(X) else None
            return cls(xp, device_of(Xc), caller, None, None, back), Xc
        xp, dev = namespace_and_device(X)
        return cls(xp, dev, caller, xp, dev), X

    def computing_in(self, X: Any, xp: ModuleType, device: Any) -> tuple[Edge, Any]:
        """Compute in ``xp``/``device`` (a fitted state's) instead; answer as before.

        ``X`` (already in this edge's compute namespace) is moved there.
        """
        if xp is self.xp and _same_device(device, self.device):
            return self, X
        return replace(self, xp=xp, device=device), to_namespace(X, xp, device=device)

    @classmethod
    def host(cls, X: Any, name: str = "X") -> tuple[Edge, Any]:
        """Edge that computes on numpy on the host, answering in ``X``'s framework.

        For explicit host computation (scikit-learn estimators through
        :func:`xplearn.wrap`): ``X`` comes back as a numpy array.
        """
        import array_api_compat.numpy as np_xp

        edge, Xc = cls.of(X, name)
        return replace(edge, xp=np_xp, device="cpu"), to_numpy(Xc)

    def follow(self, x: Any, name: str) -> Any:
        """Move ``x`` (``y``, ``sample_weight`` …) to the compute namespace/device.

        Two arrays of one framework on different devices raise ``ValueError``.
        """
        if x is None:
            return None
        x = _prepare(x, name)
        kind = backend_name(x)
        if kind == "tensorflow":
            x = _tensorflow.to_compute(x, name)
        elif kind == self.caller and not _same_device(device_of(x), self.caller_device):
            msg = (
                f"{name} is on device {device_of(x)!r} but X is on "
                f"{self.caller_device!r}. Move them to one device first, e.g. "
                f"{name} = {name}.to(X.device) in torch."
            )
            raise ValueError(msg)
        return to_namespace(x, self.xp, device=self.device)

    def to_caller(self, result: Any) -> Any:
        """Return ``result`` (arrays, or tuples/lists/dicts of them) to the caller."""
        if isinstance(result, tuple | list):
            return type(result)(self.to_caller(r) for r in result)
        if isinstance(result, dict):
            return {k: self.to_caller(v) for k, v in result.items()}
        if not is_array(result) or _is_non_numeric(result):
            return result  # non-numeric labels stay numpy, as in scikit-learn
        if self.caller == "tensorflow":
            out = _tensorflow.from_compute(result)
            if self.tf_cast_back is not None and _tensorflow.is_tf_tensor(out):
                out = _tensorflow.cast_back(out, self.tf_cast_back)
            return out
        assert self.caller_xp is not None
        if backend_name(result) == self.caller and _same_device(
            device_of(result), self.caller_device
        ):
            return result
        return to_namespace(result, self.caller_xp, device=self.caller_device)


def get_namespace(*arrays: Any) -> ModuleType:
    """Return the Array API namespace that computes on ``arrays``.

    Parameters
    ----------
    *arrays : array-like
        numpy, torch, jax, cupy, dask, array-api-strict or TensorFlow arrays;
        ``None`` and Python scalars are ignored; lists, tuples and pandas
        objects count as numpy.  Eager TensorFlow tensors compute on torch
        (when installed) or numpy, see ``config_context(tf_namespace=...)``.

    Returns
    -------
    xp : module
        The array-api-compat wrapped namespace (``array_api_compat.numpy``,
        ``array_api_compat.torch``, ``jax.numpy``, ``array_api_strict`` …).

    Raises
    ------
    TypeError
        For arrays of two different frameworks, sparse or ragged input,
        symbolic TensorFlow tensors, and objects that are not arrays.
    ValueError
        For arrays of one framework on different devices.

    Examples
    --------
    >>> import numpy as np
    >>> import xplearn
    >>> xplearn.get_namespace(np.ones(3), None, 2.0).__name__
    'array_api_compat.numpy'
    """
    found: list[tuple[str, ModuleType, Any]] = []
    for i, x in enumerate(arrays):
        if _is_ignored(x):
            continue
        arr = _prepare(x, f"arrays[{i}]")
        kind = backend_name(arr)
        assert kind is not None
        if kind == "tensorflow":
            xp = _tensorflow.namespace_for_tf()
            dev: Any = device(arr)
        else:
            xp, dev = namespace_and_device(arr)
        found.append((kind, xp, dev))
    if not found:
        msg = "get_namespace() needs at least one array; got only None or scalars."
        raise TypeError(msg)
    kind0, xp0, dev0 = found[0]
    for kind, _, dev in found[1:]:
        if kind != kind0:
            msg = (
                f"Arrays from different frameworks ({kind0} and {kind}) were "
                "passed together. Convert them to one framework first with "
                "xplearn.to_namespace(x, xp)."
            )
            raise TypeError(msg)
        if not _same_device(dev, dev0):
            msg = (
                f"Arrays on different devices ({dev0!r} and {dev!r}) were passed "
                "together. Move them to one device first."
            )
            raise ValueError(msg)
    return xp0


def device(x: Any) -> Any:
    """Return the device ``x`` lives on.

    Parameters
    ----------
    x : array
        Any supported array.  TensorFlow tensors give their device string.

    Returns
    -------
    device
        The framework's own device object (``"cpu"`` for numpy,
        ``torch.device``, a jax ``Device``, …).

    Examples
    --------
    >>> import numpy as np
    >>> import xplearn
    >>> xplearn.device(np.zeros(2))
    'cpu'
    """
    x = _prepare(x, "x")
    if backend_name(x) == "tensorflow":
        return _tensorflow.device_of(x)
    return device_of(x)


P = ParamSpec("P")
R = TypeVar("R")


@overload
def tensor_agnostic(func: Callable[P, R], /) -> Callable[..., Any]: ...
@overload
def tensor_agnostic(
    *, arrays: tuple[str, ...] | None = None
) -> Callable[[Callable[P, R]], Callable[..., Any]]: ...


def tensor_agnostic(
    func: Callable[P, R] | None = None, /, *, arrays: tuple[str, ...] | None = None
) -> Any:
    """Make a function written against ``xp`` accept and return any framework.

    The decorated function must take a keyword argument ``xp``.  At each call
    the first array argument decides the namespace and device; the other array
    arguments are moved there (see :func:`to_namespace`); the function runs
    with ``xp=`` that namespace; arrays in the result (alone or in a tuple,
    list or dict) go back to the first argument's framework and device.  Eager
    TensorFlow tensors are computed on torch or numpy and come back as
    ``tf.Tensor``.

    Parameters
    ----------
    func : callable
        The function to wrap.
    arrays : tuple of str, optional
        Names of the parameters that hold arrays.  By default, every argument
        whose value is an array of a known framework; name parameters here to
        have lists and pandas objects converted too.

    Returns
    -------
    wrapped : callable
        The same signature without ``xp``.

    Examples
    --------
    >>> import numpy as np
    >>> import xplearn
    >>> @xplearn.tensor_agnostic
    ... def standardize(X, *, xp):
    ...     return (X - xp.mean(X, axis=0)) / xp.std(X, axis=0)
    >>> standardize(np.array([[1.0], [3.0]]))
    array([[-1.],
           [ 1.]])
    """

    def decorate(f: Callable[P, R]) -> Callable[..., Any]:
        sig = inspect.signature(f)
        if "xp" not in sig.parameters:
            msg = f"{f.__qualname__} must take a keyword argument 'xp'."
            raise TypeError(msg)

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = sig.bind_partial(*args, **kwargs)
            names = [
                n
                for n, v in bound.arguments.items()
                if n != "xp"
                and (
                    (arrays is not None and n in arrays and not _is_ignored(v))
                    or (arrays is None and (is_array(v)))
                )
            ]
            if not names:
                msg = f"{f.__qualname__} was called without any array argument."
                raise TypeError(msg)
            edge, first = Edge.of(bound.arguments[names[0]], names[0])
            bound.arguments[names[0]] = first
            for n in names[1:]:
                bound.arguments[n] = edge.follow(bound.arguments[n], n)
            bound.arguments["xp"] = edge.xp
            return edge.to_caller(f(*bound.args, **bound.kwargs))

        sig_out = sig.replace(
            parameters=[p for n, p in sig.parameters.items() if n != "xp"]
        )
        wrapper.__signature__ = sig_out  # type: ignore[attr-defined]
        return wrapper

    if func is not None:
        return decorate(func)
    return decorate


__all__ = ["Edge", "device", "get_namespace", "namespace_name", "tensor_agnostic"]
