"""Version and build configuration of fastfc.

``__version__`` is defined here and nowhere else (pyproject.toml reads it at build
time).  :func:`show_config` gathers what a bug report needs: how the kernels were
built (recorded by setup.py in ``fastfc/_build_info.py``), which BLAS scipy provides
and how many threads it runs, and the versions of Python, NumPy and SciPy.
"""
import os
import platform
import sys
from typing import Any, Optional

#: The version of fastfc, a PEP 440 string such as ``'0.1.0'``.
__version__ = "0.1.0"

__all__ = ["__version__", "show_config"]

_MODES = ("stdout", "dicts")


def _build_info() -> Optional[dict[str, Any]]:
    """The dict written by setup.py at build time, or None for a build without it."""
    try:
        from fastfc._build_info import BUILD_INFO
    except ImportError:
        return None
    return dict(BUILD_INFO)


def _version_of(name: str) -> Optional[str]:
    """Version of an importable distribution, or None when it is not installed."""
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - Python < 3.8
        return None
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _threading_info(blas: Any) -> dict[str, Any]:
    """How a Net step uses several cores: fastfc's own pool or the BLAS's threads."""
    from fastfc._threads import threading_info
    return threading_info()


def _kernels_info(build: Optional[dict[str, Any]]) -> dict[str, Any]:
    """Backend and float types of the compiled kernels, or the import error."""
    info: dict[str, Any] = {"importable": False, "blas_backend": None, "float_types": None,
                            "error": None, "threading": None}
    try:
        from fastfc._kernels import blas
    except Exception as exc:  # a broken install is exactly what a bug report must show
        info["error"] = f"{type(exc).__name__}: {exc}"
        if build:
            info["float_types"] = list(build.get("float_types") or [])
        return info
    info["importable"] = True
    info["blas_backend"] = blas.backend()
    info["threading"] = _threading_info(blas)
    try:
        from fastfc import _gemm
        info["gemm"] = _gemm.gemm_info()
    except Exception as exc:  # shown, not raised: show_config must always print
        info["gemm"] = {"error": f"{type(exc).__name__}: {exc}"}
    names = {"float": "float32", "double": "float64"}
    try:
        # the specialisations a fused def twin was compiled for: the truth of the binary
        compiled = [names.get(k, k)
                    for k in blas._gemm.__signatures__]  # type: ignore[attr-defined]
    except AttributeError:
        compiled = list((build or {}).get("float_types") or [])
    info["float_types"] = compiled
    return info


def _scipy_blas() -> dict[str, Any]:
    """The BLAS scipy was built with (its own record) and the loaded library's state."""
    out: dict[str, Any] = {"name": None, "version": None, "configuration": None,
                           "runtime": []}
    try:
        import scipy
        import scipy.linalg.cython_blas  # noqa: F401  (loads scipy's BLAS library)
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
        return out
    try:
        deps = scipy.show_config(mode="dicts").get("Build Dependencies", {})
        blas = deps.get("blas", {})
        out["name"] = blas.get("name")
        out["version"] = blas.get("version")
        out["configuration"] = blas.get("openblas configuration")
    except Exception:  # older or unusual scipy builds: the runtime view still helps
        pass
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        out["runtime_error"] = "threadpoolctl is not installed"
        return out
    scipy_dir = os.path.dirname(os.path.realpath(scipy.__file__))
    roots = (scipy_dir + os.sep, scipy_dir + ".libs" + os.sep)
    libs = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]
    mine = [lib for lib in libs
            if os.path.realpath(lib.get("filepath") or "").startswith(roots)]
    # scipy's own library if it can be told apart (numpy loads another OpenBLAS);
    # otherwise every BLAS in the process, so that nothing is hidden
    out["runtime_from"] = "scipy" if mine else "process"
    keys = ("internal_api", "version", "architecture", "num_threads",
            "threading_layer", "filepath")
    out["runtime"] = [{k: lib.get(k) for k in keys} for lib in (mine or libs)]
    from fastfc import _openblas
    out["coretype_env"] = os.environ.get("OPENBLAS_CORETYPE")
    out["coretype_suggested"] = _openblas.suggested_coretype()
    return out


def _get_config() -> dict[str, Any]:
    build = _build_info()
    import numpy
    try:
        import scipy
        scipy_version = scipy.__version__
    except ImportError:
        scipy_version = None
    return {
        "fastfc": {
            "version": __version__,
            "location": os.path.dirname(os.path.abspath(__file__)),
        },
        "build": build,
        "kernels": _kernels_info(build),
        "blas": _scipy_blas(),
        "dependencies": {
            "numpy": numpy.__version__,
            "scipy": scipy_version,
            "threadpoolctl": _version_of("threadpoolctl"),
        },
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "machine": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
        },
    }


def _yes_no(flag: Optional[bool]) -> str:
    return "unknown" if flag is None else ("yes" if flag else "no")


def _format(cfg: dict[str, Any]) -> str:
    """The readable block of show_config()."""
    lines = []

    def row(key: str, value: Any) -> None:
        lines.append(f"  {key:<15} {value}")

    lines.append(f"fastfc {cfg['fastfc']['version']}")
    row("location", cfg["fastfc"]["location"])

    build = cfg["build"]
    lines.append("build")
    if not build:
        row("info", "not recorded (built without fastfc's setup.py, or from a source tree)")
    else:
        row("mode", f"{build.get('mode')} (debug build: {_yes_no(build.get('debug'))}, "
                    f"-march=native: {_yes_no(build.get('native'))})")
        compiler = build.get("compiler") or {}
        row("compiler", compiler.get("version") or compiler.get("type") or "unknown")
        row("compiler cmd", compiler.get("command") or "unknown")
        row("extra flags", " ".join(build.get("extra_compile_args") or []) or "none")
        if build.get("cflags_env"):
            row("CFLAGS", build["cflags_env"])
        row("Cython", build.get("cython_version"))
        row("built", f"{build.get('build_date')} on {build.get('build_platform')}, "
                     f"Python {build.get('build_python')}, against numpy "
                     f"{build.get('build_numpy')} / scipy {build.get('build_scipy')}")

    kernels = cfg["kernels"]
    lines.append("kernels")
    if not kernels["importable"]:
        row("import", f"FAILED: {kernels['error']}")
    row("float types", ", ".join(kernels["float_types"] or []) or "unknown")
    row("BLAS backend", kernels["blas_backend"] or "unknown")
    threading = kernels.get("threading")
    if threading:
        if threading["mode"] == "pool":
            gemm = kernels.get("gemm") or {}
            gemm_mode = gemm.get("mode", "openblas")
            others = any(b.get("loaded") for name, b in (gemm.get("backends") or {}).items()
                         if name != "openblas")
            if threading["splits_gemm"]:
                what = "its GEMMs (OpenBLAS runs 1 thread), gather and update"
            elif gemm_mode in ("mkl", "openblas-private"):
                what = f"its GEMMs ({gemm_mode}, one thread per part), gather and update"
            elif gemm_mode == "auto" and others:
                what = ("its float32 GEMMs (on the backends that run one thread per part), "
                        "gather and update")
            else:
                what = ("its gather and update (GEMMs on OpenBLAS's own "
                        f"{threading['blas_threads']} threads)")
            size = ("fastfc.set_num_threads" if threading["set_num_threads"]
                    else "as OpenBLAS")
            row("threading", f"pool: a Net step splits {what} over {threading['threads']} "
                             f"threads ({size}; FASTFC_THREADING=blas turns the pool off)")
        else:
            row("threading", "blas: OpenBLAS's own threads (no fastfc pool)")

    if kernels.get("gemm"):
        from fastfc import _gemm
        lines.extend(_gemm.format_info(kernels["gemm"], row_width=15))

    blas = cfg["blas"]
    lines.append("BLAS (scipy.linalg.cython_blas)")
    if blas.get("error"):
        row("error", blas["error"])
    row("scipy built", " ".join(str(v) for v in (blas.get("name"), blas.get("version"))
                                if v) or "unknown")
    if blas.get("configuration"):
        row("configuration", blas["configuration"])
    if blas.get("coretype_env"):
        row("core type", f"OPENBLAS_CORETYPE={blas['coretype_env']} (set by the user)")
    elif blas.get("coretype_suggested"):
        row("core type", f"detected by OpenBLAS; this CPU has AVX-512 that it does not "
                         f"recognise: export OPENBLAS_CORETYPE={blas['coretype_suggested']} "
                         "before starting Python for faster GEMMs")
    elif not blas.get("error"):
        row("core type", "detected by OpenBLAS at load (OPENBLAS_CORETYPE, set before "
                         "Python starts, overrides it; fastfc never sets it)")
    if blas.get("runtime_error"):
        row("loaded", f"unknown: {blas['runtime_error']}")
    if not blas.get("runtime") and not blas.get("runtime_error"):
        row("loaded", "none reported by threadpoolctl (Apple Accelerate is not listed)")
    for lib in blas.get("runtime") or []:
        label = "loaded" if blas.get("runtime_from") == "scipy" else "loaded (any)"
        row(label, f"{lib.get('internal_api')} {lib.get('version')}, architecture "
                   f"{lib.get('architecture')}, {lib.get('num_threads')} threads "
                   f"({lib.get('threading_layer')})")
        row("", lib.get("filepath"))

    lines.append("runtime")
    py = cfg["python"]
    row("Python", f"{py['version']} ({py['implementation']}) {py['executable']}")
    for name, ver in cfg["dependencies"].items():
        row(name, ver or "not installed")
    mach = cfg["machine"]
    row("platform", f"{mach['platform']}, {mach['cpu_count']} CPUs")
    return "\n".join(lines)


def show_config(mode: str = "stdout") -> Optional[dict[str, Any]]:
    """Print, or return, how fastfc was built and what it runs on.

    What a bug report needs: fastfc's version and location; the build (debug or
    release, -march=native or not, the compiler and its flags, the Cython version);
    the float types the kernels were compiled for and the BLAS backend they call; the
    BLAS that scipy provides (library, version, CPU kernel architecture, threads, via
    threadpoolctl); and the versions of Python, NumPy, SciPy and threadpoolctl.
    ``fastfc info`` on the command line prints the same block.

    Parameters
    ----------
    mode : {"stdout", "dicts"}, default "stdout"
        "stdout" prints a readable block and returns None; "dicts" returns the
        information as a dict of plain data (JSON-serialisable) and prints nothing.
        The same convention as ``numpy.show_config`` and ``scipy.show_config``.

    Returns
    -------
    dict or None
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    cfg = _get_config()
    if mode == "dicts":
        return cfg
    print(_format(cfg))
    return None
