"""``xplearn demo``: every requested framework agrees with numpy float64."""

import subprocess
import sys

import numpy as np
import pytest

from xplearn._cli import demo, main


def _requested(request) -> list[str]:
    from conftest import _KEY

    return sorted({b.name for b in request.config.stash[_KEY]})


def test_demo_quick_on_every_requested_backend(request, tmp_path) -> None:
    backends = _requested(request)
    png = tmp_path / "demo.png"
    out = subprocess.run(
        [
            *(sys.executable, "-m", "xplearn", "demo", "--quick"),
            *("--png", str(png), "--backends", ",".join(backends)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [line.split()[0] for line in out.stdout.splitlines() if line.strip()]
    for name in [*backends, "scikit-learn"]:
        assert rows.count(name) >= 4, out.stdout  # digits and blobs, KNN and KMeans
    assert "blobs 20,000 × 32 KMeans" in out.stdout
    assert "0 disagree or failed" in out.stdout
    assert "[1/" in out.stderr  # the progress line
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "no plot: matplotlib is not installed" in out.stdout
    else:
        assert png.read_bytes().startswith(b"\x89PNG")


_TASKS = demo.tasks


def _digits_only(*, quick: bool) -> list[demo.Task]:
    return _TASKS(quick=quick)[:2]


def test_demo_exits_1_on_a_planted_disagreement(monkeypatch, capsys) -> None:
    real = demo.reference

    def wrong(task: demo.Task):
        ref = real(task)
        if task.kind == "knn":
            return (ref + 1) % 10  # every prediction now disagrees
        return ref

    monkeypatch.setattr(demo, "tasks", _digits_only)
    monkeypatch.setattr(demo, "reference", wrong)
    status = main(["demo", "--quick", "--no-plot", "--backends", "numpy"])
    out = capsys.readouterr().out
    assert status == 1
    assert "DISAGREE 0.00% equal" in out
    assert "disagree or failed" in out
    assert "0 disagree" not in out


def test_demo_exits_1_when_a_framework_fails(monkeypatch, capsys) -> None:
    def broken(task, put):
        raise RuntimeError("planted")

    monkeypatch.setattr(demo, "tasks", _digits_only)
    real = demo.run_task
    monkeypatch.setattr(
        demo,
        "run_task",
        lambda task, put: broken(task, put) if put.args else real(task, put),
    )
    monkeypatch.setattr(demo, "reference", lambda task: real(task, np.asarray)[0])
    assert main(["demo", "--quick", "--no-plot", "--backends", "numpy"]) == 1
    assert "RuntimeError: planted" in capsys.readouterr().out


def test_kmeans_agreement_up_to_renumbering() -> None:
    labels = np.array([0, 0, 1, 1, 2])
    assert demo._matched(np.array([2, 2, 0, 0, 1]), labels) == 1.0
    assert demo._matched(np.array([2, 2, 0, 1, 1]), labels) == pytest.approx(0.8)
