"""Contract 4: importing xplearn loads no framework."""

import subprocess
import sys

HEAVY = ("torch", "tensorflow", "jax", "dask", "cupy", "sklearn", "scipy", "pandas")


def test_import_loads_no_framework() -> None:
    code = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "import xplearn, xplearn.__main__, xplearn.tensorflow\n"
        "dt = time.perf_counter() - t\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(repr(heavy)); print(f'{dt * 1e3:.1f}')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    heavy, ms = out[0], float(out[1])
    print(f"import xplearn took {ms:.1f} ms")
    assert heavy == "[]", f"import xplearn (or xplearn.tensorflow) loaded {heavy}"


def test_public_api() -> None:
    import xplearn

    for name in xplearn.__all__:
        assert hasattr(xplearn, name), name
