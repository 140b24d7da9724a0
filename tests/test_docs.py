"""The documentation lists every public name, and its gallery scripts exist."""

import re
from pathlib import Path

import xplearn
import xplearn.cluster

ROOT = Path(__file__).parents[1]
API = (ROOT / "docs/api.rst").read_text()


def _listed() -> set[str]:
    names, module = set(), "xplearn"
    for line in API.splitlines():
        if line.startswith(".. currentmodule::"):
            module = line.split()[-1]
        elif re.fullmatch(r"   [A-Za-z_]\w*", line):
            names.add(f"{module}.{line.strip()}")
    return names


def test_api_page_lists_every_public_name() -> None:
    public = {f"xplearn.{n}" for n in xplearn.__all__ if n != "__version__"}
    public |= {f"xplearn.cluster.{n}" for n in xplearn.cluster.__all__}
    # the README's "What is there" table names the rest
    table = readme_table()
    for module, names in table.items():
        public |= {f"{module}.{n}" for n in names}
    assert public <= _listed(), sorted(public - _listed())


def readme_table() -> dict[str, list[str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## What is there", 1)[1].split("\n## ", 1)[0]
    table = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`xplearn"):
            names = re.findall(r"`(\w+)`", cells[1])
            # `partial_fit` in "MiniBatchKMeans (with `partial_fit`)" is a method
            methods = {"partial_fit"}
            table[cells[0].strip("`")] = [n for n in names if n not in methods]
    return table


def test_every_listed_name_exists() -> None:
    import importlib

    for name in _listed():
        module, _, attr = name.rpartition(".")
        assert hasattr(importlib.import_module(module), attr), name


def test_gallery_check_finds_missing_figures(tmp_path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_generate", ROOT / "docs/_generate.py"
    )
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    pages = tmp_path / "auto_examples"
    pages.mkdir()
    (pages / "plot_tensorflow.html").write_text("<p>no image</p>")
    problems = generate.check_built(tmp_path)
    assert any("plot_tensorflow.html has no figure" in p for p in problems)
    assert any("plot_benchmarks.html was not built" in p for p in problems)
    # a page that shows a figure whose file was never written
    img = '<img src="../_images/sphx_glr_plot_tensorflow_001.png" />'
    (pages / "plot_tensorflow.html").write_text(img)
    problems = generate.check_built(tmp_path)
    assert any("sphx_glr_plot_tensorflow_001.png, which was not" in p for p in problems)
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images/sphx_glr_plot_tensorflow_001.png").write_bytes(b"")
    assert not any("plot_tensorflow" in p for p in generate.check_built(tmp_path))
