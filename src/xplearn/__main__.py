"""``python -m xplearn``: the frameworks and devices found, and a check on each.

For every installed framework this builds an array on each of its devices,
sends it through xplearn's edge (detect → compute namespace → back) and
reports whether namespace, device, dtype and values survived; then runs an
exact 5-NN search of 500 digits in that framework and device and checks it
against a float64 numpy reference.  It exits non-zero when any check fails.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ._namespace import BACKENDS

_DISTRIBUTIONS = {
    "numpy": "numpy",
    "array_api_strict": "array-api-strict",
    "torch": "torch",
    "jax": "jax",
    "dask": "dask",
    "tensorflow": "tensorflow",
    "cupy": "cupy",
}


@dataclass
class Row:
    """One line of the report."""

    backend: str
    device: str
    check: str
    ok: bool
    detail: str


def installed_backends() -> list[str]:
    """Backends whose package is importable, without importing them."""
    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]


def _version(backend: str) -> str:
    for dist in (_DISTRIBUTIONS[backend], "tensorflow-cpu"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "?"


def _arrays(backend: str) -> Iterator[tuple[str, Any]]:
    """(device label, float32 array) for each device of ``backend``."""
    import numpy as np

    data = np.arange(12, dtype=np.float32).reshape(4, 3)
    if backend == "numpy":
        yield "cpu", data
    elif backend == "array_api_strict":
        import array_api_strict as xs

        for dev in xs.__array_namespace_info__().devices():
            # array-api-strict 2.6's own argsort returns int64 on its
            # 'no_x64' test device, which refuses int64: nothing can sort there.
            if "no_x64" not in str(dev):
                yield str(dev), xs.asarray(data, device=dev)
    elif backend == "torch":
        import torch

        yield "cpu", torch.asarray(data)
        for i in range(torch.cuda.device_count()):
            yield f"cuda:{i}", torch.asarray(data, device=f"cuda:{i}")
    elif backend == "jax":
        import jax

        for dev in jax.devices():
            yield str(dev), jax.device_put(data, dev)
    elif backend == "dask":
        import dask.array as da

        yield "cpu", da.from_array(data, chunks=2)
    elif backend == "tensorflow":
        import tensorflow as tf

        for dev in tf.config.list_logical_devices():
            with tf.device(dev.name):
                yield dev.name, tf.identity(tf.constant(data))
    elif backend == "cupy":
        import cupy

        yield "cuda:0", cupy.asarray(data)


def _round_trip(x: Any) -> tuple[bool, str]:
    import numpy as np

    import xplearn
    from xplearn._dispatch import Edge

    edge, xc = Edge.of(x)
    back = edge.to_caller(xc)
    same_type = type(back) is type(x)
    same_device = str(xplearn.device(back)) == str(xplearn.device(x))
    same_dtype = str(back.dtype) == str(x.dtype)
    same_values = bool(np.array_equal(xplearn.to_numpy(back), xplearn.to_numpy(x)))
    ok = same_type and same_device and same_dtype and same_values
    detail = (
        f"computed on {edge.xp.__name__}; type {'ok' if same_type else 'CHANGED'}, "
        f"device {'ok' if same_device else 'CHANGED'}, "
        f"dtype {'ok' if same_dtype else 'CHANGED'}, "
        f"values {'ok' if same_values else 'CHANGED'}"
    )
    return ok, detail


def run_checks(
    backends: list[str], checks: dict[str, Callable[[Any], tuple[bool, str]]]
) -> list[Row]:
    """Run every check on every device of every backend."""
    rows = []
    for backend in backends:
        try:
            arrays = list(_arrays(backend))
        except Exception as exc:  # noqa: BLE001 - report a broken install, go on
            rows.append(Row(backend, "-", "import", ok=False, detail=repr(exc)))
            continue
        for dev, x in arrays:
            for name, check in checks.items():
                start = time.perf_counter()
                try:
                    ok, detail = check(x)
                except Exception as exc:  # noqa: BLE001 - a failed check is a row
                    ok, detail = False, f"{type(exc).__name__}: {exc}"
                ms = 1e3 * (time.perf_counter() - start)
                rows.append(Row(backend, dev, name, ok, f"{detail} ({ms:.1f} ms)"))
    return rows


def _like(x: Any, data: Any) -> Any:
    """Put numpy ``data`` in the framework and on the device of ``x``."""
    import xplearn
    from xplearn._namespace import backend_name

    if backend_name(x) == "tensorflow":
        import tensorflow as tf

        with tf.device(x.device):
            return tf.identity(tf.constant(data))
    return xplearn.to_namespace(
        data, xplearn.get_namespace(x), device=xplearn.device(x)
    )


def _knn(x: Any) -> tuple[bool, str]:
    """Exact 5-NN of 500 digits against themselves, checked against float64."""
    import numpy as np
    from sklearn.datasets import load_digits

    import xplearn
    from xplearn.neighbors import kneighbors

    data = load_digits().data[:500].astype(np.float32)
    X = _like(x, data)
    dist, ind = kneighbors(X, X, n_neighbors=5)
    _, ref_ind = kneighbors(
        data.astype(np.float64), data.astype(np.float64), n_neighbors=5
    )
    exact = np.sqrt(((data[:, None, :].astype(np.float64) - data[None]) ** 2).sum(-1))
    got = np.take_along_axis(exact, xplearn.to_numpy(ind), axis=1)
    want = np.take_along_axis(exact, xplearn.to_numpy(ref_ind), axis=1)
    same = bool(np.allclose(got, want))
    where = type(dist) is type(x) and str(xplearn.device(dist)) == str(
        xplearn.device(x)
    )
    dtype_ok = "float32" in str(dist.dtype) and "int" in str(ind.dtype)
    ok = same and where and dtype_ok
    return ok, (
        f"neighbours {'match float64' if same else 'DIFFER'}, answer "
        f"{'in place' if where else 'MOVED'}, dtype {'ok' if dtype_ok else dist.dtype}"
    )


CHECKS: dict[str, Callable[[Any], tuple[bool, str]]] = {
    "round trip": _round_trip,
    "5-NN": _knn,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m xplearn``."""
    parser = argparse.ArgumentParser(prog="python -m xplearn", description=__doc__)
    parser.add_argument(
        "--backends",
        default=None,
        help="comma-separated backends to check (default: every installed one)",
    )
    args = parser.parse_args(argv)
    import xplearn

    found = installed_backends()
    backends = found if args.backends is None else args.backends.split(",")
    missing = [b for b in backends if b not in found]
    print(f"xplearn {xplearn.__version__} on Python {sys.version.split()[0]}")
    print("frameworks found: " + ", ".join(f"{b} {_version(b)}" for b in found))
    if missing:
        print(f"requested but not installed: {', '.join(missing)}", file=sys.stderr)
        return 2
    rows = run_checks(backends, CHECKS)
    width = max(len(r.device) for r in rows) if rows else 6
    for r in rows:
        mark = "ok  " if r.ok else "FAIL"
        print(f"{mark} {r.backend:<17} {r.device:<{width}} {r.check:<12} {r.detail}")
    failed = sum(not r.ok for r in rows)
    print(f"{len(rows) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
