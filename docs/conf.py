"""Sphinx configuration for xplearn's documentation site."""

import contextlib
import os
import sys
from pathlib import Path

import xplearn

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import _generate  # noqa: E402  (docs/ is on the path only from here on)

# TensorFlow's C++ start-up log is not part of any page (the examples use it).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# absl's first lines ignore that variable: import TensorFlow here once, as
# `xplearn info` does, with the descriptor silenced, so that the gallery's
# imports of it are quiet too.
with contextlib.suppress(ImportError):
    from xplearn._cli.frameworks import load

    load("tensorflow")

_generate.write_all()

project = "xplearn"
author = "The xplearn developers"
copyright = "2026, the xplearn developers (BSD-3-Clause)"
version = release = xplearn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_generated", "README.md"]
templates_path = ["_templates"]

autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_validation_checks: set[str] = set()
myst_heading_anchors = 3

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "show_memory": False,
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "image_scrapers": ("matplotlib",),
}

html_theme = "pydata_sphinx_theme"
html_title = f"xplearn {release}"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}
html_static_path: list[str] = []
html_show_sourcelink = False
