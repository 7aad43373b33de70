"""Row-major GEMM/AXPY/DOT/SCAL over a swappable table of BLAS function pointers.

BLAS is column-major.  A row-major matrix is the transpose of the same memory read
column-major, so the row-major product C = op(A) @ op(B) is computed as the
column-major product C.T = op(B).T @ op(A).T: swap the operands and their sizes.
"""
from scipy.linalg cimport cython_blas

cdef CBlas _table


cdef void _use_scipy() noexcept nogil:
    _table.sgemm = cython_blas.sgemm
    _table.dgemm = cython_blas.dgemm
    _table.saxpy = cython_blas.saxpy
    _table.daxpy = cython_blas.daxpy
    _table.sdot = cython_blas.sdot
    _table.ddot = cython_blas.ddot
    _table.sscal = cython_blas.sscal
    _table.dscal = cython_blas.dscal


_use_scipy()
_backend = "scipy"


cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k,
               floating alpha, const floating* a, int lda,
               const floating* b, int ldb,
               floating beta, floating* c, int ldc) noexcept nogil:
    """C = alpha * op(A) @ op(B) + beta * C, row-major; op(A) is (m, k), op(B) is (k, n)."""
    cdef char ta = b"T" if trans_a else b"N"
    cdef char tb = b"T" if trans_b else b"N"
    # column-major view: C.T (n, m) = op(B).T (n, k) @ op(A).T (k, m)
    if floating is float:
        _table.sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*>b, &ldb,
                     <float*>a, &lda, &beta, c, &ldc)
    else:
        _table.dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*>b, &ldb,
                     <double*>a, &lda, &beta, c, &ldc)


cdef void axpy(int n, floating alpha, const floating* x, floating* y) noexcept nogil:
    """y += alpha * x"""
    cdef int inc = 1
    if floating is float:
        _table.saxpy(&n, &alpha, <float*>x, &inc, y, &inc)
    else:
        _table.daxpy(&n, &alpha, <double*>x, &inc, y, &inc)


cdef floating dot(int n, const floating* x, const floating* y) noexcept nogil:
    """x @ y"""
    cdef int inc = 1
    if floating is float:
        return _table.sdot(&n, <float*>x, &inc, <float*>y, &inc)
    else:
        return _table.ddot(&n, <double*>x, &inc, <double*>y, &inc)


cdef void scal(int n, floating alpha, floating* x) noexcept nogil:
    """x *= alpha"""
    cdef int inc = 1
    if floating is float:
        _table.sscal(&n, &alpha, x, &inc)
    else:
        _table.dscal(&n, &alpha, x, &inc)


# ----------------------------------------------------------------- run-time switch

def set_gemm(size_t sgemm_address, size_t dgemm_address, str name="custom"):
    """Route every kernel's GEMM to other BLAS routines.

    Parameters
    ----------
    sgemm_address, dgemm_address : int
        Addresses of Fortran-convention ``sgemm_`` / ``dgemm_`` functions, for example
        ``ctypes.cast(lib.sgemm_, ctypes.c_void_p).value`` of a loaded MKL or OpenBLAS.
    name : str
        Shown by :func:`backend` and ``fastfc.show_config()``.
    """
    global _backend
    if sgemm_address == 0 or dgemm_address == 0:
        raise ValueError("set_gemm needs two non-null function addresses")
    _table.sgemm = <sgemm_ptr><void*>sgemm_address
    _table.dgemm = <dgemm_ptr><void*>dgemm_address
    _backend = name


def use_scipy_blas():
    """Route every kernel back to scipy.linalg.cython_blas (the default)."""
    global _backend
    _use_scipy()
    _backend = "scipy"


def backend():
    """Name of the BLAS the kernels call: 'scipy' unless set_gemm changed it."""
    return _backend


# ----------------------------------------------------------------- def twins for tests

def _gemm(const floating[:, ::1] a, const floating[:, ::1] b, floating[:, ::1] c,
          bint trans_a=False, bint trans_b=False, floating alpha=1, floating beta=0):
    """c = alpha * op(a) @ op(b) + beta * c (shapes checked by the caller)."""
    cdef int m = c.shape[0], n = c.shape[1]
    cdef int k = a.shape[0] if trans_a else a.shape[1]
    with nogil:
        gemm(trans_a, trans_b, m, n, k, alpha, &a[0, 0], a.shape[1],
             &b[0, 0], b.shape[1], beta, &c[0, 0], n)


def _axpy(double alpha, const floating[::1] x, floating[::1] y):
    """y += alpha * x"""
    with nogil:
        axpy(x.shape[0], <floating>alpha, &x[0], &y[0])


def _dot(const floating[::1] x, const floating[::1] y):
    """x @ y"""
    cdef floating r
    with nogil:
        r = dot(x.shape[0], &x[0], &y[0])
    return r


def _scal(double alpha, floating[::1] x):
    """x *= alpha"""
    with nogil:
        scal(x.shape[0], <floating>alpha, &x[0])
