# Row-wise classification losses: loss and dscores in one pass.
from libc.stdint cimport intptr_t
from fastfc._kernels._types cimport floating

cdef double softmax_xent(const floating* scores, const intptr_t* y, Py_ssize_t n,
                         Py_ssize_t c, floating* dscores) noexcept nogil
cdef double svm_hinge(const floating* scores, const intptr_t* y, Py_ssize_t n,
                      Py_ssize_t c, floating* dscores) noexcept nogil
cdef void softmax_rows(const floating* scores, Py_ssize_t n, Py_ssize_t c,
                       floating* probs) noexcept nogil
