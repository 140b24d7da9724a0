"""``xplearn info``: the frameworks and devices found, and a check on each.

For every installed framework this builds an array on each of its devices,
sends it through xplearn's edge (detect → compute namespace → back) and
reports whether namespace, device, dtype and values survived; then runs an
exact 5-NN search of 500 digits in that framework and device and checks it
against a float64 numpy reference.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .frameworks import arrays, like


@dataclass
class Row:
    """One line of the report."""

    backend: str
    device: str
    check: str
    ok: bool
    detail: str


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


def _knn(x: Any) -> tuple[bool, str]:
    """Exact 5-NN of 500 digits against themselves, checked against float64."""
    import numpy as np
    from sklearn.datasets import load_digits

    import xplearn
    from xplearn.neighbors import kneighbors

    data = load_digits().data[:500].astype(np.float32)
    X = like(x, data)
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


def run_checks(
    backends: list[str], checks: dict[str, Callable[[Any], tuple[bool, str]]]
) -> list[Row]:
    """Run every check on every device of every backend."""
    rows = []
    for backend in backends:
        try:
            found = list(arrays(backend))
        except Exception as exc:  # noqa: BLE001 - report a broken install, go on
            rows.append(Row(backend, "-", "import", ok=False, detail=repr(exc)))
            continue
        for dev, x in found:
            for name, check in checks.items():
                start = time.perf_counter()
                try:
                    ok, detail = check(x)
                except Exception as exc:  # noqa: BLE001 - a failed check is a row
                    ok, detail = False, f"{type(exc).__name__}: {exc}"
                ms = 1e3 * (time.perf_counter() - start)
                rows.append(Row(backend, dev, name, ok, f"{detail} ({ms:.1f} ms)"))
    return rows


def run(backends: list[str]) -> int:
    """Print the checks of ``backends``; 1 when any failed."""
    rows = run_checks(backends, CHECKS)
    width = max(len(r.device) for r in rows) if rows else 6
    for r in rows:
        mark = "ok  " if r.ok else "FAIL"
        print(f"{mark} {r.backend:<17} {r.device:<{width}} {r.check:<12} {r.detail}")
    failed = sum(not r.ok for r in rows)
    print(f"{len(rows) - failed} passed, {failed} failed")
    return 1 if failed else 0
