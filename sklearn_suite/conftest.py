"""Fixtures of scikit-learn's conftest that its test files need, and the list.

``global_random_seed`` and ``global_dtype`` are scikit-learn's
(``SKLEARN_TESTS_GLOBAL_RANDOM_SEED``, ``SKLEARN_RUN_FLOAT32_TESTS``).  Every
test named in ``known_failures.txt`` is marked ``xfail(strict=True)`` with its
reason, so a listed test that passes fails the run, as does an unlisted one
that fails: the list stays exactly the tests that fail.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

_SKIP32 = pytest.mark.skipif(
    os.environ.get("SKLEARN_RUN_FLOAT32_TESTS", "0") != "1",
    reason="Set SKLEARN_RUN_FLOAT32_TESTS=1 to run float32 dtype tests",
)


@pytest.fixture(params=[pytest.param(np.float32, marks=_SKIP32), np.float64])
def global_dtype(request: pytest.FixtureRequest) -> object:
    return request.param


def _seeds() -> list[int]:
    value = os.environ.get("SKLEARN_TESTS_GLOBAL_RANDOM_SEED")
    if value is None:
        return [42]
    if value == "all":
        return list(range(100))
    if "-" in value:
        start, stop = value.split("-")
        return list(range(int(start), int(stop) + 1))
    return [int(value)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "global_random_seed" in metafunc.fixturenames:
        metafunc.parametrize("global_random_seed", _seeds())


def known_failures(path: Path) -> dict[str, str]:
    """``{node id: reason}``: each id takes the reason of the ``##`` above it."""
    reason, out = "", {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("## "):
            reason = line[3:]
        elif line and not line.startswith("#"):
            out[line] = reason
    return out


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--check-list",
        action="store_true",
        help="error if known_failures.txt names a test that was not collected",
    )
    parser.addoption(
        "--ignore-list",
        action="store_true",
        help="run without known_failures.txt (to measure or rewrite it)",
    )


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    if config.getoption("--ignore-list"):
        return
    listed = known_failures(Path(__file__).with_name("known_failures.txt"))
    seen = set()
    for item in items:
        reason = listed.get(item.nodeid)
        if reason is not None:
            seen.add(item.nodeid)
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))
    stale = sorted(set(listed) - seen)
    if stale and config.getoption("--check-list"):
        msg = "known_failures.txt lists tests that do not exist:\n" + "\n".join(stale)
        raise pytest.UsageError(msg)
