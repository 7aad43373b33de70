"""Row-major GEMM/AXPY/DOT/SCAL over a swappable table of BLAS function pointers.

BLAS is column-major.  A row-major matrix is the transpose of the same memory read
column-major, so the row-major product C = op(A) @ op(B) is computed as the
column-major product C.T = op(B).T @ op(A).T: swap the operands and their sizes.
"""
from libc.stdint cimport uint16_t, intptr_t
from libc.stdlib cimport calloc, free
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

cdef extern from "gemm_dispatch.h" nogil:
    enum: FFC_BK_N
    enum: FFC_MAX_ROUTES
    enum: FFC_CBLAS_ROW
    enum: FFC_CBLAS_N
    enum: FFC_CBLAS_T
    ctypedef void (*ffc_cblas_sgemm)(int, int, int, int, int, int, float, const float*, int,
                                     const float*, int, float, float*, int) noexcept nogil
    ctypedef void (*ffc_cblas_dgemm)(int, int, int, int, int, int, double, const double*, int,
                                     const double*, int, double, double*, int) noexcept nogil
    ctypedef void (*ffc_cblas_bf16)(int, int, int, int, int, int, float, const uint16_t*, int,
                                    const uint16_t*, int, float, float*, int) noexcept nogil
    ctypedef int (*ffc_threads_local)(int) noexcept nogil
    ctypedef struct ffc_backend:
        ffc_cblas_sgemm sgemm
        ffc_cblas_dgemm dgemm
        ffc_cblas_bf16 bf16
        ffc_threads_local set_local
    ffc_backend ffc_backends[]
    ctypedef struct ffc_route:
        int m, n, k, flags, backend
    const ffc_route* ffc_route_at(int i)
    int ffc_n_routes
    long ffc_routes_timed
    int ffc_busy_parts
    int ffc_busy_split
    int ffc_route_flags(int trans_a, int trans_b, int parts, int no_scipy)
    int ffc_route_find(int m, int n, int k, int flags)
    int ffc_route_add(int m, int n, int k, int flags, int backend, int timed)
    void ffc_routes_clear()
    double ffc_seconds()
    void ffc_bf16_rows(const float* x, Py_ssize_t ld, Py_ssize_t lo, Py_ssize_t hi,
                       Py_ssize_t d, uint16_t* out)
    uint16_t* ffc_bf16_buffer(size_t count)
    int ffc_compute_local
    ffc_cblas_bf16 ffc_bf16_gemm
    ffc_threads_local ffc_bf16_local
    void* ffc_sb_native()
    void* ffc_sb_portable()

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

# ---- GEMM backends (csrc/gemm_dispatch.h; chosen by fastfc._gemm)
# _mode: the backend of every product (0 SciPy's OpenBLAS, 1 MKL, 2 a private OpenBLAS),
# or -1 ("auto"): float32 products go where their shape's route says (timed at the first
# product of that shape when none is cached), float64 products to SciPy's OpenBLAS.
cdef int _mode = 0
# float32 products in bfloat16 (operands rounded, float32 accumulation by the bf16 GEMM
# in ffc_bf16_gemm), set by fastfc._gemm.set_compute_dtype
cdef bint _bf16 = False
# which bf16 GEMM ffc_bf16_gemm is (set_bf16_gemm): BF16_NONE, BF16_MKL, ...
cdef int _bf16_which = 0
# a backend other than SciPy's OpenBLAS is timed by another only if it is faster by
# this share (the default keeps shapes where the difference is noise)
cdef double _TIME_MARGIN = 0.03
# timing a shape: one untimed run per backend, then rounds of one timed run of each (the
# fastest run of a backend counts): at least 2 rounds, at most _TIME_REPS, no more once
# the rounds took _TIME_BUDGET s together
cdef int _TIME_REPS = 5
cdef double _TIME_BUDGET = 0.002
# smaller float32 products (multiply-adds) stay on SciPy's OpenBLAS without timing
cdef double _TIME_MIN = 32768.0


# The private OpenBLAS's thread-count getter and setter (NULL until it is loaded).  It
# must run one thread per call -- fastfc's pool does the splitting -- and nothing but
# fastfc uses it, yet a threadpoolctl limit (scikit-learn sets them, so does bench/'s
# harness) reaches every OpenBLAS in the process: measured in bench/, two threads per
# call under the pool made the W2 step 3.7x slower.  So a step sets it back to one.
ctypedef int (*nt_get_fn)() noexcept nogil
ctypedef void (*nt_set_fn)(int) noexcept nogil
cdef nt_get_fn _private_get = NULL
cdef nt_set_fn _private_set = NULL


cdef inline void _private_single() noexcept nogil:
    """Put the private OpenBLAS back on one thread if something raised its count."""
    if _private_get != NULL and _private_get() != 1:
        _private_set(1)


# Set once a Net with its own compute dtype has stepped: until then no thread has a code
# of its own, and _use_bf16 need not read the thread-local one (a call per product).
cdef bint _local_used = False


cdef inline bint _use_bf16() noexcept nogil:
    """Whether float32 products of this thread run in bfloat16 now."""
    if not _local_used:
        return _bf16
    return ffc_compute_local > 0 or (ffc_compute_local < 0 and _bf16)


cdef int set_thread_compute(int code) noexcept nogil:
    """This thread's compute dtype for float32 products (-1: the process-wide one, 0:
    float32, 1: bfloat16 -- the caller has checked a bf16 GEMM is loaded); returns the
    previous code, for the caller to restore."""
    global ffc_compute_local, _local_used
    cdef int old = ffc_compute_local
    if code != -1:
        _local_used = True
    ffc_compute_local = code
    return old


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


cdef void _gemm1(int bk, bint trans_a, bint trans_b, int m, int n, int k,
                 floating alpha, const floating* a, int lda,
                 const floating* b, int ldb,
                 floating beta, floating* c, int ldc) noexcept nogil:
    """One BLAS call of backend bk: C = alpha * op(A) @ op(B) + beta * C, row-major."""
    cdef char ta = b"T" if trans_a else b"N"
    cdef char tb = b"T" if trans_b else b"N"
    cdef int old = 0
    cdef ffc_threads_local set_local
    if bk == 0:
        # column-major view: C.T (n, m) = op(B).T (n, k) @ op(A).T (k, m)
        if floating is float:
            _table.sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*>b, &ldb,
                         <float*>a, &lda, &beta, c, &ldc)
        else:
            _table.dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*>b, &ldb,
                         <double*>a, &lda, &beta, c, &ldc)
        return
    # a CBLAS backend, row-major, on this thread only (fastfc's pool does the splitting)
    set_local = ffc_backends[bk].set_local
    if set_local != NULL:
        old = set_local(1)
    if floating is float:
        ffc_backends[bk].sgemm(FFC_CBLAS_ROW, FFC_CBLAS_T if trans_a else FFC_CBLAS_N,
                               FFC_CBLAS_T if trans_b else FFC_CBLAS_N, m, n, k, alpha,
                               a, lda, b, ldb, beta, c, ldc)
    else:
        ffc_backends[bk].dgemm(FFC_CBLAS_ROW, FFC_CBLAS_T if trans_a else FFC_CBLAS_N,
                               FFC_CBLAS_T if trans_b else FFC_CBLAS_N, m, n, k, alpha,
                               a, lda, b, ldb, beta, c, ldc)
    if set_local != NULL:
        set_local(old)


cdef void _bf16_1(bint trans_a, bint trans_b, int m, int n, int k, float alpha,
                  const uint16_t* a, int lda, const uint16_t* b, int ldb,
                  float beta, float* c, int ldc) noexcept nogil:
    """One call of the bf16 GEMM in use (float32 accumulation), on this thread only."""
    cdef int old = 0
    cdef ffc_threads_local set_local = ffc_bf16_local
    if set_local != NULL:
        old = set_local(1)
    ffc_bf16_gemm(FFC_CBLAS_ROW, FFC_CBLAS_T if trans_a else FFC_CBLAS_N,
                         FFC_CBLAS_T if trans_b else FFC_CBLAS_N, m, n, k, alpha,
                         a, lda, b, ldb, beta, c, ldc)
    if set_local != NULL:
        set_local(old)


cdef enum:
    KIND_DOUBLE = 0
    KIND_FLOAT = 1
    KIND_BF16 = 2       # a and b are bfloat16, c float32


ctypedef struct GemmTask:
    int kind
    int backend
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
    cdef size_t item_c = sizeof(double) if t.kind == KIND_DOUBLE else sizeof(float)
    cdef size_t item = item_c if t.kind != KIND_BF16 else sizeof(uint16_t)
    cdef const char* a = t.a
    cdef const char* b = t.b
    cdef char* c = t.c
    cdef int m = t.m, n = t.n
    if t.split_rows:
        ffc_part_range(t.m, part, nparts, 16, &lo, &hi)
        m = <int>(hi - lo)
        a += (lo if t.trans_a else lo * t.lda) * item
        c += lo * t.ldc * item_c
    else:
        ffc_part_range(t.n, part, nparts, 16, &lo, &hi)
        n = <int>(hi - lo)
        b += (lo * t.ldb if t.trans_b else lo) * item
        c += lo * item_c
    if hi <= lo:
        return
    if t.kind == KIND_FLOAT:
        _gemm1(t.backend, t.trans_a, t.trans_b, m, n, t.k, <float>t.alpha, <const float*>a,
               t.lda, <const float*>b, t.ldb, <float>t.beta, <float*>c, t.ldc)
    elif t.kind == KIND_DOUBLE:
        _gemm1(t.backend, t.trans_a, t.trans_b, m, n, t.k, t.alpha, <const double*>a, t.lda,
               <const double*>b, t.ldb, t.beta, <double*>c, t.ldc)
    else:
        _bf16_1(t.trans_a, t.trans_b, m, n, t.k, <float>t.alpha, <const uint16_t*>a, t.lda,
                <const uint16_t*>b, t.ldb, <float>t.beta, <float*>c, t.ldc)


cdef inline bint _splits(int bk, int m, int n, int k) noexcept nogil:
    """Whether a product goes to fastfc's pool in parts: inside a step with 2+ parts,
    large enough, and its backend runs one thread (a CBLAS backend always does; SciPy's
    OpenBLAS when the user made it single-threaded)."""
    return (ffc_pool_parts() >= 2 and (bk != 0 or _split_gemm)
            and <double>m * n * k >= _SPLIT_MIN and not (m < 32 and n < 32))


cdef void _run_split(int kind, int bk, bint trans_a, bint trans_b, int m, int n, int k,
                     double alpha, const char* a, int lda, const char* b, int ldb,
                     double beta, char* c, int ldc) noexcept nogil:
    """One product split over the pool: rows of C when m >= n, else its columns."""
    cdef GemmTask t
    t.kind = kind
    t.backend = bk
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
    t.a = a
    t.b = b
    t.c = c
    ffc_pool_run(_gemm_part, &t)


cdef void _run(int bk, bint trans_a, bint trans_b, int m, int n, int k,
               floating alpha, const floating* a, int lda,
               const floating* b, int ldb,
               floating beta, floating* c, int ldc) noexcept nogil:
    """The product on backend bk, whole or split over the pool (see _splits)."""
    if not _splits(bk, m, n, k):
        _gemm1(bk, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return
    _run_split(KIND_FLOAT if floating is float else KIND_DOUBLE, bk, trans_a, trans_b,
               m, n, k, alpha, <const char*>a, lda, <const char*>b, ldb, beta,
               <char*>c, ldc)


cdef inline bint _no_scipy(int parts, bint split) noexcept nogil:
    """Whether "auto" leaves SciPy's OpenBLAS out of a float32 product's candidates.

    Inside a step that splits products over fastfc's pool, SciPy's OpenBLAS (unless the
    user made it single-threaded) runs each product on its own threads, whose workers
    then spin through the next product split over the pool -- each side slows the other,
    which timing one product at a time cannot see (measured: the W6 step in "auto" took
    35 ms against 27 ms on the private OpenBLAS alone).  So while another backend is
    loaded, a pooled step's float32 products choose among the backends that run one
    thread per call under the pool.  `parts`: the step's parts; `split`: whether it
    splits SciPy's products too (SciPy's OpenBLAS on one thread).
    """
    return (parts >= 2 and not split
            and (ffc_backends[1].sgemm != NULL or ffc_backends[2].sgemm != NULL))


cdef inline bint _candidate(int bk, bint no_scipy) noexcept nogil:
    """Whether backend bk is timed for a route (loaded, and not left out)."""
    if bk == 0:
        return not no_scipy
    return ffc_backends[bk].sgemm != NULL


cdef int _time_shape(int flags, bint trans_a, bint trans_b, int m, int n, int k,
                     float alpha, const float* a, int lda, const float* b, int ldb,
                     float beta) noexcept nogil:
    """Time every loaded backend at this float32 product (into scratch, as the step
    would run it), add the fastest as the shape's route and return it.

    One untimed run per backend, then rounds that run each backend once in turn (so a
    burst of load elsewhere hits them alike); the fastest run of each counts.  At least
    2 rounds, at most _TIME_REPS, no more once the rounds took _TIME_BUDGET s.
    """
    cdef float* scratch = <float*>calloc(<size_t>m * n if m > 0 and n > 0 else 1,
                                         sizeof(float))
    cdef int bk, best = 0, rounds = 0
    cdef double best_t = 1e300, total = 0, t0, dt, score
    cdef double t_min[FFC_BK_N]
    if scratch == NULL:
        return 0
    cdef bint no_scipy = (flags & 4) != 0
    for bk in range(FFC_BK_N):
        t_min[bk] = 1e300
        if _candidate(bk, no_scipy):
            _run(bk, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, scratch, n)
    while rounds < _TIME_REPS and (rounds < 2 or total < _TIME_BUDGET):
        for bk in range(FFC_BK_N):
            if not _candidate(bk, no_scipy):
                continue
            t0 = ffc_seconds()
            _run(bk, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, scratch, n)
            dt = ffc_seconds() - t0
            total += dt
            if dt < t_min[bk]:
                t_min[bk] = dt
        rounds += 1
    for bk in range(FFC_BK_N):
        if t_min[bk] >= 1e300:
            continue
        score = t_min[bk] * (1.0 + _TIME_MARGIN if bk != 0 else 1.0)
        if score < best_t:
            best_t = score
            best = bk
    free(scratch)
    return ffc_route_add(m, n, k, flags, best, 1)


ctypedef struct ConvTask:
    const float* a
    int a_rows, a_cols, lda
    uint16_t* a_out
    const float* b
    int b_rows, b_cols, ldb
    uint16_t* b_out


cdef void _conv_part(void* arg, int part, int nparts) noexcept nogil:
    """Rows of both operands rounded to bfloat16, part `part` of each."""
    cdef ConvTask* t = <ConvTask*>arg
    cdef long lo, hi
    ffc_part_range(t.a_rows, part, nparts, 1, &lo, &hi)
    if hi > lo:
        ffc_bf16_rows(t.a, t.lda, lo, hi, t.a_cols, t.a_out)
    ffc_part_range(t.b_rows, part, nparts, 1, &lo, &hi)
    if hi > lo:
        ffc_bf16_rows(t.b, t.ldb, lo, hi, t.b_cols, t.b_out)


cdef bint _gemm_bf16(bint trans_a, bint trans_b, int m, int n, int k,
                     float alpha, const float* a, int lda, const float* b, int ldb,
                     float beta, float* c, int ldc) noexcept nogil:
    """C = alpha * bf16(op(A)) @ bf16(op(B)) + beta * C, accumulated in float32.

    The operands are rounded into this thread's scratch (split over the pool in a step),
    then the product is split like any other.  False if the scratch could not grow.
    """
    cdef ConvTask ct
    cdef size_t na, nb
    cdef uint16_t* buf
    ct.a_rows = k if trans_a else m
    ct.a_cols = m if trans_a else k
    ct.b_rows = n if trans_b else k
    ct.b_cols = k if trans_b else n
    na = <size_t>ct.a_rows * ct.a_cols
    nb = <size_t>ct.b_rows * ct.b_cols
    buf = ffc_bf16_buffer(na + nb + 1)
    if buf == NULL:
        return False
    ct.a = a
    ct.lda = lda
    ct.a_out = buf
    ct.b = b
    ct.ldb = ldb
    ct.b_out = buf + na
    if ffc_pool_parts() >= 2 and na + nb >= 65536:
        ffc_pool_run(_conv_part, &ct)
    else:
        _conv_part(&ct, 0, 1)
    gemm_bf16(trans_a, trans_b, m, n, k, alpha, ct.a_out, ct.a_cols, ct.b_out, ct.b_cols,
              beta, c, ldc)
    return True


cdef bint thread_bf16() noexcept nogil:
    return _use_bf16() and ffc_bf16_gemm != NULL


cdef void round_bf16(const float* x, Py_ssize_t ld, Py_ssize_t rows, Py_ssize_t cols,
                     uint16_t* out) noexcept nogil:
    """out (rows x cols, packed) = bf16(x) row by row; split over the pool when large."""
    cdef ConvTask ct
    ct.a = x
    ct.lda = <int>ld
    ct.a_rows = <int>rows
    ct.a_cols = <int>cols
    ct.a_out = out
    ct.b = NULL
    ct.b_rows = 0
    ct.b_cols = 0
    ct.ldb = 0
    ct.b_out = NULL
    if ffc_pool_parts() >= 2 and rows * cols >= 65536:
        ffc_pool_run(_conv_part, &ct)
    else:
        _conv_part(&ct, 0, 1)


ctypedef struct GatherTask16:
    const float* x
    const intptr_t* idx
    Py_ssize_t n, d
    uint16_t* out


cdef void _gather16_part(void* arg, int part, int nparts) noexcept nogil:
    cdef GatherTask16* g = <GatherTask16*>arg
    cdef long lo, hi
    cdef Py_ssize_t r
    ffc_part_range(g.n, part, nparts, 1, &lo, &hi)
    for r in range(lo, hi):
        ffc_bf16_rows(g.x + g.idx[r] * g.d, g.d, 0, 1, g.d, g.out + r * g.d)


cdef void gather_bf16(const float* x, const intptr_t* idx, Py_ssize_t n, Py_ssize_t d,
                      uint16_t* out) noexcept nogil:
    """Row r of out = bf16(x[idx[r]]) (rows of d values); split over the pool when large."""
    cdef GatherTask16 g
    g.x = x
    g.idx = idx
    g.n = n
    g.d = d
    g.out = out
    if ffc_pool_parts() >= 2 and n * d >= 65536:
        ffc_pool_run(_gather16_part, &g)
    else:
        _gather16_part(&g, 0, 1)


cdef void gemm_bf16(bint trans_a, bint trans_b, int m, int n, int k, float alpha,
                    const uint16_t* a, int lda, const uint16_t* b, int ldb,
                    float beta, float* c, int ldc) noexcept nogil:
    """gemm() of operands already rounded to bfloat16 (float32 accumulation), whole
    or split over the pool as _splits says; the caller has checked thread_bf16().  The
    one bf16 product: gemm() rounds float32 operands and calls it too, so both paths
    give the same bits."""
    if not _splits(1, m, n, k):
        _bf16_1(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return
    _run_split(KIND_BF16, 1, trans_a, trans_b, m, n, k, alpha, <const char*>a, lda,
               <const char*>b, ldb, beta, <char*>c, ldc)


cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k,
               floating alpha, const floating* a, int lda,
               const floating* b, int ldb,
               floating beta, floating* c, int ldc) noexcept nogil:
    """C = alpha * op(A) @ op(B) + beta * C, row-major; op(A) is (m, k), op(B) is (k, n).

    The one GEMM of every kernel.  It picks the backend (the forced one, or in "auto"
    the route of this float32 shape, timed at its first product), rounds float32
    operands to bfloat16 when that compute dtype is on, and inside
    parallel_begin/parallel_end splits a large product into row (or column) blocks of
    C, one per thread of the pool, when the backend runs one thread.
    """
    cdef int bk, flags
    if floating is float:
        if m > 0 and n > 0 and k > 0 and thread_bf16():
            if _gemm_bf16(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
                return
        if _mode >= 0:
            bk = _mode
        else:
            if ffc_busy_parts >= 2:     # the pool is another step's: route as if pooled
                flags = ffc_route_flags(trans_a, trans_b, ffc_busy_parts,
                                        _no_scipy(ffc_busy_parts, ffc_busy_split))
            else:
                flags = ffc_route_flags(trans_a, trans_b, ffc_pool_parts(),
                                        _no_scipy(ffc_pool_parts(), _split_gemm))
            if <double>m * n * k < _TIME_MIN:
                bk = 0      # too small to tell the backends apart: no lookup either
            else:
                bk = ffc_route_find(m, n, k, flags)
            if bk < 0 and ffc_n_routes >= FFC_MAX_ROUTES:
                bk = 0      # no room to remember another shape
            elif bk < 0:
                bk = _time_shape(flags, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb,
                                 beta)
    else:
        bk = _mode if _mode > 0 else 0
    if bk == 2 and ffc_pool_parts() < 2:
        _private_single()       # (a pooled step did this in parallel_begin)
    _run(bk, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)


# ----------------------------------------------------------------- the pool

cdef int parallel_begin() noexcept nogil:
    """Own the pool for a step if fastfc's threading is on; returns a token.

    The pool runs ``set_num_threads`` parts (by default as many as the BLAS has
    threads).  The BLAS's own thread count is only read, never changed: when it is 1
    (the user limited it, e.g. with threadpoolctl) gemm() splits large products over
    the pool, otherwise every product goes whole to the BLAS and its own threads, and
    the pool takes the gather and the update.  Returns 1 when this step owns the pool,
    -1 when another thread's step does (this one runs serially), 0 otherwise.
    """
    global _split_gemm, ffc_busy_parts, ffc_busy_split
    cdef int blas_threads, parts
    if not _pool_enabled or not _scipy_gemm:
        return 0
    blas_threads = _get_threads() if _get_threads != NULL else 0
    parts = _pool_parts if _pool_parts > 0 else blas_threads
    if _pool_max > 0 and parts > _pool_max:
        parts = _pool_max
    if parts > FFC_POOL_MAX:
        parts = FFC_POOL_MAX
    _private_single()
    if parts < 2:
        return 0
    if not ffc_pool_try_own():
        # another thread's step owns the pool: this one runs serially, but "auto" routes
        # its products as a pooled step would (see ffc_busy_parts)
        ffc_busy_parts = parts
        ffc_busy_split = blas_threads == 1
        return -1
    if ffc_pool_setup(parts) < 2:
        ffc_pool_release()
        return 0
    _split_gemm = blas_threads == 1
    # idle workers spin between the tasks of a step only when the GEMMs are theirs too
    # (OpenBLAS single-threaded, or another backend or bf16 may serve them); otherwise
    # they sleep at once and leave the cores to OpenBLAS's threads
    ffc_pool_set_spin(FFC_SPIN_NS if (_split_gemm or _mode != 0 or _use_bf16()) else 0)
    return 1


cdef void parallel_end(int token) noexcept nogil:
    """Undo parallel_begin (token 0: nothing to undo; -1: the pool was busy)."""
    global _split_gemm, ffc_busy_parts
    if token > 0:
        _split_gemm = False
        ffc_pool_release()
    elif token < 0:
        ffc_busy_parts = 0


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


# ----------------------------------------------------------------- backends (fastfc._gemm)

def set_backend(int index, size_t sgemm, size_t dgemm, size_t bf16=0, size_t set_local=0):
    """Fill slot `index` (1 MKL, 2 private OpenBLAS) with CBLAS functions (0: empty).

    ``sgemm``/``dgemm`` are ``cblas_sgemm``/``cblas_dgemm``, ``bf16`` is
    ``cblas_gemm_bf16bf16f32`` (or 0), ``set_local`` a thread-local thread-count setter
    called with 1 around each call (``mkl_set_num_threads_local``; 0 when the library
    already runs one thread).  Only while no GEMM runs (fastfc._gemm's contract).
    """
    if not 1 <= index < FFC_BK_N:
        raise ValueError(f"index must be in [1, {FFC_BK_N}), got {index}")
    if (sgemm == 0) != (dgemm == 0):
        raise ValueError("sgemm and dgemm must both be given or both be 0")
    ffc_backends[index].sgemm = <ffc_cblas_sgemm><void*>sgemm
    ffc_backends[index].dgemm = <ffc_cblas_dgemm><void*>dgemm
    ffc_backends[index].bf16 = <ffc_cblas_bf16><void*>bf16
    ffc_backends[index].set_local = <ffc_threads_local><void*>set_local
    if index == 1 and _bf16_which == BF16_MKL:     # the bf16 GEMM in use follows the slot
        set_bf16_gemm(BF16_MKL if bf16 else BF16_NONE)


def set_private_threads(size_t get_address, size_t set_address):
    """The private OpenBLAS's ``openblas_get_num_threads``/``openblas_set_num_threads``
    (0, 0: none), which keep it on one thread (see _private_single)."""
    global _private_get, _private_set
    if (get_address == 0) != (set_address == 0):
        raise ValueError("give both addresses or neither")
    _private_get = <nt_get_fn><void*>get_address
    _private_set = <nt_set_fn><void*>set_address


def backend_loaded(int index):
    """Whether backend `index` can run a product (0, SciPy's OpenBLAS, always can)."""
    if not 0 <= index < FFC_BK_N:
        raise ValueError(f"index must be in [0, {FFC_BK_N}), got {index}")
    return index == 0 or ffc_backends[index].sgemm != NULL


def set_mode(int mode):
    """Backend of every product (0, 1, 2) or -1 (per float32 shape); returns the old mode."""
    global _mode
    if not -1 <= mode < FFC_BK_N:
        raise ValueError(f"mode must be in [-1, {FFC_BK_N}), got {mode}")
    if mode > 0 and ffc_backends[mode].sgemm == NULL:
        raise ValueError(f"backend {mode} is not loaded")
    old = _mode
    _mode = mode
    return old


def get_mode():
    """The mode set_mode set (0 by default: SciPy's OpenBLAS for every product)."""
    return _mode


BF16_NONE = 0       # no bf16 GEMM
BF16_MKL = 1        # MKL's cblas_gemm_bf16bf16f32 (its slot must hold it)
BF16_NATIVE = 2     # fastfc's own, AVX512-BF16 (this build and CPU must have it)
BF16_PORTABLE = 3   # fastfc's own with its portable micro-kernel (any CPU; for tests)


def native_bf16():
    """Whether fastfc's AVX512-BF16 GEMM can run here (built in, and the CPU has it)."""
    return ffc_sb_native() != NULL


cdef size_t _bf16_address(int which) except? 0:
    """The entry point of bf16 GEMM `which` (BF16_*; 0 for BF16_NONE), or ValueError
    when it cannot run here."""
    cdef void* fn = NULL
    if which == BF16_MKL:
        fn = <void*>ffc_backends[1].bf16
        if fn == NULL:
            raise ValueError("MKL's bf16 GEMM is not loaded")
    elif which == BF16_NATIVE:
        fn = ffc_sb_native()
        if fn == NULL:
            raise ValueError("fastfc's AVX512-BF16 GEMM cannot run on this CPU or build")
    elif which == BF16_PORTABLE:
        fn = ffc_sb_portable()
    elif which != BF16_NONE:
        raise ValueError(f"which must be one of 0, 1, 2, 3, got {which}")
    return <size_t>fn


def set_bf16_gemm(int which):
    """Which bf16 GEMM serves bf16 products (BF16_*); returns the previous one.  Only
    while no GEMM runs (fastfc._gemm's contract)."""
    global _bf16_which, ffc_bf16_gemm, ffc_bf16_local, _bf16
    cdef void* fn = <void*>_bf16_address(which)
    cdef void* local = <void*>ffc_backends[1].set_local if which == BF16_MKL else NULL
    old = _bf16_which
    ffc_bf16_gemm = <ffc_cblas_bf16>fn
    ffc_bf16_local = <ffc_threads_local>local
    _bf16_which = which
    if fn == NULL:
        _bf16 = False
    return old


def _sbgemm(const uint16_t[:, ::1] a, const uint16_t[:, ::1] b, float[:, ::1] c,
            bint trans_a=False, bint trans_b=False, float alpha=1.0, float beta=0.0,
            int which=BF16_PORTABLE):
    """c = alpha * op(a) @ op(b) + beta * c with bf16 GEMM `which` (BF16_*), on this
    thread, whole: a test twin of one bf16 product (a, b: bfloat16 bits)."""
    cdef int m = c.shape[0], n = c.shape[1]
    cdef int k = a.shape[0] if trans_a else a.shape[1]
    cdef ffc_cblas_bf16 fn
    if (a.shape[1] if trans_a else a.shape[0]) != m:
        raise ValueError("op(a) must have c's rows")
    if (b.shape[0] if trans_b else b.shape[1]) != n:
        raise ValueError("op(b) must have c's columns")
    if (b.shape[1] if trans_b else b.shape[0]) != k:
        raise ValueError("op(a) and op(b) must agree on k")
    if which == BF16_NONE:
        raise ValueError("which must be 1, 2 or 3, got 0")
    fn = <ffc_cblas_bf16><void*>_bf16_address(which)
    if m == 0 or n == 0:
        return
    with nogil:
        fn(FFC_CBLAS_ROW, FFC_CBLAS_T if trans_a else FFC_CBLAS_N,
           FFC_CBLAS_T if trans_b else FFC_CBLAS_N, m, n, k, alpha,
           &a[0, 0] if a.shape[0] * a.shape[1] else NULL, max(1, <int>a.shape[1]),
           &b[0, 0] if b.shape[0] * b.shape[1] else NULL, max(1, <int>b.shape[1]),
           beta, &c[0, 0], n)


def set_bf16(bint on):
    """float32 products in bfloat16 (needs a bf16 GEMM, set_bf16_gemm); returns the old
    value."""
    global _bf16
    if on and ffc_bf16_gemm == NULL:
        raise ValueError("no bfloat16 GEMM is loaded")
    old = _bf16
    _bf16 = on
    return bool(old)


def _thread_compute(int code):
    """set_thread_compute from Python, for tests; returns the previous code."""
    if code < -1 or code > 1 or (code == 1 and ffc_bf16_gemm == NULL):
        raise ValueError(f"code must be -1, 0 or 1 (1 needs a bf16 GEMM), got {code}")
    return set_thread_compute(code)


def routes():
    """The routes as (m, n, k, flags, backend) tuples, in the order they were added."""
    cdef int i
    cdef int count = ffc_n_routes
    cdef const ffc_route* r
    out = []
    for i in range(count):
        r = ffc_route_at(i)
        out.append((r.m, r.n, r.k, r.flags, r.backend))
    return out


def add_route(int m, int n, int k, int flags, int backend):
    """Route float32 products of this shape (flags: see gemm_dispatch.h) to `backend`;
    a shape that has a route keeps it.  Returns the backend the shape now uses."""
    if not 0 <= backend < FFC_BK_N:
        raise ValueError(f"backend must be in [0, {FFC_BK_N}), got {backend}")
    if m < 0 or n < 0 or k < 0 or flags < 0:
        raise ValueError("m, n, k and flags must be >= 0")
    return ffc_route_add(m, n, k, flags, backend, 0)


def clear_routes():
    """Forget every route (the next product of each shape is timed again)."""
    ffc_routes_clear()


def routes_timed():
    """Routes chosen by timing since the last clear_routes (not from the cache)."""
    return ffc_routes_timed


def route_flags(bint trans_a, bint trans_b, int parts, bint no_scipy=False):
    """The flags of a route (its transposes, the pool's parts, and whether SciPy's
    OpenBLAS was left out of the candidates)."""
    return ffc_route_flags(trans_a, trans_b, parts, no_scipy)


def _set_timing(double margin, int reps, double budget):
    """Set the timing's margin, most runs and budget (s); returns the old three."""
    global _TIME_MARGIN, _TIME_REPS, _TIME_BUDGET
    if not margin >= 0 or reps < 1 or not budget >= 0:
        raise ValueError("margin >= 0, reps >= 1 and budget >= 0 expected")
    old = (_TIME_MARGIN, _TIME_REPS, _TIME_BUDGET)
    _TIME_MARGIN, _TIME_REPS, _TIME_BUDGET = margin, reps, budget
    return old


def _bf16_round(const float[::1] x, uint16_t[::1] out):
    """out = the bfloat16 bits of x (round to nearest, ties to even)."""
    if out.shape[0] != x.shape[0]:
        raise ValueError("x and out must have the same length")
    if x.shape[0] == 0:
        return
    with nogil:
        ffc_bf16_rows(&x[0], x.shape[0], 0, 1, x.shape[0], &out[0])


# ----------------------------------------------------------------- def twins for tests

def _gemm(const floating[:, ::1] a, const floating[:, ::1] b, floating[:, ::1] c,
          bint trans_a=False, bint trans_b=False, floating alpha=1, floating beta=0):
    """c = alpha * op(a) @ op(b) + beta * c (shapes checked by the caller)."""
    cdef int m = c.shape[0], n = c.shape[1]
    cdef int k = a.shape[0] if trans_a else a.shape[1]
    with nogil:
        gemm(trans_a, trans_b, m, n, k, alpha, &a[0, 0], a.shape[1],
             &b[0, 0], b.shape[1], beta, &c[0, 0], n)


def _hold_pool(bint hold):
    """Own fastfc's pool from Python (True; returns whether it was free) or release it
    (False), so that a test can step a Net while "another step" owns the pool."""
    if hold:
        return bool(ffc_pool_try_own())
    ffc_pool_release()
    return True


def _gemm_step(const floating[:, ::1] a, const floating[:, ::1] b, floating[:, ::1] c,
               bint trans_a=False, bint trans_b=False):
    """c = op(a) @ op(b) as inside a Net step: with fastfc's pool owned for the call, so
    a product is split over it as a step would split it (for benchmarks)."""
    cdef int m = c.shape[0], n = c.shape[1]
    cdef int k = a.shape[0] if trans_a else a.shape[1]
    cdef int token
    with nogil:
        token = parallel_begin()
        gemm(trans_a, trans_b, m, n, k, <floating>1, &a[0, 0], a.shape[1],
             &b[0, 0], b.shape[1], <floating>0, &c[0, 0], n)
        parallel_end(token)


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
