"""The support matrix: one table in the code, shown unchanged by the docs and README."""

import importlib.util
import re
from pathlib import Path

from backends import ALL_BACKENDS
from xplearn._namespace import BACKENDS
from xplearn._support import SUPPORT, markdown_table, rst_table

ROOT = Path(__file__).parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location(
        "_generate", ROOT / "docs/_generate.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_follow_the_backend_table() -> None:
    assert list(dict.fromkeys(r.backend for r in SUPPORT)) == list(BACKENDS)
    assert tuple(BACKENDS) == ALL_BACKENDS  # the test suite's list too


def test_docs_page_is_generated_from_the_code(tmp_path) -> None:
    page = (ROOT / "docs/backends.rst").read_text()
    assert ".. include:: _generated/backends_table.rst" in page
    assert "list-table" not in page  # no hand-written copy beside it
    assert "|" not in page
    (written,) = _generator().write_all(tmp_path)
    assert written.read_text() == rst_table()
    for row in SUPPORT:
        assert f"* - {row.label}" in rst_table()


def test_generated_table_changes_with_the_code(monkeypatch, tmp_path) -> None:
    import dataclasses

    import xplearn._support as support

    changed = (dataclasses.replace(SUPPORT[0], notes="planted note"), *SUPPORT[1:])
    monkeypatch.setattr(support, "SUPPORT", changed)
    (written,) = _generator().write_all(tmp_path)
    assert "planted note" in written.read_text()


def test_built_page_shows_the_table_when_built() -> None:
    html = ROOT / "docs/_build/html/backends.html"
    if not html.exists():
        return  # `nox -s docs` builds it; the source checks above hold regardless
    text = html.read_text()
    for row in SUPPORT:
        assert row.label.replace("(", "").split()[0] in text


def test_readme_table_is_the_code_table() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Backend support", 1)[1]
    table = "\n".join(
        line for line in section.splitlines() if line.startswith("|")
    ).strip()
    assert table == markdown_table(), (
        "README's backend table differs from xplearn._support; paste "
        'python -c "import xplearn._support as s; print(s.markdown_table())"'
    )


def test_rst_cells_have_no_markdown_left() -> None:
    assert not re.search(r"(?<!`)`(?!`)", rst_table())
