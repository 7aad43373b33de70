# In-place update rules: w is updated, dw is read, state arrays are updated.
# Every rule uses g = dw + reg * w (reg = 0: plain dw).  `stats` (may be NULL) collects
# the sum of squares of the old weights and the count of non-finite new weights.
from fastfc._kernels._types cimport floating
from fastfc._kernels._loops cimport ffc_update_stats

cdef void sgd_step(floating* w, const floating* dw, Py_ssize_t size,
                   floating lr, floating reg, ffc_update_stats* stats) noexcept nogil
cdef void momentum_step(floating* w, const floating* dw, floating* v, Py_ssize_t size,
                        floating lr, floating mom, floating reg,
                        ffc_update_stats* stats) noexcept nogil
cdef void nesterov_step(floating* w, const floating* dw, floating* v, Py_ssize_t size,
                        floating lr, floating mom, floating reg,
                        ffc_update_stats* stats) noexcept nogil
cdef void rmsprop_step(floating* w, const floating* dw, floating* cache, Py_ssize_t size,
                       floating lr, double decay_rate, floating eps,
                       floating reg, ffc_update_stats* stats) noexcept nogil
cdef void adam_step(floating* w, const floating* dw, floating* m, floating* v,
                    Py_ssize_t size, floating lr, floating beta1, floating beta2,
                    floating eps, floating reg, long long t,
                    ffc_update_stats* stats) noexcept nogil
