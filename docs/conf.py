"""Sphinx configuration of the dpdispatcher documentation.

Build with ``pip install -e .[docs]`` then ``sphinx-build -W -b html docs docs/_build/html``.
The parameter pages, the table of batch/context types and the CLI page are generated from
the code at build time (see ``_ext/dpdisp_docs.py``).
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "_ext"))
sys.path.insert(0, os.path.dirname(HERE))  # the package, when it is not installed

import dpdispatcher  # noqa: E402

project = "dpdispatcher"
author = "dpdispatcher developers"
copyright = "dpdispatcher developers; LGPL-3.0-or-later"
release = dpdispatcher.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "dargs.sphinx",
    "dpdisp_docs",
    "myst_parser",
]
myst_enable_extensions = ["colon_fence", "deflist"]

exclude_patterns = ["_build"]
templates_path: list[str] = []
default_role = "literal"  # `x` in the schemas' doc strings renders as code
html_theme = "alabaster"
html_static_path: list[str] = []
html_title = f"dpdispatcher {release}"

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
