# The C loops of the affine layers, csrc/dense_loops.h (float: _s, double: _d).
from libc.stdint cimport uint8_t, uint16_t

cdef extern from "dense_loops.h" nogil:
    enum:
        FFC_ACT_IDENTITY
        FFC_ACT_RELU
        FFC_ACT_LEAKY_RELU
        FFC_ACT_SIGMOID
        FFC_ACT_TANH
        FFC_ACT_SWISH

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
    # bf16 steps: the float loop, and a bfloat16 copy of its output in r16
    void ffc_bias_act_r16(int kind, float* a, const float* b, Py_ssize_t n, Py_ssize_t d, float alpha, uint16_t* r16)
    void ffc_bias_swish_r16(float* z, const float* b, float* out, Py_ssize_t n, Py_ssize_t d, uint16_t* r16)
    void ffc_act_backward_r16(int kind, const float* z, const float* y, float* dout, Py_ssize_t size, float alpha, uint16_t* r16)
    void ffc_dropout_apply_r16(const float* x, const uint8_t* mask, float scale, float* out, Py_ssize_t size, uint16_t* r16)
