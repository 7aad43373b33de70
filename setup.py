"""Build the Cython kernels of fastfc.

Metadata lives in pyproject.toml; this file only lists the compiled extensions and
records how they were built (``fastfc/_build_info.py``, read by ``fastfc.show_config()``).

Environment switches
--------------------
FASTFC_CYTHON_DEBUG=1  compile with bounds, wraparound and initialisation checks on
                       (slow; used by CI to catch out-of-bounds access in the kernels).
FASTFC_NATIVE=1        add -march=native for a local build tuned to this CPU.  Never
                       set it for a wheel that is meant to run on other machines.
FASTFC_BUILD_CACHE     directory of compiled kernels keyed by the hash of everything that
                       goes into them (default: build/fastfc-cache beside this file; set
                       it to an empty string to turn the cache off).
SOURCE_DATE_EPOCH      build date recorded in _build_info.py (reproducible builds).

Build time
----------
The kernels share one module of Cython's utility code (memoryviews and the like,
``fastfc._kernels._cyutility``) instead of carrying a copy each, which halves the C
that the compiler sees; Cython translates the ``.pyx`` files in parallel and
``build_ext`` compiles them in parallel, one job per core.  A kernel whose inputs --
its ``.pyx``, every ``.pxd`` and ``csrc/`` header, Cython's version and directives, the
compiler flags, Python's ABI and the NumPy and SciPy it builds against -- have not
changed since an earlier build in this tree is copied from the cache instead of being
translated and compiled again: ``pip install ".[test]"`` after ``pip install .``
compiles nothing.
"""
import datetime
import hashlib
import shutil
import os
import platform
import pprint
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import Cython
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("FASTFC_CYTHON_DEBUG", "0") not in ("", "0")
NATIVE = os.environ.get("FASTFC_NATIVE", "0") not in ("", "0")

KERNEL_DIR = Path("src/fastfc/_kernels")
KERNELS = sorted(p.stem for p in KERNEL_DIR.glob("*.pyx"))
if not KERNELS:
    # An sdist or checkout without the .pyx files would otherwise build a pure-Python
    # wheel that fails at import time; stop here instead.
    sys.exit(f"setup.py: no Cython kernels (*.pyx) under {KERNEL_DIR}: incomplete source tree")

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "nonecheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
    "cpow": True,
}

if sys.platform == "win32":
    COMPILE_ARGS = ["/O2"]
    LINK_ARGS = []
else:
    # the step-level thread pool (csrc/fastfc_pool.h) uses POSIX threads
    LINK_ARGS = ["-pthread"]
    # -g0: no debug information in a release build (Python's own CFLAGS may carry -g;
    # it would triple the size of the wheel for nothing a user can use)
    COMPILE_ARGS = ["-O3", "-g0", "-fno-math-errno", "-fopenmp-simd", "-Wno-unreachable-code"]
    if DEBUG:
        COMPILE_ARGS = ["-O1", "-g", "-fopenmp-simd"]
    elif NATIVE:
        COMPILE_ARGS.append("-march=native")

HEADERS = sorted(str(p) for p in Path("csrc").glob("*.h"))
PXDS = sorted(str(p) for p in KERNEL_DIR.glob("*.pxd"))
#: Cython's utility code (memoryview support and the like), one copy for every kernel
SHARED_UTILITY = "fastfc._kernels._cyutility"

MODE = "debug" if DEBUG else ("native" if NATIVE else "release")


def _extension(name, sources):
    return Extension(
        name,
        sources,
        include_dirs=["csrc"],
        extra_compile_args=COMPILE_ARGS + LINK_ARGS,
        extra_link_args=LINK_ARGS,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
                       ("FASTFC_DEBUG_BUILD", "1" if DEBUG else "0")],
        depends=HEADERS + PXDS,
    )


# ----------------------------------------------------------------------------- cache

_cache_env = os.environ.get("FASTFC_BUILD_CACHE")
CACHE_DIR = (Path(__file__).resolve().parent / "build" / "fastfc-cache" if _cache_env is None
             else (Path(_cache_env) if _cache_env else None))


def _module_version(name):
    try:
        module = __import__(name)
    except ImportError:
        return None
    return getattr(module, "__version__", None)


def _build_key(name):
    """Hash of everything that goes into the compiled module ``name``."""
    h = hashlib.sha256()
    for part in (name, MODE, Cython.__version__, repr(sorted(DIRECTIVES.items())),
                 repr(COMPILE_ARGS), repr(LINK_ARGS), sys.version, sys.platform,
                 sysconfig.get_config_var("EXT_SUFFIX"), sysconfig.get_platform(),
                 os.environ.get("CC", ""), os.environ.get("CFLAGS", ""),
                 os.environ.get("LDFLAGS", ""), _module_version("numpy"),
                 _module_version("scipy"), SHARED_UTILITY):
        h.update(repr(part).encode() + b"\0")
    stem = name.rsplit(".", 1)[1]
    inputs = [] if name == SHARED_UTILITY else [KERNEL_DIR / f"{stem}.pyx"]
    for path in inputs + [Path(p) for p in PXDS + HEADERS]:
        h.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:32]


def _cached(name):
    """Path of the cached build of module ``name``, or None when there is none."""
    if CACHE_DIR is None:
        return None
    path = CACHE_DIR / _build_key(name) / (name.rsplit(".", 1)[1] +
                                            sysconfig.get_config_var("EXT_SUFFIX"))
    return path if path.is_file() else None


MODULES = [f"fastfc._kernels.{name}" for name in KERNELS] + [SHARED_UTILITY]
CACHED = {name: _cached(name) for name in MODULES} if not DEBUG else {}
CACHED = {name: path for name, path in CACHED.items() if path is not None}

_to_cythonize = [_extension(name, [str(KERNEL_DIR / f"{name.rsplit('.', 1)[1]}.pyx")])
                 for name in MODULES[:-1] if name not in CACHED]
if SHARED_UTILITY not in CACHED:
    # the shared utility module goes through cythonize too (which writes its C file)
    _to_cythonize.append(_extension(SHARED_UTILITY,
                                    [str(KERNEL_DIR / "_cyutility.c")]))

BUILD_INFO_MODULE = "_build_info.py"
FLOAT_NAMES = {"float": "float32", "double": "float64", "long double": "longdouble"}


def _fused_float_types():
    """The C types of the fused ``floating`` in _types.pxd, as NumPy dtype names."""
    try:
        text = (KERNEL_DIR / "_types.pxd").read_text()
    except OSError:
        return []
    match = re.search(r"^ctypedef fused floating:\s*\n((?:[ \t]+\S.*\n?)+)", text, re.M)
    if not match:
        return []
    names = [line.split("#")[0].strip() for line in match.group(1).splitlines()]
    return [FLOAT_NAMES.get(n, n) for n in names if n]


def _first_line(cmd):
    """First non-empty line a command prints (stdout, else stderr), or None."""
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    for stream in (res.stdout, res.stderr):
        for line in stream.splitlines():
            if line.strip():
                return line.strip()
    return None


def _compiler_info(compiler):
    """Type, command line and version of the C compiler that build_ext used."""
    ctype = getattr(compiler, "compiler_type", None) or "unknown"
    if ctype == "msvc":
        exe = getattr(compiler, "cc", None) or "cl.exe"
        command = [exe]
        version = _first_line([exe])          # cl.exe prints its banner on stderr
    else:
        command = list(getattr(compiler, "compiler_so", None) or [])
        exe = command[0] if command else "cc"
        if os.path.basename(exe) in ("ccache", "sccache") and len(command) > 1:
            exe = command[1]
        version = _first_line([exe, "--version"])
    return {"type": ctype, "command": " ".join(command), "version": version}


def _build_date():
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc) if epoch
            else datetime.datetime.now(datetime.timezone.utc))
    return when.replace(microsecond=0).isoformat()


class BuildExt(build_ext):
    """build_ext that recompiles everything when the build mode changed since last time,
    and writes ``fastfc/_build_info.py`` beside the compiled kernels.

    Debug and release objects share output paths; without the mode stamp a release build
    after a debug build would keep the slow, checked modules (the sources are not newer).
    """

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1

    def run(self):
        stamp = Path(self.build_temp) / "fastfc-build-mode"
        if not stamp.exists() or stamp.read_text() != MODE:
            self.force = True
        if CACHED:
            print(f"fastfc: {len(CACHED)} of {len(MODULES)} compiled modules taken from "
                  f"the build cache {CACHE_DIR}")
        super().run()
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(MODE)
        self._write_build_info()

    def _build_info_path(self):
        if self.inplace:
            package_dir = self.get_finalized_command("build_py").get_package_dir("fastfc")
            return Path(package_dir) / BUILD_INFO_MODULE
        return Path(self.build_lib) / "fastfc" / BUILD_INFO_MODULE

    def _write_build_info(self):
        info = {
            "version": self.distribution.get_version(),
            "mode": MODE,
            "debug": DEBUG,
            "native": NATIVE,
            "compiler": _compiler_info(self.compiler),
            "extra_compile_args": list(COMPILE_ARGS),
            "cflags_env": os.environ.get("CFLAGS", ""),
            "cython_version": Cython.__version__,
            "cython_directives": dict(DIRECTIVES),
            "float_types": _fused_float_types(),
            "kernels": list(KERNELS),
            "build_numpy": _module_version("numpy"),
            "build_scipy": _module_version("scipy"),
            "build_python": platform.python_version(),
            "build_platform": sysconfig.get_platform(),
            "build_date": _build_date(),
        }
        path = self._build_info_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            '"""How this copy of fastfc was built (written by setup.py; do not edit)."""\n'
            f"BUILD_INFO = {pprint.pformat(info, sort_dicts=False)}\n"
        )

    def build_extension(self, ext):
        target = Path(self.get_ext_fullpath(ext.name))
        cached = CACHED.get(ext.name)
        if cached is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cached, target)
            return
        super().build_extension(ext)
        if CACHE_DIR is not None and not DEBUG:
            entry = CACHE_DIR / _build_key(ext.name)
            entry.mkdir(parents=True, exist_ok=True)
            tmp = entry / (target.name + f".tmp-{os.getpid()}")
            shutil.copyfile(target, tmp)
            os.replace(tmp, entry / target.name)

    def get_outputs(self):
        return super().get_outputs() + [str(self._build_info_path())]


_translated = cythonize(
    _to_cythonize,
    compiler_directives=DIRECTIVES,
    build_dir="build/cython-debug" if DEBUG else "build/cython",
    force=DEBUG,
    nthreads=0 if sys.platform == "win32" else (os.cpu_count() or 1),
    shared_utility_qualified_name=SHARED_UTILITY,
) if _to_cythonize else []
_by_name = {ext.name: ext for ext in _translated}
# every module is listed (a cached one keeps its .pyx source: build_extension copies it)
extensions = [_by_name.get(name) or _extension(
    name, [str(KERNEL_DIR / f"{name.rsplit('.', 1)[1]}.pyx")]) for name in MODULES]

setup(
    cmdclass={"build_ext": BuildExt},
    ext_modules=extensions,
)
