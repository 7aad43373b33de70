# Row-wise losses: loss and dscores in one pass.  w: per-sample weights or NULL.
from libc.stdint cimport intptr_t
from fastfc._kernels._types cimport floating

cdef double softmax_xent(const floating* scores, const intptr_t* y, const floating* w,
                         Py_ssize_t n, Py_ssize_t c, floating* dscores) noexcept nogil
cdef double softmax_xent_smooth(const floating* scores, const intptr_t* y,
                                const floating* w, Py_ssize_t n, Py_ssize_t c,
                                double label_smoothing, floating* dscores) noexcept nogil
cdef double svm_hinge(const floating* scores, const intptr_t* y, const floating* w,
                      Py_ssize_t n, Py_ssize_t c, floating* dscores) noexcept nogil
cdef double mse(const floating* scores, const floating* t, const floating* w,
                Py_ssize_t n, Py_ssize_t d, floating* dscores) noexcept nogil
cdef void softmax_rows(const floating* scores, Py_ssize_t n, Py_ssize_t c,
                       floating* probs) noexcept nogil
