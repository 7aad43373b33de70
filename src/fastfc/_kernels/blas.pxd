# Row-major BLAS for fastfc's kernels.
#
# Kernels never call a BLAS library directly: every product goes through gemm() below,
# the one GEMM dispatch point.  It calls the table `CBlas` (scipy.linalg.cython_blas,
# the OpenBLAS that ships with SciPy, by default) or one of the CBLAS backends of
# csrc/gemm_dispatch.h (MKL, a private OpenBLAS), chosen per float32 shape in "auto"
# mode, and runs float32 products in bfloat16 when asked (fastfc._gemm drives it).
# Another BLAS with the Fortran calling convention can still replace the table at run
# time (fastfc._kernels.blas.set_gemm) without touching a kernel.
from libc.stdint cimport uint16_t, intptr_t

from fastfc._kernels._types cimport floating

ctypedef void (*sgemm_ptr)(char* transa, char* transb, int* m, int* n, int* k,
                           float* alpha, float* a, int* lda, float* b, int* ldb,
                           float* beta, float* c, int* ldc) noexcept nogil
ctypedef void (*dgemm_ptr)(char* transa, char* transb, int* m, int* n, int* k,
                           double* alpha, double* a, int* lda, double* b, int* ldb,
                           double* beta, double* c, int* ldc) noexcept nogil
ctypedef void (*saxpy_ptr)(int* n, float* alpha, float* x, int* incx, float* y, int* incy) noexcept nogil
ctypedef void (*daxpy_ptr)(int* n, double* alpha, double* x, int* incx, double* y, int* incy) noexcept nogil
ctypedef float (*sdot_ptr)(int* n, float* x, int* incx, float* y, int* incy) noexcept nogil
ctypedef double (*ddot_ptr)(int* n, double* x, int* incx, double* y, int* incy) noexcept nogil
ctypedef void (*sscal_ptr)(int* n, float* alpha, float* x, int* incx) noexcept nogil
ctypedef void (*dscal_ptr)(int* n, double* alpha, double* x, int* incx) noexcept nogil

ctypedef struct CBlas:
    sgemm_ptr sgemm
    dgemm_ptr dgemm
    saxpy_ptr saxpy
    daxpy_ptr daxpy
    sdot_ptr sdot
    ddot_ptr ddot
    sscal_ptr sscal
    dscal_ptr dscal

cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k,
               floating alpha, const floating* a, int lda,
               const floating* b, int ldb,
               floating beta, floating* c, int ldc) noexcept nogil
cdef void axpy(int n, floating alpha, const floating* x, floating* y) noexcept nogil
cdef floating dot(int n, const floating* x, const floating* y) noexcept nogil
cdef void scal(int n, floating alpha, floating* x) noexcept nogil
# this thread's compute dtype for float32 products (-1 the process-wide one, 0 float32,
# 1 bfloat16); returns the previous code
cdef int set_thread_compute(int code) noexcept nogil
# bfloat16 operands made once per step by a Net (see net.pyx): whether this thread's
# float32 products run in bf16 now; operands rounded (rows x cols, packed; split over the
# pool when large), or gathered rows rounded on the way; and the product of operands
# already in bf16 (float32 accumulation), split over the pool as gemm() splits
cdef bint thread_bf16() noexcept nogil
cdef void round_bf16(const float* x, Py_ssize_t ld, Py_ssize_t rows, Py_ssize_t cols,
                     uint16_t* out) noexcept nogil
cdef void gather_bf16(const float* x, const intptr_t* idx, Py_ssize_t n, Py_ssize_t d,
                      uint16_t* out) noexcept nogil
cdef void gemm_bf16(bint trans_a, bint trans_b, int m, int n, int k, float alpha,
                    const uint16_t* a, int lda, const uint16_t* b, int ldb,
                    float beta, float* c, int ldc) noexcept nogil

# Fork-join parallelism of a training step.  The pool (csrc/fastfc_pool.h) is compiled
# into this one module; the others reach it only through the cdef functions below
# (Cython shares them through blas's C-API capsule).  parallel_begin() returns a token
# for parallel_end(); between the two, on the calling thread, parallel_run() runs a
# task in parts, and gemm() splits large products when the BLAS is single-threaded.
# Outside, everything is serial.
cdef enum:
    POOL_MAX_PARTS = 4      # most parts of a task (sizes per-part arrays); blas.pyx
                            # checks it against the header's FFC_POOL_MAX at import

ctypedef void (*task_fn)(void* arg, int part, int nparts) noexcept nogil
cdef int parallel_begin() noexcept nogil
cdef void parallel_end(int token) noexcept nogil
cdef int parallel_parts() noexcept nogil
cdef void parallel_run(task_fn fn, void* arg) noexcept nogil
cdef void part_range(Py_ssize_t n, int part, int nparts, Py_ssize_t align,
                     Py_ssize_t* lo, Py_ssize_t* hi) noexcept nogil
