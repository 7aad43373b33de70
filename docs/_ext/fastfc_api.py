"""The public API of fastfc, as the documentation sees it, and the checks on it.

A *public module* is every module of the package whose dotted name has no part starting
with an underscore.  Its *public names* are its ``__all__`` (every public module has
one, or else the functions and classes it defines whose names have no leading
underscore).  Every public name has one *home*: the public module that documents it --
the module that defines it when that module is public, else the first public module
(shortest name first) that exports it (e.g. ``fastfc.threads``, defined in the private
``fastfc._threads``).  Every other module exporting the name links to the home page.

The Sphinx extension checks, and warns (the build runs with ``-W``, so a warning fails
it) when:

* a public module is missing from ``docs/api/index.rst``'s list, or listed but gone;
* a public module, function or class has no docstring, or a module-level constant has
  no ``#:`` comment;
* after reading, a public name has no entry in the Python domain (so no page);
* a method or property shown on a class's page has no docstring (not even an
  inherited one).

``python docs/_ext/fastfc_api.py`` prints the table (home, kind, name) for a look.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import types
from pathlib import Path
from typing import Any, NamedTuple

API_INDEX = Path(__file__).resolve().parents[1] / "api" / "index.rst"


class Entry(NamedTuple):
    """One public name of one public module."""

    module: str      # the module that exports it
    name: str        # the exported name
    home: str        # the module whose page documents it
    kind: str        # 'module', 'function', 'class', 'exception' or 'data'
    target: str      # the documented dotted name (home + '.' + name, or the module)


def public_modules() -> list[str]:
    """Dotted names of fastfc's public modules, sorted."""
    import fastfc

    names = ["fastfc"]
    for info in pkgutil.walk_packages(fastfc.__path__, "fastfc."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        names.append(info.name)
    return sorted(names)


def public_names(module: types.ModuleType) -> list[str]:
    """The module's ``__all__``, else its own public functions and classes."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    own = []
    for name, obj in vars(module).items():
        if name.startswith("_"):
            continue
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and \
                getattr(obj, "__module__", None) == module.__name__:
            own.append(name)
    return own


def _kind(obj: Any) -> str:
    if isinstance(obj, types.ModuleType):
        return "module"
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if callable(obj):
        return "function"
    return "data"


def api_table() -> list[Entry]:
    """Every (module, public name) pair with the name's home and kind."""
    modules = {name: importlib.import_module(name) for name in public_modules()}
    exported = {m: public_names(mod) for m, mod in modules.items()}
    # order in which a home is looked for: shortest dotted name first
    search = sorted(modules, key=lambda m: (m.count("."), m))
    entries = []
    for m, names in exported.items():
        for name in names:
            obj = getattr(modules[m], name)
            kind = _kind(obj)
            if kind == "module":
                entries.append(Entry(m, name, obj.__name__, kind, obj.__name__))
                continue
            defined_in = getattr(obj, "__module__", None) if kind != "data" else None
            if defined_in in exported and name in exported[defined_in]:
                home = defined_in
            elif kind == "data" and name in vars(modules[m]) and _defines_data(m, name):
                home = m
            else:
                home = next(h for h in search
                            if name in exported[h] and getattr(modules[h], name) is obj)
            entries.append(Entry(m, name, home, kind, f"{home}.{name}"))
    return sorted(entries)


def _defines_data(module: str, name: str) -> bool:
    """Whether the source of ``module`` assigns ``name`` at top level."""
    source = inspect.getsource(importlib.import_module(module))
    return re.search(rf"^{re.escape(name)}\s*(:[^=]*)?=", source, re.M) is not None


def own_names(table: list[Entry]) -> dict[str, list[Entry]]:
    """{module: the entries it documents itself}."""
    out: dict[str, list[Entry]] = {m: [] for m in public_modules()}
    for e in table:
        if e.home == e.module and e.kind != "module":
            out[e.module].append(e)
    return out


def reexports(table: list[Entry]) -> dict[str, list[Entry]]:
    """{module: the entries documented on another page}."""
    out: dict[str, list[Entry]] = {m: [] for m in public_modules()}
    for e in table:
        if e.home != e.module or e.kind == "module":
            out[e.module].append(e)
    return out


def listed_modules() -> list[str]:
    """The modules docs/api/index.rst lists in its autosummary."""
    text = API_INDEX.read_text(encoding="utf-8")
    return sorted(re.findall(r"^\s+(fastfc(?:\.\w+)*)\s*$", text, re.M))


def data_doc(home: str, name: str) -> list[str]:
    """The ``#:`` comment of the constant ``home.name``: found in ``home``, or in the
    fastfc module (private ones too) whose source assigns it."""
    import sys

    from sphinx.pycode import ModuleAnalyzer

    candidates = [home] + sorted(m for m in list(sys.modules)
                                 if m.startswith("fastfc.") and m != home)
    for m in candidates:
        try:
            docs = ModuleAnalyzer.for_module(m).find_attr_docs()
        except Exception:  # a compiled module has no source to analyse
            continue
        lines = docs.get(("", name))
        if lines and any(line.strip() for line in lines):
            return list(lines)
    return []


def problems(table: list[Entry]) -> list[str]:
    """Everything wrong with the documentation's coverage of the public API."""
    from sphinx.pycode import ModuleAnalyzer

    found = []
    mods = public_modules()
    listed = listed_modules()
    for m in sorted(set(mods) - set(listed)):
        found.append(f"public module {m} is not listed in docs/api/index.rst")
    for m in sorted(set(listed) - set(mods)):
        found.append(f"docs/api/index.rst lists {m}, which is not a public module")
    for m in mods:
        if not (importlib.import_module(m).__doc__ or "").strip():
            found.append(f"public module {m} has no docstring")
    for e in table:
        if e.home != e.module or e.kind == "module":
            continue
        obj = getattr(importlib.import_module(e.module), e.name)
        if e.kind == "data":
            if not data_doc(e.home, e.name):
                found.append(f"{e.target} (a constant) has no '#:' doc comment")
        elif not (inspect.getdoc(obj) or "").strip():
            found.append(f"{e.target} has no docstring")
    return found


# ------------------------------------------------------------------- the extension

def _check_before(app: Any) -> None:
    from sphinx.util import logging

    logger = logging.getLogger("fastfc_api")
    for problem in problems(app.config.fastfc_api_table):
        logger.warning(problem, type="fastfc_api")


def _check_after(app: Any, env: Any) -> None:
    from sphinx.util import logging

    logger = logging.getLogger("fastfc_api")
    objects = env.get_domain("py").objects
    modules = env.get_domain("py").modules
    for e in app.config.fastfc_api_table:
        present = e.target in modules if e.kind == "module" else e.target in objects
        if not present:
            logger.warning(f"public name {e.module}.{e.name} ({e.kind}) has no page: "
                           f"{e.target} is not documented", type="fastfc_api")


def _resolve_alias(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve a reference to a re-exported name (``fastfc.Net``, ``fastfc.Net.loss``)
    to the page that documents it (``fastfc.net.Net``)."""
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    for e in app.config.fastfc_api_table:
        alias = f"{e.module}.{e.name}"
        if alias == e.target:
            continue
        if target == alias or target.startswith(alias + "."):
            node = node.deepcopy()
            node["reftarget"] = e.target + target[len(alias):]
            return env.get_domain("py").resolve_xref(
                env, node.get("refdoc"), app.builder, node["reftype"], node["reftarget"],
                node, contnode)
    return None


def _skip_member(app: Any, what: str, name: str, obj: Any, skip: bool,
                 options: Any) -> bool | None:
    """Leave out scikit-learn's generated metadata-routing setters (``set_*_request``,
    documented by scikit-learn); require a docstring of every other member shown."""
    if re.fullmatch(r"set_\w+_request", name):
        return True
    if not skip and what in ("class", "exception") and not name.startswith("_"):
        _require_docstring(name, obj)
    return None


def _require_docstring(name: str, obj: Any) -> None:
    """Warn when a method or property shown on a class's page has no docstring (its
    own, or one it inherits)."""
    target = obj.fget if isinstance(obj, property) else obj
    if isinstance(target, (classmethod, staticmethod)):
        target = target.__func__
    if not (inspect.isroutine(target) or isinstance(obj, property)):
        return
    if not (inspect.getdoc(target) or "").strip():
        from sphinx.util import logging

        owner = getattr(target, "__qualname__", name)
        logging.getLogger("fastfc_api").warning(
            f"{getattr(target, '__module__', '?')}.{owner} has no docstring",
            type="fastfc_api")


def _fill_data_doc(app: Any, what: str, name: str, obj: Any, options: Any,
                   lines: list) -> None:
    """A constant's page shows its ``#:`` comment, also when the constant is re-exported
    (``fastfc.__version__``) -- never the docstring of its value's type."""
    if what != "data":
        return
    home, _, attr = name.rpartition(".")
    doc = data_doc(home, attr)
    if doc:  # instead of the docstring of the value's type (str's, dict's)
        lines[:] = doc


def _public_bases(app: Any, name: str, obj: Any, options: Any, bases: list) -> None:
    """Show a class's public ancestors instead of a private base class."""
    i = 0
    while i < len(bases):
        base = bases[i]
        if base.__name__.startswith("_") and base is not object:
            bases[i:i + 1] = [b for b in base.__bases__ if b is not object] or []
            continue
        i += 1


def setup(app: Any) -> dict:
    """Register the coverage checks (``fastfc_api_table`` is set by conf.py)."""
    app.add_config_value("fastfc_api_table", [], "env")
    app.connect("builder-inited", _check_before)
    app.connect("env-check-consistency", _check_after)
    app.connect("missing-reference", _resolve_alias)
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("autodoc-process-bases", _public_bases)
    app.connect("autodoc-process-docstring", _fill_data_doc)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    for entry in api_table():
        print(f"{entry.home:32} {entry.kind:9} {entry.module}.{entry.name}")
