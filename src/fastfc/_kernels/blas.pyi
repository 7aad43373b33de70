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
