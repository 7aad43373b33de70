"""Row-major GEMM/AXPY/DOT/SCAL over a swappable table of BLAS function pointers.

BLAS is column-major.  A row-major matrix is the transpose of the same memory read
column-major, so the row-major product C = op(A) @ op(B) is computed as the
column-major product C.T = op(B).T @ op(A).T: swap the operands and their sizes.
"""
from scipy.linalg cimport cython_blas

cdef extern from "fastfc_pool.h" nogil:
    enum: FFC_POOL_MAX
    ctypedef void (*ffc_task_fn)(void* arg, int part, int nparts) noexcept nogil
    int ffc_pool_try_own()
    int ffc_pool_setup(int nparts)
    void ffc_pool_release()
    int ffc_pool_parts()
    void ffc_pool_set_spin(long ns)
    enum: FFC_SPIN_NS
    long ffc_pool_tasks()
    void ffc_pool_run(ffc_task_fn fn, void* arg)
    void ffc_part_range(long n, int part, int nparts, long align, long* lo, long* hi)

ctypedef int (*get_threads_ptr)() noexcept nogil

cdef CBlas _table
cdef get_threads_ptr _get_threads = NULL   # the BLAS library's thread count, if known
cdef bint _pool_enabled = False
cdef bint _scipy_gemm = True               # the kernels call SciPy's BLAS (set_gemm clears it)
cdef int _pool_max = 0                     # cap on the parts (0: none but FFC_POOL_MAX)
cdef int _pool_parts = 0                   # fastfc.set_num_threads (0: the BLAS's count)
# Written by the thread that owns the pool, between parallel_begin and parallel_end: the
# BLAS runs single-threaded, so gemm() may split a product over the pool.
cdef bint _split_gemm = False
# A product is split only when it has at least this many multiply-adds: smaller ones
# cost less than handing half of them to another thread (a Net step hands its update
# to the pool from 65536 parameters, its gather from 65536 elements).  Chosen from a measurement on the
# 2-core AMD EPYC test machine while other processes loaded it (one-hidden-layer Net
# steps, every GEMM split vs none; bench notes in the report of issue 16): at 2**17 and
# 2**18 multiply-adds the split gained nothing (0.99x, 1.04x), at 2**19 it gained ~14%;
# above that the noise of the loaded machine swamped the difference.  The old bound was
# 2**18.  Use blas._set_split_min() to measure again.
cdef double _SPLIT_MIN = 524288.0


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
if <int>FFC_POOL_MAX != <int>POOL_MAX_PARTS:
    raise ImportError("blas.pxd's POOL_MAX_PARTS differs from fastfc_pool.h's FFC_POOL_MAX")


cdef void _gemm1(bint trans_a, bint trans_b, int m, int n, int k,
                floating alpha, const floating* a, int lda,
                const floating* b, int ldb,
                floating beta, floating* c, int ldc) noexcept nogil:
    """One BLAS call: C = alpha * op(A) @ op(B) + beta * C, row-major."""
    cdef char ta = b"T" if trans_a else b"N"
    cdef char tb = b"T" if trans_b else b"N"
    # column-major view: C.T (n, m) = op(B).T (n, k) @ op(A).T (k, m)
    if floating is float:
        _table.sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*>b, &ldb,
                     <float*>a, &lda, &beta, c, &ldc)
    else:
        _table.dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*>b, &ldb,
                     <double*>a, &lda, &beta, c, &ldc)


ctypedef struct GemmTask:
    bint is_float
    bint trans_a
    bint trans_b
    bint split_rows         # split the m rows of C (else its n columns)
    int m, n, k, lda, ldb, ldc
    double alpha, beta
    const char* a
    const char* b
    char* c


cdef void _gemm_part(void* arg, int part, int nparts) noexcept nogil:
    """Part `part` of a split GEMM: a block of rows or of columns of C."""
    cdef GemmTask* t = <GemmTask*>arg
    cdef long lo, hi
    cdef size_t item = sizeof(float) if t.is_float else sizeof(double)
    cdef const char* a = t.a
    cdef const char* b = t.b
    cdef char* c = t.c
    cdef int m = t.m, n = t.n
    if t.split_rows:
        ffc_part_range(t.m, part, nparts, 16, &lo, &hi)
        m = <int>(hi - lo)
        a += (lo if t.trans_a else lo * t.lda) * item
        c += lo * t.ldc * item
    else:
        ffc_part_range(t.n, part, nparts, 16, &lo, &hi)
        n = <int>(hi - lo)
        b += (lo * t.ldb if t.trans_b else lo) * item
        c += lo * item
    if hi <= lo:
        return
    if t.is_float:
        _gemm1(t.trans_a, t.trans_b, m, n, t.k, <float>t.alpha, <const float*>a, t.lda,
               <const float*>b, t.ldb, <float>t.beta, <float*>c, t.ldc)
    else:
        _gemm1(t.trans_a, t.trans_b, m, n, t.k, t.alpha, <const double*>a, t.lda,
               <const double*>b, t.ldb, t.beta, <double*>c, t.ldc)


cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k,
               floating alpha, const floating* a, int lda,
               const floating* b, int ldb,
               floating beta, floating* c, int ldc) noexcept nogil:
    """C = alpha * op(A) @ op(B) + beta * C, row-major; op(A) is (m, k), op(B) is (k, n).

    Inside parallel_begin/parallel_end, when the BLAS runs one thread, a large product
    is split into row (or column) blocks of C, one per thread of the pool.
    """
    cdef GemmTask t
    if (ffc_pool_parts() < 2 or not _split_gemm or <double>m * n * k < _SPLIT_MIN
            or (m < 32 and n < 32)):
        _gemm1(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return
    t.is_float = floating is float
    t.trans_a = trans_a
    t.trans_b = trans_b
    t.split_rows = m >= n
    t.m = m
    t.n = n
    t.k = k
    t.lda = lda
    t.ldb = ldb
    t.ldc = ldc
    t.alpha = alpha
    t.beta = beta
    t.a = <const char*>a
    t.b = <const char*>b
    t.c = <char*>c
    ffc_pool_run(_gemm_part, &t)


# ----------------------------------------------------------------- the pool

cdef int parallel_begin() noexcept nogil:
    """Own the pool for a step if fastfc's threading is on; returns a token.

    The pool runs ``set_num_threads`` parts (by default as many as the BLAS has
    threads).  The BLAS's own thread count is only read, never changed: when it is 1
    (the user limited it, e.g. with threadpoolctl) gemm() splits large products over
    the pool, otherwise every product goes whole to the BLAS and its own threads, and
    the pool takes the gather and the update.
    """
    global _split_gemm
    cdef int blas_threads, parts
    if not _pool_enabled or not _scipy_gemm:
        return 0
    blas_threads = _get_threads() if _get_threads != NULL else 0
    parts = _pool_parts if _pool_parts > 0 else blas_threads
    if _pool_max > 0 and parts > _pool_max:
        parts = _pool_max
    if parts > FFC_POOL_MAX:
        parts = FFC_POOL_MAX
    if parts < 2 or not ffc_pool_try_own():
        return 0
    if ffc_pool_setup(parts) < 2:
        ffc_pool_release()
        return 0
    _split_gemm = blas_threads == 1
    # idle workers spin between the tasks of a step only when the GEMMs are theirs too;
    # otherwise they sleep at once and leave the cores to OpenBLAS's threads
    ffc_pool_set_spin(FFC_SPIN_NS if _split_gemm else 0)
    return 1


cdef void parallel_end(int token) noexcept nogil:
    """Undo parallel_begin (token 0: nothing to undo)."""
    global _split_gemm
    if token > 0:
        _split_gemm = False
        ffc_pool_release()


cdef int parallel_parts() noexcept nogil:
    """How many parts parallel_run splits a task into on this thread (1 = serial)."""
    return ffc_pool_parts()


cdef void parallel_run(task_fn fn, void* arg) noexcept nogil:
    """fn(arg, part, nparts) for every part; part 0 runs on the calling thread."""
    ffc_pool_run(<ffc_task_fn>fn, arg)


cdef void part_range(Py_ssize_t n, int part, int nparts, Py_ssize_t align,
                     Py_ssize_t* lo, Py_ssize_t* hi) noexcept nogil:
    """[lo, hi) of part `part` when n items are split in nparts (boundaries % align == 0)."""
    cdef long l, h
    ffc_part_range(n, part, nparts, align, &l, &h)
    lo[0] = l
    hi[0] = h


def set_thread_control(size_t get_address):
    """Give the kernels the BLAS library's ``get_num_threads`` (0 forgets it).

    Only read: a step sizes the pool from it and splits GEMMs when it is 1.
    """
    global _get_threads
    _get_threads = <get_threads_ptr><void*>get_address


def set_parts(int parts):
    """Parts of fastfc's pool in a step (0: as many as the BLAS has threads); returns the old."""
    global _pool_parts
    if parts < 0:
        raise ValueError(f"parts must be >= 0, got {parts}")
    old = _pool_parts
    _pool_parts = parts
    return old


def step_parts():
    """How many parts a step started now would split its work into (1: serial)."""
    cdef int parts
    if not _pool_enabled or not _scipy_gemm:
        return 1
    parts = _pool_parts if _pool_parts > 0 else (_get_threads() if _get_threads != NULL else 0)
    if _pool_max > 0 and parts > _pool_max:
        parts = _pool_max
    return max(1, min(parts, FFC_POOL_MAX))


def set_pool(bint enabled, int max_parts=0):
    """Switch fastfc's step-level threading on or off; max_parts caps the parts (0: none)."""
    global _pool_enabled, _pool_max
    if max_parts < 0:
        raise ValueError(f"max_parts must be >= 0, got {max_parts}")
    _pool_enabled = enabled
    _pool_max = max_parts


def _set_split_min(double multiply_adds):
    """Set the smallest product gemm() splits over the pool; returns the old value
    (for measurements such as the one that chose the default)."""
    global _SPLIT_MIN
    if not multiply_adds >= 0:
        raise ValueError(f"multiply_adds must be >= 0, got {multiply_adds}")
    old = _SPLIT_MIN
    _SPLIT_MIN = multiply_adds
    return old


def pool_info():
    """State of fastfc's step-level threading, as a dict.

    ``enabled`` (a Net step would use the pool), ``split_min`` (fewest multiply-adds of
    a product that is split over the pool), ``thread_control`` (the BLAS library's
    thread count can be read), ``blas_threads`` (that count now, 0 if unknown),
    ``parts`` (what fastfc.set_num_threads set, 0: follow the BLAS), ``step_parts``
    (parts of a step started now), ``splits_gemm`` (a step would split GEMMs: the BLAS
    is single-threaded), ``max_parts`` (most parts a task is split into) and
    ``tasks_run`` (tasks the pool's workers have run in this process).
    """
    control = _get_threads != NULL
    blas_threads = _get_threads() if control else 0
    return {"enabled": bool(_pool_enabled and _scipy_gemm),
            "split_min": _SPLIT_MIN,
            "thread_control": control,
            "blas_threads": blas_threads,
            "parts": _pool_parts,
            "step_parts": step_parts(),
            "splits_gemm": blas_threads == 1,
            "max_parts": FFC_POOL_MAX if _pool_max == 0 else min(_pool_max, FFC_POOL_MAX),
            "tasks_run": ffc_pool_tasks()}


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
    global _backend, _scipy_gemm
    if sgemm_address == 0 or dgemm_address == 0:
        raise ValueError("set_gemm needs two non-null function addresses")
    _table.sgemm = <sgemm_ptr><void*>sgemm_address
    _table.dgemm = <dgemm_ptr><void*>dgemm_address
    _backend = name
    # the thread control fastfc knows is SciPy's: another library keeps its own threads
    _scipy_gemm = False


def use_scipy_blas():
    """Route every kernel back to scipy.linalg.cython_blas (the default)."""
    global _backend, _scipy_gemm
    _use_scipy()
    _backend = "scipy"
    _scipy_gemm = True


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
