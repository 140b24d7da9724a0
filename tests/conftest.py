"""One backend parameter for the whole suite.

``--backends=numpy,torch,...`` (or the ``XPLEARN_BACKENDS`` environment
variable) chooses the frameworks every ``backend`` test runs on; by default
every installed one.  A requested backend that is not installed is an error,
not a skip.  Variants catch what a plain backend cannot:

* ``numpy:readonly`` hands read-only arrays in, so any write into an input
  fails loudly (as it would on a numpy view of a TF or jax array);
* ``array_api_strict:device1`` puts data on strict's second device, so a
  result created on the default device instead of the input's fails a test
  without a GPU;
* ``torch:cuda`` and ``cupy`` run only where a GPU is present.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from backends import ALL_BACKENDS, Backend, variants_of


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backends",
        default=os.environ.get("XPLEARN_BACKENDS"),
        help=(
            "comma-separated frameworks to test: "
            + ", ".join(ALL_BACKENDS)
            + " (env XPLEARN_BACKENDS; default: every installed one)"
        ),
    )
    parser.addoption("--runslow", action="store_true", help="run tests marked slow")
    parser.addoption(
        "--pretend-accelerator",
        action="store_true",
        help=(
            "run torch on the CPU through the accelerator code paths (device-"
            "sized tiles scaled down, float64 re-ranking of every candidate, no "
            "host reads in the tile loop): GPU logic tested without a GPU"
        ),
    )


def _requested(config: pytest.Config) -> list[str]:
    value = config.getoption("--backends")
    if not value:
        return [b for b in ALL_BACKENDS if importlib.util.find_spec(b) is not None]
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in ALL_BACKENDS]
    if unknown:
        msg = f"unknown backend(s) {unknown}; choose from {ALL_BACKENDS}"
        raise pytest.UsageError(msg)
    missing = [n for n in names if importlib.util.find_spec(n) is None]
    if missing:
        msg = (
            f"backend(s) {missing} were requested but are not installed; "
            "install them (nox does) or leave them out of --backends"
        )
        raise pytest.UsageError(msg)
    return names


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_KEY] = [v for name in _requested(config) for v in variants_of(name)]


_KEY = pytest.StashKey[list[Backend]]()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        backends = metafunc.config.stash[_KEY]
        metafunc.parametrize("backend", backends, ids=[b.id for b in backends])


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    # The doctests of xplearn.tensorflow run TensorFlow: only where requested.
    if "tensorflow" not in {b.name for b in config.stash[_KEY]}:
        no_tf = pytest.mark.skip(reason="tensorflow not among the requested --backends")
        for item in items:
            if isinstance(item, pytest.DoctestItem) and item.name.startswith(
                "xplearn.tensorflow"
            ):
                item.add_marker(no_tf)
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config: pytest.Config) -> str:
    pretend = config.getoption("--pretend-accelerator")
    return (
        "xplearn backends: "
        + ", ".join(b.id for b in config.stash[_KEY])
        + (" (torch pretends to be an accelerator)" if pretend else "")
    )


@pytest.fixture(autouse=True)
def _pretend_accelerator(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--pretend-accelerator``: torch takes the accelerator's paths on a CPU.

    The tiles shrink 1024× (1 MiB, 4 096 columns) so that small test data
    still spans several row and column tiles, as a GPU search does.
    """
    if not request.config.getoption("--pretend-accelerator"):
        return
    if "real_tile_plan" in request.keywords:
        pytest.skip("checks the real device tile plan (--pretend-accelerator)")
    import xplearn._primitives as primitives
    import xplearn.neighbors._search as search
    from xplearn._namespace import namespace_name

    real = primitives.is_accelerator

    def pretend(xp: object, device: object) -> bool:
        return namespace_name(xp) == "torch" or real(xp, device)  # type: ignore[arg-type]

    monkeypatch.setattr(primitives, "is_accelerator", pretend)
    monkeypatch.setattr(search, "is_accelerator", pretend)
    monkeypatch.setattr(search, "_DEVICE_TILE_BYTES", 2**20)
    monkeypatch.setattr(search, "_DEVICE_TILE_COLS", 4096)


def _framework(request: pytest.FixtureRequest, name: str) -> object:
    """The framework module when ``name`` was requested; else skip (not requested)."""
    if name not in {b.name for b in request.config.stash[_KEY]}:
        pytest.skip(f"{name} not among the requested --backends")
    return importlib.import_module(name)


@pytest.fixture
def tf(request: pytest.FixtureRequest) -> object:
    """TensorFlow, for tests of the TF bridge itself."""
    return _framework(request, "tensorflow")


@pytest.fixture
def torch(request: pytest.FixtureRequest) -> object:
    """torch, for tests of torch-specific behaviour (DLPack pointers, devices)."""
    return _framework(request, "torch")


@pytest.fixture
def strict(request: pytest.FixtureRequest) -> object:
    """array_api_strict, for its extra devices."""
    return _framework(request, "array_api_strict")


@pytest.fixture
def da(request: pytest.FixtureRequest) -> object:
    """dask.array, for tests of the blockwise machinery itself (issue 14)."""
    _framework(request, "dask")
    return importlib.import_module("dask.array")


@pytest.fixture
def jax(request: pytest.FixtureRequest) -> object:
    """jax, for the jax.jit tests (issue 14)."""
    return _framework(request, "jax")
