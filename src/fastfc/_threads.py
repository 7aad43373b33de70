"""fastfc's threading API: the size of its own step-level pool.

Modelled on threadpoolctl.  fastfc's pool only ever serves a Net step (and a large
compiled optimiser update); its size is a setting of fastfc, never of the BLAS: nothing
here changes SciPy's OpenBLAS thread count, which other code of the process sees.
"""
import contextlib

__all__ = ["get_num_threads", "set_num_threads", "threads", "threading_info"]


def _blas():
    from fastfc import _openblas
    from fastfc._kernels import blas
    _openblas.connect()
    return blas


def get_num_threads():
    """Threads a Net step started now would use (1: it runs serially).

    By default as many as SciPy's OpenBLAS has threads (its default, ``OPENBLAS_NUM_THREADS``
    or a threadpoolctl limit), capped at the pool's maximum; what :func:`set_num_threads`
    chose otherwise; 1 with ``FASTFC_THREADING=blas``.
    """
    return _blas().step_parts()


def set_num_threads(n):
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
def threads(n):
    """Context manager: Net steps inside use ``n`` of fastfc's threads (None: follow BLAS).

    The previous setting comes back on exit.  Like :func:`set_num_threads` it is a
    setting of fastfc's pool only and is process-wide (the pool serves one step at a
    time).  For the fastest steps on a machine you give to training, make OpenBLAS
    single-threaded as well, explicitly::

        from threadpoolctl import threadpool_limits
        with threadpool_limits(1, user_api="blas"), fastfc.threads(2):
            solver.train()
    """
    old = set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(old)


def threading_info():
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
