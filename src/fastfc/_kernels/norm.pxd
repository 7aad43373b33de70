# Batch norm and layer norm, forward and backward (row-major (n, d) inputs).
from fastfc._kernels._types cimport floating

cdef void bn_forward_train(const floating* x, Py_ssize_t n, Py_ssize_t d,
                           const floating* gamma, const floating* beta,
                           floating eps, floating momentum,
                           floating* running_mean, floating* running_var,
                           floating* out, floating* xhat, floating* mean,
                           floating* var, floating* inv_std) noexcept nogil
cdef void bn_forward_test(const floating* x, Py_ssize_t n, Py_ssize_t d,
                          const floating* gamma, const floating* beta, floating eps,
                          const floating* running_mean, const floating* running_var,
                          floating* out, floating* xhat, floating* inv_std) noexcept nogil
cdef void bn_backward(const floating* dout, const floating* xhat, Py_ssize_t n,
                      Py_ssize_t d, const floating* gamma, const floating* inv_std,
                      floating* dx, floating* dgamma, floating* dbeta) noexcept nogil
cdef void bn_backward_fixed(const floating* dout, const floating* xhat, Py_ssize_t n,
                            Py_ssize_t d, const floating* gamma, const floating* inv_std,
                            floating* dx, floating* dgamma, floating* dbeta) noexcept nogil
cdef void ln_forward(const floating* x, Py_ssize_t n, Py_ssize_t d,
                     const floating* gamma, const floating* beta, floating eps,
                     floating* out, floating* xhat, floating* mean,
                     floating* inv_std) noexcept nogil
cdef void ln_backward(const floating* dout, const floating* xhat, Py_ssize_t n,
                      Py_ssize_t d, const floating* gamma, const floating* inv_std,
                      floating* dx, floating* dgamma, floating* dbeta) noexcept nogil
