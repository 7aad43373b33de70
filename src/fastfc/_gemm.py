"""The GEMM backends of fastfc's kernels and which one serves which product.

Every matrix product of the kernels goes through one dispatch point
(``fastfc._kernels.blas.gemm``), which can call

``openblas``
    SciPy's bundled OpenBLAS through ``scipy.linalg.cython_blas`` -- always there, the
    default for float64 and for every product unless another backend is faster.
``mkl``
    Intel MKL from the ``mkl`` wheel (``pip install "fastfc[mkl]"``): ``libmkl_rt`` is
    found and loaded at first use (the first ``Net``, or a setter here), never at
    ``import fastfc``.  It runs its sequential layer, one thread per call: inside a Net
    step fastfc's own pool splits a large product over its threads, so no OpenMP
    runtime runs beside OpenBLAS's threads.  Also a bfloat16 GEMM
    (``cblas_gemm_bf16bf16f32``), fast on Intel CPUs.
``openblas-private``
    A private OpenBLAS from the ``scipy-openblas32`` wheel, held at one thread (a setting
    of that copy only, which nothing else in the process uses) so that fastfc's pool
    splits its products, without touching the thread count of SciPy's copy (which
    other code sees).  Loaded when installed (``pip install scipy-openblas32``); see
    bench/README.md for what it measured.

The mode comes from ``FASTFC_GEMM`` (``openblas``, the default, ``auto``, ``mkl`` or
``openblas-private``), :func:`set_gemm_backend`, or ``fastfc train --gemm``.  A forced
backend serves every product (float32 and float64).  ``auto`` routes each float32 shape
(sizes, transposes, parts of the pool) to the fastest backend: the first product of a
shape is timed on each candidate (into scratch memory: one untimed run each, then 2 to
5 rounds that run every candidate once in turn, no more once the rounds took 2 ms; the
fastest run of each counts -- a few ms per shape, once per machine) and another backend
must beat SciPy's OpenBLAS by 3% to win.  Products under 32768 multiply-adds stay on
SciPy's OpenBLAS untimed.  float64 products stay on SciPy's OpenBLAS, so float64
results do not depend on the machine's timing.

Inside a step that splits its products over fastfc's pool, SciPy's OpenBLAS is a
candidate only when it runs one thread (then it is split like the others): with its own
threads it leaves a worker spinning through every product the pool runs, and the pool's
workers spin through its products, which timing one product at a time cannot see.  The
first version of ``auto`` let it compete and lost end to end on the Zen 4 development
machine although each product it picked had timed faster (W6 step 35 ms against 27 ms
on the private OpenBLAS alone); with the rule it stepped within 1 ms of the best
single backend there (bench/ANALYSIS.md).  The route records the rule (bit 2 of its
flags).

A step that finds the pool owned by another thread's step runs its products whole on
its own thread, but on the backends the routes of a pooled step name (not on routes of
its own, which could name a backend that rounds differently): what other threads do
does not change a step's bits (tests/test_gemm.py; before, a float32 net stepping beside
a bf16 one in another thread changed its bits in 3 runs of 8).

``auto`` stays opt-in: with an extra installed its float32 results depend on which
backend won the timing on this machine (the same from run to run once the choices are
cached), the default's on SciPy's OpenBLAS alone.  Where SciPy's OpenBLAS is the only
backend installed it is exactly ``openblas``: nothing is timed, no cache is written.
float64 results never depend on the choice.

The bfloat16 products (:func:`set_compute_dtype`) have GEMMs of their own
(:func:`set_bf16_gemm`, ``FASTFC_BF16_GEMM``): MKL's, which uses AVX512-BF16 and AMX on
Intel CPUs only and emulates bf16 elsewhere, and fastfc's own (``native``,
csrc/bf16_gemm.h), which runs AVX512-BF16 on any CPU that has it, AMD's Zen 4 and later
included.  ``auto`` takes MKL where it is fast (an Intel CPU with either ISA), else
fastfc's own where the CPU has AVX512-BF16, else MKL's emulation.

The choices are cached on disk (:func:`cache_path`), keyed by the CPU model and the
versions of the libraries; an unreadable, corrupt or foreign cache file is ignored and
rewritten.  With the cache, auto-selection is deterministic.
"""
from __future__ import annotations

import atexit
import contextlib
import glob
import hashlib
import json
import os
import sys
import threading
from typing import Any, Callable, Iterator, Optional

__all__ = ["set_gemm_backend", "get_gemm_backend", "set_compute_dtype", "compute_dtype",
           "set_bf16_gemm", "get_bf16_gemm", "gemm_info", "cache_path", "save_cache"]

BACKENDS = ("openblas", "mkl", "openblas-private")
MODES = ("auto",) + BACKENDS
#: the mode when FASTFC_GEMM is unset: SciPy's OpenBLAS for every product
DEFAULT_MODE = "openblas"
_INDEX = {name: i for i, name in enumerate(BACKENDS)}
_MKL_THREADING_SEQUENTIAL = 1
#: the cache status of auto when SciPy's OpenBLAS is the only backend installed
_ALONE = "unused (only one backend)"
_CACHE_FORMAT = 2     # 2: route flags carry the no-SciPy bit (bit 2), parts from bit 3

_lock = threading.RLock()
_configured = False
_mode_name = "openblas"
_libs: dict[str, dict[str, Any]] = {}         # backend name -> dict(path, version, handle, ...)
_load_errors: dict[str, str] = {}     # backend name -> why it could not be loaded
_cache_status = "not read"
_cache_loaded = 0
_atexit_done = False
_compute_dtype = "float32"
#: the bf16 GEMMs: 'auto' picks one (see set_bf16_gemm); 'portable' is fastfc's own with
#: its plain-C micro-kernel (any CPU, slow: a reference for tests)
BF16_GEMMS = ("auto", "mkl", "native", "portable")
_bf16_gemm: Optional[str] = None      # the bf16 GEMM in use ('mkl', 'native', ...) or None


# ----------------------------------------------------------------- finding libraries

def _mkl_candidates() -> list[str]:
    """Paths where libmkl_rt may be: the ``mkl`` wheel's files, the prefix, the loader."""
    found: list[str] = []
    env = os.environ.get("FASTFC_MKL_LIBRARY")
    if env:
        found.append(env)
    try:
        from importlib import metadata
        dist = metadata.distribution("mkl")
        for f in dist.files or ():
            name = os.path.basename(str(f))
            if name.startswith("libmkl_rt.so") or name in ("libmkl_rt.dylib", "mkl_rt.2.dll"):
                found.append(str(dist.locate_file(f)))
    except Exception:      # no mkl distribution, or broken metadata
        pass
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        found += sorted(glob.glob(os.path.join(prefix, "lib", "libmkl_rt.so*")), reverse=True)
    import ctypes.util
    name = ctypes.util.find_library("mkl_rt")  # type: ignore[assignment]  # None: not found
    if name:
        found.append(name)
    return list(dict.fromkeys(p for p in found if p))


def _already_mapped(fragment: str) -> bool:
    """Whether a library whose path contains `fragment` is mapped in this process."""
    try:
        with open("/proc/self/maps") as f:
            return any(fragment in line for line in f)
    except OSError:
        return False


def _load_mkl() -> dict[str, Any]:
    """Load libmkl_rt (sequential layer) and fill the MKL slot; returns its info dict."""
    import ctypes
    from fastfc._kernels import blas
    errors = []
    for path in _mkl_candidates():
        try:
            was_mapped = _already_mapped("libmkl_rt")
            lib = ctypes.CDLL(path)
        except OSError as exc:
            errors.append(f"{path}: {exc}")
            continue
        try:
            sgemm, dgemm = lib.cblas_sgemm, lib.cblas_dgemm
        except AttributeError:
            errors.append(f"{path}: no cblas_sgemm")
            continue
        bf16 = getattr(lib, "cblas_gemm_bf16bf16f32", None)
        set_local = lib.mkl_set_num_threads_local
        set_local.restype = ctypes.c_int
        set_local.argtypes = [ctypes.c_int]
        layer = "sequential"
        if was_mapped or os.environ.get("MKL_THREADING_LAYER"):
            # another user of MKL in this process (or the user) owns the threading
            # layer: leave it, and ask for one thread on the calling thread per call
            layer = os.environ.get("MKL_THREADING_LAYER", "as loaded").lower()
            local = ctypes.cast(set_local, ctypes.c_void_p).value
        else:
            lib.MKL_Set_Threading_Layer.restype = ctypes.c_int
            got = lib.MKL_Set_Threading_Layer(ctypes.c_int(_MKL_THREADING_SEQUENTIAL))
            if got == _MKL_THREADING_SEQUENTIAL:
                local = 0
            else:       # the layer was fixed already: one thread per call instead
                layer = "as loaded"
                local = ctypes.cast(set_local, ctypes.c_void_p).value
        buf = ctypes.create_string_buffer(256)
        lib.MKL_Get_Version_String(buf, ctypes.c_int(len(buf)))
        version = buf.value.decode(errors="replace").strip()
        # (the ignores: the addresses of exported symbols are never NULL/None)
        blas.set_backend(_INDEX["mkl"],
                         ctypes.cast(sgemm, ctypes.c_void_p).value,  # type: ignore[arg-type]
                         ctypes.cast(dgemm, ctypes.c_void_p).value,  # type: ignore[arg-type]
                         ctypes.cast(bf16, ctypes.c_void_p).value  # type: ignore[arg-type]
                         if bf16 else 0, local)  # type: ignore[arg-type]
        return {"path": os.path.realpath(path), "version": version, "handle": lib,
                "threading": layer, "bf16": bf16 is not None}
    raise ImportError("MKL was not found (install it with: pip install 'fastfc[mkl]')"
                      + (f"; tried {'; '.join(errors)}" if errors else ""))


def _load_private_openblas() -> dict[str, Any]:
    """Load the scipy-openblas32 wheel's OpenBLAS, one thread; returns its info dict."""
    import ctypes
    from fastfc._kernels import blas
    try:
        import scipy_openblas32
    except ImportError:
        raise ImportError("the private OpenBLAS needs the scipy-openblas32 wheel "
                          "(pip install scipy-openblas32)") from None
    folder = scipy_openblas32.get_lib_dir()
    paths = sorted(glob.glob(os.path.join(folder, "lib*openblas*.so*"))
                   + glob.glob(os.path.join(folder, "lib*openblas*.dylib")))
    if not paths:
        raise ImportError(f"no OpenBLAS library in {folder}")
    lib = ctypes.CDLL(paths[0])
    prefix = scipy_openblas32.get_symbol_prefix() if hasattr(
        scipy_openblas32, "get_symbol_prefix") else "scipy_"
    sgemm = getattr(lib, f"{prefix}cblas_sgemm")
    dgemm = getattr(lib, f"{prefix}cblas_dgemm")
    set_threads = getattr(lib, f"{prefix}openblas_set_num_threads")
    get_threads = getattr(lib, f"{prefix}openblas_get_num_threads")
    set_threads(ctypes.c_int(1))
    config = getattr(lib, f"{prefix}openblas_get_config")
    config.restype = ctypes.c_char_p
    # (the ignores: the addresses of exported symbols are never NULL/None)
    blas.set_backend(_INDEX["openblas-private"],
                     ctypes.cast(sgemm, ctypes.c_void_p).value,  # type: ignore[arg-type]
                     ctypes.cast(dgemm, ctypes.c_void_p).value, 0, 0)  # type: ignore[arg-type]
    # a step puts it back on one thread if a threadpoolctl limit raised its count
    blas.set_private_threads(
        ctypes.cast(get_threads, ctypes.c_void_p).value,  # type: ignore[arg-type]
        ctypes.cast(set_threads, ctypes.c_void_p).value)  # type: ignore[arg-type]
    return {"path": os.path.realpath(paths[0]), "version": config().decode(errors="replace"),
            "handle": lib, "threading": "1 thread (fastfc's pool splits)", "bf16": False}


_LOADERS: dict[str, Callable[[], dict[str, Any]]] = {"mkl": _load_mkl,
                                                     "openblas-private": _load_private_openblas}


def _load(name: str) -> Any:
    """Load backend `name` once; returns its info dict (None for 'openblas') or raises
    ImportError."""
    if name == "openblas":
        return None
    if name not in _libs:
        _libs[name] = _LOADERS[name]()
        _load_errors.pop(name, None)
    return _libs[name]


# ----------------------------------------------------------------- CPU

def _cpu() -> tuple[str, set[str]]:
    """(model name, flags) of the first CPU in /proc/cpuinfo ('' and empty elsewhere)."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    return model, flags


def bf16_isa() -> Optional[str]:
    """'AMX', 'AVX512-BF16' or None: how this CPU runs a bfloat16 GEMM natively.

    Read from the kernel's CPUID flags at run time (``amx_bf16``, ``avx512_bf16``).
    """
    _, flags = _cpu()
    if "amx_bf16" in flags and "amx_tile" in flags:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX512-BF16"
    return None


def _vendor() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "vendor_id":
                    return value.strip()
    except OSError:
        pass
    return ""


def bf16_accelerated() -> Optional[str]:
    """The bf16 ISA MKL's bf16 GEMM uses here, or None when it emulates bf16.

    MKL picks its AVX-512 / AMX code paths on Intel CPUs only (``MKL_VERBOSE`` on an AMD
    Zen 4 with AVX512-BF16 reports its generic "Intel(R) Architecture processors" path,
    and its bf16 GEMM ran slower than its float32 one there), so on other vendors the
    CPU's bf16 instructions are listed by :func:`bf16_isa` but not counted as used.
    """
    isa = bf16_isa()
    return isa if isa is not None and _vendor() == "GenuineIntel" else None


def _isa() -> str:
    _, flags = _cpu()
    if "avx512f" in flags:
        return "AVX-512"
    if "avx2" in flags:
        return "AVX2"
    return "baseline"


# ----------------------------------------------------------------- the cache

def cache_path() -> str:
    """The file that keeps auto-selection's choices for this machine and these libraries.

    In ``$FASTFC_CACHE_DIR``, else ``$XDG_CACHE_HOME/fastfc``, else ``~/.cache/fastfc``;
    the name carries a hash of the key (CPU model, library versions, fastfc's version).
    """
    folder = os.environ.get("FASTFC_CACHE_DIR")
    if not folder:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
            os.path.expanduser("~"), ".cache")
        folder = os.path.join(base, "fastfc")
    digest = hashlib.sha256(json.dumps(_cache_key(), sort_keys=True).encode()).hexdigest()
    return os.path.join(folder, f"gemm-routes-{digest[:16]}.json")


def _cache_key() -> dict[str, Any]:
    from fastfc._config import __version__
    model, _ = _cpu()
    return {"cpu": model, "isa": _isa(), "fastfc": __version__,
            "openblas": _scipy_openblas_version(),
            "backends": {name: info["version"] for name, info in sorted(_libs.items())}}


def _scipy_openblas_version() -> str:
    import ctypes
    from fastfc import _openblas
    lib = _openblas._handle
    for prefix in ("scipy_", ""):
        fn = getattr(lib, f"{prefix}openblas_get_config", None) if lib is not None else None
        if fn is not None:
            fn.restype = ctypes.c_char_p
            return fn().decode(errors="replace")
    try:
        import scipy
        return f"scipy {scipy.__version__}"
    except ImportError:
        return "unknown"


def _read_cache() -> tuple[int, str]:
    """Add the cached routes; returns (count, status)."""
    from fastfc._kernels import blas
    path = cache_path()
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return 0, "none yet"
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return 0, f"ignored (unreadable: {type(exc).__name__})"
    if (not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT
            or data.get("key") != _cache_key() or not isinstance(data.get("routes"), list)):
        return 0, "ignored (stale or not a fastfc cache)"
    good = []
    for entry in data["routes"]:
        if (not isinstance(entry, list) or len(entry) != 5
                or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**31
                           for v in entry[:4])
                or entry[4] not in BACKENDS or not blas.backend_loaded(_INDEX[entry[4]])):
            return 0, "ignored (corrupt entry)"
        good.append(entry)
    for m, n, k, flags, name in good:
        blas.add_route(m, n, k, flags, _INDEX[name])
    return len(good), f"read {len(good)} routes"


def save_cache() -> Optional[str]:
    """Write the routes of this process to :func:`cache_path`; returns the path or None.

    Called at exit when auto-selection timed a new shape.  Written to a temporary file
    and renamed, so a reader never sees half a file; a failure to write is ignored.
    """
    from fastfc._kernels import blas
    with _lock:
        if not _configured or _mode_name != "auto":
            return None
        routes = [[m, n, k, flags, BACKENDS[b]] for m, n, k, flags, b in blas.routes()]
        path = cache_path()
        data = {"format": _CACHE_FORMAT, "key": _cache_key(), "routes": routes}
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(data, f)
            os.replace(tmp, path)
        except OSError:
            return None
        return path


def _save_at_exit() -> None:
    from fastfc._kernels import blas
    if blas.routes_timed() > 0:
        save_cache()


# ----------------------------------------------------------------- modes

def _env_choice(variable: str, choices: tuple[str, ...], default: str,
                stacklevel: int) -> str:
    """The value of environment variable `variable` among `choices` (case and spaces
    ignored), else `default` -- with a RuntimeWarning when it is set to something else
    (`stacklevel` counted from the caller)."""
    value = os.environ.get(variable, default).strip().lower() or default
    if value not in choices:
        import warnings
        warnings.warn(f"{variable} must be one of {', '.join(choices)}, got {value!r}; "
                      f"using {default!r}", RuntimeWarning, stacklevel=stacklevel + 1)
        value = default
    return value


def _env_mode() -> str:
    return _env_choice("FASTFC_GEMM", MODES, DEFAULT_MODE, stacklevel=4)


def configure() -> None:
    """Set the GEMM mode from ``FASTFC_GEMM`` (once; called with fastfc's pool at first use)."""
    global _configured
    with _lock:
        if _configured:
            return
        mode = _env_mode()
        try:
            _apply(mode)
        except ImportError as exc:
            import warnings
            warnings.warn(f"FASTFC_GEMM={mode}: {exc}; using 'openblas'", RuntimeWarning,
                          stacklevel=3)
            _apply("openblas")
        _configured = True


def _apply(mode: str) -> None:
    """Switch the kernels to `mode` (loads what it needs; ImportError if it cannot)."""
    global _mode_name, _cache_status, _cache_loaded, _atexit_done
    from fastfc._kernels import blas
    if mode in ("mkl", "openblas-private"):
        _load(mode)
        blas.set_mode(_INDEX[mode])
    elif mode == "openblas":
        blas.set_mode(0)
    else:
        # auto: every other backend that is installed competes with SciPy's OpenBLAS
        for name in BACKENDS[1:]:
            try:
                _load(name)
            except (ImportError, OSError) as exc:
                _load_errors[name] = str(exc)
        others = any(name in _libs for name in BACKENDS[1:])
        blas.set_mode(-1 if others else 0)
        blas.clear_routes()
        if others:
            _cache_loaded, _cache_status = _read_cache()
            if not _atexit_done:
                atexit.register(_save_at_exit)
                _atexit_done = True
        else:
            _cache_loaded, _cache_status = 0, _ALONE
    _mode_name = mode


def _choice(name: Any, choices: tuple[str, ...]) -> str:
    """`name` checked against `choices` (case and spaces ignored), with the BLAS connected
    (fastfc._openblas) before a setter changes anything."""
    if not isinstance(name, str) or name.strip().lower() not in choices:
        raise ValueError(f"name must be one of {', '.join(choices)}, got {name!r}")
    from fastfc import _openblas
    _openblas.connect()
    return name.strip().lower()


def set_gemm_backend(name: str) -> str:
    """Choose the GEMM backend of fastfc's kernels; returns the previous mode.

    Parameters
    ----------
    name : {'auto', 'openblas', 'mkl', 'openblas-private'}
        ``auto`` times each loaded backend at each float32 product shape and keeps the
        fastest (cached on disk); the others serve every product.

    Raises
    ------
    ValueError
        If `name` is not one of these.
    ImportError
        If the backend's library is not installed (``pip install "fastfc[mkl]"``).
    """
    mode = _choice(name, MODES)
    with _lock:
        old = _mode_name
        _apply(mode)
        return old


def get_gemm_backend() -> str:
    """The mode in use: 'auto', 'openblas', 'mkl' or 'openblas-private'."""
    from fastfc import _openblas
    _openblas.connect()
    return _mode_name


def _env_bf16() -> str:
    return _env_choice("FASTFC_BF16_GEMM", BF16_GEMMS, "auto", stacklevel=5)


def _bf16_order(name: str) -> tuple[str, ...]:
    """The bf16 GEMMs `name` may take, in order: auto prefers MKL's where MKL runs the
    CPU's bf16 instructions (:func:`bf16_accelerated`: an Intel CPU), else fastfc's own."""
    if name != "auto":
        return (name,)
    return ("mkl", "native") if bf16_accelerated() else ("native", "mkl")


def _select_bf16(name: str) -> str:
    """Make bf16 GEMM `name` (or the first of auto's order that runs here) the one in
    use; returns its name.  RuntimeError (saying why) when none can.  Under _lock."""
    global _bf16_gemm
    from fastfc._kernels import blas
    codes = {"mkl": blas.BF16_MKL, "native": blas.BF16_NATIVE,
             "portable": blas.BF16_PORTABLE}
    mkl_error: Optional[BaseException] = None
    for candidate in _bf16_order(name):
        if candidate == "native" and not blas.native_bf16():
            continue
        if candidate == "mkl":
            try:
                info = _load("mkl")
                if not info["bf16"]:
                    raise ImportError(f"{info['path']} does not export "
                                      "cblas_gemm_bf16bf16f32")
            except (ImportError, OSError) as exc:
                mkl_error = exc
                continue
        blas.set_bf16_gemm(codes[candidate])
        _bf16_gemm = candidate
        return candidate
    if name == "native":
        raise RuntimeError("fastfc's own bf16 GEMM needs a CPU with AVX512-BF16 (and "
                           "an x86-64 build by GCC >= 10 or Clang >= 9)")
    raise RuntimeError(("MKL's bfloat16 GEMM is not available" if name == "mkl" else
                        "no bfloat16 GEMM: this CPU has no AVX512-BF16 for fastfc's own, "
                        "and MKL's is not available") + f": {mkl_error}")


def set_bf16_gemm(name: str) -> Optional[str]:
    """Choose the GEMM of bfloat16 products; returns the previous one (None: none yet).

    Parameters
    ----------
    name : {'auto', 'mkl', 'native', 'portable'}
        ``mkl``: MKL's ``cblas_gemm_bf16bf16f32`` (fast on Intel CPUs with AMX or
        AVX512-BF16, emulated elsewhere).  ``native``: fastfc's own, which runs
        AVX512-BF16 on any CPU that has it.  ``auto`` (the default, or
        ``FASTFC_BF16_GEMM``): MKL on an Intel CPU with either ISA, else fastfc's own
        where the CPU has AVX512-BF16, else MKL.  ``portable``: fastfc's own with its
        plain-C micro-kernel -- the same results on any CPU, but slow (a reference).

    Raises
    ------
    ValueError
        If `name` is not one of these.
    RuntimeError
        If that GEMM cannot run here (no MKL, or no AVX512-BF16 for ``native``).
    """
    choice = _choice(name, BF16_GEMMS)
    with _lock:
        old = _bf16_gemm
        _select_bf16(choice)
        return old


def get_bf16_gemm() -> Optional[str]:
    """The bf16 GEMM in use ('mkl', 'native', 'portable'), or None before the first."""
    return _bf16_gemm


def set_compute_dtype(dtype: Any) -> str:
    """Compute the float32 GEMMs in bfloat16 (or back in float32); returns the previous.

    With ``"bfloat16"`` every float32 product of the kernels (a Net's steps and the
    layer functions) rounds its two operands to bfloat16 (round to nearest, ties to
    even) and accumulates in float32 with a bf16 GEMM (:func:`set_bf16_gemm`: fastfc's
    own on a CPU with AVX512-BF16, MKL's on Intel CPUs and where fastfc's cannot run).
    Parameters, optimiser state, losses and normalisation statistics stay float32 (the
    master copy), so checkpoints are unchanged.  float64 products are not affected.
    Fast where the CPU has AVX512-BF16 or AMX (:func:`bf16_accelerated`); MKL emulates
    it elsewhere (correct, but no faster than float32).

    Raises
    ------
    ValueError
        If `dtype` is neither 'float32' nor 'bfloat16'.
    RuntimeError
        For 'bfloat16' when no bf16 GEMM can run here.
    """
    global _compute_dtype
    name = check_compute_dtype(dtype, "dtype")
    from fastfc._kernels import blas
    with _lock:
        old = _compute_dtype
        blas.set_bf16(name == "bfloat16")
        _compute_dtype = name
        return old


def check_compute_dtype(dtype: Any, argument: str = "compute_dtype") -> str:
    """``dtype`` as 'float32' or 'bfloat16', with a bf16 GEMM chosen for the latter.

    Raises
    ------
    ValueError
        If `dtype` names neither (the message names `argument`).
    RuntimeError
        For 'bfloat16' when no bf16 GEMM can run here (no AVX512-BF16 and no MKL).
    """
    name = getattr(dtype, "name", dtype)
    if name not in ("float32", "bfloat16"):
        raise ValueError(f"{argument} must be 'float32' or 'bfloat16', got {dtype!r}")
    from fastfc import _openblas
    _openblas.connect()
    if name == "bfloat16":
        with _lock:
            if _bf16_gemm is None:
                try:
                    _select_bf16(_env_bf16())
                except RuntimeError as exc:
                    raise RuntimeError(f"{argument} 'bfloat16' cannot run here: {exc}") \
                        from None
    return str(name)


@contextlib.contextmanager
def compute_dtype(dtype: Any) -> Iterator[None]:
    """Context manager: :func:`set_compute_dtype` for the block, the previous one after."""
    old = set_compute_dtype(dtype)
    try:
        yield
    finally:
        set_compute_dtype(old)


def gemm_info() -> dict[str, Any]:
    """The backends, their versions, the mode and the choices, as a dict (for show_config)."""
    from fastfc import _openblas
    from fastfc._kernels import blas
    _openblas.connect()
    backends = {"openblas": {"loaded": True, "version": _scipy_openblas_version(),
                             "path": _openblas.thread_control_library,
                             "threading": "OpenBLAS's own threads, or fastfc's pool when "
                                          "OpenBLAS runs one"}}
    for name in BACKENDS[1:]:
        info = _libs.get(name)
        if info is not None:
            backends[name] = {"loaded": True, "version": info["version"], "path": info["path"],
                              "threading": info["threading"], "bf16": info["bf16"]}
        else:
            backends[name] = {"loaded": False, "why": _load_errors.get(name, "not loaded")}
    counts: dict[str, int] = {}
    for *_, b in blas.routes():
        counts[BACKENDS[b]] = counts.get(BACKENDS[b], 0) + 1
    bf16, isa = _bf16_plan()
    return {"mode": _mode_name, "isa": _isa(), "backends": backends,
            "routes": [(m, n, k, flags & 1, (flags >> 1) & 1, flags >> 3, BACKENDS[b])
                       for m, n, k, flags, b in blas.routes()],
            "route_counts": counts,
            "cache": {"path": cache_path() if _mode_name == "auto" else None,
                      "status": _cache_status if _mode_name == "auto" else "unused"},
            "compute_dtype": _compute_dtype,
            "bf16": {"available": bf16 is not None, "gemm": bf16, "in_use": _bf16_gemm is not None,
                     "cpu_isa": bf16_isa(), "accelerated": isa,
                     "emulated": bf16 is not None and isa is None}}


def _bf16_plan() -> tuple[Optional[str], Optional[str]]:
    """(the bf16 GEMM in use, or the one auto would take without loading anything new;
    the ISA it runs bf16 with, None when it emulates)."""
    from fastfc._kernels import blas
    name = _bf16_gemm
    if name is None:
        runs = {"native": blas.native_bf16(), "mkl": bool(_libs.get("mkl", {}).get("bf16"))}
        name = next((c for c in _bf16_order("auto") if runs[c]), None)
    isa = "AVX512-BF16" if name == "native" else bf16_accelerated() if name == "mkl" else None
    return name, isa


def format_info(info: dict[str, Any], row_width: int = 15) -> list[str]:
    """The lines of :func:`gemm_info` in ``show_config()``'s layout."""
    lines = ["GEMM backends"]

    def row(key: str, value: object) -> None:
        lines.append(f"  {key:<{row_width}} {value}")

    if "error" in info:
        row("error", info["error"])
        return lines
    alone = info["mode"] == "auto" and info["cache"]["status"] == _ALONE
    row("mode", f"{info['mode']} (FASTFC_GEMM, fastfc.set_gemm_backend or fastfc train "
                f"--gemm; auto: " + ("SciPy's OpenBLAS is the only backend installed, "
                                     "every product runs on it)" if alone else
                                     "float32 shapes timed, float64 on openblas)"))
    row("CPU ISA", info["isa"])
    for name, b in info["backends"].items():
        if b["loaded"]:
            extra = f", bf16 GEMM" if b.get("bf16") else ""
            row(name, f"{b['version']} ({b['threading']}{extra})")
            if b.get("path"):
                row("", b["path"])
        else:
            row(name, f"not available: {b['why']}")
    counts = ", ".join(f"{n} {c}" for n, c in sorted(info["route_counts"].items()))
    row("choices", f"{len(info['routes'])} float32 shapes routed" +
        (f" ({counts})" if counts else ""))
    for m, n, k, ta, tb, parts, name in info["routes"][:12]:
        row("", f"{m}x{n}x{k} {'T' if ta else 'N'}{'T' if tb else 'N'} "
                f"{parts} thread{'s' if parts > 1 else ''} -> {name}")
    if len(info["routes"]) > 12:
        row("", f"... {len(info['routes']) - 12} more")
    if info["cache"]["path"]:
        row("cache", f"{info['cache']['path']} ({info['cache']['status']})")
    bf = info["bf16"]
    if bf["accelerated"]:
        speed = f"accelerated ({bf['accelerated']})"
    elif bf["gemm"] == "portable":
        speed = "emulated in portable C (a reference, slow)"
    elif bf.get("cpu_isa"):
        speed = (f"emulated (the CPU has {bf['cpu_isa']}, but MKL uses it on Intel CPUs "
                 "only)")
    else:
        speed = "emulated (no AVX512-BF16 or AMX on this CPU)"
    label = {"native": "fastfc's own", "mkl": "MKL's", "portable": "fastfc's own"}
    state = "in use" if bf["in_use"] else "auto's choice"
    row("bfloat16", f"compute dtype {info['compute_dtype']}; bf16 GEMM "
        + (f"{label[bf['gemm']]} ({state}), {speed}"
           if bf["available"] else "not available (no AVX512-BF16 here for fastfc's own; "
                                   "MKL's needs pip install 'fastfc[mkl]')"))
    return lines
