"""fastfc's threading API: the size of its own step-level pool.

Modelled on threadpoolctl.  fastfc's pool only ever serves a Net step (and a large
compiled optimiser update); its size is a setting of fastfc, never of the BLAS: nothing
here changes SciPy's OpenBLAS thread count, which other code of the process sees.
"""
from __future__ import annotations

import contextlib
import os
from types import ModuleType
from typing import Any, Iterator, Optional

__all__ = ["get_num_threads", "set_num_threads", "threads", "threading_info"]


def _blas() -> ModuleType:
    from fastfc import _openblas
    from fastfc._kernels import blas
    _openblas.connect()
    return blas


def get_num_threads() -> int:
    """Threads a Net step started now would use (1: it runs serially).

    By default as many as SciPy's OpenBLAS has threads (its default, ``OPENBLAS_NUM_THREADS``
    or a threadpoolctl limit), capped at the pool's maximum; what :func:`set_num_threads`
    chose otherwise; 1 with ``FASTFC_THREADING=blas``.
    """
    return _blas().step_parts()


def set_num_threads(n: Optional[int]) -> Optional[int]:
    """Size fastfc's own pool for the following Net steps; returns the previous setting.

    ``n`` threads (the calling one included) or ``None`` to follow OpenBLAS's thread
    count again.  Only fastfc's pool changes: OpenBLAS keeps its own count, so a Net
    step still hands each GEMM to OpenBLAS unless OpenBLAS runs one thread -- then the
    step splits the GEMMs over fastfc's threads too.  The previous setting is returned
    as an int, or None when it followed OpenBLAS.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be a positive int or None, got {n!r}")
    old = _blas().set_parts(0 if n is None else n)
    return None if old == 0 else old


@contextlib.contextmanager
def threads(n: Optional[int], blas_threads: Optional[int] = None) -> Iterator[None]:
    """Context manager: Net steps inside use ``n`` of fastfc's threads (None: as OpenBLAS).

    The previous pool size comes back on exit.  Like :func:`set_num_threads` it sizes
    fastfc's pool only, process-wide (the pool serves one step at a time).

    ``blas_threads`` (default None: leave it alone) also limits SciPy's OpenBLAS to that
    many threads for the duration of the block, through threadpoolctl, and restores its
    count on exit.  OpenBLAS has no per-thread setting (its
    ``openblas_set_num_threads_local`` sets the process-wide count), so this limit is
    seen by every thread of the process while the block runs: ask for it only where
    the process is yours.  ``blas_threads=1`` is the fastest set-up for training: a
    step then splits its large GEMMs over fastfc's threads too::

        with fastfc.threads(2, blas_threads=1):
            solver.train()
    """
    with contextlib.ExitStack() as stack:
        if blas_threads is not None:
            if isinstance(blas_threads, bool) or not isinstance(blas_threads, int) \
                    or blas_threads < 1:
                raise ValueError(f"blas_threads must be a positive int or None, "
                                 f"got {blas_threads!r}")
            from threadpoolctl import ThreadpoolController
            from fastfc import _openblas
            _blas()                     # connects: the library to limit is known
            controller = ThreadpoolController()
            path = _openblas.thread_control_library
            if path is not None:
                real = os.path.realpath(path)
                controller = controller.select(
                    filepath=[lib.filepath for lib in controller.lib_controllers
                              if os.path.realpath(lib.filepath) == real])
            else:
                controller = controller.select(user_api="blas")
            stack.enter_context(controller.limit(limits=blas_threads))
        old = set_num_threads(n)
        stack.callback(set_num_threads, old)
        yield


def threading_info() -> dict[str, Any]:
    """The threading state shown by ``fastfc.show_config()`` and ``fastfc info``, as a dict."""
    from fastfc import _openblas
    blas = _blas()
    info = blas.pool_info()
    return {"mode": "pool" if info["enabled"] else "blas",
            "threads": info["step_parts"],
            "set_num_threads": info["parts"] or None,
            "blas_threads": info["blas_threads"] if info["thread_control"] else None,
            "splits_gemm": bool(info["enabled"] and info["splits_gemm"]),
            "max_parts": info["max_parts"],
            "thread_control_library": _openblas.thread_control_library}
