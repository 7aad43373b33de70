"""Sphinx configuration of the fastfc documentation.

Build it from the project root with the docs extra installed::

    pip install ".[docs]"
    sphinx-build -W -b html docs docs/_build/html

``-W`` turns every warning into an error: a broken cross-reference to a fastfc object,
a public name without a docstring or a page (see ``_ext/fastfc_api.py``), a docstring
numpydoc cannot parse, or a gallery example that raises all fail the build.  The
examples in ``examples/`` run during the build (sphinx-gallery), on the digits data
embedded in scikit-learn, in seconds.
"""
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "_ext"))

try:  # the installed fastfc; an in-place build is found through PYTHONPATH=src
    import fastfc
except ImportError as exc:  # pragma: no cover - a message for whoever builds the docs
    raise ImportError("building the docs needs fastfc installed (pip install \".[docs]\") "
                      "or built in place with PYTHONPATH=src") from exc

import fastfc_api  # noqa: E402

# Headless plotting for the examples and the autosummary imports.
os.environ.setdefault("MPLBACKEND", "Agg")

project = "fastfc"
author = "fastfc developers"
copyright = "fastfc developers"
release = fastfc.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "fastfc_api",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
# compatibility.md is included whole by user_guide/migrating.md
exclude_patterns = ["_build", "compatibility.md", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "auto_examples/*.json",
                    "auto_examples/*.md5", "auto_examples/*.codeobj.json"]

# ----------------------------------------------------------------- references
# Every cross-reference to a fastfc object must resolve (nitpicky); references into
# NumPy, SciPy, scikit-learn or the standard library are left as text (no intersphinx:
# the build needs no network).
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(?!fastfc\b).*"),
    # private modules and names (``fastfc._protocols``, ``..._fused.FusedStep``) have no
    # pages by design; a docstring may still name them
    (r"py:.*", r"fastfc(\.\w+)*\._\w+.*"),
]
default_role = "py:obj"

# ----------------------------------------------------------------- API reference
_table = fastfc_api.api_table()
fastfc_api_table = _table
autosummary_generate = True
autosummary_generate_overwrite = True
autosummary_imported_members = False
autosummary_ignore_module_all = False
autosummary_context = {
    "fastfc_own": {m: [e._asdict() for e in entries]
                   for m, entries in fastfc_api.own_names(_table).items()},
    "fastfc_reexports": {m: [e._asdict() for e in entries]
                         for m, entries in fastfc_api.reexports(_table).items()},
}
autodoc_typehints = "none"          # numpydoc's Parameters sections give the types
autodoc_member_order = "bysource"
autodoc_default_options = {}
add_module_names = False

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# an object without a docstring is reported by the fastfc_api extension (which, unlike
# numpydoc's GL08, accepts a docstring a method inherits)

# ----------------------------------------------------------------- MyST (user guide)
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# ----------------------------------------------------------------- examples gallery
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    # run every example (not only plot_*); an example that raises fails the build
    "filename_pattern": r".*\.py$",
    "ignore_pattern": r"(__init__|conftest)\.py$",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "reset_modules": ("matplotlib",),
    "capture_repr": (),
    "show_memory": False,
    "min_reported_time": 1,
    "backreferences_dir": None,
    "plot_gallery": "True",
}

# ----------------------------------------------------------------- HTML
html_theme = "pydata_sphinx_theme"
html_title = f"fastfc {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False


# ----------------------------------------------------------------- CLI help texts
def _write_cli_help():
    """Write ``fastfc --help`` and each subcommand's ``--help`` to user_guide/_cli/,
    which user_guide/cli.md includes; returns the subcommand names."""
    import argparse

    from fastfc.cli import build_parser

    out = HERE / "user_guide" / "_cli"
    out.mkdir(exist_ok=True)
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "88"          # argparse wraps to $COLUMNS
    try:
        parser = build_parser()
        texts = {"fastfc": parser.format_help()}
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        for name, subparser in sub.choices.items():
            texts[name] = subparser.format_help()
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    for name, text in texts.items():
        path = out / f"{name}.txt"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return [name for name in texts if name != "fastfc"]


_CLI_COMMANDS = _write_cli_help()


def _check_cli_page(app):
    """Warn (an error under -W) when a subcommand has no section in cli.md."""
    from sphinx.util import logging

    text = (HERE / "user_guide" / "cli.md").read_text(encoding="utf-8")
    for name in _CLI_COMMANDS:
        if f"## fastfc {name}\n" not in text or f"_cli/{name}.txt" not in text:
            logging.getLogger("fastfc_cli").warning(
                f"user_guide/cli.md has no section with the help of 'fastfc {name}'")


def setup(app):
    app.connect("builder-inited", _check_cli_page)
