# Declarations of the C loops in csrc/fastfc_loops.h (float: _s, double: _d).
from libc.stdint cimport uint8_t, int32_t, uint32_t, uint64_t, intptr_t

cdef extern from "fastfc_loops.h" nogil:
    enum:
        FFC_ACT_IDENTITY
        FFC_ACT_RELU
        FFC_ACT_LEAKY_RELU
        FFC_ACT_SIGMOID
        FFC_ACT_TANH
        FFC_ACT_SWISH

    void ffc_dropout_mask(uint8_t* mask, Py_ssize_t size, uint32_t threshold, uint64_t key)
    uint64_t ffc_splitmix64(uint64_t x)
    void ffc_gather_rows_f_s(const float* x, const intptr_t* idx, Py_ssize_t n, Py_ssize_t d, float* out)
    void ffc_gather_rows_d_s(const double* x, const intptr_t* idx, Py_ssize_t n, Py_ssize_t d, float* out)
    void ffc_gather_rows_f_d(const float* x, const intptr_t* idx, Py_ssize_t n, Py_ssize_t d, double* out)
    void ffc_gather_rows_d_d(const double* x, const intptr_t* idx, Py_ssize_t n, Py_ssize_t d, double* out)

    void ffc_augment_f_s(const float* x, const intptr_t* idx, const uint8_t* flip, const int32_t* shift_y,
                         const int32_t* shift_x, Py_ssize_t n, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w, float* out)
    void ffc_augment_d_s(const double* x, const intptr_t* idx, const uint8_t* flip, const int32_t* shift_y,
                         const int32_t* shift_x, Py_ssize_t n, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w, float* out)
    void ffc_augment_f_d(const float* x, const intptr_t* idx, const uint8_t* flip, const int32_t* shift_y,
                         const int32_t* shift_x, Py_ssize_t n, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w, double* out)
    void ffc_augment_d_d(const double* x, const intptr_t* idx, const uint8_t* flip, const int32_t* shift_y,
                         const int32_t* shift_x, Py_ssize_t n, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w, double* out)

    void ffc_fill_rows_s(float* out, const float* b, Py_ssize_t n, Py_ssize_t d)
    void ffc_fill_rows_d(double* out, const double* b, Py_ssize_t n, Py_ssize_t d)
    void ffc_col_sum_s(const float* a, Py_ssize_t n, Py_ssize_t d, float* s)
    void ffc_col_sum_d(const double* a, Py_ssize_t n, Py_ssize_t d, double* s)
    double ffc_sum_sq_s(const float* a, Py_ssize_t size)
    double ffc_sum_sq_d(const double* a, Py_ssize_t size)

    void ffc_bias_act_inplace_s(int kind, float* a, const float* b, Py_ssize_t n, Py_ssize_t d, float alpha)
    void ffc_bias_act_inplace_d(int kind, double* a, const double* b, Py_ssize_t n, Py_ssize_t d, double alpha)
    void ffc_bias_swish_s(float* z, const float* b, float* out, Py_ssize_t n, Py_ssize_t d)
    void ffc_bias_swish_d(double* z, const double* b, double* out, Py_ssize_t n, Py_ssize_t d)
    void ffc_act_backward_s(int kind, const float* z, const float* y, float* dout, Py_ssize_t size, float alpha)
    void ffc_act_backward_d(int kind, const double* z, const double* y, double* dout, Py_ssize_t size, double alpha)

    void ffc_dropout_apply_s(const float* x, const uint8_t* mask, float scale, float* out, Py_ssize_t size)
    void ffc_dropout_apply_d(const double* x, const uint8_t* mask, double scale, double* out, Py_ssize_t size)

    double ffc_softmax_xent_s(const float* scores, const intptr_t* y, Py_ssize_t n, Py_ssize_t c, float* dscores)
    double ffc_softmax_xent_d(const double* scores, const intptr_t* y, Py_ssize_t n, Py_ssize_t c, double* dscores)
    void ffc_softmax_rows_s(const float* scores, Py_ssize_t n, Py_ssize_t c, float* probs)
    void ffc_softmax_rows_d(const double* scores, Py_ssize_t n, Py_ssize_t c, double* probs)
    double ffc_svm_s(const float* scores, const intptr_t* y, Py_ssize_t n, Py_ssize_t c, float* dscores)
    double ffc_svm_d(const double* scores, const intptr_t* y, Py_ssize_t n, Py_ssize_t c, double* dscores)

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

    ctypedef struct ffc_update_stats:
        double sumsq
        Py_ssize_t nonfinite

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
