"""The command line: ``xplearn info`` (the default), its options and errors."""

import subprocess
import sys

import pytest

from xplearn._cli import main


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xplearn", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_checks_requested_backends(request) -> None:
    backends = sorted({b.name for b in request.config.stash[_key()]})
    out = _run("--backends", ",".join(backends))
    assert out.returncode == 0, out.stdout + out.stderr
    for name in backends:
        assert f"ok   {name}" in out.stdout
    assert " 0 failed" in out.stdout


def test_info_is_the_default_subcommand(request) -> None:
    backends = ",".join(sorted({b.name for b in request.config.stash[_key()]}))
    plain, named = _run("--backends", backends), _run("info", "--backends", backends)
    assert plain.returncode == named.returncode == 0
    assert plain.stdout.splitlines()[-1] == named.stdout.splitlines()[-1]


def test_cli_missing_backend_is_an_error(monkeypatch, capsys) -> None:
    monkeypatch.setattr("xplearn._cli.frameworks.installed_backends", lambda: ["numpy"])
    assert main(["info", "--backends", "jax"]) == 2
    err = capsys.readouterr().err
    assert "requested but not installed: jax" in err
    assert 'pip install "xplearn[jax]"' in err


@pytest.mark.parametrize("command", ["info", "demo"])
def test_cli_unknown_backend_says_unknown(command) -> None:
    out = _run(command, "--backends", "foo")
    assert out.returncode == 2
    assert "unknown backend(s): foo; choose from numpy" in out.stderr
    assert "not installed" not in out.stderr


def test_cli_nothing_installed_says_what_to_do(monkeypatch, capsys) -> None:
    monkeypatch.setattr("xplearn._cli.frameworks.installed_backends", list)
    assert main([]) == 2
    assert "no array framework is installed: pip install" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv0", "prog"),
    [("/venv/bin/xplearn", "usage: xplearn"), ("x/__main__.py", "usage: python -m")],
)
def test_help_usage_line(monkeypatch, capsys, argv0, prog) -> None:
    monkeypatch.setattr(sys, "argv", [argv0])
    for command in ([], ["info"], ["demo"], ["bench"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        text = capsys.readouterr().out
        assert text.startswith(prog), text
        assert "`" not in text  # no raw reST or Markdown markup


def test_version(capsys) -> None:
    import xplearn

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == xplearn.__version__


def test_console_script_is_declared() -> None:
    import tomllib
    from pathlib import Path

    root = Path(__file__).parents[1]
    meta = tomllib.loads((root / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["xplearn"] == "xplearn.__main__:main"


def test_tensorflow_start_up_log_is_silenced(request) -> None:
    if "tensorflow" not in {b.name for b in request.config.stash[_key()]}:
        pytest.skip("tensorflow not among the requested --backends")
    out = _run("info", "--backends", "tensorflow")
    assert out.returncode == 0, out.stdout + out.stderr
    for noise in ("I0000", "E0000", "absl::InitializeLog", "cuInit"):
        assert noise not in out.stderr, out.stderr


def _key():
    from conftest import _KEY

    return _KEY
