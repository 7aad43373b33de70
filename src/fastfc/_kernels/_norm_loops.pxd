# The C loops of batch and layer norm, csrc/norm_loops.h (float: _s, double: _d).

cdef extern from "norm_loops.h" nogil:
    void ffc_bn_forward_train_s(const float* x, Py_ssize_t n, Py_ssize_t d, const float* gamma, const float* beta,
                                float eps, float momentum, float* running_mean, float* running_var,
                                float* out, float* xhat, float* mean, float* var, float* inv_std)
    void ffc_bn_forward_train_d(const double* x, Py_ssize_t n, Py_ssize_t d, const double* gamma, const double* beta,
                                double eps, double momentum, double* running_mean, double* running_var,
                                double* out, double* xhat, double* mean, double* var, double* inv_std)
    void ffc_bn_forward_test_s(const float* x, Py_ssize_t n, Py_ssize_t d, const float* gamma, const float* beta,
                               float eps, const float* running_mean, const float* running_var,
                               float* out, float* xhat, float* inv_std)
    void ffc_bn_forward_test_d(const double* x, Py_ssize_t n, Py_ssize_t d, const double* gamma, const double* beta,
                               double eps, const double* running_mean, const double* running_var,
                               double* out, double* xhat, double* inv_std)
    void ffc_bn_backward_s(const float* dout, const float* xhat, Py_ssize_t n, Py_ssize_t d, const float* gamma,
                           const float* inv_std, float* dx, float* dgamma, float* dbeta)
    void ffc_bn_backward_d(const double* dout, const double* xhat, Py_ssize_t n, Py_ssize_t d, const double* gamma,
                           const double* inv_std, double* dx, double* dgamma, double* dbeta)
    void ffc_bn_backward_fixed_s(const float* dout, const float* xhat, Py_ssize_t n, Py_ssize_t d, const float* gamma,
                                 const float* inv_std, float* dx, float* dgamma, float* dbeta)
    void ffc_bn_backward_fixed_d(const double* dout, const double* xhat, Py_ssize_t n, Py_ssize_t d, const double* gamma,
                                 const double* inv_std, double* dx, double* dgamma, double* dbeta)
    void ffc_ln_forward_s(const float* x, Py_ssize_t n, Py_ssize_t d, const float* gamma, const float* beta, float eps,
                          float* out, float* xhat, float* mean, float* inv_std)
    void ffc_ln_forward_d(const double* x, Py_ssize_t n, Py_ssize_t d, const double* gamma, const double* beta, double eps,
                          double* out, double* xhat, double* mean, double* inv_std)
    void ffc_ln_backward_s(const float* dout, const float* xhat, Py_ssize_t n, Py_ssize_t d, const float* gamma,
                           const float* inv_std, float* dx, float* dgamma, float* dbeta)
    void ffc_ln_backward_d(const double* dout, const double* xhat, Py_ssize_t n, Py_ssize_t d, const double* gamma,
                           const double* inv_std, double* dx, double* dgamma, double* dbeta)
