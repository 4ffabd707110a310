"""Sphinx configuration of the ratlip-layers documentation.

Build: ``make -C docs html`` (or ``sphinx-build -W --keep-going -b html docs docs/_build/html``);
doctests: ``make -C docs doctest``. The local extensions in ``_ext/`` generate what would otherwise
be maintained by hand: the API reference (from each package's ``__all__``), the figures, the
benchmark tables and the link inventories.
"""

from __future__ import annotations

import doctest
import sys
from pathlib import Path

import ratlip_layers

sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

project = "ratlip-layers"
author = "ratlip-layers developers"
copyright = f"2026, {author}"
release = ratlip_layers.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # ships MathJax in _static/mathjax: equations typeset with no network
    "sphinx_copybutton",
    "api_reference",
    "benchmark_tables",
    "canonical_refs",
    "figures",
    "offline_inventories",
]

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

# Every cross-reference must resolve: a broken link fails the build like any other warning under -W.
nitpicky = True

# --- API reference (_ext/api_reference.py) ---------------------------------------------------------
api_reference_package = "ratlip_layers"
api_reference_dir = "api"
# Pages follow the data path: layers, CLIP, the assembled networks, then training and its helpers.
api_reference_order = ("layers", "clip", "models", "training", "data", "metrics")

autosummary_generate = False  # the stub pages are written by api_reference
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "all"
autoclass_content = "class"
autodoc_preserve_defaults = True
# An undocumented override (forward, train) must not show nn.Module's docstring as if it were ours.
autodoc_inherit_docstrings = False

napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_custom_sections = ["Shape"]

# --- Links to Python, PyTorch, NumPy (and TorchMetrics, Pillow) without a network ------------------
# The build runs offline (CI has no internet): intersphinx could not fetch the projects' objects.inv,
# and -W would turn that into an error. Instead each project has a small plain-text inventory in
# _inventories/ listing the objects these docs reference, mapped to their real URLs (the decompressed
# form of an objects.inv, as `sphobjinv convert plain` writes it); _ext/offline_inventories.py
# compresses them into objects.inv files at build time, so links are ordinary intersphinx links.
# _ext/canonical_refs.py maps defining-module paths (torch.nn.modules.rnn.LSTMCell) onto these names.
# With nitpicky on, a reference to an object missing from them fails the build: add its line to the
# matching .txt file; tests/test_docs.py checks that every listed name imports.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", "_inventories/python.txt"),
    "torch": ("https://docs.pytorch.org/docs/stable", "_inventories/pytorch.txt"),
    "numpy": ("https://numpy.org/doc/stable", "_inventories/numpy.txt"),
    "torchmetrics": ("https://lightning.ai/docs/torchmetrics/latest", "_inventories/torchmetrics.txt"),
    "pillow": ("https://pillow.readthedocs.io/en/stable", "_inventories/pillow.txt"),
}

# --- Doctests: the namespace pytest's src/ratlip_layers/conftest.py gives docstrings ---------------
# Unlike pytest's --doctest-modules, examples here do not see their module's globals: an example runs
# as a reader would run it, with these imports and what it imports itself.
doctest_global_setup = """
import torch
from torch import nn
import ratlip_layers
from ratlip_layers import *
# Docstring examples use their own module's names, as pytest's --doctest-modules gives them.
from ratlip_layers.layers import *
from ratlip_layers.clip import *
from ratlip_layers.models import *
torch.manual_seed(0)
"""
doctest_default_flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | doctest.DONT_ACCEPT_TRUE_FOR_1

# --- Maths without a network --------------------------------------------------------------------
# sphinx.ext.mathjax would load MathJax from a CDN, so offline readers saw raw TeX. The
# sphinx-mathjax-offline package copies its bundled MathJax 3 into _static/mathjax when the build
# finishes; point the pages at that copy (the extension sets the same path; stating it here keeps it
# explicit). tests/test_docs_build.py checks that no page loads its maths from http(s).
mathjax_path = "mathjax/tex-chtml.js"

# --- HTML -------------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"ratlip-layers {release}"
html_theme_options = {"navigation_with_keys": True}
html_static_path = ["_static"]
html_css_files = ["custom.css"]  # small layout fixes for reading at a laptop's width
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
