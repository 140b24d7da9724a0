"""Run scikit-learn's neighbours and k-means tests against xplearn.

    python sklearn_suite/run.py                 # the check (nox -s sklearn_suite)
    python sklearn_suite/run.py --measure       # counts without the list
    python sklearn_suite/run.py --write-list    # rewrite known_failures.txt
    python sklearn_suite/run.py --no-swap       # scikit-learn's own estimators
    python sklearn_suite/run.py -- -k radius    # extra pytest arguments

The test files are copied from the installed scikit-learn into
``build/sklearn_suite`` with only their imports swapped (``swap.py``), then
run with pytest, float32 tests included (``SKLEARN_RUN_FLOAT32_TESTS=1``,
as scikit-learn's CI does).  The check passes when exactly the tests listed in
``known_failures.txt`` fail; it prints how many of all the tests pass.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from swap import generate  # noqa: E402

from conftest import known_failures  # noqa: E402

UNREVIEWED = "unreviewed: new failure, give its reason"


def _results(xml: Path) -> dict[str, str]:
    """``{node id: outcome}`` from pytest's JUnit XML."""
    out = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        node = f"{module}.py::{case.get('name')}"
        tags = {child.tag for child in case}
        skipped = case.find("skipped")
        if "failure" in tags or "error" in tags:
            outcome = "failed"
        elif skipped is not None and skipped.get("type") == "pytest.xfail":
            outcome = "xfailed"
        elif skipped is not None:
            outcome = "skipped"
        else:
            outcome = "passed"
        out[node] = outcome
    return out


def _write_list(path: Path, failing: list[str]) -> None:
    """Rewrite the list: the failing tests, keeping each one's reviewed reason."""
    old = known_failures(path)
    header = [
        ln
        for ln in path.read_text(encoding="utf-8").splitlines()
        if ln.startswith("# ") or ln == "#"
    ]
    by_reason: dict[str, list[str]] = {}
    for node in failing:
        by_reason.setdefault(old.get(node, UNREVIEWED), []).append(node)
    lines = [*header, ""]
    for reason in sorted(by_reason, key=lambda r: (r == UNREVIEWED, r)):
        lines += [f"## {reason}", *sorted(by_reason[reason]), ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dest", type=Path, default=HERE.parent / "build" / "sklearn_suite"
    )
    parser.add_argument("--measure", action="store_true", help="ignore the list")
    parser.add_argument("--write-list", action="store_true", help="rewrite the list")
    parser.add_argument(
        "--no-swap", action="store_true", help="scikit-learn's own estimators"
    )
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    args.dest = args.dest.resolve()
    for line in generate(args.dest, swap=not args.no_swap):
        print(line)
    xml = args.dest / "results.xml"
    ignore = args.measure or args.write_list or args.no_swap
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        f"--junitxml={xml}",
        "--ignore-list" if ignore else "--check-list",
        *args.pytest_args,
    ]
    env = {**os.environ, "SKLEARN_RUN_FLOAT32_TESTS": "1"}
    rc = subprocess.call(cmd, cwd=args.dest, env=env)
    results = _results(xml)
    n = len(results)
    passed = sum(v == "passed" for v in results.values())
    failing = sorted(k for k, v in results.items() if v in ("failed", "xfailed"))
    skipped = sum(v == "skipped" for v in results.values())
    who = "scikit-learn" if args.no_swap else "xplearn"
    print(
        f"\nscikit-learn's tests with {who}: {passed} of {passed + len(failing)} "
        f"pass ({len(failing)} fail; {skipped} skipped of {n})"
    )
    if args.write_list:
        _write_list(HERE / "known_failures.txt", failing)
        print(f"wrote {len(failing)} failing tests to known_failures.txt")
        return 0
    return 0 if ignore else rc


if __name__ == "__main__":
    raise SystemExit(main())
