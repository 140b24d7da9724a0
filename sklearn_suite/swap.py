"""Copy scikit-learn's own test files and swap in xplearn's estimators.

Only import statements change: every name that ``xplearn.neighbors`` or
``xplearn.cluster`` exports (its ``__all__``) is imported from xplearn instead
of scikit-learn, and a module imported whole (``from sklearn import
neighbors``) becomes a module whose exported names are xplearn's and whose
other attributes (``BallTree``, ``VALID_METRICS``, private modules) are still
scikit-learn's.  Everything else in the files is scikit-learn's text.
"""

from __future__ import annotations

import ast
import importlib
import shutil
from pathlib import Path

# scikit-learn test files run against xplearn, relative to the sklearn package.
FILES = (
    "neighbors/tests/test_neighbors.py",
    "cluster/tests/test_k_means.py",
)
# scikit-learn modules whose public names xplearn provides (same subpackage).
SWAPPED = {
    "sklearn.neighbors": "xplearn.neighbors",
    "sklearn.cluster": "xplearn.cluster",
}

HERE = Path(__file__).parent


def provided(module: str) -> set[str]:
    """Names of ``module`` (a scikit-learn module) that xplearn provides."""
    target = SWAPPED.get(module)
    if target is None:
        return set()
    return set(importlib.import_module(target).__all__)


def rewrite(source: str) -> tuple[str, list[str]]:
    """``source`` with its imports of xplearn-provided names swapped.

    Returns the new text and a list of the swaps made (for the report).
    """
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    edits: list[tuple[int, int, str]] = []
    swaps: list[str] = []
    for node in tree.body:
        if not isinstance(node, ast.ImportFrom) or node.level or node.module is None:
            continue
        keep, new = [], []
        for alias in node.names:
            full = f"{node.module}.{alias.name}"
            bound = alias.asname or alias.name
            if full in SWAPPED:  # a whole subpackage: from sklearn import neighbors
                new.append(f"{bound} = _swap.module({full!r})\n")
                swaps.append(f"{full} -> {SWAPPED[full]} (exported names)")
            elif alias.name in provided(node.module):
                target = SWAPPED[node.module]
                new.append(f"from {target} import {alias.name} as {bound}\n")
                swaps.append(f"{full} -> {target}.{alias.name}")
            else:
                keep.append(alias)
        if not new:
            continue
        text = ""
        if keep:
            names = ", ".join(
                a.name if a.asname is None else f"{a.name} as {a.asname}" for a in keep
            )
            text = f"from {node.module} import {names}\n"
        if any("_swap." in n for n in new):
            text += "from sklearn_suite_swap import swap as _swap\n"
        text += "".join(new)
        edits.append((node.lineno - 1, node.end_lineno or node.lineno, text))
    for start, end, text in sorted(edits, reverse=True):
        lines[start:end] = [text]
    return "".join(lines), swaps


def generate(dest: Path, *, swap: bool = True) -> list[str]:
    """Write the rewritten test files, conftest and pytest.ini into ``dest``.

    ``swap=False`` copies the files unchanged (scikit-learn's own count).
    """
    import sklearn

    root = Path(sklearn.__file__).parent
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    report = [f"scikit-learn {sklearn.__version__} from {root}"]
    for rel in FILES:
        text = (root / rel).read_text(encoding="utf-8")
        text, swaps = rewrite(text) if swap else (text, [])
        (dest / Path(rel).name).write_text(text, encoding="utf-8")
        report += [f"{Path(rel).name}: {s}" for s in swaps]
    pkg = dest / "sklearn_suite_swap"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    shutil.copy(HERE / "swapmodule.py", pkg / "swap.py")
    shutil.copy(HERE / "conftest.py", dest / "conftest.py")
    shutil.copy(HERE / "known_failures.txt", dest / "known_failures.txt")
    (dest / "pytest.ini").write_text(
        "[pytest]\n"
        "addopts = -p no:cacheprovider -ra\n"
        "xfail_strict = true\n"
        "markers =\n"
        "    network: scikit-learn's marker\n"
        "    thread_unsafe: scikit-learn's marker\n",
        encoding="utf-8",
    )
    return report
