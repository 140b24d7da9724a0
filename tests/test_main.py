"""``python -m xplearn``: reports every requested framework and its checks."""

import subprocess
import sys


def test_cli_checks_requested_backends(request) -> None:
    backends = sorted({b.name for b in request.config.stash[_key()]})
    out = subprocess.run(
        [sys.executable, "-m", "xplearn", "--backends", ",".join(backends)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    for name in backends:
        assert f"ok   {name}" in out.stdout
    assert " 0 failed" in out.stdout


def test_cli_missing_backend_is_an_error() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "xplearn", "--backends", "no_such_framework"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2
    assert "not installed" in out.stderr


def _key():
    from conftest import _KEY

    return _KEY
