"""The physical limit: BLAS peak and the GEMMs of a step at their real shapes.

Both go through ``fastfc._kernels.blas._gemm``: the GEMM dispatch fastfc's kernels call.
The ``gemm`` row uses fastfc's default mode; ``gemm[openblas]``, ``gemm[mkl]`` and
``gemm[bf16]`` force one backend (and dtype), so the bound of each is measured.

* :func:`peak` -- best GFLOP/s of a large square GEMM (best of several calls);
* the ``gemm`` pseudo-implementation -- one "step" is the minimal step's GEMMs
  (forward and dW for every layer, dX for all but the first; see
  ``Workload.gemm_shapes``) back to back on preallocated arrays: the time a perfect
  implementation would spend in BLAS at these shapes.  It is scheduled like the other
  implementations, so the same machine drift hits it.
"""
import time

import numpy as np

NAME = "gemm"


def available(gemm=None, compute_dtype=None):
    try:
        from fastfc._kernels import blas  # noqa: F401
    except ImportError as exc:
        return False, f"fastfc kernels not importable: {exc}"
    from bench.impls.fastfc_net import available as net_available
    return net_available(gemm, compute_dtype)


def _configure(gemm=None, compute_dtype=None, dtype=np.float32):
    """This worker's backend: forced (the bound of one backend), or fastfc's default."""
    import fastfc
    if gemm is not None:
        fastfc.set_gemm_backend(gemm)
    if compute_dtype is not None and np.dtype(dtype) == np.float32:
        fastfc.set_compute_dtype(compute_dtype)


def supports(wl, dtype):
    return wl.kind == "step"


def set_threads(n):
    pass


def peak(dtype, n=2048, repeat=5):
    """Best GFLOP/s of C = A @ B with n x n operands over ``repeat`` calls (after one warm-up)."""
    from fastfc import _openblas
    from fastfc._kernels.blas import _gemm_step as _gemm
    _openblas.connect()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    c = np.empty((n, n), dtype=dtype)
    _gemm(a, b, c)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        _gemm(a, b, c)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best / 1e9


class Runner:
    includes_sampling = False

    def __init__(self, wl, dtype, data):
        from fastfc import _openblas
        from fastfc._kernels.blas import _gemm_step
        _openblas.connect()
        # as a Net step runs them: fastfc's pool owned, so a product on a one-thread
        # backend (MKL, OpenBLAS limited to 1) is split as the step would split it
        self._gemm = _gemm_step
        rng = np.random.default_rng(0)
        calls = []
        for m, n, k, ta, tb, _ in wl.gemm_shapes():
            a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
            b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
            c = np.empty((m, n), dtype=dtype)
            calls.append((a, b, c, bool(ta), bool(tb)))
        self.calls = calls
        self.run = self.step

    def step(self):
        g = self._gemm
        for a, b, c, ta, tb in self.calls:
            g(a, b, c, ta, tb)

    def history_bytes(self):
        return 0


def setup(wl, dtype, data, gemm=None, compute_dtype=None):
    _configure(gemm, compute_dtype, dtype)
    return Runner(wl, dtype, data)
