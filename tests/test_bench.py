"""``xplearn bench``: finds the repository's suite, runs it, says what is missing."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from xplearn._cli import bench, main

ROOT = Path(__file__).parents[1]


def test_bench_finds_the_suite_of_this_checkout(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # not from ./benchmarks: from beside src/
    if (Path(bench.__file__).resolve().parents[2] / "benchmarks").is_dir():
        assert bench.find_suite(None) == ROOT / "benchmarks"
    assert bench.find_suite(ROOT / "benchmarks") == ROOT / "benchmarks"


def test_bench_without_the_suite_says_where_to_get_it(tmp_path, capsys) -> None:
    status = main(["bench", "--quick", "--suite", str(tmp_path), "--out", "x"])
    assert status == 2
    err = capsys.readouterr().err
    assert "the benchmark suite was not found" in err
    assert "from a clone" in err


def test_bench_names_the_missing_peers(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setitem(bench.NEEDS, "no_such_module_xyz", "no-such-package")
    status = main(["bench", "--quick", "--out", str(tmp_path)])
    assert status == 2
    err = capsys.readouterr().err
    assert "pip install" in err
    assert "no-such-package" in err
    assert "nox -s bench" in err


@pytest.mark.skipif(
    bool(bench.missing_peers()),
    reason=f"the benchmarks' peers are not installed: {bench.missing_peers()}",
)
def test_bench_quick_writes_tables_and_plots(tmp_path) -> None:
    out = tmp_path / "results"
    run = subprocess.run(
        [sys.executable, "-m", "xplearn", "bench", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    written = {p.name for p in out.iterdir()}
    assert {"kneighbors.md", "kneighbors.png", "knn_classifier.md"} <= written
    assert {"kmeans.md", "kmeans.png"} <= written
    assert "tables and plots in" in run.stdout


def test_bench_passes_a_failing_script_status_on(monkeypatch, tmp_path) -> None:
    suite = tmp_path / "benchmarks"
    suite.mkdir()
    (suite / "run.py").write_text("import sys; sys.exit(3)\n")
    (suite / "kmeans.py").write_text("raise AssertionError('not reached')\n")
    monkeypatch.setattr(bench, "missing_peers", list)
    status = bench.run(quick=True, out=tmp_path / "out", suite=suite)
    assert status == 3


def test_peers_are_the_bench_group() -> None:
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    group = " ".join(meta["dependency-groups"]["bench"])
    for pip in bench.NEEDS.values():
        assert pip in group or pip == "torch", pip
    assert importlib.util.find_spec("xplearn._cli.bench") is not None
