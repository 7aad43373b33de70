# The C update rules, csrc/optim_loops.h (float: _s, double: _d).
from fastfc._kernels._loops_common cimport ffc_update_stats

cdef extern from "optim_loops.h" nogil:
    void ffc_sgd_s(float* w, const float* dw, Py_ssize_t size, float lr, float reg, ffc_update_stats* stats)
    void ffc_sgd_d(double* w, const double* dw, Py_ssize_t size, double lr, double reg, ffc_update_stats* stats)
    void ffc_sgd_momentum_s(float* w, const float* dw, float* v, Py_ssize_t size, float lr, float mom, float reg,
                            ffc_update_stats* stats)
    void ffc_sgd_momentum_d(double* w, const double* dw, double* v, Py_ssize_t size, double lr, double mom,
                            double reg, ffc_update_stats* stats)
    void ffc_sgd_nesterov_s(float* w, const float* dw, float* v, Py_ssize_t size, float lr, float mom, float reg,
                            ffc_update_stats* stats)
    void ffc_sgd_nesterov_d(double* w, const double* dw, double* v, Py_ssize_t size, double lr, double mom,
                            double reg, ffc_update_stats* stats)
    void ffc_rmsprop_s(float* w, const float* dw, float* cache, Py_ssize_t size, float lr, float decay_rate,
                       float keep, float eps, float reg, ffc_update_stats* stats)
    void ffc_rmsprop_d(double* w, const double* dw, double* cache, Py_ssize_t size, double lr, double decay_rate,
                       double keep, double eps, double reg, ffc_update_stats* stats)
    void ffc_adam_s(float* w, const float* dw, float* m, float* v, Py_ssize_t size, float lr, float beta1,
                    float keep1, float beta2, float keep2, float eps, float reg, float bc1, float bc2,
                    ffc_update_stats* stats)
    void ffc_adam_d(double* w, const double* dw, double* m, double* v, Py_ssize_t size, double lr, double beta1,
                    double keep1, double beta2, double keep2, double eps, double reg, double bc1, double bc2,
                    ffc_update_stats* stats)
    void ffc_adamw_s(float* w, const float* dw, float* m, float* v, Py_ssize_t size, float lr, float beta1,
                     float keep1, float beta2, float keep2, float eps, float reg, float bc1, float bc2,
                     float shrink, ffc_update_stats* stats)
    void ffc_adamw_d(double* w, const double* dw, double* m, double* v, Py_ssize_t size, double lr,
                     double beta1, double keep1, double beta2, double keep2, double eps, double reg,
                     double bc1, double bc2, double shrink, ffc_update_stats* stats)
    void ffc_ema_s(float* avg, const float* w, Py_ssize_t size, float decay, float keep)
    void ffc_ema_d(double* avg, const double* w, Py_ssize_t size, double decay, double keep)
