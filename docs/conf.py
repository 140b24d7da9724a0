"""Sphinx configuration for xplearn."""

project = "xplearn"
author = "The xplearn developers"
extensions = ["sphinx.ext.autodoc", "numpydoc"]
numpydoc_show_class_members = False
html_theme = "alabaster"
exclude_patterns = ["_build"]
