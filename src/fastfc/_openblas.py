"""SciPy's OpenBLAS as seen by fastfc: its thread count (read only) and its core type.

Nothing here runs at ``import fastfc``.  :func:`connect` is called lazily -- by the
first ``Net``, the first compiled optimiser update, or the threading API in
:mod:`fastfc._threads` -- and it only looks up ``openblas_get_num_threads`` in the
OpenBLAS that SciPy has already loaded, so that a step can tell how many threads the
BLAS runs.  fastfc never changes that count; only the user does (for instance with
``threadpoolctl.threadpool_limits``; see the README's Threads paragraph).

Core type.  OpenBLAS picks its kernels once, when the library loads, from the CPU it
detects or from ``OPENBLAS_CORETYPE``.  The OpenBLAS bundled with SciPy (0.3.30 at the
time of writing) does not recognise AMD Zen 5 (family 0x1A) and falls back to its
Haswell (AVX2) kernels, about half the GEMM speed of its SkylakeX (AVX-512) kernels on
that CPU.  fastfc does not set the variable for you: export ``OPENBLAS_CORETYPE=SkylakeX``
before starting Python.  :func:`suggested_coretype` tells whether that would help here,
and ``fastfc.show_config()`` prints the hint.
"""
from __future__ import annotations

import os
import platform
import sys
from typing import Optional

_AVX512 = {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}

#: path of the BLAS library whose thread count fastfc reads, or None
thread_control_library = None
#: the ctypes handle of that library, None until connect() found it
_handle = None
_connected = False


def _cpuinfo() -> tuple[str, int, set[str]]:
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


def suggested_coretype() -> Optional[str]:
    """The ``OPENBLAS_CORETYPE`` worth exporting on this CPU, or None.

    "SkylakeX" on an AMD CPU of family 0x1A or later with every AVX-512 extension those
    kernels use (a CPU the bundled OpenBLAS does not recognise); None elsewhere, off
    Linux x86-64, or when ``OPENBLAS_CORETYPE`` is already set.  Only reads the CPU.
    """
    if "OPENBLAS_CORETYPE" in os.environ:
        return None
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return None
    try:
        vendor, family, flags = _cpuinfo()
    except (OSError, ValueError):
        return None
    if vendor == "AuthenticAMD" and family >= 0x1A and _AVX512 <= flags:
        return "SkylakeX"
    return None


def threading_mode() -> str:
    """'pool' or 'blas', from ``FASTFC_THREADING`` (read when the pool is connected)."""
    mode = os.environ.get("FASTFC_THREADING", "pool").strip().lower()
    if mode not in ("pool", "blas"):
        import warnings
        warnings.warn(f"FASTFC_THREADING must be 'pool' or 'blas', got {mode!r}; "
                      "using 'pool'", RuntimeWarning, stacklevel=3)
        mode = "pool"
    return mode


def _scipy_blas_candidates() -> list[str]:
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


def _loaded(path: str) -> bool:
    """Whether `path` is mapped into this process (Linux); True where that cannot be told."""
    try:
        with open("/proc/self/maps") as f:
            real = os.path.realpath(path)
            return any(line.rstrip().endswith(real) for line in f)
    except OSError:
        return True


def connect() -> Optional[str]:
    """Set up fastfc's pool and GEMM backends at first use (once; cheap afterwards).

    The pool: see :func:`_connect_pool`, whose result (the library) is returned.  The
    backends: :func:`fastfc._gemm.configure` reads ``FASTFC_GEMM``.
    """
    global _connected
    if _connected:
        return thread_control_library
    path = _connect_pool()
    from fastfc import _gemm
    _gemm.configure()
    return path


def _connect_pool() -> Optional[str]:
    """Switch fastfc's step-level pool on; returns the library.

    Reads ``FASTFC_THREADING`` ('pool', the default, or 'blas': no pool) and gives the
    kernels SciPy's ``openblas_get_num_threads`` so that a step knows how many threads
    the BLAS runs (the pool's default size, and whether a GEMM may be split).  The
    library is one SciPy has already loaded; nothing is loaded that was not.  Returns
    its path, or None when there is no pool or no such library.
    """
    global _connected, _handle, thread_control_library
    _connected = True
    import ctypes
    from fastfc._kernels import blas
    if threading_mode() == "blas" or sys.platform == "win32":
        blas.set_pool(False)
        return None
    import scipy.linalg.cython_blas  # noqa: F401  (already loaded by the kernels)
    for path in _scipy_blas_candidates():
        if not _loaded(path):
            continue
        try:
            lib = ctypes.CDLL(path)     # the mapped library: only a new reference to it
        except OSError:
            continue
        for prefix in ("scipy_", ""):
            get = getattr(lib, f"{prefix}openblas_get_num_threads", None)
            if get is not None:
                # the address of a symbol the library exports is never NULL
                blas.set_thread_control(
                    ctypes.cast(get, ctypes.c_void_p).value)  # type: ignore[arg-type]
                blas.set_pool(True)
                _handle = lib
                thread_control_library = path
                return path
    blas.set_pool(False)
    return None

