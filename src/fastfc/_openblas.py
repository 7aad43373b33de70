"""Let SciPy's OpenBLAS use its AVX-512 kernels on CPUs it does not recognise yet.

OpenBLAS picks its kernels when the library is loaded, from the CPU it detects.  The
OpenBLAS bundled with SciPy (0.3.30 at the time of writing) does not know AMD Zen 5
(family 0x1A) and falls back to its Haswell (AVX2) kernels, which run GEMM at about
half the speed the CPU allows: on a 2-core Zen 5, sgemm goes from ~240 to ~450 GFLOP/s
with the SkylakeX (AVX-512) kernels.  Before SciPy's BLAS is first loaded,
:func:`configure` sets ``OPENBLAS_CORETYPE`` for that one load when the CPU has every
AVX-512 extension those kernels use, and restores the environment right after, so that
no other library and no child process inherits the setting.

It does nothing when ``OPENBLAS_CORETYPE`` is already set (the user's choice wins),
when SciPy's BLAS is already loaded, off Linux x86-64, or with
``FASTFC_OPENBLAS_CORETYPE=keep``; ``FASTFC_OPENBLAS_CORETYPE=<name>`` forces a core type.
"""
import os
import platform
import sys

_AVX512 = {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}
_LOADED_MARKERS = ("scipy.linalg._fblas", "scipy.linalg.cython_blas")

#: the core type fastfc asked for, or None when it left OpenBLAS's own choice
chosen = None


def _cpuinfo():
    """(vendor, family, flags) of the first CPU in /proc/cpuinfo."""
    vendor, family, flags = "", 0, set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "vendor_id":
                vendor = value.strip()
            elif key == "cpu family":
                family = int(value.strip() or 0)
            elif key == "flags":
                flags = set(value.split())
                break
    return vendor, family, flags


def _wanted():
    forced = os.environ.get("FASTFC_OPENBLAS_CORETYPE", "")
    if forced == "keep" or "OPENBLAS_CORETYPE" in os.environ:
        return None
    if forced:
        return forced
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return None
    try:
        vendor, family, flags = _cpuinfo()
    except (OSError, ValueError):
        return None
    if vendor == "AuthenticAMD" and family >= 0x1A and _AVX512 <= flags:
        return "SkylakeX"
    return None


def configure():
    """Load SciPy's BLAS with the better core type when it pays; returns the choice."""
    global chosen
    if any(name in sys.modules for name in _LOADED_MARKERS):
        return chosen
    coretype = _wanted()
    if coretype is None:
        return None
    os.environ["OPENBLAS_CORETYPE"] = coretype
    try:
        import scipy.linalg.cython_blas  # noqa: F401  (loads libopenblas now)
    finally:
        del os.environ["OPENBLAS_CORETYPE"]
    chosen = coretype
    return chosen


# ---------------------------------------------------------------- step-level threads

#: path of the BLAS library whose thread count fastfc controls, or None
thread_control_library = None


def _scipy_blas_candidates():
    """Bundled OpenBLAS files of the installed SciPy wheel (Linux and macOS layouts)."""
    import glob
    import importlib.util
    spec = importlib.util.find_spec("scipy")
    if spec is None or not spec.submodule_search_locations:
        return []
    pkg = list(spec.submodule_search_locations)[0]
    found = []
    for folder in (os.path.join(os.path.dirname(pkg), "scipy.libs"), os.path.join(pkg, ".dylibs")):
        found += sorted(glob.glob(os.path.join(folder, "*openblas*")))
    return found


def _loaded(path):
    """Whether `path` is mapped into this process (Linux); True where that cannot be told."""
    try:
        with open("/proc/self/maps") as f:
            real = os.path.realpath(path)
            return any(line.rstrip().endswith(real) for line in f)
    except OSError:
        return True


def connect_thread_control():
    """Hand SciPy's OpenBLAS thread control to the kernels and switch fastfc's pool on.

    A Net step then runs OpenBLAS single-threaded and splits its GEMMs and its update
    over fastfc's own threads, as many as OpenBLAS would use (``threadpoolctl`` limits
    and ``OPENBLAS_NUM_THREADS`` are honoured).  ``FASTFC_THREADING=blas`` keeps
    OpenBLAS's own threading instead.  Returns the library path, or None when SciPy's
    BLAS is not a bundled OpenBLAS (threading then stays with the BLAS).
    """
    global thread_control_library
    import ctypes
    from fastfc._kernels import blas
    mode = os.environ.get("FASTFC_THREADING", "pool").strip().lower()
    if mode not in ("pool", "blas"):
        import warnings
        warnings.warn(f"FASTFC_THREADING must be 'pool' or 'blas', got {mode!r}; "
                      "using 'pool'", RuntimeWarning, stacklevel=2)
    if mode == "blas" or sys.platform == "win32":
        blas.set_pool(False)
        return None
    import scipy.linalg.cython_blas  # noqa: F401  (the library must be loaded first)
    for path in _scipy_blas_candidates():
        if not _loaded(path):
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_", ""):
            get = getattr(lib, f"{prefix}openblas_get_num_threads", None)
            put = getattr(lib, f"{prefix}openblas_set_num_threads", None)
            if get is not None and put is not None:
                blas.set_thread_control(ctypes.cast(get, ctypes.c_void_p).value,
                                        ctypes.cast(put, ctypes.c_void_p).value)
                blas.set_pool(True)
                thread_control_library = path
                return path
    blas.set_pool(False)
    return None
