"""Row-major GEMM/AXPY/DOT/SCAL over a swappable table of BLAS function pointers.

Stub of the compiled module fastfc._kernels.blas.  The underscore functions are the
``def`` twins of the ``cdef`` kernels (float32 or float64 arrays, C-contiguous, shapes
trusted).
"""
import numpy as np
import numpy.typing as npt

_Floats = npt.NDArray[np.float32] | npt.NDArray[np.float64]

def set_gemm(sgemm_address: int, dgemm_address: int, name: str = "custom") -> None:
    """Route every kernel's GEMM to the Fortran-convention sgemm_/dgemm_ at these addresses."""

def use_scipy_blas() -> None:
    """Route every kernel back to scipy.linalg.cython_blas (the default)."""

def backend() -> str:
    """Name of the BLAS the kernels call: 'scipy' unless set_gemm changed it."""

def _gemm(a: _Floats, b: _Floats, c: _Floats, trans_a: bool = False,
          trans_b: bool = False, alpha: float = 1, beta: float = 0) -> None:
    """c = alpha * op(a) @ op(b) + beta * c"""

def _axpy(alpha: float, x: _Floats, y: _Floats) -> None:
    """y += alpha * x"""

def _dot(x: _Floats, y: _Floats) -> float:
    """x @ y"""

def _scal(alpha: float, x: _Floats) -> None:
    """x *= alpha"""

def set_thread_control(get_address: int) -> None:
    """Give the kernels the BLAS library's get_num_threads, only read (0 forgets it)."""

def set_parts(parts: int) -> int:
    """Parts of fastfc's pool in a step (0: as many as the BLAS has threads); the old value."""

def step_parts() -> int:
    """How many parts a step started now would split its work into (1: serial)."""

def set_pool(enabled: bool, max_parts: int = 0) -> None:
    """Switch fastfc's step-level threading on or off; max_parts caps the parts (0: none)."""

def _set_split_min(multiply_adds: float) -> float:
    """Set the smallest product split over the pool; returns the old value."""

def pool_info() -> dict[str, bool | int | float]:
    """enabled, split_min, thread_control, blas_threads, parts, step_parts, splits_gemm,
    max_parts and tasks_run."""

# ---- GEMM backends (driven by fastfc._gemm)

def set_backend(index: int, sgemm: int, dgemm: int, bf16: int = 0,
                set_local: int = 0) -> None:
    """Fill backend slot `index` (1 MKL, 2 private OpenBLAS) with CBLAS function addresses."""

def set_private_threads(get_address: int, set_address: int) -> None:
    """The private OpenBLAS's thread-count getter and setter (0, 0: none)."""

def backend_loaded(index: int) -> bool:
    """Whether backend `index` can run a product."""

def set_mode(mode: int) -> int:
    """Backend of every product (0, 1, 2) or -1 (per float32 shape); returns the old mode."""

def get_mode() -> int:
    """The mode set_mode set."""

BF16_NONE: int
BF16_MKL: int
BF16_NATIVE: int
BF16_PORTABLE: int

def native_bf16() -> bool:
    """Whether fastfc's AVX512-BF16 GEMM can run here."""

def set_bf16_gemm(which: int) -> int:
    """Which bf16 GEMM serves bf16 products (BF16_*); returns the previous one."""

def _sbgemm(a: npt.NDArray[np.uint16], b: npt.NDArray[np.uint16], c: npt.NDArray[np.float32],
            trans_a: bool = False, trans_b: bool = False, alpha: float = 1.0,
            beta: float = 0.0, which: int = ...) -> None:
    """c = alpha * op(a) @ op(b) + beta * c with one bf16 GEMM, on this thread."""

def set_bf16(on: bool) -> bool:
    """float32 products in bfloat16 (needs a bf16 GEMM); returns the old setting."""

def _thread_compute(code: int) -> int:
    """This thread's compute dtype code (-1, 0, 1); returns the previous one."""

def routes() -> list[tuple[int, int, int, int, int]]:
    """(m, n, k, flags, backend) of every route, in the order they were added."""

def add_route(m: int, n: int, k: int, flags: int, backend: int) -> int:
    """Route float32 products of this shape to `backend`; the backend the shape now uses."""

def clear_routes() -> None:
    """Forget every route."""

def routes_timed() -> int:
    """Routes chosen by timing since the last clear_routes."""

def route_flags(trans_a: bool, trans_b: bool, parts: int, no_scipy: bool = ...) -> int:
    """The flags of a route."""

def _set_timing(margin: float, reps: int, budget: float) -> tuple[float, int, float]:
    """Set the timing's margin, most runs and budget (s); returns the old three."""

def _bf16_round(x: npt.NDArray[np.float32], out: npt.NDArray[np.uint16]) -> None:
    """out = the bfloat16 bits of x (round to nearest, ties to even)."""

def _hold_pool(hold: bool) -> bool:
    """Own fastfc's pool (True; whether it was free) or release it (False): for tests."""

def _gemm_step(a: _Floats, b: _Floats, c: _Floats, trans_a: bool = False,
               trans_b: bool = False) -> None:
    """c = op(a) @ op(b) with fastfc's pool owned, as inside a Net step."""
