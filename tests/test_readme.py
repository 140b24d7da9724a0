"""The README's code: each Python block runs as it stands, each command exists."""

import ast
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from xplearn._cli import parser

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def _requested(request) -> set[str]:
    from conftest import _KEY

    return {b.name for b in request.config.stash[_KEY]}


def test_readme_has_the_examples() -> None:
    assert len(_blocks("python")) == 4
    assert "python -m xplearn demo" in _blocks("bash")[0]


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_python_block_runs_alone_and_prints(request, index) -> None:
    code = _blocks("python")[index]
    found = set(re.findall(r"\b(torch|tensorflow|dask|jax)\b", code))
    needs = {"torch", "tensorflow", "dask", "jax"} & found
    if not needs <= _requested(request):
        pytest.skip(f"needs {sorted(needs)} among the requested --backends")
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip(), "the example prints nothing when run as a script"
    if index == 1:
        assert "tensorflow" in out.stdout  # <class '...tensorflow...EagerTensor'>


def _commands() -> list[list[str]]:
    lines = []
    for block in _blocks("bash"):
        for raw in block.splitlines():
            line = raw.split("#", 1)[0].strip()
            lines += [shlex.split(part) for part in line.split("&&") if part.strip()]
    inline = re.findall(r"`((?:python -m |)(?:xplearn|nox|pytest)[^`]*)`", README)
    return lines + [shlex.split(c) for c in inline]


def test_xplearn_commands_parse() -> None:
    seen = 0
    for words in _commands():
        if words[:3] == ["python", "-m", "xplearn"] or words[:1] == ["xplearn"]:
            args = words[3:] if words[0] == "python" else words[1:]
            args = [a for a in args if a not in {"DIR", "[--quick]", "[--out"}]
            if "[--out" in words or "DIR]" in words:
                continue  # the synopsis, not a command
            from xplearn._cli import _with_default_command

            parser().parse_args(_with_default_command(args))
            seen += 1
    assert seen >= 2


def _nox_sessions() -> set[str]:
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    names = set()
    backends: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == (
            "BACKENDS"
        ):
            backends = [k.value for k in node.value.keys]
        if isinstance(node, ast.FunctionDef) and any(
            "session" in ast.unparse(d) for d in node.decorator_list
        ):
            names.add(node.name)
            if any("parametrize" in ast.unparse(d) for d in node.decorator_list):
                names |= {f"{node.name}({b})" for b in backends}
    return names


def test_nox_sessions_named_in_the_readme_exist() -> None:
    sessions = _nox_sessions()
    named = re.findall(r'nox -s "?([\w()]+)"?', README)
    assert named, "the README names no nox session"
    for name in named:
        assert name in sessions, f"{name} is not a session of noxfile.py"
    assert "tests(torch)" in named


def test_noxfile_gives_the_short_ids() -> None:
    text = (ROOT / "noxfile.py").read_text()
    assert "ids=list(BACKENDS)" in text
    tree = ast.parse(text)
    sessions = next(
        ast.literal_eval(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and ast.unparse(node.targets[0]) == "nox.options.sessions"
    )
    assert "docs" in sessions


def test_test_extra_matches_the_test_group() -> None:
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extra = set(meta["project"]["optional-dependencies"]["test"])
    group = set(meta["dependency-groups"]["test"])
    deps = {d.split(">")[0] for d in meta["project"]["dependencies"]}
    assert {g for g in group if g.split(">")[0] not in deps} == extra
