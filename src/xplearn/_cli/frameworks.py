"""The frameworks the command line finds, their devices, and quiet imports.

Shared by ``xplearn info`` and ``xplearn demo``.  Frameworks are imported here
only when a subcommand needs them, TensorFlow with its C++ start-up log
silenced: on a machine without a GPU it prints ``E0000 … failed call to
cuInit: … CUDA error``, which reads as a failure but is not one.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Iterator
from typing import Any

from xplearn._namespace import BACKENDS
from xplearn._support import SUPPORT


class UsageError(Exception):
    """A request the command line cannot serve; the message says what to do."""


def installed_backends() -> list[str]:
    """Backends whose package is importable, without importing them."""
    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]


def version(backend: str) -> str:
    """Installed version of ``backend``'s distribution, ``"?"`` if unknown."""
    dist = next(r.distribution for r in SUPPORT if r.backend == backend)
    for name in (dist, f"{dist}-cpu"):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "?"


def install_hint(backend: str) -> str:
    """Say what to type to install ``backend``."""
    row = next(r for r in SUPPORT if r.backend == backend)
    if row.extra:
        return f'pip install "xplearn[{row.extra}]"'
    if backend == "cupy":
        return "pip install cupy-cuda12x (the wheel for your CUDA version)"
    return f"pip install {row.distribution}"


def select_backends(value: str | None) -> list[str]:
    """Choose the backends ``--backends`` names (every installed one by default).

    Raises
    ------
    UsageError
        For a name xplearn does not know, a backend that is not installed, or
        when nothing is installed.
    """
    found = installed_backends()
    if value is None:
        if not found:
            msg = "no array framework is installed: pip install numpy (or xplearn[all])"
            raise UsageError(msg)
        return found
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        msg = (
            f"unknown backend(s): {', '.join(unknown)}; "
            f"choose from {', '.join(BACKENDS)}"
        )
        raise UsageError(msg)
    missing = [n for n in names if n not in found]
    if missing:
        hints = "; ".join(f"{n}: {install_hint(n)}" for n in missing)
        msg = (
            f"requested but not installed: {', '.join(missing)} "
            f"(install with {hints}, or leave it out of --backends)"
        )
        raise UsageError(msg)
    if not names:
        msg = f"--backends is empty; choose from {', '.join(BACKENDS)}"
        raise UsageError(msg)
    return names


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: C++ logs bypass ``sys.stderr``."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load(backend: str) -> Any:
    """Import ``backend`` (TensorFlow with its start-up log silenced)."""
    if backend == "tensorflow" and "tensorflow" not in sys.modules:
        # TF_CPP_MIN_LOG_LEVEL is read once, when TensorFlow's C++ library
        # loads; absl's first lines ignore it, hence the silenced descriptor.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        with _quiet_stderr():
            tf = importlib.import_module("tensorflow")
            tf.config.list_logical_devices()  # the cuInit line comes from here
        return tf
    return importlib.import_module(backend)


def arrays(backend: str, *, test_devices: bool = True) -> Iterator[tuple[str, Any]]:
    """(device label, small float32 array) for each device of ``backend``.

    ``test_devices=False`` leaves out array-api-strict's made-up devices,
    which exist to catch bugs, not to compute on.
    """
    import numpy as np

    data = np.arange(12, dtype=np.float32).reshape(4, 3)
    module = load(backend)
    if backend == "numpy":
        yield "cpu", data
    elif backend == "array_api_strict":
        for dev in module.__array_namespace_info__().devices():
            # array-api-strict 2.6's own argsort returns int64 on its
            # 'no_x64' test device, which refuses int64: nothing can sort there.
            made_up = dev != module.Device("CPU_DEVICE")
            if "no_x64" in str(dev) or (made_up and not test_devices):
                continue
            # str() is "array_api_strict.Device('CPU_DEVICE')": keep the name.
            label = str(dev).split("'")[1] if "'" in str(dev) else str(dev)
            yield label, module.asarray(data, device=dev)
    elif backend == "torch":
        yield "cpu", module.asarray(data)
        for i in range(module.cuda.device_count()):
            yield f"cuda:{i}", module.asarray(data, device=f"cuda:{i}")
    elif backend == "jax":
        for dev in module.devices():
            yield str(dev), module.device_put(data, dev)
    elif backend == "dask":
        import dask.array as da

        yield "cpu", da.from_array(data, chunks=2)
    elif backend == "tensorflow":
        for dev in module.config.list_logical_devices():
            with module.device(dev.name):
                yield dev.name, module.identity(module.constant(data))
    elif backend == "cupy":
        yield "cuda:0", module.asarray(data)


def like(x: Any, data: Any) -> Any:
    """Put numpy ``data`` in the framework and on the device of ``x``."""
    import xplearn
    from xplearn._namespace import backend_name

    if backend_name(x) == "tensorflow":
        tf = sys.modules["tensorflow"]
        with tf.device(x.device):
            return tf.identity(tf.constant(data))
    return xplearn.to_namespace(
        data, xplearn.get_namespace(x), device=xplearn.device(x)
    )
