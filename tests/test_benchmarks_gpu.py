"""``benchmarks/gpu.py`` runs end to end without a GPU (``--device cpu --quick``).

Not a timing test: only a machine with a GPU runs that script for real, so
this checks, on the CPU, that it still runs, writes its results, and that
xplearn's answers in it equal the float64 reference.  Slow (tens of seconds):
``pytest --runslow``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_benchmark_runs_on_cpu(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    path = [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--device", "cpu"]
    cmd += ["--quick", "--backends", "torch", "--profile", "--out", str(tmp_path)]
    done = subprocess.run(
        cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]

    results = json.loads((tmp_path / "gpu.json").read_text())
    assert "## Issue 10's GPU targets" in (tmp_path / "gpu.md").read_text()
    assert not [w for w in results["warnings"] if "failed" in w]
    assert len(results["kneighbors"]) == 3
    for section in results["kneighbors"]:
        rows = section["contenders"]
        assert {"xplearn (torch)", "addmm + topk per query chunk"} <= set(rows)
        assert rows["xplearn (torch)"]["agreement"]["exact"]
        assert rows["fp32 GEMM alone"]["gflops"] > 0
    assert set(results["profile"]["contenders"]) == {
        "xplearn (torch)",
        "addmm + topk per query chunk",
    }
    assert len(results["kmeans"]) == 2
    for section in results["kmeans"]:
        rows = section["contenders"]
        hand = rows["hand-written torch (addmm, argmin, index_add_)"]
        ours = rows["xplearn lloyd (torch)"]
        assert 1 <= ours["n_iter"] <= hand["n_iter"] == section["iterations"]
        assert abs(ours["inertia_vs_hand"]) < 1e-4
        for part in section["parts"].values():
            assert part.get("max_relative_error", 0) < 1e-5
